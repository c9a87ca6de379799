#include "config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace ts::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void write_file(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Every test gets its own directory with the three TLS files, and a fake environment.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("ts-config-test-") + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_file(dir_ / "server.pem", "-----BEGIN CERTIFICATE-----\n");
    write_file(dir_ / "server.key", "-----BEGIN PRIVATE KEY-----\n");
    write_file(dir_ / "ca.pem", "-----BEGIN CERTIFICATE-----\n");
    options_.env = [this](std::string_view name) -> std::optional<std::string> {
      const auto it = env_.find(std::string(name));
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(std::string_view name) const { return (dir_ / name).string(); }

  // A complete `tls` object for the files of this test.
  std::string tls() const {
    return "\"tls\": {\"server_cert\": \"" + path("server.pem") + "\", \"server_key\": \"" +
           path("server.key") + "\", \"ca_file\": \"" + path("ca.pem") + "\"}";
  }

  // `{ tls, <members> }`.
  std::string with_tls(std::string_view members = "") const {
    std::string text = "{" + tls();
    if (!members.empty()) text += ", " + std::string(members);
    return text + "}";
  }

  LoadedConfig parse(std::string_view text) const { return parse_config(text, options_); }

  // The error text, or "(no error)"; comparing it shows the message on failure.
  std::string error_of(std::string_view text) const {
    try {
      parse(text);
    } catch (const ConfigError& error) {
      return error.what();
    }
    return "(no error)";
  }

  std::string key_of_error(std::string_view text) const {
    try {
      parse(text);
    } catch (const ConfigError& error) {
      return error.key();
    }
    return "(no error)";
  }

  static std::string warnings_text(const LoadedConfig& loaded) {
    std::string out;
    for (const auto& warning : loaded.warnings) out += warning.text() + "\n";
    return out;
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
  ConfigOptions options_;
};

// --- defaults and the reference's own configurations

TEST_F(ConfigTest, MinimalConfigGetsReferenceDefaults) {
  const LoadedConfig loaded = parse(with_tls());
  const Config& config = loaded.config;
  EXPECT_TRUE(loaded.warnings.empty()) << warnings_text(loaded);
  EXPECT_EQ(config.host, "");
  EXPECT_EQ(config.port, 0);
  EXPECT_EQ(config.status_port, 0);
  EXPECT_EQ(config.tls.server_cert, path("server.pem"));
  EXPECT_EQ(config.tls.server_key, path("server.key"));
  EXPECT_EQ(config.tls.ca_file, path("ca.pem"));
  EXPECT_FALSE(config.use_default_eng_ca);
  EXPECT_EQ(config.namespace_prefix, "");
  EXPECT_TRUE(config.records.empty());
  EXPECT_TRUE(config.reliable_ack_sources.empty());
  EXPECT_FALSE(config.transmit_decoded_records);
  EXPECT_FALSE(config.rate_limit.enabled);
  EXPECT_EQ(config.rate_limit.message_limit, 0U);
  EXPECT_EQ(config.rate_limit.interval, 0ns);
  EXPECT_TRUE(config.vins_signal_tracking_enabled.empty());
  EXPECT_EQ(config.log_level, "info");
  EXPECT_FALSE(config.json_log_enable);
  EXPECT_FALSE(config.logger.verbose);
  EXPECT_EQ(config.monitoring.prometheus_metrics_port, 0);
  EXPECT_EQ(config.monitoring.prometheus_metrics_host, "127.0.0.1");
  EXPECT_EQ(config.monitoring.profiler_port, 0);
  EXPECT_EQ(config.monitoring.profiler_host, "127.0.0.1");
  EXPECT_EQ(config.monitoring.profiling_path, "");
  EXPECT_FALSE(config.monitoring.statsd.has_value());
  EXPECT_FALSE(config.mqtt.has_value());
  EXPECT_FALSE(config.kafka.has_value());
  EXPECT_EQ(config.workers, 0U);
  EXPECT_GE(effective_workers(config), 1U);
  EXPECT_FALSE(config.suppress_tls_handshake_error_logging);
}

TEST_F(ConfigTest, MqttDefaultsAndZeroMeansDefault) {
  const Config config = parse(with_tls(R"("mqtt": {"broker": "127.0.0.1:1883",
      "connect_timeout_ms": 0, "publish_timeout_ms": 0, "disconnect_timeout_ms": 0,
      "connect_retry_interval_ms": 0, "keep_alive_seconds": 0})"))
                            .config;
  ASSERT_TRUE(config.mqtt.has_value());
  const MqttConfig& mqtt = *config.mqtt;
  EXPECT_EQ(mqtt.client_id, "");
  EXPECT_EQ(mqtt.username, "");
  EXPECT_EQ(mqtt.password, "");
  EXPECT_EQ(mqtt.topic_base, "");
  EXPECT_EQ(mqtt.qos, 0);
  EXPECT_FALSE(mqtt.retained);
  EXPECT_EQ(mqtt.connect_timeout, 30000ms);
  EXPECT_EQ(mqtt.publish_timeout, 2500ms);
  EXPECT_EQ(mqtt.disconnect_timeout, 250ms);
  EXPECT_EQ(mqtt.connect_retry_interval, 10000ms);
  EXPECT_EQ(mqtt.keep_alive, 30s);
  EXPECT_EQ(mqtt.ca_file, "");
  EXPECT_EQ(mqtt.cert_file, "");
  EXPECT_EQ(mqtt.key_file, "");
  EXPECT_FALSE(mqtt.event_time_envelope);
  EXPECT_FALSE(mqtt.record_message);
}

TEST_F(ConfigTest, MqttExplicitValues) {
  const Config config = parse(with_tls(R"("mqtt": {"broker": "tcp://broker:2883",
      "client_id": "ft", "username": "u", "password": "p", "topic_base": "telemetry",
      "qos": 2, "retained": true, "connect_timeout_ms": 1000, "publish_timeout_ms": 200,
      "disconnect_timeout_ms": 5, "connect_retry_interval_ms": 700, "keep_alive_seconds": 9,
      "event_time_envelope": true, "record_message": true})"))
                            .config;
  const MqttConfig& mqtt = *config.mqtt;
  EXPECT_EQ(mqtt.broker.url(), "tcp://broker:2883");
  EXPECT_EQ(mqtt.client_id, "ft");
  EXPECT_EQ(mqtt.username, "u");
  EXPECT_EQ(mqtt.password, "p");
  EXPECT_EQ(mqtt.topic_base, "telemetry");
  EXPECT_EQ(mqtt.qos, 2);
  EXPECT_TRUE(mqtt.retained);
  EXPECT_EQ(mqtt.connect_timeout, 1000ms);
  EXPECT_EQ(mqtt.publish_timeout, 200ms);
  EXPECT_EQ(mqtt.disconnect_timeout, 5ms);
  EXPECT_EQ(mqtt.connect_retry_interval, 700ms);
  EXPECT_EQ(mqtt.keep_alive, 9s);
  EXPECT_TRUE(mqtt.event_time_envelope);
  EXPECT_TRUE(mqtt.record_message);
}

// The configuration the conformance vectors were recorded with
// (shared/vectors/reference/README.md).
TEST_F(ConfigTest, ReferenceIntegrationConfigLoads) {
  const LoadedConfig loaded = parse(with_tls(R"(
    "host": "127.0.0.1", "port": 4443, "log_level": "info", "json_log_enable": true,
    "namespace": "tesla_telemetry", "transmit_decoded_records": false,
    "records": {"V": ["mqtt"], "alerts": ["mqtt"], "errors": ["mqtt"], "connectivity": ["mqtt"]},
    "mqtt": {"broker": "127.0.0.1:1883", "client_id": "fleet-telemetry-reference",
             "topic_base": "telemetry", "qos": 0, "retained": false},
    "monitoring": {"prometheus_metrics_port": 9273})"));
  const Config& config = loaded.config;
  EXPECT_TRUE(loaded.warnings.empty()) << warnings_text(loaded);
  EXPECT_EQ(config.host, "127.0.0.1");
  EXPECT_EQ(config.port, 4443);
  EXPECT_TRUE(config.json_log_enable);
  EXPECT_EQ(config.namespace_prefix, "tesla_telemetry");
  const std::vector<Dispatcher> mqtt_only{Dispatcher::Mqtt};
  ASSERT_EQ(config.records.size(), 4U);
  for (const char* type : {"V", "alerts", "errors", "connectivity"}) {
    EXPECT_EQ(config.records.at(type), mqtt_only) << type;
  }
  ASSERT_TRUE(config.mqtt.has_value());
  EXPECT_EQ(config.mqtt->broker.scheme, "tcp");
  EXPECT_EQ(config.mqtt->broker.host, "127.0.0.1");
  EXPECT_EQ(config.mqtt->broker.port, 1883);
  EXPECT_FALSE(config.mqtt->broker.tls);
  EXPECT_EQ(config.mqtt->client_id, "fleet-telemetry-reference");
  EXPECT_EQ(config.mqtt->topic_base, "telemetry");
  EXPECT_EQ(config.mqtt->publish_timeout, 2500ms);
  EXPECT_EQ(config.monitoring.prometheus_metrics_port, 9273);
  EXPECT_EQ(config.monitoring.prometheus_metrics_host, "127.0.0.1");
}

TEST_F(ConfigTest, MixedMqttAndLoggerRecordsKeepListOrder) {
  const Config config =
      parse(with_tls(R"("records": {"V": ["logger", "mqtt"], "errors": ["logger"]},
      "mqtt": {"broker": "mosquitto:1883"}, "logger": {"verbose": true})"))
          .config;
  EXPECT_EQ(config.records.at("V"), (std::vector{Dispatcher::Logger, Dispatcher::Mqtt}));
  EXPECT_EQ(config.records.at("errors"), (std::vector{Dispatcher::Logger}));
  EXPECT_TRUE(config.logger.verbose);
}

// --- key matching and unknown keys

TEST_F(ConfigTest, KeysMatchCaseInsensitivelyLikeGo) {
  const std::string text = "{\"TLS\": {\"Server_Cert\": \"" + path("server.pem") +
                           "\", \"SERVER_KEY\": \"" + path("server.key") + "\", \"Ca_File\": \"" +
                           path("ca.pem") + R"("},
      "PORT": 4443, "Host": "::1", "Records": {"V": ["mqtt"]},
      "Mqtt": {"Broker": ":1883", "QoS": 1, "Topic_Base": "t"},
      "Rate_Limit": {"Enabled": true, "Message_Limit": 5, "messageintervaltimesecond": 1000},
      "Monitoring": {"Prometheus_Metrics_Port": 9090, "StatsD": {"Flush_Period": 5}}})";
  const LoadedConfig loaded = parse(text);
  const Config& config = loaded.config;
  EXPECT_TRUE(loaded.warnings.empty()) << warnings_text(loaded);
  EXPECT_EQ(config.port, 4443);
  EXPECT_EQ(config.host, "::1");
  EXPECT_EQ(config.tls.ca_file, path("ca.pem"));
  EXPECT_EQ(config.mqtt->qos, 1);
  EXPECT_EQ(config.mqtt->topic_base, "t");
  EXPECT_TRUE(config.rate_limit.enabled);
  EXPECT_EQ(config.rate_limit.message_limit, 5U);
  EXPECT_EQ(config.rate_limit.interval, 1000ns);
  EXPECT_EQ(config.monitoring.prometheus_metrics_port, 9090);
  ASSERT_TRUE(config.monitoring.statsd.has_value());
  EXPECT_EQ(config.monitoring.statsd->flush_period, 5ms);
}

