// See api_pipeline.hpp.
#include "api_pipeline.hpp"

#include <gtest/gtest.h>
#include <mosquitto.h>

#include <cmath>
#include <filesystem>
#include <string_view>

#include "pki/dev_ca.hpp"
#include "signal/signal.hpp"
#include "support/mqtt_collector.hpp"
#include "support/ports.hpp"
#include "support/wait_for.hpp"

namespace ts::integration {

using namespace std::chrono_literals;
using testsupport::http_request;
using testsupport::wait_for;

testsupport::Headers auth() { return {{"Authorization", std::string("Bearer ") + kToken}}; }

boost::json::value json_of(const testsupport::HttpResponse& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  EXPECT_FALSE(ec) << r.status << " " << r.body;
  return v;
}

Pipeline::Pipeline(ApiOptions api) : api_options_(std::move(api)) {
  pki::write_dev_ca({.out_dir = dir_.file("certs"), .vins = {kRegistered, kUnregistered}});
  std::vector<std::string> broker_config = {"max_inflight_messages 0",
                                            "max_queued_messages 1000000"};
  if (api_options_.broker_persistence) {
    std::filesystem::create_directories(dir_.file("mosquitto-db"));
    broker_config.push_back("persistence true");
    broker_config.push_back("persistence_location " + dir_.file("mosquitto-db").string() + "/");
  }
  broker_ = std::make_unique<testsupport::MosquittoBroker>(
      testsupport::MosquittoOptions{.extra_config = broker_config});
  start_server();
  start_api();
}

Pipeline::~Pipeline() {
  if (api_ && api_->running()) api_->terminate(10s);
  if (server_ && server_->running()) server_->terminate(5s);
}

void Pipeline::start_server() {
  server_port_ = testsupport::free_port();
  const auto certs = dir_.file("certs").string();
  std::string config = R"({"host": "127.0.0.1", "port": )" + std::to_string(server_port_) + R"(,
    "records": {"V": ["mqtt"], "alerts": ["mqtt"], "errors": ["mqtt"], "connectivity": ["mqtt"]},
    "mqtt": {"broker": "127.0.0.1:)" + std::to_string(broker_->port()) + R"(", "client_id": "e2e-server",
             "topic_base": "telemetry", "qos": 1, "event_time_envelope": true,
             "record_message": )" + std::string(api_options_.record_message ? "true" : "false") + R"(},
    "tls": {"server_cert": ")" + certs + R"(/server.pem", "server_key": ")" + certs +
                       R"(/server.key", "ca_file": ")" + certs + R"(/ca.pem"}})";
  auto path = dir_.write_file("server.json", config);
  server_ = std::make_unique<testsupport::Process>(testsupport::Process::start(
      {.argv = {std::string(TS_BIN_DIR) + "/telemetry-server", "--config", path.string()},
       .output_dir = dir_.path(), .append_output = true}));
  auto up = wait_for([this] { return testsupport::tcp_connectable(server_port_); }, 20s,
                     "telemetry-server listening");
  ASSERT_TRUE(up) << server_->stderr_text();
}

void Pipeline::start_api() {
  if (api_port_ == 0) api_port_ = testsupport::free_port();
  std::vector<std::pair<std::string, std::string>> env = {
      {"TESLASYNC_HTTP_ADDR", "127.0.0.1:" + std::to_string(api_port_)},
      {"TESLASYNC_DATA_DIR", dir_.file("data").string()},
      {"TESLASYNC_API_TOKEN", kToken},
      {"TESLASYNC_VEHICLES", kRegistered},
      {"FLEET_TELEMETRY_MQTT_BROKER", "127.0.0.1:" + std::to_string(broker_->port())},
      {"FLEET_TELEMETRY_MQTT_CLIENT_ID", "e2e-api"},
      {"FLEET_TELEMETRY_BATCH_MS", "20"},
      {"TESLASYNC_SSE_HEARTBEAT", "1s"},
      {"DATABASE_URL", api_options_.database_url},
      {"REDIS_URL", api_options_.redis_url},
      {"TESLA_PUBLIC_KEY_FILE", api_options_.public_key_file}};
  for (const auto& [name, value] : api_options_.extra_env) {
    std::erase_if(env, [&](const auto& e) { return e.first == name; });
    env.emplace_back(name, value);
  }
  api_ = std::make_unique<testsupport::Process>(testsupport::Process::start(
      {.argv = {std::string(TS_BIN_DIR) + "/teslasync-api"}, .env = env,
       .output_dir = dir_.path(), .append_output = true}));
  auto ready = wait_for(
      [this] { return http_request(api_port_, "GET", "/readyz", {}, {}, 2s).status == 200; }, 30s,
      "teslasync-api ready");
  ASSERT_TRUE(ready) << api_->stderr_text();
}

