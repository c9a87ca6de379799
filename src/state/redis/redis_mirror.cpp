#include "state/redis/redis_mirror.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "core/log.hpp"
#include "state/redis/connection.hpp"
#include "state/redis/errc.hpp"
#include "state/redis/link_health.hpp"

namespace ts::state::redis {
namespace {

using signal::Signal;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::seconds kErrorLogInterval{10};

// KEYS[1]: the vehicle's hash. ARGV[1]: expiry in ms (0: none); ARGV[2]: the largest lead of an
// event time over its receive time that may become "latest" (µs); then per field: name, value,
// event time, receive time (µs). The rule is L1's (store.hpp): a field whose event time leads
// its receive time by more than ARGV[2] never lands; otherwise it lands only if the hash holds
// no value for that name, or an older event time, or a held value that breaks that same bound
// (written before the rule existed: it must not block current values). At the same event time
// the held value stays, as in L1 and signal_log (first stored wins). The held (ts, r) is read
// from the value's `{"ts":…,"r":…` prefix (codec.hpp); a value without that prefix is
// overwritten. Lua numbers are doubles: exact for µs timestamps until the year 2255.
// Returns {fields written, fields rejected (stale, same time or too far ahead)}.
constexpr std::string_view kWriteScript = R"lua(
local key = KEYS[1]
local skew = tonumber(ARGV[2])
local n = (#ARGV - 2) / 4
local names = {}
for i = 1, n do names[i] = ARGV[4 * i - 1] end
local held = redis.call('HMGET', key, unpack(names))
local set = {}
local stale = 0
for i = 1, n do
  local ts = tonumber(ARGV[4 * i + 1])
  local r = tonumber(ARGV[4 * i + 2])
  local newer = ts - r <= skew
  local old = held[i]
  if newer and old then
    local ots, ors = string.match(old, '^{"ts":(%-?%d+),"r":(%-?%d+)')
    if ots then
      ots = tonumber(ots)
      ors = tonumber(ors)
      newer = ts > ots or ots - ors > skew
    end
  end
  if newer then
    set[#set + 1] = names[i]
    set[#set + 1] = ARGV[4 * i]
  else
    stale = stale + 1
  end
end
if #set > 0 then
  redis.call('HSET', key, unpack(set))
  local ttl = tonumber(ARGV[1])
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
return {#set / 2, stale}
)lua";

/// Error replies worth retrying later: the server is busy, loading, read-only or out of memory
/// for now. Anything else (WRONGTYPE, script errors) would fail again.
bool transient(std::string_view error) {
  static constexpr std::array<std::string_view, 9> kTransient = {
      "LOADING",  "BUSY",        "OOM",        "READONLY", "MASTERDOWN",
      "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MISCONF"};
  return std::any_of(kTransient.begin(), kTransient.end(),
                     [&](std::string_view p) { return error.starts_with(p); });
}

/// Escapes glob characters for SCAN MATCH.
std::string glob_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string run_id_of(std::string_view info) {
  constexpr std::string_view kField = "run_id:";
  const auto pos = info.find(kField);
  if (pos == std::string_view::npos) return {};
  const auto start = pos + kField.size();
  const auto end = info.find_first_of("\r\n", start);
  return std::string(info.substr(start, end == std::string_view::npos ? end : end - start));
}

/// Lets one log line through per interval; mirror thread only.
class LogLimiter {
 public:
  bool allow() {
    const auto now = Clock::now();
    if (last_ != Clock::time_point{} && now - last_ < kErrorLogInterval) return false;
    last_ = now;
    return true;
  }

 private:
  Clock::time_point last_{};
};

}  // namespace

struct RedisMirror::Impl {
  Impl(RedisConfig c, RedisMirrorOptions o, core::MetricsRegistry& metrics)
      : config(std::move(c)),
        options(std::move(o)),
        health("mirror", config.describe(), metrics),
        pending_gauge(metrics
                          .gauge("teslasync_redis_mirror_pending",
                                 "Changes of the latest state waiting to be written to Redis "
                                 "(coalesced per vehicle and signal)")
                          .get()),
        written(metrics
                    .counter("teslasync_redis_mirror_written_total",
                             "Signal values written to Redis (L2)")
                    .get()),
        stale(metrics
                  .counter("teslasync_redis_mirror_stale_total",
                           "Signal values not written because Redis already held a newer one")
                  .get()),
        errors(metrics
                   .counter("teslasync_redis_mirror_errors_total",
                            "Signal values dropped on a Redis error reply that retrying cannot "
                            "fix (WRONGTYPE, script error)")
                   .get()),
        resyncs(metrics
                    .counter("teslasync_redis_mirror_resyncs_total",
                             "Full copies of the in-memory state into a Redis that restarted or "
                             "was not loaded from")
                    .get()),
        conn(config) {}

  // --- any thread ---

  std::size_t pending_now() const {
    return pending.signal_count() + in_flight.load(std::memory_order_relaxed);
  }

  void publish_pending() { pending_gauge.set(static_cast<double>(pending_now())); }

  void notify_work() {
    {
      std::lock_guard lock(mutex);
      work = true;
    }
    wake.notify_one();
  }

  // --- mirror thread ---

  void run() {
    auto backoff = kFirstBackoff;
    auto refused_backoff = kFirstBackoff;
    while (true) {
      {
        std::lock_guard lock(mutex);
        if (stopping && (!conn.connected() || pending_now() == 0 || Clock::now() >= deadline)) {
          break;
        }
      }
      if (!conn.connected()) {
        if (!connect()) {
          wait_for(backoff);
          backoff = std::min(backoff * 2, std::max(options.max_backoff, kFirstBackoff));
          continue;
        }
        backoff = kFirstBackoff;
      }
      std::vector<Signal> batch;
      {
        // Under the mutex, so that wait_idle never sees the batch in neither place.
        std::lock_guard lock(mutex);
        batch = pending.drain(options.max_batch_signals);
        in_flight.store(batch.size(), std::memory_order_relaxed);
      }
      if (batch.empty()) {
        notify_idle();
        if (!wait_for_work()) ping();
        continue;
      }
      const bool retry_later = !write(batch);
      in_flight.store(0, std::memory_order_relaxed);
      publish_pending();
      notify_idle();
      if (retry_later && conn.connected()) {
        // Redis refuses writes for now (loading, read-only replica, out of memory): back off.
        wait_for(refused_backoff);
        refused_backoff =
            std::min(refused_backoff * 2, std::max(options.max_backoff, kFirstBackoff));
      } else if (!retry_later) {
        refused_backoff = kFirstBackoff;
      }
    }
    conn.close();
    notify_idle();
  }

  void notify_idle() {
    { std::lock_guard lock(mutex); }  // a waiter is either before its check or blocked
    idle.notify_all();
  }

  /// Sleeps up to `d` unless stop() is called.
  void wait_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex);
    wake.wait_for(lock, d, [&] { return stopping; });
  }

  /// Waits for enqueue() or stop(), at most health_interval. False on timeout.
  bool wait_for_work() {
    std::unique_lock lock(mutex);
    const bool woken =
        wake.wait_for(lock, options.health_interval, [&] { return work || stopping; });
    work = false;
    return woken;
  }

  bool connect() {
    if (auto ec = conn.connect()) {
      health.down(conn.error_text(), down_consequence());
      return false;
    }
    auto loaded = conn.command({"SCRIPT", "LOAD", kWriteScript});
    auto info = loaded ? conn.command({"INFO", "server"}) : Result<Reply>(loaded.error());
    if (!loaded || !info || (*loaded)->type != REDIS_REPLY_STRING || is_error(**info)) {
      std::string why = conn.connected() ? "SCRIPT LOAD or INFO failed" : conn.error_text();
      if (loaded && is_error(**loaded)) why = fmt::format("SCRIPT LOAD: {}", reply_text(**loaded));
      conn.close();
      health.down(why, down_consequence());
      return false;
    }
    sha = std::string(reply_text(**loaded));
    const std::string run_id = run_id_of(reply_text(**info));
    std::string resynced;
    if (options.resync_from != nullptr) {
      std::string synced;
      {
        std::lock_guard lock(mutex);
        synced = synced_run_id;
      }
      if (run_id != synced || run_id.empty()) resynced = resync();
    }
    {
      std::lock_guard lock(mutex);
      synced_run_id = run_id;
    }
    const std::size_t n = pending_now();
    health.up(!resynced.empty() ? resynced
              : n != 0          ? fmt::format("writing {} pending changes", n)
                                : std::string());
    return true;
  }

  /// Copies L1 into the pending set; returns the log text.
  std::string resync() {
    std::size_t n = 0;
    std::vector<Signal> chunk;
    options.resync_from->for_each([&](const Signal& s) {
      chunk.push_back(s);
      if (chunk.size() >= 1024) {
        pending.load(chunk);
        n += chunk.size();
        chunk.clear();
      }
    });
    pending.load(chunk);
    n += chunk.size();
    resyncs.inc();
    publish_pending();
    return fmt::format(
        "it has not seen this process's state (restarted, or down at start-up): copying all "
        "{} signals of the in-memory state into it ({} pending in total)",
        n, pending_now());
  }

  std::string down_consequence() const {
    return fmt::format("the latest state stays in memory only (L1), {} changes pending",
                       pending_now());
  }

  void ping() {
    if (!conn.connected()) return;
    auto r = conn.command({"PING"});
    if (!r) health.down(conn.error_text(), down_consequence());
  }

  /// Writes one batch (whole vehicles, grouped). Puts back what did not land for a reason that
  /// may pass. False when the caller should back off before the next round.
  bool write(std::vector<Signal>& batch) {
    // All argument text lives in one arena; views are taken once it is complete.
    struct Field {
      std::size_t value_at, value_len, ts_at, ts_len, r_at, r_len;
    };
    std::string arena;
    std::vector<Field> fields(batch.size());
    std::vector<std::string> keys;
    struct Call {
      std::size_t begin, end, key;
    };
    std::vector<Call> calls;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Signal& s = batch[i];
      Field& f = fields[i];
      f.value_at = arena.size();
      append_value(arena, s);
      f.value_len = arena.size() - f.value_at;
      f.ts_at = arena.size();
      arena += std::to_string(s.ts);
      f.ts_len = arena.size() - f.ts_at;
      f.r_at = arena.size();
      arena += std::to_string(s.received_at);
      f.r_len = arena.size() - f.r_at;
      if (calls.empty() || batch[calls.back().begin].vin != s.vin ||
          calls.back().end - calls.back().begin >= options.max_fields_per_call) {
        if (calls.empty() || batch[calls.back().begin].vin != s.vin) {
          keys.push_back(vehicle_key(options.key_prefix, s.vin));
        }
        calls.push_back({i, i, keys.size() - 1});
      }
      calls.back().end = i + 1;
    }
    const std::string ttl = std::to_string(options.ttl.count());
    const std::string skew = std::to_string(options.max_future_skew.count());
    std::vector<std::string_view> args;
    for (const Call& c : calls) {
      args.clear();
      args.reserve(6 + 4 * (c.end - c.begin));
      args.push_back("EVALSHA");
      args.push_back(sha);
      args.push_back("1");
      args.push_back(keys[c.key]);
      args.push_back(ttl);
      args.push_back(skew);
      for (std::size_t i = c.begin; i < c.end; ++i) {
        const Field& f = fields[i];
        args.push_back(batch[i].name);
        args.emplace_back(arena.data() + f.value_at, f.value_len);
        args.emplace_back(arena.data() + f.ts_at, f.ts_len);
        args.emplace_back(arena.data() + f.r_at, f.r_len);
      }
      conn.append(args);
    }
    auto put_back = [&](const Call& c) {
      pending.load(std::span<const Signal>(batch.data() + c.begin, c.end - c.begin));
    };
    if (conn.flush()) {
      for (const Call& c : calls) put_back(c);
      health.down(conn.error_text(), down_consequence());
      return true;
    }
    bool reload = false, back_off = false;
    for (std::size_t k = 0; k < calls.size(); ++k) {
      const Call& c = calls[k];
      auto reply = conn.read_reply();
      if (!reply) {
        for (std::size_t j = k; j < calls.size(); ++j) put_back(calls[j]);
        health.down(conn.error_text(), down_consequence());
        return true;
      }
      const redisReply& r = **reply;
      if (is_error(r)) {
        const std::string_view text = reply_text(r);
        if (text.starts_with("NOSCRIPT")) {
          reload = true;
          put_back(c);
        } else if (transient(text)) {
          back_off = true;
          put_back(c);
          if (error_log.allow()) {
            log->warn("[mirror] Redis is refusing writes for now ({}); retrying", text);
          }
        } else {
          errors.inc(c.end - c.begin);
          if (error_log.allow()) {
            log->error("[mirror] Redis rejected the write of {} signals of vehicle {}: {}",
                       c.end - c.begin, batch[c.begin].vin, text);
          }
        }
        continue;
      }
      if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
          r.element[0]->type != REDIS_REPLY_INTEGER || r.element[1]->type != REDIS_REPLY_INTEGER) {
        errors.inc(c.end - c.begin);
        if (error_log.allow()) log->error("[mirror] unexpected reply to the write script");
        continue;
      }
      written.inc(static_cast<std::uint64_t>(r.element[0]->integer));
      stale.inc(static_cast<std::uint64_t>(r.element[1]->integer));
    }
    if (reload) {
      auto loaded = conn.command({"SCRIPT", "LOAD", kWriteScript});
      if (!loaded || is_error(**loaded)) {
        if (loaded) conn.close();
        health.down(loaded ? std::string(reply_text(**loaded)) : conn.error_text(),
                    down_consequence());
        return true;
      }
      sha = std::string(reply_text(**loaded));
    }
    return !back_off;
  }

