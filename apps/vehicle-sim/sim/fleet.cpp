#include "sim/fleet.hpp"

#include <sys/resource.h>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <csignal>
#include <random>
#include <stdexcept>
#include <thread>

#include "core/log.hpp"
#include "pki/tls_context.hpp"
#include "sim/vehicle.hpp"

namespace ts::vehicle_sim {
namespace {

namespace asio = boost::asio;

spdlog::logger& logger() {
  static const auto log = ts::log::get("sim");
  return *log;
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// One descriptor per connection: lift the soft limit towards the hard one if needed.
void raise_fd_limit(std::size_t vehicles) {
  const rlim_t needed = static_cast<rlim_t>(vehicles) + 64;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < needed) {
    limit.rlim_cur = std::min(needed, limit.rlim_max);
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur < needed) {
    logger().warn(
        "only {} file descriptors are allowed (ulimit -n) for {} vehicles; some "
        "connections will fail with 'Too many open files'",
        limit.rlim_cur, vehicles);
  }
}

std::string host_header(const std::string& host, std::uint16_t port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

}  // namespace

Fleet::Fleet(RunConfig config, CertDir certs, std::vector<VehicleIdentity> identities)
    : identities_(std::move(identities)) {
  plan_.config = std::move(config);
  plan_.certs = std::move(certs);
}

Fleet::~Fleet() = default;

FleetResult Fleet::run() {
  const RunConfig& cfg = plan_.config;
  asio::io_context control{1};

  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(control);
  plan_.endpoints = resolver.resolve(cfg.host, std::to_string(cfg.port), ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("cannot resolve --server host '{}': {}", cfg.host, ec.message()));
  }
  plan_.host_header = host_header(cfg.host, cfg.port);
  std::random_device entropy;
  plan_.run_nonce = (std::uint64_t{entropy()} << 32) ^ entropy() ^
                    static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  raise_fd_limit(identities_.size());

  const std::size_t shard_count = std::min<std::size_t>(cfg.threads, identities_.size());
  for (std::size_t i = 0; i < shard_count; ++i) {
    shards_.push_back(std::make_unique<Shard>(i, plan_));
  }
  for (const VehicleIdentity& id : identities_) shards_[id.index % shard_count]->add_vehicle(id);

  const double ramp_s = static_cast<double>(identities_.size() - 1) / cfg.connect_rate;
  logger().info(
      "{} vehicle(s), {} certificate(s), server {} (TLS name {}), {}, {} datums/record, "
      "duration {} s, ramp {:.1f} s at {} connections/s, {} thread(s)",
      identities_.size(), plan_.certs.vehicles.size(), plan_.host_header, cfg.tls_name(),
      cfg.idle          ? std::string("idle")
      : cfg.rate_hz > 0 ? fmt::format("{} record(s)/s per vehicle", cfg.rate_hz)
                        : std::string("closed loop"),
      cfg.datums, cfg.duration_s, ramp_s, cfg.connect_rate, shard_count);
  if (ramp_s >= cfg.duration_s) {
    logger().warn(
        "the ramp ({:.1f} s) is longer than --duration; the last vehicles will not "
        "connect (raise --connect-rate or --duration)",
        ramp_s);
  }

  asio::signal_set signals(control, SIGINT, SIGTERM);
  asio::steady_timer progress(control);
  asio::co_spawn(
      control,
      [&]() -> asio::awaitable<void> {
        for (int count = 1;; ++count) {
          auto [wait_ec, signo] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
          if (wait_ec) co_return;
          logger().info("signal {}: {}", signo,
                        count == 1 ? "stopping, closing connections (again to force)"
                                   : "closing sockets now");
          for (auto& shard : shards_) shard->request_stop();
        }
      },
      asio::detached);
  if (cfg.progress_interval_s > 0) {
    asio::co_spawn(
        control,
        [&]() -> asio::awaitable<void> {
          for (;;) {
            progress.expires_after(seconds(cfg.progress_interval_s));
            auto [wait_ec] = co_await progress.async_wait(asio::as_tuple(asio::use_awaitable));
            if (wait_ec) co_return;
            std::uint64_t connected = 0, failed = 0, sent = 0, acked = 0, errors = 0;
            for (auto& shard : shards_) {
              const ShardStats& s = shard->stats();
              connected += s.connected.value();
              failed += s.connect_failures.value();
              sent += s.sent.value();
              acked += s.acked.value();
              errors += s.error_replies.value() + s.bad_replies.value() + s.disconnects.value();
            }
            logger().info(
                "t={:.0f}s connected={}/{} connect_failures={} sent={} acked={} "
                "errors={}",
                std::chrono::duration<double>(Clock::now() - plan_.start).count(), connected,
                identities_.size(), failed, sent, acked, errors);
          }
        },
        asio::detached);
  }

