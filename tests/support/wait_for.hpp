#pragma once
/// Bounded waits for tests: the only way a test waits for something to happen (no bare sleeps).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

namespace ts::testsupport {

/// Polls `pred` on the calling thread, backing off from 1 ms to 50 ms between calls, until it
/// returns true (success) or `deadline` has passed (failure). `pred` is evaluated once more at
/// the deadline. The failure message names `what` and the deadline, e.g.
/// "timed out after 5000 ms waiting for: broker accepts connections". Exceptions thrown by
/// `pred` propagate. Use as `ASSERT_TRUE(wait_for(...))`.
::testing::AssertionResult wait_for(std::function<bool()> pred, std::chrono::milliseconds deadline,
                                    std::string what);

}  // namespace ts::testsupport
