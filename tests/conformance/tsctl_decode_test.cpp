// Conformance through `tsctl decode` (contract in shared/DESIGN.md): every vector frame gives the
// reference's replies byte for byte and the reference's MQTT messages line for line.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <array>
#include <cstdio>
#include <map>
#include <sstream>
#include <sys/wait.h>

#include "vectors.hpp"
#include "wire/envelope.hpp"

namespace ts::conformance {
namespace {

struct RunResult {
  int exit_code = -1;
  std::string out;
};

RunResult run(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string tsctl_decode(const VectorCase& c, const std::string& format) {
  auto id = identity_of(c);
  return std::string(TS_BIN_DIR) + "/tsctl decode --format " + format +
         " --topic-base telemetry --vin " + id.vin + " --client-type " + id.client_type + " " +
         vectors_dir() + "/" + c.stem() + ".in.bin";
}

std::string expected_replies(const VectorCase& c) {
  std::string out;
  for (const char* suffix : {".ack.bin", ".ack.2.bin"}) {
    if (auto bytes = read_file(vectors_dir() + "/" + c.stem() + suffix)) out += to_hex(*bytes) + "\n";
  }
  return out;
}

std::string expected_mqtt(const VectorCase& c) {
  std::string out;
  for (const auto& line : read_lines(vectors_dir() + "/" + c.stem() + ".mqtt.txt")) {
    // Server-generated connectivity messages belong to the connection, not to the frame.
    if (c.number() >= 50 && line.find("/connectivity\t") != std::string::npos) continue;
    out += line + "\n";
  }
  return out;
}

class VectorTest : public ::testing::TestWithParam<VectorCase> {};

TEST_P(VectorTest, RepliesAreByteIdentical) {
  const auto& c = GetParam();
  auto r = run(tsctl_decode(c, "ack"));
  ASSERT_EQ(r.exit_code, 0);
  if (c.number() == 48) {
    // The reference crashes on a datum without a value and never replies (spec §14.16). We
    // acknowledge the frame normally (docs/compatibility.md).
    auto ack = wire::build_ack("tx-malformed-datum-without-value", "V");
    EXPECT_EQ(r.out, to_hex(std::string(ack.begin(), ack.end())) + "\n");
    return;
  }
  EXPECT_EQ(r.out, expected_replies(c)) << c.description;
}

TEST_P(VectorTest, MqttMessagesAreIdentical) {
  const auto& c = GetParam();
  auto r = run(tsctl_decode(c, "mqtt"));
  const bool error_reply = r.exit_code == 1;
  auto first_reply = read_file(vectors_dir() + "/" + c.stem() + ".ack.bin");
  bool reference_error = false;
  if (first_reply) {
    auto reply = wire::decode_reply(std::span(
        reinterpret_cast<const std::uint8_t*>(first_reply->data()), first_reply->size()));
    ASSERT_TRUE(reply);
    reference_error = reply->message_type == 4;
  }
  EXPECT_EQ(error_reply, reference_error) << "exit code " << r.exit_code;
  if (c.number() == 48) {
    EXPECT_EQ(r.out, "");  // our defined behaviour: the value-less datum is skipped and counted
    return;
  }
  EXPECT_EQ(r.out, expected_mqtt(c)) << c.description;
}

// mqtt.event_time_envelope through tsctl: V messages wrapped with the record's created_at, every
// other message (and every error reply) as without the option.
TEST_P(VectorTest, EventTimeEnvelopeWrapsOnlyFieldMessages) {
  const auto& c = GetParam();
  const auto plain = run(tsctl_decode(c, "mqtt"));
  const auto wrapped = run(tsctl_decode(c, "mqtt") + " --event-time-envelope");
  EXPECT_EQ(wrapped.exit_code, plain.exit_code);
  const auto ts = v_created_at(c);
  std::string want;
  std::istringstream lines(plain.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("/v/") != std::string::npos) {
      ASSERT_TRUE(ts) << "a v/ message from a frame without a V created_at";
    }
    want += (ts ? with_event_time_envelope(line, *ts) : line) + "\n";
  }
  EXPECT_EQ(wrapped.out, want) << c.description;
}

// mqtt.record_message through tsctl: a frame's v/<Field> messages become one message on
// <base>/<VIN>/v whose "data" holds exactly the same payloads, byte for byte, under their field
// names (in field-number order; tsctl prints the per-field lines sorted by topic); every other
// message (and every error reply) as without the option.
TEST_P(VectorTest, RecordMessageHoldsTheSameFieldPayloads) {
  const auto& c = GetParam();
  const auto plain = run(tsctl_decode(c, "mqtt"));
  const auto record = run(tsctl_decode(c, "mqtt") + " --record-message");
  EXPECT_EQ(record.exit_code, plain.exit_code);
  const auto ts = v_created_at(c);
  std::string others, topic;
  std::map<std::string, std::string> fields;  // name -> payload
  std::istringstream lines(plain.out);
  for (std::string line; std::getline(lines, line);) {
    const auto tab = line.find('\t');
    const auto v = line.rfind("/v/", tab);
    if (tab == std::string::npos || v == std::string::npos) {
      others += line + "\n";
      continue;
    }
    ASSERT_TRUE(ts) << "a v/ message from a frame without a V created_at";
    topic = line.substr(0, v + 2);
    fields[line.substr(v + 3, tab - v - 3)] = line.substr(tab + 1);
  }
  if (topic.empty()) {
    EXPECT_EQ(record.out, plain.out) << c.description;
    return;
  }
  // The record message is the last line (a V frame publishes nothing else).
  std::string out = record.out;
  ASSERT_TRUE(out.ends_with("}}\n")) << out;
  const auto start = out.rfind(topic + "\t");
  ASSERT_NE(start, std::string::npos) << out;
  EXPECT_EQ(out.substr(0, start), others) << c.description;
  const std::string payload = out.substr(start + topic.size() + 1, out.size() - start - topic.size() - 2);
  const std::string head = "{\"ts\":\"" + *ts + "\",\"data\":{";
  ASSERT_TRUE(payload.starts_with(head)) << payload;
  const auto doc = boost::json::parse(payload);
  const auto& data = doc.at("data").as_object();
  EXPECT_EQ(data.size(), fields.size()) << payload;
  std::size_t at = head.size();
  for (const auto& [name, value] : data) {  // payload order: each field's exact bytes, in turn
    const auto it = fields.find(std::string(name));
    ASSERT_NE(it, fields.end()) << name;
    const std::string member = "\"" + it->first + "\":" + it->second;
    EXPECT_EQ(payload.compare(at, member.size(), member), 0) << member << " in " << payload;
    at += member.size() + 1;
  }
  EXPECT_EQ(at, payload.size() - 1) << payload;  // nothing after the last member but "}}"
}

std::string case_name(const ::testing::TestParamInfo<VectorCase>& info) {
  std::string n = "c" + info.param.nn + "_" + info.param.name;
  for (auto& ch : n)
    if (ch == '-') ch = '_';
  return n;
}

// Connection-level cases (text frame, session open/close, identity rejection) have no meaning for
// a single-frame decode; tests/conformance/server_conformance_test.cpp covers them.
std::vector<VectorCase> frame_level_cases() {
  std::vector<VectorCase> out;
  for (auto& c : load_cases())
    if (!session_level(c)) out.push_back(c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Reference, VectorTest, ::testing::ValuesIn(frame_level_cases()), case_name);

TEST(Vectors, AllFiftyFourCasesAreLoaded) {
  EXPECT_EQ(load_cases().size(), 54u);
  EXPECT_EQ(frame_level_cases().size(), 50u);
}

}  // namespace
}  // namespace ts::conformance