  // Phase 1, before the clock starts: the TLS contexts (~1.3 ms of CPU each with OpenSSL 3.0,
  // which would otherwise slow the ramp down and show up in the latencies).
  prepare_tls_contexts();

  // Phase 2: the run.
  plan_.start = Clock::now();
  plan_.deadline = plan_.start + seconds(cfg.duration_s);
  plan_.measure_from = plan_.start + seconds(cfg.warmup_s);
  std::size_t finished = 0;
  std::vector<std::thread> threads;
  threads.reserve(shards_.size());
  for (auto& shard : shards_) {
    threads.emplace_back([&, s = shard.get()] {
      try {
        s->run();
      } catch (const std::exception& e) {
        logger().error("shard {} failed: {}", s->index(), e.what());
      }
      asio::post(control, [&] {
        if (++finished == shards_.size()) {
          signals.cancel();
          progress.cancel();
        }
      });
    });
  }
  control.run();
  for (auto& t : threads) t.join();

  std::vector<const ShardStats*> stats;
  for (auto& shard : shards_) stats.push_back(&shard->stats());
  return merge_shard_stats(stats, identities_.size(), plan_.start);
}

void Fleet::prepare_tls_contexts() {
  const std::size_t count = std::min(identities_.size(), plan_.certs.vehicles.size());
  plan_.tls_contexts.clear();
  plan_.tls_contexts.resize(count);
  plan_.tls_errors.assign(count, std::string());
  // Work is split by index, every worker writing only its own slots: no locks. All cores help,
  // whatever --threads says: nothing else runs yet.
  const std::size_t workers = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1,
                                                      std::max<std::size_t>(count / 64, 1));
  const auto started = Clock::now();
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < workers; ++w) {
    threads.emplace_back([this, w, workers, count] {
      for (std::size_t i = w; i < count; i += workers) {
        const VehicleCert& cert = plan_.certs.vehicles[i];
        try {
          plan_.tls_contexts[i] =
              std::make_unique<asio::ssl::context>(ts::pki::make_vehicle_client_context(
                  plan_.certs.ca_file.string(), cert.cert_file.string(), cert.key_file.string()));
        } catch (const std::exception& e) {
          plan_.tls_errors[i] = e.what();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::size_t failed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (plan_.tls_contexts[i]) continue;
    if (failed++ < 3) {
      logger().warn("cannot load {}: {}", plan_.certs.vehicles[i].cert_file.string(),
                    plan_.tls_errors[i]);
    }
  }
  logger().info("{} TLS context(s) ready in {:.2f} s{}", count - failed,
                std::chrono::duration<double>(Clock::now() - started).count(),
                failed == 0 ? std::string() : fmt::format("; {} did not load", failed));
}

FleetResult merge_shard_stats(std::span<const ShardStats* const> shards, std::size_t vehicles,
                              Clock::time_point start) {
  FleetResult out;
  RunReport& r = out.report;
  r.vehicles = vehicles;
  LatencyHistogram latency;
  Clock::time_point stopped = start;
  for (const ShardStats* s : shards) {
    r.sent += s->sent.value();
    r.acked += s->acked.value();
    r.error_replies += s->error_replies.value();
    r.bad_replies += s->bad_replies.value();
    r.connected += s->connected.value();
    r.connect_failures += s->connect_failures.value();
    r.disconnects += s->disconnects.value();
    r.unacked += s->unacked.value();
    latency.merge(s->ack_latency);
    if (s->stopped_at) stopped = std::max(stopped, *s->stopped_at);
    out.not_started += s->not_started;
    if (s->first_connect_error &&
        (!out.first_connect_error || s->first_connect_error->at < out.first_connect_error->at)) {
      out.first_connect_error = s->first_connect_error;
    }
  }
  r.errors = r.error_replies + r.bad_replies + r.connect_failures + r.disconnects;
  r.ack_p50_ms = latency.percentile_ms(0.50);
  r.ack_p99_ms = latency.percentile_ms(0.99);
  r.ack_max_ms = latency.max_ms();
  r.duration_s = std::chrono::duration<double>(stopped - start).count();
  r.records_per_s = r.duration_s > 0 ? static_cast<double>(r.acked) / r.duration_s : 0.0;
  return out;
}

}  // namespace ts::vehicle_sim
