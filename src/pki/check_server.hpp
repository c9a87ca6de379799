#pragma once
/// The server-certificate check behind `tsctl check-server`: what Tesla's `check_server_cert.sh`
/// checks (does the server's chain verify against the CA you registered with Tesla, or only a
/// partial chain?), plus what makes vehicles fail in practice: the host name, the TLS version,
/// whether the server demands a client certificate and how many acceptable CA names it lists
/// (spec §2.2, §14 item 1). Blocking; runs its own io_context on the caller's thread; every
/// network step has a deadline. Remote problems are reported as results, never thrown; local
/// problems (unreadable --ca/--cert/--key) throw std::runtime_error naming the file.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ts::pki {

enum class CheckStatus { Pass, Warn, Fail };

/// "PASS", "WARN", "FAIL".
std::string_view to_string(CheckStatus status);

/// One line of the report: `PASS chain: ...`.
struct CheckResult {
  std::string check;  ///< connect, handshake, chain, hostname, tls-version, client-ca-list, status
  CheckStatus status = CheckStatus::Fail;
  std::string detail;  ///< plain English, says what to change when not PASS
};

struct CheckServerOptions {
  std::string host;
  std::uint16_t port = 443;
  std::string server_name;  ///< name to verify and send as SNI; empty = host
  std::string ca_file;      ///< the CA (chain) vehicles will trust: Tesla's `ca` config field
  std::string cert_file;    ///< optional client certificate; then also GET /status
  std::string key_file;     ///< its key (required with cert_file)
  std::chrono::milliseconds timeout{10'000};  ///< per network step
  std::size_t max_client_ca_names = 10;       ///< more names than this -> WARN
};

/// Runs the checks in order and returns one result per check performed; stops early when the
/// connection or handshake makes the rest impossible (the last result says why).
std::vector<CheckResult> check_server(const CheckServerOptions& options);

/// True if any result is a FAIL.
bool has_failure(const std::vector<CheckResult>& results);

}  // namespace ts::pki