TEST_F(ConfigTest, RecordTypesAndDispatcherNamesAreCaseSensitive) {
  const Config config = parse(with_tls(R"("records": {"v": ["logger"]})")).config;
  EXPECT_TRUE(config.records.contains("v"));
  EXPECT_FALSE(config.records.contains("V"));
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["MQTT"]})")),
            "records.V: unknown dispatcher \"MQTT\" (known: kafka, kinesis, pubsub, zmq, mqtt, "
            "redis, logger)");
}

TEST_F(ConfigTest, SameKeyInTwoSpellingsWarnsAndLastWins) {
  const LoadedConfig loaded = parse(with_tls(R"("port": 1, "Port": 2)"));
  EXPECT_EQ(loaded.config.port, 2);
  ASSERT_EQ(loaded.warnings.size(), 1U);
  EXPECT_EQ(loaded.warnings[0].text(),
            "port: set more than once (as \"port\" and \"Port\"); later values win");
}

TEST_F(ConfigTest, UnknownKeysAreWarningsNamingTheFullPath) {
  const LoadedConfig loaded = parse(with_tls(R"("reliable_ack": true, "extra": 1,
      "mqtt": {"broker": ":1883", "qoss": 1},
      "monitoring": {"statsd": {"host": "s:8125", "sample_rate": 0.5}})"));
  ASSERT_EQ(loaded.warnings.size(), 4U) << warnings_text(loaded);
  EXPECT_EQ(loaded.warnings[0].key, "reliable_ack");
  EXPECT_TRUE(starts_with(loaded.warnings[0].text(), "reliable_ack: unknown key, ignored ("))
      << loaded.warnings[0].text();
  EXPECT_NE(loaded.warnings[0].message.find("reliable_ack_sources"), std::string::npos);
  EXPECT_EQ(loaded.warnings[1].text(), "extra: unknown key, ignored");
  EXPECT_EQ(loaded.warnings[2].text(), "mqtt.qoss: unknown key, ignored (did you mean mqtt.qos?)");
  EXPECT_EQ(loaded.warnings[3].key, "monitoring.statsd.sample_rate");
  EXPECT_EQ(loaded.config.mqtt->qos, 0);
}

TEST_F(ConfigTest, NullLeavesTheDefaultLikeGo) {
  const Config config =
      parse(with_tls(
                R"("port": null, "mqtt": null, "monitoring": {"prometheus_metrics_host": null})"))
          .config;
  EXPECT_EQ(config.port, 0);
  EXPECT_FALSE(config.mqtt.has_value());
  EXPECT_EQ(config.monitoring.prometheus_metrics_host, "127.0.0.1");
}

TEST_F(ConfigTest, EmptyMonitoringHostMeansDefault) {
  const Config config = parse(with_tls(R"("monitoring": {"prometheus_metrics_host": "",
      "profiler_host": "0.0.0.0", "profiler_port": 4269, "profiling_path": "/tmp/trace"})"))
                            .config;
  EXPECT_EQ(config.monitoring.prometheus_metrics_host, "127.0.0.1");
  EXPECT_EQ(config.monitoring.profiler_host, "0.0.0.0");
  EXPECT_EQ(config.monitoring.profiler_port, 4269);
  EXPECT_EQ(config.monitoring.profiling_path, "/tmp/trace");
}

// --- types and bounds

TEST_F(ConfigTest, TypeMismatchesAndBadValuesNameTheKey) {
  EXPECT_EQ(error_of(with_tls(R"("port": "4443")")),
            "port: must be an integer in 0..65535 (got \"4443\")");
  EXPECT_EQ(error_of(with_tls(R"("port": 70000)")),
            "port: must be an integer in 0..65535 (got 70000)");
  EXPECT_EQ(error_of(with_tls(R"("port": -1)")), "port: must be an integer in 0..65535 (got -1)");
  EXPECT_EQ(error_of(with_tls(R"("port": 443.0)")),
            "port: must be an integer in 0..65535 (got 443.0)");
  EXPECT_EQ(error_of(with_tls(R"("status_port": true)")),
            "status_port: must be an integer in 0..65535 (got true)");
  EXPECT_EQ(error_of(with_tls(R"("mqtt": {"qos": 3})")), "mqtt.qos: must be 0, 1 or 2 (got 3)");
  EXPECT_EQ(error_of(with_tls(R"("mqtt": {"connect_timeout_ms": -5})")),
            "mqtt.connect_timeout_ms: must be an integer ≥ 0 (got -5)");
  EXPECT_EQ(error_of(with_tls(R"("mqtt": {"keep_alive_seconds": 65536})")),
            "mqtt.keep_alive_seconds: must be an integer in 0..65535 (got 65536)");
  EXPECT_EQ(error_of(with_tls(R"("transmit_decoded_records": "true")")),
            "transmit_decoded_records: must be true or false (got \"true\")");
  EXPECT_EQ(error_of(with_tls(R"("host": 5)")), "host: must be a string (got 5)");
  EXPECT_EQ(error_of(with_tls(R"("monitoring": [])")),
            "monitoring: must be an object (got a list)");
  EXPECT_EQ(error_of(with_tls(R"("vins_signal_tracking_enabled": ["A", 1])")),
            "vins_signal_tracking_enabled[1]: must be a string (got 1)");
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": "mqtt"})")),
            "records.V: must be a list of dispatcher names (got \"mqtt\")");
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["mqtt", 7]})")),
            "records.V[1]: must be a string (got 7)");
  EXPECT_EQ(error_of(with_tls(R"("reliable_ack_sources": {"V": ["mqtt"]})")),
            "reliable_ack_sources.V: must be a string (got a list)");
  EXPECT_EQ(error_of(with_tls(R"("workers": 5000)")),
            "workers: must be an integer in 0..1024 (got 5000)");
  EXPECT_EQ(error_of(with_tls(R"("rate_limit": {"message_limit": 4294967296})")),
            "rate_limit.message_limit: must be an integer in 0..4294967295 (got 4294967296)");
  EXPECT_EQ(error_of(with_tls(R"("kinesis": "x")")), "kinesis: must be an object (got \"x\")");
  EXPECT_EQ(error_of(R"({"tls": "yes"})"), "tls: must be an object (got \"yes\")");
}

