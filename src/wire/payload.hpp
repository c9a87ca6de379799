#pragma once
/// Protobuf records carried in the envelope's payload (spec §7.1), and their record types.
/// Pure functions, any thread.
#include <string_view>

#include "telemetry/vehicle_alert.pb.h"
#include "telemetry/vehicle_connectivity.pb.h"
#include "telemetry/vehicle_data.pb.h"
#include "telemetry/vehicle_error.pb.h"

namespace ts::wire {

namespace vehicle_data = ::telemetry::vehicle_data;
namespace vehicle_alerts = ::telemetry::vehicle_alerts;
namespace vehicle_error = ::telemetry::vehicle_error;
namespace vehicle_connectivity = ::telemetry::vehicle_connectivity;

/// The four record types with a protobuf schema; any other topic is `Other` (opaque bytes).
enum class RecordType { V, Alerts, Errors, Connectivity, Other };

RecordType record_type_of(std::string_view topic);

/// Parses a protobuf record with the Go decoder's rules that matter (spec §7.1): truncated data
/// and invalid UTF-8 in a string are errors, an empty payload is a valid empty message, unknown
/// fields are kept. Returns false on a decode error.
bool parse_record(std::string_view bytes, google::protobuf::MessageLite& out);

}  // namespace ts::wire
