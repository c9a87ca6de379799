#pragma once
/// Ingest: MQTT messages from telemetry-server → decoded records → batches written durably, and
/// only then acknowledged to the broker (at-least-once; the writes are idempotent, so a
/// redelivery after a crash does not duplicate anything).
///
/// Threads:
/// - `offer()` is called by the MQTT subscriber's thread for every message. It decodes the
///   message, hands the records to the observer at once (L1 state, SSE, Redis: live views never
///   wait for the database), and adds them to the open batch. A batch closes when it holds
///   `batch_max_messages` messages or its first message is `batch_window` old.
/// - One writer thread writes closed batches with `BatchWriter::write` (one transaction each) and
///   acknowledges a batch's messages after the write returned success. Failures are classified
///   (storage/errc.hpp): a transient one (database down, timeout, disk full) is retried with
///   back-off, in order, for as long as it lasts; `storage::errc::rejected` (the database cannot
///   hold some row of the batch) splits the batch by halves until the messages that cannot be
///   stored are alone, stores all the others, and keeps each poison message as a dead letter with
///   the reason ("storage_rejected: …"); then everything is acknowledged and ingest goes on. One
///   bad message never stops the fleet's ingest.
/// - Back-pressure: when `queue_batches` closed batches wait for the writer, `on_pause(true)`
///   asks the subscriber to stop reading from the broker (which keeps queueing); below half of
///   that, `on_pause(false)` resumes. Nothing is dropped.
/// stop() closes the open batch, lets the writer try to finish within a deadline, and leaves
/// whatever was not written unacknowledged, so the broker delivers it again after a restart.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.hpp"
#include "core/result.hpp"
#include "ingest/decode.hpp"
#include "storage/database.hpp"

namespace ts::ingest {

/// Opaque per-message token handed back to the subscriber's acknowledge function: 16 bytes the
/// subscriber chose (e.g. a std::bit_cast of mqtt::AckToken), never looked into here.
struct AckToken {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  friend bool operator==(const AckToken&, const AckToken&) = default;
};

/// Where batches go: storage, or a test double. Called on the writer thread only.
class BatchWriter {
 public:
  virtual ~BatchWriter() = default;
  /// Writes the batch in one transaction; success means durable, failure means nothing of it
  /// was stored. `storage::errc::rejected` means the data itself cannot be stored (a retry fails
  /// again); any other error is taken as transient.
  virtual Result<void> write(const storage::BatchView& batch) = 0;
};

/// Dead-letter reason of a message the database refused (followed by ": " and the cause).
inline constexpr std::string_view kReasonStorageRejected = "storage_rejected";

struct IngestOptions {
  std::string topic_base = "telemetry";
  std::size_t batch_max_messages = 256;
  std::chrono::milliseconds batch_window{100};
  std::size_t queue_batches = 64;
  /// A batch also closes once its messages hold this many bytes (topics and payloads kept for
  /// dead letters), so that a few huge messages cannot make one huge batch.
  std::size_t batch_max_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  /// The writer counts as unhealthy (writer_problem()) once it has retried for this long.
  std::chrono::milliseconds unhealthy_after{5000};
};

struct IngestHooks {
  IsRegistered registered;  ///< VIN check (any thread)
  /// Records of one message, before they are durable (subscriber thread). Must not block.
  std::function<void(const storage::Batch& records)> observe;
  /// Acknowledges the messages of a durable batch (writer thread).
  std::function<void(const std::vector<AckToken>& tokens)> ack;
  /// Stop (true) or resume (false) reading from the broker (any thread).
  std::function<void(bool paused)> on_pause;
};

/// Counters shared with /metrics and the pipeline summary; readable from any thread.
struct IngestStats {
  core::Counter messages;
  core::Counter signals;  ///< signal values (a record message counts each field)
  core::Counter alerts;
  core::Counter connectivity;
  core::Counter vehicle_errors;
  core::Counter dead_letters;
  core::Counter decode_failures;  ///< dead letters because the payload could not be decoded
  core::Counter unregistered;     ///< dead letters because of an unregistered VIN
  core::Counter batches_written;
  core::Counter rows_written;     ///< records of durable batches
  core::Counter write_failures;   ///< failed batch writes (transient ones are retried)
  core::Counter rejected_messages;    ///< messages the database refused: kept as dead letters
  core::Counter quarantine_failures;  ///< of those, ones not even storable as a dead letter
  core::Counter name_rejections;      ///< dead letters for an unknown field or over-long name
  core::Counter polls_dropped;        ///< polled values not queued: the writer was far behind
  core::Counter pauses;
  std::atomic<std::int64_t> last_message_us{0};  ///< receive time of the newest message
  std::atomic<std::int64_t> last_write_us{0};    ///< when the last batch became durable
  std::atomic<std::size_t> queued_batches{0};
  std::atomic<std::size_t> queued_messages{0};
  std::atomic<bool> paused{false};
  /// Since when the writer has been retrying a transient failure (0: it is not).
  std::atomic<std::int64_t> failing_since_us{0};
};

class Ingest {
 public:
  Ingest(IngestOptions options, BatchWriter& writer, IngestHooks hooks);
  ~Ingest();  ///< calls stop()
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  void start();
  /// Closes the open batch and waits up to `deadline` for the writer to drain. Idempotent.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));