TEST_F(ConfigTest, ErrorsCarryTheKeyPath) {
  EXPECT_EQ(key_of_error(with_tls(R"("mqtt": {"qos": 9})")), "mqtt.qos");
  EXPECT_EQ(key_of_error(R"({"port": 1})"), "tls");
  EXPECT_EQ(key_of_error(with_tls(R"("records": {"V": []})")), "records.V");
  EXPECT_EQ(key_of_error(with_tls(R"("reliable_ack_sources": {"V": "logger"})")),
            "reliable_ack_sources.V");
}

TEST_F(ConfigTest, WorkersExtension) {
  const Config config = parse(with_tls(R"("workers": 2)")).config;
  EXPECT_EQ(config.workers, 2U);
  EXPECT_EQ(effective_workers(config), 2U);
}

TEST_F(ConfigTest, MaxConnectionsPerIdentityExtension) {
  EXPECT_EQ(parse(with_tls()).config.max_connections_per_identity, 4U);
  EXPECT_EQ(parse(with_tls(R"("max_connections_per_identity": 1)")).config
                .max_connections_per_identity,
            1U);
  EXPECT_EQ(error_of(with_tls(R"("max_connections_per_identity": 0)")),
            "max_connections_per_identity: must be an integer in 1..1000 (got 0)");
}

