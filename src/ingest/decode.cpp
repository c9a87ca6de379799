#include "ingest/decode.hpp"

#include "ingest/records.hpp"
#include "ingest/topic.hpp"

namespace ts::ingest {
namespace {

Disposition dead_letter(storage::Batch& out, std::string_view topic, std::string_view vin,
                        std::string reason, std::string_view payload,
                        signal::Timestamp received_at) {
  out.dead_letters.push_back({.received_at = received_at,
                              .topic = std::string(topic),
                              .vin = std::string(vin),
                              .reason = std::move(reason),
                              .payload = std::string(payload)});
  return Disposition::DeadLetter;
}

std::string undecodable(const boost::system::error_code& ec) {
  return std::string(kReasonUndecodable) + ": " + ec.message();
}

}  // namespace

Disposition decode_message(std::string_view base, std::string_view topic, std::string_view payload,
                           signal::Timestamp received_at, const IsRegistered& registered,
                           storage::Batch& out) {
  const Topic t = parse_topic(base, topic);
  if (t.kind == TopicKind::Unknown) {
    return dead_letter(out, topic, {}, std::string(kReasonUnknownTopic), payload, received_at);
  }
  if (!registered(t.vin)) {
    return dead_letter(out, topic, t.vin, std::string(kReasonUnregisteredVin), payload, received_at);
  }
  switch (t.kind) {
    case TopicKind::Signal: {
      auto d = signal::decode_mqtt_payload(t.name, payload);
      if (!d) return dead_letter(out, topic, t.vin, undecodable(d.error()), payload, received_at);
      out.signals.push_back({.vin = std::string(t.vin),
                             .name = std::string(t.name),
                             .ts = d->event_time.value_or(received_at),
                             .received_at = received_at,
                             .source = signal::Source::Stream,
                             .value = std::move(d->value)});
      return Disposition::Signal;
    }
    case TopicKind::Record: {
      auto d = signal::decode_record_payload(payload);
      if (!d) return dead_letter(out, topic, t.vin, undecodable(d.error()), payload, received_at);
      for (auto& f : d->fields) {
        out.signals.push_back({.vin = std::string(t.vin),
                               .name = std::move(f.name),
                               .ts = d->event_time,
                               .received_at = received_at,
                               .source = signal::Source::Stream,
                               .value = std::move(f.value)});
      }
      return Disposition::Signal;
    }
    case TopicKind::AlertCurrent:
    case TopicKind::AlertHistory: {
      auto alerts = parse_alerts(t.vin, t.name, payload,
                                         t.kind == TopicKind::AlertHistory, received_at);
      if (!alerts) return dead_letter(out, topic, t.vin, undecodable(alerts.error()), payload, received_at);
      for (auto& a : *alerts) out.alerts.push_back(std::move(a));
      return Disposition::Alerts;
    }
    case TopicKind::Connectivity: {
      auto c = parse_connectivity(t.vin, payload, received_at);
      if (!c) return dead_letter(out, topic, t.vin, undecodable(c.error()), payload, received_at);
      out.connectivity.push_back(std::move(*c));
      return Disposition::Connectivity;
    }
    case TopicKind::Error: {
      auto e = parse_vehicle_error(t.vin, t.name, payload, received_at);
      if (!e) return dead_letter(out, topic, t.vin, undecodable(e.error()), payload, received_at);
      out.vehicle_errors.push_back(std::move(*e));
      return Disposition::VehicleError;
    }
    case TopicKind::Unknown:
      break;
  }
  return dead_letter(out, topic, t.vin, std::string(kReasonUnknownTopic), payload, received_at);
}

}  // namespace ts::ingest
