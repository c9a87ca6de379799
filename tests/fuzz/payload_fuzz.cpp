// libFuzzer target: the input is the protobuf payload of a well-formed envelope from the
// connection's own sender, sent once per record type with a schema. Explores the protobuf decoder,
// the transforms (spec §7.2), MQTT formatting (§8.8) and protojson (§7.3) without the fuzzer having
// to keep a FlatBuffers envelope intact. Seeds: seeds/payload/ (payloads of the reference vectors).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/pipeline_invariants.hpp"
#include "wire/envelope.hpp"
#include "wire/payload.hpp"

namespace {

namespace wire = ts::wire;

// Whether the payload decodes as the record type's message on its own, outside the pipeline.
bool decodes_as(wire::RecordType type, std::string_view payload) {
  switch (type) {
    case wire::RecordType::V: {
      wire::vehicle_data::Payload m;
      return wire::parse_record(payload, m);
    }
    case wire::RecordType::Alerts: {
      wire::vehicle_alerts::VehicleAlerts m;
      return wire::parse_record(payload, m);
    }
    case wire::RecordType::Errors: {
      wire::vehicle_error::VehicleErrors m;
      return wire::parse_record(payload, m);
    }
    case wire::RecordType::Connectivity: {
      wire::vehicle_connectivity::VehicleConnectivity m;
      return wire::parse_record(payload, m);
    }
    case wire::RecordType::Other:
      return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using ts::pipeline::BadReason;
  using ts::pipeline::OutcomeKind;
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  for (const std::string_view topic : {"V", "alerts", "errors", "connectivity"}) {
    const auto frame = wire::build_stream_frame({.txid = "fuzz-txid",
                                                 .topic = topic,
                                                 .message_id = "fuzz-message",
                                                 .sender_id = ts::fuzz::kSenderId,
                                                 .payload = payload,
                                                 .device_type = "vehicle_device",
                                                 .device_id = ts::fuzz::kVin,
                                                 .created_at = 1'700'000'000});
    const auto outcome = ts::fuzz::run_frame(frame, /*transmit_decoded_records=*/false);
    if (frame.size() > wire::kMaxFrameBytes) continue;  // TooBig, checked by run_frame
    // The envelope is well formed and from the right sender: only the payload can be refused.
    const bool decodes = decodes_as(wire::record_type_of(topic), payload);
    if (decodes) {
      TS_FUZZ_CHECK(outcome.kind == OutcomeKind::Ok);
      TS_FUZZ_CHECK(outcome.txid == "fuzz-txid");
      ts::fuzz::check_protojson(outcome.record);
    } else {
      TS_FUZZ_CHECK(outcome.kind == OutcomeKind::Bad && outcome.reason == BadReason::PayloadDecode);
    }
  }
  return 0;
}
