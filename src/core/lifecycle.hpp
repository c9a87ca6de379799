#pragma once
/// Lifecycle: the start/stop owner of a composition root. Components are started through it in
/// dependency order; it stops them in reverse order of start: on an orderly shutdown (stop()),
/// and just as well when start-up fails half way and the exception unwinds main(), because its
/// destructor stops whatever had been started before anything else is destroyed.
///
/// Usage: declare every component first (they must outlive the Lifecycle), then the Lifecycle,
/// then start them:
///
///   std::unique_ptr<Ingest> ingest;  std::unique_ptr<Subscriber> subscriber;  ...
///   core::Lifecycle life("api");
///   ingest = make...;  life.start("ingest", [&] { ingest->start(); }, [&] { ingest->stop(); });
///
/// So no component's thread can call into one that is already destroyed, whatever the order the
/// objects were declared in (shared/reference/code-review.md M6).
///
/// Thread-safety: stop() may be called from any thread, also while another thread is in stop();
/// each stop function runs once. start() is for the thread that builds the root.
/// Failure: a stop function that throws is logged and the others still run; stop() never throws.
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ts::core {

class Lifecycle {
 public:
  /// `name` prefixes the log lines (logger "lifecycle").
  explicit Lifecycle(std::string name);
  ~Lifecycle();  ///< stop()
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  /// Calls `start`; once it has returned, `stop` is owed and will run in stop(). If `start`
  /// throws, nothing is owed for this component and the exception propagates (the destructor
  /// then stops the ones started before it).
  void start(std::string_view component, const std::function<void()>& start,
             std::function<void()> stop);
  /// Owes `stop` for a component that started itself (e.g. in its constructor).
  void started(std::string_view component, std::function<void()> stop);

  /// Runs every owed stop, the last started first. Idempotent.
  void stop() noexcept;

  /// The components started and not yet stopped, in start order (tests, logs).
  std::vector<std::string> running() const;

 private:
  struct Entry {
    std::string component;
    std::function<void()> stop;
  };
  const std::string name_;
  mutable std::mutex mutex_;  // guards entries_
  std::vector<Entry> entries_;
  std::mutex stop_mutex_;  // serializes stop(): a second caller waits for the first to finish
};

}  // namespace ts::core
