#pragma once
/// One MQTT message from telemetry-server → the records it carries, appended to a Batch.
/// Pure: the caller supplies the receive time and the registered-VIN check.
#include <functional>
#include <string_view>

#include "storage/database.hpp"

namespace ts::ingest {

/// What became of a message.
enum class Disposition {
  Signal,        ///< one signal appended
  Alerts,        ///< one or more alerts appended
  Connectivity,  ///< one connectivity event appended
  VehicleError,  ///< one vehicle error appended
  DeadLetter,    ///< kept as a dead letter (see DeadLetter::reason)
};

/// Dead-letter reasons (DeadLetter::reason starts with one of these).
inline constexpr std::string_view kReasonUnknownTopic = "unknown_topic";
inline constexpr std::string_view kReasonUnregisteredVin = "unregistered_vin";
inline constexpr std::string_view kReasonUndecodable = "undecodable";
inline constexpr std::string_view kReasonOversized = "oversized";

using IsRegistered = std::function<bool(std::string_view vin)>;

/// Decodes `payload` published on `topic` under `base` and appends the result to `out`. A signal
/// without an event-time envelope gets `received_at` as its event time. Names follow limits.hpp:
/// a signal that is not a Field name, an over-long alert or error name or connection id makes the
/// message a dead letter; a record message stores its known fields and adds one dead letter for
/// the message when it also carries unknown ones. Never throws for any input.
Disposition decode_message(std::string_view base, std::string_view topic, std::string_view payload,
                           signal::Timestamp received_at, const IsRegistered& registered,
                           storage::Batch& out);

}  // namespace ts::ingest
