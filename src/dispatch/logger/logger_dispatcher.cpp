#include "dispatch/logger/logger_dispatcher.hpp"

#include "core/log.hpp"
#include "pipeline/json_writer.hpp"
#include "pipeline/protojson.hpp"

namespace ts::dispatch {

LoggerDispatcher::LoggerDispatcher() : log_(ts::log::get("logger")) {}

std::string LoggerDispatcher::format(const pipeline::Record& r) {
  using pipeline::json::Escaping;
  namespace json = pipeline::json;
  std::string out = "record_payload vin=";
  out += r.vin;
  out += " metadata={\"device_client_version\":";
  json::append_string(out, r.device_client_version, Escaping::Protojson);
  out += ",\"receivedat\":\"" + std::to_string(r.received_at_ms) + "\",\"timestamp\":\"0\"";
  out += ",\"txid\":";
  json::append_string(out, r.txid, Escaping::Protojson);
  out += ",\"txtype\":";
  json::append_string(out, r.tx_type, Escaping::Protojson);
  out += ",\"version\":\"0\",\"vin\":";
  json::append_string(out, r.vin, Escaping::Protojson);
  out += "} data=";
  const auto* message = r.typed();
  const bool typed = message != nullptr && pipeline::append_protojson(out, *message);
  if (!typed) out += "(record_logging_error: no schema for this record type)";
  return out;
}

boost::asio::awaitable<bool> LoggerDispatcher::dispatch(const pipeline::Record& record) {
  dispatch_detached(record);
  co_return true;
}

void LoggerDispatcher::dispatch_detached(const pipeline::Record& record) {
  if (log_->should_log(spdlog::level::info)) log_->info("{}", format(record));
}

}  // namespace ts::dispatch
