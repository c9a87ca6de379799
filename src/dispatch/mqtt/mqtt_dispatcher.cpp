#include "dispatch/mqtt/mqtt_dispatcher.hpp"

#include <boost/asio/this_coro.hpp>

#include <array>
#include <atomic>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "dispatch/mqtt/mqtt_client.hpp"
#include "pipeline/mqtt_format.hpp"
#include "runtime/completion.hpp"

namespace ts::dispatch {
namespace {

// Beyond this many unconfirmed publishes the broker is not keeping up: new records fail fast
// (counted) instead of growing memory without bound.
constexpr std::size_t kMaxInFlight = 200'000;

MqttClientOptions client_options(const MqttOptions& o) {
  MqttClientOptions c;
  c.host = o.host;
  c.port = o.port;
  c.tls = o.tls;
  c.ca_file = o.ca_file;
  c.cert_file = o.cert_file;
  c.key_file = o.key_file;
  c.client_id = o.client_id;
  c.username = o.username;
  c.password = o.password;
  c.keep_alive_seconds = o.keep_alive_seconds;
  c.connect_timeout = o.connect_timeout;
  // connect_retry_interval_ms caps the back-off (spec §8.8 config; 10 s by default).
  c.max_backoff = std::max(std::chrono::milliseconds(1000), o.connect_retry_interval);
  c.max_unconfirmed = kMaxInFlight;
  return c;
}

// Index of the record types that publish (spec §8.8 topics table), for the counter caches.
int type_index(std::string_view type) {
  if (type == "V") return 0;
  if (type == "alerts") return 1;
  if (type == "errors") return 2;
  if (type == "connectivity") return 3;
  return -1;
}

// One labelled counter family with the children of the common record types cached, so the hot
// path does not build a label vector per record. Children are created on first use only.
class TypeCounter {
 public:
  explicit TypeCounter(core::Family<core::Counter>& family) : family_(family) {}

  core::Counter& operator()(const std::string& type) {
    const int i = type_index(type);
    if (i < 0) return family_.with({type});
    core::Counter* c = cache_[static_cast<std::size_t>(i)].load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &family_.with({type});  // stable address (Family keeps children in a deque)
      cache_[static_cast<std::size_t>(i)].store(c, std::memory_order_release);
    }
    return *c;
  }

 private:
  core::Family<core::Counter>& family_;
  std::array<std::atomic<core::Counter*>, 4> cache_{};
};

}  // namespace

struct MqttDispatcher::State {
  MqttOptions opt;
  std::shared_ptr<spdlog::logger> log = ts::log::get("mqtt");
  MqttClient client;
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};

  TypeCounter publish_total;
  TypeCounter publish_bytes;
  TypeCounter err;
  TypeCounter skipped_datums;

  State(MqttOptions o, core::MetricsRegistry& m)
      : opt(std::move(o)),
        client(client_options(opt)),
        publish_total(m.counter("mqtt_publish_total",
                                "MQTT messages published (V, alerts, errors).", {"record_type"})),
        publish_bytes(m.counter("mqtt_publish_total_bytes", "Bytes of MQTT payloads published.",
                                {"record_type"})),
        err(m.counter("mqtt_err", "MQTT publish or encoding failures.", {"record_type"})),
        skipped_datums(m.counter("teslasync_mqtt_datums_without_value_total",
                                 "V datums without a Value, skipped (the reference crashes).",
                                 {"record_type"})) {}

  // Formats the record and hands its messages to the client as one batch, with the callback
  // `make_done(message_count)` returns. Returns false with `ok` set when nothing is left to wait
  // for; no callback is made then.
  template <class MakeDone>
  bool issue(const pipeline::Record& record, MakeDone&& make_done, bool& ok, std::size_t& count) {
    auto batch = pipeline::format_mqtt(
        record, {.topic_base = opt.topic_base,
                 .event_time_envelope = opt.event_time_envelope,
                 .record_message = opt.record_message});
    const std::string& type = record.tx_type;
    if (batch.datums_without_value > 0)
      skipped_datums(type).inc(static_cast<std::uint64_t>(batch.datums_without_value));
    if (batch.error == pipeline::MqttFormatError::UnsupportedType) {
      log->debug("mqtt_unknown_payload_type record_type={}", type);
      ok = false;
      return false;
    }
    if (batch.error == pipeline::MqttFormatError::NonFiniteNumber) {
      err(type).inc();
      log->debug("mqtt_process_payload_error vin={} txid={}: NaN or infinite value", record.vin,
                 record.txid);
      ok = false;
      return false;
    }
    ok = true;
    count = batch.messages.size();
    if (count == 0) return false;
    if (!client.connected()) {  // fail fast, before building the batch (spec §8.8 "not Connected")
      err(type).inc(count);
      log->debug("mqtt_publish_error: not connected; {} publishes of {} failed", count,
                 record.txid);
      ok = false;
      return false;
    }
    std::vector<MqttClient::Message> messages;
    messages.reserve(count);
    std::uint64_t bytes = 0;
    const auto qos = static_cast<std::uint8_t>(opt.qos);
    // MqttClient::Message owns its strings, so each topic is copied into an allocation of its
    // own here; a publish_batch that took the batch's single text buffer would avoid that.
    for (const auto& m : batch.messages) {
      bytes += m.payload.size();
      messages.push_back({std::string(m.topic), std::string(m.payload), qos, opt.retained});
    }
    if (record.type != wire::RecordType::Connectivity) {  // spec §8.8 "Metrics" 4
      publish_total(type).inc(count);
      publish_bytes(type).inc(bytes);
    }
    client.publish_batch(std::move(messages), make_done(count));
    return true;
  }
};

