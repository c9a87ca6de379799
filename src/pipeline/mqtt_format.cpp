#include "pipeline/mqtt_format.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <span>
#include <utility>

#include "pipeline/field_names.hpp"
#include "pipeline/json_writer.hpp"

namespace ts::pipeline {

// Lays out a batch's messages back to back in its text: begin_topic(), append the topic,
// begin_payload(), append the payload, end_message(). The views are made at end_message() and
// re-pointed whenever the text has moved.
class MqttBatchWriter {
 public:
  MqttBatchWriter(MqttBatch& batch, std::size_t text_bytes, std::size_t messages) : batch_(batch) {
    batch_.text_.reserve(text_bytes);
    batch_.messages.reserve(messages);
    base_ = batch_.text_.data();
  }

  std::string& text() { return batch_.text_; }
  void begin_topic() { topic_at_ = batch_.text_.size(); }
  void begin_payload() { payload_at_ = batch_.text_.size(); }

  void end_message() {
    const char* base = batch_.text_.data();
    if (base != base_) {
      batch_.rebase(base_);
      base_ = base;
    }
    batch_.messages.push_back({{base + topic_at_, payload_at_ - topic_at_},
                               {base + payload_at_, batch_.text_.size() - payload_at_}});
  }

 private:
  MqttBatch& batch_;
  const char* base_ = nullptr;  // text_.data() when the views were last made
  std::size_t topic_at_ = 0;
  std::size_t payload_at_ = 0;
};

void MqttBatch::rebase(const char* old_base) {
  // Offsets are taken as integers: the old buffer may already be freed.
  const auto old = reinterpret_cast<std::uintptr_t>(old_base);
  auto moved = [&](std::string_view v) {
    return std::string_view(text_.data() + (reinterpret_cast<std::uintptr_t>(v.data()) - old),
                            v.size());
  };
  for (auto& m : messages) m = {moved(m.topic), moved(m.payload)};
}

MqttBatch::MqttBatch(const MqttBatch& other)
    : messages(other.messages),
      error(other.error),
      datums_without_value(other.datums_without_value),
      text_(other.text_) {
  rebase(other.text_.data());
}

MqttBatch::MqttBatch(MqttBatch&& other) noexcept
    : messages(std::move(other.messages)),
      error(other.error),
      datums_without_value(other.datums_without_value) {
  const char* old = other.text_.data();
  text_ = std::move(other.text_);
  if (text_.data() != old) rebase(old);  // a short text was copied, not handed over
  other.messages.clear();
}

MqttBatch& MqttBatch::operator=(const MqttBatch& other) {
  if (this != &other) *this = MqttBatch(other);
  return *this;
}

MqttBatch& MqttBatch::operator=(MqttBatch&& other) noexcept {
  if (this == &other) return *this;
  messages = std::move(other.messages);
  error = other.error;
  datums_without_value = other.datums_without_value;
  const char* old = other.text_.data();
  text_ = std::move(other.text_);
  if (text_.data() != old) rebase(old);
  other.messages.clear();
  return *this;
}

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

// What the enum members of Value need, found once from the descriptors: the field (to read the
// number through reflection) and the value names by number. Descriptor strings live as long as the
// program.
struct EnumMember {
  const google::protobuf::FieldDescriptor* field = nullptr;
  std::vector<std::string_view> names;  // by number; "" = no such value
};

const std::array<EnumMember, kEnumPaths.size()>& enum_members() {
  static const auto table = [] {
    std::array<EnumMember, kEnumPaths.size()> t;
    for (std::size_t member = 0; member < t.size(); ++member) {
      if (kEnumPaths[member] == EnumPath::None) continue;
      const auto* fd = vd::Value::descriptor()->FindFieldByNumber(static_cast<int>(member));
      if (fd == nullptr || fd->enum_type() == nullptr) continue;
      t[member].field = fd;
      const auto* e = fd->enum_type();
      int max = 0;
      for (int i = 0; i < e->value_count(); ++i) max = std::max(max, e->value(i)->number());
      t[member].names.resize(static_cast<std::size_t>(max) + 1);
      for (int i = 0; i < e->value_count(); ++i) {
        const auto* v = e->value(i);
        if (v->number() >= 0) t[member].names[static_cast<std::size_t>(v->number())] = v->name();
      }
    }
    return t;
  }();
  return table;
}

void append_enum(std::string& out, const vd::Value& value, int member, EnumPath path) {
  const EnumMember& e = enum_members()[static_cast<std::size_t>(member)];
  if (e.field == nullptr) {  // not in this build's schema: cannot happen for a parsed Value
    out += "{}";
    return;
  }
  const int number = vd::Value::GetReflection()->GetEnumValue(value, e.field);
  std::string_view name;
  if (number >= 0 && static_cast<std::size_t>(number) < e.names.size()) {
    name = e.names[static_cast<std::size_t>(number)];
  } else if (number < 0) {
    if (const auto* ev = e.field->enum_type()->FindValueByNumber(number)) name = ev->name();
  }
  if (!name.empty()) {
    out += '"';
    out.append(name);  // an identifier: nothing to escape
    out += '"';
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

void append_topic_prefix(std::string& out, std::string_view base, std::string_view vin,
                         std::string_view kind) {
  out.append(base);
  out += '/';
  out.append(vin);
  out += '/';
  out.append(kind);
}

// The end of an event-time envelope: `,"ts":"<time>"}` (see MqttFormatOptions).
std::string event_time_suffix(const Record& r, const vd::Payload& p) {
  std::string out = ",\"ts\":";
  if (p.has_created_at()) {
    json::append_rfc3339(out, p.created_at().seconds(), p.created_at().nanos(), /*fraction=*/true);
  } else {
    const std::int64_t ms = r.received_at_ms;
    const std::int64_t seconds = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);  // floor
    const auto millis = static_cast<std::int32_t>(ms - seconds * 1000);
    json::append_rfc3339(out, seconds, millis * 1'000'000, /*fraction=*/true);
  }
  out += '}';
  return out;
}

// Drops whatever the batch holds (a record yields all its messages or none), keeping the count
// of datums without a value.
void discard_messages(MqttBatch& batch, MqttFormatError error) {
  const int without_value = batch.datums_without_value;
  batch = MqttBatch{};
  batch.error = error;
  batch.datums_without_value = without_value;
}

// mqtt.record_message: `<base>/<vin>/v` with {"ts":"<time>","data":{"<Field>":<value>,…}}.
void format_record_message(MqttBatch& batch, const Record& r, const vd::Payload& p,
                           std::span<const std::pair<int, int>> chosen,
                           const MqttFormatOptions& options) {
  // The envelope's end is `,"ts":"<time>"}`; here the time leads: `{"ts":"<time>"`.
  std::string ts = event_time_suffix(r, p);
  ts.pop_back();
  ts[0] = '{';
  MqttBatchWriter w(batch, options.topic_base.size() + r.vin.size() + 4 + ts.size() + 10 +
                               chosen.size() * 48,
                    1);
  std::string& text = w.text();
  w.begin_topic();
  append_topic_prefix(text, options.topic_base, r.vin, "v");
  w.begin_payload();
  text += ts;
  text += ",\"data\":{";
  bool first = true;
  for (const auto& [key, index] : chosen) {
    const auto& datum = p.data(index);
    if (!datum.has_value()) {
      ++batch.datums_without_value;  // as in the per-field format
      continue;
    }
    if (!first) text += ',';
    first = false;
    text += '"';
    append_field_name(text, key);
    text += "\":";
    if (!append_mqtt_value(text, datum.value())) {
      discard_messages(batch, MqttFormatError::NonFiniteNumber);
      return;
    }
  }
  if (first) {  // no datum with a value: nothing to publish, as per field
    discard_messages(batch, MqttFormatError::None);
    return;
  }
  text += "}}";
  w.end_message();
}

void format_vehicle_data(MqttBatch& batch, const Record& r, const vd::Payload& p,
                         const MqttFormatOptions& options) {
  // One publish per distinct key; a later datum with the same key replaces an earlier one.
  // Sorting (key, index) keeps this O(n log n): a frame of 100,000 distinct keys must not stall
  // a shard (a linear search per datum did, for seconds). Typical frames sort on the stack.
  using KeyIndex = std::pair<int, int>;  // (key, index of the datum)
  const auto n = static_cast<std::size_t>(p.data_size());
  std::array<KeyIndex, 64> small;
  std::vector<KeyIndex> large;
  std::span<KeyIndex> all(small.data(), std::min(n, small.size()));
  if (n > small.size()) {
    large.resize(n);
    all = large;
  }
  for (int i = 0; i < p.data_size(); ++i) all[static_cast<std::size_t>(i)] = {p.data(i).key(), i};
  std::sort(all.begin(), all.end());  // by key, then index: the last of a run wins
  const auto first_kept = std::unique(all.rbegin(), all.rend(), [](const auto& a, const auto& b) {
                            return a.first == b.first;
                          }).base();
  const std::span<const KeyIndex> chosen(first_kept, all.end());

  if (options.record_message) {
    format_record_message(batch, r, p, chosen, options);
    return;
  }
  const std::size_t prefix_size = options.topic_base.size() + r.vin.size() + 4;  // "/<vin>/v/"
  const std::string envelope_end =
      options.event_time_envelope ? event_time_suffix(r, p) : std::string();
  MqttBatchWriter w(batch, chosen.size() * (prefix_size + 48 + envelope_end.size() + 9),
                    chosen.size());
  std::string& text = w.text();
  std::size_t prefix_at = std::string::npos;  // the first topic's prefix, copied for the others
  for (const auto& [key, index] : chosen) {
    const auto& datum = p.data(index);
    if (!datum.has_value()) {
      // The reference dereferences nil here and drops the connection (spec §8.8, §14). We skip
      // the datum, publish the others and count it.
      ++batch.datums_without_value;
      continue;
    }
    w.begin_topic();
    if (prefix_at == std::string::npos) {
      prefix_at = text.size();
      append_topic_prefix(text, options.topic_base, r.vin, "v/");
    } else {
      text.append(text, prefix_at, prefix_size);
    }
    append_field_name(text, key);
    w.begin_payload();
    if (options.event_time_envelope) text += "{\"value\":";
    if (!append_mqtt_value(text, datum.value())) {
      discard_messages(batch, MqttFormatError::NonFiniteNumber);
      return;
    }
    if (options.event_time_envelope) text += envelope_end;
    w.end_message();
  }
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

void format_alerts(MqttBatch& batch, const Record& r, const va::VehicleAlerts& alerts,
                   const MqttFormatOptions& options) {
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
  MqttBatchWriter w(batch, 0, 2 * groups.size());
  std::string& text = w.text();
  auto begin = [&](std::string_view name, std::string_view leaf) {
    w.begin_topic();
    append_topic_prefix(text, options.topic_base, r.vin, "alerts/");
    text.append(name);
    text.append(leaf);
    w.begin_payload();
  };
  // spec §8.8: all `current` publishes first, then all `history`.
  for (const auto& [first, end] : groups) {
    const va::VehicleAlert* current = nullptr;  // greatest started_at; ties: the first
    for (size_t k = first; k < end; ++k) {
      const auto& a = alerts.alerts(by_name[k].second);
      if (!a.has_started_at()) continue;
      if (current == nullptr || later(a.started_at(), current->started_at())) current = &a;
    }
    if (current == nullptr) continue;
    begin(by_name[first].first, "/current");
    append_alert(text, *current);
    w.end_message();
  }
  for (const auto& [first, end] : groups) {
    begin(by_name[first].first, "/history");
    text += '[';
    for (size_t k = first; k < end; ++k) {
      if (k != first) text += ',';
      append_alert(text, alerts.alerts(by_name[k].second));
    }
    text += ']';
    w.end_message();
  }
}

void format_errors(MqttBatch& batch, const Record& r, const ve::VehicleErrors& errors,
                   const MqttFormatOptions& options) {
  MqttBatchWriter w(batch, 0, static_cast<std::size_t>(errors.errors_size()));
  std::string& text = w.text();
  for (const auto& e : errors.errors()) {
    w.begin_topic();
    append_topic_prefix(text, options.topic_base, r.vin, "errors/");
    text.append(e.name());
    w.begin_payload();
    text += '{';
    append_key(text, "Body");
    json::append_string(text, e.body(), Escaping::Go);
    if (e.has_created_at()) {
      text += ",\"CreatedAt\":";
      append_rfc3339(text, e.created_at());
    }
    text += ",\"Tags\":";
    if (e.tags().empty()) {
      text += "null";
    } else {
      std::vector<std::pair<std::string_view, std::string_view>> tags(e.tags().begin(),
                                                                      e.tags().end());
      std::sort(tags.begin(), tags.end());
      text += '{';
      for (size_t i = 0; i < tags.size(); ++i) {
        if (i) text += ',';
        append_key(text, tags[i].first);
        json::append_string(text, tags[i].second, Escaping::Go);
      }
      text += '}';
    }
    text += '}';
    w.end_message();
  }
}

void format_connectivity(MqttBatch& batch, const Record& r, const vc::VehicleConnectivity& c,
                         const MqttFormatOptions& options) {
  MqttBatchWriter w(batch, 0, 1);
  std::string& text = w.text();
  w.begin_topic();
  append_topic_prefix(text, options.topic_base, r.vin, "connectivity");
  w.begin_payload();
  text += '{';
  append_key(text, "ConnectionId");
  json::append_string(text, c.connection_id(), Escaping::Go);
  text += ",\"CreatedAt\":";
  append_rfc3339(text, c.created_at());  // unset reads as the epoch: 1970-01-01T00:00:00Z
  text += ",\"Status\":";
  if (const auto* ev = vc::ConnectivityEvent_descriptor()->FindValueByNumber(c.status())) {
    json::append_string(text, ev->name(), Escaping::Go);
  } else {
    text += '"';
    json::append_int(text, c.status());
    text += '"';
  }
  text += '}';
  w.end_message();
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
      const std::size_t mark = out.size();
      out += "{\"latitude\":";
      if (json::append_float(out, v.location_value().latitude(), 64)) {
        out += ",\"longitude\":";
        if (json::append_float(out, v.location_value().longitude(), 64)) {
          out += '}';
          return true;
        }
      }
      out.resize(mark);
      return false;
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

MqttBatch format_mqtt(const Record& r, const MqttFormatOptions& options) {
  MqttBatch batch;
  if (const auto* p = r.message.get_if<vd::Payload>()) {
    format_vehicle_data(batch, r, *p, options);
  } else if (const auto* a = r.message.get_if<va::VehicleAlerts>()) {
    format_alerts(batch, r, *a, options);
  } else if (const auto* e = r.message.get_if<ve::VehicleErrors>()) {
    format_errors(batch, r, *e, options);
  } else if (const auto* c = r.message.get_if<vc::VehicleConnectivity>()) {
    format_connectivity(batch, r, *c, options);
  } else {
    batch.error = MqttFormatError::UnsupportedType;
  }
  return batch;
}

MqttBatch format_mqtt(const Record& r, std::string_view topic_base) {
  return format_mqtt(r, MqttFormatOptions{.topic_base = topic_base});
}

}  // namespace ts::pipeline
