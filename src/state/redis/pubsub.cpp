#include "state/redis/pubsub.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/log.hpp"
#include "state/redis/connection.hpp"
#include "state/redis/link_health.hpp"

namespace ts::state::redis {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::size_t kOriginLength = 16;
constexpr std::chrono::seconds kErrorLogInterval{10};

std::string make_origin() {
  std::random_device rd;
  const std::uint64_t id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return fmt::format("{:016x}", id);
}

bool is_origin(std::string_view s) {
  return s.size() == kOriginLength && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string_view str(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return {r->str, r->len};
}

struct Message {
  std::string channel;
  std::string data;  // "<origin> <payload>"
};

using HandlerMap = std::map<std::string, std::vector<PubSub::Handler>, std::less<>>;

}  // namespace

struct PubSub::Impl {
  Impl(RedisConfig c, PubSubOptions o, core::MetricsRegistry& metrics)
      : config(std::move(c)),
        options(o),
        origin(make_origin()),
        pub_health("publisher", config.describe(), metrics),
        sub_health("subscriber", config.describe(), metrics),
        published(metrics
                      .counter("teslasync_redis_pubsub_published_total",
                               "Messages published to Redis pub/sub (live events for other "
                               "replicas)")
                      .get()),
        dropped_family(metrics.counter(
            "teslasync_redis_pubsub_dropped_total",
            "Messages not published: Redis down, queue full, or connection lost in flight",
            {"reason"})),
        dropped_down(dropped_family.with({"down"})),
        dropped_full(dropped_family.with({"full"})),
        dropped_lost(dropped_family.with({"lost"})),
        received(metrics
                     .counter("teslasync_redis_pubsub_received_total",
                              "Messages received from Redis pub/sub and delivered to handlers")
                     .get()),
        handler_errors(metrics
                           .counter("teslasync_redis_pubsub_handler_errors_total",
                                    "Pub/sub handler calls that threw")
                           .get()),
        handlers(std::make_shared<const HandlerMap>()) {
    wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) throw std::system_error(errno, std::generic_category(), "PubSub: eventfd");
  }

  ~Impl() { ::close(wake_fd); }

  void wake_subscriber() {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
  }

  void clear_wake() {
    std::uint64_t value = 0;
    [[maybe_unused]] ssize_t n = ::read(wake_fd, &value, sizeof value);
  }

  bool is_stopping() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  // --- publisher thread ---

  void publisher_run() {
    Connection conn(config);
    auto backoff = kFirstBackoff;
    const auto consequence = "live events are not shared with other replicas (dropped)";
    while (!is_stopping()) {
      if (!conn.connected()) {
        if (conn.connect()) {
          pub_health.down(conn.error_text(), consequence);
          drop_queued();
          std::unique_lock lock(mutex);
          pub_wake.wait_for(lock, backoff, [&] { return stopping; });
          backoff = std::min(backoff * 2, std::max(options.max_backoff, kFirstBackoff));
          continue;
        }
        backoff = kFirstBackoff;
        pub_health.up("");
      }
      std::deque<Message> batch;
      {
        std::unique_lock lock(mutex);
        pub_wake.wait_for(lock, options.health_interval,
                          [&] { return stopping || !queue.empty(); });
        if (stopping) break;
        batch.swap(queue);
      }
      if (batch.empty()) {
        if (!conn.command({"PING"})) pub_health.down(conn.error_text(), consequence);
        continue;
      }
      for (const Message& m : batch) conn.append({"PUBLISH", m.channel, m.data});
      if (conn.flush()) {
        dropped_lost.inc(batch.size());
        pub_health.down(conn.error_text(), consequence);
        continue;
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto r = conn.read_reply();
        if (!r) {
          dropped_lost.inc(batch.size() - i);
          pub_health.down(conn.error_text(), consequence);
          break;
        }
        if (is_error(**r)) {
          dropped_lost.inc();
          log_error(fmt::format("PUBLISH to {} refused: {}", batch[i].channel, reply_text(**r)));
        } else {
          published.inc();
        }
      }
    }
    drop_queued();
  }

  void drop_queued() {
    std::lock_guard lock(mutex);
    dropped_down.inc(queue.size());
    queue.clear();
  }

  // --- subscriber thread ---

