#include "dispatch/mqtt/mqtt_dispatcher.hpp"

#include <mosquitto.h>

#include <boost/asio/this_coro.hpp>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/log.hpp"
#include "pipeline/mqtt_format.hpp"
#include "runtime/completion.hpp"

namespace ts::dispatch {
namespace {

// Beyond this many unconfirmed publishes the broker is not keeping up: new records fail fast
// (counted) instead of growing memory without bound.
constexpr std::size_t kMaxInFlight = 200'000;

std::once_flag g_lib_init;

}  // namespace

struct MqttDispatcher::State : std::enable_shared_from_this<MqttDispatcher::State> {
  // A record's publishes; completed when the last one is confirmed.
  struct Pending {
    std::shared_ptr<runtime::Completion> completion;  // null for fire-and-forget records
    std::vector<int> mids;
    int remaining = 0;
    bool failed = false;
    std::string record_type;
  };

  MqttOptions opt;
  mosquitto* mosq = nullptr;
  std::shared_ptr<spdlog::logger> log = ts::log::get("mqtt");

  mutable std::mutex mutex;  // guards by_mid
  std::unordered_map<int, std::shared_ptr<Pending>> by_mid;
  std::atomic<bool> connected{false};
  std::atomic<bool> ever_connected{false};
  std::atomic<std::size_t> in_flight{0};

  // The network thread: connects, reconnects with back-off, and drives libmosquitto.
  std::thread network;
  std::mutex stop_mutex;  // guards stopping (with stop_cv)
  std::condition_variable stop_cv;
  bool stopping = false;

  core::Family<core::Counter>& publish_total;
  core::Family<core::Counter>& publish_bytes;
  core::Family<core::Counter>& err;
  core::Counter& connects;
  core::Counter& disconnects;
  core::Counter& overload_rejected;
  core::Family<core::Counter>& skipped_datums;

  State(MqttOptions o, core::MetricsRegistry& m)
      : opt(std::move(o)),
        publish_total(m.counter("mqtt_publish_total", "MQTT messages published (V, alerts, errors).",
                                {"record_type"})),
        publish_bytes(m.counter("mqtt_publish_total_bytes", "Bytes of MQTT payloads published.",
                                {"record_type"})),
        err(m.counter("mqtt_err", "MQTT publish or encoding failures.", {"record_type"})),
        connects(m.counter("teslasync_mqtt_connects_total", "Successful broker connections.").get()),
        disconnects(
            m.counter("teslasync_mqtt_disconnects_total", "Broker connections lost.").get()),
        overload_rejected(m.counter("teslasync_mqtt_overload_rejected_total",
                                    "Records not published because too many publishes were "
                                    "unconfirmed.")
                              .get()),
        skipped_datums(m.counter("teslasync_mqtt_datums_without_value_total",
                                 "V datums without a Value, skipped (the reference crashes).",
                                 {"record_type"})) {}

  // libmosquitto callbacks run on its network thread.
  static void on_connect(mosquitto*, void* obj, int rc) {
    auto* s = static_cast<State*>(obj);
    if (rc == 0) {
      s->connected = true;
      s->ever_connected = true;
      s->connects.inc();
      s->log->info("connected to broker {}:{}", s->opt.host, s->opt.port);
    } else {
      s->log->warn("broker {}:{} refused the connection: {}", s->opt.host, s->opt.port,
                   mosquitto_connack_string(rc));
    }
  }

  static void on_disconnect(mosquitto*, void* obj, int rc) {
    auto* s = static_cast<State*>(obj);
    const bool was = s->connected.exchange(false);
    if (was && rc != 0) {
      s->disconnects.inc();
      s->log->warn("lost the broker connection ({}); reconnecting", mosquitto_strerror(rc));
    } else if (was) {
      s->log->info("disconnected from broker {}:{}", s->opt.host, s->opt.port);
    }
    s->fail_all_pending();
  }

  // Sleeps up to `d` unless shutdown begins; returns false when stopping.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mutex);
    return !stop_cv.wait_for(lock, d, [this] { return stopping; });
  }

  bool is_stopping() {
    std::lock_guard lock(stop_mutex);
    return stopping;
  }

