#include "ingest/ingest.hpp"

#include <pthread.h>

#include <algorithm>

#include "core/log.hpp"
#include "ingest/limits.hpp"
#include "ingest/topic.hpp"

namespace ts::ingest {
namespace {

template <class T>
void move_append(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  from.clear();
}

void move_records(storage::Batch& to, storage::Batch& from) {
  move_append(to.signals, from.signals);
  move_append(to.alerts, from.alerts);
  move_append(to.connectivity, from.connectivity);
  move_append(to.vehicle_errors, from.vehicle_errors);
  move_append(to.dead_letters, from.dead_letters);
}

}  // namespace

Ingest::Ingest(IngestOptions options, BatchWriter& writer, IngestHooks hooks)
    : options_(std::move(options)), writer_(writer), hooks_(std::move(hooks)) {}

Ingest::~Ingest() { stop(); }

void Ingest::start() {
  std::lock_guard lock(mutex_);
  if (started_) return;
  started_ = true;
  writer_thread_ = std::thread([this] { writer_loop(); });
}

void Ingest::count(Disposition d) {
  switch (d) {
    case Disposition::Signal: stats_.signals.inc(scratch_.signals.size()); break;  // a record: each field
    case Disposition::Alerts: stats_.alerts.inc(); break;
    case Disposition::Connectivity: stats_.connectivity.inc(); break;
    case Disposition::VehicleError: stats_.vehicle_errors.inc(); break;
    case Disposition::DeadLetter: break;
  }
  // A record message with unknown fields is stored and kept as a dead letter as well.
  for (const auto& letter : scratch_.dead_letters) {
    stats_.dead_letters.inc();
    const auto& reason = letter.reason;
    if (reason.starts_with(kReasonUndecodable)) stats_.decode_failures.inc();
    if (reason == kReasonUnregisteredVin) stats_.unregistered.inc();
    if (reason.starts_with(kReasonUnknownField) || reason.starts_with(kReasonTooLong)) {
      stats_.name_rejections.inc();
    }
  }
}

void Ingest::offer(std::string_view topic, std::string_view payload, AckToken token,
                   signal::Timestamp received_at) {
  stats_.messages.inc();
  stats_.last_message_us.store(received_at, std::memory_order_relaxed);
  scratch_.clear();
  const Disposition d =
      decode_message(options_.topic_base, topic, payload, received_at, hooks_.registered, scratch_);
  count(d);
  if (!scratch_.dead_letters.empty()) {
    log::get("ingest")->debug("dead letter on {}: {}", topic, scratch_.dead_letters.back().reason);
  }
  if (hooks_.observe) hooks_.observe(scratch_);
  enqueue(scratch_, topic, payload, token, received_at);
}

void Ingest::offer_signals(std::vector<signal::Signal> signals, std::string_view source) {
  if (signals.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= 2 * options_.queue_batches) {
      stats_.polls_dropped.inc(signals.size());
      log::get("ingest")->warn("the signal_log writer is {} batches behind: {} polled values of {} "
                               "are not stored",
                               queue_.size(), signals.size(), signals.front().vin);
      return;
    }
  }
  // The dead letter's form of these values, should the database refuse them.
  const std::string topic = std::string(source) + "/" + signals.front().vin;
  std::string payload = "[";
  for (const auto& sig : signals) {
    if (payload.size() > 1) payload += ',';
    payload += "{\"name\":\"" + sig.name + "\",\"value\":";
    signal::append_json(payload, sig.value);
    payload += ",\"ts\":\"";
    signal::append_time(payload, sig.ts);
    payload += "\"}";
  }
  payload += ']';
  storage::Batch records;
  records.signals = std::move(signals);
  const auto received_at = records.signals.front().received_at;
  enqueue(records, topic, payload, AckToken{}, received_at);
}

void Ingest::offer_oversized(std::string_view topic, std::size_t bytes, AckToken token,
                             signal::Timestamp received_at) {
  stats_.messages.inc();
  stats_.last_message_us.store(received_at, std::memory_order_relaxed);
  scratch_.clear();
  scratch_.dead_letters.push_back(
      {.received_at = received_at,
       .topic = std::string(topic),
       .vin = std::string(parse_topic(options_.topic_base, topic).vin),
       .reason = std::string(kReasonOversized) + ": a " + std::to_string(bytes) +
                 "-byte message, over the MQTT packet limit; its payload was not read"});
  count(Disposition::DeadLetter);
  log::get("ingest")->warn("dead letter on {}: {}", topic, scratch_.dead_letters.back().reason);
  enqueue(scratch_, topic, {}, token, received_at);
}

