#include "ingest/ingest.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace ts::ingest {
namespace {

using namespace std::chrono_literals;

storage::Batch copy(const storage::BatchView& v) {
  storage::Batch b;
  b.signals.assign(v.signals.begin(), v.signals.end());
  b.alerts.assign(v.alerts.begin(), v.alerts.end());
  b.connectivity.assign(v.connectivity.begin(), v.connectivity.end());
  b.vehicle_errors.assign(v.vehicle_errors.begin(), v.vehicle_errors.end());
  b.dead_letters.assign(v.dead_letters.begin(), v.dead_letters.end());
  return b;
}

/// A writer that records batches and can be told to fail; thread-safe. Like a database that
/// cannot hold it, it refuses (storage::errc::rejected) every batch with an alert named POISON.
class RecordingWriter : public BatchWriter {
 public:
  Result<void> write(const storage::BatchView& batch) override {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return !blocked_; });
    ++attempts_;
    if (failing_) return make_error_code(boost::system::errc::io_error);
    for (const auto& a : batch.alerts) {
      if (a.name == "POISON") return make_error_code(storage::errc::rejected);
    }
    batches_.push_back(copy(batch));
    return {};
  }
  void set_failing(bool f) {
    std::lock_guard lock(mutex_);
    failing_ = f;
  }
  void set_blocked(bool b) {
    {
      std::lock_guard lock(mutex_);
      blocked_ = b;
    }
    cv_.notify_all();
  }
  std::vector<storage::Batch> batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  int attempts() {
    std::lock_guard lock(mutex_);
    return attempts_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool failing_ = false;
  bool blocked_ = false;
  int attempts_ = 0;
  std::vector<storage::Batch> batches_;
};

struct Acks {
  std::mutex mutex;
  std::vector<AckToken> tokens;
  std::vector<bool> pauses;
  void add(const std::vector<AckToken>& t) {
    std::lock_guard lock(mutex);
    tokens.insert(tokens.end(), t.begin(), t.end());
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return tokens.size();
  }
};

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

IngestHooks hooks(Acks& acks, std::atomic<int>* observed = nullptr) {
  return {.registered = [](std::string_view vin) { return vin == "VIN1"; },
          .observe = [observed](const storage::Batch& b) {
            if (observed) *observed += static_cast<int>(b.size());
          },
          .ack = [&acks](const std::vector<AckToken>& t) { acks.add(t); },
          .on_pause = [&acks](bool p) {
            std::lock_guard lock(acks.mutex);
            acks.pauses.push_back(p);
          }};
}

TEST(Ingest, FullBatchIsWrittenThenAcknowledged) {
  RecordingWriter writer;
  Acks acks;
  std::atomic<int> observed{0};
  Ingest ingest({.batch_max_messages = 3, .batch_window = 1h}, writer, hooks(acks, &observed));
  ingest.start();
  ingest.offer("telemetry/VIN1/v/Soc", "1", {11}, 100);
  ingest.offer("telemetry/VIN1/v/Soc", "2", {12}, 101);
  EXPECT_EQ(observed.load(), 2);  // live views see records before they are durable
  EXPECT_EQ(acks.count(), 0u);
  ingest.offer("telemetry/VIN9/v/Soc", "3", {13}, 102);  // unregistered -> dead letter, same batch
  ASSERT_TRUE(eventually([&] { return acks.count() == 3; }));
  auto batches = writer.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].signals.size(), 2u);
  EXPECT_EQ(batches[0].dead_letters.size(), 1u);
  EXPECT_EQ(acks.tokens, (std::vector<AckToken>{{11}, {12}, {13}}));
  EXPECT_EQ(ingest.stats().unregistered.value(), 1u);
  EXPECT_EQ(ingest.stats().signals.value(), 2u);
}

