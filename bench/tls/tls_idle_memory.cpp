// Server-side memory of idle mTLS WebSocket connections: websocket::stream<ts::runtime::TlsStream>
// versus websocket::stream<beast::ssl_stream<beast::tcp_stream>> (Asio's ssl::stream).
//
// Not a timed benchmark. The server runs in a forked child so that its memory is not mixed with
// the clients'; the parent opens N WebSocket connections to it (Beast over Asio's ssl::stream,
// with a vehicle-style client certificate), leaves them idle with a read pending on both ends, as
// telemetry-server does between vehicle messages, and asks the child for its numbers at 0, N/2
// and N connections. Per connection = (at N - at N/2) / (N/2): one-time costs drop out.
//
//   tls_idle_memory [--connections N] [--stack ours|asio|both] [--tls 1.2|1.3] [--free-buffers]
//                   [--trace] [--no-client-cert] [--take-over]
//
// --free-buffers calls SSL_free_buffers after the upgrade; --trace prints, for one connection,
// the OpenSSL allocations still live when it idles, by OpenSSL source line; --no-client-cert
// stops requesting the vehicle certificate (an experiment: the server requires it in production);
// --take-over hands each connection to runtime::Tls13Records after the handshake, as
// telemetry-server does by default (tls.native_record_layer).
//
// Numbers reported by the child (after malloc_trim(0), so freed memory does not count):
//   rss      VmRSS from /proc/self/statm
//   heap     bytes malloc has handed out and not got back (mallinfo2: uordblks + hblkhd)
//   openssl  bytes OpenSSL holds (CRYPTO_set_mem_functions counter, malloc_usable_size)
// plus, for the first connection alone, OpenSSL bytes at each stage of its life.
#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "pki/certificate.hpp"
#include "pki/openssl.hpp"
#include "pki/tls_context.hpp"
#include "runtime/tls_stream.hpp"

namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

// ---- OpenSSL's bytes ----------------------------------------------------------------------------

std::atomic<long long> g_openssl_bytes{0};
bool g_openssl_counted = false;

// --trace: OpenSSL allocations made while `g_tracing` is set and still live, by source line
// (OpenSSL passes __FILE__/__LINE__ to the allocator). Single-threaded child only.
struct Allocation {
  std::size_t bytes;
  const char* file;
  int line;
};
bool g_tracing = false;
std::unordered_map<void*, Allocation>* g_traced = nullptr;

bool g_heap_busy = false;  // inside a recorder: its own allocations are not recorded

void trace_add(void* p, const char* file, int line) {
  if (!g_tracing || g_traced == nullptr) return;
  g_heap_busy = true;
  (*g_traced)[p] = {malloc_usable_size(p), file, line};
  g_heap_busy = false;
}
void trace_remove(void* p) {
  if (g_traced == nullptr) return;
  g_heap_busy = true;
  g_traced->erase(p);
  g_heap_busy = false;
}

bool g_in_openssl = false;  // the heap trace below leaves OpenSSL's allocations to this one

void* counted_malloc(size_t n, const char* file, int line) {
  g_in_openssl = true;
  void* p = std::malloc(n);
  g_in_openssl = false;
  if (p != nullptr) {
    g_openssl_bytes += static_cast<long long>(malloc_usable_size(p));
    trace_add(p, file, line);
  }
  return p;
}

void* counted_realloc(void* p, size_t n, const char* file, int line) {
  const long long before = p != nullptr ? static_cast<long long>(malloc_usable_size(p)) : 0;
  const bool was_traced = p != nullptr && g_traced != nullptr && g_traced->count(p) != 0;
  if (was_traced) trace_remove(p);
  g_in_openssl = true;
  void* q = std::realloc(p, n);
  g_in_openssl = false;
  if (q != nullptr) {
    g_openssl_bytes += static_cast<long long>(malloc_usable_size(q)) - before;
    if (was_traced || g_tracing) {
      g_heap_busy = true;
      (*g_traced)[q] = {malloc_usable_size(q), file, line};
      g_heap_busy = false;
    }
  } else if (n == 0) {
    g_openssl_bytes -= before;
  }
  return q;
}

