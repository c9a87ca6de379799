#include "fuzz/pipeline_invariants.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "pipeline/mqtt_format.hpp"
#include "pipeline/protojson.hpp"
#include "pipeline/transforms.hpp"
#include "wire/envelope.hpp"
#include "wire/payload.hpp"

namespace ts::fuzz {

void invariant_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", condition, file, line);
  std::fflush(stderr);
  __builtin_trap();
}

namespace {

namespace vd = wire::vehicle_data;
namespace va = wire::vehicle_alerts;
namespace ve = wire::vehicle_error;
namespace vc = wire::vehicle_connectivity;
using pipeline::BadReason;
using pipeline::Outcome;
using pipeline::OutcomeKind;
using pipeline::Record;

// Receive time of every fuzz frame: fixed, so that a crash reproduces.
constexpr std::int64_t kNowMs = 1'700'000'000'000;

// spec §7.2.4: seconds at or above this are milliseconds and get rewritten.
constexpr std::int64_t kAlertMillisThreshold = 315576000000;

std::string topic_prefix() { return std::string(kTopicBase) + "/" + std::string(kVin) + "/"; }

bool is_json(std::string_view text) {
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  return !ec;
}

bool is_json_object(std::string_view text) {
  boost::system::error_code ec;
  const auto value = boost::json::parse(text, ec);
  return !ec && value.is_object();
}

// The Message index each record type must carry (record.hpp).
std::size_t expected_alternative(wire::RecordType type) {
  switch (type) {
    case wire::RecordType::V:
      return 1;
    case wire::RecordType::Alerts:
      return 2;
    case wire::RecordType::Errors:
      return 3;
    case wire::RecordType::Connectivity:
      return 4;
    case wire::RecordType::Other:
      return 0;
  }
  return 0;
}

// Dispatchers forward Record::encoded_payload(): it must decode again with the same rules, to a
// message of the same encoded size.
template <class M>
void check_reencodes(const std::string& encoded) {
  M again;
  TS_FUZZ_CHECK(wire::parse_record(encoded, again));
  TS_FUZZ_CHECK(again.ByteSizeLong() == encoded.size());
}

// spec §7.2.2-3 left nothing for a second pass to do.
void check_vehicle_data_transforms(const vd::Payload& p) {
  bool first_location = true;
  for (const auto& datum : p.data()) {
    const bool is_location = datum.key() == vd::Location;
    if (datum.has_value() && datum.value().value_case() == vd::Value::kStringValue) {
      const std::string& s = datum.value().string_value();
      TS_FUZZ_CHECK(!pipeline::normalize_scientific(s).has_value());
      if (is_location && first_location) TS_FUZZ_CHECK(!pipeline::parse_location(s).has_value());
    }
    if (is_location) first_location = false;
  }
}

// spec §7.2.4, re-derived from the alerts as sent: a timestamp whose seconds are at or above the
// threshold holds milliseconds and becomes {ms / 1000, (ms % 1000) * 1e6}, once; others stay.
void check_alert_timestamp(bool sent_has, const google::protobuf::Timestamp& sent, bool got_has,
                           const google::protobuf::Timestamp& got) {
  TS_FUZZ_CHECK(sent_has == got_has);
  if (!sent_has) return;
  if (sent.seconds() >= kAlertMillisThreshold) {
    TS_FUZZ_CHECK(got.seconds() == sent.seconds() / 1000);
    TS_FUZZ_CHECK(got.nanos() == static_cast<std::int32_t>(sent.seconds() % 1000) * 1'000'000);
  } else {
    TS_FUZZ_CHECK(got.seconds() == sent.seconds() && got.nanos() == sent.nanos());
  }
}

void check_alert_transforms(std::string_view stream_payload, const va::VehicleAlerts& got) {
  va::VehicleAlerts sent;
  TS_FUZZ_CHECK(wire::parse_record(stream_payload, sent));
  TS_FUZZ_CHECK(sent.alerts_size() == got.alerts_size());
  for (int i = 0; i < got.alerts_size(); ++i) {
    const auto& s = sent.alerts(i);
    const auto& g = got.alerts(i);
    TS_FUZZ_CHECK(s.name() == g.name());
    check_alert_timestamp(s.has_started_at(), s.started_at(), g.has_started_at(), g.started_at());
    check_alert_timestamp(s.has_ended_at(), s.ended_at(), g.has_ended_at(), g.ended_at());
  }
}

// An accepted record: metadata from the socket and the envelope, the message its type calls for,
// transforms applied (spec §7.2), and a payload that survives re-encoding (spec §7.1).
void check_record(const Outcome& o, std::string_view stream_payload, bool transmit) {
  const Record& r = o.record;
  TS_FUZZ_CHECK(r.type == wire::record_type_of(r.tx_type));
  TS_FUZZ_CHECK(r.txid == o.txid);
  TS_FUZZ_CHECK(r.vin == kVin);
  TS_FUZZ_CHECK(r.received_at_ms == kNowMs);
  TS_FUZZ_CHECK(r.message.index() == expected_alternative(r.type));

  const std::string encoded = r.encoded_payload();
  if (const auto* p = r.message.get_if<vd::Payload>()) {
    TS_FUZZ_CHECK(p->vin() == kVin);
    TS_FUZZ_CHECK(r.signals_count() == p->data_size());
    check_vehicle_data_transforms(*p);
    check_reencodes<vd::Payload>(encoded);
  } else if (const auto* a = r.message.get_if<va::VehicleAlerts>()) {
    TS_FUZZ_CHECK(a->vin() == kVin);
    TS_FUZZ_CHECK(r.signals_count() == a->alerts_size());
    check_alert_transforms(stream_payload, *a);
    check_reencodes<va::VehicleAlerts>(encoded);
  } else if (const auto* e = r.message.get_if<ve::VehicleErrors>()) {
    TS_FUZZ_CHECK(e->vin() == kVin);
    check_reencodes<ve::VehicleErrors>(encoded);
  } else if (const auto* c = r.message.get_if<vc::VehicleConnectivity>()) {
    TS_FUZZ_CHECK(c->vin() == kVin);
    check_reencodes<vc::VehicleConnectivity>(encoded);
  } else {
    TS_FUZZ_CHECK(encoded == stream_payload);
  }

  // spec §4 step 6 and record_size_bytes_total: the size of what is dispatched.
  if (transmit) {
    TS_FUZZ_CHECK(o.payload_size == o.json_payload.size());
    TS_FUZZ_CHECK(is_json_object(o.json_payload));
    if (r.type == wire::RecordType::Other) TS_FUZZ_CHECK(o.json_payload == "{}");
  } else {
    TS_FUZZ_CHECK(o.json_payload.empty());
    TS_FUZZ_CHECK(o.payload_size == encoded.size());
  }
}

// spec §4 steps 2-6, re-derived from an independent read of the envelope.
void check_outcome(std::span<const std::uint8_t> frame, const Outcome& o, bool transmit) {
  if (frame.size() > wire::kMaxFrameBytes) {
    TS_FUZZ_CHECK(o.kind == OutcomeKind::TooBig);
    TS_FUZZ_CHECK(o.txid.empty());
    return;
  }
  TS_FUZZ_CHECK(o.kind != OutcomeKind::TooBig);
  if (frame.empty()) {
    TS_FUZZ_CHECK(o.kind == OutcomeKind::UnknownType);
    TS_FUZZ_CHECK(o.txid.empty() && o.message_type == 0);
    return;
  }
  const auto env = wire::decode_envelope(frame);
  if (!env) {
    TS_FUZZ_CHECK(o.kind == OutcomeKind::Bad && o.reason == BadReason::Unreadable);
    TS_FUZZ_CHECK(o.txid.empty());
    return;
  }
  if (env->message_type != wire::kMessageTypeStream || !env->has_message) {
    TS_FUZZ_CHECK(o.kind == OutcomeKind::UnknownType);
    TS_FUZZ_CHECK(o.message_type == env->message_type);
    TS_FUZZ_CHECK(o.txid == (env->has_message ? env->txid : std::string_view()));
    TS_FUZZ_CHECK(o.record.tx_type.empty() && o.record.vin == kVin);
    return;
  }
  // decode_envelope verifies the stream table of every type-4 envelope it returns.
  TS_FUZZ_CHECK(env->stream.has_value());
  TS_FUZZ_CHECK(o.txid == env->txid);
  const auto& options = reference_options(transmit);
  const std::string_view sender = env->stream->sender_id;
  const bool sender_ok = options.is_configured(env->topic) || sender == kSenderId || sender == kVin;
  if (o.kind == OutcomeKind::Bad) {
    TS_FUZZ_CHECK(o.reason != BadReason::None && o.reason != BadReason::Unreadable);
    TS_FUZZ_CHECK((o.reason == BadReason::UnexpectedSender) == !sender_ok);
    const bool typed = wire::record_type_of(env->topic) != wire::RecordType::Other;
    if (o.reason == BadReason::PayloadDecode) TS_FUZZ_CHECK(typed);
    if (o.reason == BadReason::JsonEncode) TS_FUZZ_CHECK(typed && transmit);
    return;
  }
  TS_FUZZ_CHECK(o.kind == OutcomeKind::Ok);
  TS_FUZZ_CHECK(sender_ok);
  TS_FUZZ_CHECK(o.message_type == wire::kMessageTypeStream);
  TS_FUZZ_CHECK(o.record.tx_type == env->topic);
  check_record(o, env->stream->payload, transmit);
}

// spec §4 step 7: every reply decodes, ERROR carries the fixed text, ACK echoes txid and type.
void check_replies(const Outcome& o) {
  const auto replies = pipeline::immediate_replies(o, /*ack_deferred=*/false);
  const bool error = o.kind == OutcomeKind::TooBig || o.kind == OutcomeKind::Bad;
  TS_FUZZ_CHECK(replies.size() == (o.kind == OutcomeKind::UnknownType ? 2u : 1u));
  for (const auto& frame : replies) {
    const auto reply = wire::decode_reply(frame);
    TS_FUZZ_CHECK(reply.has_value());
    TS_FUZZ_CHECK(reply->txid == o.txid);
    if (error) {
      TS_FUZZ_CHECK(reply->message_type == wire::kMessageTypeStream);
      TS_FUZZ_CHECK(reply->error_text == wire::kErrorText);
      TS_FUZZ_CHECK(reply->topic.empty());
    } else {
      TS_FUZZ_CHECK(reply->message_type == wire::kMessageTypeStreamAck);
      TS_FUZZ_CHECK(reply->topic == (o.kind == OutcomeKind::Ok ? o.record.tx_type : std::string()));
    }
  }
  // spec §5: with a reliable-ack source only the accepted record's ACK waits.
  const auto deferred = pipeline::immediate_replies(o, /*ack_deferred=*/true);
  TS_FUZZ_CHECK(o.kind == OutcomeKind::Ok ? deferred.empty() : deferred == replies);
}

std::size_t distinct_keys(const vd::Payload& p) {
  std::vector<int> keys;
  keys.reserve(static_cast<std::size_t>(p.data_size()));
  for (const auto& d : p.data()) keys.push_back(d.key());
  std::sort(keys.begin(), keys.end());
  return static_cast<std::size_t>(std::unique(keys.begin(), keys.end()) - keys.begin());
}

std::size_t distinct_names(const va::VehicleAlerts& alerts) {
  std::vector<std::string_view> names;
  for (const auto& a : alerts.alerts()) names.push_back(a.name());
  std::sort(names.begin(), names.end());
  return static_cast<std::size_t>(std::unique(names.begin(), names.end()) - names.begin());
}

// spec §8.8: what the MQTT dispatcher publishes for an accepted record.
void check_mqtt(const Record& r) {
  const auto batch = pipeline::format_mqtt(r, kTopicBase);
  using pipeline::MqttFormatError;
  if (r.type == wire::RecordType::Other) {
    TS_FUZZ_CHECK(batch.error == MqttFormatError::UnsupportedType && batch.messages.empty());
    return;
  }
  TS_FUZZ_CHECK(batch.error != MqttFormatError::UnsupportedType);
  // A record yields all its messages or none.
  if (batch.error == MqttFormatError::NonFiniteNumber) {
    TS_FUZZ_CHECK(r.type == wire::RecordType::V && batch.messages.empty());
    return;
  }
  TS_FUZZ_CHECK(r.type == wire::RecordType::V || batch.datums_without_value == 0);

  const std::string prefix = topic_prefix();
  for (const auto& m : batch.messages) {
    TS_FUZZ_CHECK(m.topic.starts_with(prefix));
    TS_FUZZ_CHECK(!m.payload.empty());
    TS_FUZZ_CHECK(is_json(m.payload));
  }
  const auto& msgs = batch.messages;
  if (const auto* p = r.message.get_if<vd::Payload>()) {
    // One publish per distinct key; datums without a value are skipped and counted.
    TS_FUZZ_CHECK(msgs.size() + static_cast<std::size_t>(batch.datums_without_value) ==
                  distinct_keys(*p));
    std::vector<std::string_view> topics;
    for (const auto& m : msgs) {
      TS_FUZZ_CHECK(m.topic.starts_with(prefix + "v/") && m.topic.size() > prefix.size() + 2);
      topics.push_back(m.topic);
    }
    std::sort(topics.begin(), topics.end());
    TS_FUZZ_CHECK(std::adjacent_find(topics.begin(), topics.end()) == topics.end());
  } else if (const auto* a = r.message.get_if<va::VehicleAlerts>()) {
    // All `current` publishes first, then one `history` per distinct name.
    const std::size_t names = distinct_names(*a);
    TS_FUZZ_CHECK(msgs.size() >= names && msgs.size() <= 2 * names);
    const std::size_t current = msgs.size() - names;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      TS_FUZZ_CHECK(msgs[i].topic.starts_with(prefix + "alerts/"));
      TS_FUZZ_CHECK(msgs[i].topic.ends_with(i < current ? "/current" : "/history"));
      TS_FUZZ_CHECK(msgs[i].payload.front() == (i < current ? '{' : '['));
    }
  } else if (const auto* e = r.message.get_if<ve::VehicleErrors>()) {
    TS_FUZZ_CHECK(msgs.size() == static_cast<std::size_t>(e->errors_size()));
    for (const auto& m : msgs) TS_FUZZ_CHECK(m.topic.starts_with(prefix + "errors/"));
  } else {
    TS_FUZZ_CHECK(msgs.size() == 1);
    TS_FUZZ_CHECK(msgs[0].topic == prefix + "connectivity");
  }
}

}  // namespace

