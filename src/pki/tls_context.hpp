#pragma once
/// TLS contexts of the vehicle link (spec §2.2) and the bridge from a finished handshake to the
/// identity of spec §2.3.
///
/// The contexts are built once at start-up and then only read: an `ssl::context` may be shared by
/// every shard and connection (OpenSSL makes SSL_CTX use thread-safe). Building one throws
/// std::runtime_error whose message starts with the config key at fault (`tls.server_cert`,
/// `tls.server_key`, `tls.ca_file`), so `main()` can print it as is.
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <string>

#include "core/result.hpp"
#include "pki/identity.hpp"

namespace ts::pki {

/// The `tls` object of the server config (spec §10.2). All three are PEM file paths.
struct ServerTlsOptions {
  std::string server_cert;  ///< tls.server_cert: leaf first, then intermediates
  std::string server_key;   ///< tls.server_key
  std::string ca_file;      ///< tls.ca_file: every certificate in it is a vehicle trust anchor
};

/// A server context plus what start-up logs about it.
struct VehicleServerContext {
  boost::asio::ssl::context context;
  std::size_t ca_count = 0;         ///< certificates loaded from tls.ca_file
  std::size_t client_ca_names = 0;  ///< distinct subjects advertised in CertificateRequest
  std::size_t chain_length = 0;     ///< certificates sent to vehicles (leaf + intermediates)
};

/// The vehicle-facing server context (spec §2.2): requires and verifies a client certificate;
/// every certificate of `ca_file` is a trust anchor (X509_V_FLAG_PARTIAL_CHAIN, like Go's
/// ClientCAs pool); purpose sslclient; the acceptable-CA list of the CertificateRequest holds
/// only the ca_file subjects (never a system store: vehicles give up on long lists); TLS 1.2 to
/// 1.3; ALPN selects `http/1.1` or nothing (WebSocket needs HTTP/1.1); no session resumption,
/// so every connection has a verified chain to take the identity from.
/// Throws std::runtime_error naming the key on an unreadable or invalid file, a key that does not
/// match the certificate, or a ca_file without any certificate.
VehicleServerContext make_vehicle_server_context(const ServerTlsOptions& options);

/// The vehicle side (vehicle-sim, tests): verifies the server against `ca_file` (pair it with
/// `expect_server_name`), presents `cert_file` (may hold a chain) with `key_file`, TLS 1.2+,
/// offers ALPN `http/1.1`. Throws std::runtime_error naming the file at fault.
boost::asio::ssl::context make_vehicle_client_context(const std::string& ca_file,
                                                      const std::string& cert_file,
                                                      const std::string& key_file);

/// Client side, before the handshake: sends SNI `name` (unless it is an IP literal) and makes
/// verification check the server certificate against `name` (DNS or IP SAN). Returns false if
/// OpenSSL refused the name.
bool expect_server_name(SSL* ssl, const std::string& name);

/// Server side, after a successful handshake: the leaf of the chain OpenSSL *verified*
/// (SSL_get0_verified_chain()[0]), or nullptr if there is none or verification did not pass.
/// Never the peer's unverified extras (SSL_get_peer_cert_chain): that was the reference's
/// VIN-spoofing hole (spec §2.3). The pointer lives as long as `ssl`.
X509* verified_client_leaf(const SSL* ssl);

/// spec §2.3 on a finished server-side handshake: identity_from_leaf(verified_client_leaf(ssl)).
ts::Result<Identity> identity_from_connection(const SSL* ssl);

}  // namespace ts::pki
