#include "polling/poller.hpp"

#include "core/log.hpp"

namespace ts::polling {

Poller::Poller(ScheduleOptions options, VehicleSource& source, PollerHooks hooks)
    : source_(source), hooks_(std::move(hooks)), schedule_(options, signal::now()) {}

Poller::~Poller() { stop(); }

void Poller::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void Poller::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Poller::nudge() {
  {
    std::lock_guard lock(mutex_);
    nudged_ = true;
  }
  cv_.notify_all();
}

std::vector<std::pair<std::string, PollState>> Poller::states() const {
  std::vector<std::pair<std::string, PollState>> out;
  auto vins = hooks_.vehicles();
  std::lock_guard lock(mutex_);
  for (auto& vin : vins) out.emplace_back(vin, schedule_.state(vin));
  return out;
}

void Poller::run() {
  auto logger = log::get("poller");
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    nudged_ = false;
    schedule_.set_vehicles(hooks_.vehicles());
    const auto now = signal::now();
    auto due = schedule_.due(now, hooks_.last_stream);
    stats_.polling_vehicles.store(schedule_.polling_count());
    for (const auto& vin : due) {
      if (stopping_) break;
      lock.unlock();
      VehicleData data = source_.fetch(vin);
      const auto at = signal::now();
      stats_.polls.inc();
      stats_.last_poll_us.store(at);
      std::vector<signal::Signal> signals;
      switch (data.outcome.kind) {
        case PollOutcome::Kind::Ok:
          stats_.ok.inc();
          for (auto& [name, value] : data.values) {
            signals.push_back({.vin = vin,
                               .name = std::move(name),
                               .ts = data.measured_at != 0 ? data.measured_at : at,
                               .received_at = at,
                               .source = signal::Source::Poll,
                               .value = std::move(value)});
          }
          stats_.signals.inc(signals.size());
          logger->debug("[vin={}] polled {} values", vin, signals.size());
          break;
        case PollOutcome::Kind::Asleep:
          stats_.asleep.inc();
          logger->debug("[vin={}] asleep or offline: backing off (not waking it)", vin);
          break;
        case PollOutcome::Kind::RateLimited:
          stats_.rate_limited.inc();
          logger->warn("[vin={}] Fleet API rate limit: next poll in {} s", vin,
                       std::chrono::duration_cast<std::chrono::seconds>(data.outcome.retry_after).count());
          break;
        case PollOutcome::Kind::Failed:
          stats_.failed.inc();
          logger->warn("[vin={}] poll failed: {}", vin, data.error);
          break;
      }
      if (!signals.empty() && hooks_.sink) hooks_.sink(std::move(signals));
      lock.lock();
      schedule_.record(vin, data.outcome, at);
    }
    stats_.polling_vehicles.store(schedule_.polling_count());
    auto wake = schedule_.next_wakeup(signal::now());
    auto until = std::chrono::steady_clock::now() +
                 (wake ? std::chrono::microseconds(std::max<std::int64_t>(*wake - signal::now(), 1000))
                       : std::chrono::microseconds(std::chrono::seconds(5)));
    cv_.wait_until(lock, until, [this] { return stopping_ || nudged_; });
  }
}

void Poller::register_metrics(core::MetricsRegistry& registry) const {
  auto counter = [&registry](const char* name, const char* help, const core::Counter& c) {
    registry.callback_counter(name, help, [&c] { return static_cast<double>(c.value()); });
  };
  counter("teslasync_poller_polls_total", "Fleet API vehicle polls", stats_.polls);
  counter("teslasync_poller_ok_total", "polls that returned data", stats_.ok);
  counter("teslasync_poller_asleep_total", "polls that found the car asleep or offline", stats_.asleep);
  counter("teslasync_poller_rate_limited_total", "polls refused with 429", stats_.rate_limited);
  counter("teslasync_poller_failed_total", "polls that failed otherwise", stats_.failed);
  counter("teslasync_poller_signals_total", "values recorded from polls", stats_.signals);
  registry.callback_gauge("teslasync_poller_vehicles_polling",
                          "vehicles whose stream is stale and are polled instead",
                          [this] { return static_cast<double>(stats_.polling_vehicles.load()); });
}

}  // namespace ts::polling
