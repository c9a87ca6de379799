#pragma once
/// A vehicle for tests: one mTLS WebSocket connection to telemetry-server on 127.0.0.1 that sends
/// exactly the frames a test gives it (binary, text or empty) and collects every reply.
///
/// Owns an io_context on a background thread; the methods are called from the test thread and
/// block for at most their deadline. Connection failures throw std::runtime_error with the step
/// that failed (TCP, TLS, upgrade).
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ts::testsupport {

struct VehicleClientOptions {
  std::uint16_t port = 0;
  std::string server_name = "localhost";  ///< SNI and the name the server certificate must carry
  std::string ca_file;                    ///< verifies the server
  std::string cert_file;                  ///< vehicle certificate (empty: none is presented)
  std::string key_file;
  std::string target = "/";
  std::map<std::string, std::string> headers = {{"X-Network-Interface", "wifi"},
                                                {"Version", "1.0.0"}};
  std::chrono::milliseconds connect_timeout{5000};
};

class VehicleClient {
 public:
  explicit VehicleClient(VehicleClientOptions options);
  ~VehicleClient();
  VehicleClient(const VehicleClient&) = delete;
  VehicleClient& operator=(const VehicleClient&) = delete;

  void send_binary(const std::vector<std::uint8_t>& frame);
  void send_text(const std::string& text);

  /// The next binary reply, or nullopt when none arrived before the deadline (or the connection
  /// closed).
  std::optional<std::vector<std::uint8_t>> receive(std::chrono::milliseconds deadline);

  /// True once the server closed the connection (with or without a close frame) before the deadline.
  bool wait_closed(std::chrono::milliseconds deadline);

  /// Whether the server sent a WebSocket close frame before closing.
  bool got_close_frame() const;

  /// Sends a close frame and waits (bounded) for the server's.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ts::testsupport
