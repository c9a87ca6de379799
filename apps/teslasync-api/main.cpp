// teslasync-api: the composition root. It reads the environment (config.cpp), opens the
// database, warms L1, starts ingest, the HTTP server, the poller and the housekeeping threads, and
// shuts them down in order on SIGINT/SIGTERM. Everything it wires lives in src/ and in the files
// next to it; docs/teslasync-api.md describes the whole.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <bit>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "auth.hpp"
#include "config.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "fleet_bridge.hpp"
#include "http/server.hpp"
#include "ingest/ingest.hpp"
#include "ingest/topic.hpp"
#include "live.hpp"
#include "mqtt/subscriber.hpp"
#include "pki/keypair.hpp"
#include "routes.hpp"
#include "services.hpp"
#include "state/redis/pubsub.hpp"
#include "state/redis/redis_config.hpp"
#include "state/redis/redis_mirror.hpp"

#ifndef TS_VERSION
#define TS_VERSION "dev"
#endif

namespace ts::api {
namespace {

static_assert(sizeof(mqtt::AckToken) == sizeof(ingest::AckToken));

/// ingest's writer: one transaction per batch.
class DatabaseWriter final : public ingest::BatchWriter {
 public:
  explicit DatabaseWriter(storage::Database& db) : db_(db) {}
  Result<void> write(const storage::Batch& batch) override {
    auto r = db_.write_batch(batch);
    if (!r) return r.error();
    return {};
  }

