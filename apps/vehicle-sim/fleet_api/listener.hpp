#pragma once
/// Where the stand-in listens: plain HTTP through `http::Server`, or HTTPS when a certificate and
/// key are given (same handler, same limits and timeouts), so clients can be tested with
/// certificate verification on, e.g. with `tsctl dev-ca`'s server.pem (localhost + 127.0.0.1).
///
/// Runs on one io_context; start/stop from the thread that owns it (or before it runs). `start`
/// throws std::runtime_error naming the address or file at fault.
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "http/server.hpp"

namespace ts::vehicle_sim {

struct ListenerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8443;  ///< 0 = any free port
  std::string cert_file;      ///< PEM chain; with key_file: HTTPS
  std::string key_file;
};

class Listener {
 public:
  Listener(boost::asio::io_context& io, ListenerOptions options, http::Handler handler);
  ~Listener();
  void start();
  void stop();
  std::uint16_t port() const { return port_; }
  bool tls() const { return !options_.cert_file.empty(); }
  /// "http://127.0.0.1:8443" (or https://…), with the bound port.
  std::string url() const;

 private:
  struct TlsServer;
  ListenerOptions options_;
  std::unique_ptr<http::Server> plain_;
  std::shared_ptr<TlsServer> secure_;
  std::uint16_t port_ = 0;  // bound port, once started
};

}  // namespace ts::vehicle_sim
