#pragma once
/// MQTT topics and JSON payloads exactly as the reference's MQTT dispatcher (spec §8.8).
/// Pure, any thread.
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/record.hpp"

namespace ts::pipeline {

struct MqttMessage {
  std::string topic;
  std::string payload;
};

/// Why a record produced no MQTT messages.
enum class MqttFormatError {
  None,
  NonFiniteNumber,  ///< NaN/±Inf cannot be encoded (spec §8.8 "Delivery" 1): nothing is published
  UnsupportedType,  ///< record types other than V/alerts/errors/connectivity (mqtt_unknown_payload_type)
};

struct MqttBatch {
  std::vector<MqttMessage> messages;
  MqttFormatError error = MqttFormatError::None;
  int datums_without_value = 0;  ///< V datums with no Value: skipped (the reference crashes, §14)
};

/// All messages of one record. A record either yields all its messages or, on a format error,
/// none (the reference may have published a random subset before failing: docs/compatibility.md).
MqttBatch format_mqtt(const Record& record, std::string_view topic_base);

/// The JSON of one V datum value (spec §8.8 "Value encoding"); false for NaN/±Inf.
bool append_mqtt_value(std::string& out, const wire::vehicle_data::Value& value);

}  // namespace ts::pipeline