 private:
  storage::Database& db_;
};

/// The public key to serve, or "" when none is configured. Refuses private keys.
std::string load_public_key(const Config& config) {
  if (config.public_key_file.empty()) return {};
  auto inspection = pki::inspect_pem_file(config.public_key_file);
  if (inspection.private_key) {
    throw std::runtime_error("TESLA_PUBLIC_KEY_FILE=" + config.public_key_file +
                             " holds a PRIVATE key; it would be served to anyone. Point it at the "
                             "public half (tsctl keygen writes both files)");
  }
  std::ifstream in(config.public_key_file);
  std::stringstream text;
  text << in.rdbuf();
  auto pem = pki::validate_public_key_pem(text.str());
  if (!pem) {
    throw std::runtime_error("TESLA_PUBLIC_KEY_FILE=" + config.public_key_file + ": " +
                             pem.error().message() + " (Tesla needs an EC P-256 public key)");
  }
  return *pem;
}

/// Runs `fn` on its own thread `first` after construction (default: one `period`), then every
/// `period`, until stop().
class Every {
 public:
  Every(std::chrono::milliseconds period, std::function<void()> fn,
        std::optional<std::chrono::milliseconds> first = std::nullopt)
      : thread_([this, period, first, fn = std::move(fn)] {
          std::unique_lock lock(mutex_);
          auto wait = first.value_or(period);
          while (!cv_.wait_for(lock, wait, [this] { return stopping_; })) {
            lock.unlock();
            fn();
            lock.lock();
            wait = period;
          }
        }) {}
  ~Every() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;  // guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

int run(const Config& config) {
  auto logger = log::get("api");
  std::filesystem::create_directories(config.data_dir);
  core::MetricsRegistry metrics;
  core::register_process_metrics(metrics);

  // ---- storage ----
  auto opened = storage::open_database(config.database_url, config.data_dir, {.metrics = &metrics});
  if (!opened) {
    throw std::runtime_error("DATABASE_URL=" + storage::redact_url(config.database_url) + ": " +
                             opened.error().message());
  }
  storage::Database& db = **opened;
  logger->info("signal_log in {} ({})",
               config.database_url.empty()
                   ? (std::filesystem::path(config.data_dir) / "teslasync.db").string()
                   : storage::redact_url(config.database_url),
               db.backend());

  TokenAuth tokens;
  auto token_usage = set_up_tokens(config, db, tokens);
  const std::string public_key = load_public_key(config);

  VinRegistry vins;
  for (const auto& vin : config.vehicles) {
    auto r = db.upsert_vehicle({.vin = vin, .source = storage::VehicleSource::Manual,
                                .created_at = signal::now()});
    if (!r) throw std::runtime_error("registering " + vin + ": " + r.error().message());
  }
  if (auto list = db.list_vehicles(); list) {
    for (const auto& v : *list) vins.add(v.vin);
  } else {
    throw std::runtime_error("reading vehicles: " + list.error().message());
  }

  // ---- state: L1, warmed from Redis (L2) or signal_log ----
  state::Store store(metrics);
  std::unique_ptr<state::redis::RedisMirror> mirror;
  std::unique_ptr<state::redis::PubSub> bus;
  bool warm = false;
  if (!config.redis_url.empty()) {
    auto redis = state::redis::parse_redis_url(config.redis_url);
    mirror = std::make_unique<state::redis::RedisMirror>(
        redis,
        state::redis::RedisMirrorOptions{
            .ttl = std::chrono::duration_cast<std::chrono::milliseconds>(config.redis_key_ttl),
            .resync_from = &store},
        metrics);
    bus = std::make_unique<state::redis::PubSub>(redis, state::redis::PubSubOptions{}, metrics);
    if (auto loaded = mirror->load_all(); loaded) {
      auto r = store.load(*loaded);
      logger->info("L1 warmed from Redis: {} signals ({} newer)", loaded->size(), r.newer);
      warm = true;
    } else {
      logger->warn("Redis unavailable at start ({}); warming L1 from signal_log instead",
                   loaded.error().message());
    }
  }
  if (!warm) {
    if (auto latest = db.latest_signals(); latest) {
      store.load(*latest);
      logger->info("L1 warmed from signal_log: {} signals of {} vehicles", latest->size(),
                   store.vehicle_count());
    } else {
      logger->warn("could not read signal_log to warm L1: {}", latest.error().message());
    }
  }

  // ---- live views ----
  auto hub = std::make_shared<http::EventHub>(
      metrics, http::EventHubOptions{.replay_max_events = std::max<std::size_t>(config.sse_replay_events, 1)});
  Live live(store, mirror.get(), hub, bus.get(), std::chrono::milliseconds(250));
  live.start();
  if (mirror) mirror->start();
  if (bus) bus->start();

  // ---- Fleet API and polling ----
  std::unique_ptr<RefreshTokenStore> refresh_tokens;  // outlives the client that calls it
  std::unique_ptr<fleet_api::Client> fleet;
  std::unique_ptr<FleetVehicleSource> source;
  std::unique_ptr<polling::Poller> poller;
  if (!config.fleet_api_base_url.empty()) {
    refresh_tokens = std::make_unique<RefreshTokenStore>(db, &metrics);
    const std::string refresh = load_refresh_token(db, config.refresh_token, *refresh_tokens);
    fleet = std::make_unique<fleet_api::Client>(fleet_api::ClientOptions{
        .base_url = config.fleet_api_base_url,
        .auth_url = config.auth_base_url,
        .client_id = config.client_id,
        .client_secret = config.client_secret,
        .user_refresh_token = refresh,
        .on_user_token = [&store = *refresh_tokens](const fleet_api::Token& t) {
          if (!t.refresh_token.empty()) store.save(t.refresh_token);
        },
        .metrics = &metrics});
    source = std::make_unique<FleetVehicleSource>(*fleet);
    poller = std::make_unique<polling::Poller>(
        polling::ScheduleOptions{
            .telemetry_enabled = config.telemetry_enabled,
            .stale_timeout = std::chrono::duration_cast<polling::Duration>(config.stale_timeout),
            .fallback_interval =
                std::chrono::duration_cast<polling::Duration>(config.fallback_poll_interval),
            .asleep_initial = std::chrono::duration_cast<polling::Duration>(config.asleep_backoff)},
        *source,
        polling::PollerHooks{
            .vehicles = [&vins] { return vins.list(); },
            .last_stream = [&store](std::string_view vin) {
              return store.last_received(vin, signal::Source::Stream);
            },
            .sink = [&db, &live](std::vector<signal::Signal>&& signals) {
              live.apply_polled(signals);
              if (auto r = db.append_signals(signals); !r) {
                log::get("poller")->error("storing {} polled values failed: {}", signals.size(),
                                          r.error().message());
              }
            }});
    poller->register_metrics(metrics);
  }

  // ---- ingest: MQTT -> batches -> signal_log, acknowledged when durable ----
  DatabaseWriter writer(db);
  std::unique_ptr<mqtt::Subscriber> subscriber;
  ingest::Ingest ingest(
      {.topic_base = config.topic_base,
       .batch_max_messages = config.batch_max_messages,
       .batch_window = config.batch_window,
       .queue_batches = config.writer_queue_batches},
      writer,
      {.registered = [&vins](std::string_view vin) { return vins.contains(vin); },
       .observe = [&live](const storage::Batch& records) { live.observe(records); },
       .ack = [&subscriber](const std::vector<ingest::AckToken>& batch_tokens) {
         std::vector<mqtt::AckToken> acks;
         acks.reserve(batch_tokens.size());
         for (const auto& t : batch_tokens) acks.push_back(std::bit_cast<mqtt::AckToken>(t));
         subscriber->ack(acks);
       },
       .on_pause = [&subscriber](bool paused) {
         if (!subscriber) return;
         if (paused) {
           subscriber->pause();
         } else {
           subscriber->resume();
         }
       }});
  ingest.register_metrics(metrics);
  if (config.telemetry_enabled) {
    subscriber = std::make_unique<mqtt::Subscriber>(
        mqtt::SubscriberOptions{.host = config.mqtt_host,
                                .port = config.mqtt_port,
                                .tls = config.mqtt_tls,
                                .ca_file = config.mqtt_ca_file,
                                .client_id = config.mqtt_client_id,
                                .username = config.mqtt_username,
                                .password = config.mqtt_password,
                                .filters = ingest::subscription_filters(config.topic_base)},
        [&ingest](const mqtt::Message& m) {
          ingest.offer(m.topic, m.payload, std::bit_cast<ingest::AckToken>(m.token), signal::now());
        });
    subscriber->register_metrics(metrics);
    ingest.start();
    subscriber->start();
    logger->info("subscribing to {}:{} under '{}/' as client '{}'", config.mqtt_host,
                 config.mqtt_port, config.topic_base, config.mqtt_client_id);
  } else {
    logger->info("FLEET_TELEMETRY_ENABLED=false: no MQTT ingest; polling is the only source");
  }

  // ---- pipeline summary: rates sampled every 2 s ----
  RateMeter messages_rate, rows_rate, sse_rate, dead_rate, failure_rate;
  auto sample = [&] {
    const auto now = signal::now();
    const auto& st = ingest.stats();
    messages_rate.sample(static_cast<double>(st.messages.value()), now);
    rows_rate.sample(static_cast<double>(st.rows_written.value()), now);
    dead_rate.sample(static_cast<double>(st.dead_letters.value()), now);
    failure_rate.sample(static_cast<double>(st.write_failures.value()), now);
    sse_rate.sample(static_cast<double>(hub->metrics().sent.value()), now);
  };
  sample();
  Every sampler(std::chrono::seconds(2), sample);

  Services services{.config = config,
                    .metrics = metrics,
                    .db = db,
                    .store = store,
                    .vins = vins,
                    .tokens = tokens,
                    .live = live,
                    .hub = hub,
                    .public_key_pem = public_key,
                    .fleet = fleet.get(),
                    .poller = poller.get()};
  services.pipeline = [&] {
    const auto now = signal::now();
    const auto& st = ingest.stats();
    auto age = [now](std::int64_t t) -> std::optional<double> {
      if (t == 0) return std::nullopt;
      return (now - t) / 1e6;
    };
    PipelineSnapshot s{.now_us = now,
                       .telemetry_enabled = config.telemetry_enabled,
                       .stale_timeout = config.stale_timeout,
                       .registered_vehicles = vins.size()};
    if (subscriber) {
      s.mqtt_connected = subscriber->connected();
      s.mqtt_subscribed = subscriber->subscribed();
      s.mqtt_reconnects = subscriber->stats().disconnects.value();
    }
    s.mqtt_broker = config.mqtt_host + ":" + std::to_string(config.mqtt_port);
    s.messages_per_second = messages_rate.rate();
    s.last_message_age_seconds = age(st.last_message_us.load());
    s.messages_total = st.messages.value();
    s.decode_failures = st.decode_failures.value();
    s.dead_letters = st.dead_letters.value();
    s.unregistered = st.unregistered.value();
    s.dead_letters_recent = dead_rate.increase();
    s.l1_vehicles = store.vehicle_count();
    s.l1_signals = store.signal_count();
    s.redis_configured = mirror != nullptr;
    if (mirror) {
      s.redis_up = mirror->connected();
      s.redis_pending = mirror->pending();
      s.redis_errors = mirror->stats().errors;
    }
    s.database = std::string(db.backend());
    s.queue_batches = st.queued_batches.load();
    s.queue_capacity = config.writer_queue_batches;
    s.queue_messages = st.queued_messages.load();
    s.append_rate = rows_rate.rate();
    s.write_failures = st.write_failures.value();
    s.write_failures_recent = failure_rate.increase();
    s.paused = st.paused.load();
    s.last_write_age_seconds = age(st.last_write_us.load());
    s.sse_clients = static_cast<std::size_t>(hub->metrics().clients.value());
    s.sse_events_per_second = sse_rate.rate();
    s.sse_slow_disconnects = hub->metrics().slow_disconnects.value();
    s.polling_configured = poller != nullptr;
    if (poller) {
      const auto& ps = poller->stats();
      s.polling_vehicles = ps.polling_vehicles.load();
      s.polls = ps.polls.value();
      s.polls_failed = ps.failed.value();
      s.polls_asleep = ps.asleep.value();
      s.polls_rate_limited = ps.rate_limited.value();
      s.last_poll_age_seconds = age(ps.last_poll_us.load());
    }
    return s;
  };
  services.not_ready_reason = [&]() -> std::string {
    // A resumed session delivers (a backlog first) before the SUBACK of our re-SUBSCRIBE.
    if (subscriber && !subscriber->subscribed() && !subscriber->session_resumed()) {
      return subscriber->connected() ? "MQTT subscription not established"
                                     : "MQTT broker not connected";
    }
    return {};
  };

  // ---- HTTP ----
  boost::asio::io_context io;
  http::Server server(io,
                      {.host = config.http_host,
                       .port = config.http_port,
                       .blocking_threads = config.http_threads,
                       .sse = {.heartbeat = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   config.sse_heartbeat),
                               .client_max_events = config.sse_client_buffer_events}},
                      make_router(services));
  server.start();
  logger->info("teslasync-api {} listening on http://{}:{}", TS_VERSION, config.http_host,
               server.port());

