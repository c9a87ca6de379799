#include <arpa/inet.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "support/mosquitto_broker.hpp"
#include "support/mqtt_collector.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait_for.hpp"

namespace ts::testsupport {
namespace {

using namespace std::chrono_literals;

// A plain libmosquitto publisher, as a test of ours would use one: publish() returns once the
// broker has the message (QoS 0: written to the socket, QoS 1: PUBACK received).
class Publisher {
 public:
  explicit Publisher(std::uint16_t port, const std::string& username = {},
                     const std::string& password = {}) {
    init_mosquitto_lib();
    mosq_ = mosquitto_new(nullptr, true, this);
    if (mosq_ == nullptr) throw std::runtime_error("mosquitto_new failed");
    mosquitto_connect_callback_set(mosq_, [](mosquitto*, void* self, int rc) {
      auto* p = static_cast<Publisher*>(self);
      std::lock_guard lock(p->mutex_);
      p->connack_ = rc;
      p->changed_.notify_all();
    });
    mosquitto_publish_callback_set(mosq_, [](mosquitto*, void* self, int mid) {
      auto* p = static_cast<Publisher*>(self);
      std::lock_guard lock(p->mutex_);
      p->published_.insert(mid);
      p->changed_.notify_all();
    });
    if (!username.empty()) mosquitto_username_pw_set(mosq_, username.c_str(), password.c_str());
    if (mosquitto_connect(mosq_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(mosq_) != MOSQ_ERR_SUCCESS) {
      mosquitto_destroy(mosq_);
      throw std::runtime_error("publisher cannot connect");
    }
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, 10s, [&] { return connack_ >= 0; }) || connack_ != 0) {
      lock.unlock();
      close();
      throw std::runtime_error("publisher: no CONNACK or refused");
    }
  }
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  ~Publisher() { close(); }

  ::testing::AssertionResult publish(const std::string& topic, const std::string& payload, int qos,
                                     bool retain = false) {
    int mid = 0;
    const int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                     payload.data(), qos, retain);
    if (rc != MOSQ_ERR_SUCCESS) {
      return ::testing::AssertionFailure() << "mosquitto_publish: " << mosquitto_strerror(rc);
    }
    std::unique_lock lock(mutex_);
    if (changed_.wait_for(lock, 10s, [&] { return published_.count(mid) > 0; })) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no publish confirmation for " << topic;
  }

 private:
  void close() {
    if (mosq_ == nullptr) return;
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, false);
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }

  mosquitto* mosq_ = nullptr;
  std::mutex mutex_;
  std::condition_variable changed_;
  int connack_ = -1;
  std::set<int> published_;
};

std::string run_ok(Process&& process) {
  const std::optional<int> status = process.wait(30s);
  EXPECT_EQ(status, 0) << process.name() << ": " << process.stderr_text();
  return process.stdout_text();
}

// Gone, or a zombie waiting for an init that does not reap (containers).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  const std::string stat = read_file_text("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

// --- wait_for -------------------------------------------------------------------------------

TEST(WaitFor, FailsWithWhatAndDeadlineWhenPredicateNeverHolds) {
  int calls = 0;
  const ::testing::AssertionResult result = wait_for(
      [&] {
        ++calls;
        return false;
      },
      30ms, "the moon to turn blue");
  EXPECT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find("the moon to turn blue"), std::string::npos)
      << result.message();
  EXPECT_NE(std::string(result.message()).find("30 ms"), std::string::npos) << result.message();
  EXPECT_GE(calls, 2);  // polled, and once more at the deadline
}

TEST(WaitFor, SucceedsOnceThePredicateHolds) {
  int calls = 0;
  EXPECT_TRUE(wait_for([&] { return ++calls >= 4; }, 10s, "fourth call"));
  EXPECT_EQ(calls, 4);
}

// --- ports ----------------------------------------------------------------------------------

TEST(Ports, FreePortIsNotListeningAndListeningPortIsConnectable) {
  const std::uint16_t port = free_port();
  EXPECT_NE(port, 0);
  EXPECT_FALSE(tcp_connectable(port));

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  EXPECT_TRUE(tcp_connectable(port));
  ::close(fd);
}

// --- TempDir --------------------------------------------------------------------------------