// A record message (mqtt.record_message) is one message, one ack, and a signal per field.
TEST(Ingest, RecordMessageCountsEachField) {
  RecordingWriter writer;
  Acks acks;
  Ingest ingest({.batch_max_messages = 1, .batch_window = 1h}, writer, hooks(acks, nullptr));
  ingest.start();
  ingest.offer("telemetry/VIN1/v", R"({"ts":"2026-11-24T16:00:18Z","data":{"Soc":80,"Odometer":1.5,"Gear":null}})",
               {21}, 100);
  ASSERT_TRUE(eventually([&] { return acks.count() == 1; }));
  ASSERT_EQ(writer.batches().size(), 1u);
  EXPECT_EQ(writer.batches()[0].signals.size(), 3u);
  EXPECT_EQ(ingest.stats().messages.value(), 1u);
  EXPECT_EQ(ingest.stats().signals.value(), 3u);
}

TEST(Ingest, PartialBatchIsWrittenWhenItsWindowEnds) {
  RecordingWriter writer;
  Acks acks;
  Ingest ingest({.batch_max_messages = 1000, .batch_window = 20ms}, writer, hooks(acks));
  ingest.start();
  ingest.offer("telemetry/VIN1/v/Soc", "1", {1}, 100);
  ASSERT_TRUE(eventually([&] { return acks.count() == 1; }));
  EXPECT_EQ(writer.batches().size(), 1u);
}

TEST(Ingest, FailedWritesAreRetriedAndNothingIsAcknowledgedUntilDurable) {
  RecordingWriter writer;
  writer.set_failing(true);
  Acks acks;
  Ingest ingest({.batch_max_messages = 1, .retry_initial = 1ms, .retry_max = 2ms}, writer,
                hooks(acks));
  ingest.start();
  ingest.offer("telemetry/VIN1/v/Soc", "1", {7}, 100);
  ASSERT_TRUE(eventually([&] { return writer.attempts() >= 3; }));
  EXPECT_EQ(acks.count(), 0u);
  EXPECT_GE(ingest.stats().write_failures.value(), 3u);
  writer.set_failing(false);
  ASSERT_TRUE(eventually([&] { return acks.count() == 1; }));
}

TEST(Ingest, FullQueuePausesIntakeAndResumesWhenDrained) {
  RecordingWriter writer;
  writer.set_blocked(true);
  Acks acks;
  Ingest ingest({.batch_max_messages = 1, .queue_batches = 4}, writer, hooks(acks));
  ingest.start();
  for (std::uint64_t t = 1; t <= 6; ++t) ingest.offer("telemetry/VIN1/v/Soc", "1", {t}, 100);
  ASSERT_TRUE(eventually([&] { return ingest.stats().paused.load(); }));
  writer.set_blocked(false);
  ASSERT_TRUE(eventually([&] { return acks.count() == 6; }));  // nothing dropped
  ASSERT_TRUE(eventually([&] { return !ingest.stats().paused.load(); }));
  std::lock_guard lock(acks.mutex);
  EXPECT_EQ(acks.pauses, (std::vector<bool>{true, false}));
}

TEST(Ingest, StopWithFailingDatabaseLeavesMessagesUnacknowledged) {
  RecordingWriter writer;
  writer.set_failing(true);
  Acks acks;
  Ingest ingest({.batch_max_messages = 2, .batch_window = 1h, .retry_initial = 1ms}, writer,
                hooks(acks));
  ingest.start();
  ingest.offer("telemetry/VIN1/v/Soc", "1", {1}, 100);
  ingest.offer("telemetry/VIN1/v/Soc", "2", {2}, 100);
  ingest.offer("telemetry/VIN1/v/Soc", "3", {3}, 100);
  ingest.stop(200ms);
  EXPECT_EQ(acks.count(), 0u);
}

TEST(Ingest, StopFlushesTheOpenBatch) {
  RecordingWriter writer;
  Acks acks;
  Ingest ingest({.batch_max_messages = 100, .batch_window = 1h}, writer, hooks(acks));
  ingest.start();
  ingest.offer("telemetry/VIN1/v/Soc", "1", {1}, 100);
  ingest.stop();
  EXPECT_EQ(acks.count(), 1u);
}

