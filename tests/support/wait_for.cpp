#include "support/wait_for.hpp"

#include <algorithm>
#include <thread>

namespace ts::testsupport {

::testing::AssertionResult wait_for(std::function<bool()> pred, std::chrono::milliseconds deadline,
                                    std::string what) {
  using Clock = std::chrono::steady_clock;
  constexpr std::chrono::milliseconds kMaxDelay{50};
  const Clock::time_point end = Clock::now() + deadline;
  std::chrono::milliseconds delay{1};
  int polls = 0;
  while (true) {
    ++polls;
    if (pred()) return ::testing::AssertionSuccess();
    const Clock::time_point now = Clock::now();
    if (now >= end) break;
    std::this_thread::sleep_for(std::min<Clock::duration>(delay, end - now));
    delay = std::min(delay * 2, kMaxDelay);
  }
  return ::testing::AssertionFailure()
         << "timed out after " << deadline.count() << " ms waiting for: " << what << " (checked "
         << polls << " times)";
}

}  // namespace ts::testsupport