void Ingest::enqueue(storage::Batch& records, std::string_view topic, std::string_view payload,
                     AckToken token, signal::Timestamp received_at) {
  std::lock_guard lock(mutex_);
  if (open_.tokens.empty()) open_.opened = std::chrono::steady_clock::now();
  move_records(open_.batch, records);
  open_.tokens.push_back(token);
  open_.raw.append(topic).append(payload);
  const auto& b = open_.batch;
  open_.marks.push_back({.signals = static_cast<std::uint32_t>(b.signals.size()),
                         .alerts = static_cast<std::uint32_t>(b.alerts.size()),
                         .connectivity = static_cast<std::uint32_t>(b.connectivity.size()),
                         .vehicle_errors = static_cast<std::uint32_t>(b.vehicle_errors.size()),
                         .dead_letters = static_cast<std::uint32_t>(b.dead_letters.size()),
                         .topic_size = static_cast<std::uint32_t>(topic.size()),
                         .raw_end = open_.raw.size(),
                         .received_at = received_at});
  stats_.queued_messages.fetch_add(1, std::memory_order_relaxed);
  if (open_.tokens.size() >= options_.batch_max_messages ||
      open_.raw.size() >= options_.batch_max_bytes) {
    close_open_batch_locked();
    cv_.notify_one();
  } else if (open_.tokens.size() == 1) {
    cv_.notify_one();  // the writer starts the window timer
  }
}

void Ingest::close_open_batch_locked() {
  if (open_.tokens.empty()) return;
  // The next batch is likely the size of this one: growing a vector of ~100k signals one
  // doubling at a time moved every signal ~twice (8 % of the subscriber thread, perf).
  const std::size_t signals = open_.batch.signals.size(), tokens = open_.tokens.size(),
                    raw = open_.raw.size();
  queue_.push_back(std::move(open_));
  open_ = Pending{};
  open_.batch.signals.reserve(signals);
  open_.tokens.reserve(tokens);
  open_.marks.reserve(tokens);
  open_.raw.reserve(raw);
  stats_.queued_batches.store(queue_.size(), std::memory_order_relaxed);
  update_pause_locked();
}

void Ingest::update_pause_locked() {
  bool want = queue_.size() >= options_.queue_batches;
  bool resume = queue_.size() <= options_.queue_batches / 2;
  if (want && !paused_) {
    paused_ = true;
    stats_.paused.store(true);
    stats_.pauses.inc();
    log::get("ingest")->warn(
        "signal_log writer is {} batches behind: pausing MQTT intake until it catches up",
        queue_.size());
    if (hooks_.on_pause) hooks_.on_pause(true);
  } else if (paused_ && resume && !stopping_) {  // stopping: intake stays paused
    paused_ = false;
    stats_.paused.store(false);
    log::get("ingest")->info("signal_log writer caught up: resuming MQTT intake");
    if (hooks_.on_pause) hooks_.on_pause(false);
  }
}

void Ingest::writer_loop() {
  pthread_setname_np(pthread_self(), "ingest-writer");  // for top -H, perf, gdb
  drain();
  std::lock_guard lock(mutex_);
  writer_exited_ = true;
  drained_cv_.notify_all();
}

void Ingest::drain() {
  auto logger = log::get("ingest");
  std::unique_lock lock(mutex_);
  for (;;) {
    // Wait for a closed batch, or for the open one's window to end.
    while (queue_.empty() || abandon_) {
      if (abandon_) {
        if (!queue_.empty()) {
          logger->warn("stopping with {} batches not written; the broker will deliver them again",
                       queue_.size());
        }
        return;
      }
      if (!open_.tokens.empty()) {
        auto due = open_.opened + options_.batch_window;
        if (stopping_ || std::chrono::steady_clock::now() >= due) {
          close_open_batch_locked();
          break;
        }
        cv_.wait_until(lock, due);
      } else {
        if (stopping_) return;
        cv_.wait(lock);
      }
    }
    Pending pending = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();

    const bool written = write_messages(pending, 0, pending.tokens.size());
    if (written) {
      stats_.batches_written.inc();
      stats_.rows_written.inc(pending.batch.size());
      stats_.last_write_us.store(signal::now(), std::memory_order_relaxed);
      if (hooks_.ack) hooks_.ack(pending.tokens);
    }
    lock.lock();
    writing_ = false;
    stats_.queued_messages.fetch_sub(pending.tokens.size(), std::memory_order_relaxed);
    stats_.queued_batches.store(queue_.size(), std::memory_order_relaxed);
    update_pause_locked();
    drained_cv_.notify_all();
    if (!written) {
      // Stopping while the database fails: leave the rest unacknowledged for redelivery.
      logger->warn("stopping with {} batches not written; the broker will deliver them again",
                   queue_.size() + 1);
      return;
    }
  }
}

