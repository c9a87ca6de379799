// telemetry-server: composition root. Reads the reference's config file, builds the dispatchers,
// the TLS context and the vehicle server, serves /metrics and /status, and shuts down in two
// phases on SIGINT/SIGTERM. No protocol logic lives here.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <malloc.h>


#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "cli.hpp"
#include "config.hpp"
#include "core/lifecycle.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "dispatch/logger/logger_dispatcher.hpp"
#include "dispatch/mqtt/mqtt_dispatcher.hpp"
#include "http/server.hpp"
#include "pki/tls_context.hpp"
#include "runtime/shard_pool.hpp"
#include "vehicle_link/vehicle_server.hpp"

namespace {

using ts::server::Config;
using ts::server::Dispatcher;

ts::dispatch::MqttOptions mqtt_options(const ts::server::MqttConfig& m) {
  ts::dispatch::MqttOptions o;
  o.host = m.broker.host.empty() ? "127.0.0.1" : m.broker.host;
  o.port = m.broker.port;
  o.tls = m.broker.tls;
  o.ca_file = m.ca_file;
  o.cert_file = m.cert_file;
  o.key_file = m.key_file;
  o.client_id = m.client_id;
  o.username = m.username;
  o.password = m.password;
  o.topic_base = m.topic_base;
  o.qos = m.qos;
  o.retained = m.retained;
  o.event_time_envelope = m.event_time_envelope;
  o.record_message = m.record_message;
  o.connect_timeout = m.connect_timeout;
  o.publish_timeout = m.publish_timeout;
  o.disconnect_timeout = m.disconnect_timeout;
  o.connect_retry_interval = m.connect_retry_interval;
  o.keep_alive_seconds = static_cast<int>(m.keep_alive.count());
  return o;
}

int run(const Config& config) {
  auto log = ts::log::get("server");
  ts::core::MetricsRegistry metrics;
  ts::core::register_process_metrics(metrics);

  // The components, declared before the Lifecycle so that they outlive it: whatever was started
  // is stopped in reverse order before any of them is destroyed, also when start-up fails half
  // way (core/lifecycle.hpp).
  std::optional<ts::pki::VehicleServerContext> tls_owner;  // outlives the server using it
  std::map<Dispatcher, std::unique_ptr<ts::dispatch::Dispatcher>> dispatchers;
  std::unique_ptr<ts::runtime::ShardPool> pool;
  std::unique_ptr<ts::vehicle_link::VehicleServer> server_owner;
  std::unique_ptr<ts::http::Server> metrics_server, status_server;
  ts::core::Lifecycle life("telemetry-server");
  const auto grace = config.mqtt ? config.mqtt->disconnect_timeout : std::chrono::milliseconds(250);

  pool = std::make_unique<ts::runtime::ShardPool>(ts::server::effective_workers(config));
  life.started("shard pool", [&] { pool->stop(); });  // stopped last; its threads run from start()

  // Dispatchers: one instance each, for those named in `records` (spec §8.1).
  for (const auto& [type, names] : config.records) {
    for (auto name : names) {
      if (dispatchers.count(name)) continue;
      if (name == Dispatcher::Mqtt) {
        auto mqtt = std::make_unique<ts::dispatch::MqttDispatcher>(mqtt_options(*config.mqtt), metrics);
        auto* d = mqtt.get();
        dispatchers[name] = std::move(mqtt);
        life.start("mqtt dispatcher", [d] { d->start(); }, [d, grace] { d->shutdown(grace); });
      } else if (name == Dispatcher::Logger) {
        auto* d = (dispatchers[name] = std::make_unique<ts::dispatch::LoggerDispatcher>()).get();
        life.started("logger dispatcher", [d, grace] { d->shutdown(grace); });
      }
    }
  }

  auto& tls = tls_owner.emplace(ts::pki::make_vehicle_server_context(
      {.server_cert = config.tls.server_cert, .server_key = config.tls.server_key,
       .ca_file = config.tls.ca_file}));
  log->info("loaded {} vehicle CA certificate(s) from {}; advertising {} acceptable client CA "
            "name(s); sending a chain of {} certificate(s)",
            tls.ca_count, config.tls.ca_file, tls.client_ca_names, tls.chain_length);
  if (tls.client_ca_names > 10)
    log->warn("tls.ca_file advertises {} client CA names: vehicles have been seen to stop sending "
              "their certificate when this list is long; keep only Tesla's vehicle CAs",
              tls.client_ca_names);

  ts::vehicle_link::LinkOptions link;
  link.host = config.host;
  link.port = config.port;
  link.tls_native_records = config.tls.native_record_layer;
  link.pipeline.transmit_decoded_records = config.transmit_decoded_records;
  for (const auto& [type, names] : config.records) {
    link.pipeline.configured_record_types.push_back(type);
    auto& route = link.routes[type];
    for (auto name : names) route.push_back(dispatchers.at(name).get());
  }
  for (const auto& [type, name] : config.reliable_ack_sources)
    link.reliable_ack_sources[type] = dispatchers.at(name).get();
  link.rate_limit.enabled = config.rate_limit.enabled;
  if (config.rate_limit.enabled) {
    link.rate_limit.message_limit = config.rate_limit.message_limit;
    link.rate_limit.interval =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(config.rate_limit.interval);
  } else {
    link.rate_limit.message_limit = ts::server::kCountingOnlyMessageLimit;
    link.rate_limit.interval = ts::server::kCountingOnlyInterval;
  }
  link.tracked_vins = config.vins_signal_tracking_enabled;
  link.suppress_tls_handshake_error_logging = config.suppress_tls_handshake_error_logging;
  link.max_connections_per_identity = config.max_connections_per_identity;

  server_owner = std::make_unique<ts::vehicle_link::VehicleServer>(*pool, tls.context, link, metrics);
  auto& server = *server_owner;
  life.start("vehicle server", [&] { server.start(); }, [&] {
    if (!server.close_sessions(std::chrono::seconds(5)))
      log->warn("{} connection(s) still open after 5 s; closing anyway", server.connections());
  });

  if (config.monitoring.prometheus_metrics_port > 0) {
    metrics_server = std::make_unique<ts::http::Server>(
        pool->shard(0),
        ts::http::ServerOptions{.host = config.monitoring.prometheus_metrics_host,
                                .port = config.monitoring.prometheus_metrics_port},
        [&metrics](const ts::http::Request& r) {
          if (r.path() == "/metrics")
            return ts::http::Response{200, "text/plain; version=0.0.4; charset=utf-8",
                                      metrics.render_prometheus(), {}};
          return ts::http::Response{404, "text/plain; charset=utf-8", "not found\n", {}};
        });
    life.start("metrics server", [&] { metrics_server->start(); }, [&] { metrics_server->stop(); });
  }
  if (config.status_port > 0) {
    // spec §2.6: plain HTTP on all interfaces, `/status` -> "ok".
    status_server = std::make_unique<ts::http::Server>(
        pool->shard(0), ts::http::ServerOptions{.host = "", .port = config.status_port},
        [](const ts::http::Request& r) {
          if (r.path() == "/status") return ts::http::Response{200, "text/plain", "ok", {}};
          return ts::http::Response{404, "text/plain; charset=utf-8", "404 page not found\n", {}};
        });
    life.start("status server", [&] { status_server->start(); }, [&] { status_server->stop(); });
  }

  // Stopped first: vehicles' input, so that sessions finish their frame and dispatchers flush.
  life.started("vehicle input", [&] { server.shutdown_input(); });
  pool->start();
  log->info("listening for vehicles on {}:{} with {} worker(s){}{}",
            config.host.empty() ? "*" : config.host, server.port(), pool->size(),
            metrics_server ? fmt::format("; metrics on http://{}:{}/metrics",
                                         config.monitoring.prometheus_metrics_host,
                                         metrics_server->port())
                           : "",
            status_server ? fmt::format("; status on :{}", status_server->port()) : "");

  boost::asio::io_context main_io;
  // A TLS handshake allocates ~40 KB and frees all but the connection's ~7 KB; glibc keeps the
  // freed pages of its arenas resident (10,000 idle vehicles: 320 MiB instead of 130). After
  // connections came or went, give free pages back to the system (malloc_trim walks the arenas
  // off the shard threads; with no churn it is never called).
  auto& trims = metrics
                    .counter("teslasync_process_memory_trims_total",
                             "Times freed heap memory was returned to the system after "
                             "connection churn (malloc_trim).")
                    .get();
  boost::asio::steady_timer trim_timer(main_io);
  std::uint64_t trimmed_at = 0;
  int received = 0;  // the signal that stops us
  std::function<void()> schedule_trim = [&] {
    trim_timer.expires_after(std::chrono::seconds(10));
    trim_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec || received != 0) return;
      if (const auto handshakes = server.handshakes(); handshakes != trimmed_at) {
        trimmed_at = handshakes;
        const auto start = std::chrono::steady_clock::now();
        malloc_trim(0);
        trims.inc();
        log->debug("returned free heap memory to the system in {} ms",
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count());
      }
      schedule_trim();
    });
  };
  schedule_trim();
  boost::asio::signal_set signals(main_io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    received = sig;
    trim_timer.cancel();
  });
  main_io.run();

  // Two-phase shutdown, in reverse order of start: stop input, stop the HTTP servers, let sessions
  // finish their frame, flush dispatchers, stop the shards.
  log->info("signal {}: shutting down", received);
  life.stop();
  log->info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ts::server::ServerOptions cli;
  try {
    cli = ts::server::parse_command_line(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "telemetry-server: " << e.what() << "\n\n" << ts::server::usage_text();
    return 2;
  }
  if (cli.show_help) {
    std::cout << ts::server::usage_text();
    return 0;
  }
  if (cli.show_version) {
    std::cout << ts::server::version_text() << "\n";
    return 0;
  }
  ts::server::LoadedConfig loaded;
  try {
    loaded = ts::server::load_config_file(cli.config_path);
  } catch (const std::exception& e) {
    std::cerr << "telemetry-server: invalid configuration: " << e.what() << "\n";
    return 1;
  }
  Config& config = loaded.config;
  ts::server::apply_command_line(cli, config);
  // The loader already turned an unknown log_level into "info" with a warning.
  ts::log::configure({.level = config.log_level, .json = config.json_log_enable});
  auto log = ts::log::get("server");
  for (const auto& w : loaded.warnings) log->warn("config: {}", w.text());
  try {
    return run(config);
  } catch (const std::exception& e) {
    log->critical("cannot start: {}", e.what());
    return 1;
  }
}
