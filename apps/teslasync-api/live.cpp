#include "live.hpp"

#include <boost/json.hpp>

#include "views.hpp"

namespace ts::api {

Live::Live(state::Store& store, state::Mirror* mirror, std::shared_ptr<http::EventHub> hub,
           state::redis::PubSub* bus, std::chrono::milliseconds update_interval)
    : store_(store), mirror_(mirror), hub_(std::move(hub)), bus_(bus),
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
  std::vector<const signal::Signal*> changed;
  for (std::size_t i = 0; i < signals.size(); ++i) {
    if (applied[i] == state::Applied::Newer) changed.push_back(&signals[i]);
  }
  if (changed.empty()) return;
  std::vector<http::Event> events;
  events.reserve(changed.size());
  for (const auto* s : changed) {
    if (mirror && mirror_) mirror_->enqueue(*s);
    events.push_back({.type = "signal_change", .data = signal_change_json(*s), .key = s->vin});
  }
  publish(events, mirror);
  {
    std::lock_guard lock(mutex_);
    for (const auto* s : changed) dirty_[s->vin][s->name] = *s;
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
    if (dirty_.empty()) continue;
    auto dirty = std::move(dirty_);
    dirty_.clear();
    lock.unlock();
    for (auto& [vin, by_name] : dirty) {
      std::vector<signal::Signal> changed;
      changed.reserve(by_name.size());
      for (auto& [name, s] : by_name) changed.push_back(std::move(s));
      publish({.type = "vehicle_update", .data = vehicle_update_json(vin, changed), .key = vin},
              true);
    }
    lock.lock();
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