std::vector<std::string> Pipeline::sim_argv(int vehicles, double rate, int seconds) const {
  return {std::string(TS_BIN_DIR) + "/vehicle-sim", "run", "--server",
          "127.0.0.1:" + std::to_string(server_port_), "--certs", dir_.file("certs").string(),
          "--vehicles", std::to_string(vehicles), "--rate", std::to_string(rate),
          "--duration", std::to_string(seconds)};
}

testsupport::Process Pipeline::start_vehicles(int vehicles, double rate, int seconds) {
  return testsupport::Process::start(
      {.argv = sim_argv(vehicles, rate, seconds), .output_dir = dir_.path(), .name = "vehicle-sim"});
}

boost::json::value Pipeline::drive(int vehicles, double rate, int seconds) {
  auto sim = start_vehicles(vehicles, rate, seconds);
  auto code = sim.wait(std::chrono::seconds(seconds + 60));
  EXPECT_EQ(code, 0) << sim.stderr_text();
  boost::system::error_code ec;
  auto report = boost::json::parse(sim.stdout_text(), ec);
  EXPECT_FALSE(ec) << sim.stdout_text();
  return report;
}

boost::json::value Pipeline::get(const std::string& path) {
  auto r = http_request(api_port_, "GET", path, {}, auth(), 10s);
  EXPECT_EQ(r.status, 200u) << path << ": " << r.body;
  return json_of(r);
}

boost::json::value Pipeline::state(const std::string& vin) {
  return get("/api/v1/vehicles/" + vin + "/state");
}

boost::json::object Pipeline::stage(const std::string& name) {
  auto doc = get("/api/v1/system/telemetry-pipeline");
  if (const auto* stages = doc.is_object() ? doc.as_object().if_contains("stages") : nullptr;
      stages && stages->is_array()) {
    for (const auto& st : stages->as_array()) {
      if (st.as_object().at("stage").as_string() == name) return st.as_object();
    }
  }
  ADD_FAILURE() << "no stage '" << name << "' in " << boost::json::serialize(doc);
  return {};
}

double Pipeline::metric(const std::string& series) {
  return integration::metric(api_port_, series);
}

double metric(std::uint16_t port, const std::string& series) {
  auto r = http_request(port, "GET", "/metrics", {}, auth(), 10s);
  EXPECT_EQ(r.status, 200u) << r.body;
  const std::string prefix = series + ' ';
  std::size_t at = 0;
  while (at < r.body.size()) {
    auto end = r.body.find('\n', at);
    if (end == std::string::npos) end = r.body.size();
    std::string_view line(r.body.data() + at, end - at);
    if (line.starts_with(prefix)) return std::stod(std::string(line.substr(prefix.size())));
    at = end + 1;
  }
  ADD_FAILURE() << "no series " << series << " in /metrics";
  return std::nan("");
}

std::int64_t signal_ts_us(const boost::json::value& state, const std::string& name) {
  auto ts = signal::parse_time(state.at("signals").at(name).at("ts").as_string());
  EXPECT_TRUE(ts);
  return ts.value_or(0);
}