namespace {

/// Messages [first, last) of a batch, as a view: their records are contiguous in each vector.
template <class Mark>
storage::BatchView slice(const storage::Batch& b, const std::vector<Mark>& marks, std::size_t first,
                         std::size_t last) {
  auto part = [&](const auto& vec, auto member) {
    const std::size_t from = first == 0 ? 0 : marks[first - 1].*member;
    const std::size_t to = marks[last - 1].*member;
    return std::span(vec).subspan(from, to - from);
  };
  storage::BatchView v;
  v.signals = part(b.signals, &Mark::signals);
  v.alerts = part(b.alerts, &Mark::alerts);
  v.connectivity = part(b.connectivity, &Mark::connectivity);
  v.vehicle_errors = part(b.vehicle_errors, &Mark::vehicle_errors);
  v.dead_letters = part(b.dead_letters, &Mark::dead_letters);
  return v;
}

}  // namespace

std::optional<Result<void>> Ingest::write_retrying(const storage::BatchView& view) {
  auto delay = options_.retry_initial;
  for (;;) {
    auto result = writer_.write(view);
    if (result || result.error() == storage::errc::rejected) {
      stats_.failing_since_us.store(0, std::memory_order_relaxed);
      return result;
    }
    stats_.write_failures.inc();
    std::int64_t expected = 0;
    stats_.failing_since_us.compare_exchange_strong(expected, signal::now());
    {
      std::lock_guard lock(error_mutex_);
      last_error_ = result.error().message();
    }
    log::get("ingest")->error("signal_log write of {} records failed ({}); retrying in {} ms",
                              view.signals.size() + view.alerts.size() +
                                  view.connectivity.size() + view.vehicle_errors.size() +
                                  view.dead_letters.size(),
                              result.error().message(), delay.count());
    std::unique_lock wait_lock(mutex_);
    if (cv_.wait_for(wait_lock, delay, [this] { return stopping_; })) return std::nullopt;
    wait_lock.unlock();
    delay = std::min(delay * 2, options_.retry_max);
  }
}

bool Ingest::write_messages(const Pending& p, std::size_t first, std::size_t last) {
  if (first == last) return true;
  {
    std::lock_guard lock(mutex_);
    if (abandon_) return false;  // stop()'s deadline passed in the middle of a split batch
  }
  auto result = write_retrying(slice(p.batch, p.marks, first, last));
  if (!result) return false;  // stopped while the database failed
  if (*result) return true;
  stats_.write_failures.inc();
  if (last - first == 1) return quarantine(p, first, result->error());
  // Some row cannot be stored: halve until the refused messages are alone.
  const std::size_t mid = first + (last - first) / 2;
  return write_messages(p, first, mid) && write_messages(p, mid, last);
}

bool Ingest::quarantine(const Pending& p, std::size_t index, const boost::system::error_code& why) {
  const MessageMark& m = p.marks[index];
  const std::size_t start = index == 0 ? 0 : p.marks[index - 1].raw_end;
  const std::string_view raw = std::string_view(p.raw).substr(start, m.raw_end - start);
  const std::string_view topic = raw.substr(0, m.topic_size);
  storage::Batch letter;
  letter.dead_letters.push_back({.received_at = m.received_at,
                                 .topic = std::string(topic),
                                 .vin = std::string(parse_topic(options_.topic_base, topic).vin),
                                 .reason = std::string(kReasonStorageRejected) + ": " + why.message(),
                                 .payload = std::string(raw.substr(m.topic_size))});
  stats_.rejected_messages.inc();
  auto logger = log::get("ingest");
  logger->warn("signal_log refused the message on {} ({}): kept as a dead letter", topic,
               why.message());
  auto stored = write_retrying(storage::BatchView(letter));
  if (!stored) return false;  // stopped: the message stays unacknowledged
  if (!*stored) {
    // Not even the dead letter could be stored: nothing more can be done with the message.
    stats_.quarantine_failures.inc();
    logger->error("the dead letter for the message on {} was refused too ({}); it is dropped",
                  topic, stored->error().message());
  } else {
    stats_.dead_letters.inc();
  }
  return true;
}

