#pragma once
/// A real Mosquitto broker on 127.0.0.1 for integration tests.
///
/// Owner: the test or fixture that creates it; not thread-safe (port() and tls_port() may be read
/// from any thread). Each broker has its own TempDir holding mosquitto.conf, the password file
/// and mosquitto.stderr (the broker log, kept across restarts). Ports are picked with free_port()
/// and kept for the broker's lifetime, so stop() + start() simulates an outage on the SAME port.
///
/// Failure: the constructor and start() throw std::runtime_error if mosquitto (or, with a
/// password, mosquitto_passwd) is missing, exits during start-up, or does not accept connections
/// within `start_timeout`; the message carries the broker log. The destructor stops the broker.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace ts::testsupport {

/// A second listener that speaks TLS, on its own port.
struct MosquittoTlsListener {
  std::filesystem::path cert_file;   ///< server certificate (PEM), SAN should include 127.0.0.1
  std::filesystem::path key_file;    ///< its private key (PEM)
  std::filesystem::path ca_file;     ///< CA that signs client certificates (PEM)
  bool require_certificate = false;  ///< mutual TLS: clients must present a certificate
};

struct MosquittoOptions {
  /// Non-empty: a password file with this one user is generated with mosquitto_passwd.
  std::string username;
  std::string password;
  /// With a password file, false makes credentials mandatory; true lets clients without any in.
  bool allow_anonymous = true;
  std::optional<MosquittoTlsListener> tls;
  /// Lines appended verbatim to mosquitto.conf (e.g. "max_inflight_messages 1").
  std::vector<std::string> extra_config;
  std::filesystem::path binary = "/usr/sbin/mosquitto";
  std::chrono::milliseconds start_timeout{10'000};
};

class MosquittoBroker {
 public:
  /// Writes the config and starts the broker; returns once every listener accepts connections.
  explicit MosquittoBroker(MosquittoOptions options = {});
  ~MosquittoBroker();

  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  /// Plain MQTT listener on 127.0.0.1.
  std::uint16_t port() const { return port_; }
  /// TLS listener on 127.0.0.1; 0 without MosquittoOptions::tls.
  std::uint16_t tls_port() const { return tls_port_; }

  /// True while the broker process is alive.
  bool running();

  /// SIGTERM (then SIGKILL after 5 s); clients see their connections closed. Idempotent.
  void stop();

  /// Starts the broker again with the same config on the same ports; returns once it accepts.
  /// Throws std::logic_error if it is already running, std::runtime_error as the constructor.
  void start();

  /// The broker log of every run so far.
  std::string log_text() const;

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config_path() const { return dir_.file("mosquitto.conf"); }

 private:
  void write_password_file() const;
  void write_config() const;
  /// Starts the process and waits for the listeners. Returns false if mosquitto exited because
  /// a port was taken meanwhile; throws if it exited for another reason or timed out.
  bool launch();

  MosquittoOptions options_;
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::optional<Process> process_;
};

}  // namespace ts::testsupport
