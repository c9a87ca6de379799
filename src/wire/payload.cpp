#include "wire/payload.hpp"

#include <google/protobuf/stubs/logging.h>

#include <mutex>

namespace ts::wire {
namespace {

// protobuf logs every rejected string ("String field ... contains invalid UTF-8 data") at ERROR.
// That is vehicle input, answered with an ERROR frame and counted; it must not flood the log.
void quiet_protobuf_log(google::protobuf::LogLevel level, const char*, int, const std::string&) {
  (void)level;
}

}  // namespace

RecordType record_type_of(std::string_view topic) {
  if (topic == "V") return RecordType::V;
  if (topic == "alerts") return RecordType::Alerts;
  if (topic == "errors") return RecordType::Errors;
  if (topic == "connectivity") return RecordType::Connectivity;
  return RecordType::Other;
}

bool parse_record(std::string_view bytes, google::protobuf::MessageLite& out) {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&quiet_protobuf_log); });
  return out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace ts::wire
