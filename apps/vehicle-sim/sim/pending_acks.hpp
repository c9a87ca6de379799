#pragma once
/// Records one vehicle has sent and not yet seen answered, keyed by the sequence number in their
/// txid (`<prefix>-<seq>`). Sequence numbers are handed out in order, so the window is a deque
/// indexed by `seq - front`: O(1) add and take, no allocation per record once warmed up, and
/// replies may come back in any order. The window is bounded: when it is full the oldest record
/// is given up on (counted as evicted) so a server that never answers cannot grow it.
///
/// Owned by one `Vehicle`; used on its shard's thread only. Never fails.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>

namespace ts::vehicle_sim {

class PendingAcks {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PendingAcks(std::size_t max_window) : max_window_(max_window == 0 ? 1 : max_window) {}

  /// The sequence number the next record must use (starts at 1).
  std::uint64_t next_seq() const { return front_seq_ + window_.size(); }

  /// Registers record `next_seq()`, sent at `sent_at`. Returns how many unanswered records were
  /// evicted to make room (0 or 1).
  std::size_t add(Clock::time_point sent_at);

  /// Marks `seq` answered and returns when it was sent; nullopt if it is not outstanding (never
  /// sent, already answered, or evicted).
  std::optional<Clock::time_point> take(std::uint64_t seq);

  /// Records still waiting for a reply.
  std::size_t outstanding() const { return outstanding_; }

  /// Whether `seq` was sent and is still waiting for its reply.
  bool is_outstanding(std::uint64_t seq) const {
    return seq >= front_seq_ && seq - front_seq_ < window_.size() &&
           !window_[static_cast<std::size_t>(seq - front_seq_)].answered;
  }

  /// The sequence number in `txid` if it is `<prefix>-<digits>`, else nullopt.
  static std::optional<std::uint64_t> parse_seq(std::string_view txid, std::string_view prefix);

 private:
  struct Entry {
    Clock::time_point sent_at;
    bool answered = false;
  };
  void drop_answered_front();

  std::size_t max_window_;
  std::uint64_t front_seq_ = 1;  ///< sequence number of window_.front()
  std::deque<Entry> window_;
  std::size_t outstanding_ = 0;
};

}  // namespace ts::vehicle_sim
