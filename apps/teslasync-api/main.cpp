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
#include <limits>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "auth.hpp"
#include "config.hpp"
#include "core/lifecycle.hpp"
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
  Result<void> write(const storage::BatchView& batch) override {
    auto r = db_.write(batch);
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

/// The data directory, owner-only: it holds the database, the admin token and maybe keys. Created
/// 0700; an existing one readable by others is tightened to 0700 (with a log line).
void prepare_data_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(dir)) {
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    return;
  }
  const auto perms = fs::status(dir).permissions();
  if ((perms & (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none) {
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) {
      log::get("api")->warn("TESLASYNC_DATA_DIR={} is readable by others and could not be made "
                            "owner-only: {}",
                            dir, ec.message());
    } else {
      log::get("api")->info("TESLASYNC_DATA_DIR={}: made owner-only (0700)", dir);
    }
  }
}

int run(const Config& config) {
  auto logger = log::get("api");
  prepare_data_dir(config.data_dir);
  core::MetricsRegistry metrics;
  core::register_process_metrics(metrics);

  // ---- the components, declared before the Lifecycle so that they outlive it: whatever was
  // started is stopped, in reverse order, before any of them is destroyed (also when start-up
  // fails half way; core/lifecycle.hpp) ----
  std::unique_ptr<storage::Database> db_owner;
  TokenAuth tokens;
  std::unique_ptr<TokenUsageWriter> token_usage;  // last_used_at off the request path
  VinRegistry vins;
  std::optional<state::Store> store_owner;
  std::unique_ptr<state::redis::RedisMirror> mirror;
  std::unique_ptr<state::redis::PubSub> bus;
  std::shared_ptr<http::EventHub> hub;
  std::optional<Live> live_owner;
  std::unique_ptr<RefreshTokenStore> refresh_tokens;  // outlives the client that calls it
  std::unique_ptr<fleet_api::Client> fleet;
  std::unique_ptr<FleetVehicleSource> source;
  std::unique_ptr<polling::Poller> poller;
  std::unique_ptr<DatabaseWriter> writer;
  std::unique_ptr<mqtt::Subscriber> subscriber;
  std::unique_ptr<ingest::Ingest> ingest_owner;
  RateMeter messages_rate, rows_rate, sse_rate, dead_rate, failure_rate, rejected_rate;
  std::unique_ptr<Every> sampler, diagnostics, retention;
  std::optional<Services> services_owner;
  boost::asio::io_context io;
  std::unique_ptr<http::Server> server;
  core::Lifecycle life("teslasync-api");

  // ---- storage ----
  auto opened = storage::open_database(config.database_url, config.data_dir,
                                       {.metrics = &metrics, .retention = config.retention});
  if (!opened) {
    throw std::runtime_error("DATABASE_URL=" + storage::redact_url(config.database_url) + ": " +
                             opened.error().message());
  }
  db_owner = std::move(*opened);
  storage::Database& db = *db_owner;
  logger->info("signal_log in {} ({})",
               config.database_url.empty()
                   ? (std::filesystem::path(config.data_dir) / "teslasync.db").string()
                   : storage::redact_url(config.database_url),
               db.backend());

  token_usage = set_up_tokens(config, db, tokens);
  const std::string public_key = load_public_key(config);

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
  const auto max_skew = std::chrono::duration_cast<std::chrono::microseconds>(config.max_future_skew);
  state::Store& store = store_owner.emplace(metrics, state::Store::kDefaultShards, max_skew);
  bool warm = false;
  if (!config.redis_url.empty()) {
    auto redis = state::redis::parse_redis_url(config.redis_url);
    mirror = std::make_unique<state::redis::RedisMirror>(
        redis,
        state::redis::RedisMirrorOptions{
            .ttl = std::chrono::duration_cast<std::chrono::milliseconds>(config.redis_key_ttl),
            .max_future_skew = max_skew,
            .resync_from = &store},
        metrics);
    bus = std::make_unique<state::redis::PubSub>(redis, state::redis::PubSubOptions{}, metrics);
    if (auto loaded = mirror->load_all(); loaded && !loaded->empty()) {
      auto r = store.load(*loaded);
      logger->info("L1 warmed from Redis: {} signals ({} newer)", loaded->size(), r.newer);
      warm = true;
    } else if (loaded) {
      // An empty Redis (new, flushed, or restarted without persistence) knows nothing: the
      // mirror copies L1 into it once connected.
      logger->info("Redis holds no state; warming L1 from signal_log");
    } else {
      logger->warn("Redis unavailable at start ({}); warming L1 from signal_log instead",
                   loaded.error().message());
    }
  }
  if (!warm) {
    if (auto latest = db.latest_signals(std::nullopt, max_skew); latest) {
      store.load(*latest);
      logger->info("L1 warmed from signal_log: {} signals of {} vehicles", latest->size(),
                   store.vehicle_count());
    } else {
      logger->warn("could not read signal_log to warm L1: {}", latest.error().message());
    }
  }

  // ---- live views ----
  hub = std::make_shared<http::EventHub>(
      metrics, http::EventHubOptions{.replay_max_events = std::max<std::size_t>(config.sse_replay_events, 1)});
  Live& live = live_owner.emplace(store, mirror.get(), hub, bus.get(), std::chrono::milliseconds(250));
  life.start("live", [&] { live.start(); }, [&] { live.stop(); });
  if (mirror) life.start("redis mirror", [&] { mirror->start(); }, [&] { mirror->stop(); });
  if (bus) life.start("redis pubsub", [&] { bus->start(); }, [&] { bus->stop(); });

  // ---- Fleet API and polling ----
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
            // Stored through ingest's writer: retried while the database is down, like the stream.
            .sink = [&live, &ingest_owner](std::vector<signal::Signal>&& signals) {
              live.apply_polled(signals);
              ingest_owner->offer_signals(std::move(signals), "poll");
            }});
    poller->register_metrics(metrics);
  }

  // ---- ingest: MQTT -> batches -> signal_log, acknowledged when durable ----
  writer = std::make_unique<DatabaseWriter>(db);
  ingest::Ingest& ingest = *(ingest_owner = std::make_unique<ingest::Ingest>(
      ingest::IngestOptions{.topic_base = config.topic_base,
                            .batch_max_messages = config.batch_max_messages,
                            .batch_window = config.batch_window,
                            .queue_batches = config.writer_queue_batches},
      *writer,
      ingest::IngestHooks{
          .registered = [&vins](std::string_view vin) { return vins.contains(vin); },
          .observe = [&live](const storage::Batch& records) { live.observe(records); },
          .ack = [&subscriber](const std::vector<ingest::AckToken>& batch_tokens) {
            if (!subscriber) return;  // polled values only: nothing to acknowledge
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
          }}));
  ingest.register_metrics(metrics);
  // The writer runs whatever the sources: the poller's values go through it too.
  life.start("ingest", [&] { ingest.start(); }, [&] { ingest.stop(); });
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
          const auto token = std::bit_cast<ingest::AckToken>(m.token);
          if (m.oversized_bytes != 0) {
            ingest.offer_oversized(m.topic, m.oversized_bytes, token, signal::now());
          } else {
            ingest.offer(m.topic, m.payload, token, signal::now());
          }
        });
    subscriber->register_metrics(metrics);
    life.start("mqtt subscriber", [&] { subscriber->start(); }, [&] { subscriber->stop(); });
    // Stopped first: take nothing new, write and acknowledge what was taken; then the
    // subscriber sends the queued acks and DISCONNECTs (no UNSUBSCRIBE).
    life.started("mqtt intake", [&] {
      subscriber->pause();
      ingest.stop();
    });
    logger->info("subscribing to {}:{} under '{}/' as client '{}'", config.mqtt_host,
                 config.mqtt_port, config.topic_base, config.mqtt_client_id);
  } else {
    logger->info("FLEET_TELEMETRY_ENABLED=false: no MQTT ingest; polling is the only source");
  }

  // ---- pipeline summary: rates sampled every 2 s ----
  auto sample = [&] {
    const auto now = signal::now();
    const auto& st = ingest.stats();
    messages_rate.sample(static_cast<double>(st.messages.value()), now);
    rows_rate.sample(static_cast<double>(st.rows_written.value()), now);
    dead_rate.sample(static_cast<double>(st.dead_letters.value()), now);
    failure_rate.sample(static_cast<double>(st.write_failures.value()), now);
    rejected_rate.sample(static_cast<double>(st.rejected_messages.value()), now);
    sse_rate.sample(static_cast<double>(hub->metrics().sent.value()), now);
  };
  sample();
  sampler = std::make_unique<Every>(std::chrono::seconds(2), sample);
  life.started("pipeline sampler", [&] { sampler->stop(); });

  Services& services = services_owner.emplace(Services{.config = config,
                                                       .metrics = metrics,
                                                       .db = db,
                                                       .store = store,
                                                       .vins = vins,
                                                       .tokens = tokens,
                                                       .live = live,
                                                       .hub = hub,
                                                       .public_key_pem = public_key,
                                                       .fleet = fleet.get(),
                                                       .poller = poller.get()});
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
    s.writer_problem = ingest.writer_problem(now);
    s.rejected_messages = st.rejected_messages.value();
    s.rejected_recent = rejected_rate.increase();
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
    // A writer stuck on retries stores nothing: take this instance out of rotation.
    return ingest.writer_problem(signal::now());
  };

  // ---- HTTP ----
  server = std::make_unique<http::Server>(
      io,
      http::ServerOptions{.host = config.http_host,
                          .port = config.http_port,
                          .blocking_threads = config.http_threads,
                          .sse = {.heartbeat = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      config.sse_heartbeat),
                                  .client_max_events = config.sse_client_buffer_events}},
      make_router(services));
  life.start("http server", [&] { server->start(); }, [&] { server->stop(); });
  logger->info("teslasync-api {} listening on http://{}:{}", TS_VERSION, config.http_host,
               server->port());

  if (poller) life.start("poller", [&] { poller->start(); }, [&] { poller->stop(); });
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
    life.started("diagnostics refresh", [&] { diagnostics->stop(); });
  }
  {
    // Hourly, the first pass a minute after start. signal_log and the event tables follow
    // TESLASYNC_RETENTION_DAYS; dead letters their own retention and row cap.
    auto prune = [&db, &config] {
      auto storage_log = log::get("storage");
      const auto now = signal::now();
      auto cutoff = [now](std::chrono::hours keep) {
        return now - std::chrono::duration_cast<std::chrono::microseconds>(keep).count();
      };
      if (config.retention.count() > 0) {
        if (auto r = db.delete_signals_before(cutoff(config.retention)); !r) {
          storage_log->warn("retention of signal_log failed: {}", r.error().message());
        }
        if (auto r = db.delete_events_before(cutoff(config.retention)); !r) {
          storage_log->warn("retention of events failed: {}", r.error().message());
        }
      }
      const auto dead_before = config.dead_letter_retention.count() > 0
                                   ? cutoff(config.dead_letter_retention)
                                   : std::numeric_limits<signal::Timestamp>::min();
      if (auto r = db.delete_dead_letters(dead_before, config.dead_letter_max_rows); !r) {
        storage_log->warn("retention of dead letters failed: {}", r.error().message());
      } else if (*r > 0) {
        storage_log->info("retention removed {} dead letters", *r);
      }
    };
    retention = std::make_unique<Every>(std::chrono::hours(1), prune, std::chrono::minutes(1));
    life.started("retention", [&] { retention->stop(); });
  }

  // ---- run until SIGINT/SIGTERM, then stop everything in reverse order of start ----
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  // The handler only stops the HTTP server (the io thread serves until it is closed); the rest
  // stops on this thread once io.run() returned, in reverse order of start.
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    logger->info("signal {}: shutting down", sig);
    server->stop();
  });
  io.run();
  life.stop();
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
