#include "pipeline/mqtt_format.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

#include "pipeline/field_names.hpp"
#include "pipeline/json_writer.hpp"

namespace ts::pipeline {
namespace {

namespace vd = wire::vehicle_data;
namespace va = wire::vehicle_alerts;
namespace ve = wire::vehicle_error;
namespace vc = wire::vehicle_connectivity;
using json::Escaping;

// spec §8.8: the reference renders most enum members through an explicit switch (unknown number
// -> decimal digits as a *string*) and the rest through protobuf reflection (unknown number -> a
// JSON *number*). Which member takes which path is fixed by the reference's code.
enum class EnumPath : std::uint8_t { None, Switch, Reflect };

constexpr std::array<EnumPath, 55> make_enum_paths() {
  std::array<EnumPath, 55> p{};
  for (int n : {9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22, 23, 24, 25, 26, 27, 28, 29, 30, 32, 52,
                53, 54})
    p[static_cast<size_t>(n)] = EnumPath::Switch;
  for (int n : {8, 33, 34, 35, 36, 37, 38, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51})
    p[static_cast<size_t>(n)] = EnumPath::Reflect;
  return p;
}
constexpr auto kEnumPaths = make_enum_paths();

void append_enum(std::string& out, const vd::Value& value, int member, EnumPath path) {
  const auto* fd = vd::Value::descriptor()->FindFieldByNumber(member);
  const int number = vd::Value::GetReflection()->GetEnumValue(value, fd);
  if (const auto* ev = fd->enum_type()->FindValueByNumber(number)) {
    json::append_string(out, ev->name(), Escaping::Go);
  } else if (path == EnumPath::Switch) {
    out += '"';
    json::append_int(out, number);
    out += '"';
  } else {
    json::append_int(out, number);
  }
}

void append_bool(std::string& out, bool b) { out += b ? "true" : "false"; }

void append_key(std::string& out, std::string_view key) {
  json::append_string(out, key, Escaping::Go);
  out += ':';
}

void append_two_digits_min(std::string& out, std::int32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d", v);
  out += buf;
}

void append_rfc3339(std::string& out, const google::protobuf::Timestamp& ts) {
  json::append_rfc3339(out, ts.seconds(), ts.nanos(), /*fraction=*/false);
}

std::string topic_prefix(std::string_view base, std::string_view vin) {
  std::string t;
  t.reserve(base.size() + vin.size() + 16);
  t.append(base);
  t += '/';
  t.append(vin);
  t += '/';
  return t;
}

MqttBatch format_vehicle_data(const Record& r, const vd::Payload& p, std::string_view base) {
  MqttBatch batch;
  // One publish per distinct key; a later datum with the same key replaces an earlier one.
  // Sorting (key, index) keeps this O(n log n): a frame of 100,000 distinct keys must not stall
  // a shard (a linear search per datum did, for seconds).
  std::vector<std::pair<int, int>> chosen;  // (key, index of the last datum with that key)
  chosen.reserve(static_cast<size_t>(p.data_size()));
  for (int i = 0; i < p.data_size(); ++i) chosen.emplace_back(p.data(i).key(), i);
  std::sort(chosen.begin(), chosen.end());  // by key, then index: the last of a run wins
  auto last = std::unique(chosen.rbegin(), chosen.rend(),
                          [](const auto& a, const auto& b) { return a.first == b.first; });
  chosen.erase(chosen.begin(), last.base());
  const std::string prefix = topic_prefix(base, r.vin) + "v/";
  batch.messages.reserve(chosen.size());
  for (const auto& [key, index] : chosen) {
    const auto& datum = p.data(index);
    if (!datum.has_value()) {
      // The reference dereferences nil here and drops the connection (spec §8.8, §14). We skip
      // the datum, publish the others and count it.
      ++batch.datums_without_value;
      continue;
    }
    MqttMessage m;
    m.topic.reserve(prefix.size() + 32);
    m.topic = prefix;
    append_field_name(m.topic, key);
    if (!append_mqtt_value(m.payload, datum.value())) {
      return MqttBatch{{}, MqttFormatError::NonFiniteNumber, batch.datums_without_value};
    }
    batch.messages.push_back(std::move(m));
  }
  return batch;
}

void append_alert(std::string& out, const va::VehicleAlert& a) {
  out += "{\"Audiences\":";
  if (a.audiences_size() == 0) {
    out += "null";
  } else {
    out += '[';
    for (int i = 0; i < a.audiences_size(); ++i) {
      if (i) out += ',';
      const int n = a.audiences(i);
      if (const auto* ev = va::Audience_descriptor()->FindValueByNumber(n)) {
        json::append_string(out, ev->name(), Escaping::Go);
      } else {
        out += '"';
        json::append_int(out, n);
        out += '"';
      }
    }
    out += ']';
  }
  if (a.has_ended_at()) {
    out += ",\"EndedAt\":";
    append_rfc3339(out, a.ended_at());
  }
  if (a.has_started_at()) {
    out += ",\"StartedAt\":";
    append_rfc3339(out, a.started_at());
  }
  out += '}';
}

bool later(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() != b.seconds() ? a.seconds() > b.seconds() : a.nanos() > b.nanos();
}

MqttBatch format_alerts(const Record& r, const va::VehicleAlerts& alerts, std::string_view base) {
  MqttBatch batch;
  const std::string prefix = topic_prefix(base, r.vin) + "alerts/";
  // Alerts grouped by name, each group in payload order (stable sort: O(n log n) for any frame).
  std::vector<std::pair<std::string_view, int>> by_name;
  by_name.reserve(static_cast<size_t>(alerts.alerts_size()));
  for (int i = 0; i < alerts.alerts_size(); ++i) by_name.emplace_back(alerts.alerts(i).name(), i);
  std::stable_sort(by_name.begin(), by_name.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<size_t, size_t>> groups;  // [begin, end) in by_name
  for (size_t i = 0; i < by_name.size();) {
    size_t j = i + 1;
    while (j < by_name.size() && by_name[j].first == by_name[i].first) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  // spec §8.8: all `current` publishes first, then all `history`.
  for (const auto& [begin, end] : groups) {
    const va::VehicleAlert* current = nullptr;  // greatest started_at; ties: the first
    for (size_t k = begin; k < end; ++k) {
      const auto& a = alerts.alerts(by_name[k].second);
      if (!a.has_started_at()) continue;
      if (current == nullptr || later(a.started_at(), current->started_at())) current = &a;
    }
    if (current == nullptr) continue;
    MqttMessage m{prefix + std::string(by_name[begin].first) + "/current", {}};
    append_alert(m.payload, *current);
    batch.messages.push_back(std::move(m));
  }
  for (const auto& [begin, end] : groups) {
    MqttMessage m{prefix + std::string(by_name[begin].first) + "/history", "["};
    for (size_t k = begin; k < end; ++k) {
      if (k != begin) m.payload += ',';
      append_alert(m.payload, alerts.alerts(by_name[k].second));
    }
    m.payload += ']';
    batch.messages.push_back(std::move(m));
  }
  return batch;
}

MqttBatch format_errors(const Record& r, const ve::VehicleErrors& errors, std::string_view base) {
  MqttBatch batch;
  const std::string prefix = topic_prefix(base, r.vin) + "errors/";
  for (const auto& e : errors.errors()) {
    MqttMessage m{prefix + e.name(), "{"};
    append_key(m.payload, "Body");
    json::append_string(m.payload, e.body(), Escaping::Go);
    if (e.has_created_at()) {
      m.payload += ",\"CreatedAt\":";
      append_rfc3339(m.payload, e.created_at());
    }
    m.payload += ",\"Tags\":";
    if (e.tags().empty()) {
      m.payload += "null";
    } else {
      std::vector<std::pair<std::string_view, std::string_view>> tags(e.tags().begin(),
                                                                      e.tags().end());
      std::sort(tags.begin(), tags.end());
      m.payload += '{';
      for (size_t i = 0; i < tags.size(); ++i) {
        if (i) m.payload += ',';
        append_key(m.payload, tags[i].first);
        json::append_string(m.payload, tags[i].second, Escaping::Go);
      }
      m.payload += '}';
    }
    m.payload += '}';
    batch.messages.push_back(std::move(m));
  }
  return batch;
}

MqttBatch format_connectivity(const Record& r, const vc::VehicleConnectivity& c,
                              std::string_view base) {
  MqttBatch batch;
  MqttMessage m{topic_prefix(base, r.vin) + "connectivity", "{"};
  append_key(m.payload, "ConnectionId");
  json::append_string(m.payload, c.connection_id(), Escaping::Go);
  m.payload += ",\"CreatedAt\":";
  append_rfc3339(m.payload, c.created_at());  // unset reads as the epoch: 1970-01-01T00:00:00Z
  m.payload += ",\"Status\":";
  if (const auto* ev = vc::ConnectivityEvent_descriptor()->FindValueByNumber(c.status())) {
    json::append_string(m.payload, ev->name(), Escaping::Go);
  } else {
    m.payload += '"';
    json::append_int(m.payload, c.status());
    m.payload += '"';
  }
  m.payload += '}';
  batch.messages.push_back(std::move(m));
  return batch;
}

}  // namespace

bool append_mqtt_value(std::string& out, const vd::Value& v) {
  const int member = v.value_case();
  switch (v.value_case()) {
    case vd::Value::VALUE_NOT_SET:
      out += "{}";
      return true;
    case vd::Value::kStringValue:
      json::append_string(out, v.string_value(), Escaping::Go);
      return true;
    case vd::Value::kIntValue:
      json::append_int(out, v.int_value());
      return true;
    case vd::Value::kLongValue:
      json::append_int(out, v.long_value());
      return true;
    case vd::Value::kFloatValue:
      return json::append_float(out, v.float_value(), 32);
    case vd::Value::kDoubleValue:
      return json::append_float(out, v.double_value(), 64);
    case vd::Value::kBooleanValue:
      append_bool(out, v.boolean_value());
      return true;
    case vd::Value::kInvalid:
      out += "null";
      return true;
    case vd::Value::kLocationValue: {
      std::string tmp = "{\"latitude\":";
      if (!json::append_float(tmp, v.location_value().latitude(), 64)) return false;
      tmp += ",\"longitude\":";
      if (!json::append_float(tmp, v.location_value().longitude(), 64)) return false;
      tmp += '}';
      out += tmp;
      return true;
    }
    case vd::Value::kDoorValue: {
      const auto& d = v.door_value();
      out += "{\"DriverFront\":";
      append_bool(out, d.driverfront());
      out += ",\"DriverRear\":";
      append_bool(out, d.driverrear());
      out += ",\"PassengerFront\":";
      append_bool(out, d.passengerfront());
      out += ",\"PassengerRear\":";
      append_bool(out, d.passengerrear());
      out += ",\"TrunkFront\":";
      append_bool(out, d.trunkfront());
      out += ",\"TrunkRear\":";
      append_bool(out, d.trunkrear());
      out += '}';
      return true;
    }
    case vd::Value::kTimeValue: {
      const auto& t = v.time_value();
      out += '"';
      append_two_digits_min(out, t.hour());
      out += ':';
      append_two_digits_min(out, t.minute());
      out += ':';
      append_two_digits_min(out, t.second());
      out += '"';
      return true;
    }
    case vd::Value::kTireLocationValue: {
      // Proto field names of the fields that are true, keys sorted bytewise.
      const auto& t = v.tire_location_value();
      const std::pair<std::string_view, bool> fields[] = {
          {"front_left", t.front_left()},
          {"front_right", t.front_right()},
          {"rear_left", t.rear_left()},
          {"rear_right", t.rear_right()},
          {"semi_middle_axle_left_2", t.semi_middle_axle_left_2()},
          {"semi_middle_axle_right_2", t.semi_middle_axle_right_2()},
          {"semi_rear_axle_left", t.semi_rear_axle_left()},
          {"semi_rear_axle_left_2", t.semi_rear_axle_left_2()},
          {"semi_rear_axle_right", t.semi_rear_axle_right()},
          {"semi_rear_axle_right_2", t.semi_rear_axle_right_2()},
      };
      out += '{';
      bool first = true;
      for (const auto& [name, set] : fields) {
        if (!set) continue;
        if (!first) out += ',';
        first = false;
        append_key(out, name);
        out += "true";
      }
      out += '}';
      return true;
    }
    default:
      break;
  }
  if (member > 0 && member < static_cast<int>(kEnumPaths.size()) &&
      kEnumPaths[static_cast<size_t>(member)] != EnumPath::None) {
    append_enum(out, v, member, kEnumPaths[static_cast<size_t>(member)]);
    return true;
  }
  out += "{}";  // a member this build does not know (newer schema): nothing to render
  return true;
}

MqttBatch format_mqtt(const Record& r, std::string_view topic_base) {
  return std::visit(
      [&](const auto& msg) -> MqttBatch {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, vd::Payload>) {
          return format_vehicle_data(r, msg, topic_base);
        } else if constexpr (std::is_same_v<T, va::VehicleAlerts>) {
          return format_alerts(r, msg, topic_base);
        } else if constexpr (std::is_same_v<T, ve::VehicleErrors>) {
          return format_errors(r, msg, topic_base);
        } else if constexpr (std::is_same_v<T, vc::VehicleConnectivity>) {
          return format_connectivity(r, msg, topic_base);
        } else {
          return MqttBatch{{}, MqttFormatError::UnsupportedType, 0};
        }
      },
      r.message);
}

}  // namespace ts::pipeline
