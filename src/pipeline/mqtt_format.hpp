#pragma once
/// MQTT topics and JSON payloads exactly as the reference's MQTT dispatcher (spec §8.8).
/// Pure, any thread.
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/record.hpp"

namespace ts::pipeline {

/// One message of an MqttBatch: views into the batch's text, valid as long as the batch.
struct MqttMessage {
  std::string_view topic;
  std::string_view payload;
};

/// Why a record produced no MQTT messages.
enum class MqttFormatError {
  None,
  NonFiniteNumber,  ///< NaN/±Inf cannot be encoded (spec §8.8 "Delivery" 1): nothing is published
  UnsupportedType,  ///< record types other than V/alerts/errors/connectivity (mqtt_unknown_payload_type)
};

class MqttBatchWriter;

/// The MQTT messages of one record. Every topic and payload lives in one text buffer owned by the
/// batch (one allocation per record, not two per message); `messages` are views into it. Copies
/// and moves re-point the views at their own text. A plain value: not shared, any thread.
class MqttBatch {
 public:
  MqttBatch() = default;
  MqttBatch(const MqttBatch& other);
  MqttBatch(MqttBatch&& other) noexcept;
  MqttBatch& operator=(const MqttBatch& other);
  MqttBatch& operator=(MqttBatch&& other) noexcept;
  ~MqttBatch() = default;

  std::vector<MqttMessage> messages;  ///< in publish order
  MqttFormatError error = MqttFormatError::None;
  int datums_without_value = 0;  ///< V datums with no Value: skipped (the reference crashes, §14)

  /// Bytes of all topics and payloads.
  std::size_t text_size() const { return text_.size(); }

 private:
  friend class MqttBatchWriter;
  void rebase(const char* old_base);  // re-points every view from old_base to text_.data()

  std::string text_;
};

/// How format_mqtt writes its messages.
struct MqttFormatOptions {
  std::string_view topic_base;  ///< `mqtt.topic_base`: `<topic_base>/<VIN>/v/<Field>`
  /// Our extension `mqtt.event_time_envelope` (docs/compatibility.md): every `v/<Field>` payload
  /// becomes `{"value":<the reference's payload>,"ts":"<time>"}`, the time being the record's
  /// `created_at` in RFC 3339 UTC with 0, 3, 6 or 9 fraction digits (as protojson writes it), or the
  /// frame's receive time (`Record::received_at_ms`) when the record has no `created_at`. Alerts,
  /// errors and connectivity messages are unchanged. Off: the reference's format, byte for byte.
  bool event_time_envelope = false;
  /// Our extension `mqtt.record_message` (docs/compatibility.md): a V record becomes ONE message
  /// on `<topic_base>/<VIN>/v` instead of one per field:
  /// `{"ts":"<time>","data":{"<Field>":<the reference's payload>,…}}`, fields in key order, the
  /// time as for event_time_envelope (which it implies). Twenty times fewer messages for the
  /// broker and the subscribers; for consumers that read whole records (teslasync-api). Alerts,
  /// errors and connectivity messages are unchanged.
  bool record_message = false;
};

/// All messages of one record. A record either yields all its messages or, on a format error,
/// none (the reference may have published a random subset before failing: docs/compatibility.md).
MqttBatch format_mqtt(const Record& record, const MqttFormatOptions& options);

/// The reference's format with this topic base.
MqttBatch format_mqtt(const Record& record, std::string_view topic_base);

/// Appends the JSON of one V datum value (spec §8.8 "Value encoding"); false for NaN/±Inf, with
/// `out` left as it was.
bool append_mqtt_value(std::string& out, const wire::vehicle_data::Value& value);

}  // namespace ts::pipeline