void counted_free(void* p, const char*, int) {
  if (p == nullptr) return;
  g_openssl_bytes -= static_cast<long long>(malloc_usable_size(p));
  trace_remove(p);
  std::free(p);
}

// --trace, everything else: the malloc family is interposed (glibc's __libc_* do the work) and
// allocations made while tracing are kept with their call stacks, to be named by addr2line.
struct HeapAllocation {
  std::size_t bytes;
  int depth;
  void* frames[12];
};
std::unordered_map<void*, HeapAllocation>* g_heap_traced = nullptr;

void heap_record(void* p) {
  if (!g_tracing || g_in_openssl || g_heap_busy || p == nullptr || g_heap_traced == nullptr) return;
  g_heap_busy = true;
  HeapAllocation a{};
  a.bytes = malloc_usable_size(p);
  a.depth = backtrace(a.frames, 12);
  (*g_heap_traced)[p] = a;
  g_heap_busy = false;
}

void heap_forget(void* p) {
  if (g_heap_busy || p == nullptr || g_heap_traced == nullptr) return;
  g_heap_busy = true;
  g_heap_traced->erase(p);
  g_heap_busy = false;
}

// Function names (with inlining) of the executable's return addresses, via addr2line.
std::map<void*, std::string> symbolize(const std::vector<void*>& addresses) {
  std::map<void*, std::string> names;
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return names;
  exe[len] = '\0';
  std::vector<std::pair<void*, std::uintptr_t>> ours;
  for (void* a : addresses) {
    Dl_info info{};
    if (dladdr(a, &info) == 0 || info.dli_fname == nullptr) continue;
    if (std::string(info.dli_fname).find("tls_idle_memory") == std::string::npos) continue;
    ours.emplace_back(a, reinterpret_cast<std::uintptr_t>(a) -
                             reinterpret_cast<std::uintptr_t>(info.dli_fbase) - 1);
  }
  for (const auto& [a, offset] : ours) {
    char command[4200];
    std::snprintf(command, sizeof command, "addr2line -C -f -e '%s' 0x%lx", exe,
                  static_cast<unsigned long>(offset));
    FILE* out = popen(command, "r");
    if (out == nullptr) continue;
    char fn[4096] = "";
    if (std::fgets(fn, sizeof fn, out) != nullptr) {
      std::string name(fn);
      while (!name.empty() && name.back() == '\n') name.pop_back();
      // Keep it readable: drop template arguments and parameter lists.
      std::string shortened;
      int depth = 0;
      for (char c : name) {
        if (c == '<' || c == '(') ++depth;
        if (depth == 0) shortened += c;
        if ((c == '>' || c == ')') && depth > 0) --depth;
      }
      names[a] = shortened;
    }
    pclose(out);
  }
  return names;
}

// The traced non-OpenSSL allocations still live, grouped by the innermost three frames of ours.
std::string heap_report() {
  if (g_heap_traced == nullptr) return "";
  g_heap_busy = true;
  std::vector<void*> addresses;
  for (const auto& [p, a] : *g_heap_traced) {
    for (int i = 0; i < a.depth; ++i) addresses.push_back(a.frames[i]);
  }
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  const std::map<void*, std::string> names = symbolize(addresses);
  std::map<std::string, std::pair<long long, int>> groups;
  long long total = 0;
  for (const auto& [p, a] : *g_heap_traced) {
    std::string where;
    int kept = 0;
    for (int i = 0; i < a.depth && kept < 3; ++i) {
      auto it = names.find(a.frames[i]);
      if (it == names.end()) continue;
      const std::string& n = it->second;
      if (n.find("heap_record") != std::string::npos || n == "malloc" || n == "realloc" ||
          n == "calloc" || n == "aligned_alloc" || n == "posix_memalign") {
        continue;
      }
      where += (kept++ == 0 ? "" : " <- ") + n;
    }
    auto& [bytes, count] = groups[std::to_string(a.bytes) + " B each: " + where];
    bytes += static_cast<long long>(a.bytes);
    ++count;
    total += static_cast<long long>(a.bytes);
  }
  std::vector<std::pair<long long, std::string>> rows;
  for (const auto& [where, v] : groups) {
    rows.emplace_back(v.first, std::to_string(v.second) + "x " + where);
  }
  std::sort(rows.rbegin(), rows.rend());
  std::ostringstream out;
  out << "  other allocations of one connection still live when idle: " << total
      << " B (usable size), by call site:\n";
  for (const auto& [bytes, where] : rows) out << "    " << bytes << "\t" << where << "\n";
  g_heap_busy = false;
  return out.str();
}

