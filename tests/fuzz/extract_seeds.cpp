// Regenerates tests/fuzz/seeds/ from the reference vectors; run by hand when the vectors change:
//
//   cmake --build build --target fuzz_extract_seeds
//   build/tests/fuzz_extract_seeds ../shared/vectors/reference tests/fuzz/seeds
//
// seeds/frame/:   every *.in.bin as it is, and hand-made frames (empty, one byte, an ack-type
//                 envelope, and copies of one vector per record type with the frame_fuzz
//                 transmit_decoded_records bit set).
// seeds/payload/: the protobuf payload of every V/alerts/errors/connectivity vector, as <name>.pb.
// Other files in seeds/ (the bug-* regression inputs) are left alone. A tool: reports problems on
// stderr and exits non-zero.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "wire/envelope.hpp"
#include "wire/payload.hpp"

namespace {

namespace fs = std::filesystem;
using ts::wire::Bytes;

constexpr std::string_view kVectorSuffix = ".in.bin";

// One vector per record type (and one without a schema) to start frame_fuzz on the JSON path.
constexpr std::string_view kJsonVectors[] = {"23-v-20-datums",
                                             "31-v-string-location-and-sci",
                                             "33-alerts-multi",
                                             "36-errors-duplicate-names",
                                             "38-connectivity-from-vehicle",
                                             "39-topic-unconfigured-own-sender"};

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void write_bytes(const fs::path& path, const Bytes& bytes) {
  write_bytes(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void run(const fs::path& vectors, const fs::path& seeds) {
  const fs::path frame_dir = seeds / "frame";
  const fs::path payload_dir = seeds / "payload";
  fs::create_directories(frame_dir);
  fs::create_directories(payload_dir);

  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(vectors)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(kVectorSuffix)) inputs.push_back(entry.path());
  }
  if (inputs.empty()) throw std::runtime_error("no *.in.bin in " + vectors.string());
  std::sort(inputs.begin(), inputs.end());

  int payloads = 0;
  for (const auto& path : inputs) {
    const std::string name = path.filename().string();
    const std::string stem = name.substr(0, name.size() - kVectorSuffix.size());
    const Bytes frame = read_bytes(path);
    write_bytes(frame_dir / name, frame);

    const auto env = ts::wire::decode_envelope(frame);
    if (!env || !env->stream) continue;
    if (ts::wire::record_type_of(env->topic) != ts::wire::RecordType::Other) {
      write_bytes(payload_dir / (stem + ".pb"), env->stream->payload);
      ++payloads;
    }
    if (std::find(std::begin(kJsonVectors), std::end(kJsonVectors), stem) !=
        std::end(kJsonVectors)) {
      Bytes json = frame;
      json.back() |= 1;  // frame_fuzz reads transmit_decoded_records from this bit
      if (!ts::wire::decode_envelope(json)) {
        throw std::runtime_error(name + ": the last byte is not padding");
      }
      write_bytes(frame_dir / ("hand-json-" + stem + ".bin"), json);
    }
  }

  write_bytes(frame_dir / "hand-empty.bin", std::string_view());
  write_bytes(frame_dir / "hand-one-byte.bin", std::string_view("\x14", 1));
  write_bytes(frame_dir / "hand-ack-type-envelope.bin",
              ts::wire::build_stream_ack_frame("fuzz-txid", "V"));
  std::cout << inputs.size() << " frames, " << payloads << " payloads written to " << seeds << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " VECTORS_DIR SEEDS_DIR\n";
    return 2;
  }
  try {
    run(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "fuzz_extract_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