  const RedisConfig config;
  const RedisMirrorOptions options;
  std::shared_ptr<spdlog::logger> log = ts::log::get("redis");
  LinkHealth health;
  core::Gauge& pending_gauge;
  core::Counter& written;
  core::Counter& stale;
  core::Counter& errors;
  core::Counter& resyncs;

  // Coalesces by the store's rule, with L1's bound on future times; thread-safe itself.
  Store pending{4, options.max_future_skew};
  std::atomic<std::size_t> in_flight{0};

  mutable std::mutex mutex;              // guards stopping, work, deadline, synced_run_id
  std::condition_variable wake;          // the thread waits for work or stop
  mutable std::condition_variable idle;  // wait_idle waits for the end of a round
  bool stopping = false;
  bool work = false;
  Clock::time_point deadline{};
  std::string synced_run_id;

  // mirror thread only (and load_all before start)
  Connection conn;
  std::string sha;
  LogLimiter error_log;

  std::thread thread;
  std::once_flag started, stopped;
};

RedisMirror::RedisMirror(RedisConfig config, RedisMirrorOptions options,
                         core::MetricsRegistry& metrics) {
  if (options.max_batch_signals == 0 || options.max_fields_per_call == 0 ||
      options.max_fields_per_call > 1000) {
    throw std::invalid_argument(
        "RedisMirror: max_batch_signals must be > 0 and max_fields_per_call in 1..1000");
  }
  if (options.ttl.count() < 0) throw std::invalid_argument("RedisMirror: ttl must be >= 0");
  impl_ = std::make_unique<Impl>(std::move(config), std::move(options), metrics);
}