std::string Ingest::writer_problem(signal::Timestamp now) const {
  const auto since = stats_.failing_since_us.load(std::memory_order_relaxed);
  if (since == 0) return {};
  const auto failing = std::chrono::microseconds(now - since);
  if (failing < options_.unhealthy_after) return {};
  std::lock_guard lock(error_mutex_);
  return "signal_log writer retrying for " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(failing).count()) +
         " s: " + last_error_;
}

void Ingest::stop(std::chrono::milliseconds deadline) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    close_open_batch_locked();
  }
  cv_.notify_all();
  if (!writer_thread_.joinable()) return;
  // The writer drains what it can before the deadline; after it, it takes no further batch.
  {
    std::unique_lock lock(mutex_);
    drained_cv_.wait_for(lock, deadline, [this] { return writer_exited_ || (queue_.empty() && !writing_); });
    abandon_ = true;
  }
  cv_.notify_all();
  writer_thread_.join();
}

void Ingest::register_metrics(core::MetricsRegistry& registry) const {
  auto counter = [&registry](const char* name, const char* help, const core::Counter& c) {
    registry.callback_counter(name, help, [&c] { return static_cast<double>(c.value()); });
  };
  counter("teslasync_ingest_messages_total", "MQTT messages received", stats_.messages);
  counter("teslasync_ingest_signals_total",
          "signal values decoded (a record message counts each of its fields)", stats_.signals);
  counter("teslasync_ingest_alert_messages_total", "alert messages decoded", stats_.alerts);
  counter("teslasync_ingest_connectivity_total", "connectivity events decoded", stats_.connectivity);
  counter("teslasync_ingest_vehicle_errors_total", "vehicle error messages decoded",
          stats_.vehicle_errors);
  counter("teslasync_ingest_dead_letters_total", "messages kept as dead letters",
          stats_.dead_letters);
  counter("teslasync_ingest_decode_failures_total", "messages whose payload could not be decoded",
          stats_.decode_failures);
  counter("teslasync_ingest_unregistered_vin_total", "messages from VINs that are not registered",
          stats_.unregistered);
  counter("teslasync_ingest_batches_written_total", "batches made durable", stats_.batches_written);
  counter("teslasync_ingest_rows_written_total", "records made durable", stats_.rows_written);
  counter("teslasync_ingest_write_failures_total",
          "failed batch writes (transient ones are retried, refused ones split)",
          stats_.write_failures);
  counter("teslasync_ingest_rejected_messages_total",
          "messages the database refused to store, kept as dead letters", stats_.rejected_messages);
  counter("teslasync_ingest_quarantine_failures_total",
          "refused messages whose dead letter could not be stored either (dropped)",
          stats_.quarantine_failures);
  counter("teslasync_ingest_name_rejections_total",
          "dead letters for a signal name outside the Field enum or an over-long name or id",
          stats_.name_rejections);
  counter("teslasync_ingest_polls_dropped_total",
          "polled values not queued because the signal_log writer was far behind",
          stats_.polls_dropped);
  counter("teslasync_ingest_pauses_total", "times MQTT intake was paused for back-pressure",
          stats_.pauses);
  registry.callback_gauge("teslasync_ingest_queue_batches", "batches waiting to be written",
                          [this] { return static_cast<double>(stats_.queued_batches.load()); });
  registry.callback_gauge("teslasync_ingest_queue_messages", "messages not yet durable",
                          [this] { return static_cast<double>(stats_.queued_messages.load()); });
  registry.callback_gauge("teslasync_ingest_paused", "1 while MQTT intake is paused",
                          [this] { return stats_.paused.load() ? 1.0 : 0.0; });
  registry.callback_gauge("teslasync_ingest_last_message_age_seconds",
                          "seconds since the last MQTT message (-1: none yet)", [this] {
                            auto last = stats_.last_message_us.load();
                            return last == 0 ? -1.0 : (signal::now() - last) / 1e6;
                          });
  registry.callback_gauge("teslasync_ingest_writer_failing_seconds",
                          "seconds the signal_log writer has been retrying a failure (0: healthy)",
                          [this] {
                            auto since = stats_.failing_since_us.load();
                            return since == 0 ? 0.0 : (signal::now() - since) / 1e6;
                          });
}

}  // namespace ts::ingest
