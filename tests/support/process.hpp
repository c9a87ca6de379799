#pragma once
/// A child process for integration tests: one of our binaries, a broker, a shell command.
///
/// Owner: the test or fixture that started it; not thread-safe (one thread calls its methods).
/// The child runs in its own process group with stdin from /dev/null and stdout/stderr written to
/// files, so a test can read what it printed after the fact. It gets SIGKILL if the thread that
/// started it exits (PR_SET_PDEATHSIG), so a crashed test binary leaves no server behind; start
/// long-lived processes from the test's main thread.
///
/// Failure: `start` throws std::runtime_error naming the program and the reason (not found, not
/// executable, bad working dir). Waits are bounded by their arguments. terminate() and the
/// destructor signal the whole process group, then reap the child, so neither zombies nor stray
/// grandchildren are left behind. When the child is reaped, a sanitizer report in what it wrote to
/// stderr is a test failure (check_sanitizer_report).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ts::testsupport {

struct ProcessOptions {
  /// argv[0] is the program: a path, or a bare name looked up in $PATH. Must not be empty.
  std::vector<std::string> argv;
  /// Added to the inherited environment; an existing variable of the same name is replaced.
  std::vector<std::pair<std::string, std::string>> env;
  /// Where <name>.stdout and <name>.stderr are written. Must exist.
  std::filesystem::path output_dir;
  /// Stem of the output files; empty: the file name of argv[0].
  std::string name;
  /// Append to the output files instead of truncating them (keeps the log across restarts).
  bool append_output = false;
  /// Working directory of the child; empty: inherit.
  std::filesystem::path working_dir;
};

class Process {
 public:
  /// Starts the program and returns once it has exec'd. Throws std::runtime_error (with the
  /// program path and strerror) if it cannot be started; nothing is left running then.
  static Process start(ProcessOptions options);

  /// Sends SIGKILL to the process group if the child has not been reaped yet, then reaps it
  /// (bounded: gives up after 10 s and says so on stderr).
  ~Process();

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  /// True until the child has exited (reaps it when it has).
  bool running();

  /// Sends `signal` to the child only (not its group). No-op once the child has been reaped.
  /// Throws std::system_error if kill(2) fails for another reason than the child being gone.
  void send_signal(int signal);

  /// SIGTERM to the process group, waits up to `grace`, then SIGKILL to the group, then reaps.
  /// Returns the exit status as `wait` does. Throws std::runtime_error if the child is still not
  /// reaped 10 s after SIGKILL (uninterruptible sleep).
  int terminate(std::chrono::milliseconds grace);

  /// Waits up to `timeout` for the child to exit and reaps it. Returns the exit code, or
  /// 128 + signal number if it was killed by a signal; std::nullopt if it is still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);

  /// The exit status once the child has been reaped, else std::nullopt. Does not wait. -1 if
  /// another part of the test process reaped it first.
  std::optional<int> exit_status() const { return exit_status_; }

  /// Everything the child wrote so far (reads the files; may be called while it runs).
  std::string stdout_text() const;
  std::string stderr_text() const;
  const std::filesystem::path& stdout_path() const { return stdout_path_; }
  const std::filesystem::path& stderr_path() const { return stderr_path_; }

 private:
  Process(pid_t pid, std::string name, std::filesystem::path stdout_path,
          std::filesystem::path stderr_path);

  /// Non-blocking check. `reap` false leaves an exited child as a zombie (WNOWAIT) so its
  /// process group id cannot be reused while we still signal the group.
  bool has_exited(bool reap);
  bool wait_exit(std::chrono::milliseconds timeout, bool reap);
  bool reaped_elsewhere();
  void kill_group(int signal) noexcept;
  /// A test failure (ADD_FAILURE) when this run's stderr holds an AddressSanitizer,
  /// LeakSanitizer or UndefinedBehaviorSanitizer report: under the asan preset our binaries run
  /// instrumented, and a report in a child must fail the test even when its exit status is not
  /// looked at.
  void check_sanitizer_report() const;

  pid_t pid_ = -1;  // -1 once moved from
  std::string name_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  std::optional<int> exit_status_;  // set once reaped
  std::uintmax_t stderr_from_ = 0;   // size of the stderr file before this run (append_output)
};

}  // namespace ts::testsupport
