// Micro-benchmarks of the per-frame path (spec §4) on the benchmark workload: the 20-datum V frame
// of shared/vectors/reference/23-v-20-datums.in.bin (279-byte protobuf payload, 488-byte frame).
// The project's target: decode -> MQTT-encode (BM_ProcessAndMqttFormat) costs at most 2x a bare
// protobuf parse of the same payload (BM_BareProtobufParse). Results: docs/benchmarks.md.
//
//   build/bench/pipeline_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Every benchmark counts one frame as one item. bytes/s (and the `in_bytes` counter) are of what
// it reads or writes per item: the payload for the protobuf parse and protojson, the ACK frame it
// builds for BM_AckBuild, the whole frame otherwise.
#include <benchmark/benchmark.h>
#include <google/protobuf/arena.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/mqtt_format.hpp"
#include "pipeline/process.hpp"
#include "pipeline/protojson.hpp"
#include "wire/envelope.hpp"
#include "wire/payload.hpp"

namespace {

namespace vd = ts::wire::vehicle_data;
using ts::pipeline::OutcomeKind;

constexpr std::int64_t kNowMs = 1'700'000'000'000;
constexpr std::string_view kTopicBase = "telemetry";

// The frame and its payload, read once. Views into `frame` stay valid: it never changes.
struct Workload {
  ts::wire::Bytes frame;
  std::string_view payload;
  ts::pipeline::SocketContext socket;
  ts::pipeline::PipelineOptions options;
};

const Workload& workload() {
  static const Workload w = [] {
    const std::string path =
        std::string(TS_SHARED_DIR) + "/vectors/reference/23-v-20-datums.in.bin";
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    Workload out;
    out.frame.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    const auto env = ts::wire::decode_envelope(out.frame);
    if (!env || !env->stream) throw std::runtime_error(path + ": not a stream envelope");
    out.payload = env->stream->payload;
    // The identity of the vectors' vehicle certificate, and the reference's `records`.
    out.socket = {.vin = "5YJ3E1EA7JF000000",
                  .sender_id = "vehicle_device.5YJ3E1EA7JF000000",
                  .client_version = "2024.44.25",
                  .socket_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
                  .network_interface = "wifi"};
    out.options = {.configured_record_types = {"V", "alerts", "errors", "connectivity"},
                   .transmit_decoded_records = false};
    return out;
  }();
  return w;
}

void count_frames(benchmark::State& state, std::size_t bytes_per_item) {
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes_per_item));
  state.counters["in_bytes"] = static_cast<double>(bytes_per_item);
}

// The scale reference: what any consumer of the payload pays at least. A fresh message per frame,
// as pipeline::process has.
void BM_BareProtobufParse(benchmark::State& state) {
  const auto& w = workload();
  for (auto _ : state) {
    vd::Payload p;
    const bool ok = p.ParseFromArray(w.payload.data(), static_cast<int>(w.payload.size()));
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(p);
  }
  count_frames(state, w.payload.size());
}
BENCHMARK(BM_BareProtobufParse);

// Not the target's reference, shown for scale: the same parse into a message on a reused protobuf
// Arena, which is how pipeline::process decodes since the arena change (record.hpp).
void BM_BareProtobufParseOnArena(benchmark::State& state) {
  const auto& w = workload();
  alignas(std::max_align_t) static char block[3 * 1024];
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = sizeof block;
  google::protobuf::Arena arena(options);
  for (auto _ : state) {
    auto* p = google::protobuf::Arena::CreateMessage<vd::Payload>(&arena);
    const bool ok = p->ParseFromArray(w.payload.data(), static_cast<int>(w.payload.size()));
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(p);
    arena.Reset();
  }
  count_frames(state, w.payload.size());
}
BENCHMARK(BM_BareProtobufParseOnArena);

// spec §3.2: the verified FlatBuffers envelope read, no payload decode.
void BM_EnvelopeDecode(benchmark::State& state) {
  const auto& w = workload();
  for (auto _ : state) {
    auto env = ts::wire::decode_envelope(w.frame);
    benchmark::DoNotOptimize(env);
  }
  count_frames(state, w.frame.size());
}
BENCHMARK(BM_EnvelopeDecode);