  /// One message (subscriber thread). `received_at` is the receive time.
  void offer(std::string_view topic, std::string_view payload, AckToken token,
             signal::Timestamp received_at);

  /// A message the subscriber could not take whole (over its packet limit): kept as a dead
  /// letter (reason "oversized: …", no payload) in the same batch order (subscriber thread).
  void offer_oversized(std::string_view topic, std::size_t bytes, AckToken token,
                       signal::Timestamp received_at);

  /// Values from another source (the Fleet API poller): stored through the same writer, with the
  /// same retries and failure classification as the stream, so a database outage delays them
  /// instead of losing them. Not observed (the caller updates live state itself), nothing to
  /// acknowledge. A refused one becomes a dead letter on "<source>/<VIN>" with the values as
  /// JSON. Bounded: while twice `queue_batches` batches wait for the writer they are not queued
  /// (counted in polls_dropped, logged; live state has them). Any thread.
  void offer_signals(std::vector<signal::Signal> signals, std::string_view source);

  const IngestStats& stats() const { return stats_; }
  /// Why the writer is not healthy ("signal_log writer retrying for 12 s: database unavailable"),
  /// or "" when it is: used by /readyz and the pipeline summary. Any thread.
  std::string writer_problem(signal::Timestamp now) const;
  /// Registers the stats as teslasync_ingest_* metrics.
  void register_metrics(core::MetricsRegistry& registry) const;

 private:
  /// Where one message's records end in each of the batch's vectors, and its topic and payload
  /// in `Pending::raw` (kept so that a message the database refuses becomes a dead letter as it
  /// arrived).
  struct MessageMark {
    std::uint32_t signals = 0, alerts = 0, connectivity = 0, vehicle_errors = 0, dead_letters = 0;
    std::uint32_t topic_size = 0;
    std::size_t raw_end = 0;
    signal::Timestamp received_at = 0;
  };
  struct Pending {
    storage::Batch batch;
    std::vector<AckToken> tokens;
    std::vector<MessageMark> marks;  // one per message, in order
    std::string raw;                 // topic then payload of each message
    std::chrono::steady_clock::time_point opened{};
  };
  void writer_loop();
  void drain();  // the writer's work; returns when stopped
  /// Writes messages [first, last) of `p`, isolating refused ones; false if stopped first.
  bool write_messages(const Pending& p, std::size_t first, std::size_t last);
  /// Retries `write` while it fails transiently; the final result, or nullopt when stopped.
  std::optional<Result<void>> write_retrying(const storage::BatchView& view);
  /// Keeps message `index` as a dead letter; false if stopped first.
  bool quarantine(const Pending& p, std::size_t index, const boost::system::error_code& why);
  /// Moves `records` (one message's) into the open batch.
  void enqueue(storage::Batch& records, std::string_view topic, std::string_view payload,
               AckToken token, signal::Timestamp received_at);
  void close_open_batch_locked();
  void update_pause_locked();
  void count(Disposition d);

  const IngestOptions options_;
  BatchWriter& writer_;
  const IngestHooks hooks_;
  IngestStats stats_;
  mutable std::mutex error_mutex_;  // guards last_error_
  std::string last_error_;

  storage::Batch scratch_;  // subscriber thread only: the records of the current message

  std::mutex mutex_;  // guards open_, queue_, stopping_, abandon_, writing_, paused_
  std::condition_variable cv_;          // wakes the writer
  std::condition_variable drained_cv_;  // wakes stop() when a write finished
  Pending open_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool abandon_ = false;  // stop()'s deadline passed: take no further batch
  bool writing_ = false;  // the writer holds a batch outside the lock
  bool writer_exited_ = false;
  bool paused_ = false;
  std::thread writer_thread_;
  bool started_ = false;
};

}  // namespace ts::ingest
