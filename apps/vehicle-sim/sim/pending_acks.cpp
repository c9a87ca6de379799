#include "sim/pending_acks.hpp"

#include <charconv>

namespace ts::vehicle_sim {

std::size_t PendingAcks::add(Clock::time_point sent_at) {
  std::size_t evicted = 0;
  if (window_.size() >= max_window_) {
    if (!window_.front().answered) {
      --outstanding_;
      evicted = 1;
    }
    window_.pop_front();
    ++front_seq_;
    drop_answered_front();
  }
  window_.push_back(Entry{sent_at, false});
  ++outstanding_;
  return evicted;
}

std::optional<PendingAcks::Clock::time_point> PendingAcks::take(std::uint64_t seq) {
  if (seq < front_seq_ || seq - front_seq_ >= window_.size()) return std::nullopt;
  Entry& e = window_[static_cast<std::size_t>(seq - front_seq_)];
  if (e.answered) return std::nullopt;
  e.answered = true;
  --outstanding_;
  auto sent_at = e.sent_at;
  drop_answered_front();
  return sent_at;
}

void PendingAcks::drop_answered_front() {
  while (!window_.empty() && window_.front().answered) {
    window_.pop_front();
    ++front_seq_;
  }
}

std::optional<std::uint64_t> PendingAcks::parse_seq(std::string_view txid,
                                                    std::string_view prefix) {
  if (txid.size() <= prefix.size() + 1 || !txid.starts_with(prefix) || txid[prefix.size()] != '-') {
    return std::nullopt;
  }
  std::string_view digits = txid.substr(prefix.size() + 1);
  std::uint64_t seq = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return seq;
}

}  // namespace ts::vehicle_sim