  // libmosquitto's own loop_start gives up when the very first connection attempt fails; this
  // loop never does (spec §14.6: the reference exits when the broker is down at start-up).
  void run_network() {
    const std::chrono::milliseconds max_backoff =
        std::max(std::chrono::milliseconds(1000), opt.connect_retry_interval);
    std::chrono::milliseconds backoff(250);
    bool need_connect = true;
    bool first = true;
    int failures = 0;
    while (!is_stopping()) {
      if (need_connect) {
        int rc = first ? mosquitto_connect_async(mosq, opt.host.c_str(), opt.port,
                                                 opt.keep_alive_seconds)
                       : mosquitto_reconnect_async(mosq);
        first = false;
        if (rc != MOSQ_ERR_SUCCESS) {
          if (failures++ % 10 == 0)  // rate-limited: one line per ten attempts
            log->warn("broker {}:{} not reachable ({}); retrying every {} ms at most", opt.host,
                      opt.port,
                      rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc),
                      max_backoff.count());
          if (!pause(backoff)) break;
          backoff = std::min(backoff * 2, max_backoff);
          continue;
        }
        need_connect = false;
      }
      int rc = mosquitto_loop(mosq, 100, 1);
      if (rc == MOSQ_ERR_SUCCESS) {
        if (connected.load()) {
          backoff = std::chrono::milliseconds(250);
          failures = 0;
        }
        continue;
      }
      if (is_stopping()) break;
      if (!connected.load() && failures++ % 10 == 0)
        log->warn("broker {}:{} connection failed ({}); retrying", opt.host, opt.port,
                  rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc));
      fail_all_pending();
      if (!pause(backoff)) break;
      backoff = std::min(backoff * 2, max_backoff);
      need_connect = true;
    }
  }

  static void on_publish(mosquitto*, void* obj, int mid) {
    auto* s = static_cast<State*>(obj);
    std::shared_ptr<Pending> done;
    {
      std::lock_guard lock(s->mutex);
      auto it = s->by_mid.find(mid);
      if (it == s->by_mid.end()) return;  // timed out already
      auto p = std::move(it->second);
      s->by_mid.erase(it);
      s->in_flight.fetch_sub(1);
      if (--p->remaining == 0) done = std::move(p);
    }
    if (done && done->completion) done->completion->complete(!done->failed);
  }

  // Publishes that were queued when the connection dropped are gone (QoS 0) or will not be
  // confirmed in time: fail them now rather than at each timeout.
  void fail_all_pending() {
    std::vector<std::shared_ptr<Pending>> failed;
    {
      std::lock_guard lock(mutex);
      for (auto& [mid, p] : by_mid) {
        if (!p->failed) failed.push_back(p);
        p->failed = true;
        err.with({p->record_type}).inc();
      }
      in_flight.fetch_sub(by_mid.size());
      by_mid.clear();
    }
    for (auto& p : failed)
      if (p->completion) p->completion->complete(false);
  }

  // Issues every publish of a record. Returns the pending state, or null when nothing is left
  // to wait for (`ok` then tells the result).
  std::shared_ptr<Pending> issue(const pipeline::Record& record,
                                 std::shared_ptr<runtime::Completion> completion, bool& ok) {
    auto batch = pipeline::format_mqtt(record, opt.topic_base);
    const std::string& type = record.tx_type;
    if (batch.datums_without_value > 0)
      skipped_datums.with({type}).inc(static_cast<std::uint64_t>(batch.datums_without_value));
    if (batch.error == pipeline::MqttFormatError::UnsupportedType) {
      log->debug("mqtt_unknown_payload_type record_type={}", type);
      ok = false;
      return nullptr;
    }
    if (batch.error == pipeline::MqttFormatError::NonFiniteNumber) {
      err.with({type}).inc();
      log->debug("mqtt_process_payload_error vin={} txid={}: NaN or infinite value", record.vin,
                 record.txid);
      ok = false;
      return nullptr;
    }
    ok = true;
    if (batch.messages.empty()) return nullptr;
    if (!connected.load() || in_flight.load() > kMaxInFlight) {
      if (connected.load()) overload_rejected.inc();
      err.with({type}).inc(batch.messages.size());
      ok = false;
      return nullptr;
    }
    const bool counted = record.type != wire::RecordType::Connectivity;  // spec §8.8 "Metrics" 4
    auto p = std::make_shared<Pending>();
    p->completion = std::move(completion);
    p->record_type = type;
    p->mids.reserve(batch.messages.size());
    std::lock_guard lock(mutex);
    for (const auto& m : batch.messages) {
      int mid = 0;
      int rc = mosquitto_publish(mosq, &mid, m.topic.c_str(), static_cast<int>(m.payload.size()),
                                 m.payload.data(), opt.qos, opt.retained);
      if (rc != MOSQ_ERR_SUCCESS) {
        p->failed = true;
        err.with({type}).inc();
        continue;
      }
      if (counted) {
        publish_total.with({type}).inc();
        publish_bytes.with({type}).inc(m.payload.size());
      }
      p->mids.push_back(mid);
      by_mid[mid] = p;
      ++p->remaining;
      in_flight.fetch_add(1);
    }
    if (p->remaining == 0) {
      ok = !p->failed;
      return nullptr;
    }
    return p;
  }

  // The budget ran out (spec §8.8 "Delivery" 2): every unconfirmed publish counts as failed.
  void expire(const std::shared_ptr<Pending>& p) {
    std::lock_guard lock(mutex);
    for (int mid : p->mids) {
      auto it = by_mid.find(mid);
      if (it != by_mid.end() && it->second == p) {
        by_mid.erase(it);
        in_flight.fetch_sub(1);
        err.with({p->record_type}).inc();
        log->debug("mqtt_publish_error: publish {} not confirmed within {} ms", mid,
                   opt.publish_timeout.count());
      }
    }
    p->failed = true;
  }
};

