// tsctl decode: what the server does with one vehicle frame (contract in shared/DESIGN.md).
// It calls the same pipeline::process and pipeline::format_mqtt as telemetry-server.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "commands.hpp"
#include "pipeline/mqtt_format.hpp"
#include "pipeline/process.hpp"

namespace tsctl {
namespace {

struct DecodeOptions {
  std::string format = "mqtt";
  std::string topic_base = "telemetry";
  std::string vin = "5YJ3E1EA7JF000000";
  std::string client_type = "vehicle_device";
  std::vector<std::string> records = {"V", "alerts", "errors", "connectivity"};
  bool event_time_envelope = false;
  bool record_message = false;
  std::string frame_path;
};

std::string hex(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

int run_decode(const DecodeOptions& opt) {
  std::ifstream in(opt.frame_path, std::ios::binary);
  if (!in) {
    std::cerr << "tsctl decode: cannot read " << opt.frame_path << "\n";
    return 2;
  }
  std::vector<std::uint8_t> frame((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());

  // As if the frame arrived on a connection whose verified certificate names VIN (spec §2.3).
  ts::pipeline::SocketContext socket{.vin = opt.vin,
                                     .sender_id = opt.client_type + "." + opt.vin,
                                     .client_version = "",
                                     .socket_id = "",
                                     .network_interface = ""};
  ts::pipeline::PipelineOptions options{.configured_record_types = opt.records,
                                        .transmit_decoded_records = opt.format == "json"};
  // Received now: the event-time envelope falls back to this for records without created_at.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto outcome = ts::pipeline::process(frame, socket, options, now_ms);

  if (opt.format == "ack") {
    for (const auto& reply : ts::pipeline::immediate_replies(outcome, false))
      std::cout << hex(reply) << "\n";
    return 0;
  }
  if (outcome.kind == ts::pipeline::OutcomeKind::TooBig) {
    std::cerr << "ERROR reply: frame larger than 1000000 bytes\n";
    return 1;
  }
  if (outcome.kind == ts::pipeline::OutcomeKind::Bad) {
    std::cerr << "ERROR reply: " << ts::pipeline::to_string(outcome.reason) << "\n";
    return 1;
  }
  if (outcome.kind == ts::pipeline::OutcomeKind::UnknownType) {
    std::cerr << "acknowledged without dispatch: envelope message_type "
              << int(outcome.message_type) << " is not a FlatbuffersStream\n";
    return 0;
  }
  if (opt.format == "json") {
    std::cout << outcome.json_payload << "\n";
    return 0;
  }
  if (!options.is_configured(outcome.record.tx_type)) {
    std::cerr << "acknowledged without dispatch: no rule for record type '"
              << outcome.record.tx_type << "'\n";
    return 0;
  }
  auto batch = ts::pipeline::format_mqtt(
      outcome.record,
      {.topic_base = opt.topic_base,
       .event_time_envelope = opt.event_time_envelope,
       .record_message = opt.record_message});
  if (batch.error == ts::pipeline::MqttFormatError::NonFiniteNumber) {
    std::cerr << "acknowledged, nothing published: a NaN or infinite value cannot be encoded\n";
  }
  if (batch.datums_without_value > 0) {
    std::cerr << "skipped " << batch.datums_without_value << " datum(s) without a value\n";
  }
  std::vector<std::string> lines;
  for (const auto& m : batch.messages) {
    std::string line(m.topic);
    line += '\t';
    line += m.payload;
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& l : lines) std::cout << l << "\n";
  return 0;
}

}  // namespace

void register_decode(CLI::App& app) {
  auto opt = std::make_shared<DecodeOptions>();
  auto* cmd = app.add_subcommand(
      "decode", "Show what telemetry-server does with one binary vehicle frame");
  cmd->add_option("--format", opt->format,
                  "mqtt: published messages (topic<TAB>payload, sorted); ack: reply frames as "
                  "hex; json: the transmit_decoded_records JSON form")
      ->check(CLI::IsMember({"mqtt", "ack", "json"}))
      ->capture_default_str();
  cmd->add_option("--topic-base", opt->topic_base, "MQTT topic_base")->capture_default_str();
  cmd->add_option("--vin", opt->vin, "VIN of the verified client certificate")
      ->capture_default_str();
  cmd->add_option("--client-type", opt->client_type, "client type of the certificate (spec §2.3)")
      ->capture_default_str();
  cmd->add_option("--records", opt->records, "record types with a dispatch rule")
      ->capture_default_str();
  cmd->add_flag("--event-time-envelope", opt->event_time_envelope,
                "as with mqtt.event_time_envelope: V messages as {\"value\":...,\"ts\":...}, ts "
                "= the record's created_at (or now, when it has none)");
  cmd->add_flag("--record-message", opt->record_message,
                "as with mqtt.record_message: a V record as one message on <base>/<VIN>/v, "
                "{\"ts\":...,\"data\":{\"<Field>\":...}}");
  cmd->add_option("frame", opt->frame_path, "file holding one binary WebSocket message")
      ->required();
  cmd->callback([opt] { exit_code() = run_decode(*opt); });
}

}  // namespace tsctl
