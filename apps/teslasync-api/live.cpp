#include "live.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <map>

#include "core/log.hpp"
#include "views.hpp"

namespace ts::api {

Live::Live(state::Store& store, state::redis::RedisMirror* mirror,
           std::shared_ptr<http::EventHub> hub, state::redis::PubSub* bus,
           std::chrono::milliseconds update_interval)
    : store_(store),
      mirror_(mirror),
      hub_(std::move(hub)),
      bus_(bus),
      update_interval_(update_interval) {}

Live::~Live() { stop(); }

void Live::start() {
  if (bus_) {
    bus_->subscribe(std::string(kEventsChannel),
                    [this](std::string_view, std::string_view payload) { on_bus_message(payload); });
  }
  coalescer_ = std::thread([this] { coalescer_loop(); });
}

void Live::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (coalescer_.joinable()) coalescer_.join();
}

void Live::publish(http::Event event, bool to_bus) { publish(std::span<http::Event>(&event, 1), to_bus); }

void Live::publish(std::span<http::Event> events, bool to_bus) {
  if (to_bus && bus_) {
    // One line each for type and key, then the data (which may hold newlines).
    for (const auto& e : events) bus_->publish(kEventsChannel, e.type + '\n' + e.key + '\n' + e.data);
  }
  hub_->publish(events);
}

void Live::apply(std::span<const signal::Signal> signals, bool mirror) {
  if (signals.empty()) return;
  auto applied = store_.apply_batch(signals);
  // Per-thread scratch (the subscriber and the poller call this): a record's worth of events
  // would otherwise be a fresh kilobyte-sized allocation per message.
  thread_local std::vector<http::Event> events;
  events.clear();
  for (std::size_t i = 0; i < signals.size(); ++i) {
    if (applied[i] != state::Applied::Newer) continue;
    const auto& s = signals[i];
    if (mirror && mirror_) mirror_->enqueue(s);
    events.push_back({.type = "signal_change", .data = signal_change_json(s), .key = s.vin});
  }
  if (events.empty()) return;
  publish(events, mirror);
  std::lock_guard lock(mutex_);
  // A record's signals share their VIN: look the vehicle up once per run of it.
  std::vector<signal::Signal>* changes = nullptr;
  const std::string* vin = nullptr;
  for (std::size_t i = 0; i < signals.size(); ++i) {
    if (applied[i] != state::Applied::Newer) continue;
    const auto& s = signals[i];
    if (!vin || *vin != s.vin) {
      changes = &dirty_[s.vin];
      vin = &s.vin;
    }
    changes->push_back({.name = s.name,
                        .ts = s.ts,
                        .received_at = s.received_at,
                        .source = s.source,
                        .value = s.value});
  }
}

void Live::observe(const storage::Batch& records) {
  apply(records.signals, true);
  for (const auto& a : records.alerts) {
    publish({.type = "alert", .data = alert_json(a), .key = a.vin}, true);
  }
  for (const auto& c : records.connectivity) {
    publish({.type = "connectivity", .data = connectivity_json(c), .key = c.vin}, true);
  }
}

void Live::apply_polled(std::span<const signal::Signal> signals) { apply(signals, true); }

void Live::on_bus_message(std::string_view payload) {
  auto nl1 = payload.find('\n');
  if (nl1 == std::string_view::npos) return;
  auto nl2 = payload.find('\n', nl1 + 1);
  if (nl2 == std::string_view::npos) return;
  if (payload.substr(0, nl1) == kL2SyncedEvent) {
    l2_refresh_requested_.store(true);
    return;
  }
  http::Event event{.type = std::string(payload.substr(0, nl1)),
                    .data = std::string(payload.substr(nl2 + 1)),
                    .key = std::string(payload.substr(nl1 + 1, nl2 - nl1 - 1))};
  if (event.type == "signal_change") {
    // Keep this replica's L1 in step (the origin wrote Redis already).
    boost::system::error_code ec;
    auto doc = boost::json::parse(event.data, ec);
    if (!ec && doc.is_object()) {
      const auto& o = doc.as_object();
      auto str = [&o](const char* k) -> std::string {
        const auto* v = o.if_contains(k);
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
      };
      auto kind = signal::parse_kind_name(str("kind"));
      auto ts = signal::parse_time(str("ts"));
      auto received = signal::parse_time(str("received_at"));
      const auto* value = o.if_contains("value");
      if (kind && ts && received && value) {
        auto decoded = signal::decode_json_value(str("name"), boost::json::serialize(*value));
        if (decoded) {
          signal::Signal s{.vin = str("vin"),
                           .name = str("name"),
                           .ts = *ts,
                           .received_at = *received,
                           .source = signal::parse_source_name(str("source")).value_or(signal::Source::Stream),
                           .value = std::move(*decoded)};
          store_.apply(s);
        }
      }
    }
  }
  hub_->publish(std::move(event));
}

