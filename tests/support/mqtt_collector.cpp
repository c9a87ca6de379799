#include "support/mqtt_collector.hpp"

#include <mosquitto.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace ts::testsupport {
namespace {

constexpr int kKeepaliveSeconds = 30;
constexpr unsigned kReconnectDelaySeconds = 1;
constexpr std::size_t kTopicsInFailure = 5;
constexpr int kSubackFailure = 0x80;

// For MOSQ_ERR_ERRNO, mosquitto_strerror already returns strerror(errno).
std::string describe(int rc) { return mosquitto_strerror(rc); }

std::string default_client_id() {
  static std::atomic<unsigned> counter{0};
  return fmt::format("ts-collector-{}-{}", ::getpid(), ++counter);
}

const char* c_str_or_null(const std::filesystem::path& path) {
  return path.empty() ? nullptr : path.c_str();
}

}  // namespace

void init_mosquitto_lib() {
  static const int rc = mosquitto_lib_init();
  if (rc != MOSQ_ERR_SUCCESS) {
    throw std::runtime_error("mosquitto_lib_init failed: " + std::string(mosquitto_strerror(rc)));
  }
}

MqttCollector::MqttCollector(std::uint16_t port, std::string pattern, int qos,
                             MqttCollectorOptions options)
    : port_(port), pattern_(std::move(pattern)), qos_(qos) {
  init_mosquitto_lib();
  const std::string client_id = options.client_id.empty() ? default_client_id() : options.client_id;
  mosq_ = mosquitto_new(client_id.c_str(), true, this);
  if (mosq_ == nullptr) {
    throw std::runtime_error(fmt::format("MqttCollector: mosquitto_new: {}", std::strerror(errno)));
  }
  try {
    mosquitto_connect_callback_set(mosq_, &MqttCollector::on_connect);
    mosquitto_disconnect_callback_set(mosq_, &MqttCollector::on_disconnect);
    mosquitto_subscribe_callback_set(mosq_, &MqttCollector::on_subscribe);
    mosquitto_message_callback_set(mosq_, &MqttCollector::on_message);
    mosquitto_log_callback_set(mosq_, &MqttCollector::on_log);
    mosquitto_reconnect_delay_set(mosq_, kReconnectDelaySeconds, kReconnectDelaySeconds, false);
    int rc = MOSQ_ERR_SUCCESS;
    if (!options.username.empty()) {
      rc = mosquitto_username_pw_set(mosq_, options.username.c_str(), options.password.c_str());
      if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error("username_pw_set: " + describe(rc));
    }
    if (!options.ca_file.empty()) {
      rc = mosquitto_tls_set(mosq_, options.ca_file.c_str(), nullptr,
                             c_str_or_null(options.cert_file), c_str_or_null(options.key_file),
                             nullptr);
      if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error("tls_set: " + describe(rc));
    }
    rc = mosquitto_connect(mosq_, "127.0.0.1", port_, kKeepaliveSeconds);
    if (rc != MOSQ_ERR_SUCCESS) {
      std::string detail = describe(rc);
      std::lock_guard lock(mutex_);
      if (!last_client_error_.empty()) detail += " (" + last_client_error_ + ")";
      throw std::runtime_error(fmt::format("cannot connect to 127.0.0.1:{}: {}", port_, detail));
    }
    rc = mosquitto_loop_start(mosq_);
    if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error("loop_start: " + describe(rc));

    std::unique_lock lock(mutex_);
    const bool done = changed_.wait_for(lock, options.subscribe_timeout,
                                        [this] { return subscriptions_ > 0 || !error_.empty(); });
    if (!error_.empty()) throw std::runtime_error(error_);
    if (!done) {
      throw std::runtime_error(fmt::format("no SUBACK for '{}' within {} ms", pattern_,
                                           options.subscribe_timeout.count()));
    }
  } catch (const std::exception& e) {
    shutdown();
    throw std::runtime_error(
        fmt::format("MqttCollector(127.0.0.1:{}, '{}'): {}", port_, pattern_, e.what()));
  }
}

MqttCollector::~MqttCollector() { shutdown(); }

void MqttCollector::shutdown() noexcept {
  if (mosq_ == nullptr) return;
  // Disconnect first so the network thread stops instead of reconnecting, then join it.
  mosquitto_disconnect(mosq_);
  mosquitto_loop_stop(mosq_, false);
  mosquitto_destroy(mosq_);
  mosq_ = nullptr;
}

void MqttCollector::on_connect(mosquitto* mosq, void* self, int rc) {
  auto* collector = static_cast<MqttCollector*>(self);
  if (rc != 0) {
    std::lock_guard lock(collector->mutex_);
    if (collector->error_.empty()) {
      collector->error_ = fmt::format("connection refused: {}", mosquitto_connack_string(rc));
    }
    collector->changed_.notify_all();
    return;
  }
  {
    std::lock_guard lock(collector->mutex_);
    collector->connected_ = true;
  }
  // Clean session: the broker forgot the subscription, so every (re)connect subscribes again.
  const int sub_rc =
      mosquitto_subscribe(mosq, nullptr, collector->pattern_.c_str(), collector->qos_);
  if (sub_rc != MOSQ_ERR_SUCCESS) {
    std::lock_guard lock(collector->mutex_);
    if (collector->error_.empty()) collector->error_ = "subscribe: " + describe(sub_rc);
    collector->changed_.notify_all();
  }
}

