#include "core/lifecycle.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ts::core {
namespace {

TEST(Lifecycle, StopsInReverseOrderOfStartOnce) {
  std::vector<std::string> log;
  Lifecycle life("test");
  life.start("a", [&] { log.push_back("start a"); }, [&] { log.push_back("stop a"); });
  life.started("b", [&] { log.push_back("stop b"); });
  life.start("c", [&] { log.push_back("start c"); }, [&] { log.push_back("stop c"); });
  EXPECT_EQ(life.running(), (std::vector<std::string>{"a", "b", "c"}));
  life.stop();
  life.stop();
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "start c", "stop c", "stop b", "stop a"}));
  EXPECT_TRUE(life.running().empty());
}

// The M6 shape: a producer thread calls into a consumer declared after it. When start-up fails
// after both started, the Lifecycle (declared after both) stops the producer before either is
// destroyed, so the producer never calls into a destroyed consumer.
TEST(Lifecycle, FailedStartUpStopsWhatStartedBeforeAnythingIsDestroyed) {
  struct Consumer {
    std::atomic<bool> alive{true};
    std::atomic<int> calls{0};
    ~Consumer() { alive = false; }
    void offer() {
      ASSERT_TRUE(alive.load());
      ++calls;
    }
  };
  struct Producer {
    std::atomic<bool> stopping{false};
    std::thread thread;
    void start(Consumer& c) {
      thread = std::thread([this, &c] {
        while (!stopping) c.offer();
      });
    }
    void stop() {
      stopping = true;
      if (thread.joinable()) thread.join();
    }
  };
  std::vector<std::string> order;
  try {
    std::unique_ptr<Producer> producer;  // declared first: destroyed last
    std::unique_ptr<Consumer> consumer;
    Lifecycle life("test");
    producer = std::make_unique<Producer>();
    consumer = std::make_unique<Consumer>();
    life.started("consumer", [&] { order.push_back("consumer"); });
    life.start("producer", [&] { producer->start(*consumer); }, [&] {
      producer->stop();
      order.push_back("producer");
    });
    while (consumer->calls == 0) std::this_thread::yield();
    life.start("http", [] { throw std::runtime_error("port in use"); }, [&] { order.push_back("http"); });
    FAIL() << "start should have thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "port in use");
  }
  EXPECT_EQ(order, (std::vector<std::string>{"producer", "consumer"}));
}

TEST(Lifecycle, AThrowingStopDoesNotStopTheOthers) {
  std::vector<std::string> log;
  {
    Lifecycle life("test");
    life.started("a", [&] { log.push_back("a"); });
    life.started("b", [] { throw std::runtime_error("boom"); });
    life.started("c", [&] { log.push_back("c"); });
  }
  EXPECT_EQ(log, (std::vector<std::string>{"c", "a"}));
}

}  // namespace
}  // namespace ts::core
