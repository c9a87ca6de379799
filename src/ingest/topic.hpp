#pragma once
/// The MQTT topics telemetry-server publishes (spec §8.8), seen from the subscribing side.
#include <string>
#include <string_view>
#include <vector>

namespace ts::ingest {

enum class TopicKind { Signal, Record, AlertCurrent, AlertHistory, Error, Connectivity, Unknown };

/// A topic split into its parts; views into the topic string.
struct Topic {
  TopicKind kind = TopicKind::Unknown;
  std::string_view vin;
  std::string_view name;  ///< Field name, alert name or error name (may contain '/'); empty otherwise
};

/// Splits `topic` published under `base` (one or more levels, e.g. "telemetry" or "test/topic"):
///   <base>/<VIN>/v/<Field>                 Signal
///   <base>/<VIN>/v                         Record (telemetry-server's mqtt.record_message)
///   <base>/<VIN>/alerts/<name>/current     AlertCurrent
///   <base>/<VIN>/alerts/<name>/history     AlertHistory
///   <base>/<VIN>/errors/<name…>            Error (the name may contain '/')
///   <base>/<VIN>/connectivity              Connectivity
/// Anything else, or an empty VIN or name, is Unknown.
Topic parse_topic(std::string_view base, std::string_view topic) noexcept;

/// The subscription filters for everything above.
std::vector<std::string> subscription_filters(std::string_view base);

}  // namespace ts::ingest
