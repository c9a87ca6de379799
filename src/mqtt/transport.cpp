#include "mqtt/transport.hpp"

#include <stdexcept>

namespace ts::mqtt {

void configure_client_tls(boost::asio::ssl::context& ctx, const TlsFiles& files,
                          const std::string& who) {
  namespace ssl = boost::asio::ssl;
  using boost::system::error_code;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!files.tls) return;
  auto load = [&who](const char* what, const std::string& path, auto&& fn) {
    error_code ec;
    fn(ec);
    if (ec) throw std::runtime_error(who + " " + what + " " + path + ": " + ec.message());
  };
  ctx.set_verify_mode(ssl::verify_peer);
  if (files.ca_file.empty()) {
    load("system CA store", "", [&](error_code& ec) { ctx.set_default_verify_paths(ec); });
  } else {
    load("CA file", files.ca_file, [&](error_code& ec) { ctx.load_verify_file(files.ca_file, ec); });
  }
  if (!files.cert_file.empty()) {
    load("certificate file", files.cert_file,
         [&](error_code& ec) { ctx.use_certificate_chain_file(files.cert_file, ec); });
    const std::string& key = files.key_file.empty() ? files.cert_file : files.key_file;
    load("key file", key,
         [&](error_code& ec) { ctx.use_private_key_file(key, ssl::context::pem, ec); });
  }
}

}  // namespace ts::mqtt