void MqttCollector::on_disconnect(mosquitto* /*mosq*/, void* self, int rc) {
  auto* collector = static_cast<MqttCollector*>(self);
  std::lock_guard lock(collector->mutex_);
  collector->connected_ = false;
  // Lost before the first SUBACK (TLS handshake failed, broker closed on us): fail the
  // constructor now instead of retrying until its timeout.
  if (collector->subscriptions_ == 0 && collector->error_.empty()) {
    collector->error_ = fmt::format("connection lost before SUBACK: {}", describe(rc));
  }
  collector->changed_.notify_all();
}

void MqttCollector::on_log(mosquitto* /*mosq*/, void* self, int level, const char* text) {
  if (level != MOSQ_LOG_ERR) return;
  auto* collector = static_cast<MqttCollector*>(self);
  std::lock_guard lock(collector->mutex_);
  collector->last_client_error_ = text;
  // Some failures (a TLS certificate the client rejects) only show up here; without this the
  // constructor would wait for its full timeout.
  if (collector->subscriptions_ == 0 && collector->error_.empty()) collector->error_ = text;
  collector->changed_.notify_all();
}

void MqttCollector::on_subscribe(mosquitto* /*mosq*/, void* self, int /*mid*/, int qos_count,
                                 const int* granted_qos) {
  auto* collector = static_cast<MqttCollector*>(self);
  std::lock_guard lock(collector->mutex_);
  if (qos_count < 1 || granted_qos[0] == kSubackFailure) {
    if (collector->error_.empty()) {
      collector->error_ =
          fmt::format("broker refused the subscription to '{}'", collector->pattern_);
    }
  } else {
    ++collector->subscriptions_;
  }
  collector->changed_.notify_all();
}

void MqttCollector::on_message(mosquitto* /*mosq*/, void* self, const mosquitto_message* message) {
  auto* collector = static_cast<MqttCollector*>(self);
  MqttMessage recorded{
      .topic = message->topic,
      .payload = std::string(static_cast<const char*>(message->payload),
                             static_cast<std::size_t>(message->payloadlen)),
      .qos = message->qos,
      .retain = message->retain,
      .arrived = std::chrono::steady_clock::now(),
  };
  std::lock_guard lock(collector->mutex_);
  collector->messages_.push_back(std::move(recorded));
  collector->changed_.notify_all();
}

std::size_t MqttCollector::size() const {
  std::lock_guard lock(mutex_);
  return messages_.size();
}

std::vector<MqttMessage> MqttCollector::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

void MqttCollector::clear() {
  std::lock_guard lock(mutex_);
  messages_.clear();
}

::testing::AssertionResult MqttCollector::wait_for_count(std::size_t n,
                                                         std::chrono::milliseconds deadline) const {
  std::unique_lock lock(mutex_);
  if (changed_.wait_for(lock, deadline, [&] { return messages_.size() >= n; })) {
    return ::testing::AssertionSuccess();
  }
  auto failure = ::testing::AssertionFailure();
  failure << "timed out after " << deadline.count() << " ms waiting for " << n << " messages on '"
          << pattern_ << "': got " << messages_.size() << (connected_ ? "" : " (not connected)");
  if (!last_client_error_.empty()) failure << "; last client error: " << last_client_error_;
  const std::size_t first =
      messages_.size() > kTopicsInFailure ? messages_.size() - kTopicsInFailure : 0;
  if (first < messages_.size()) failure << "; last topics:";
  for (std::size_t i = first; i < messages_.size(); ++i) failure << ' ' << messages_[i].topic;
  return failure;
}

std::vector<std::string> MqttCollector::lines() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  out.reserve(messages_.size());
  for (const MqttMessage& m : messages_) out.push_back(m.topic + '\t' + m.payload);
  return out;
}

std::vector<std::string> MqttCollector::sorted_lines() const {
  std::vector<std::string> out = lines();
  // std::string compares through char_traits<char>, which orders bytes as unsigned char.
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t MqttCollector::subscriptions() const {
  std::lock_guard lock(mutex_);
  return subscriptions_;
}

::testing::AssertionResult MqttCollector::wait_for_subscriptions(
    std::uint64_t n, std::chrono::milliseconds deadline) const {
  std::unique_lock lock(mutex_);
  if (changed_.wait_for(lock, deadline, [&] { return subscriptions_ >= n; })) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "timed out after " << deadline.count() << " ms waiting for " << n << " SUBACKs on '"
         << pattern_ << "': got " << subscriptions_
         << (connected_ ? " (connected)" : " (not connected)")
         << (last_client_error_.empty() ? "" : "; last client error: ") << last_client_error_;
}

bool MqttCollector::connected() const {
  std::lock_guard lock(mutex_);
  return connected_;
}

}  // namespace ts::testsupport
