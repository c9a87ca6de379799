#pragma once
/// The per-frame path of telemetry-server, run the way a session runs it, with the invariants that
/// must hold for any input. Shared by the pipeline fuzz targets (frame_fuzz, payload_fuzz).
///
/// A broken invariant prints what failed and traps (`__builtin_trap()`), so libFuzzer saves the
/// input and the seed replay dies on the seed that broke it. Pure apart from that; any thread.
#include <cstdint>
#include <span>
#include <string_view>

#include "pipeline/process.hpp"

namespace ts::fuzz {

[[noreturn]] void invariant_failed(const char* condition, const char* file, int line);

}  // namespace ts::fuzz

/// Always on, in every build type: a fuzz target that cannot fail finds nothing.
#define TS_FUZZ_CHECK(condition)                                                    \
  do {                                                                              \
    if (!(condition)) ::ts::fuzz::invariant_failed(#condition, __FILE__, __LINE__); \
  } while (false)

namespace ts::fuzz {

/// The identity of the reference vectors' vehicle certificate (shared/vectors/reference/README.md).
inline constexpr std::string_view kVin = "5YJ3E1EA7JF000000";
inline constexpr std::string_view kSenderId = "vehicle_device.5YJ3E1EA7JF000000";
/// `mqtt.topic_base` of the reference configuration.
inline constexpr std::string_view kTopicBase = "telemetry";

/// The connection every fuzz frame arrives on.
const pipeline::SocketContext& vehicle_socket();

/// `records` of the reference configuration: V, alerts, errors and connectivity.
const pipeline::PipelineOptions& reference_options(bool transmit_decoded_records);

/// What the server does with one binary message, no I/O: pipeline::process, the immediate replies
/// (no reliable-ack source, as in the reference configuration), and for an accepted record what
/// the dispatchers compute (pipeline::format_mqtt, Record::encoded_payload). Checks the outcome
/// against an independent read of the envelope, every reply, the record and its MQTT batch.
pipeline::Outcome run_frame(std::span<const std::uint8_t> frame, bool transmit_decoded_records);

/// spec §7.3: the protojson of an accepted typed record either fails (a Timestamp out of range)
/// or is one JSON object.
void check_protojson(const pipeline::Record& record);

}  // namespace ts::fuzz