MqttDispatcher::MqttDispatcher(MqttOptions options, core::MetricsRegistry& metrics)
    : state_(std::make_shared<State>(std::move(options), metrics)) {
  // The client keeps its own statistics; they are read when /metrics is scraped.
  auto gauge = [&](const std::string& name, const char* help, auto read) {
    auto fn = [s = state_, read] { return static_cast<double>(read(s->client)); };
    if (name.ends_with("_total")) {
      metrics.callback_counter(name, help, fn);
    } else {
      metrics.callback_gauge(name, help, fn);
    }
  };
  gauge("teslasync_mqtt_connected", "1 while connected to the broker.",
        [](const MqttClient& c) { return c.connected() ? 1 : 0; });
  gauge("teslasync_mqtt_in_flight", "Publishes waiting for broker confirmation.",
        [](const MqttClient& c) { return c.unconfirmed(); });
  gauge("teslasync_mqtt_connects_total", "Successful broker connections.",
        [](const MqttClient& c) { return c.stats().connects.value(); });
  gauge("teslasync_mqtt_disconnects_total", "Broker connections lost.",
        [](const MqttClient& c) { return c.stats().disconnects.value(); });
  gauge("teslasync_mqtt_connect_failures_total", "Broker connection attempts that failed.",
        [](const MqttClient& c) { return c.stats().connect_failures.value(); });
  gauge("teslasync_mqtt_overload_rejected_total",
        "Records not published because too many publishes were unconfirmed.",
        [](const MqttClient& c) { return c.stats().overload_rejected.value(); });
  gauge("teslasync_mqtt_rejected_messages_total",
        "Messages never sent: invalid topic name or too large for MQTT.",
        [](const MqttClient& c) { return c.stats().rejected_messages.value(); });
  gauge("teslasync_mqtt_writes_total", "Socket writes to the broker (each carries many packets).",
        [](const MqttClient& c) { return c.stats().writes.value(); });
  gauge("teslasync_mqtt_written_bytes_total", "Bytes written to the broker connection.",
        [](const MqttClient& c) { return c.stats().bytes_written.value(); });
  gauge("teslasync_mqtt_written_messages_total", "PUBLISH packets written to the broker.",
        [](const MqttClient& c) { return c.stats().messages.value(); });
}

MqttDispatcher::~MqttDispatcher() { shutdown(std::chrono::milliseconds(0)); }

void MqttDispatcher::start() {
  if (!state_->started.exchange(true)) state_->client.start();
}

boost::asio::awaitable<bool> MqttDispatcher::dispatch(const pipeline::Record& record) {
  auto completion =
      std::make_shared<runtime::Completion>(co_await boost::asio::this_coro::executor);
  bool ok = false;
  std::size_t count = 0;
  auto make_done = [&completion](std::size_t) -> MqttClient::Callback {
    return [completion](bool done_ok) { completion->complete(done_ok); };
  };
  if (!state_->issue(record, make_done, ok, count)) co_return ok;
  auto result = co_await completion->wait(state_->opt.publish_timeout);
  if (result && *result) co_return true;
  // spec §8.8 "Delivery" 2: every publish of the record that was not confirmed counts.
  state_->err(record.tx_type).inc(count);
  state_->log->debug("mqtt_publish_error: {} publishes of record {} {}", count, record.txid,
                     result ? "failed" : "not confirmed within the publish timeout");
  co_return false;
}

void MqttDispatcher::dispatch_detached(const pipeline::Record& record) {
  bool ok = false;
  std::size_t count = 0;
  core::Counter* err = &state_->err(record.tx_type);
  auto make_done = [err](std::size_t n) -> MqttClient::Callback {
    return [err, n](bool done_ok) {
      if (!done_ok) err->inc(n);
    };
  };
  state_->issue(record, make_done, ok, count);
}

void MqttDispatcher::shutdown(std::chrono::milliseconds grace) {
  if (state_->stopped.exchange(true)) return;
  // Flush: give in-flight publishes up to `grace` (disconnect_timeout_ms) to be confirmed.
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (state_->client.unconfirmed() > 0 && state_->client.connected() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (state_->client.unconfirmed() > 0)
    state_->log->warn("{} publishes unconfirmed at shutdown", state_->client.unconfirmed());
  state_->client.stop();
}

bool MqttDispatcher::connected() const { return state_->client.connected(); }

std::size_t MqttDispatcher::in_flight() const { return state_->client.unconfirmed(); }

}  // namespace ts::dispatch
