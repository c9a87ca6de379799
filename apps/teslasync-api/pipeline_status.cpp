#include "pipeline_status.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "signal/signal.hpp"
#include "views.hpp"

namespace ts::api {
namespace {

struct Stage {
  std::string name;
  Health health = Health::Ok;
  std::string reason;
  std::string metrics;  // JSON object members, without braces
};

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{:.3f}", v);
}
std::string opt(const std::optional<double>& v) { return v ? num(*v) : "null"; }
const char* boolean(bool b) { return b ? "true" : "false"; }

Stage mqtt_stage(const PipelineSnapshot& s) {
  Stage st{.name = "mqtt"};
  st.metrics = fmt::format(
      "\"broker\":{},\"connected\":{},\"subscribed\":{},\"reconnects\":{},"
      "\"messages_total\":{},\"messages_per_second\":{},\"last_message_age_seconds\":{}",
      [&] {
        std::string q;
        append_json_string(q, s.mqtt_broker);
        return q;
      }(),
      boolean(s.mqtt_connected), boolean(s.mqtt_subscribed), s.mqtt_reconnects, s.messages_total,
      num(s.messages_per_second), opt(s.last_message_age_seconds));
  if (!s.telemetry_enabled) {
    st.health = Health::Disabled;
    st.reason = "FLEET_TELEMETRY_ENABLED is false: polling is the only source";
  } else if (!s.mqtt_connected) {
    st.health = Health::Down;
    st.reason = "not connected to the broker (retrying)";
  } else if (!s.mqtt_subscribed) {
    st.health = Health::Degraded;
    st.reason = "connected but the subscription is not confirmed";
  } else if (s.registered_vehicles > 0 &&
             (!s.last_message_age_seconds ||
              *s.last_message_age_seconds * 1000 > static_cast<double>(s.stale_timeout.count()))) {
    st.health = Health::Degraded;
    st.reason = "subscribed, but no message for longer than the stale timeout";
  }
  return st;
}

Stage decode_stage(const PipelineSnapshot& s) {
  Stage st{.name = "decode"};
  st.metrics = fmt::format(
      "\"decode_failures\":{},\"unregistered_vin\":{},\"dead_letters\":{},"
      "\"dead_letters_recent\":{}",
      s.decode_failures, s.unregistered, s.dead_letters, num(s.dead_letters_recent));
  if (s.dead_letters_recent > 0) {
    st.health = Health::Degraded;
    st.reason = "recent messages went to the dead letters (GET /api/v1/dead-letters)";
  }
  return st;
}

Stage l1_stage(const PipelineSnapshot& s) {
  return {.name = "l1",
          .metrics = fmt::format("\"vehicles\":{},\"signals\":{}", s.l1_vehicles, s.l1_signals)};
}

Stage redis_stage(const PipelineSnapshot& s) {
  Stage st{.name = "redis"};
  st.metrics = fmt::format("\"configured\":{},\"up\":{},\"pending\":{},\"errors\":{}",
                           boolean(s.redis_configured), boolean(s.redis_up), s.redis_pending,
                           s.redis_errors);
  if (!s.redis_configured) {
    st.health = Health::Disabled;
    st.reason = "REDIS_URL is not set: L1 only";
  } else if (!s.redis_up) {
    st.health = Health::Degraded;
    st.reason = "Redis is unreachable: serving from L1, the mirror catches up when it returns";
  }
  return st;
}

Stage storage_stage(const PipelineSnapshot& s) {
  Stage st{.name = "signal_log"};
  st.metrics = fmt::format(
      "\"database\":\"{}\",\"queue_batches\":{},\"queue_capacity\":{},\"queue_messages\":{},"
      "\"append_rate_per_second\":{},\"write_failures\":{},\"paused\":{},"
      "\"last_write_age_seconds\":{},\"rejected_messages\":{}",
      s.database, s.queue_batches, s.queue_capacity, s.queue_messages, num(s.append_rate),
      s.write_failures, boolean(s.paused), opt(s.last_write_age_seconds), s.rejected_messages);
  if (!s.writer_problem.empty()) {
    st.health = Health::Down;
    st.reason = s.writer_problem + " (ingest holds acknowledgements until it succeeds)";
  } else if (s.write_failures_recent > 0 && s.append_rate == 0) {
    st.health = Health::Down;
    st.reason = "writes are failing: ingest holds acknowledgements and retries";
  } else if (s.paused) {
    st.health = Health::Degraded;
    st.reason = "the writer is behind: MQTT intake is paused (back-pressure)";
  } else if (s.rejected_recent > 0) {
    st.health = Health::Degraded;
    st.reason = "the database refused some messages: they were kept as dead letters and the rest "
                "was stored";
  } else if (s.write_failures_recent > 0) {
    st.health = Health::Degraded;
    st.reason = "some writes failed recently and were retried";
  }
  return st;
}

Stage sse_stage(const PipelineSnapshot& s) {
  return {.name = "sse",
          .metrics = fmt::format("\"clients\":{},\"events_per_second\":{},\"slow_disconnects\":{}",
                                 s.sse_clients, num(s.sse_events_per_second),
                                 s.sse_slow_disconnects)};
}

Stage polling_stage(const PipelineSnapshot& s) {
  Stage st{.name = "polling"};
  st.metrics = fmt::format(
      "\"configured\":{},\"vehicles_polling\":{},\"polls\":{},\"failed\":{},\"asleep\":{},"
      "\"rate_limited\":{},\"last_poll_age_seconds\":{}",
      boolean(s.polling_configured), s.polling_vehicles, s.polls, s.polls_failed, s.polls_asleep,
      s.polls_rate_limited, opt(s.last_poll_age_seconds));
  if (!s.polling_configured) {
    st.health = Health::Disabled;
    st.reason = "TESLA_FLEET_API_BASE_URL is not set: no Fleet API fallback";
  } else if (s.polls > 0 && s.polls_failed == s.polls) {
    st.health = Health::Degraded;
    st.reason = "every poll failed so far";
  }
  return st;
}

}  // namespace

