#include "http/sse.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_map>

#include "core/log.hpp"

namespace ts::http {

namespace asio = boost::asio;

namespace {

// At most this many events per drain run, so the shard's stream writers get to run between
// batches (a burst from the publisher is then written out in pieces instead of piling up in
// every client's queue at once).
constexpr std::size_t kDrainBatch = 64;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const void* context_of(const asio::any_io_executor& ex) {
  return &asio::query(ex, asio::execution::context);
}

/// "id: <id>\n" into `buf`; returns its length.
std::size_t format_id_line(char (&buf)[32], std::uint64_t id) {
  std::memcpy(buf, "id: ", 4);
  auto [end, ec] = std::to_chars(buf + 4, buf + sizeof buf - 1, id);
  (void)ec;
  *end++ = '\n';
  return static_cast<std::size_t>(end - buf);
}

bool is_line_end(char c) { return c == '\n' || c == '\r'; }

}  // namespace

void append_event(std::string& out, const Event& event) {
  if (!event.type.empty()) {
    out += "event: ";
    const std::size_t at = out.size();
    out += event.type;
    for (std::size_t i = at; i < out.size(); ++i)
      if (is_line_end(out[i])) out[i] = ' ';
    out += '\n';
  }
  // WHATWG SSE: CRLF, CR and LF all end a line; each line is its own `data:` field and the
  // browser joins them with LF.
  const char* p = event.data.data();
  const char* const end = p + event.data.size();
  for (;;) {
    const char* eol = std::find_if(p, end, is_line_end);
    out += eol == p ? "data:" : "data: ";
    out.append(p, eol);
    out += '\n';
    if (eol == end) break;
    p = eol + ((*eol == '\r' && eol + 1 != end && eol[1] == '\n') ? 2 : 1);
  }
  out += '\n';
}

std::string encode_event(const Event& event, std::optional<std::uint64_t> id) {
  std::string out;
  out.reserve(event.data.size() + event.type.size() + 40);
  if (id) {
    char line[32];
    out.append(line, format_id_line(line, *id));
  }
  append_event(out, event);
  return out;
}

std::optional<std::uint64_t> last_event_id(const Request& request) {
  auto parse = [](std::string_view s) -> std::optional<std::uint64_t> {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
  };
  if (auto h = request.header("Last-Event-ID")) {
    if (auto v = parse(*h)) return v;
  }
  if (auto q = request.query("last_event_id")) return parse(*q);
  return std::nullopt;
}

SseMetrics::SseMetrics(core::MetricsRegistry& m)
    : clients(m.gauge("teslasync_sse_clients", "SSE streams currently attached to a hub").get()),
      published(m.counter("teslasync_sse_events_published_total",
                          "events published to the SSE hub")
                    .get()),
      sent(m.counter("teslasync_sse_events_sent_total",
                     "events written to SSE clients, one per client (replays and snapshots "
                     "included, heartbeats not)")
               .get()),
      slow_disconnects(m.counter("teslasync_sse_slow_disconnects_total",
                                 "SSE clients disconnected because their queue overflowed or a "
                                 "write stalled")
                           .get()),
      replays(m.counter("teslasync_sse_replays_total",
                        "streams resumed from Last-Event-ID out of the replay ring")
                  .get()),
      resume_misses(m.counter("teslasync_sse_resume_misses_total",
                              "streams whose Last-Event-ID was too old or unknown (sent a "
                              "snapshot instead)")
                        .get()) {}

// One per io_context that has (or had) streams. The inbox is filled by publishers under the hub's
// mutex (so it is in id order) and drained on the shard, which fans each event out to its own
// subscribers without any lock.
struct EventHub::Shard : std::enable_shared_from_this<EventHub::Shard> {
  asio::any_io_executor executor;
  const void* context;
  std::mutex mutex;  // guards inbox, drain_posted
  std::deque<EncodedEventPtr> inbox;
  bool drain_posted = false;
  std::size_t subscribers = 0;  // guarded by EventHub::mutex_
  // key -> subscribers; only touched on the executor's thread
  std::unordered_map<std::string, std::vector<Subscriber*>> local;
  std::vector<Subscriber*> flush_list;  // scratch for drain()

  explicit Shard(asio::any_io_executor ex) : executor(std::move(ex)), context(context_of(executor)) {}

  void push(std::span<const EncodedEventPtr> events) {
    bool post = false;
    {
      std::lock_guard lock(mutex);
      inbox.insert(inbox.end(), events.begin(), events.end());
      if (!drain_posted) drain_posted = post = true;
    }
    if (post) asio::post(executor, [self = shared_from_this()] { self->drain(); });
  }

