// libFuzzer target: one binary WebSocket message through the whole per-frame path of
// telemetry-server (spec §4): size, envelope, sender check, payload decode and transforms, JSON
// form, replies, MQTT topics and payloads, re-encoded payload. Seeds: seeds/frame/ (the reference
// vectors as they are, plus hand-made frames).
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz/pipeline_invariants.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> frame(data, size);
  // transmit_decoded_records is the low bit of the *last* byte. The first byte is the low byte of
  // the root offset, which the verifier wants 4-aligned, so it is even in every readable envelope;
  // the last byte is builder padding, free to flip without breaking the envelope.
  const bool transmit_decoded_records = !frame.empty() && (frame.back() & 1) != 0;
  ts::fuzz::run_frame(frame, transmit_decoded_records);
  return 0;
}