const pipeline::SocketContext& vehicle_socket() {
  static const pipeline::SocketContext socket{
      .vin = std::string(kVin),
      .sender_id = std::string(kSenderId),
      .client_version = "2024.44.25",
      .socket_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
      .network_interface = "wifi",
  };
  return socket;
}

const pipeline::PipelineOptions& reference_options(bool transmit_decoded_records) {
  static const auto make = [](bool transmit) {
    return pipeline::PipelineOptions{
        .configured_record_types = {"V", "alerts", "errors", "connectivity"},
        .transmit_decoded_records = transmit};
  };
  static const pipeline::PipelineOptions binary = make(false);
  static const pipeline::PipelineOptions json = make(true);
  return transmit_decoded_records ? json : binary;
}

pipeline::Outcome run_frame(std::span<const std::uint8_t> frame, bool transmit_decoded_records) {
  auto outcome = pipeline::process(frame, vehicle_socket(),
                                   reference_options(transmit_decoded_records), kNowMs);
  check_outcome(frame, outcome, transmit_decoded_records);
  check_replies(outcome);
  if (outcome.kind == OutcomeKind::Ok) check_mqtt(outcome.record);
  return outcome;
}

void check_protojson(const Record& record) {
  const auto* message = record.typed();
  if (message == nullptr) return;
  std::string out;
  if (pipeline::append_protojson(out, *message)) TS_FUZZ_CHECK(is_json_object(out));
}

}  // namespace ts::fuzz