// spec §4 steps 2-6: size, envelope, sender, payload decode, transforms (binary form).
void BM_Process(benchmark::State& state) {
  const auto& w = workload();
  for (auto _ : state) {
    auto outcome = ts::pipeline::process(w.frame, w.socket, w.options, kNowMs);
    benchmark::DoNotOptimize(outcome);
  }
  count_frames(state, w.frame.size());
}
BENCHMARK(BM_Process);

// decode -> MQTT-encode: process plus the topics and payloads the MQTT dispatcher publishes.
void BM_ProcessAndMqttFormat(benchmark::State& state) {
  const auto& w = workload();
  std::size_t messages = 0;
  std::size_t out_bytes = 0;
  for (auto _ : state) {
    auto outcome = ts::pipeline::process(w.frame, w.socket, w.options, kNowMs);
    auto batch = ts::pipeline::format_mqtt(outcome.record, kTopicBase);
    messages = batch.messages.size();
    benchmark::DoNotOptimize(batch);
  }
  if (messages != 20) state.SkipWithError("expected 20 MQTT messages");
  auto once = ts::pipeline::format_mqtt(
      ts::pipeline::process(w.frame, w.socket, w.options, kNowMs).record, kTopicBase);
  out_bytes = once.text_size();
  count_frames(state, w.frame.size());
  state.counters["mqtt_messages"] = static_cast<double>(messages);
  state.counters["mqtt_bytes"] = static_cast<double>(out_bytes);
}
BENCHMARK(BM_ProcessAndMqttFormat);

// What telemetry-server does today beyond BM_ProcessAndMqttFormat: MqttClient::Message owns its
// topic and payload strings, so MqttDispatcher copies each message of the batch into two strings
// (the topics do not fit in a std::string's inline buffer). Mirrors MqttDispatcher's copy loop;
// the strings are freed on the MQTT client's thread in the server, here in the loop.
void BM_ProcessMqttFormatAndClientCopy(benchmark::State& state) {
  struct OwnedMessage {  // the layout of dispatch::MqttClient::Message
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
  };
  const auto& w = workload();
  for (auto _ : state) {
    auto outcome = ts::pipeline::process(w.frame, w.socket, w.options, kNowMs);
    auto batch = ts::pipeline::format_mqtt(outcome.record, kTopicBase);
    std::vector<OwnedMessage> messages;
    messages.reserve(batch.messages.size());
    for (const auto& m : batch.messages)
      messages.push_back({std::string(m.topic), std::string(m.payload), 0, false});
    benchmark::DoNotOptimize(messages.data());
  }
  count_frames(state, w.frame.size());
}
BENCHMARK(BM_ProcessMqttFormatAndClientCopy);

// spec §7.3: the transmit_decoded_records JSON of the decoded, transformed record.
void BM_ProtojsonEncode(benchmark::State& state) {
  const auto& w = workload();
  const auto outcome = ts::pipeline::process(w.frame, w.socket, w.options, kNowMs);
  if (outcome.kind != OutcomeKind::Ok) {
    state.SkipWithError("the workload frame was not accepted");
    return;
  }
  const auto& message = *outcome.record.message.get_if<vd::Payload>();
  std::string out;
  for (auto _ : state) {
    out.clear();
    const bool ok = ts::pipeline::append_protojson(out, message);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out.data());
  }
  count_frames(state, w.payload.size());
  state.counters["json_bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_ProtojsonEncode);

// spec §3.4 "ACK recipe": the reply to every accepted frame.
void BM_AckBuild(benchmark::State& state) {
  const auto& w = workload();
  const auto env = ts::wire::decode_envelope(w.frame);
  const std::string txid(env->txid);
  const std::string topic(env->topic);
  std::size_t ack_bytes = 0;
  for (auto _ : state) {
    auto ack = ts::wire::build_ack(txid, topic);
    ack_bytes = ack.size();
    benchmark::DoNotOptimize(ack.data());
  }
  count_frames(state, ack_bytes);
}
BENCHMARK(BM_AckBuild);

}  // namespace

BENCHMARK_MAIN();
