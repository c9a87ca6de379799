#include "vectors.hpp"

#include <fstream>
#include <sstream>

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

}  // namespace ts::conformance
