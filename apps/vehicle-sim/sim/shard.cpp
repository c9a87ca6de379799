#include "sim/shard.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>

#include "core/log.hpp"
#include "sim/vehicle.hpp"

namespace ts::vehicle_sim {
namespace {

namespace asio = boost::asio;
using asio::redirect_error;
using asio::use_awaitable;

spdlog::logger& logger() {
  static const auto log = ts::log::get("sim");
  return *log;
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

Shard::Shard(std::size_t index, const RunPlan& plan) : index_(index), plan_(plan) {}

Shard::~Shard() = default;

void Shard::add_vehicle(const VehicleIdentity& identity) {
  vehicles_.push_back(std::make_unique<Vehicle>(*this, identity));
}

void Shard::run() {
  auto log_failure = [this](std::string_view what) {
    return [this, what](std::exception_ptr e) {
      if (e) logger().error("shard {}: {} stopped: {}", index_, what, what_of(e));
    };
  };
  asio::co_spawn(io_, launch_vehicles(), log_failure("launcher"));
  asio::co_spawn(io_, watch_deadline(), log_failure("deadline watch"));
  io_.run();
  if (!stats_.stopped_at) stats_.stopped_at = Clock::now();
  stats_.not_started = vehicles_.size() - launched_;
}

void Shard::request_stop() {
  asio::post(io_, [this] {
    // First request: the deadline watch begins the stop. During the grace period: abort now.
    ++stop_requests_;
    deadline_timer_.cancel();
  });
}

asio::awaitable<void> Shard::launch_vehicles() {
  boost::system::error_code ec;
  for (auto& vehicle : vehicles_) {
    if (stopping_) break;
    // Fleet-wide ramp: vehicle i connects at start + i / connect_rate, whatever its shard.
    const auto at = plan_.start + seconds(static_cast<double>(vehicle->identity().index) /
                                          plan_.config.connect_rate);
    if (at > Clock::now()) {
      launch_timer_.expires_at(at);
      co_await launch_timer_.async_wait(redirect_error(use_awaitable, ec));
      if (stopping_) break;
    }
    ++launched_;
    ++active_;
    asio::co_spawn(io_, vehicle->run(), [this, v = vehicle.get()](std::exception_ptr e) {
      if (e) {
        // Vehicles handle network errors themselves; this is a bug or an allocation failure.
        logger().error("[vehicle={} vin={}] stopped by an unexpected error: {}",
                       v->identity().index, v->identity().vin, what_of(e));
        stats_.disconnects.inc();
      }
      on_vehicle_done();
    });
  }
  launch_done_ = true;
  if (active_ == 0) deadline_timer_.cancel();
}

void Shard::on_vehicle_done() {
  --active_;
  // Nothing left to run (every vehicle failed or was stopped): end the shard now.
  if (active_ == 0 && (launch_done_ || stopping_)) deadline_timer_.cancel();
}

asio::awaitable<void> Shard::watch_deadline() {
  boost::system::error_code ec;
  // A stop request may arrive before this coroutine first runs: hence the counter checks.
  deadline_timer_.expires_at(plan_.deadline);
  if (stop_requests_ == 0 && !(launch_done_ && active_ == 0)) {
    co_await deadline_timer_.async_wait(redirect_error(use_awaitable, ec));
  }
  begin_stop();
  if (active_ == 0) co_return;

  deadline_timer_.expires_after(seconds(plan_.config.close_grace_s));
  if (stop_requests_ < 2) co_await deadline_timer_.async_wait(redirect_error(use_awaitable, ec));
  if (active_ == 0) co_return;
  logger().warn(
      "shard {}: {} connection(s) not closed {:.1f} s after the run; closing their sockets", index_,
      active_, plan_.config.close_grace_s);
  for (std::size_t i = 0; i < launched_; ++i) vehicles_[i]->abort();
}

void Shard::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  stats_.stopped_at = Clock::now();
  launch_timer_.cancel();
  for (std::size_t i = 0; i < launched_; ++i) vehicles_[i]->stop();
}

asio::ssl::context* Shard::tls_context(std::size_t cert_index, std::string& error) const {
  if (cert_index < plan_.tls_contexts.size() && plan_.tls_contexts[cert_index]) {
    return plan_.tls_contexts[cert_index].get();
  }
  error = cert_index < plan_.tls_errors.size() && !plan_.tls_errors[cert_index].empty()
              ? plan_.tls_errors[cert_index]
              : std::string("no TLS context was prepared for this certificate");
  return nullptr;
}

void Shard::record_connect_error(ConnectError error) {
  if (!stats_.first_connect_error) stats_.first_connect_error = std::move(error);
}

bool Shard::should_log_warning() {
  if (warnings_left_ > 0) {
    --warnings_left_;
    return true;
  }
  if (warnings_left_ == 0) {
    --warnings_left_;
    logger().warn(
        "shard {}: further per-vehicle warnings are not shown; the JSON line has the "
        "counts",
        index_);
  }
  return false;
}

}  // namespace ts::vehicle_sim
