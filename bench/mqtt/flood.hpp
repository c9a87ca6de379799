#pragma once
/// Publishes many QoS 1 messages to a broker as fast as it takes them (dispatch::MqttClient,
/// batches of 1,000, at most 50,000 unconfirmed), for the measurement programs that need a
/// backlog or a live flood. Returns when the broker has confirmed every message.
///
/// Failure: throws std::runtime_error when the publisher cannot connect within 10 s, when a
/// message is refused, or when the broker has not confirmed everything within `limit`.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace ts::bench {

/// Polls `pred` every millisecond until it holds (true) or `limit` passes (false).
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit);

/// Fills the topic and payload of message `i` (0 <= i < n); both arrive cleared.
using MakeMessage = std::function<void(std::size_t i, std::string& topic, std::string& payload)>;

void flood(std::uint16_t port, std::size_t n, const MakeMessage& make,
           std::chrono::seconds limit = std::chrono::seconds(600),
           const std::string& client_id = "bench-publisher");

}  // namespace ts::bench