RedisMirror::~RedisMirror() { stop(); }

Result<std::vector<Signal>> RedisMirror::load_all() { return read(true); }

Result<std::vector<Signal>> RedisMirror::read_all() { return read(false); }

Result<std::vector<Signal>> RedisMirror::read(bool mark_synced) {
  Impl& m = *impl_;
  Connection c(m.config);
  auto fail = [&](boost::system::error_code ec, std::string_view why) {
    m.log->warn("[mirror] cannot load the latest state from Redis {}: {}", m.config.describe(),
                why);
    return ec;
  };
  if (auto ec = c.connect()) return fail(ec, c.error_text());
  auto info = c.command({"INFO", "server"});
  if (!info) return fail(info.error(), c.error_text());
  if (is_error(**info)) return fail(errc::server_error, reply_text(**info));
  const std::string run_id = run_id_of(reply_text(**info));

  const std::string pattern = glob_escape(m.options.key_prefix) + "vehicle:*:signals";
  std::vector<Signal> out;
  std::size_t keys = 0, bad = 0;
  std::string cursor = "0";
  do {
    auto scan = c.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!scan) return fail(scan.error(), c.error_text());
    const redisReply& s = **scan;
    if (s.type != REDIS_REPLY_ARRAY || s.elements != 2 ||
        s.element[0]->type != REDIS_REPLY_STRING || s.element[1]->type != REDIS_REPLY_ARRAY) {
      return fail(errc::bad_reply, is_error(s) ? reply_text(s) : "unexpected SCAN reply");
    }
    cursor.assign(s.element[0]->str, s.element[0]->len);
    const redisReply& found = *s.element[1];
    std::vector<std::string_view> vins;
    for (std::size_t i = 0; i < found.elements; ++i) {
      std::string_view key(found.element[i]->str, found.element[i]->len);
      auto vin = vin_of_key(m.options.key_prefix, key);
      if (!vin) continue;
      vins.push_back(*vin);
      c.append({"HGETALL", key});
    }
    for (std::string_view vin : vins) {
      auto all = c.read_reply();
      if (!all) return fail(all.error(), c.error_text());
      const redisReply& h = **all;
      if (h.type != REDIS_REPLY_ARRAY) {
        if (is_error(h)) ++bad;  // e.g. WRONGTYPE: not our hash
        continue;
      }
      ++keys;
      for (std::size_t i = 0; i + 1 < h.elements; i += 2) {
        std::string_view name(h.element[i]->str, h.element[i]->len);
        std::string_view value(h.element[i + 1]->str, h.element[i + 1]->len);
        auto decoded = decode_value(vin, name, value);
        if (decoded) {
          out.push_back(std::move(*decoded));
        } else {
          ++bad;
        }
      }
    }
  } while (cursor != "0");
  if (mark_synced) {
    std::lock_guard lock(m.mutex);
    m.synced_run_id = run_id;
  }
  m.log->info("[mirror] loaded {} signals of {} vehicles from Redis {}{}", out.size(), keys,
              m.config.describe(),
              bad ? fmt::format(" ({} unreadable fields skipped)", bad) : std::string());
  return out;
}

