#include "support/mosquitto_broker.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "support/ports.hpp"
#include "support/wait_for.hpp"

namespace ts::testsupport {
namespace {

constexpr int kLaunchAttempts = 3;
constexpr std::chrono::milliseconds kStopGrace{5'000};
constexpr std::chrono::milliseconds kPasswdTimeout{10'000};

std::filesystem::path find_mosquitto_passwd(const std::filesystem::path& broker) {
  for (const std::filesystem::path& candidate :
       {broker.parent_path() / "mosquitto_passwd",
        std::filesystem::path("/usr/bin/mosquitto_passwd"),
        std::filesystem::path("/usr/local/bin/mosquitto_passwd")}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

}  // namespace

MosquittoBroker::MosquittoBroker(MosquittoOptions options)
    : options_(std::move(options)), dir_("ts-mosquitto") {
  if (::access(options_.binary.c_str(), X_OK) != 0) {
    throw std::runtime_error(fmt::format(
        "MosquittoBroker: {} is not an executable ({}); install the 'mosquitto' package",
        options_.binary.string(), std::strerror(errno)));
  }
  if (!options_.username.empty()) write_password_file();
  // free_port() only finds a port that is free right now; if another process takes it before
  // mosquitto binds, mosquitto exits and we try again with fresh ports.
  for (int attempt = 1; attempt <= kLaunchAttempts; ++attempt) {
    port_ = free_port();
    tls_port_ = 0;
    while (options_.tls && (tls_port_ == 0 || tls_port_ == port_)) tls_port_ = free_port();
    write_config();
    if (launch()) return;
  }
  throw std::runtime_error(
      fmt::format("MosquittoBroker: ports taken {} times in a row during start-up; log:\n{}",
                  kLaunchAttempts, log_text()));
}

MosquittoBroker::~MosquittoBroker() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::cerr << "MosquittoBroker: " << e.what() << '\n';
  }
}

void MosquittoBroker::write_password_file() const {
  const std::filesystem::path passwd = find_mosquitto_passwd(options_.binary);
  if (passwd.empty()) {
    throw std::runtime_error(
        "MosquittoBroker: a password was requested but mosquitto_passwd was not found");
  }
  Process tool = Process::start({.argv = {passwd.string(), "-c", "-b", dir_.file("passwd").string(),
                                          options_.username, options_.password},
                                 .output_dir = dir_.path(),
                                 .name = "mosquitto_passwd"});
  const std::optional<int> status = tool.wait(kPasswdTimeout);
  if (status != 0) {
    throw std::runtime_error(fmt::format("MosquittoBroker: mosquitto_passwd failed ({}): {}",
                                         status ? std::to_string(*status) : "timed out",
                                         tool.stderr_text()));
  }
}

void MosquittoBroker::write_config() const {
  std::string conf;
  // Run as root, mosquitto switches to the 'mosquitto' user and then cannot read our temp dir.
  if (::geteuid() == 0) conf += "user root\n";
  conf += "per_listener_settings false\n";
  conf += "persistence false\n";
  conf += fmt::format("allow_anonymous {}\n", options_.allow_anonymous ? "true" : "false");
  if (!options_.username.empty()) {
    conf += fmt::format("password_file {}\n", dir_.file("passwd").string());
  }
  conf += "log_dest stderr\n";
  conf += "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
  conf += "connection_messages true\n";
  conf += "log_timestamp_format %Y-%m-%dT%H:%M:%S\n";
  conf += fmt::format("listener {} 127.0.0.1\n", port_);
  if (options_.tls) {
    conf += fmt::format("listener {} 127.0.0.1\n", tls_port_);
    conf += fmt::format("certfile {}\n", options_.tls->cert_file.string());
    conf += fmt::format("keyfile {}\n", options_.tls->key_file.string());
    conf += fmt::format("cafile {}\n", options_.tls->ca_file.string());
    conf += fmt::format("require_certificate {}\n",
                        options_.tls->require_certificate ? "true" : "false");
  }
  for (const std::string& line : options_.extra_config) conf += line + "\n";
  dir_.write_file("mosquitto.conf", conf);
}

bool MosquittoBroker::launch() {
  const std::size_t log_offset = log_text().size();
  process_.emplace(Process::start({.argv = {options_.binary.string(), "-c", config_path().string()},
                                   .output_dir = dir_.path(),
                                   .name = "mosquitto",
                                   .append_output = true}));
  // "running" is logged once every listener is bound; connecting alone could reach whoever
  // else took the port meanwhile.
  const auto listening = [&] {
    return log_text().find(" running", log_offset) != std::string::npos && tcp_connectable(port_) &&
           (tls_port_ == 0 || tcp_connectable(tls_port_));
  };
  const ::testing::AssertionResult ready =
      wait_for([&] { return !process_->running() || listening(); }, options_.start_timeout,
               fmt::format("mosquitto to accept on 127.0.0.1:{}", port_));
  if (!process_->running()) {
    const std::string log = log_text().substr(log_offset);
    if (log.find("Address already in use") != std::string::npos) return false;
    throw std::runtime_error(
        fmt::format("MosquittoBroker: mosquitto exited with status {} during "
                    "start-up; config {}; log:\n{}",
                    *process_->exit_status(), config_path().string(), log));
  }
  if (!ready) {
    process_->terminate(kStopGrace);
    throw std::runtime_error(fmt::format("MosquittoBroker: {}; log:\n{}", ready.message(),
                                         log_text().substr(log_offset)));
  }
  return true;
}

bool MosquittoBroker::running() { return process_ && process_->running(); }

void MosquittoBroker::stop() {
  if (process_) process_->terminate(kStopGrace);
}

void MosquittoBroker::start() {
  if (running()) throw std::logic_error("MosquittoBroker::start: already running");
  if (!launch()) {
    throw std::runtime_error(fmt::format(
        "MosquittoBroker: restart on port {} failed: the port was taken meanwhile; log:\n{}", port_,
        log_text()));
  }
}

std::string MosquittoBroker::log_text() const {
  return read_file_text(dir_.file("mosquitto.stderr"));
}

}  // namespace ts::testsupport