  if (poller) poller->start();
  std::unique_ptr<Every> diagnostics;
  if (fleet && config.errors_refresh_interval.count() > 0) {
    // The first refresh soon after start, not one whole interval later (15 min by default).
    diagnostics = std::make_unique<Every>(
        config.errors_refresh_interval,
        [&services] {
          for (const auto& e : {refresh_fleet_errors(services), refresh_error_vins(services)}) {
            if (!e.empty()) log::get("poller")->warn("diagnostics refresh: {}", e);
          }
        },
        std::min<std::chrono::milliseconds>(config.errors_refresh_interval, std::chrono::seconds(5)));
  }
  std::unique_ptr<Every> retention;
  if (config.retention.count() > 0) {
    auto prune = [&db, &config] {
      const auto cutoff =
          signal::now() - std::chrono::duration_cast<std::chrono::microseconds>(config.retention).count();
      if (auto r = db.delete_signals_before(cutoff); !r) {
        log::get("storage")->warn("retention failed: {}", r.error().message());
      }
      (void)db.delete_events_before(cutoff);
    };
    retention = std::make_unique<Every>(std::chrono::hours(1), prune, std::chrono::minutes(1));
  }

  // ---- run until SIGINT/SIGTERM, then shut down in order ----
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    logger->info("signal {}: shutting down", sig);
    if (subscriber) subscriber->pause();  // take nothing new
    ingest.stop();                        // write and acknowledge what was taken
    if (subscriber) subscriber->stop();   // queued acks, then DISCONNECT (no UNSUBSCRIBE)
    if (poller) poller->stop();
    diagnostics.reset();
    retention.reset();
    server.stop();
  });
  io.run();