  void drain() {
    EncodedEventPtr batch[kDrainBatch];
    std::size_t n = 0;
    bool more = false;
    {
      std::lock_guard lock(mutex);
      while (n < kDrainBatch && !inbox.empty()) {
        batch[n++] = std::move(inbox.front());
        inbox.pop_front();
      }
      more = !inbox.empty();
      if (!more) drain_posted = false;
    }
    // Subscribers never detach from inside deliver() or flush(), so the vectors are stable here.
    auto* all = [&]() -> std::vector<Subscriber*>* {
      auto it = local.find(std::string());
      return it == local.end() ? nullptr : &it->second;
    }();
    for (std::size_t i = 0; i < n; ++i) {
      const auto& e = batch[i];
      if (all)
        for (auto* s : *all)
          if (s->deliver(e)) flush_list.push_back(s);
      if (!e->key.empty())
        if (auto keyed = local.find(e->key); keyed != local.end())
          for (auto* s : keyed->second)
            if (s->deliver(e)) flush_list.push_back(s);
    }
    for (auto* s : flush_list) s->flush();
    flush_list.clear();
    if (more) asio::post(executor, [self = shared_from_this()] { self->drain(); });
  }
};

EventHub::EventHub(core::MetricsRegistry& metrics, EventHubOptions options)
    : options_(options),
      metrics_(metrics),
      next_id_(options.first_id != 0 ? options.first_id
                                     : static_cast<std::uint64_t>(unix_ms()) * 1000) {}

EventHub::~EventHub() = default;

std::uint64_t EventHub::last_id() const {
  std::lock_guard lock(mutex_);
  return next_id_ - 1;
}

std::uint64_t EventHub::publish(Event event) { return publish(std::span<Event>(&event, 1)); }

std::uint64_t EventHub::publish(std::span<Event> events) {
  // Everything after the id line is encoded outside the lock, into the buffer that goes on the
  // wire, with room left for the id line that is put in front under the lock.
  constexpr std::size_t kIdLineMax = 32;
  std::vector<std::shared_ptr<EncodedEvent>> encoded;
  encoded.reserve(events.size());
  for (Event& e : events) {
    auto& out = encoded.emplace_back(std::make_shared<EncodedEvent>());
    out->key = std::move(e.key);
    out->bytes.reserve(kIdLineMax + e.type.size() + e.data.size() + 24);
    append_event(out->bytes, e);
  }
  std::vector<EncodedEventPtr> frozen;
  frozen.reserve(events.size());
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    char line[32];
    for (auto& e : encoded) {
      id = next_id_++;
      e->id = id;
      e->bytes.insert(0, line, format_id_line(line, id));
      ring_bytes_ += e->bytes.size();
      ring_.push_back(e);
      frozen.push_back(std::move(e));
    }
    if (events.empty()) id = next_id_ - 1;
    while (!ring_.empty() &&
           (ring_.size() > options_.replay_max_events || ring_bytes_ > options_.replay_max_bytes)) {
      ring_bytes_ -= ring_.front()->bytes.size();
      ring_.pop_front();
    }
    if (!frozen.empty())
      for (auto& shard : shards_)
        if (shard->subscribers > 0) shard->push(frozen);
  }
  metrics_.published.inc(frozen.size());
  return id;
}

EventHub::Attached EventHub::attach(Subscriber& subscriber, const asio::any_io_executor& executor,
                                    const std::string& key,
                                    std::optional<std::uint64_t> last_event_id) {
  const void* ctx = context_of(executor);
  Attached a;
  bool missed = false;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(shards_.begin(), shards_.end(),
                           [ctx](const auto& s) { return s->context == ctx; });
    if (it == shards_.end()) it = shards_.insert(shards_.end(), std::make_shared<Shard>(executor));
    auto& shard = **it;
    ++shard.subscribers;
    shard.local[key].push_back(&subscriber);
    // Everything published from here on reaches the shard's inbox; anything older that is still
    // in the inbox is filtered out by position.
    const std::uint64_t newest = next_id_ - 1;
    a.position = newest;
    if (last_event_id) {
      const std::uint64_t from = *last_event_id;
      if (from == newest) {
        a.resumed = true;
      } else if (from < newest && !ring_.empty() && from + 1 >= ring_.front()->id) {
        a.resumed = true;
        for (auto e = ring_.begin() + static_cast<std::ptrdiff_t>(from + 1 - ring_.front()->id);
             e != ring_.end(); ++e)
          if (key.empty() || (*e)->key == key) a.replay.push_back(*e);
      } else {
        missed = true;
      }
    }
  }
  metrics_.clients.add(1);
  if (a.resumed) metrics_.replays.inc();
  if (missed) metrics_.resume_misses.inc();
  return a;
}

void EventHub::detach(Subscriber& subscriber, const asio::any_io_executor& executor,
                      const std::string& key) {
  const void* ctx = context_of(executor);
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(shards_.begin(), shards_.end(),
                           [ctx](const auto& s) { return s->context == ctx; });
    if (it == shards_.end()) return;
    auto& shard = **it;
    auto list = shard.local.find(key);
    if (list == shard.local.end()) return;
    auto& v = list->second;
    auto pos = std::find(v.begin(), v.end(), &subscriber);
    if (pos == v.end()) return;
    *pos = v.back();
    v.pop_back();
    if (v.empty()) shard.local.erase(list);
    --shard.subscribers;
  }
  metrics_.clients.add(-1);
}

void EventHub::note_slow_disconnect(const std::string& remote) {
  metrics_.slow_disconnects.inc();
  const auto now = unix_ms();
  auto last = last_slow_log_ms_.load();
  if (now - last < 10'000 || !last_slow_log_ms_.compare_exchange_strong(last, now)) {
    slow_unlogged_.fetch_add(1);
    return;
  }
  const auto more = slow_unlogged_.exchange(0);
  ts::log::get("sse")->warn(
      "[{}] disconnected a slow SSE client (its queue overflowed or a write stalled){}", remote,
      more ? fmt::format("; {} more since the last message", more) : std::string());
}

}  // namespace ts::http
