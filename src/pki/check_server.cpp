#include "pki/check_server.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>

#include "pki/openssl.hpp"

namespace ts::pki {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::string_view to_string(CheckStatus status) {
  switch (status) {
    case CheckStatus::Pass:
      return "PASS";
    case CheckStatus::Warn:
      return "WARN";
    case CheckStatus::Fail:
      return "FAIL";
  }
  return "FAIL";
}

bool has_failure(const std::vector<CheckResult>& results) {
  return std::any_of(results.begin(), results.end(),
                     [](const CheckResult& r) { return r.status == CheckStatus::Fail; });
}

namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr std::size_t kMaxResponseBytes = 64 * 1024;
constexpr std::size_t kListedCaNames = 5;  // how many names the report spells out

// What the client saw when the server's CertificateRequest arrived. Filled by the cert
// callback, because without a client certificate a TLS 1.2 handshake ends right after it.
struct Observed {
  bool certificate_requested = false;
  std::vector<std::string> ca_names;
  std::vector<X509Ptr> peer_chain;
  int version = 0;
};

std::vector<X509Ptr> copy_chain(STACK_OF(X509) * chain) {
  std::vector<X509Ptr> copy;
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    copy.push_back(up_ref(sk_X509_value(chain, i)));
  }
  return copy;
}

// SSL_CTX_set_cert_cb: on a client, OpenSSL calls it only when the server sent a
// CertificateRequest (TLS 1.2 and 1.3 alike).
int on_certificate_request(SSL* ssl, void* arg) {
  auto* seen = static_cast<Observed*>(arg);
  seen->certificate_requested = true;
  seen->ca_names.clear();
  if (const STACK_OF(X509_NAME)* names = SSL_get0_peer_CA_list(ssl)) {
    for (int i = 0; i < sk_X509_NAME_num(names); ++i) {
      seen->ca_names.push_back(name_to_string(sk_X509_NAME_value(names, i)));
    }
  }
  seen->peer_chain = copy_chain(SSL_get_peer_cert_chain(ssl));
  seen->version = SSL_version(ssl);
  return 1;
}

std::string version_name(int version) {
  switch (version) {
    case TLS1_3_VERSION:
      return "TLS 1.3";
    case TLS1_2_VERSION:
      return "TLS 1.2";
    case TLS1_1_VERSION:
      return "TLS 1.1";
    case TLS1_VERSION:
      return "TLS 1.0";
    default:
      return "an unknown TLS version (" + std::to_string(version) + ")";
  }
}

std::string seconds_text(std::chrono::milliseconds timeout) {
  auto ms = timeout.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

// Runs one asynchronous step on `io` until it completes or `timeout` passes; on timeout
// `cancel` aborts it and the result is asio::error::timed_out.
error_code run_step(asio::io_context& io, std::chrono::milliseconds timeout,
                    const std::function<void()>& cancel,
                    const std::function<void(std::function<void(error_code)>)>& start) {
  std::optional<error_code> result;
  bool timed_out = false;
  asio::steady_timer timer(io, timeout);
  timer.async_wait([&](error_code ec) {
    if (ec || result) return;
    timed_out = true;
    cancel();
  });
  start([&](error_code ec) {
    result = ec;
    timer.cancel();
  });
  io.restart();
  io.run();
  if (timed_out) return asio::error::timed_out;
  return result.value_or(asio::error::operation_aborted);
}

// A readable error: OpenSSL's reason for TLS errors, the system text otherwise.
std::string error_text(const error_code& ec) {
  if (ec == asio::error::timed_out) return "no answer in time";
  std::string text = ec.message();
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (reason != nullptr) text = reason;
  }
  return text;
}

std::string common_name_or_subject(X509* cert) {
  std::string cn = last_name_entry(X509_get_subject_name(cert), NID_commonName);
  return cn.empty() ? name_to_string(X509_get_subject_name(cert)) : "CN=" + cn;
}

