#include "pipeline/protojson.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "pipeline/json_writer.hpp"

namespace ts::pipeline {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using json::Escaping;

bool append_timestamp(std::string& out, const Message& m) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  const std::int64_t seconds = r->GetInt64(m, d->FindFieldByNumber(1));
  const std::int32_t nanos = r->GetInt32(m, d->FindFieldByNumber(2));
  // spec §7.3: seconds within [0001-01-01, 9999-12-31], nanos within [0, 1e9).
  if (seconds < -62135596800LL || seconds > 253402300799LL || nanos < 0 || nanos > 999999999)
    return false;
  json::append_rfc3339(out, seconds, nanos, /*fraction=*/true);
  return true;
}

bool append_float_value(std::string& out, double v, int bits) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    json::append_float(out, v, bits);
  }
  return true;
}

bool append_message(std::string& out, const Message& m);

bool append_enum_number(std::string& out, const FieldDescriptor* f, int number) {
  if (const auto* ev = f->enum_type()->FindValueByNumber(number)) {
    json::append_string(out, ev->name(), Escaping::Protojson);
  } else {
    json::append_int(out, number);
  }
  return true;
}

// One singular value (or one element of a repeated field when index >= 0).
bool append_value(std::string& out, const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      json::append_int(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      json::append_int(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_INT64:
      out += '"';
      json::append_int(out, rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      out += '"';
      return true;
    case FieldDescriptor::CPPTYPE_UINT64:
      out += '"';
      out += std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      out += '"';
      return true;
    case FieldDescriptor::CPPTYPE_FLOAT:
      return append_float_value(out, rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f),
                                32);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return append_float_value(out, rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f),
                                64);
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
      return true;
    case FieldDescriptor::CPPTYPE_ENUM:
      return append_enum_number(out, f,
                                rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s =
          rep ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
      json::append_string(out, s, Escaping::Protojson);
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      if (!rep && !r->HasField(m, f)) {
        out += "null";
        return true;
      }
      const Message& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
      if (sub.GetDescriptor()->full_name() == "google.protobuf.Timestamp")
        return append_timestamp(out, sub);
      return append_message(out, sub);
    }
  }
  return false;
}

bool append_map(std::string& out, const Message& m, const FieldDescriptor* f) {
  // Our schema only has map<string, string>; keys sorted bytewise (spec §7.3).
  const Reflection* r = m.GetReflection();
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < r->FieldSize(m, f); ++i) {
    const Message& e = r->GetRepeatedMessage(m, f, i);
    const auto* ed = e.GetDescriptor();
    entries.emplace_back(e.GetReflection()->GetString(e, ed->FindFieldByNumber(1)),
                         e.GetReflection()->GetString(e, ed->FindFieldByNumber(2)));
  }
  std::sort(entries.begin(), entries.end());
  out += '{';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) out += ',';
    json::append_string(out, entries[i].first, Escaping::Protojson);
    out += ':';
    json::append_string(out, entries[i].second, Escaping::Protojson);
  }
  out += '}';
  return true;
}

bool append_message(std::string& out, const Message& m) {
  const auto* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  out += '{';
  bool first = true;
  for (int i = 0; i < d->field_count(); ++i) {  // declaration order
    const FieldDescriptor* f = d->field(i);
    if (f->real_containing_oneof() != nullptr && !r->HasField(m, f)) continue;
    if (!first) out += ',';
    first = false;
    json::append_string(out, f->json_name(), Escaping::Protojson);
    out += ':';
    if (f->is_map()) {
      append_map(out, m, f);
    } else if (f->is_repeated()) {
      out += '[';
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        if (k) out += ',';
        if (!append_value(out, m, f, k)) return false;
      }
      out += ']';
    } else if (!append_value(out, m, f, -1)) {
      return false;
    }
  }
  out += '}';
  return true;
}

}  // namespace

bool append_protojson(std::string& out, const Message& message) {
  std::string tmp;
  if (!append_message(tmp, message)) return false;
  out += tmp;
  return true;
}

}  // namespace ts::pipeline
