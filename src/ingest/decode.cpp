#include "ingest/decode.hpp"

#include "ingest/limits.hpp"
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
      if (auto why = signal_name_problem(t.name)) {
        return dead_letter(out, topic, t.vin, std::move(*why), payload, received_at);
      }
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
      // Known fields are stored; the message is also kept as one dead letter naming the first
      // unknown field, so nothing the vehicle sent is silently dropped.
      std::optional<std::string> unknown;
      for (auto& f : d->fields) {
        if (auto why = signal_name_problem(f.name)) {
          if (!unknown) unknown = std::move(why);
          continue;
        }
        out.signals.push_back({.vin = std::string(t.vin),
                               .name = std::move(f.name),
                               .ts = d->event_time,
                               .received_at = received_at,
                               .source = signal::Source::Stream,
                               .value = std::move(f.value)});
      }
      if (unknown) dead_letter(out, topic, t.vin, std::move(*unknown), payload, received_at);
      return Disposition::Signal;
    }
    case TopicKind::AlertCurrent:
    case TopicKind::AlertHistory: {
      if (auto why = text_problem("alert name", t.name, kMaxEventNameBytes)) {
        return dead_letter(out, topic, t.vin, std::move(*why), payload, received_at);
      }
      auto alerts = parse_alerts(t.vin, t.name, payload,
                                         t.kind == TopicKind::AlertHistory, received_at);
      if (!alerts) return dead_letter(out, topic, t.vin, undecodable(alerts.error()), payload, received_at);
      for (auto& a : *alerts) out.alerts.push_back(std::move(a));
      return Disposition::Alerts;
    }
    case TopicKind::Connectivity: {
      auto c = parse_connectivity(t.vin, payload, received_at);
      if (!c) return dead_letter(out, topic, t.vin, undecodable(c.error()), payload, received_at);
      for (auto [what, value] : {std::pair<std::string_view, std::string_view>{"connection id", c->connection_id},
                                 {"status", c->status},
                                 {"network interface", c->network_interface}}) {
        if (auto why = text_problem(what, value, kMaxIdBytes)) {
          return dead_letter(out, topic, t.vin, std::move(*why), payload, received_at);
        }
      }
      out.connectivity.push_back(std::move(*c));
      return Disposition::Connectivity;
    }
    case TopicKind::Error: {
      if (auto why = text_problem("error name", t.name, kMaxEventNameBytes)) {
        return dead_letter(out, topic, t.vin, std::move(*why), payload, received_at);
      }
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
