#pragma once
/// The socket UUID of a connection (spec §2.5): the canonical lower-case form of `X-TXID` when it
/// parses as a UUID (36-char canonical, `{...}`, `urn:uuid:` prefix, or 32 hex digits), else a
/// random version-4 UUID. Thread-safe.
#include <optional>
#include <string>
#include <string_view>

namespace ts::vehicle_link {

std::optional<std::string> parse_uuid(std::string_view text);
std::string random_uuid_v4();
std::string socket_id_from_header(std::string_view x_txid);

}  // namespace ts::vehicle_link