// The traced allocations still live, grouped by source line, largest first.
std::string traced_report() {
  if (g_traced == nullptr) return "";
  std::map<std::string, std::pair<long long, int>> by_line;
  long long total = 0;
  for (const auto& [p, a] : *g_traced) {
    auto& [bytes, count] =
        by_line[std::string(a.file != nullptr ? a.file : "?") + ":" + std::to_string(a.line)];
    bytes += static_cast<long long>(a.bytes);
    ++count;
    total += static_cast<long long>(a.bytes);
  }
  std::vector<std::pair<long long, std::string>> rows;
  for (const auto& [where, v] : by_line) {
    rows.emplace_back(v.first, where + " (" + std::to_string(v.second) + "x)");
  }
  std::sort(rows.rbegin(), rows.rend());
  std::ostringstream out;
  out << "  OpenSSL allocations of one connection still live when idle: " << total
      << " B (usable size), by allocation site:\n";
  for (const auto& [bytes, where] : rows) out << "    " << bytes << "\t" << where << "\n";
  return out.str();
}

// Must run before OpenSSL's first allocation, which Asio's static openssl_init makes: a
// constructor with a priority runs before the C++ static initializers of this program.
__attribute__((constructor(101))) void count_openssl_allocations() {
  g_openssl_counted = CRYPTO_set_mem_functions(counted_malloc, counted_realloc, counted_free) == 1;
}

// ---- options and certificates -------------------------------------------------------------------

enum class Stack { ours, asio };
const char* name(Stack s) { return s == Stack::ours ? "TlsStream" : "beast::ssl_stream"; }

struct Options {
  int connections = 2000;
  std::vector<Stack> stacks = {Stack::ours, Stack::asio};
  int max_tls_version = 0;  // 0: TLS 1.3 (the highest both sides have)
  bool free_buffers = false;
  bool trace = false;
  bool no_client_cert = false;  // experiment: how much of it is the vehicle's certificate
  bool take_over = false;       // TlsStream::take_over_records() after the handshake
};

struct Files {
  std::filesystem::path dir;
  std::string file(const char* name) const { return (dir / name).string(); }
};

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// A throwaway CA, a server certificate for 127.0.0.1 and one vehicle-like client certificate.
Files make_certificates() {
  Files f{std::filesystem::temp_directory_path() / ("tls_idle_memory_" + std::to_string(getpid()))};
  std::filesystem::create_directories(f.dir);
  const auto now = std::chrono::system_clock::now();
  ts::pki::KeyGenerator keys;
  auto ca_key = keys.generate();
  auto ca = ts::pki::issue_certificate({.subject = {{"O", "TeslaSync bench"}, {"CN", "bench CA"}},
                                        .is_ca = true,
                                        .not_before = now - 1h,
                                        .not_after = now + 24h},
                                       ca_key.get(), nullptr, ca_key.get());
  auto server_key = keys.generate();
  auto server = ts::pki::issue_certificate({.subject = {{"CN", "bench server"}},
                                            .ext_key_usage = {std::string(ts::pki::kOidServerAuth)},
                                            .ip_addresses = {"127.0.0.1"},
                                            .not_before = now - 1h,
                                            .not_after = now + 24h},
                                           server_key.get(), ca.get(), ca_key.get());
  auto client_key = keys.generate();
  auto client =
      ts::pki::issue_certificate({.subject = {{"CN", "5YJ3E1EA7JF000000"}},
                                  .ext_key_usage = {std::string(ts::pki::kOidClientAuth),
                                                    std::string(ts::pki::kOidTeslaVehicleProd)},
                                  .not_before = now - 1h,
                                  .not_after = now + 24h},
                                 client_key.get(), ca.get(), ca_key.get());
  write_text(f.dir / "ca.pem", ts::pki::to_pem(ca.get()));
  write_text(f.dir / "server.pem", ts::pki::to_pem(server.get()));
  write_text(f.dir / "server.key", ts::pki::to_pem(server_key.get()));
  write_text(f.dir / "client.pem", ts::pki::to_pem(client.get()));
  write_text(f.dir / "client.key", ts::pki::to_pem(client_key.get()));
  return f;
}

