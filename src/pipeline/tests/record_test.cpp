#include "pipeline/record.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace ts::pipeline {
namespace {

namespace vd = wire::vehicle_data;
namespace va = wire::vehicle_alerts;

vd::Payload payload(int datums, const std::string& name = "car") {
  vd::Payload p;
  for (int i = 0; i < datums; ++i) {
    auto* d = p.add_data();
    d->set_key(vd::VehicleName);
    d->mutable_value()->set_string_value(name + std::to_string(i) + " with a name longer than SSO");
  }
  return p;
}

TEST(Message, EmptyHasNoMessage) {
  Message m;
  EXPECT_EQ(m.index(), 0u);
  EXPECT_EQ(m.get(), nullptr);
  EXPECT_EQ(m.get_if<vd::Payload>(), nullptr);
}

TEST(Message, EmplacedMessageLivesOnTheArenaAndIsTyped) {
  Message m;
  auto& p = m.emplace<vd::Payload>();
  EXPECT_NE(p.GetArena(), nullptr);
  p.set_vin("V1");
  EXPECT_EQ(m.index(), kMessageIndex<vd::Payload>);
  ASSERT_NE(m.get_if<vd::Payload>(), nullptr);
  EXPECT_EQ(m.get_if<vd::Payload>()->vin(), "V1");
  EXPECT_EQ(m.get_if<va::VehicleAlerts>(), nullptr);
  EXPECT_EQ(m.get(), &p);

  auto& a = m.emplace<va::VehicleAlerts>();  // replaces the payload
  a.set_vin("V2");
  EXPECT_EQ(m.get_if<vd::Payload>(), nullptr);
  EXPECT_EQ(m.get_if<va::VehicleAlerts>()->vin(), "V2");
  m.reset();
  EXPECT_EQ(m.get(), nullptr);
  EXPECT_EQ(m.index(), 0u);
}

TEST(Message, CopiesAreDeepAndMovesHandOver) {
  Message a;
  a = payload(3);
  Message b(a);
  ASSERT_NE(b.get_if<vd::Payload>(), nullptr);
  EXPECT_NE(b.get(), a.get());
  EXPECT_NE(b.get_if<vd::Payload>()->GetArena(), a.get_if<vd::Payload>()->GetArena());
  EXPECT_EQ(b.get_if<vd::Payload>()->SerializeAsString(), payload(3).SerializeAsString());

  const auto* before = b.get();
  Message c(std::move(b));
  EXPECT_EQ(c.get(), before);
  EXPECT_EQ(b.get(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  Message d;
  d = std::move(c);
  EXPECT_EQ(d.get(), before);
  d = a;  // copy-assign over a message
  EXPECT_EQ(d.get_if<vd::Payload>()->data_size(), 3);
  d = Message{};
  EXPECT_EQ(d.get(), nullptr);
}

// A record bigger than the arena's first block continues in more blocks; reused arenas start
// empty.
TEST(Message, LargeRecordsAndReusedArenas) {
  for (int round = 0; round < 10; ++round) {
    Message m;
    m = payload(round % 2 ? 2000 : 1, "r" + std::to_string(round));
    const auto* p = m.get_if<vd::Payload>();
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(p->data_size(), round % 2 ? 2000 : 1);
    EXPECT_EQ(p->data(0).value().string_value(),
              "r" + std::to_string(round) + "0 with a name longer than SSO");
  }
}

// A message made on one thread may be destroyed on another (its arena joins that thread's pool).
TEST(Message, DestroyedOnAnotherThread) {
  Message m;
  m = payload(50);
  std::thread([moved = std::move(m)]() mutable {
    EXPECT_EQ(moved.get_if<vd::Payload>()->data_size(), 50);
    moved.reset();
    Message again;
    again = payload(5);
    EXPECT_EQ(again.get_if<vd::Payload>()->data_size(), 5);
  }).join();
}

// A message that outlives its thread's arena pool (a thread_local made before the pool) frees
// its arena instead of returning it to the destroyed pool.
TEST(Message, DestroyedAfterItsThreadsPoolIsGone) {
  std::thread([] {
    thread_local Message late;  // constructed before the pool: destroyed after it
    late = payload(3);
    EXPECT_EQ(late.get_if<vd::Payload>()->data_size(), 3);
  }).join();
}

}  // namespace
}  // namespace ts::pipeline
