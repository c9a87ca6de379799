#pragma once
/// The non-signal records telemetry-server publishes (spec §8.8), as teslasync-api keeps them:
/// alerts, connectivity events and vehicle error reports; plus the dead letter that keeps a
/// message that could not be used. Parsers take the MQTT payload exactly as published.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "signal/signal.hpp"

namespace ts::signal {

/// One alert (alerts/<name>/current or one entry of alerts/<name>/history).
struct Alert {
  std::string vin;
  std::string name;
  Timestamp started_at = 0;               ///< 0 when the vehicle did not set it
  std::optional<Timestamp> ended_at;      ///< empty while the alert is active
  std::vector<std::string> audiences;     ///< "Customer", "Service", "ServiceFix", …
  Timestamp received_at = 0;

  friend bool operator==(const Alert&, const Alert&) = default;
};

/// A vehicle connecting to or disconnecting from telemetry-server (<base>/<VIN>/connectivity).
struct ConnectivityEvent {
  std::string vin;
  std::string connection_id;
  std::string status;  ///< "CONNECTED", "DISCONNECTED", "UNKNOWN" or a number as text
  Timestamp ts = 0;    ///< CreatedAt
  Timestamp received_at = 0;

  friend bool operator==(const ConnectivityEvent&, const ConnectivityEvent&) = default;
};

/// An error the vehicle reported about itself (<base>/<VIN>/errors/<name>).
struct VehicleError {
  std::string vin;
  std::string name;
  std::string body;
  std::string tags_json = "{}";  ///< JSON object, keys sorted
  std::optional<Timestamp> created_at;
  Timestamp received_at = 0;

  friend bool operator==(const VehicleError&, const VehicleError&) = default;
};

/// A message teslasync-api could not use, kept with the reason and the raw payload.
struct DeadLetter {
  std::string topic;
  std::string vin;      ///< from the topic when it has one
  std::string reason;   ///< "undecodable: …", "unregistered_vin", "unknown_topic"
  std::string payload;  ///< raw bytes as received
  Timestamp received_at = 0;

  friend bool operator==(const DeadLetter&, const DeadLetter&) = default;
};

/// Everything one ingest batch writes, in one transaction.
struct Batch {
  std::vector<Signal> signals;
  std::vector<Alert> alerts;
  std::vector<ConnectivityEvent> connectivity;
  std::vector<VehicleError> vehicle_errors;
  std::vector<DeadLetter> dead_letters;

  std::size_t size() const {
    return signals.size() + alerts.size() + connectivity.size() + vehicle_errors.size() +
           dead_letters.size();
  }
  bool empty() const { return size() == 0; }
  void clear() {
    signals.clear();
    alerts.clear();
    connectivity.clear();
    vehicle_errors.clear();
    dead_letters.clear();
  }
};

/// alerts/<name>/current: one alert object. alerts/<name>/history: an array of them.
Result<std::vector<Alert>> parse_alerts(std::string_view vin, std::string_view name,
                                        std::string_view payload, bool history,
                                        Timestamp received_at);
Result<ConnectivityEvent> parse_connectivity(std::string_view vin, std::string_view payload,
                                             Timestamp received_at);
Result<VehicleError> parse_vehicle_error(std::string_view vin, std::string_view name,
                                         std::string_view payload, Timestamp received_at);

}  // namespace ts::signal
