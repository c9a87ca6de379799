#pragma once
/// A record accepted by the pipeline (spec §4 step 3-6): its metadata and the decoded, transformed
/// message. Owned by whoever called pipeline::process; moved into dispatchers' work. Not shared.
#include <cstdint>
#include <string>
#include <variant>

#include "wire/payload.hpp"

namespace ts::pipeline {

using Message = std::variant<std::monostate,  // record type without a schema: opaque bytes
                             wire::vehicle_data::Payload, wire::vehicle_alerts::VehicleAlerts,
                             wire::vehicle_error::VehicleErrors,
                             wire::vehicle_connectivity::VehicleConnectivity>;

struct Record {
  wire::RecordType type = wire::RecordType::Other;
  std::string tx_type;  ///< envelope topic (spec: TxType); "" for unknown-type acks
  std::string txid;
  std::string vin;                  ///< certificate DeviceID, never from the payload
  std::string device_client_version;
  std::string socket_id;
  std::int64_t received_at_ms = 0;
  Message message;
  std::string opaque_payload;  ///< payload bytes of record types without a schema

  /// spec §7.1 SignalsCount: datums for V, alerts for alerts, 0 otherwise.
  int signals_count() const;

  /// The decoded message, or null for record types without a schema.
  const google::protobuf::Message* typed() const;

  /// The bytes dispatchers that forward payloads receive (spec §7.1): the re-encoded protobuf
  /// for typed records (unknown fields kept), the opaque bytes otherwise.
  std::string encoded_payload() const;
};

}  // namespace ts::pipeline