  void subscriber_run() {
    Connection conn(config);
    auto backoff = kFirstBackoff;
    const auto consequence = "live events from other replicas are not received";
    std::set<std::string, std::less<>> sent;  // channels SUBSCRIBE was sent for on `conn`
    Clock::time_point last_rx{}, ping_at{};
    bool ping_out = false;
    auto lost = [&](std::string why) {
      conn.close();
      confirmed.store(0);
      sub_health.down(why, consequence);
    };
    while (true) {
      std::shared_ptr<const HandlerMap> map;
      {
        std::lock_guard lock(mutex);
        if (stopping) break;
        map = handlers;
      }
      if (map->empty()) {
        wait_wake(options.health_interval);
        continue;
      }
      if (!conn.connected()) {
        sent.clear();
        confirmed.store(0);
        if (conn.connect()) {
          sub_health.down(conn.error_text(), consequence);
          wait_wake(backoff);
          backoff = std::min(backoff * 2, std::max(options.max_backoff, kFirstBackoff));
          continue;
        }
        backoff = kFirstBackoff;
        sub_health.up("");
        last_rx = Clock::now();
        ping_out = false;
      }
      std::vector<std::string_view> args{"SUBSCRIBE"};
      for (const auto& entry : *map) {
        if (!sent.contains(entry.first)) args.push_back(entry.first);
      }
      if (args.size() > 1) {
        conn.append(args);
        if (conn.flush()) {
          lost(conn.error_text());
          continue;
        }
        for (std::size_t i = 1; i < args.size(); ++i) sent.emplace(args[i]);
      }
      if (!drain_replies(conn, *map)) {
        lost(conn.error_text());
        continue;
      }
      pollfd fds[2] = {{conn.fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
      const int n = ::poll(fds, 2, static_cast<int>(options.health_interval.count()));
      if (n < 0 && errno != EINTR) {
        lost(fmt::format("poll: {}", std::strerror(errno)));
        continue;
      }
      if (fds[1].revents != 0) clear_wake();
      const auto now = Clock::now();
      if (fds[0].revents != 0) {
        if (conn.read_available() || !drain_replies(conn, *map)) {
          lost(conn.error_text());
          continue;
        }
        last_rx = now;
        ping_out = false;
      }
      // A dead peer that never closes the socket shows as silence: ask, and give up when the
      // answer does not come.
      if (!ping_out && now - last_rx >= options.health_interval) {
        conn.append({"PING"});
        if (conn.flush()) {
          lost(conn.error_text());
          continue;
        }
        ping_out = true;
        ping_at = now;
      } else if (ping_out &&
                 now - ping_at >= std::max(options.health_interval, config.command_timeout)) {
        lost("no answer to PING");
      }
    }
    conn.close();
  }

  void wait_wake(std::chrono::milliseconds d) {
    pollfd fd{wake_fd, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(d.count())) > 0) clear_wake();
  }

  /// Handles every reply already read. False when the connection broke.
  bool drain_replies(Connection& conn, const HandlerMap& map) {
    while (true) {
      auto r = conn.next_buffered_reply();
      if (!r) return false;
      if (!*r) return true;
      handle(**r, map);
    }
  }

  void handle(const redisReply& r, const HandlerMap& map) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements < 2) {
      if (is_error(r)) log_error(fmt::format("subscriber: {}", reply_text(r)));
      return;
    }
    const std::string_view kind = str(r.element[0]);
    if (kind == "message" && r.elements == 3) {
      deliver(map, str(r.element[1]), str(r.element[2]));
    } else if (kind == "subscribe" && r.elements == 3) {
      subscriptions.fetch_add(1, std::memory_order_relaxed);
      // The reply carries how many channels this connection is subscribed to now.
      const auto count = r.element[2]->type == REDIS_REPLY_INTEGER ? r.element[2]->integer : 0;
      confirmed.store(static_cast<std::size_t>(std::max<long long>(count, 0)));
    }
  }

  void deliver(const HandlerMap& map, std::string_view channel, std::string_view data) {
    std::string_view payload = data;
    if (data.size() > kOriginLength && data[kOriginLength] == ' ' &&
        is_origin(data.substr(0, kOriginLength))) {
      if (!options.deliver_own && data.substr(0, kOriginLength) == origin) return;
      payload = data.substr(kOriginLength + 1);
    }
    auto it = map.find(channel);
    if (it == map.end()) return;
    received.inc();
    for (const Handler& h : it->second) {
      try {
        h(channel, payload);
      } catch (const std::exception& e) {
        handler_errors.inc();
        log_error(fmt::format("handler for channel {} threw: {}", channel, e.what()));
      } catch (...) {
        handler_errors.inc();
        log_error(fmt::format("handler for channel {} threw", channel));
      }
    }
  }

  /// Rate-limited error log, from either thread.
  void log_error(const std::string& text) {
    const auto now = Clock::now().time_since_epoch().count();
    auto last = last_error_log.load(std::memory_order_relaxed);
    const auto interval = std::chrono::duration_cast<Clock::duration>(kErrorLogInterval).count();
    if (last != 0 && now - last < interval) return;
    if (!last_error_log.compare_exchange_strong(last, now)) return;
    log->error("[pubsub] {}", text);
  }

  const RedisConfig config;
  const PubSubOptions options;
  const std::string origin;
  std::shared_ptr<spdlog::logger> log = ts::log::get("redis");
  LinkHealth pub_health;
  LinkHealth sub_health;
  core::Counter& published;
  core::Family<core::Counter>& dropped_family;
  core::Counter& dropped_down;
  core::Counter& dropped_full;
  core::Counter& dropped_lost;
  core::Counter& received;
  core::Counter& handler_errors;
  std::atomic<std::uint64_t> subscriptions{0};
  std::atomic<std::size_t> confirmed{0};  // channels confirmed on the current connection
  std::atomic<Clock::rep> last_error_log{0};

  std::mutex mutex;  // guards queue, stopping, handlers
  std::condition_variable pub_wake;
  std::deque<Message> queue;
  bool stopping = false;
  std::shared_ptr<const HandlerMap> handlers;  // replaced, never changed in place
  int wake_fd = -1;                            // wakes the subscriber thread: stop, new channel

  std::thread publisher, subscriber;
  std::once_flag started, stopped;
};