// ---- the server (child process) -----------------------------------------------------------------

struct Usage {
  long long rss = 0;
  long long heap = 0;
  long long openssl = 0;
};

Usage usage_now() {
  malloc_trim(0);
  Usage u;
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  u.rss = static_cast<long long>(pages_resident) * sysconf(_SC_PAGESIZE);
  const struct mallinfo2 mi = mallinfo2();
  u.heap = static_cast<long long>(mi.uordblks + mi.hblkhd);
  u.openssl = g_openssl_bytes.load();
  return u;
}

// OpenSSL bytes at each stage of the first connection (nothing else runs meanwhile).
struct Probe {
  bool done = false;
  long long before = 0, after_new = 0, after_handshake = 0, after_accept = 0, after_free = 0;
  long long x509_bytes = 0;  // one decoded certificate like the vehicle's, extensions cached
  int version = 0;
};

// What one more decoded copy of `cert` costs OpenSSL, as verification leaves it (with the
// extension cache filled by X509_check_purpose).
long long x509_cost(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return -1;
  const long long before = g_openssl_bytes.load();
  const unsigned char* p = der;
  X509* copy = d2i_X509(nullptr, &p, len);
  X509_check_purpose(copy, -1, 0);
  const long long cost = g_openssl_bytes.load() - before;
  X509_free(copy);
  OPENSSL_free(der);
  return cost;
}

struct Server {
  Options options;
  ssl::context* context = nullptr;
  Stack stack = Stack::ours;
  long established = 0;
  Probe probe;
  long sessions = 0;

  // The probe is the *second* connection: the first one pays OpenSSL's one-time costs (fetched
  // algorithms, method caches), which are no per-connection memory.
  bool start_probe() {
    if (sessions++ != 1) return false;
    if (options.trace) {
      g_traced = new std::unordered_map<void*, Allocation>();
      g_heap_traced = new std::unordered_map<void*, HeapAllocation>();
      g_tracing = true;
    }
    return true;
  }
};

