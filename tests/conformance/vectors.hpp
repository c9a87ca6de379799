#pragma once
// Reading shared/vectors/reference as it is (never edited): cases, frames, replies, MQTT lines.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace ts::conformance {

struct VectorCase {
  std::string nn;    ///< "01"
  std::string name;  ///< "v-string"
  int replies = 0;
  bool server_closed = false;
  std::string description;

  std::string stem() const { return nn + "-" + name; }
  int number() const { return std::stoi(nn); }
};

/// gtest prints parameters with this (instead of a byte dump).
inline void PrintTo(const VectorCase& c, std::ostream* os) { *os << c.stem(); }

std::string vectors_dir();
std::vector<VectorCase> load_cases();
std::optional<std::string> read_file(const std::string& path);
std::vector<std::string> read_lines(const std::string& path);

/// The certificate behind a case (vectors README, "Certificates and identity").
struct CaseIdentity {
  std::string vin;
  std::string client_type;
};
CaseIdentity identity_of(const VectorCase& c);

/// Cases that are about the live connection (text frame, identity rejection, session open/close):
/// they have no meaning for a single-frame decode and are covered by the server conformance test.
bool session_level(const VectorCase& c);

std::string to_hex(const std::string& bytes);

/// mqtt.event_time_envelope (docs/compatibility.md): the `created_at` of a case's V record as
/// RFC 3339 UTC ("2023-11-14T22:13:20Z", whole seconds: every vector has nanos 0); nullopt when the
/// frame is not a V record or its record has no created_at. Decoded here, apart from the pipeline.
std::optional<std::string> v_created_at(const VectorCase& c);

/// A reference line `topic<TAB>payload` as published with the event-time envelope: `v/` payloads
/// become `{"value":<payload>,"ts":"<ts>"}`, other lines stay as they are.
std::string with_event_time_envelope(const std::string& line, const std::string& ts);

}  // namespace ts::conformance
