#include "support/process.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "support/temp_dir.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, not always declared

namespace ts::testsupport {
namespace {

constexpr std::chrono::seconds kReapAfterKill{10};

// What the child reports through the exec-status pipe when a step before exec fails.
enum class ChildStage : int { Dup = 1, Chdir = 2, Exec = 3 };
struct ChildError {
  ChildStage stage;
  int error;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;  // not reachable for a reaped child
}

std::string resolve_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const std::size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  throw std::runtime_error(fmt::format("Process: cannot start '{}': not found in PATH", program));
}

Fd open_output(const std::filesystem::path& path, bool append) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  Fd fd(::open(path.c_str(), flags, 0644));
  if (fd.get() < 0) {
    throw std::runtime_error(fmt::format("Process: cannot open output file {}: {}", path.string(),
                                         std::strerror(errno)));
  }
  return fd;
}

std::vector<std::string> build_environment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view kv(*entry);
    std::string_view key = kv.substr(0, kv.find('='));
    const bool overridden = std::any_of(extra.begin(), extra.end(),
                                        [&](const auto& pair) { return pair.first == key; });
    if (!overridden) env.emplace_back(kv);
  }
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Runs in the forked child of a possibly multi-threaded parent: async-signal-safe calls only.
[[noreturn]] void exec_child(pid_t parent, int stdin_fd, int stdout_fd, int stderr_fd,
                             int status_fd, const char* working_dir, const char* program,
                             char* const* argv, char* const* envp) {
  auto fail = [status_fd](ChildStage stage) {
    const ChildError report{stage, errno};
    [[maybe_unused]] ssize_t n = ::write(status_fd, &report, sizeof report);
    ::_exit(127);
  };
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  if (::dup2(stdin_fd, STDIN_FILENO) < 0 || ::dup2(stdout_fd, STDOUT_FILENO) < 0 ||
      ::dup2(stderr_fd, STDERR_FILENO) < 0) {
    fail(ChildStage::Dup);
  }
  // Inherited descriptors (the test's sockets, other children's pipes) must not leak into the
  // program; CLOEXEC keeps status_fd open until exec succeeds.
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  if (working_dir != nullptr && ::chdir(working_dir) != 0) fail(ChildStage::Chdir);
  ::execve(program, argv, envp);
  fail(ChildStage::Exec);
  ::_exit(127);
}

}  // namespace

Process Process::start(ProcessOptions options) {
  if (options.argv.empty()) throw std::invalid_argument("Process: argv is empty");
  const std::string program = resolve_program(options.argv.front());
  std::string name = options.name.empty()
                         ? std::filesystem::path(options.argv.front()).filename().string()
                         : options.name;
  std::filesystem::path stdout_path = options.output_dir / (name + ".stdout");
  std::filesystem::path stderr_path = options.output_dir / (name + ".stderr");

  // Everything the child needs is prepared here: after fork it may not allocate.
  Fd out = open_output(stdout_path, options.append_output);
  Fd err = open_output(stderr_path, options.append_output);
  struct stat before {};
  const std::uintmax_t stderr_from = ::fstat(err.get(), &before) == 0 ? before.st_size : 0;
  Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.get() < 0) throw std::system_error(errno, std::generic_category(), "open /dev/null");
  std::vector<std::string> args = options.argv;
  std::vector<char*> argv = c_strings(args);
  std::vector<std::string> env = build_environment(options.env);
  std::vector<char*> envp = c_strings(env);
  const std::string working_dir = options.working_dir.string();

  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "Process: pipe2");
  }
  Fd status_read(status_pipe[0]);
  Fd status_write(status_pipe[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "Process: fork");
  if (pid == 0) {
    exec_child(parent, null_in.get(), out.get(), err.get(), status_write.get(),
               working_dir.empty() ? nullptr : working_dir.c_str(), program.c_str(), argv.data(),
               envp.data());
  }
  status_write.reset();

  // EOF means exec succeeded (CLOEXEC closed the pipe); a ChildError means it did not.
  ChildError report{};
  ssize_t n = 0;
  do {
    n = ::read(status_read.get(), &report, sizeof report);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    Process p(pid, std::move(name), std::move(stdout_path), std::move(stderr_path));
    p.stderr_from_ = stderr_from;
    return p;
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof report)) {
    throw std::runtime_error(
        fmt::format("Process: cannot start '{}': child failed before exec", program));
  }
  const char* step = report.stage == ChildStage::Chdir ? "cannot change to working dir"
                     : report.stage == ChildStage::Dup ? "cannot redirect output of"
                                                       : "cannot exec";
  const std::string target = report.stage == ChildStage::Chdir ? working_dir : program;
  throw std::runtime_error(
      fmt::format("Process '{}': {} '{}': {}", name, step, target, std::strerror(report.error)));
}

