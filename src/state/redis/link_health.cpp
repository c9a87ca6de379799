#include "state/redis/link_health.hpp"

#include "core/log.hpp"

namespace ts::state::redis {

LinkHealth::LinkHealth(std::string client, std::string target, core::MetricsRegistry& metrics)
    : client_(std::move(client)),
      target_(std::move(target)),
      log_(ts::log::get("redis")),
      gauge_(metrics
                 .gauge("teslasync_redis_up",
                        "1 while the Redis connection of this client (mirror, publisher, "
                        "subscriber) is up",
                        {"client"})
                 .with({client_})),
      failures_(metrics
                    .counter("teslasync_redis_connect_failures_total",
                             "Redis connection attempts that failed, and connections lost",
                             {"client"})
                    .with({client_})) {
  gauge_.set(0);
}

void LinkHealth::up(std::string_view backlog) {
  connects_.inc();
  up_.store(true, std::memory_order_relaxed);
  gauge_.set(1);
  if (outage_logged_) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - down_since_).count();
    log_->info("[{}] Redis {} is reachable again after {:.1f} s{}{}", client_, target_, seconds,
               backlog.empty() ? "" : "; ", backlog);
  } else {
    log_->info("[{}] connected to Redis {}{}{}", client_, target_, backlog.empty() ? "" : "; ",
               backlog);
  }
  ever_up_ = true;
  outage_logged_ = false;
}

void LinkHealth::down(std::string_view why, std::string_view consequence) {
  failures_.inc();
  up_.store(false, std::memory_order_relaxed);
  gauge_.set(0);
  if (outage_logged_) {
    log_->debug("[{}] Redis {} still unreachable: {}", client_, target_, why);
    return;
  }
  outage_logged_ = true;
  down_since_ = std::chrono::steady_clock::now();
  log_->warn("[{}] {} Redis {}: {}; {}; retrying in the background", client_,
             ever_up_ ? "lost the connection to" : "cannot connect to", target_, why, consequence);
}

}  // namespace ts::state::redis