void RedisMirror::start() {
  std::call_once(impl_->started, [&] { impl_->thread = std::thread([this] { impl_->run(); }); });
}

void RedisMirror::stop(std::chrono::milliseconds grace) {
  std::call_once(impl_->stopped, [&] {
    {
      std::lock_guard lock(impl_->mutex);
      impl_->stopping = true;
      impl_->deadline = Clock::now() + grace;
    }
    impl_->wake.notify_all();
    if (impl_->thread.joinable()) impl_->thread.join();
  });
}

void RedisMirror::enqueue(const Signal& s) {
  impl_->pending.apply(s);
  impl_->publish_pending();
  impl_->notify_work();
}

void RedisMirror::enqueue(std::span<const Signal> signals) {
  if (signals.empty()) return;
  impl_->pending.apply_batch(signals);
  impl_->publish_pending();
  impl_->notify_work();
}

std::size_t RedisMirror::pending() const { return impl_->pending_now(); }

bool RedisMirror::connected() const { return impl_->health.is_up(); }

bool RedisMirror::wait_idle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->idle.wait_for(lock, timeout, [&] { return impl_->pending_now() == 0; });
}

RedisMirrorStats RedisMirror::stats() const {
  return {.written = impl_->written.value(),
          .stale = impl_->stale.value(),
          .errors = impl_->errors.value(),
          .resyncs = impl_->resyncs.value(),
          .connects = impl_->health.connects(),
          .connect_failures = impl_->health.connect_failures()};
}

}  // namespace ts::state::redis
