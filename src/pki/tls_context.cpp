#include "pki/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <stdexcept>
#include <vector>

#include "pki/openssl.hpp"

namespace ts::pki {

namespace ssl = boost::asio::ssl;

namespace {

// ALPN wire format: one length-prefixed protocol name.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

[[noreturn]] void fail(const std::string& key, const std::string& what) {
  throw std::runtime_error(key + ": " + what);
}

std::string read_or_fail(const std::string& key, const std::string& path) {
  if (path.empty()) fail(key, "not set (a PEM file path is required)");
  std::string error;
  auto bytes = read_file(path, error);
  if (!bytes) fail(key, "cannot read '" + path + "': " + error);
  return std::move(*bytes);
}

std::vector<X509Ptr> read_certificates_or_fail(const std::string& key, const std::string& path) {
  auto certs = read_pem_certificates(read_or_fail(key, path));
  if (certs.empty()) fail(key, "no PEM certificate found in '" + path + "'");
  return certs;
}

EvpPkeyPtr read_key_or_fail(const std::string& key, const std::string& path) {
  EvpPkeyPtr pkey = read_pem_private_key(read_or_fail(key, path));
  if (!pkey) {
    fail(key, "no usable PEM private key in '" + path +
                  "' (encrypted keys are not supported): " + take_openssl_errors("no key found"));
  }
  return pkey;
}

// Loads `certs` (leaf first) and `key` into `ctx`; the rest of the chain goes out with the leaf.
void use_chain_and_key(SSL_CTX* ctx, std::vector<X509Ptr>& certs, EVP_PKEY* key,
                       const std::string& cert_key, const std::string& key_key) {
  if (SSL_CTX_use_certificate(ctx, certs.front().get()) != 1) {
    fail(cert_key, "certificate rejected: " + take_openssl_errors());
  }
  for (std::size_t i = 1; i < certs.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, certs[i].get()) != 1) {
      fail(cert_key,
           "chain certificate " + std::to_string(i + 1) + " rejected: " + take_openssl_errors());
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    fail(key_key, "private key does not match the certificate in " + cert_key);
  }
}

void set_protocol_versions(SSL_CTX* ctx) {
  // spec §2.2: TLS 1.2 minimum, TLS 1.3 supported.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, 0) != 1) {
    throw std::runtime_error("TLS protocol versions: " + take_openssl_errors());
  }
}

// spec §2.2: advertise only http/1.1. A client that offers no http/1.1 gets no ALPN at all
// rather than a fatal alert, like a server without ALPN.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kAlpnHttp11, sizeof kAlpnHttp11, in, in_len) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

VehicleServerContext make_vehicle_server_context(const ServerTlsOptions& options) {
  VehicleServerContext result{ssl::context(ssl::context::tls_server)};
  SSL_CTX* ctx = result.context.native_handle();

  // spec §2.2: server certificate (the file may contain the chain) and key.
  auto chain = read_certificates_or_fail("tls.server_cert", options.server_cert);
  EvpPkeyPtr key = read_key_or_fail("tls.server_key", options.server_key);
  use_chain_and_key(ctx, chain, key.get(), "tls.server_cert", "tls.server_key");
  result.chain_length = chain.size();

  // spec §2.2: every certificate in the pool is a trust anchor, intermediates included.
  auto anchors = read_certificates_or_fail("tls.ca_file", options.ca_file);
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) fail("tls.ca_file", take_openssl_errors());
  SSL_CTX_set_cert_store(ctx, store);  // the context owns it from here on
  STACK_OF(X509_NAME)* ca_names = sk_X509_NAME_new_null();
  if (ca_names == nullptr) fail("tls.ca_file", take_openssl_errors());
  // spec §2.2: the CertificateRequest lists the subjects of the pool (and nothing else: long
  // lists make vehicles give up). Identical subjects are listed once.
  SSL_CTX_set_client_CA_list(ctx, ca_names);  // the context owns it from here on
  for (auto& anchor : anchors) {
    if (X509_STORE_add_cert(store, anchor.get()) != 1) {
      // A byte-identical duplicate is not an error for Go's pool either.
      if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        fail("tls.ca_file", "certificate rejected: " + take_openssl_errors());
      }
      ERR_clear_error();
    }
    const X509_NAME* subject = X509_get_subject_name(anchor.get());
    bool listed = false;
    for (int i = 0; i < sk_X509_NAME_num(ca_names) && !listed; ++i) {
      listed = X509_NAME_cmp(sk_X509_NAME_value(ca_names, i), subject) == 0;
    }
    if (!listed) {
      X509_NAME* copy = X509_NAME_dup(subject);
      if (copy == nullptr || sk_X509_NAME_push(ca_names, copy) <= 0) {
        X509_NAME_free(copy);
        fail("tls.ca_file", take_openssl_errors());
      }
    }
  }
  result.ca_count = anchors.size();
  result.client_ca_names = static_cast<std::size_t>(sk_X509_NAME_num(ca_names));

  // spec §2.2: require and verify; purpose sslclient (clientAuth EKU, or none, along the chain).
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  if (X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT) != 1) {
    fail("tls.ca_file", "purpose sslclient: " + take_openssl_errors());
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);

  set_protocol_versions(ctx);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);

  // No resumption: a resumed session carries no verified chain, so spec §2.3 would find no
  // identity. Vehicles hold one long-lived connection, the full handshake is affordable.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(ctx, 0);
  // Send exactly tls.server_cert, as the reference does: without this OpenSSL would complete the
  // server's chain from the *vehicle* CA store.
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  // Vehicles idle most of the time: free OpenSSL's record buffers between reads and writes
  // instead of holding ~34 KB per connection.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return result;
}

ssl::context make_vehicle_client_context(const std::string& ca_file, const std::string& cert_file,
                                         const std::string& key_file) {
  ssl::context context(ssl::context::tls_client);
  SSL_CTX* ctx = context.native_handle();

  auto anchors = read_certificates_or_fail("CA file", ca_file);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (auto& anchor : anchors) {
    if (X509_STORE_add_cert(store, anchor.get()) != 1) ERR_clear_error();  // duplicates
  }
  auto chain = read_certificates_or_fail("client certificate", cert_file);
  EvpPkeyPtr key = read_key_or_fail("client key", key_file);
  use_chain_and_key(ctx, chain, key.get(), "client certificate", "client key");

  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  set_protocol_versions(ctx);
  if (SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof kAlpnHttp11) != 0) {
    throw std::runtime_error("ALPN: " + take_openssl_errors());
  }
  return context;
}

bool expect_server_name(SSL* ssl, const std::string& name) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  const bool is_ip = !ec;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (is_ip) return X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1;
  // RFC 6066 §3: SNI carries host names only, never IP literals.
  if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1;
}

X509* verified_client_leaf(const SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return nullptr;
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
  if (chain == nullptr || sk_X509_num(chain) == 0) return nullptr;
  return sk_X509_value(chain, 0);
}

ts::Result<Identity> identity_from_connection(const SSL* ssl) {
  return identity_from_leaf(verified_client_leaf(ssl));
}

}  // namespace ts::pki