  sampler.stop();
  live.stop();
  if (bus) bus->stop();
  if (mirror) mirror->stop();
  logger->info("stopped");
  return 0;
}

}  // namespace
}  // namespace ts::api

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--print-env-markdown") {
      std::fputs(ts::api::environment_markdown().c_str(), stdout);
      return 0;
    }
    if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: teslasync-api [--help] [--version]\n\n"
          "Ingests the MQTT stream of telemetry-server into L1/L2 state and signal_log, and serves\n"
          "the REST API, SSE, the Tesla public key and diagnostics (docs/teslasync-api.md).\n\n"
          "Configured by environment variables:\n%s",
          ts::api::environment_help().c_str());
      return 0;
    }
    if (arg == "--version") {
      std::printf("teslasync-api %s\n", TS_VERSION);
      return 0;
    }
    std::fprintf(stderr, "teslasync-api: unknown argument '%s' (see --help)\n", argv[i]);
    return 2;
  }
  ts::api::Config config;
  try {
    config = ts::api::load_config_from_environment();
  } catch (const ts::api::ConfigError& e) {
    std::fprintf(stderr, "teslasync-api: invalid configuration: %s\n", e.what());
    return 2;
  }
  ts::log::configure({.level = config.log_level});
  try {
    return ts::api::run(config);
  } catch (const std::exception& e) {
    ts::log::get("api")->critical("{}", e.what());
    std::fprintf(stderr, "teslasync-api: %s\n", e.what());
    return 1;
  }
}