Publisher::Publisher(std::uint16_t port) {
  testsupport::init_mosquitto_lib();
  m_ = mosquitto_new("e2e-publisher", true, this);
  mosquitto_publish_callback_set(m_, [](mosquitto*, void* self, int) {
    static_cast<Publisher*>(self)->acked_++;
  });
  mosquitto_connect_callback_set(m_, [](mosquitto*, void* self, int rc) {
    if (rc != 0) return;
    auto* p = static_cast<Publisher*>(self);
    p->connects_++;
    p->connected_ = true;
  });
  mosquitto_disconnect_callback_set(
      m_, [](mosquitto*, void* self, int) { static_cast<Publisher*>(self)->connected_ = false; });
  EXPECT_EQ(mosquitto_connect(m_, "127.0.0.1", port, 30), MOSQ_ERR_SUCCESS);
  mosquitto_max_inflight_messages_set(m_, 1000);
  mosquitto_loop_start(m_);
  EXPECT_TRUE(wait_connected());
}

Publisher::~Publisher() {
  mosquitto_disconnect(m_);
  mosquitto_loop_stop(m_, true);
  mosquitto_destroy(m_);
}

void Publisher::publish(const std::string& topic, const std::string& payload, bool retain) {
  ASSERT_TRUE(connected_.load()) << "publishing while disconnected: wait_connected() first";
  ASSERT_EQ(mosquitto_publish(m_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                              payload.data(), 1, retain),
            MOSQ_ERR_SUCCESS);
  ++sent_;
}

::testing::AssertionResult Publisher::all_acked() {
  return wait_for([this] { return acked_.load() == sent_; }, 30s, "broker acknowledged every publish");
}

::testing::AssertionResult Publisher::wait_connected(int after) {
  return wait_for([this, after] { return connected_.load() && connects_.load() > after; }, 30s,
                  "the publisher connected to the broker");
}

std::string envelope(const std::string& value_json, std::int64_t ts_us) {
  return "{\"value\":" + value_json + ",\"ts\":\"" + signal::format_time(ts_us) + "\"}";
}

std::size_t history_count(std::uint16_t port, const std::string& vin, const std::string& name,
                          std::set<std::string>* duplicates) {
  std::set<std::string> seen;
  std::size_t n = 0;
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    auto r = http_request(port, "GET",
                          "/api/v1/vehicles/" + vin + "/signals?name=" + name + "&limit=10000" +
                              (cursor.empty() ? "" : "&cursor=" + cursor),
                          {}, auth(), 10s);
    if (r.status != 200) return 0;
    auto doc = json_of(r);
    for (const auto& row : doc.at("signals").as_array()) {
      ++n;
      auto ts = std::string(row.at("ts").as_string());
      if (!seen.insert(ts).second && duplicates) duplicates->insert(ts);
    }
    if (doc.at("next_cursor").is_null()) break;
    cursor = std::string(doc.at("next_cursor").as_string());
  }
  return n;
}

/// All rows of one signal of one vehicle from signal_log, through the paged API.
std::vector<boost::json::object> history(std::uint16_t port, const std::string& vin,
                                         const std::string& name) {
  std::vector<boost::json::object> rows;
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    auto r = http_request(port, "GET",
                          "/api/v1/vehicles/" + vin + "/signals?name=" + name + "&limit=500" +
                              (cursor.empty() ? "" : "&cursor=" + cursor),
                          {}, auth());
    EXPECT_EQ(r.status, 200u) << r.body;
    auto doc = json_of(r);
    for (const auto& row : doc.at("signals").as_array()) rows.push_back(row.as_object());
    const auto& next = doc.at("next_cursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
  }
  return rows;
}

/// (ts -> value JSON) of every signal_change of `name` for `vin` in an SSE event list.
std::map<std::string, std::string> sse_changes(const std::vector<testsupport::SseEvent>& events,
                                               const std::string& vin, const std::string& name) {
  std::map<std::string, std::string> out;
  for (const auto& e : events) {
    if (e.event != "signal_change") continue;
    auto doc = boost::json::parse(e.data).as_object();
    if (doc.at("vin").as_string() != vin || doc.at("name").as_string() != name) continue;
    out[std::string(doc.at("ts").as_string())] = boost::json::serialize(doc.at("value"));
  }
  return out;
}

}  // namespace ts::integration