asio::awaitable<void> idle_read(Server& server, auto& ws, bool first) {
  ++server.established;
  beast::flat_buffer frame;  // as vehicle_server's session: a read pending into a flat_buffer
  error_code ec;
  for (;;) {
    if (first) {
      // The read below starts (and, idle, stops at WANT_READ) inside this co_await; the probe
      // ends when the next handler of this thread runs.
      asio::post(ws.get_executor(), [&server] {
        server.probe.done = true;
        g_tracing = false;
      });
      first = false;
    }
    co_await ws.async_read(frame, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    frame.consume(frame.size());
  }
  --server.established;
}

asio::awaitable<void> session_ours(Server& server, tcp::socket socket) {
  const bool first = server.start_probe();
  if (first) server.probe.before = g_openssl_bytes.load();
  ts::runtime::TlsStream tls(std::move(socket), server.context->native_handle(),
                             ts::runtime::TlsStream::Role::server);
  if (first) server.probe.after_new = g_openssl_bytes.load();
  error_code ec;
  co_await tls.async_handshake(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    std::fprintf(stderr, "server: handshake: %s\n", ec.message().c_str());
    co_return;
  }
  if (first) {
    server.probe.after_handshake = g_openssl_bytes.load();
    server.probe.version = SSL_version(tls.native_handle());
    std::fprintf(stderr, "server: probe connection: %s, %s\n", SSL_get_version(tls.native_handle()),
                 SSL_get_cipher_name(tls.native_handle()));
    server.probe.x509_bytes = x509_cost(SSL_get0_peer_certificate(tls.native_handle()));
  }
  if (server.options.take_over && !tls.take_over_records()) {
    std::fprintf(stderr, "server: connection not taken over (TLS 1.2?)\n");
  }
  websocket::stream<ts::runtime::TlsStream> ws(std::move(tls));
  ws.binary(true);
  ws.auto_fragment(false);
  co_await ws.async_accept(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  if (first) server.probe.after_accept = g_openssl_bytes.load();
  if (server.options.free_buffers && ws.next_layer().native_handle() != nullptr)
    SSL_free_buffers(ws.next_layer().native_handle());
  if (first) server.probe.after_free = g_openssl_bytes.load();
  co_await idle_read(server, ws, first);
}

asio::awaitable<void> session_asio(Server& server, tcp::socket socket) {
  const bool first = server.start_probe();
  if (first) server.probe.before = g_openssl_bytes.load();
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(std::move(socket), *server.context);
  if (first) server.probe.after_new = g_openssl_bytes.load();
  error_code ec;
  co_await ws.next_layer().async_handshake(ssl::stream_base::server,
                                           asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    std::fprintf(stderr, "server: handshake: %s\n", ec.message().c_str());
    co_return;
  }
  SSL* ssl = ws.next_layer().native_handle();
  if (first) {
    server.probe.after_handshake = g_openssl_bytes.load();
    server.probe.version = SSL_version(ssl);
    std::fprintf(stderr, "server: probe connection: %s, %s\n", SSL_get_version(ssl),
                 SSL_get_cipher_name(ssl));
    server.probe.x509_bytes = x509_cost(SSL_get0_peer_certificate(ssl));
  }
  ws.binary(true);
  ws.auto_fragment(false);
  co_await ws.async_accept(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  if (first) server.probe.after_accept = g_openssl_bytes.load();
  if (server.options.free_buffers) SSL_free_buffers(ssl);
  if (first) server.probe.after_free = g_openssl_bytes.load();
  co_await idle_read(server, ws, first);
}

asio::awaitable<void> accept_loop(Server& server, tcp::acceptor& acceptor) {
  for (;;) {
    error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      std::fprintf(stderr, "server: accept: %s\n", ec.message().c_str());
      co_return;
    }
    if (server.stack == Stack::ours) {
      asio::co_spawn(acceptor.get_executor(), session_ours(server, std::move(socket)),
                     asio::detached);
    } else {
      asio::co_spawn(acceptor.get_executor(), session_asio(server, std::move(socket)),
                     asio::detached);
    }
  }
}

// Commands on `commands` (one byte): 's' usage, 'p' probe, 'q' quit. Replies are one line each.
asio::awaitable<void> control_loop(Server& server, asio::posix::stream_descriptor& commands,
                                   asio::posix::stream_descriptor& replies, asio::io_context& io) {
  for (;;) {
    char command = 0;
    error_code ec;
    co_await asio::async_read(commands, asio::buffer(&command, 1),
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec || command == 'q') break;
    std::ostringstream line;
    if (command == 's') {
      const Usage u = usage_now();
      line << server.established << ' ' << u.rss << ' ' << u.heap << ' ' << u.openssl << '\n';
    } else if (command == 't') {
      line << traced_report() << heap_report() << "end\n";
    } else {
      const Probe& p = server.probe;
      line << p.before << ' ' << p.after_new << ' ' << p.after_handshake << ' ' << p.after_accept
           << ' ' << p.after_free << ' ' << p.x509_bytes << ' ' << p.version << '\n';
    }
    const std::string text = line.str();
    co_await asio::async_write(replies, asio::buffer(text),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  io.stop();
}

[[noreturn]] void run_server(Stack stack, const Options& options, const Files& files,
                             int command_fd, int reply_fd) {
  try {
    ts::pki::VehicleServerContext context = ts::pki::make_vehicle_server_context(
        {files.file("server.pem"), files.file("server.key"), files.file("ca.pem")});
    if (options.no_client_cert)
      SSL_CTX_set_verify(context.context.native_handle(), SSL_VERIFY_NONE, nullptr);
    if (options.take_over) ts::runtime::enable_tls13_record_takeover(context.context.native_handle());
    asio::io_context io(1);
    tcp::acceptor acceptor(io);
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(endpoint.protocol());
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    Server server{options, &context.context, stack, 0, {}};
    asio::posix::stream_descriptor commands(io, command_fd);
    asio::posix::stream_descriptor replies(io, reply_fd);
    const std::string port = std::to_string(acceptor.local_endpoint().port()) + "\n";
    asio::write(replies, asio::buffer(port));
    asio::co_spawn(io, accept_loop(server, acceptor), asio::detached);
    asio::co_spawn(io, control_loop(server, commands, replies, io), asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "server: %s\n", e.what());
    std::_Exit(1);
  }
  std::_Exit(0);
}

// ---- the clients (parent process) ---------------------------------------------------------------

class Child {
 public:
  Child(Stack stack, const Options& options, const Files& files) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      close(to_child[1]);
      close(from_child[0]);
      run_server(stack, options, files, to_child[0], from_child[1]);
    }
    close(to_child[0]);
    close(from_child[1]);
    to_ = to_child[1];
    from_ = fdopen(from_child[0], "r");
    port_ = static_cast<unsigned short>(std::stoi(line()));
  }
  ~Child() {
    if (to_ >= 0) {
      (void)::write(to_, "q", 1);
      close(to_);
    }
    if (from_ != nullptr) std::fclose(from_);
    int status = 0;
    if (pid_ > 0) waitpid(pid_, &status, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  unsigned short port() const { return port_; }

  std::vector<long long> ask(char command) {
    if (::write(to_, &command, 1) != 1) throw std::runtime_error("child is gone");
    if (command == 't') {
      std::string text;
      for (std::string l = line(); l != "end\n"; l = line()) text += l;
      std::fputs(text.c_str(), stdout);
      return {};
    }
    std::istringstream in(line());
    std::vector<long long> values;
    for (long long v = 0; in >> v;) values.push_back(v);
    return values;
  }

 private:
  std::string line() {
    char buf[512];
    if (std::fgets(buf, sizeof buf, from_) == nullptr) throw std::runtime_error("child exited");
    return buf;
  }
  pid_t pid_ = -1;
  int to_ = -1;
  FILE* from_ = nullptr;
  unsigned short port_ = 0;
};

using ClientWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

struct Clients {
  asio::io_context& io;
  ssl::context& context;
  unsigned short port;
  std::vector<std::unique_ptr<ClientWs>> streams;
  int in_flight = 0;
  int connected = 0;
  int failed = 0;
  int alive = 0;  // connect_one coroutines not finished (they refer to their stream)

  asio::awaitable<void> connect_one(ClientWs& ws) {
    ++alive;
    co_await connect_and_idle(ws);
    --alive;
  }

  asio::awaitable<void> connect_and_idle(ClientWs& ws) {
    error_code ec;
    auto use_ec = asio::redirect_error(asio::use_awaitable, ec);
    co_await beast::get_lowest_layer(ws).async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), use_ec);
    if (!ec) co_await ws.next_layer().async_handshake(ssl::stream_base::client, use_ec);
    if (!ec) co_await ws.async_handshake("127.0.0.1", "/", use_ec);
    --in_flight;
    if (ec) {
      ++failed;
      std::fprintf(stderr, "client: %s\n", ec.message().c_str());
      co_return;
    }
    ++connected;
    beast::flat_buffer buffer;
    co_await ws.async_read(buffer, use_ec);  // idle until the end
  }

  // Opens `count` more connections, at most 64 handshakes at a time.
  void open(int count) {
    const int target = connected + failed + count;
    asio::co_spawn(
        io,
        [this, count]() -> asio::awaitable<void> {
          asio::steady_timer pause(io);
          for (int i = 0; i < count; ++i) {
            while (in_flight >= 64) {
              pause.expires_after(1ms);
              co_await pause.async_wait(asio::use_awaitable);
            }
            streams.push_back(std::make_unique<ClientWs>(io, context));
            ++in_flight;
            asio::co_spawn(io, connect_one(*streams.back()), asio::detached);
          }
        },
        asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + 300s;
    while (connected + failed < target && std::chrono::steady_clock::now() < deadline) {
      io.run_for(20ms);
    }
    if (connected + failed < target) throw std::runtime_error("clients did not connect in 300 s");
    if (failed > 0) throw std::runtime_error(std::to_string(failed) + " connections failed");
  }

  // Closes every connection (TCP only: the server's reads fail and its sessions end).
  void close_all() {
    for (auto& ws : streams) beast::get_lowest_layer(*ws).socket().close();
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (alive > 0 && std::chrono::steady_clock::now() < deadline) io.run_for(20ms);
    if (alive > 0) throw std::runtime_error("client coroutines did not finish after close");
    streams.clear();
    connected = 0;
  }
};

// Waits until the child reports `n` sessions, then returns its usage line.
std::vector<long long> settle(Child& child, asio::io_context& io, long n) {
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  for (;;) {
    std::vector<long long> s = child.ask('s');
    if (s.size() == 4 && s[0] == n) return s;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("server reports " +
                               (s.empty() ? std::string("nothing") : std::to_string(s[0])) +
                               " sessions, expected " + std::to_string(n));
    }
    io.run_for(50ms);
  }
}

struct Result {
  Stack stack;
  std::vector<long long> zero, half, full, probe;
};

Result measure(Stack stack, const Options& options, const Files& files) {
  Child child(stack, options, files);
  asio::io_context io(1);
  auto work = asio::make_work_guard(io);  // run_for() must not stop when nothing is pending
  ssl::context context = ts::pki::make_vehicle_client_context(
      files.file("ca.pem"), files.file("client.pem"), files.file("client.key"));
  SSL_CTX_set_max_proto_version(context.native_handle(), options.max_tls_version);
  Clients clients{io, context, child.port()};
  Result r{stack, {}, {}, {}, {}};

  clients.open(1);  // warms OpenSSL's one-time state up
  settle(child, io, 1);
  clients.open(1);  // the probe connection, alone
  settle(child, io, 2);
  r.probe = child.ask('p');
  if (options.trace) {
    std::printf("\n%s:\n", name(stack));
    child.ask('t');
  }
  clients.open(98);  // warm-up: allocator caches, Asio's handler memory, the reactor's pools
  settle(child, io, 100);
  clients.close_all();
  r.zero = settle(child, io, 0);

  const int half = options.connections / 2;
  clients.open(half);
  r.half = settle(child, io, half);
  clients.open(options.connections - half);
  r.full = settle(child, io, options.connections);
  clients.close_all();
  return r;
}

void report(const Result& r, const Options& options) {
  const long long half = options.connections / 2;
  const long long rest = options.connections - half;
  auto per = [&](int i) {
    return (r.full[static_cast<std::size_t>(i)] - r.half[static_cast<std::size_t>(i)]) / rest;
  };
  auto per_all = [&](int i) {
    return (r.full[static_cast<std::size_t>(i)] - r.zero[static_cast<std::size_t>(i)]) /
           options.connections;
  };
  std::printf("\n%s: %d idle connections (%s%s%s%s)\n", name(r.stack), options.connections,
              r.probe.size() == 7 && r.probe[6] == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2",
              options.no_client_cert ? ", no client certificate" : ", mTLS",
              options.free_buffers ? ", SSL_free_buffers" : "",
              options.take_over ? ", records taken over after the handshake" : "");
  std::printf("  per connection, N/2..N:  rss %6lld B   heap %6lld B   openssl %6lld B\n", per(1),
              per(2), per(3));
  std::printf("  per connection, 0..N:    rss %6lld B   heap %6lld B   openssl %6lld B\n",
              per_all(1), per_all(2), per_all(3));
  std::printf("  totals at 0 / N/2 / N:   rss %lld / %lld / %lld KiB\n", r.zero[1] / 1024,
              r.half[1] / 1024, r.full[1] / 1024);
  if (r.probe.size() == 7) {
    const auto& p = r.probe;
    std::printf(
        "  second connection alone, OpenSSL bytes held: after SSL_new %lld, after TLS handshake "
        "%lld, "
        "after websocket accept %lld%s%lld\n",
        p[1] - p[0], p[2] - p[0], p[3] - p[0],
        options.free_buffers ? ", after SSL_free_buffers " : ", (SSL_free_buffers not called) ",
        p[4] - p[0]);
    std::printf("  one decoded client certificate (X509 + cached extensions): %lld B\n", p[5]);
  }
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + ": missing value");
      return argv[++i];
    };
    if (a == "--connections") {
      o.connections = std::stoi(value());
      if (o.connections < 2) throw std::runtime_error("--connections: must be >= 2");
    } else if (a == "--stack") {
      const std::string v = value();
      if (v == "ours") {
        o.stacks = {Stack::ours};
      } else if (v == "asio") {
        o.stacks = {Stack::asio};
      } else if (v == "both") {
        o.stacks = {Stack::ours, Stack::asio};
      } else {
        throw std::runtime_error("--stack: ours, asio or both");
      }
    } else if (a == "--tls") {
      const std::string v = value();
      if (v == "1.2") {
        o.max_tls_version = TLS1_2_VERSION;
      } else if (v == "1.3") {
        o.max_tls_version = TLS1_3_VERSION;
      } else {
        throw std::runtime_error("--tls: 1.2 or 1.3");
      }
    } else if (a == "--free-buffers") {
      o.free_buffers = true;
    } else if (a == "--trace") {
      o.trace = true;
    } else if (a == "--no-client-cert") {
      o.no_client_cert = true;
    } else if (a == "--take-over") {
      o.take_over = true;
    } else {
      throw std::runtime_error("unknown argument " + a +
                               " (--connections N --stack ours|asio|both --tls 1.2|1.3 "
                               "--free-buffers --trace --no-client-cert --take-over)");
    }
  }
  return o;
}

}  // namespace