Process::Process(pid_t pid, std::string name, std::filesystem::path stdout_path,
                 std::filesystem::path stderr_path)
    : pid_(pid),
      name_(std::move(name)),
      stdout_path_(std::move(stdout_path)),
      stderr_path_(std::move(stderr_path)) {}

Process::~Process() {
  if (pid_ <= 0 || exit_status_) return;
  kill_group(SIGKILL);
  try {
    if (!wait_exit(kReapAfterKill, true)) {
      std::cerr << "Process '" << name_ << "' (pid " << pid_ << ") survived SIGKILL for "
                << kReapAfterKill.count() << " s; leaving it\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "Process '" << name_ << "': " << e.what() << '\n';
  }
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      name_(std::move(other.name_)),
      stdout_path_(std::move(other.stdout_path_)),
      stderr_path_(std::move(other.stderr_path_)),
      exit_status_(std::exchange(other.exit_status_, std::nullopt)),
      stderr_from_(other.stderr_from_) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process old(std::move(*this));  // kills and reaps what this held
    pid_ = std::exchange(other.pid_, -1);
    name_ = std::move(other.name_);
    stdout_path_ = std::move(other.stdout_path_);
    stderr_path_ = std::move(other.stderr_path_);
    exit_status_ = std::exchange(other.exit_status_, std::nullopt);
    stderr_from_ = other.stderr_from_;
  }
  return *this;
}

bool Process::has_exited(bool reap) {
  if (exit_status_) return true;
  if (pid_ <= 0) throw std::logic_error("Process: used after move");
  if (!reap) {
    siginfo_t info{};
    int rc = 0;
    do {
      rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return reaped_elsewhere();
    return info.si_pid == pid_;
  }
  int status = 0;
  pid_t rc = 0;
  do {
    rc = ::waitpid(pid_, &status, WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return reaped_elsewhere();
  if (rc == 0) return false;
  exit_status_ = decode_status(status);
  check_sanitizer_report();
  return true;
}

void Process::check_sanitizer_report() const {
  // What this run of the child wrote (the file may hold earlier runs' output: append_output).
  const std::string text = read_file_text(stderr_path_);
  const std::string_view run = std::string_view(text).substr(std::min<std::size_t>(stderr_from_, text.size()));
  for (std::string_view marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: "}) {
    const auto at = run.find(marker);
    if (at == std::string_view::npos) continue;
    const auto from = run.rfind('\n', at);
    ADD_FAILURE() << "Process '" << name_ << "' (pid " << pid_ << ") reported a sanitizer error:\n"
                  << run.substr(from == std::string_view::npos ? 0 : from + 1, 4000);
    return;
  }
}

bool Process::reaped_elsewhere() {
  // ECHILD: someone else reaped it (SIGCHLD ignored, or waitpid(-1) elsewhere in the test).
  if (errno != ECHILD) throw std::system_error(errno, std::generic_category(), "Process: wait");
  std::cerr << "Process '" << name_ << "' (pid " << pid_ << ") was reaped by someone else\n";
  exit_status_ = -1;
  return true;
}

bool Process::wait_exit(std::chrono::milliseconds timeout, bool reap) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point end = Clock::now() + timeout;
  std::chrono::milliseconds delay{1};
  while (true) {
    if (has_exited(reap)) return true;
    const Clock::time_point now = Clock::now();
    if (now >= end) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(delay, end - now));
    delay = std::min(delay * 2, std::chrono::milliseconds(20));
  }
}

void Process::kill_group(int signal) noexcept {
  // Only called while the child is not reaped: its pid is then still ours, and so is the group.
  if (::kill(-pid_, signal) != 0) ::kill(pid_, signal);
}

bool Process::running() { return !has_exited(true); }

void Process::send_signal(int signal) {
  if (pid_ <= 0) throw std::logic_error("Process: used after move");
  if (exit_status_) return;
  if (::kill(pid_, signal) != 0 && errno != ESRCH) {
    throw std::system_error(errno, std::generic_category(),
                            fmt::format("Process '{}': kill({}, {})", name_, pid_, signal));
  }
}

int Process::terminate(std::chrono::milliseconds grace) {
  if (exit_status_) return *exit_status_;
  kill_group(SIGTERM);
  wait_exit(grace, false);
  // Also reaches descendants left in the group after the leader exited.
  kill_group(SIGKILL);
  if (!wait_exit(kReapAfterKill, true)) {
    throw std::runtime_error(fmt::format("Process '{}' (pid {}) survived SIGKILL for {} s", name_,
                                         pid_, kReapAfterKill.count()));
  }
  return *exit_status_;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (!wait_exit(timeout, true)) return std::nullopt;
  return exit_status_;
}

std::string Process::stdout_text() const { return read_file_text(stdout_path_); }

std::string Process::stderr_text() const { return read_file_text(stderr_path_); }

}  // namespace ts::testsupport