std::string subject_alt_names(X509* cert) {
  std::string text;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    std::string entry;
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      entry = "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                   static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      const unsigned char* bytes = ASN1_STRING_get0_data(ip);
      if (ASN1_STRING_length(ip) == 4) {
        asio::ip::address_v4::bytes_type v4;
        std::copy(bytes, bytes + 4, v4.begin());
        entry = "IP:" + asio::ip::make_address_v4(v4).to_string();
      } else if (ASN1_STRING_length(ip) == 16) {
        asio::ip::address_v6::bytes_type v6;
        std::copy(bytes, bytes + 16, v6.begin());
        entry = "IP:" + asio::ip::make_address_v6(v6).to_string();
      }
    }
    if (entry.empty()) continue;
    if (!text.empty()) text += ", ";
    text += entry;
  }
  GENERAL_NAMES_free(names);
  return text;
}

bool is_ip_literal(const std::string& name) {
  error_code ec;
  asio::ip::make_address(name, ec);
  return !ec;
}

struct VerifyOutcome {
  bool ok = false;
  int error = X509_V_OK;
  int depth = 0;
  std::string error_subject;
  std::string anchor;  // subject of the top of the verified chain
};

VerifyOutcome verify_chain(const std::vector<X509Ptr>& chain, X509_STORE* anchors, bool partial) {
  VerifyOutcome outcome;
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (std::size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
  if (ctx && X509_STORE_CTX_init(ctx.get(), anchors, chain.front().get(), untrusted) == 1) {
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
    if (partial) X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
    outcome.ok = X509_verify_cert(ctx.get()) == 1;
    outcome.error = X509_STORE_CTX_get_error(ctx.get());
    outcome.depth = X509_STORE_CTX_get_error_depth(ctx.get());
    if (X509* bad = X509_STORE_CTX_get_current_cert(ctx.get()); bad != nullptr && !outcome.ok) {
      outcome.error_subject = common_name_or_subject(bad);
    }
    if (STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(ctx.get()); outcome.ok && verified) {
      outcome.anchor = common_name_or_subject(sk_X509_value(verified, sk_X509_num(verified) - 1));
    }
  }
  sk_X509_free(untrusted);  // the certificates belong to `chain`
  ERR_clear_error();
  return outcome;
}

CheckResult check_chain(const std::vector<X509Ptr>& chain, X509_STORE* anchors,
                        const std::string& ca_file) {
  const std::string sent = "the server sent " + std::to_string(chain.size()) + " certificate" +
                           (chain.size() == 1 ? "" : "s") + " (leaf " +
                           common_name_or_subject(chain.front().get()) + ")";
  VerifyOutcome full = verify_chain(chain, anchors, false);
  if (full.ok) {
    return {"chain", CheckStatus::Pass,
            sent + "; it verifies up to " + full.anchor + " from " + ca_file};
  }
  std::string why = X509_verify_cert_error_string(full.error);
  if (!full.error_subject.empty()) why += " (at " + full.error_subject + ")";
  VerifyOutcome partial = verify_chain(chain, anchors, true);
  if (partial.ok) {
    // Tesla's check_server_cert.sh: "has a valid partial chain, and may work with the root".
    return {"chain", CheckStatus::Warn,
            sent + "; only a partial chain validates (ending at " + partial.anchor +
                ", full check: " + why +
                "). Vehicles verify against the CA you registered with Tesla: the server " +
                "should send its leaf plus all intermediates (tls.server_cert), and that CA file " +
                "should contain the root they chain to"};
  }
  std::string advice = "the chain must verify against " + ca_file;
  if (chain.size() == 1 && (full.error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                            full.error == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)) {
    advice =
        "the server sends only its leaf: put the leaf followed by all intermediates in "
        "tls.server_cert";
  }
  return {"chain", CheckStatus::Fail, sent + "; it does not verify: " + why + "; " + advice};
}

CheckResult check_hostname(X509* leaf, const std::string& name) {
  const bool ok = is_ip_literal(name)
                      ? X509_check_ip_asc(leaf, name.c_str(), 0) == 1
                      : X509_check_host(leaf, name.data(), name.size(),
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
  ERR_clear_error();
  if (ok) return {"hostname", CheckStatus::Pass, "the server certificate is valid for " + name};
  std::string names = subject_alt_names(leaf);
  if (names.empty()) names = "no subjectAltName, subject " + common_name_or_subject(leaf);
  return {"hostname", CheckStatus::Fail,
          "the server certificate is not valid for " + name + " (it names " + names +
              "); vehicles connect to the hostname registered with Tesla, which must be in the "
              "certificate's subjectAltName"};
}

CheckResult check_version(int version) {
  if (version == TLS1_2_VERSION || version == TLS1_3_VERSION) {
    return {"tls-version", CheckStatus::Pass, "negotiated " + version_name(version)};
  }
  return {"tls-version", CheckStatus::Fail,
          "negotiated " + version_name(version) + "; TLS 1.2 or newer is required (spec §2.2)"};
}

CheckResult check_client_ca_list(const Observed& seen, std::size_t max_names) {
  if (!seen.certificate_requested) {
    return {"client-ca-list", CheckStatus::Fail,
            "the server did not ask for a client certificate; a vehicle server must require "
            "one (mTLS: the VIN comes from the vehicle's certificate, spec §2.2)"};
  }
  const std::size_t n = seen.ca_names.size();
  if (n == 0) {
    return {"client-ca-list", CheckStatus::Warn,
            "the server asks for a client certificate but lists no acceptable CA names; "
            "it should list the subjects of the vehicle CAs in tls.ca_file"};
  }
  std::string listed;
  for (std::size_t i = 0; i < n && i < kListedCaNames; ++i) {
    listed += (i == 0 ? "" : "; ") + seen.ca_names[i];
  }
  if (n > kListedCaNames) listed += "; ...";
  std::string detail = "the server asks for a client certificate and lists " + std::to_string(n) +
                       " acceptable CA name" + (n == 1 ? "" : "s") + ": " + listed;
  if (n > max_names) {
    return {"client-ca-list", CheckStatus::Warn,
            detail + ". That is more than " + std::to_string(max_names) +
                ": real vehicles have been seen to give up sending their certificate when the "
                "list is long; trust only the vehicle CAs (tls.ca_file), not a system store"};
  }
  return {"client-ca-list", CheckStatus::Pass, detail};
}

// Complete when the headers and Content-Length bytes of body are in (or at EOF).
std::size_t response_remaining(const std::string& data) {
  auto end = data.find("\r\n\r\n");
  if (end == std::string::npos) return kMaxResponseBytes - std::min(data.size(), kMaxResponseBytes);
  std::string headers = data.substr(0, end);
  std::transform(headers.begin(), headers.end(), headers.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto pos = headers.find("\r\ncontent-length:");
  if (pos == std::string::npos) return kMaxResponseBytes - std::min(data.size(), kMaxResponseBytes);
  std::size_t length = std::strtoul(headers.c_str() + pos + 17, nullptr, 10);
  std::size_t have = data.size() - (end + 4);
  return have >= length ? 0 : std::min(length - have, kMaxResponseBytes);
}

// One line of text whatever the server sent: control bytes become '.'.
std::string printable(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '.';
  }
  return text;
}

CheckResult check_status(ssl::stream<tcp::socket>& stream, asio::io_context& io,
                         const std::string& name, std::chrono::milliseconds timeout,
                         const std::string& cert_name) {
  auto cancel = [&] {
    error_code ignored;
    stream.lowest_layer().close(ignored);
  };
  const std::string request = "GET /status HTTP/1.1\r\nHost: " + name +
                              "\r\nUser-Agent: tsctl-check-server\r\nConnection: close\r\n\r\n";
  error_code ec = run_step(io, timeout, cancel, [&](auto done) {
    asio::async_write(stream, asio::buffer(request),
                      [done](error_code e, std::size_t) { done(e); });
  });
  std::string response;
  if (!ec) {
    ec = run_step(io, timeout, cancel, [&](auto done) {
      asio::async_read(
          stream, asio::dynamic_buffer(response, kMaxResponseBytes),
          [&response](error_code e, std::size_t) -> std::size_t {
            return e ? 0 : response_remaining(response);
          },
          [done](error_code e, std::size_t) { done(e); });
    });
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated) ec = {};
  }
  if (ec && response.empty()) {
    return {"status", CheckStatus::Fail,
            "GET /status with client certificate " + cert_name + " failed: " + error_text(ec) +
                " (the server probably rejected the certificate: is its CA in the server's "
                "tls.ca_file?)"};
  }
  const auto line_end = response.find("\r\n");
  const std::string status_line = response.substr(0, line_end);
  const auto body_start = response.find("\r\n\r\n");
  const std::string body =
      body_start == std::string::npos ? std::string() : response.substr(body_start + 4);
  if (status_line.rfind("HTTP/1.1 200", 0) == 0 && body == "mtls ok") {
    return {"status", CheckStatus::Pass,
            "GET /status with client certificate " + cert_name + " answered 200 'mtls ok'"};
  }
  return {"status", CheckStatus::Fail,
          "GET /status with client certificate " + cert_name + " answered '" +
              printable(status_line) + "' with body '" + printable(body.substr(0, 80)) +
              "'; expected 200 'mtls ok' (spec §2.4)"};
}

}  // namespace