// The malloc family, interposed for --trace (see heap_record).
extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);

void* malloc(size_t n) {
  void* p = __libc_malloc(n);
  heap_record(p);
  return p;
}
void free(void* p) {
  heap_forget(p);
  __libc_free(p);
}
void* calloc(size_t n, size_t size) {
  void* p = __libc_calloc(n, size);
  heap_record(p);
  return p;
}
void* realloc(void* p, size_t n) {
  heap_forget(p);
  void* q = __libc_realloc(p, n);
  heap_record(q);
  return q;
}
void* aligned_alloc(size_t alignment, size_t n) {
  void* p = __libc_memalign(alignment, n);
  heap_record(p);
  return p;
}
void* memalign(size_t alignment, size_t n) {
  void* p = __libc_memalign(alignment, n);
  heap_record(p);
  return p;
}
int posix_memalign(void** out, size_t alignment, size_t n) {
  void* p = __libc_memalign(alignment, n);
  if (p == nullptr) return ENOMEM;
  heap_record(p);
  *out = p;
  return 0;
}
}

int main(int argc, char** argv) {
  try {
    const Options options = parse(argc, argv);
    if (!g_openssl_counted)
      std::printf("note: OpenSSL allocations are not counted (hook refused)\n");
    const Files files = make_certificates();
    std::printf("server in pid-separate child, clients: Beast websocket over asio::ssl::stream\n");
    for (Stack stack : options.stacks) report(measure(stack, options, files), options);
    std::error_code ec;
    std::filesystem::remove_all(files.dir, ec);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tls_idle_memory: %s\n", e.what());
    return 1;
  }
}