TEST(TempDir, IsCreatedAndRemovedRecursively) {
  ::unsetenv("TS_KEEP_TEST_DIRS");
  std::filesystem::path path;
  {
    TempDir dir("ts-selftest");
    path = dir.path();
    ASSERT_TRUE(std::filesystem::is_directory(path));
    EXPECT_NE(path.filename().string().find("ts-selftest-"), std::string::npos);
    std::filesystem::create_directories(dir.file("a/b"));
    dir.write_file("a/b/c.txt", "hello");
    EXPECT_EQ(read_file_text(dir.file("a/b/c.txt")), "hello");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(TempDir, IsKeptWithTsKeepTestDirs) {
  std::filesystem::path path;
  ::setenv("TS_KEEP_TEST_DIRS", "1", 1);
  {
    TempDir dir("ts-selftest-keep");
    path = dir.path();
  }
  ::unsetenv("TS_KEEP_TEST_DIRS");
  EXPECT_TRUE(std::filesystem::is_directory(path));
  std::filesystem::remove_all(path);
}

// --- Process --------------------------------------------------------------------------------

TEST(Process, CapturesStdoutStderrAndExitCode) {
  TempDir dir;
  Process sh = Process::start(
      {.argv = {"/bin/sh", "-c", "echo hi; echo oops >&2; exit 3"}, .output_dir = dir.path()});
  EXPECT_GT(sh.pid(), 0);
  EXPECT_EQ(sh.wait(10s), 3);
  EXPECT_FALSE(sh.running());
  EXPECT_EQ(sh.stdout_text(), "hi\n");
  EXPECT_EQ(sh.stderr_text(), "oops\n");
  EXPECT_EQ(sh.exit_status(), 3);
}

TEST(Process, PassesExtraEnvironmentAndLooksUpPath) {
  TempDir dir;
  Process sh = Process::start({.argv = {"sh", "-c", "echo \"$TS_SELFTEST_VALUE:$HOME\""},
                               .env = {{"TS_SELFTEST_VALUE", "42"}, {"HOME", "/nowhere"}},
                               .output_dir = dir.path(),
                               .working_dir = "/"});
  EXPECT_EQ(sh.wait(10s), 0);
  EXPECT_EQ(sh.stdout_text(), "42:/nowhere\n");
}

TEST(Process, TerminateOfSleepIsBounded) {
  TempDir dir;
  Process sleeper = Process::start({.argv = {"sleep", "30"}, .output_dir = dir.path()});
  EXPECT_TRUE(sleeper.running());
  EXPECT_EQ(sleeper.wait(10ms), std::nullopt);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(sleeper.terminate(5s), 128 + SIGTERM);
  // A bound, not a timing: `sleep 30` must not run to its end.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
  EXPECT_FALSE(sleeper.running());
}

TEST(Process, TerminateEscalatesToSigkillAndReachesGrandchildren) {
  TempDir dir;
  // The shell ignores SIGTERM (and so does its background child, which inherits that).
  Process stubborn =
      Process::start({.argv = {"/bin/sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"},
                      .output_dir = dir.path()});
  ASSERT_TRUE(wait_for([&] { return !stubborn.stdout_text().empty(); }, 10s, "grandchild pid"));
  const pid_t grandchild = std::stoi(stubborn.stdout_text());
  EXPECT_EQ(stubborn.terminate(100ms), 128 + SIGKILL);
  EXPECT_TRUE(wait_for([&] { return process_gone(grandchild); }, 10s, "grandchild killed"));
}

TEST(Process, DestructorKillsAndReaps) {
  TempDir dir;
  pid_t pid = 0;
  {
    Process sleeper = Process::start({.argv = {"/bin/sleep", "30"}, .output_dir = dir.path()});
    pid = sleeper.pid();
    ASSERT_TRUE(sleeper.running());
  }
  // Reaped: no longer our child, and no zombie left for the pid.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(::kill(pid, 0), -1);
}

TEST(Process, SendSignalReachesTheChild) {
  TempDir dir;
  Process sleeper = Process::start({.argv = {"/bin/sleep", "30"}, .output_dir = dir.path()});
  sleeper.send_signal(SIGUSR1);
  EXPECT_EQ(sleeper.wait(10s), 128 + SIGUSR1);
  sleeper.send_signal(SIGUSR1);  // reaped: a no-op
}

TEST(Process, MissingBinaryThrowsClearMessage) {
  TempDir dir;
  try {
    Process::start({.argv = {"/nonexistent/telemetry-server"}, .output_dir = dir.path()});
    FAIL() << "start did not throw";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/nonexistent/telemetry-server"), std::string::npos) << what;
    EXPECT_NE(what.find("No such file"), std::string::npos) << what;
  }
  EXPECT_THROW(Process::start({.argv = {"ts-no-such-program"}, .output_dir = dir.path()}),
               std::runtime_error);
  EXPECT_THROW(
      Process::start(
          {.argv = {"/bin/true"}, .output_dir = dir.path(), .working_dir = "/nonexistent"}),
      std::runtime_error);
  // The failed starts left no child behind.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
}

TEST(Process, MoveTransfersOwnership) {
  TempDir dir;
  Process a = Process::start({.argv = {"/bin/sleep", "30"}, .output_dir = dir.path()});
  const pid_t pid = a.pid();
  Process b = std::move(a);
  EXPECT_EQ(b.pid(), pid);
  EXPECT_TRUE(b.running());
  b = Process::start({.argv = {"/bin/true"}, .output_dir = dir.path()});  // kills the sleep
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(b.wait(10s), 0);
}

// --- MosquittoBroker + MqttCollector --------------------------------------------------------

TEST(Mosquitto, CollectorReceivesQos0AndQos1Messages) {
  MosquittoBroker broker;
  EXPECT_NE(broker.port(), 0);
  EXPECT_TRUE(tcp_connectable(broker.port()));
  MqttCollector collector(broker.port(), "ts/#", 1);
  EXPECT_EQ(collector.subscriptions(), 1u);
  EXPECT_TRUE(collector.connected());

  Publisher publisher(broker.port());
  ASSERT_TRUE(publisher.publish("ts/b", "zero", 0));
  ASSERT_TRUE(publisher.publish("ts/a", std::string("one\0\xff", 5), 1));
  ASSERT_TRUE(publisher.publish("other/topic", "ignored", 1));
  ASSERT_TRUE(collector.wait_for_count(2, 10s));

  const std::vector<MqttMessage> messages = collector.messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].topic, "ts/b");
  EXPECT_EQ(messages[0].payload, "zero");
  EXPECT_EQ(messages[0].qos, 0);
  EXPECT_EQ(messages[1].topic, "ts/a");
  EXPECT_EQ(messages[1].payload, std::string("one\0\xff", 5));
  EXPECT_EQ(messages[1].qos, 1);
  EXPECT_FALSE(messages[1].retain);
  EXPECT_LE(messages[0].arrived, messages[1].arrived);
  EXPECT_EQ(collector.lines(),
            (std::vector<std::string>{"ts/b\tzero", std::string("ts/a\tone\0\xff", 10)}));
  EXPECT_EQ(collector.sorted_lines(),
            (std::vector<std::string>{std::string("ts/a\tone\0\xff", 10), "ts/b\tzero"}));

  collector.clear();
  EXPECT_EQ(collector.size(), 0u);
  const ::testing::AssertionResult none = collector.wait_for_count(1, 50ms);
  EXPECT_FALSE(none);
  EXPECT_NE(std::string(none.message()).find("ts/#"), std::string::npos) << none.message();
  EXPECT_NE(broker.log_text().find("running"), std::string::npos) << broker.log_text();
}