MqttDispatcher::MqttDispatcher(MqttOptions options, core::MetricsRegistry& metrics)
    : state_(std::make_shared<State>(std::move(options), metrics)) {
  metrics.callback_gauge("teslasync_mqtt_connected", "1 while connected to the broker.",
                         [s = state_] { return s->connected.load() ? 1.0 : 0.0; });
  metrics.callback_gauge("teslasync_mqtt_in_flight", "Publishes waiting for broker confirmation.",
                         [s = state_] { return static_cast<double>(s->in_flight.load()); });
}

MqttDispatcher::~MqttDispatcher() {
  if (state_->mosq != nullptr) shutdown(std::chrono::milliseconds(0));
}

void MqttDispatcher::start() {
  std::call_once(g_lib_init, [] { mosquitto_lib_init(); });
  auto& o = state_->opt;
  const char* id = o.client_id.empty() ? nullptr : o.client_id.c_str();
  state_->mosq = mosquitto_new(id, /*clean_session=*/true, state_.get());
  if (state_->mosq == nullptr) throw std::runtime_error("mqtt: cannot create client");
  mosquitto* m = state_->mosq;
  mosquitto_threaded_set(m, true);  // publishes come from the shards, I/O from our thread
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);  // acks wait for the write: no Nagle delay
  mosquitto_max_inflight_messages_set(m, 1000);      // QoS 1/2 window
  mosquitto_connect_callback_set(m, &State::on_connect);
  mosquitto_disconnect_callback_set(m, &State::on_disconnect);
  mosquitto_publish_callback_set(m, &State::on_publish);
  if (!o.username.empty() &&
      mosquitto_username_pw_set(m, o.username.c_str(),
                                o.password.empty() ? nullptr : o.password.c_str()) != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("mqtt.username: rejected by libmosquitto");
  if (o.tls) {
    const char* ca = o.ca_file.empty() ? nullptr : o.ca_file.c_str();
    const char* capath = o.ca_file.empty() ? "/etc/ssl/certs" : nullptr;
    int rc = mosquitto_tls_set(m, ca, capath, o.cert_file.empty() ? nullptr : o.cert_file.c_str(),
                               o.key_file.empty() ? nullptr : o.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS)
      throw std::runtime_error(std::string("mqtt TLS files: ") + mosquitto_strerror(rc));
  }
  state_->network = std::thread([s = state_] { s->run_network(); });
}

boost::asio::awaitable<bool> MqttDispatcher::dispatch(const pipeline::Record& record) {
  auto completion =
      std::make_shared<runtime::Completion>(co_await boost::asio::this_coro::executor);
  bool ok = false;
  auto pending = state_->issue(record, completion, ok);
  if (!pending) co_return ok;
  auto result = co_await completion->wait(state_->opt.publish_timeout);
  if (!result) {
    state_->expire(pending);
    co_return false;
  }
  co_return *result;
}

void MqttDispatcher::dispatch_detached(const pipeline::Record& record) {
  bool ok = false;
  state_->issue(record, nullptr, ok);
}

void MqttDispatcher::shutdown(std::chrono::milliseconds grace) {
  if (state_->mosq == nullptr) return;
  // Flush: give in-flight publishes up to `grace` (disconnect_timeout_ms) to be confirmed.
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (state_->in_flight.load() > 0 && state_->connected.load() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (state_->in_flight.load() > 0)
    state_->log->warn("{} publishes unconfirmed at shutdown", state_->in_flight.load());
  {
    std::lock_guard lock(state_->stop_mutex);
    state_->stopping = true;
  }
  state_->stop_cv.notify_all();
  mosquitto_disconnect(state_->mosq);
  if (state_->network.joinable()) state_->network.join();
  mosquitto_destroy(state_->mosq);
  state_->mosq = nullptr;
}

bool MqttDispatcher::connected() const { return state_->connected.load(); }

std::size_t MqttDispatcher::in_flight() const { return state_->in_flight.load(); }

}  // namespace ts::dispatch