TEST_F(ConfigTest, LogLevelFollowsLogrus) {
  EXPECT_EQ(parse(with_tls(R"("log_level": "DEBUG")")).config.log_level, "debug");
  EXPECT_EQ(parse(with_tls(R"("log_level": "warning")")).config.log_level, "warn");
  const LoadedConfig loaded = parse(with_tls(R"("log_level": "verbose")"));
  EXPECT_EQ(loaded.config.log_level, "info");
  ASSERT_EQ(loaded.warnings.size(), 1U);
  EXPECT_EQ(loaded.warnings[0].text(),
            "log_level: unknown level \"verbose\", using info (as the reference does)");
}

// --- malformed input

TEST_F(ConfigTest, MalformedJsonReportsLineAndColumn) {
  const std::string error = error_of("{\"port\": 1,\n  \"host\": }");
  EXPECT_TRUE(starts_with(error, "invalid JSON at line 2, column 11: ")) << error;
  EXPECT_GT(error.size(), std::string_view("invalid JSON at line 2, column 11: ").size());
  EXPECT_TRUE(starts_with(error_of("{\"port\": 1"), "invalid JSON at line 1, column 11: "))
      << error_of("{\"port\": 1");
  EXPECT_TRUE(starts_with(error_of("{} {}"), "invalid JSON at line 1, column 4: "))
      << error_of("{} {}");
  EXPECT_TRUE(starts_with(error_of(""), "invalid JSON at line 1, column 1: ")) << error_of("");
  EXPECT_EQ(error_of("[1, 2]"), "the configuration must be a JSON object (got a list)");
}

TEST_F(ConfigTest, LoadsFromFileAndReportsFileProblems) {
  write_file(dir_ / "config.json", with_tls(R"("port": 4443)"));
  EXPECT_EQ(load_config_file(dir_ / "config.json", options_).config.port, 4443);

  const fs::path missing = dir_ / "missing.json";
  try {
    load_config_file(missing, options_);
    FAIL() << "no error for a missing file";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot read config file \"" + missing.string() + "\": No such file or directory");
    EXPECT_EQ(error.key(), "");
  }

  try {
    load_config_file(dir_, options_);
    FAIL() << "no error for a directory";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot read config file \"" + dir_.string() + "\": it is a directory");
  }

  write_file(dir_ / "bad.json", "{\n\"port\": 1,\n}\n");
  try {
    load_config_file(dir_ / "bad.json", options_);
    FAIL() << "no error for malformed JSON";
  } catch (const ConfigError& error) {
    EXPECT_TRUE(starts_with(error.what(),
                            (dir_ / "bad.json").string() + ": invalid JSON at line 3, column 1: "))
        << error.what();
  }

  write_file(dir_ / "bad-value.json", with_tls(R"("port": "x")"));
  try {
    load_config_file(dir_ / "bad-value.json", options_);
    FAIL() << "no error for a bad value";
  } catch (const ConfigError& error) {
    EXPECT_TRUE(starts_with(error.what(), "port: ")) << error.what();
  }
}

// --- tls (spec §2.2) and our CA rule

TEST_F(ConfigTest, MissingTlsGivesTheReferenceMessage) {
  const std::string expected =
      "tls config is empty - telemetry server is mTLS only, make sure to provide certificates in "
      "the config";
  EXPECT_EQ(error_of("{}"), expected);
  EXPECT_EQ(error_of(R"({"tls": null, "port": 443})"), expected);
}

TEST_F(ConfigTest, TlsFilesAreRequiredAndReadable) {
  EXPECT_EQ(error_of(R"({"tls": {}})"),
            "tls.server_cert: required: the server certificate chain (PEM file)");
  const std::string no_key = "{\"tls\": {\"server_cert\": \"" + path("server.pem") + "\"}}";
  EXPECT_EQ(error_of(no_key), "tls.server_key: required: the server private key (PEM file)");

  const std::string missing_cert = "{\"tls\": {\"server_cert\": \"" + path("nope.pem") +
                                   "\", \"server_key\": \"" + path("server.key") +
                                   "\", \"ca_file\": \"" + path("ca.pem") + "\"}}";
  EXPECT_EQ(error_of(missing_cert),
            "tls.server_cert: cannot read \"" + path("nope.pem") + "\": No such file or directory");

  const std::string dir_as_key = "{\"tls\": {\"server_cert\": \"" + path("server.pem") +
                                 "\", \"server_key\": \"" + dir_.string() + "\", \"ca_file\": \"" +
                                 path("ca.pem") + "\"}}";
  EXPECT_EQ(error_of(dir_as_key),
            "tls.server_key: cannot read \"" + dir_.string() + "\": it is a directory");

  const std::string missing_ca = "{\"tls\": {\"server_cert\": \"" + path("server.pem") +
                                 "\", \"server_key\": \"" + path("server.key") +
                                 "\", \"ca_file\": \"" + path("gone.pem") + "\"}}";
  EXPECT_EQ(error_of(missing_ca),
            "tls.ca_file: cannot read \"" + path("gone.pem") + "\": No such file or directory");
}

