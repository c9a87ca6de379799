#include "support/postgres_server.hpp"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "support/ports.hpp"
#include "support/wait_for.hpp"

namespace ts::testsupport {
namespace {

constexpr int kLaunchAttempts = 3;
constexpr std::chrono::milliseconds kToolTimeout{60'000};
constexpr std::chrono::milliseconds kFastShutdown{15'000};

bool executable(const std::filesystem::path& p) { return ::access(p.c_str(), X_OK) == 0; }

bool has_server(const std::filesystem::path& dir) {
  return executable(dir / "initdb") && executable(dir / "postgres");
}

/// The output of `pg_config --bindir`, or empty.
std::filesystem::path pg_config_bindir() {
  FILE* pipe = ::popen("pg_config --bindir 2>/dev/null", "r");
  if (pipe == nullptr) return {};
  std::array<char, 512> buf{};
  std::string out;
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe) != nullptr) out += buf.data();
  ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void chown_recursive(const std::filesystem::path& root, unsigned uid, unsigned gid) {
  if (::chown(root.c_str(), uid, gid) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "PostgresServer: chown " + root.string());
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (::lchown(entry.path().c_str(), uid, gid) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "PostgresServer: chown " + entry.path().string());
    }
  }
}

}  // namespace

std::filesystem::path PostgresServer::find_bindir() {
  if (const char* env = std::getenv("TS_PG_BINDIR"); env != nullptr && *env != '\0') {
    if (has_server(env)) return env;
    throw std::runtime_error(
        fmt::format("PostgresServer: TS_PG_BINDIR={} has no initdb/postgres", env));
  }
  if (std::filesystem::path dir = pg_config_bindir(); !dir.empty() && has_server(dir)) return dir;
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (has_server(entry.path() / "bin")) candidates.push_back(entry.path() / "bin");
  }
  if (!candidates.empty()) {
    // The newest major version: compare the version directory numerically.
    return *std::max_element(candidates.begin(), candidates.end(),
                             [](const auto& a, const auto& b) {
                               return std::atoi(a.parent_path().filename().c_str()) <
                                      std::atoi(b.parent_path().filename().c_str());
                             });
  }
  for (const char* dir : {"/usr/local/bin", "/usr/bin"}) {
    if (has_server(dir)) return dir;
  }
  throw std::runtime_error(
      "PostgresServer: no PostgreSQL server binaries (initdb, postgres) found via TS_PG_BINDIR, "
      "pg_config --bindir or /usr/lib/postgresql/*/bin; install the 'postgresql' package");
}

PostgresServer::PostgresServer(PostgresServerOptions options)
    : options_(std::move(options)), dir_("ts-postgres"), bindir_(find_bindir()) {
  if (::geteuid() == 0) {
    // initdb and postgres refuse to run as root.
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) pw = ::getpwnam("nobody");
    if (pw == nullptr) {
      throw std::runtime_error(
          "PostgresServer: running as root, and there is neither a "
          "'postgres' nor a 'nobody' user to run the server as");
    }
    run_as_.emplace(pw->pw_uid, pw->pw_gid);
    if (!executable("/usr/bin/setpriv") && !executable("/bin/setpriv")) {
      throw std::runtime_error("PostgresServer: running as root needs setpriv (util-linux)");
    }
    chown_recursive(dir_.path(), run_as_->first, run_as_->second);
  }
  ::chmod(dir_.path().c_str(), 0700);

  Process initdb =
      Process::start({.argv = as_server_user({(bindir_ / "initdb").string(), "-D",
                                              dir_.file("data").string(), "-U", "postgres", "-A",
                                              "trust", "-E", "UTF8", "--no-locale", "--no-sync"}),
                      .output_dir = dir_.path(),
                      .name = "initdb"});
  const std::optional<int> status = initdb.wait(kToolTimeout);
  if (status != 0) {
    throw std::runtime_error(fmt::format("PostgresServer: initdb failed ({}): {}{}",
                                         status ? std::to_string(*status) : "timed out",
                                         initdb.stdout_text(), initdb.stderr_text()));
  }
  bool launched = false;
  for (int attempt = 1; attempt <= kLaunchAttempts && !launched; ++attempt) {
    port_ = free_port();
    launched = launch();
  }
  if (!launched) {
    throw std::runtime_error(
        fmt::format("PostgresServer: ports taken {} times in a row during start-up; log:\n{}",
                    kLaunchAttempts, log_text()));
  }
  create_database(options_.database);
}

