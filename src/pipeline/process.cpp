#include "pipeline/process.hpp"

#include <algorithm>

#include "pipeline/protojson.hpp"
#include "pipeline/transforms.hpp"

namespace ts::pipeline {
namespace {

namespace vd = wire::vehicle_data;
namespace va = wire::vehicle_alerts;
namespace ve = wire::vehicle_error;
namespace vc = wire::vehicle_connectivity;

Outcome bad(BadReason reason, std::string_view txid) {
  Outcome o;
  o.kind = OutcomeKind::Bad;
  o.reason = reason;
  o.txid = std::string(txid);
  return o;
}

// spec §4 step 3: an envelope that is not a FlatbuffersStream is acknowledged (twice, step 7).
Outcome unknown_type(std::uint8_t message_type, std::string_view txid,
                     const SocketContext& socket, std::int64_t now_ms) {
  Outcome o;
  o.kind = OutcomeKind::UnknownType;
  o.txid = std::string(txid);
  o.message_type = message_type;
  o.record.txid = o.txid;
  o.record.vin = socket.vin;
  o.record.socket_id = socket.socket_id;
  o.record.device_client_version = socket.client_version;
  o.record.received_at_ms = now_ms;
  return o;
}

// spec §4 step 4: topics without a dispatch rule must come from the connection's own sender.
bool sender_allowed(std::string_view sender, const SocketContext& socket) {
  return sender == socket.sender_id || sender == socket.vin;
}

// spec §4 step 5 / §7.2: decode, stamp the certificate VIN, normalise.
template <class M>
bool decode_typed(std::string_view bytes, Record& record) {
  M& msg = record.message.emplace<M>();  // on the record's arena
  if (!wire::parse_record(bytes, msg)) {
    record.message.reset();
    return false;
  }
  if constexpr (std::is_same_v<M, vd::Payload>) {
    transform_vehicle_data(msg, record.vin);
  } else if constexpr (std::is_same_v<M, va::VehicleAlerts>) {
    transform_alerts(msg, record.vin);
  } else {
    msg.set_vin(record.vin);
  }
  return true;
}

bool decode_payload(std::string_view bytes, Record& record) {
  switch (record.type) {
    case wire::RecordType::V: return decode_typed<vd::Payload>(bytes, record);
    case wire::RecordType::Alerts: return decode_typed<va::VehicleAlerts>(bytes, record);
    case wire::RecordType::Errors: return decode_typed<ve::VehicleErrors>(bytes, record);
    case wire::RecordType::Connectivity:
      return decode_typed<vc::VehicleConnectivity>(bytes, record);
    case wire::RecordType::Other:
      record.opaque_payload = std::string(bytes);
      return true;
  }
  return false;
}

}  // namespace

bool PipelineOptions::is_configured(std::string_view record_type) const {
  return std::find(configured_record_types.begin(), configured_record_types.end(), record_type) !=
         configured_record_types.end();
}

std::string_view to_string(BadReason reason) {
  switch (reason) {
    case BadReason::None: return "none";
    case BadReason::Unreadable: return "unreadable envelope";
    case BadReason::UnexpectedSender: return "unexpected sender id for an unconfigured topic";
    case BadReason::PayloadDecode: return "payload does not decode";
    case BadReason::JsonEncode: return "record cannot be encoded as JSON";
  }
  return "unknown";
}

Outcome process(std::span<const std::uint8_t> frame, const SocketContext& socket,
                const PipelineOptions& options, std::int64_t now_ms) {
  // Step 2: size.
  if (frame.size() > wire::kMaxFrameBytes) {
    Outcome o;
    o.kind = OutcomeKind::TooBig;
    return o;
  }
  // Step 3: envelope.
  if (frame.empty()) return unknown_type(0, "", socket, now_ms);
  auto env = wire::decode_envelope(frame);
  if (!env) return bad(BadReason::Unreadable, "");
  if (env->message_type != wire::kMessageTypeStream || !env->has_message) {
    return unknown_type(env->message_type, env->has_message ? env->txid : "", socket, now_ms);
  }
  if (!env->stream) return bad(BadReason::Unreadable, "");

  Outcome o;
  o.kind = OutcomeKind::Ok;
  o.txid = std::string(env->txid);
  o.message_type = env->message_type;
  Record& r = o.record;
  r.tx_type = std::string(env->topic);
  r.type = wire::record_type_of(r.tx_type);
  r.txid = o.txid;
  r.vin = socket.vin;
  r.device_client_version = socket.client_version;
  r.socket_id = socket.socket_id;
  r.received_at_ms = now_ms;

  // Step 4: sender check, only for topics without a dispatch rule.
  if (!options.is_configured(r.tx_type) && !sender_allowed(env->stream->sender_id, socket)) {
    return bad(BadReason::UnexpectedSender, o.txid);
  }
  // Step 5: typed decode and transforms.
  if (!decode_payload(env->stream->payload, r)) return bad(BadReason::PayloadDecode, o.txid);
  // Step 6: JSON form.
  if (options.transmit_decoded_records) {
    if (const auto* m = r.typed()) {
      if (!append_protojson(o.json_payload, *m)) return bad(BadReason::JsonEncode, o.txid);
    } else {
      o.json_payload = "{}";  // spec §7.3: unknown topics become the two bytes {}
    }
    o.payload_size = o.json_payload.size();
  } else if (const auto* m = r.typed()) {
    o.payload_size = m->ByteSizeLong();
  } else {
    o.payload_size = r.opaque_payload.size();
  }
  return o;
}

std::vector<wire::Bytes> immediate_replies(const Outcome& o, bool ack_deferred) {
  switch (o.kind) {
    case OutcomeKind::TooBig: return {wire::build_error("")};
    case OutcomeKind::Bad: return {wire::build_error(o.txid)};
    case OutcomeKind::UnknownType: {
      // The reference acks, then runs the success path with an empty record type, which acks
      // again: two identical frames (spec §4 step 7, §14.14). Kept for wire compatibility.
      auto ack = wire::build_ack(o.txid, "");
      return {ack, ack};
    }
    case OutcomeKind::Ok:
      if (ack_deferred) return {};
      return {wire::build_ack(o.txid, o.record.tx_type)};
  }
  return {};
}

Record make_connectivity_record(const SocketContext& socket, int status, std::int64_t now_ns) {
  Record r;
  r.type = wire::RecordType::Connectivity;
  r.tx_type = "connectivity";
  r.txid = socket.socket_id;  // spec §7.5: txid = socket UUID
  r.vin = socket.vin;
  r.socket_id = socket.socket_id;
  r.device_client_version = socket.client_version;
  r.received_at_ms = now_ns / 1'000'000;
  auto& c = r.message.emplace<vc::VehicleConnectivity>();
  c.set_vin(socket.vin);
  c.set_connection_id(socket.socket_id);
  c.set_status(static_cast<vc::ConnectivityEvent>(status));
  c.mutable_created_at()->set_seconds(now_ns / 1'000'000'000);
  c.mutable_created_at()->set_nanos(static_cast<std::int32_t>(now_ns % 1'000'000'000));
  c.set_network_interface(socket.network_interface);
  return r;
}

}  // namespace ts::pipeline
