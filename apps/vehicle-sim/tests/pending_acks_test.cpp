#include "sim/pending_acks.hpp"

#include <gtest/gtest.h>

namespace ts::vehicle_sim {
namespace {

using Clock = PendingAcks::Clock;

Clock::time_point at(int ms) { return Clock::time_point{} + std::chrono::milliseconds(ms); }

TEST(PendingAcks, RepliesInOrderReturnTheirSendTimes) {
  PendingAcks p(16);
  EXPECT_EQ(p.next_seq(), 1u);
  EXPECT_EQ(p.add(at(10)), 0u);
  EXPECT_EQ(p.add(at(20)), 0u);
  EXPECT_EQ(p.next_seq(), 3u);
  EXPECT_EQ(p.outstanding(), 2u);
  EXPECT_EQ(p.take(1), at(10));
  EXPECT_EQ(p.take(2), at(20));
  EXPECT_EQ(p.outstanding(), 0u);
  EXPECT_EQ(p.next_seq(), 3u);
}

TEST(PendingAcks, RepliesOutOfOrderAndDuplicates) {
  PendingAcks p(16);
  for (int i = 0; i < 4; ++i) p.add(at(i));
  EXPECT_EQ(p.take(3), at(2));
  EXPECT_TRUE(p.is_outstanding(1));
  EXPECT_FALSE(p.is_outstanding(3));
  EXPECT_FALSE(p.take(3).has_value());  // answered twice
  EXPECT_EQ(p.take(1), at(0));
  EXPECT_EQ(p.take(2), at(1));
  EXPECT_EQ(p.take(4), at(3));
  EXPECT_EQ(p.outstanding(), 0u);
  EXPECT_EQ(p.next_seq(), 5u);
}

TEST(PendingAcks, UnknownSequenceNumbersAreNotOutstanding) {
  PendingAcks p(16);
  p.add(at(0));
  EXPECT_FALSE(p.take(0).has_value());
  EXPECT_FALSE(p.take(2).has_value());
  EXPECT_FALSE(p.take(UINT64_MAX).has_value());
  EXPECT_FALSE(p.is_outstanding(2));
  EXPECT_EQ(p.outstanding(), 1u);
}

TEST(PendingAcks, FullWindowEvictsTheOldestUnanswered) {
  PendingAcks p(3);
  p.add(at(1));
  p.add(at(2));
  p.add(at(3));
  EXPECT_EQ(p.add(at(4)), 1u);  // seq 1 given up
  EXPECT_EQ(p.outstanding(), 3u);
  EXPECT_FALSE(p.take(1).has_value());
  EXPECT_EQ(p.take(2), at(2));
  EXPECT_EQ(p.take(4), at(4));
  // seq 3 still outstanding; the window holds 3..4 plus the next one without eviction.
  EXPECT_EQ(p.add(at(5)), 0u);
  EXPECT_EQ(p.outstanding(), 2u);
}

TEST(PendingAcks, StaysBoundedWhenNothingIsAnswered) {
  PendingAcks p(100);
  std::size_t evicted = 0;
  for (int i = 0; i < 10'000; ++i) evicted += p.add(at(i));
  EXPECT_EQ(p.outstanding(), 100u);
  EXPECT_EQ(evicted, 9'900u);
  EXPECT_EQ(p.take(10'000), at(9'999));
}

TEST(PendingAcks, ParsesTheSequenceAfterTheVehiclePrefix) {
  EXPECT_EQ(PendingAcks::parse_seq("5YJ3E1EA7JF000000-42", "5YJ3E1EA7JF000000"), 42u);
  EXPECT_EQ(PendingAcks::parse_seq("A.1-7", "A.1"), 7u);
  EXPECT_EQ(PendingAcks::parse_seq("5YJ3-E1EA7-1", "5YJ3-E1EA7"), 1u);
  EXPECT_FALSE(PendingAcks::parse_seq("OTHER-42", "5YJ3"));
  EXPECT_FALSE(PendingAcks::parse_seq("A.1-7", "A"));  // another copy's txid
  EXPECT_FALSE(PendingAcks::parse_seq("A-", "A"));
  EXPECT_FALSE(PendingAcks::parse_seq("A-12x", "A"));
  EXPECT_FALSE(PendingAcks::parse_seq("A--1", "A"));
  EXPECT_FALSE(PendingAcks::parse_seq("A-99999999999999999999999", "A"));
  EXPECT_FALSE(PendingAcks::parse_seq("", "A"));
}

}  // namespace
}  // namespace ts::vehicle_sim