storage::Batch merged(const std::vector<storage::Batch>& batches) {
  storage::Batch all;
  for (const auto& b : batches) {
    all.signals.insert(all.signals.end(), b.signals.begin(), b.signals.end());
    all.alerts.insert(all.alerts.end(), b.alerts.begin(), b.alerts.end());
    all.dead_letters.insert(all.dead_letters.end(), b.dead_letters.begin(), b.dead_letters.end());
  }
  return all;
}

constexpr std::string_view kPoison =
    R"({"Audiences":["Customer"],"StartedAt":"2026-12-07T10:00:00Z"})";

// A message the database cannot hold is isolated by halving the batch: every other message is
// stored, the poison one becomes a dead letter with the reason, and all are acknowledged.
TEST(Ingest, RefusedMessageBecomesADeadLetterAndTheRestIsStored) {
  RecordingWriter writer;
  Acks acks;
  Ingest ingest({.batch_max_messages = 9, .batch_window = 1h}, writer, hooks(acks));
  ingest.start();
  for (std::uint64_t t = 1; t <= 9; ++t) {
    if (t == 6) {
      ingest.offer("telemetry/VIN1/alerts/POISON/current", kPoison, {t}, 100);
    } else {
      ingest.offer("telemetry/VIN1/v/Soc", std::to_string(t), {t}, 100);
    }
  }
  ASSERT_TRUE(eventually([&] { return acks.count() == 9; }));
  const auto all = merged(writer.batches());
  ASSERT_EQ(all.signals.size(), 8u);
  for (std::size_t i = 0; i < all.signals.size(); ++i) {  // order kept
    EXPECT_EQ(signal::to_json(all.signals[i].value), std::to_string(i < 5 ? i + 1 : i + 2));
  }
  ASSERT_EQ(all.dead_letters.size(), 1u);
  EXPECT_EQ(all.dead_letters[0].topic, "telemetry/VIN1/alerts/POISON/current");
  EXPECT_EQ(all.dead_letters[0].vin, "VIN1");
  EXPECT_EQ(all.dead_letters[0].payload, kPoison);
  EXPECT_TRUE(all.dead_letters[0].reason.starts_with("storage_rejected: ")) << all.dead_letters[0].reason;
  EXPECT_EQ(ingest.stats().rejected_messages.value(), 1u);
  EXPECT_EQ(ingest.writer_problem(signal::now()), "");
  // Ingest goes on: a later batch is written as usual.
  ingest.offer("telemetry/VIN1/v/Soc", "10", {10}, 100);
  ingest.stop();
  EXPECT_EQ(acks.count(), 10u);
}

TEST(Ingest, EveryRefusedMessageOfABatchIsIsolated) {
  RecordingWriter writer;
  Acks acks;
  Ingest ingest({.batch_max_messages = 4, .batch_window = 1h}, writer, hooks(acks));
  ingest.start();
  ingest.offer("telemetry/VIN1/alerts/POISON/current", kPoison, {1}, 100);
  ingest.offer("telemetry/VIN1/v/Soc", "2", {2}, 100);
  ingest.offer("telemetry/VIN1/alerts/POISON/history", "[]", {3}, 100);  // no alert: storable
  ingest.offer("telemetry/VIN1/alerts/POISON/current", kPoison, {4}, 100);
  ASSERT_TRUE(eventually([&] { return acks.count() == 4; }));
  const auto all = merged(writer.batches());
  EXPECT_EQ(all.signals.size(), 1u);
  EXPECT_EQ(all.dead_letters.size(), 2u);
  EXPECT_EQ(ingest.stats().rejected_messages.value(), 2u);
}

