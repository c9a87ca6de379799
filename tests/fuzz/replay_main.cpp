// Seed replay for the libFuzzer targets (shared/STYLE.md "Tests": Fuzz): runs every file under the
// given paths through the target's LLVMFuzzerTestOneInput, so the seeds are an ordinary CTest test
// with any compiler. Linked into `<name>_replay` by ts_add_fuzzer(); the target supplies the entry
// point. A broken invariant aborts inside the target, so the last "replay:" line names the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

// Every regular file at `root` (a file, or a directory searched recursively), sorted so that runs
// are reproducible. Empty when `root` is missing or holds no files.
std::vector<fs::path> inputs_under(const fs::path& root) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    files.push_back(root);
    return files;
  }
  if (!fs::is_directory(root, ec)) return files;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool read_file(const fs::path& path, std::vector<std::uint8_t>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " FILE_OR_DIR...\n"
              << "Runs every file through LLVMFuzzerTestOneInput.\n";
    return 2;
  }
  std::size_t passed = 0;
  std::size_t failed = 0;
  for (int i = 1; i < argc; ++i) {
    const auto files = inputs_under(argv[i]);
    if (files.empty()) {
      std::cerr << "replay: " << argv[i] << ": no such file, or a directory without files\n";
      return 2;
    }
    std::vector<std::uint8_t> data;
    for (const auto& file : files) {
      if (!read_file(file, data)) {
        std::cerr << "replay: cannot read " << file << "\n";
        return 2;
      }
      std::cerr << "replay: " << file.string() << " (" << data.size() << " bytes)" << std::endl;
      // libFuzzer's contract: 0 = done, -1 = keep out of the corpus; anything else is a bug in
      // the target.
      const int rc = LLVMFuzzerTestOneInput(data.data(), data.size());
      if (rc == 0 || rc == -1) {
        ++passed;
      } else {
        ++failed;
        std::cerr << "replay: " << file.string() << ": target returned " << rc << "\n";
      }
    }
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