TEST_F(ConfigTest, CaFileIsRequiredBecauseNoBundleIsEmbedded) {
  const std::string text = "{\"tls\": {\"server_cert\": \"" + path("server.pem") +
                           "\", \"server_key\": \"" + path("server.key") + "\"}}";
  const std::string error = error_of(text);
  EXPECT_TRUE(starts_with(error, "tls.ca_file: required: this server embeds no Tesla CA bundle"))
      << error;
  EXPECT_NE(error.find("docs/certificates.md"), std::string::npos) << error;
}

TEST_F(ConfigTest, DefaultEngCaOnlyWarns) {
  const LoadedConfig loaded = parse(with_tls(R"("use_default_eng_ca": true)"));
  EXPECT_TRUE(loaded.config.use_default_eng_ca);
  ASSERT_EQ(loaded.warnings.size(), 1U);
  EXPECT_EQ(loaded.warnings[0].key, "use_default_eng_ca");
  EXPECT_NE(loaded.warnings[0].message.find("no Tesla CA bundle is embedded"), std::string::npos);
}

// --- records and dispatchers (spec §8.1)

TEST_F(ConfigTest, UnknownDispatcherIsAStartUpError) {
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["mqt"]})")),
            "records.V: unknown dispatcher \"mqt\" (known: kafka, kinesis, pubsub, zmq, mqtt, "
            "redis, logger)");
}

TEST_F(ConfigTest, UnsupportedDispatchersAreStartUpErrors) {
  for (const char* name : {"kafka", "kinesis", "pubsub", "zmq", "redis"}) {
    EXPECT_EQ(error_of(with_tls(std::string(R"("records": {"V": [")") + name + "\"]}")),
              std::string("records.V: dispatcher \"") + name +
                  "\" is not supported by this server (supported: mqtt, logger)");
  }
}

TEST_F(ConfigTest, EmptyDispatchListGivesTheReferenceMessage) {
  EXPECT_EQ(error_of(with_tls(R"("records": {"alerts": []})")),
            "unknown_dispatch_rule record: alerts, dispatchRule:[]");
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": null})")),
            "unknown_dispatch_rule record: V, dispatchRule:[]");
}

TEST_F(ConfigTest, UsedDispatcherNeedsItsSection) {
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["mqtt"]})")), "expected MQTT to be configured");
  EXPECT_EQ(key_of_error(with_tls(R"("records": {"V": ["mqtt"]})")), "mqtt");
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["mqtt"]}, "mqtt": null)")),
            "expected MQTT to be configured");
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["mqtt"]}, "mqtt": {"topic_base": "t"})")),
            "mqtt.broker: required when a record type is routed to mqtt");
  // An unused mqtt section needs no broker, as in the reference.
  EXPECT_EQ(error_of(with_tls(R"("mqtt": {"topic_base": "t"})")), "(no error)");
}

TEST_F(ConfigTest, SupportedSetIsAParameter) {
  options_.supported_dispatchers = kAllDispatchers;
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["kafka"]})")),
            "expected Kafka to be configured");
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["zmq"]})")), "expected ZMQ to be configured");
  const LoadedConfig loaded = parse(with_tls(R"("records": {"V": ["kafka", "mqtt"]},
      "kafka": {"bootstrap.servers": "k:9092"}, "mqtt": {"broker": ":1883"})"));
  EXPECT_TRUE(loaded.warnings.empty()) << warnings_text(loaded);
  EXPECT_EQ(loaded.config.records.at("V"), (std::vector{Dispatcher::Kafka, Dispatcher::Mqtt}));
}

