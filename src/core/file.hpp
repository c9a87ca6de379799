#pragma once
/// Writing a file so that a crash never leaves half of it under its name.
#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace ts::core {

/// Writes `content` to `path.tmp` with exactly `mode` (umask and an existing file's mode do not
/// apply), fsyncs it and renames it over `path`. Throws std::runtime_error "<path>: <reason>".
void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           mode_t mode);

}  // namespace ts::core