TEST(Mosquitto, RetainedMessageIsFlagged) {
  MosquittoBroker broker;
  Publisher publisher(broker.port());
  ASSERT_TRUE(publisher.publish("ts/retained", "kept", 1, true));
  MqttCollector collector(broker.port(), "ts/retained", 1);
  ASSERT_TRUE(collector.wait_for_count(1, 10s));
  EXPECT_TRUE(collector.messages().front().retain);
}

TEST(Mosquitto, RestartKeepsThePortAndCollectorsWorkAgain) {
  MosquittoBroker broker;
  const std::uint16_t port = broker.port();
  MqttCollector collector(port, "ts/#", 1);
  {
    Publisher publisher(port);
    ASSERT_TRUE(publisher.publish("ts/before", "1", 1));
  }
  ASSERT_TRUE(collector.wait_for_count(1, 10s));

  const std::uint64_t before = collector.subscriptions();
  broker.stop();
  EXPECT_FALSE(broker.running());
  EXPECT_FALSE(tcp_connectable(port));
  EXPECT_THROW(MqttCollector(port, "ts/#", 1), std::runtime_error);
  broker.stop();  // idempotent

  broker.start();
  EXPECT_EQ(broker.port(), port);
  EXPECT_TRUE(broker.running());
  EXPECT_THROW(broker.start(), std::logic_error);
  ASSERT_TRUE(collector.wait_for_subscriptions(before + 1, 15s));
  MqttCollector fresh(port, "ts/#", 0);

  Publisher publisher(port);
  ASSERT_TRUE(publisher.publish("ts/after", "2", 1));
  ASSERT_TRUE(collector.wait_for_count(2, 10s));
  ASSERT_TRUE(fresh.wait_for_count(1, 10s));
  EXPECT_EQ(collector.lines(), (std::vector<std::string>{"ts/before\t1", "ts/after\t2"}));
  EXPECT_EQ(fresh.lines(), (std::vector<std::string>{"ts/after\t2"}));

  // The log covers both runs.
  const std::string log = broker.log_text();
  const std::size_t first = log.find("running");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_NE(log.find("running", first + 1), std::string::npos) << log;
}