TEST_F(ConfigTest, SectionsOfUnsupportedDispatchersWarn) {
  const LoadedConfig loaded = parse(with_tls(R"("kafka": {"bootstrap.servers": "k:9092"},
      "kinesis": {"max_retries": 3}, "airbrake": {"host": "h"})"));
  ASSERT_EQ(loaded.warnings.size(), 3U) << warnings_text(loaded);
  EXPECT_EQ(loaded.warnings[0].key, "airbrake");
  EXPECT_EQ(loaded.warnings[1].text(),
            "kafka: not used: this server does not support the kafka dispatcher (supported: "
            "mqtt, logger)");
  EXPECT_EQ(loaded.warnings[2].key, "kinesis");
}

TEST_F(ConfigTest, DuplicateDispatcherInAListIsUsedOnce) {
  const LoadedConfig loaded =
      parse(with_tls(R"("records": {"V": ["mqtt", "mqtt"]}, "mqtt": {"broker": ":1883"})"));
  EXPECT_EQ(loaded.config.records.at("V"), (std::vector{Dispatcher::Mqtt}));
  ASSERT_EQ(loaded.warnings.size(), 1U);
  EXPECT_EQ(loaded.warnings[0].text(),
            "records.V: dispatcher \"mqtt\" is listed more than once; it is used once");
}

TEST(Dispatchers, NamesRoundTrip) {
  for (const auto dispatcher : kAllDispatchers) {
    EXPECT_EQ(dispatcher_from_string(to_string(dispatcher)), dispatcher);
  }
  EXPECT_EQ(dispatcher_from_string("Mqtt"), std::nullopt);
}

// --- reliable acks (spec §5)

TEST_F(ConfigTest, ReliableAckAccepted) {
  const Config config = parse(with_tls(R"("records": {"V": ["logger", "mqtt"], "alerts": ["mqtt"]},
      "reliable_ack_sources": {"V": "mqtt", "alerts": "mqtt"}, "mqtt": {"broker": ":1883"})"))
                            .config;
  EXPECT_EQ(config.reliable_ack_sources.at("V"), Dispatcher::Mqtt);
  EXPECT_EQ(config.reliable_ack_sources.at("alerts"), Dispatcher::Mqtt);
}

TEST_F(ConfigTest, ReliableAckReferenceMessages) {
  const std::string mqtt = R"("mqtt": {"broker": ":1883"}, )";
  EXPECT_EQ(error_of(with_tls(mqtt + R"("records": {"connectivity": ["mqtt"]},
      "reliable_ack_sources": {"connectivity": "mqtt"})")),
            "reliable ack not needed for txType: connectivity");
  EXPECT_EQ(error_of(with_tls(mqtt + R"("records": {"V": ["logger"]},
      "reliable_ack_sources": {"V": "logger"})")),
            "logger cannot be configured as reliable ack for record: V");
  EXPECT_EQ(error_of(with_tls(mqtt + R"("records": {"V": ["mqtt"]},
      "reliable_ack_sources": {"alerts": "mqtt"})")),
            "mqtt cannot be configured as reliable ack for record: alerts since no record mapping "
            "exists");
  EXPECT_EQ(error_of(with_tls(mqtt + R"("records": {"V": ["logger"]},
      "reliable_ack_sources": {"V": "mqtt"})")),
            "mqtt cannot be configured as reliable ack for record: V. Valid datastores configured "
            "[]");
}

TEST_F(ConfigTest, ReliableAckValidListUsesGoSliceFormat) {
  options_.supported_dispatchers = kAllDispatchers;
  EXPECT_EQ(error_of(with_tls(R"("records": {"V": ["kafka", "logger", "mqtt"]},
      "kafka": {}, "mqtt": {"broker": ":1883"}, "reliable_ack_sources": {"V": "redis"})")),
            "redis cannot be configured as reliable ack for record: V. Valid datastores "
            "configured [kafka mqtt]");
}

TEST_F(ConfigTest, ReliableAckUnknownAndUnsupportedNames) {
  const std::string records = R"("mqtt": {"broker": ":1883"}, "records": {"V": ["mqtt"]}, )";
  EXPECT_EQ(error_of(with_tls(records + R"("reliable_ack_sources": {"V": "mqt"})")),
            "reliable_ack_sources.V: unknown dispatcher \"mqt\" (known: kafka, kinesis, pubsub, "
            "zmq, mqtt, redis, logger)");
  EXPECT_EQ(error_of(with_tls(records + R"("reliable_ack_sources": {"V": "kafka"})")),
            "reliable_ack_sources.V: dispatcher \"kafka\" is not supported by this server "
            "(supported: mqtt, logger)");
}

TEST_F(ConfigTest, ReliableAckChecksRunInRecordTypeOrder) {
  // Two violations: the reference reports a random one, we report the first record type.
  const std::string text = with_tls(R"("mqtt": {"broker": ":1883"}, "records": {"V": ["logger"]},
      "reliable_ack_sources": {"errors": "mqtt", "V": "logger", "alerts": "mqtt"})");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(error_of(text), "logger cannot be configured as reliable ack for record: V");
  }
  const std::string lower = with_tls(R"("mqtt": {"broker": ":1883"}, "records": {"V": ["mqtt"]},
      "reliable_ack_sources": {"errors": "mqtt", "alerts": "mqtt"})");
  EXPECT_EQ(error_of(lower),
            "mqtt cannot be configured as reliable ack for record: alerts since no record mapping "
            "exists");
}

// --- vins_signal_tracking_enabled

TEST_F(ConfigTest, AtMostTwentyUniqueTrackedVins) {
  std::string twenty;
  for (int i = 0; i < 20; ++i) twenty += "\"VIN" + std::to_string(i) + "\", ";
  const Config config =
      parse(with_tls("\"vins_signal_tracking_enabled\": [" + twenty + "\"VIN0\", \"VIN1\"]"))
          .config;
  EXPECT_EQ(config.vins_signal_tracking_enabled.size(), 20U);
  EXPECT_EQ(config.vins_signal_tracking_enabled.front(), "VIN0");
  EXPECT_EQ(error_of(with_tls("\"vins_signal_tracking_enabled\": [" + twenty + "\"VIN20\"]")),
            "set the value of `vins_signal_tracking_enabled` less than 20 unique vins");
}

// --- rate limiting (spec §6)

TEST_F(ConfigTest, RateLimitZeroLimitIsAnErrorWhereTheReferenceCrashes) {
  EXPECT_EQ(error_of(with_tls(R"("rate_limit": {"enabled": true, "message_interval_time": 60})")),
            "rate_limit.message_limit: must be ≥ 1 when rate_limit.enabled is true");
}

TEST_F(ConfigTest, RateLimitNeedsAnInterval) {
  const std::string error =
      error_of(with_tls(R"("rate_limit": {"enabled": true, "message_limit": 10})"));
  EXPECT_TRUE(starts_with(
      error, "rate_limit.message_interval_time: must be ≥ 1 when rate_limit.enabled is true"))
      << error;
}

TEST_F(ConfigTest, RateLimitHonoursDocumentedSecondsKey) {
  const Config config =
      parse(
          with_tls(
              R"("rate_limit": {"enabled": true, "message_limit": 10, "message_interval_time": 60})"))
          .config;
  EXPECT_TRUE(config.rate_limit.enabled);
  EXPECT_EQ(config.rate_limit.message_limit, 10U);
  EXPECT_EQ(config.rate_limit.interval, 60s);
}

TEST_F(ConfigTest, RateLimitUndocumentedNanosecondsKeyWins) {
  const Config only_ns =
      parse(
          with_tls(
              R"("rate_limit": {"enabled": true, "message_limit": 1, "MessageIntervalTimeSecond": 500000000})"))
          .config;
  EXPECT_EQ(only_ns.rate_limit.interval, 500ms);

  const LoadedConfig both = parse(with_tls(R"("rate_limit": {"enabled": true, "message_limit": 1,
      "message_interval_time": 60, "MessageIntervalTimeSecond": 2000000000})"));
  EXPECT_EQ(both.config.rate_limit.interval, 2s);
  ASSERT_EQ(both.warnings.size(), 1U);
  EXPECT_EQ(both.warnings[0].key, "rate_limit.message_interval_time");
}

TEST_F(ConfigTest, RateLimitDisabledNeedsNothing) {
  const Config config = parse(with_tls(R"("rate_limit": {"enabled": false})")).config;
  EXPECT_FALSE(config.rate_limit.enabled);
  EXPECT_EQ(kCountingOnlyMessageLimit, 100U);
  EXPECT_EQ(kCountingOnlyInterval, 60s);
}

// --- kafka (spec §8.2)

TEST_F(ConfigTest, KafkaNumbersAreTruncatedAndBooleansSpelledOut) {
  options_.supported_dispatchers = kAllDispatchers;
  const Config config = parse(with_tls(R"("kafka": {"bootstrap.servers": "k:9092",
      "queue.buffering.max.messages": 1000.9, "linger.ms": -2.7, "batch.size": 16384,
      "enable.idempotence": true, "socket.nagle.disable": false, "Acks": "all",
      "big": 18446744073709551615})"))
                            .config;
  ASSERT_TRUE(config.kafka.has_value());
  const auto& kafka = *config.kafka;
  EXPECT_EQ(kafka.at("bootstrap.servers"), "k:9092");
  EXPECT_EQ(kafka.at("queue.buffering.max.messages"), "1000");
  EXPECT_EQ(kafka.at("linger.ms"), "-2");
  EXPECT_EQ(kafka.at("batch.size"), "16384");
  EXPECT_EQ(kafka.at("enable.idempotence"), "true");
  EXPECT_EQ(kafka.at("socket.nagle.disable"), "false");
  EXPECT_EQ(kafka.at("Acks"), "all");  // property names are not case-folded
  EXPECT_EQ(kafka.at("big"), "18446744073709551615");
}

TEST_F(ConfigTest, KafkaRejectsStructuredValues) {
  EXPECT_EQ(error_of(with_tls(R"("kafka": {"ssl": {"a": 1}})")),
            "kafka.ssl: must be a string, number or boolean (got an object)");
  EXPECT_EQ(error_of(with_tls(R"("kafka": {"x": null})")),
            "kafka.x: must be a string, number or boolean (got null)");
  EXPECT_EQ(error_of(with_tls(R"("kafka": {"x": 1e300})")),
            "kafka.x: must be a number that fits a 64-bit integer (got 1e+300)");
}

// --- mqtt.broker (spec §8.8)

TEST(MqttBroker, ParsesReferenceForms) {
  const MqttBroker local = parse_mqtt_broker(":1883");
  EXPECT_EQ(local.scheme, "tcp");
  EXPECT_EQ(local.host, "127.0.0.1");
  EXPECT_EQ(local.port, 1883);
  EXPECT_FALSE(local.tls);
  EXPECT_EQ(local.url(), "tcp://127.0.0.1:1883");

  const MqttBroker tcp = parse_mqtt_broker("tcp://h:1");
  EXPECT_EQ(tcp.scheme, "tcp");
  EXPECT_EQ(tcp.host, "h");
  EXPECT_EQ(tcp.port, 1);
  EXPECT_FALSE(tcp.tls);

  const MqttBroker ssl = parse_mqtt_broker("ssl://h:8883");
  EXPECT_EQ(ssl.scheme, "ssl");
  EXPECT_EQ(ssl.host, "h");
  EXPECT_EQ(ssl.port, 8883);
  EXPECT_TRUE(ssl.tls);

  const MqttBroker bare = parse_mqtt_broker("h:1883");
  EXPECT_EQ(bare.scheme, "tcp");
  EXPECT_EQ(bare.host, "h");
  EXPECT_EQ(bare.port, 1883);
}

TEST(MqttBroker, TlsSchemesDefaultPortsAndIpv6) {
  EXPECT_TRUE(parse_mqtt_broker("mqtts://broker.example").tls);
  EXPECT_EQ(parse_mqtt_broker("mqtts://broker.example").port, 8883);
  EXPECT_EQ(parse_mqtt_broker("broker.example").port, 1883);
  EXPECT_TRUE(parse_mqtt_broker("TLS://b:1").tls);
  EXPECT_EQ(parse_mqtt_broker("TLS://b:1").scheme, "tls");
  EXPECT_FALSE(parse_mqtt_broker("mqtt://b:1").tls);
  EXPECT_EQ(parse_mqtt_broker("tcp://:1884").host, "127.0.0.1");
  EXPECT_EQ(parse_mqtt_broker("tcp://b:1/").url(), "tcp://b:1");
  const MqttBroker v6 = parse_mqtt_broker("[::1]:1883");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.url(), "tcp://[::1]:1883");
}

std::string broker_error(std::string_view text) {
  try {
    parse_mqtt_broker(text);
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.key(), "mqtt.broker");
    return error.what();
  }
  return "(no error)";
}

TEST(MqttBroker, RejectsWhatCannotBeUsed) {
  EXPECT_EQ(broker_error("ws://h:80"),
            "mqtt.broker: scheme \"ws\" in \"ws://h:80\" is not supported by this server "
            "(supported: tcp, mqtt, ssl, tls, mqtts, tcps)");
  EXPECT_EQ(broker_error("tcp://h:0"), "mqtt.broker: port \"0\" in \"tcp://h:0\" must be 1..65535");
  EXPECT_EQ(broker_error("h:x"), "mqtt.broker: port \"x\" in \"h:x\" must be 1..65535");
  EXPECT_EQ(broker_error("h:70000"), "mqtt.broker: port \"70000\" in \"h:70000\" must be 1..65535");
  EXPECT_EQ(broker_error("h:"), "mqtt.broker: empty port in \"h:\"");
  EXPECT_EQ(broker_error("tcp://u:p@h:1"),
            "mqtt.broker: credentials in \"tcp://u:p@h:1\" are not supported; use mqtt.username "
            "and mqtt.password");
  EXPECT_EQ(broker_error("tcp://h:1/x"),
            "mqtt.broker: unexpected path or query \"/x\" in \"tcp://h:1/x\"");
  EXPECT_EQ(broker_error("::1:1883"), "mqtt.broker: put an IPv6 address in brackets: \"::1:1883\"");
  EXPECT_EQ(broker_error(""), "mqtt.broker: must not be empty");
}

TEST_F(ConfigTest, BrokerErrorsSurfaceFromTheConfig) {
  EXPECT_EQ(error_of(with_tls(R"("mqtt": {"broker": "ws://h:80"})")),
            "mqtt.broker: scheme \"ws\" in \"ws://h:80\" is not supported by this server "
            "(supported: tcp, mqtt, ssl, tls, mqtts, tcps)");
  EXPECT_EQ(error_of(with_tls(R"("mqtt": {"broker": 1883})")),
            "mqtt.broker: must be a string (got 1883)");
}

// --- mqtt TLS extension

TEST_F(ConfigTest, MqttTlsFilesNeedATlsBrokerAndReadableFiles) {
  const std::string ca = path("ca.pem");
  const Config config = parse(with_tls("\"mqtt\": {\"broker\": \"ssl://b:8883\", \"ca_file\": \"" +
                                       ca + "\", \"cert_file\": \"" + path("server.pem") +
                                       "\", \"key_file\": \"" + path("server.key") + "\"}"))
                            .config;
  EXPECT_EQ(config.mqtt->ca_file, ca);
  EXPECT_EQ(config.mqtt->cert_file, path("server.pem"));
  EXPECT_EQ(config.mqtt->key_file, path("server.key"));

  EXPECT_EQ(error_of(with_tls("\"mqtt\": {\"broker\": \"b:1883\", \"ca_file\": \"" + ca + "\"}")),
            "mqtt.ca_file: set, but mqtt.broker \"tcp://b:1883\" does not use TLS (use ssl:// or "
            "mqtts://)");
  EXPECT_EQ(error_of(with_tls("\"mqtt\": {\"broker\": \"ssl://b\", \"ca_file\": \"" +
                              path("none.pem") + "\"}")),
            "mqtt.ca_file: cannot read \"" + path("none.pem") + "\": No such file or directory");
  EXPECT_EQ(error_of(with_tls("\"mqtt\": {\"broker\": \"ssl://b\", \"cert_file\": \"" +
                              path("server.pem") + "\"}")),
            "mqtt.key_file: mqtt.cert_file and mqtt.key_file must be set together");
}

// --- environment (spec §10.3)

TEST_F(ConfigTest, SuppressTlsHandshakeErrorLoggingParsesLikeGo) {
  EXPECT_FALSE(parse(with_tls()).config.suppress_tls_handshake_error_logging);
  for (const char* yes : {"true", "1", "t", "TRUE", "True"}) {
    env_["SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING"] = yes;
    EXPECT_TRUE(parse(with_tls()).config.suppress_tls_handshake_error_logging) << yes;
  }
  for (const char* no : {"false", "0", "F", ""}) {
    env_["SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING"] = no;
    EXPECT_FALSE(parse(with_tls()).config.suppress_tls_handshake_error_logging) << no;
  }
  env_["SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING"] = "yes";
  EXPECT_EQ(error_of(with_tls()),
            "SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING: must be a boolean (true, false, 1, 0, t, f, "
            "TRUE, FALSE, True, False), got \"yes\"");
}

TEST_F(ConfigTest, RedisPasswordIsIrrelevant) {
  env_["REDIS_PASSWORD"] = "secret";
  const LoadedConfig loaded = parse(with_tls());
  EXPECT_TRUE(loaded.warnings.empty()) << warnings_text(loaded);
}

// --- docs/config.md

TEST(ConfigDocs, GeneratedReferenceIsInDocs) {
  const fs::path docs = fs::path(TS_SOURCE_DIR) / "docs" / "config.md";
  const std::string text = read_file(docs);
  const std::string generated = config_reference_markdown();
  if (text.find(generated) == std::string::npos) {
    const fs::path out = fs::temp_directory_path() / "ts-config-reference.generated.md";
    write_file(out, generated);
    ADD_FAILURE() << docs << " does not contain the generated key reference; replace the block "
                  << "between the BEGIN/END markers with the contents of " << out;
  }
}

TEST(ConfigDocs, GeneratedReferenceDescribesKeys) {
  const std::string generated = config_reference_markdown();
  EXPECT_NE(generated.find("| `mqtt.qos` | int 0..2 | `0` | reference |"), std::string::npos);
  EXPECT_NE(generated.find("| `mqtt.connect_timeout_ms` | int ≥ 0 | `30000` | reference |"),
            std::string::npos);
  EXPECT_NE(generated.find("| `monitoring.prometheus_metrics_host` | string | `\"127.0.0.1\"` |"),
            std::string::npos);
  EXPECT_NE(generated.find("| `tls.ca_file` | path | `\"\"` | reference, changed |"),
            std::string::npos);
  EXPECT_NE(generated.find("| `mqtt.event_time_envelope` | bool | `false` | extension |"),
            std::string::npos);
  EXPECT_NE(generated.find("| `workers` | int 0..1024 | `0` | extension |"), std::string::npos);
  EXPECT_NE(generated.find("`SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING`"), std::string::npos);
  EXPECT_NE(generated.find("Dispatchers in this build: `mqtt`, `logger`."), std::string::npos);
}

// The example in docs/config.md is a working configuration (with the dev-ca files put in place).
TEST_F(ConfigTest, DocsExampleConfigLoads) {
  const std::string docs = read_file(fs::path(TS_SOURCE_DIR) / "docs" / "config.md");
  const auto start = docs.find("```json\n");
  ASSERT_NE(start, std::string::npos) << "no ```json block in docs/config.md";
  const auto end = docs.find("```", start + 8);
  ASSERT_NE(end, std::string::npos);
  std::string example = docs.substr(start + 8, end - start - 8);
  // The example names the files `tsctl dev-ca --out dev` writes; put this test's files there.
  const std::string dev_dir = "\"dev/";
  for (auto at = example.find(dev_dir); at != std::string::npos; at = example.find(dev_dir)) {
    example.replace(at, dev_dir.size(), "\"" + dir_.string() + "/");
  }
  const LoadedConfig loaded = parse(example);
  EXPECT_TRUE(loaded.warnings.empty()) << warnings_text(loaded);
  const Config& config = loaded.config;
  EXPECT_EQ(config.host, "127.0.0.1");
  EXPECT_EQ(config.port, 4443);
  EXPECT_EQ(config.tls.ca_file, path("ca.pem"));
  for (const char* type : {"V", "alerts", "errors", "connectivity"}) {
    EXPECT_EQ(config.records.at(type), (std::vector{Dispatcher::Mqtt})) << type;
  }
  EXPECT_EQ(config.mqtt->broker.url(), "tcp://127.0.0.1:1883");
  EXPECT_EQ(config.mqtt->topic_base, "telemetry");
  EXPECT_EQ(config.monitoring.prometheus_metrics_port, 9090);
}

}  // namespace
}  // namespace ts::server
