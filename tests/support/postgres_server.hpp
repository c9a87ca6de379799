#pragma once
/// A real PostgreSQL server on 127.0.0.1 for tests and benchmarks: initdb into a TempDir, then
/// the `postgres` binary itself as a child Process (not `pg_ctl start`, which would detach it),
/// so a crashed test leaves no server behind.
///
/// Binaries: $TS_PG_BINDIR, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin
/// (Debian does not put initdb on PATH). initdb and postgres refuse to run as root: when the test
/// runs as root, both run as the `postgres` user (else `nobody`) through `setpriv`, which also
/// re-arms the parent-death signal that the change of user clears; the TempDir is handed to that
/// user. Authentication is `trust` for user `postgres`; the unix socket lives in the TempDir.
///
/// Owner: the test or fixture that creates it; not thread-safe (port() and url() may be read from
/// any thread). The port is picked with free_port() and kept, so stop() + start() simulates an
/// outage on the SAME port. Failure: the constructor, start() and create_database() throw
/// std::runtime_error with the reason and the server log. The destructor stops the server.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace ts::testsupport {

struct PostgresServerOptions {
  /// The database created at start-up (url() points at it).
  std::string database = "teslasync";
  /// false (tests): fsync and full_page_writes off, fast and not crash-safe. true (benchmarks):
  /// the server's durable defaults.
  bool durable = false;
  /// Extra `-c name=value` settings, e.g. "max_connections=20".
  std::vector<std::string> settings;
  std::chrono::milliseconds start_timeout{60'000};
};

class PostgresServer {
 public:
  /// initdb, start, create the database; returns once it accepts connections.
  explicit PostgresServer(PostgresServerOptions options = {});
  ~PostgresServer();

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  std::uint16_t port() const { return port_; }
  /// The postmaster's pid of the latest start (also the process group of every server
  /// process), e.g. to read their CPU time from /proc; -1 before the first start.
  int pid() const { return process_ ? process_->pid() : -1; }
  /// postgresql://postgres@127.0.0.1:<port>/<database> (the options' database by default).
  std::string url() const { return url(options_.database); }
  std::string url(std::string_view database) const;

  /// CREATE DATABASE `name` (letters, digits, '_'); returns its url().
  std::string create_database(std::string_view name);

  /// True while the server process is alive.
  bool running();
  /// Fast shutdown (SIGINT: clients are disconnected, a checkpoint is written), SIGKILL after
  /// 15 s. Idempotent.
  void stop();
  /// Starts it again on the same port and data; returns once it accepts connections. Throws
  /// std::logic_error if it is running.
  void start();

  /// The server log of every run so far.
  std::string log_text() const;
  const std::filesystem::path& dir() const { return dir_.path(); }
  /// Where initdb, postgres and createdb were found.
  const std::filesystem::path& bindir() const { return bindir_; }

  /// The directory with initdb and postgres (see above); throws if there is none.
  static std::filesystem::path find_bindir();

 private:
  /// argv prefixed with setpriv to the unprivileged user when running as root.
  std::vector<std::string> as_server_user(std::vector<std::string> argv) const;
  /// Starts the process and waits until it accepts. Returns false if it exited because the
  /// port was taken meanwhile; throws on any other failure.
  bool launch();

  PostgresServerOptions options_;
  TempDir dir_;
  std::filesystem::path bindir_;
  std::optional<std::pair<unsigned, unsigned>> run_as_;  // uid, gid when running as root
  std::uint16_t port_ = 0;
  std::optional<Process> process_;
};

}  // namespace ts::testsupport