std::string_view to_string(Health h) noexcept {
  switch (h) {
    case Health::Ok: return "ok";
    case Health::Degraded: return "degraded";
    case Health::Down: return "down";
    case Health::Disabled: return "disabled";
  }
  return "unknown";
}

void RateMeter::sample(double value, std::int64_t now_us) {
  std::lock_guard lock(mutex_);
  samples_.emplace_back(now_us, value);
  const std::int64_t horizon = now_us - std::chrono::microseconds(window_).count();
  while (samples_.size() > 2 && samples_[1].first <= horizon) samples_.pop_front();
}

double RateMeter::increase() const {
  std::lock_guard lock(mutex_);
  if (samples_.size() < 2) return 0;
  return samples_.back().second - samples_.front().second;
}

double RateMeter::rate() const {
  std::lock_guard lock(mutex_);
  if (samples_.size() < 2) return 0;
  const double seconds = (samples_.back().first - samples_.front().first) / 1e6;
  return seconds > 0 ? (samples_.back().second - samples_.front().second) / seconds : 0;
}

std::string evaluate(const PipelineSnapshot& s) {
  std::vector<Stage> stages = {mqtt_stage(s),    decode_stage(s), l1_stage(s),     redis_stage(s),
                               storage_stage(s), sse_stage(s),    polling_stage(s)};
  Health overall = Health::Ok;
  for (const auto& st : stages) {
    if (st.health == Health::Down) overall = Health::Down;
    if (st.health == Health::Degraded && overall == Health::Ok) overall = Health::Degraded;
  }
  std::string out = "{\"generated_at\":\"" + signal::format_time(s.now_us) + "\",\"health\":\"" +
                    std::string(to_string(overall)) + "\",\"stages\":[";
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto& st = stages[i];
    if (i) out += ',';
    out += "{\"stage\":\"" + st.name + "\",\"health\":\"" + std::string(to_string(st.health)) +
           "\",\"reason\":";
    append_json_string(out, st.reason);
    out += ",\"metrics\":{" + st.metrics + "}}";
  }
  out += "]}";
  return out;
}

}  // namespace ts::api