TEST(Mosquitto, RestartFailsClearlyWhenThePortWasTaken) {
  MosquittoBroker broker;
  broker.stop();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(broker.port());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  try {
    broker.start();
    ADD_FAILURE() << "start on a taken port did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("taken"), std::string::npos) << e.what();
  }
  ::close(fd);
  EXPECT_FALSE(broker.running());
  broker.start();  // the port is free again
  EXPECT_TRUE(broker.running());
}

TEST(Mosquitto, CollectorSurvivesBeingDestroyedDuringAnOutage) {
  MosquittoBroker broker;
  auto collector = std::make_unique<MqttCollector>(broker.port(), "ts/#", 1);
  broker.stop();
  EXPECT_TRUE(wait_for([&] { return !collector->connected(); }, 10s, "collector disconnected"));
  collector.reset();  // must not hang in the reconnect loop
}

TEST(Mosquitto, PasswordFileRejectsWrongCredentials) {
  MosquittoBroker broker({.username = "alice", .password = "s3cret", .allow_anonymous = false});
  MqttCollector ok(broker.port(), "ts/#", 1, {.username = "alice", .password = "s3cret"});
  try {
    MqttCollector bad(broker.port(), "ts/#", 1, {.username = "alice", .password = "wrong"});
    FAIL() << "wrong password accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
  }
  EXPECT_THROW(MqttCollector(broker.port(), "ts/#", 1), std::runtime_error);

  Publisher publisher(broker.port(), "alice", "s3cret");
  ASSERT_TRUE(publisher.publish("ts/x", "y", 1));
  ASSERT_TRUE(ok.wait_for_count(1, 10s));
}

TEST(Mosquitto, TlsListenerAcceptsCollectorTrustingTheCa) {
  TempDir pki("ts-selftest-pki");
  const std::string p = pki.path().string() + "/";
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  auto openssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    return run_ok(Process::start({.argv = std::move(args), .output_dir = pki.path()}));
  };
  std::vector<std::string> ca = {"req", "-x509"};
  ca.insert(ca.end(), ec.begin(), ec.end());
  ca.insert(ca.end(), {"-keyout", p + "ca.key", "-out", p + "ca.crt", "-subj", "/CN=ts-test-ca",
                       "-days", "2"});
  openssl(ca);
  std::vector<std::string> csr = {"req"};
  csr.insert(csr.end(), ec.begin(), ec.end());
  csr.insert(csr.end(),
             {"-keyout", p + "server.key", "-out", p + "server.csr", "-subj", "/CN=127.0.0.1"});
  openssl(csr);
  pki.write_file("san.cnf", "subjectAltName=IP:127.0.0.1\n");
  openssl({"x509", "-req", "-in", p + "server.csr", "-CA", p + "ca.crt", "-CAkey", p + "ca.key",
           "-CAcreateserial", "-out", p + "server.crt", "-days", "2", "-extfile", p + "san.cnf"});
  ASSERT_FALSE(::testing::Test::HasFailure());

  MosquittoBroker broker(
      {.tls = MosquittoTlsListener{
           .cert_file = p + "server.crt", .key_file = p + "server.key", .ca_file = p + "ca.crt"}});
  ASSERT_NE(broker.tls_port(), 0);
  ASSERT_NE(broker.tls_port(), broker.port());
  MqttCollector secure(broker.tls_port(), "ts/#", 1, {.ca_file = p + "ca.crt"});

  // A client that does not trust the CA is turned away quickly, not after the SUBACK timeout.
  const auto started = std::chrono::steady_clock::now();
  try {
    MqttCollector untrusting(
        broker.tls_port(), "ts/#", 1,
        {.ca_file = "/etc/ssl/certs/ca-certificates.crt", .subscribe_timeout = 60s});
    ADD_FAILURE() << "a collector that does not trust the CA got in";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("certificate verify failed"), std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);

  Publisher publisher(broker.port());
  ASSERT_TRUE(publisher.publish("ts/tls", "over tls", 1));
  ASSERT_TRUE(secure.wait_for_count(1, 10s));
  EXPECT_EQ(secure.lines(), (std::vector<std::string>{"ts/tls\tover tls"}));
}

TEST(Mosquitto, MissingBinaryFailsClearly) {
  try {
    MosquittoBroker broker({.binary = "/nonexistent/mosquitto"});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mosquitto"), std::string::npos) << e.what();
  }
}

TEST(Mosquitto, BadConfigFailsWithTheLog) {
  try {
    MosquittoBroker broker({.extra_config = {"no_such_option 1"}});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_option"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("exited with status 3"), std::string::npos) << e.what();
  }
}

TEST(MqttCollector, ConnectToClosedPortThrows) {
  const std::uint16_t port = free_port();
  try {
    MqttCollector collector(port, "ts/#", 1);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ts::testsupport