PostgresServer::~PostgresServer() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::cerr << "PostgresServer: " << e.what() << '\n';
  }
}

std::vector<std::string> PostgresServer::as_server_user(std::vector<std::string> argv) const {
  if (!run_as_) return argv;
  // The change of user clears the parent-death signal Process set; --pdeathsig sets it again.
  std::vector<std::string> out = {"setpriv",
                                  fmt::format("--reuid={}", run_as_->first),
                                  fmt::format("--regid={}", run_as_->second),
                                  "--clear-groups",
                                  "--pdeathsig",
                                  "SIGKILL",
                                  "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string PostgresServer::url(std::string_view database) const {
  return fmt::format("postgresql://postgres@127.0.0.1:{}/{}", port_, database);
}

bool PostgresServer::launch() {
  const std::size_t log_offset = log_text().size();
  std::vector<std::string> argv = {
      (bindir_ / "postgres").string(), "-D", dir_.file("data").string(), "-p",
      std::to_string(port_),           "-k", dir_.path().string(),       "-c",
      "listen_addresses=127.0.0.1",    "-c", "max_connections=100"};
  if (!options_.durable) {
    for (const char* s : {"fsync=off", "full_page_writes=off", "synchronous_commit=off"}) {
      argv.insert(argv.end(), {"-c", s});
    }
  }
  for (const std::string& s : options_.settings) argv.insert(argv.end(), {"-c", s});
  process_.emplace(Process::start({.argv = as_server_user(argv),
                                   .output_dir = dir_.path(),
                                   .name = "postgres",
                                   .append_output = true}));
  const auto ready = [&] {
    return log_text().find("database system is ready to accept connections", log_offset) !=
               std::string::npos &&
           tcp_connectable(port_);
  };
  const ::testing::AssertionResult ok =
      wait_for([&] { return !process_->running() || ready(); }, options_.start_timeout,
               fmt::format("postgres to accept on 127.0.0.1:{}", port_));
  if (!process_->running()) {
    const std::string log = log_text().substr(log_offset);
    if (log.find("Address already in use") != std::string::npos) return false;
    throw std::runtime_error(
        fmt::format("PostgresServer: postgres exited with status {} during start-up; log:\n{}",
                    *process_->exit_status(), log));
  }
  if (!ok) {
    process_->terminate(kFastShutdown);
    throw std::runtime_error(
        fmt::format("PostgresServer: {}; log:\n{}", ok.message(), log_text().substr(log_offset)));
  }
  return true;
}

std::string PostgresServer::create_database(std::string_view name) {
  const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!valid) {
    throw std::invalid_argument(fmt::format("PostgresServer: bad database name '{}'", name));
  }
  Process createdb =
      Process::start({.argv = {(bindir_ / "createdb").string(), "-h", "127.0.0.1", "-p",
                               std::to_string(port_), "-U", "postgres", std::string(name)},
                      .output_dir = dir_.path(),
                      .name = "createdb"});
  const std::optional<int> status = createdb.wait(kToolTimeout);
  if (status != 0) {
    throw std::runtime_error(fmt::format("PostgresServer: createdb {} failed ({}): {}", name,
                                         status ? std::to_string(*status) : "timed out",
                                         createdb.stderr_text()));
  }
  return url(name);
}

bool PostgresServer::running() { return process_ && process_->running(); }

void PostgresServer::stop() {
  if (!process_ || !process_->running()) return;
  process_->send_signal(SIGINT);  // fast shutdown
  if (!process_->wait(kFastShutdown)) process_->terminate(std::chrono::milliseconds(1'000));
}

void PostgresServer::start() {
  if (running()) throw std::logic_error("PostgresServer::start: already running");
  if (!launch()) {
    throw std::runtime_error(fmt::format(
        "PostgresServer: restart on port {} failed: the port was taken meanwhile; log:\n{}", port_,
        log_text()));
  }
}

std::string PostgresServer::log_text() const {
  return read_file_text(dir_.file("postgres.stderr"));
}

}  // namespace ts::testsupport