PubSub::PubSub(RedisConfig config, PubSubOptions options, core::MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), options, metrics)) {}

PubSub::~PubSub() { stop(); }

void PubSub::subscribe(std::string channel, Handler handler) {
  {
    std::lock_guard lock(impl_->mutex);
    auto next = std::make_shared<HandlerMap>(*impl_->handlers);
    (*next)[std::move(channel)].push_back(std::move(handler));
    impl_->handlers = std::move(next);
  }
  impl_->wake_subscriber();
}

void PubSub::start() {
  std::call_once(impl_->started, [&] {
    impl_->publisher = std::thread([this] { impl_->publisher_run(); });
    impl_->subscriber = std::thread([this] { impl_->subscriber_run(); });
  });
}

void PubSub::stop() {
  std::call_once(impl_->stopped, [&] {
    {
      std::lock_guard lock(impl_->mutex);
      impl_->stopping = true;
    }
    impl_->pub_wake.notify_all();
    impl_->wake_subscriber();
    if (impl_->publisher.joinable()) impl_->publisher.join();
    if (impl_->subscriber.joinable()) impl_->subscriber.join();
  });
}

bool PubSub::publish(std::string_view channel, std::string_view payload) {
  Impl& p = *impl_;
  if (!p.pub_health.is_up()) {
    p.dropped_down.inc();
    return false;
  }
  Message m{std::string(channel), std::string()};
  m.data.reserve(kOriginLength + 1 + payload.size());
  m.data.append(p.origin).append(1, ' ').append(payload);
  {
    std::lock_guard lock(p.mutex);
    if (p.stopping) {
      p.dropped_down.inc();
      return false;
    }
    if (p.queue.size() >= p.options.max_queued) {
      p.dropped_full.inc();
      return false;
    }
    p.queue.push_back(std::move(m));
  }
  p.pub_wake.notify_one();
  return true;
}

bool PubSub::publisher_connected() const { return impl_->pub_health.is_up(); }

bool PubSub::subscribed() const {
  std::size_t channels = 0;
  {
    std::lock_guard lock(impl_->mutex);
    channels = impl_->handlers->size();
  }
  return channels != 0 && impl_->sub_health.is_up() && impl_->confirmed.load() >= channels;
}

const std::string& PubSub::origin() const { return impl_->origin; }

PubSubStats PubSub::stats() const {
  return {.published = impl_->published.value(),
          .dropped = impl_->dropped_down.value() + impl_->dropped_full.value() +
                     impl_->dropped_lost.value(),
          .received = impl_->received.value(),
          .subscriptions = impl_->subscriptions.load(),
          .handler_errors = impl_->handler_errors.value()};
}

}  // namespace ts::state::redis
