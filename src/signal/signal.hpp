#pragma once
/// Signals: typed latest/historic values of a vehicle's telemetry fields (see README.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace ts::signal {

/// Microseconds since the Unix epoch, UTC. Event times and receive times use it throughout.
using Timestamp = std::int64_t;

/// The kind of a value, stored as a small integer (signal_log.kind, Redis): never renumber.
enum class Kind : std::uint8_t {
  Invalid = 0,   ///< the vehicle sent `invalid` or no value (JSON null); nothing to show
  Bool = 1,      ///< integer 0/1
  Int = 2,       ///< integer
  Float = 3,     ///< number
  String = 4,    ///< text
  Enum = 5,      ///< text: the enum value's name as published, e.g. "ShiftStateD"
  Location = 6,  ///< text: {"latitude":…,"longitude":…}; number = latitude, number2 = longitude
  Doors = 7,     ///< text: the JSON object as published
  Tires = 8,     ///< text: the JSON object as published (true entries only)
  Time = 9,      ///< text: "H:MM:SS" wall-clock time as published
};
inline constexpr int kMaxKind = 9;

/// "invalid", "bool", "int", "float", "string", "enum", "location", "doors", "tires", "time".
std::string_view kind_name(Kind kind) noexcept;
std::optional<Kind> parse_kind_name(std::string_view name) noexcept;
std::optional<Kind> kind_from_int(int value) noexcept;

/// A typed value. Which members are meaningful depends on `kind` (see Kind); others are zero/empty.
struct Value {
  Kind kind = Kind::Invalid;
  std::int64_t integer = 0;
  double number = 0;
  double number2 = 0;
  std::string text;

  static Value invalid() { return {}; }
  static Value boolean(bool b) { return {.kind = Kind::Bool, .integer = b ? 1 : 0}; }
  static Value int64(std::int64_t i) { return {.kind = Kind::Int, .integer = i}; }
  static Value float64(double d) { return {.kind = Kind::Float, .number = d}; }
  static Value string(std::string s) { return {.kind = Kind::String, .text = std::move(s)}; }
  static Value enumeration(std::string s) { return {.kind = Kind::Enum, .text = std::move(s)}; }
  static Value location(double latitude, double longitude);
  static Value doors(std::string json) { return {.kind = Kind::Doors, .text = std::move(json)}; }
  static Value tires(std::string json) { return {.kind = Kind::Tires, .text = std::move(json)}; }
  static Value time_of_day(std::string s) { return {.kind = Kind::Time, .text = std::move(s)}; }

  friend bool operator==(const Value&, const Value&) = default;
};

/// The value as JSON: null, true/false, a number (shortest round-trip form), a string, or the
/// object of Location/Doors/Tires.
std::string to_json(const Value& value);
void append_json(std::string& out, const Value& value);

/// Where a value came from: the telemetry stream, or Fleet API polling (signal_log.source).
enum class Source : std::uint8_t { Stream = 0, Poll = 1 };
/// True when `name` is a value name of the `Field` enum of vehicle_data.proto (spec §11), e.g.
/// "VehicleSpeed". The set of signal names teslasync-api stores: anything else on `v/<name>` (a
/// decimal field number of a newer firmware, a stray publisher) is a dead letter. Any thread.
bool is_field_name(std::string_view name) noexcept;

std::string_view source_name(Source source) noexcept;  ///< "stream" | "poll"
std::optional<Source> parse_source_name(std::string_view name) noexcept;

/// One value of one field of one vehicle.
struct Signal {
  std::string vin;
  std::string name;            ///< the Field name, e.g. "VehicleSpeed"
  Timestamp ts = 0;            ///< event time (the vehicle's created_at, or receive time)
  Timestamp received_at = 0;   ///< when teslasync-api received it
  Source source = Source::Stream;
  Value value;

  friend bool operator==(const Signal&, const Signal&) = default;
};

/// The result of decoding one MQTT payload on `<base>/<VIN>/v/<Field>`.
struct Decoded {
  Value value;
  std::optional<Timestamp> event_time;  ///< from the envelope's "ts"; empty for a bare value
};

/// Decodes the payload telemetry-server publishes for one field: either the reference server's
/// bare JSON value, or the event-time envelope {"value": <json>, "ts": "<RFC 3339>"}.
/// Errors (Errc below): not JSON, an unsupported JSON shape, an envelope with a bad "ts".
Result<Decoded> decode_mqtt_payload(std::string_view field, std::string_view payload);

/// One field of a record message.
struct DecodedField {
  std::string name;
  Value value;
};

/// The result of decoding one MQTT payload on `<base>/<VIN>/v` (mqtt.record_message).
struct DecodedRecord {
  Timestamp event_time = 0;
  std::vector<DecodedField> fields;  ///< in the payload's order
};

/// Decodes a record message: {"ts":"<RFC 3339>","data":{"<Field>":<json>,…}}, each value as
/// decode_mqtt_payload decodes a bare one. All or nothing: errors as decode_mqtt_payload's, plus
/// bad_record (not that shape: "data" missing, not an object, empty, or other keys).
Result<DecodedRecord> decode_record_payload(std::string_view payload);

/// Decodes one bare JSON value as published for `field` (see decode_mqtt_payload).
Result<Value> decode_json_value(std::string_view field, std::string_view json);

enum class Errc {
  not_json = 1,        ///< the payload is not a JSON document
  unsupported_value,   ///< JSON, but no value type of the protocol looks like it
  bad_event_time,      ///< envelope "ts" missing, not a string, or not RFC 3339
  bad_record,          ///< a record message without a non-empty "data" object, or with other keys
};
const boost::system::error_category& category() noexcept;
inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), category()};
}

/// RFC 3339 / ISO 8601 UTC text with microseconds: "2026-11-24T16:00:18.123456Z".
std::string format_time(Timestamp ts);
/// format_time appended to `out` (no temporary string: SSE events and API rows carry two each).
void append_time(std::string& out, Timestamp ts);
/// Parses RFC 3339 ("Z" or ±hh:mm offset, optional fraction of any length: digits past
/// microseconds are truncated). Empty for anything else.
std::optional<Timestamp> parse_time(std::string_view text) noexcept;

/// The current time.
Timestamp now() noexcept;

}  // namespace ts::signal

namespace boost::system {
template <>
struct is_error_code_enum<ts::signal::Errc> : std::true_type {};
}  // namespace boost::system
