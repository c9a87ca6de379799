#include "flood.hpp"

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "dispatch/mqtt/mqtt_client.hpp"

namespace ts::bench {
using namespace std::chrono_literals;

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

void flood(std::uint16_t port, std::size_t n, const MakeMessage& make, std::chrono::seconds limit,
           const std::string& client_id) {
  dispatch::MqttClientOptions o;
  o.port = port;
  o.client_id = client_id;
  dispatch::MqttClient pub(o);
  pub.start();
  if (!wait_until([&] { return pub.connected(); }, 10s)) throw std::runtime_error("flood: no broker");
  std::atomic<std::size_t> ok{0}, failed{0};
  for (std::size_t i = 0; i < n;) {
    std::vector<dispatch::MqttClient::Message> batch;
    for (std::size_t k = 0; k < 1000 && i < n; ++k, ++i) {
      auto& m = batch.emplace_back(dispatch::MqttClient::Message{{}, {}, 1, false});
      make(i, m.topic, m.payload);
    }
    const std::size_t size = batch.size();
    while (pub.unconfirmed() > 50'000) std::this_thread::sleep_for(1ms);
    pub.publish_batch(std::move(batch), [&, size](bool r) { (r ? ok : failed) += size; });
  }
  const bool done = wait_until([&] { return ok + failed == n; }, limit);
  pub.stop();
  if (!done || failed > 0) {
    throw std::runtime_error("flood: " + std::to_string(failed.load()) + " messages refused, " +
                             std::to_string(n - ok - failed) + " unconfirmed");
  }
}

}  // namespace ts::bench
