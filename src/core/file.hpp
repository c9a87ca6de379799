#pragma once
/// Writing a file so that a crash never leaves half of it under its name.
#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace ts::core {

/// Writes `content` to a new temporary file in `path`'s directory and renames it over `path`.
///
/// The temporary file gets a random name (`.<name>.tmp-<random>`) and is created with
/// O_CREAT|O_EXCL|O_NOFOLLOW and exactly `mode` (umask and an existing file's mode do not apply),
/// so nothing already at that name — a leftover file or a symlink planted to redirect the write —
/// is followed or reused. The data is fsynced before the rename and the directory after it, so the
/// new content is durable under `path` when this returns. A symlink at `path` itself is replaced,
/// not followed. Blocking (file I/O). Throws std::runtime_error "<path>: <reason>"; on failure the
/// temporary file is removed and `path` is unchanged.
void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           mode_t mode);

}  // namespace ts::core