std::vector<CheckResult> check_server(const CheckServerOptions& options) {
  const std::string name = options.server_name.empty() ? options.host : options.server_name;
  const std::string where = options.host + ":" + std::to_string(options.port);
  std::vector<CheckResult> results;

  // Local inputs first: problems here are the operator's, so they throw.
  std::string error;
  auto ca_pem = read_file(options.ca_file, error);
  if (!ca_pem) throw std::runtime_error("--ca " + options.ca_file + ": " + error);
  auto anchor_certs = read_pem_certificates(*ca_pem);
  if (anchor_certs.empty()) {
    throw std::runtime_error("--ca " + options.ca_file + ": no PEM certificate in it");
  }
  X509StorePtr anchors(X509_STORE_new());
  for (auto& cert : anchor_certs) X509_STORE_add_cert(anchors.get(), cert.get());
  ERR_clear_error();

  ssl::context context(ssl::context::tls_client);
  SSL_CTX* ctx = context.native_handle();
  // Accept every version and key size so an old server is reported by name instead of failing
  // with "no protocols available"; the checks below judge what was negotiated.
  SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // verified below, against --ca
  SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof kAlpnHttp11);
  Observed seen;
  SSL_CTX_set_cert_cb(ctx, on_certificate_request, &seen);
  const bool with_cert = !options.cert_file.empty();
  std::string cert_name;
  if (with_cert) {
    if (options.key_file.empty()) throw std::runtime_error("--cert needs --key");
    auto cert_pem = read_file(options.cert_file, error);
    if (!cert_pem) throw std::runtime_error("--cert " + options.cert_file + ": " + error);
    auto certs = read_pem_certificates(*cert_pem);
    if (certs.empty()) throw std::runtime_error("--cert " + options.cert_file + ": no certificate");
    auto key_pem = read_file(options.key_file, error);
    if (!key_pem) throw std::runtime_error("--key " + options.key_file + ": " + error);
    EvpPkeyPtr key = read_pem_private_key(*key_pem);
    if (!key) throw std::runtime_error("--key " + options.key_file + ": no usable private key");
    bool ok = SSL_CTX_use_certificate(ctx, certs.front().get()) == 1;
    for (std::size_t i = 1; ok && i < certs.size(); ++i) {
      ok = SSL_CTX_add1_chain_cert(ctx, certs[i].get()) == 1;
    }
    if (!ok || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      throw std::runtime_error("--cert/--key: " + take_openssl_errors("key does not match"));
    }
    cert_name = common_name_or_subject(certs.front().get());
  }

  asio::io_context io;
  ssl::stream<tcp::socket> stream(io, context);
  auto close_socket = [&] {
    error_code ignored;
    stream.lowest_layer().close(ignored);
  };

  // 1. TCP.
  tcp::resolver resolver(io);
  tcp::resolver::results_type endpoints;
  error_code ec = run_step(
      io, options.timeout, [&] { resolver.cancel(); },
      [&](auto done) {
        resolver.async_resolve(options.host, std::to_string(options.port),
                               [&endpoints, done](error_code e, tcp::resolver::results_type r) {
                                 endpoints = std::move(r);
                                 done(e);
                               });
      });
  if (ec) {
    results.push_back(
        {"connect", CheckStatus::Fail, "cannot resolve " + options.host + ": " + error_text(ec)});
    return results;
  }
  tcp::endpoint peer;
  ec = run_step(io, options.timeout, close_socket, [&](auto done) {
    asio::async_connect(stream.lowest_layer(), endpoints,
                        [&peer, done](error_code e, const tcp::endpoint& ep) {
                          peer = ep;
                          done(e);
                        });
  });
  if (ec) {
    results.push_back(
        {"connect", CheckStatus::Fail,
         "cannot connect to " + where + ": " +
             (ec == asio::error::timed_out ? "no answer within " + seconds_text(options.timeout)
                                           : error_text(ec))});
    return results;
  }
  results.push_back(
      {"connect", CheckStatus::Pass,
       "TCP connection to " + peer.address().to_string() + ":" + std::to_string(peer.port())});

  // 2. TLS handshake; the chain is judged below, against --ca.
  SSL* ssl_handle = stream.native_handle();
  if (!is_ip_literal(name)) SSL_set_tlsext_host_name(ssl_handle, name.c_str());
  ec = run_step(io, options.timeout, close_socket, [&](auto done) {
    stream.async_handshake(ssl::stream_base::client, [done](error_code e) { done(e); });
  });
  std::vector<X509Ptr> chain;
  int version = 0;
  if (!ec) {
    chain = copy_chain(SSL_get_peer_cert_chain(ssl_handle));
    version = SSL_version(ssl_handle);
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_handle, &alpn, &alpn_len);
    results.push_back(
        {"handshake", CheckStatus::Pass,
         "TLS handshake completed (" + std::string(SSL_get_cipher_name(ssl_handle)) + ", ALPN " +
             (alpn_len == 0 ? std::string("none")
                            : std::string(reinterpret_cast<const char*>(alpn), alpn_len)) +
             ")"});
  } else if (seen.certificate_requested && !with_cert) {
    // TLS 1.2: an mTLS server ends the handshake when the client has no certificate.
    chain = std::move(seen.peer_chain);
    version = seen.version;
    results.push_back({"handshake", CheckStatus::Pass,
                       "the server refused to continue without a client certificate (" +
                           error_text(ec) + "), as an mTLS server must"});
  } else if (seen.certificate_requested && with_cert) {
    chain = std::move(seen.peer_chain);
    version = seen.version;
    results.push_back({"handshake", CheckStatus::Fail,
                       "the server rejected client certificate " + cert_name + ": " +
                           error_text(ec) + " (is its CA in the server's tls.ca_file?)"});
  } else {
    results.push_back(
        {"handshake", CheckStatus::Fail,
         "TLS handshake with " + where + " failed: " +
             (ec == asio::error::timed_out ? "no answer within " + seconds_text(options.timeout)
                                           : error_text(ec))});
    return results;
  }

  // 3-6. What the vehicle would check, and what the server asked of the vehicle.
  if (chain.empty()) {
    results.push_back({"chain", CheckStatus::Fail, "the server sent no certificate"});
  } else {
    results.push_back(check_chain(chain, anchors.get(), options.ca_file));
    results.push_back(check_hostname(chain.front().get(), name));
  }
  results.push_back(check_version(version));
  results.push_back(check_client_ca_list(seen, options.max_client_ca_names));

  // 7. With a client certificate: the mTLS round trip of spec §2.4.
  if (with_cert && !ec) {
    results.push_back(check_status(stream, io, name, options.timeout, cert_name));
  }
  close_socket();
  return results;
}

}  // namespace ts::pki