// A message over the subscriber's packet limit is not lost without a trace: a dead letter.
TEST(Ingest, OversizedMessageIsKeptAsADeadLetter) {
  RecordingWriter writer;
  Acks acks;
  Ingest ingest({.batch_max_messages = 1}, writer, hooks(acks));
  ingest.start();
  ingest.offer_oversized("telemetry/VIN1/v", 9'000'000, {5}, 100);
  ASSERT_TRUE(eventually([&] { return acks.count() == 1; }));
  const auto all = merged(writer.batches());
  ASSERT_EQ(all.dead_letters.size(), 1u);
  EXPECT_EQ(all.dead_letters[0].vin, "VIN1");
  EXPECT_TRUE(all.dead_letters[0].reason.starts_with("oversized: a 9000000-byte message"))
      << all.dead_letters[0].reason;
  EXPECT_EQ(ingest.stats().dead_letters.value(), 1u);
}

// Polled values go through the same writer: a database outage delays them, nothing is lost.
TEST(Ingest, PolledSignalsAreRetriedUntilStored) {
  RecordingWriter writer;
  writer.set_failing(true);
  Acks acks;
  Ingest ingest({.batch_max_messages = 1, .retry_initial = 1ms, .retry_max = 2ms}, writer,
                hooks(acks));
  ingest.start();
  ingest.offer_signals({signal::Signal{.vin = "VIN1", .name = "Soc", .ts = 5, .received_at = 6,
                                       .source = signal::Source::Poll,
                                       .value = signal::Value::float64(50)}},
                       "poll");
  ASSERT_TRUE(eventually([&] { return writer.attempts() >= 3; }));
  EXPECT_TRUE(writer.batches().empty());
  writer.set_failing(false);
  ASSERT_TRUE(eventually([&] { return writer.batches().size() == 1; }));
  ASSERT_EQ(writer.batches()[0].signals.size(), 1u);
  EXPECT_EQ(writer.batches()[0].signals[0].source, signal::Source::Poll);
}

// Polled values cannot pile up without bound while the writer is stuck: past twice the queue
// they are not queued (counted); a refused poll is a dead letter holding its values.
TEST(Ingest, PolledSignalsAreBoundedWhileTheWriterIsFarBehind) {
  RecordingWriter writer;
  writer.set_blocked(true);
  Acks acks;
  Ingest ingest({.batch_max_messages = 1, .queue_batches = 2}, writer, hooks(acks));
  ingest.start();
  auto poll = [](std::int64_t ts) {
    return std::vector<signal::Signal>{signal::Signal{.vin = "VIN1", .name = "Soc", .ts = ts,
                                                      .received_at = ts,
                                                      .source = signal::Source::Poll,
                                                      .value = signal::Value::float64(50)}};
  };
  for (int i = 1; i <= 10; ++i) ingest.offer_signals(poll(i), "poll");
  EXPECT_GE(ingest.stats().polls_dropped.value(), 4u);
  writer.set_blocked(false);
  ingest.stop();
  EXPECT_LE(merged(writer.batches()).signals.size(), 6u);
}

// A writer stuck on a transient failure is reported (for /readyz) once it has retried a while.
TEST(Ingest, WriterRetryingLongerThanTheLimitIsReported) {
  RecordingWriter writer;
  writer.set_failing(true);
  Acks acks;
  Ingest ingest({.batch_max_messages = 1, .retry_initial = 1ms, .retry_max = 2ms,
                 .unhealthy_after = 0ms},
                writer, hooks(acks));
  ingest.start();
  EXPECT_EQ(ingest.writer_problem(signal::now()), "");
  ingest.offer("telemetry/VIN1/v/Soc", "1", {7}, 100);
  ASSERT_TRUE(eventually([&] { return !ingest.writer_problem(signal::now()).empty(); }));
  EXPECT_NE(ingest.writer_problem(signal::now()).find("retrying"), std::string::npos);
  writer.set_failing(false);
  ASSERT_TRUE(eventually([&] { return acks.count() == 1; }));
  EXPECT_EQ(ingest.writer_problem(signal::now()), "");
}

}  // namespace
}  // namespace ts::ingest
