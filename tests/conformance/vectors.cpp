#include "vectors.hpp"

#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "wire/envelope.hpp"
#include "wire/payload.hpp"

namespace ts::conformance {

std::string vectors_dir() { return std::string(TS_SHARED_DIR) + "/vectors/reference"; }

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<VectorCase> load_cases() {
  std::vector<VectorCase> cases;
  auto lines = read_lines(vectors_dir() + "/index.tsv");
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cols;
    std::stringstream ss(lines[i]);
    for (std::string col; std::getline(ss, col, '\t');) cols.push_back(col);
    if (cols.size() < 7) continue;
    cases.push_back({cols[0], cols[1], std::stoi(cols[3]), cols[5] == "true", cols[6]});
  }
  return cases;
}

CaseIdentity identity_of(const VectorCase& c) {
  switch (c.number()) {
    case 50: return {"5YJ3-E1EA7-JF000001", "vehicle_device"};
    case 51: return {"5YJ3E1EA7JF000002", "vehicle_board_device"};
    case 52: return {"5YJ3E1EA7JF000003", "vehicle_device"};
    case 53: return {"5YJ3E1EA7JF000004", ""};
    case 54: return {"5YJ3E1EA7JF000005", ""};
    default: return {"5YJ3E1EA7JF000000", "vehicle_device"};
  }
}

bool session_level(const VectorCase& c) {
  const int n = c.number();
  return n == 47 || n == 49 || n == 53 || n == 54;
}

std::string to_hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

std::optional<std::string> v_created_at(const VectorCase& c) {
  const auto bytes = read_file(vectors_dir() + "/" + c.stem() + ".in.bin");
  if (!bytes) return std::nullopt;
  const auto env = wire::decode_envelope(
      std::span(reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size()));
  if (!env || !env->stream || env->topic != "V") return std::nullopt;
  wire::vehicle_data::Payload p;
  if (!p.ParseFromArray(env->stream->payload.data(), static_cast<int>(env->stream->payload.size())) ||
      !p.has_created_at())
    return std::nullopt;
  if (p.created_at().nanos() != 0) throw std::runtime_error(c.stem() + ": created_at has a fraction");
  const std::time_t seconds = p.created_at().seconds();
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(text);
}

std::string with_event_time_envelope(const std::string& line, const std::string& ts) {
  // Topics are telemetry/<VIN>/<kind>/...: only kind "v" gets the envelope.
  const auto tab = line.find('\t');
  const auto vin_end = line.find('/', line.find('/') + 1);
  if (tab == std::string::npos || vin_end == std::string::npos || line.compare(vin_end, 3, "/v/") != 0)
    return line;
  return line.substr(0, tab + 1) + "{\"value\":" + line.substr(tab + 1) + ",\"ts\":\"" + ts + "\"}";
}

}  // namespace ts::conformance