void Live::coalescer_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    cv_.wait_for(lock, update_interval_, [this] { return stopping_; });
    if (mirror_ && bus_ && !stopping_) {
      lock.unlock();
      sync_with_l2();
      lock.lock();
    }
    if (dirty_.empty()) continue;
    auto dirty = std::move(dirty_);
    dirty_.clear();
    lock.unlock();
    for (auto& [vin, changes] : dirty) {
      // One entry per signal, the last applied (the newest), in name order.
      std::stable_sort(changes.begin(), changes.end(),
                       [](const auto& a, const auto& b) { return a.name < b.name; });
      std::vector<signal::Signal> latest;
      latest.reserve(changes.size());
      for (std::size_t i = 0; i < changes.size(); ++i) {
        if (i + 1 < changes.size() && changes[i + 1].name == changes[i].name) continue;
        latest.push_back(std::move(changes[i]));
      }
      publish({.type = "vehicle_update", .data = vehicle_update_json(vin, latest), .key = vin},
              true);
    }
    lock.lock();
  }
}

void Live::sync_with_l2() {
  // Our subscription to the bus was established (again): we missed what was sent meanwhile.
  const auto subscriptions = bus_->stats().subscriptions;
  if (subscriptions != seen_subscriptions_) {
    seen_subscriptions_ = subscriptions;
    l2_refresh_due_ = true;
  }
  if (l2_refresh_requested_.exchange(false)) l2_refresh_due_ = true;
  // While the bus is down, so is Redis, most likely: the next subscription brings us back here.
  if (l2_refresh_due_ && bus_->subscribed()) refresh_from_l2();

  // Our mirror (re)connected after an outage, or copied L1 into a Redis it had not synced with:
  // once its backlog is written, the other replicas can read what they missed from L2.
  const auto stats = mirror_->stats();
  if (stats.connects != seen_mirror_connects_) {
    if (seen_mirror_connects_ > 0 || stats.resyncs > 0) l2_announce_due_ = true;
    seen_mirror_connects_ = stats.connects;
  }
  if (l2_announce_due_ && mirror_->connected() && mirror_->pending() == 0 &&
      bus_->publish(kEventsChannel, std::string(kL2SyncedEvent) + "\n\n")) {
    l2_announce_due_ = false;
  }
}

void Live::refresh_from_l2() {
  auto loaded = mirror_->read_all();
  if (!loaded) return;  // logged by the mirror; tried again on the next round
  l2_refresh_due_ = false;
  auto applied = store_.apply_batch(*loaded);
  // What changed goes to this replica's SSE clients only: the origin published it already, or
  // its events were lost on the bus for every replica alike.
  std::map<std::string, std::vector<signal::Signal>> changed;
  std::size_t newer = 0;
  for (std::size_t i = 0; i < loaded->size(); ++i) {
    if (applied[i] != state::Applied::Newer) continue;
    const auto& s = (*loaded)[i];
    publish({.type = "signal_change", .data = signal_change_json(s), .key = s.vin}, false);
    changed[s.vin].push_back(s);
    ++newer;
  }
  for (const auto& [vin, signals] : changed) {
    publish({.type = "vehicle_update", .data = vehicle_update_json(vin, signals), .key = vin},
            false);
  }
  if (newer > 0) {
    log::get("redis")->info("caught up from Redis: {} newer signals of {} vehicles", newer,
                            changed.size());
  }
}

std::vector<http::Event> Live::snapshot(std::string_view vin) const {
  std::string data = "{\"vehicles\":[";
  bool first = true;
  auto add = [&](const std::string& v) {
    if (!first) data += ',';
    first = false;
    data += vehicle_state_json(v, store_.snapshot(v));
  };
  if (vin.empty()) {
    for (const auto& v : store_.vins()) add(v);
  } else {
    add(std::string(vin));
  }
  data += "]}";
  return {http::Event{.type = "snapshot", .data = std::move(data), .key = std::string(vin)}};
}

}  // namespace ts::api
