// SSE fan-out and plain GET throughput of ts::http::Server on loopback. A measurement program,
// not a Google Benchmark and not a test: run it by hand and put the numbers in bench/http/README.md.
//
//   http_bench fanout [--clients N] [--rate EV_PER_S | --rate 0 --window W] [--seconds S]
//                     [--payload BYTES]
//   http_bench get    [--connections K] [--seconds S]
//   http_bench memory [--clients N]
//
// fanout: one Server on one io_context thread with one EventHub; N SSE clients on a second
//   io_context thread (async reads, one SSE parser each); a third thread publishes events
//   carrying their publish time (steady_clock) at a fixed rate, or with --rate 0 as fast as the
//   clients keep up (at most W events published and not yet received by every client). Each
//   client computes publish -> parsed latency per event. Reports deliveries/s, latency p50/p99/max
//   (including the client thread's own queueing), and CPU of the server thread and the publisher.
// get: K keep-alive connections, each sending `GET /ping` as soon as the previous answer arrived
//   (closed loop), for S seconds. Reports requests/s and server-thread CPU per request.
// memory: the server runs in a forked child; the parent opens N idle SSE streams; the child reports
//   heap in use (mallinfo2, after malloc_trim) at 0, N/2 and N streams; per stream =
//   (at N - at N/2) / (N/2).
#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.hpp"
#include "http/server.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Args {
  std::string mode = "fanout";
  std::size_t clients = 1000;
  double rate = 100;
  std::size_t window = 64;
  double seconds = 10;
  std::size_t payload = 200;
  std::size_t connections = 32;
};

Args parse(int argc, char** argv) {
  Args a;
  int i = 1;
  if (argc > 1 && argv[1][0] != '-') a.mode = argv[i++];
  for (; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--clients") a.clients = std::stoul(v);
    else if (k == "--rate") a.rate = std::stod(v);
    else if (k == "--window") a.window = std::stoul(v);
    else if (k == "--seconds") a.seconds = std::stod(v);
    else if (k == "--payload") a.payload = std::stoul(v);
    else if (k == "--connections") a.connections = std::stoul(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double thread_cpu_seconds(pthread_t t) {
  clockid_t cid;
  if (pthread_getcpuclockid(t, &cid) != 0) return 0;
  timespec ts{};
  clock_gettime(cid, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The server side: one io_context thread, one hub, `/events` (all) and `/ping`.
struct ServerSide {
  ts::core::MetricsRegistry metrics;
  std::shared_ptr<ts::http::EventHub> hub =
      std::make_shared<ts::http::EventHub>(metrics, ts::http::EventHubOptions{.first_id = 1});
  std::shared_ptr<ts::http::Router> router = std::make_shared<ts::http::Router>();
  asio::io_context io;
  std::unique_ptr<ts::http::Server> server;
  std::thread thread;

  ServerSide() {
    router->stream("/events", ts::http::SseRoute{.hub = hub}, ts::http::kPublic);
    router->get("/ping", [](const ts::http::Request&) { return ts::http::Response{200, "text/plain", "pong", {}}; },
                ts::http::kPublic);
    server = std::make_unique<ts::http::Server>(io, ts::http::ServerOptions{.max_connections = 100'000}, router);
    server->start();
  }
  void run() {
    thread = std::thread([this] { io.run(); });
  }
  ~ServerSide() {
    server->stop();
    io.stop();
    if (thread.joinable()) thread.join();
  }
};

// One SSE reader; all readers run on the client io_context thread.
struct Reader {
  tcp::socket socket;
  std::string pending;
  char buf[16384];
  bool head_done = false;
  bool ready = false;
  std::uint64_t last_id = 0;
  bool out_of_order = false;
  explicit Reader(asio::io_context& io) : socket(io) {}
};

struct ClientSide {
  asio::io_context io;
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<std::uint32_t> latencies_us;  // client thread only
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::size_t> ready{0};
  std::atomic<std::size_t> closed{0};
  bool record = false;

  void on_block(Reader& r, std::string_view block, std::int64_t now) {
    if (!r.ready) {
      if (block.find("id: ") != std::string_view::npos) {
        r.ready = true;
        ++ready;
      }
      return;
    }
    auto id_at = block.find("id: ");
    auto t_at = block.find("{\"t\":");
    if (id_at == std::string_view::npos || t_at == std::string_view::npos) return;  // heartbeat etc.
    std::uint64_t id = 0;
    std::from_chars(block.data() + id_at + 4, block.data() + block.size(), id);
    if (r.last_id && id != r.last_id + 1) r.out_of_order = true;
    r.last_id = id;
    std::int64_t t = 0;
    std::from_chars(block.data() + t_at + 5, block.data() + block.size(), t);
    if (record) latencies_us.push_back(static_cast<std::uint32_t>(std::max<std::int64_t>(0, now - t) / 1000));
    delivered.fetch_add(1, std::memory_order_relaxed);
  }

  void read(Reader& r) {
    r.socket.async_read_some(asio::buffer(r.buf), [this, &r](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        ++closed;
        return;
      }
      const auto now = now_ns();
      r.pending.append(r.buf, n);
      std::size_t pos = 0;
      if (!r.head_done) {
        auto end = r.pending.find("\r\n\r\n");
        if (end == std::string::npos) return read(r);
        r.head_done = true;
        pos = end + 4;
      }
      for (;;) {
        auto end = r.pending.find("\n\n", pos);
        if (end == std::string::npos) break;
        on_block(r, std::string_view(r.pending).substr(pos, end - pos), now);
        pos = end + 2;
      }
      r.pending.erase(0, pos);
      read(r);
    });
  }

  void connect(std::uint16_t port, std::size_t n) {
    static const std::string request = "GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n";
    for (std::size_t i = 0; i < n; ++i) {
      auto& r = *readers.emplace_back(std::make_unique<Reader>(io));
      r.socket.connect({asio::ip::make_address("127.0.0.1"), port});
      r.socket.set_option(tcp::no_delay(true));
      asio::write(r.socket, asio::buffer(request));
      read(r);
    }
  }
};

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

double percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

int fanout(const Args& a) {
  ServerSide server;
  server.run();
  ClientSide clients;
  auto work = asio::make_work_guard(clients.io);
  std::thread client_thread([&] { clients.io.run(); });
  asio::post(clients.io, [&] { clients.connect(server.server->port(), a.clients); });
  if (!wait_until([&] { return clients.ready.load() == a.clients; }, 60s)) {
    std::fprintf(stderr, "only %zu of %zu streams ready\n", clients.ready.load(), a.clients);
    return 1;
  }
  asio::post(clients.io, [&] { clients.record = true; });

  const std::string pad(a.payload > 40 ? a.payload - 40 : 0, 'x');
  std::uint64_t published = 0;
  double publisher_cpu = 0;
  const double server_cpu0 = thread_cpu_seconds(server.thread.native_handle());
  const auto t0 = Clock::now();
  std::thread publisher([&] {
    const auto end = t0 + std::chrono::duration<double>(a.seconds);
    if (a.rate > 0) {
      const auto interval = std::chrono::duration<double>(1.0 / a.rate);
      auto next = t0;
      while (next < end) {
        std::this_thread::sleep_until(next);
        server.hub->publish(ts::http::Event{"signal_change", "{\"t\":" + std::to_string(now_ns()) + ",\"pad\":\"" + pad + "\"}", ""});
        ++published;
        next += std::chrono::duration_cast<Clock::duration>(interval);
      }
    } else {
      while (Clock::now() < end) {
        if (published * a.clients - clients.delivered.load(std::memory_order_relaxed) >= a.window * a.clients) {
          std::this_thread::yield();
          continue;
        }
        server.hub->publish(ts::http::Event{"signal_change", "{\"t\":" + std::to_string(now_ns()) + ",\"pad\":\"" + pad + "\"}", ""});
        ++published;
      }
    }
    publisher_cpu = thread_cpu_seconds(pthread_self());
  });
  publisher.join();
  const auto publish_end = Clock::now();
  const bool complete = wait_until([&] { return clients.delivered.load() >= published * a.clients; }, 30s);
  const auto t1 = Clock::now();
  const double server_cpu = thread_cpu_seconds(server.thread.native_handle()) - server_cpu0;
  std::vector<std::uint32_t> lat;
  bool ooo = false;
  asio::post(clients.io, [&] {
    lat = std::move(clients.latencies_us);
    for (auto& r : clients.readers) ooo |= r->out_of_order;
    work.reset();
    clients.io.stop();
  });
  client_thread.join();

  const double secs = std::chrono::duration<double>(t1 - t0).count();
  const double pub_secs = std::chrono::duration<double>(publish_end - t0).count();
  const auto delivered = clients.delivered.load();
  std::printf(
      "{\"mode\":\"fanout\",\"clients\":%zu,\"rate\":%.0f,\"payload\":%zu,\"published\":%llu,"
      "\"events_per_s\":%.0f,\"deliveries\":%llu,\"deliveries_per_s\":%.0f,\"complete\":%s,"
      "\"in_order\":%s,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"server_cpu_s\":%.3f,"
      "\"server_us_per_delivery\":%.3f,\"publisher_cpu_s\":%.3f,\"publisher_us_per_event\":%.3f,"
      "\"slow_disconnects\":%llu}\n",
      a.clients, a.rate, a.payload, static_cast<unsigned long long>(published), published / pub_secs,
      static_cast<unsigned long long>(delivered), delivered / secs, complete ? "true" : "false",
      ooo ? "false" : "true", percentile(lat, 0.5), percentile(lat, 0.99),
      lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()) / 1000.0, server_cpu,
      delivered ? server_cpu * 1e6 / static_cast<double>(delivered) : 0.0, publisher_cpu,
      published ? publisher_cpu * 1e6 / static_cast<double>(published) : 0.0,
      static_cast<unsigned long long>(server.hub->metrics().slow_disconnects.value()));
  return complete ? 0 : 1;
}

int get(const Args& a) {
  ServerSide server;
  server.run();
  asio::io_context io;
  struct Conn {
    tcp::socket socket;
    asio::streambuf buf{1 << 16};
    explicit Conn(asio::io_context& i) : socket(i) {}
  };
  std::vector<std::unique_ptr<Conn>> conns;
  std::uint64_t done = 0;
  bool running = true;
  static const std::string request = "GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n";
  std::function<void(Conn&)> one = [&](Conn& c) {
    asio::async_write(c.socket, asio::buffer(request), [&](boost::system::error_code ec, std::size_t) {
      if (ec) return;
      // "pong" is the last thing in each response.
      asio::async_read_until(c.socket, c.buf, "pong", [&](boost::system::error_code ec2, std::size_t n) {
        if (ec2) return;
        c.buf.consume(n);
        ++done;
        if (running) one(c);
      });
    });
  };
  for (std::size_t i = 0; i < a.connections; ++i) {
    auto& c = *conns.emplace_back(std::make_unique<Conn>(io));
    c.socket.connect({asio::ip::make_address("127.0.0.1"), server.server->port()});
    c.socket.set_option(tcp::no_delay(true));
  }
  const double cpu0 = thread_cpu_seconds(server.thread.native_handle());
  const auto t0 = Clock::now();
  for (auto& c : conns) one(*c);
  asio::steady_timer stop(io, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.seconds)));
  stop.async_wait([&](boost::system::error_code) {
    running = false;
    for (auto& c : conns) {
      boost::system::error_code ignored;
      c->socket.close(ignored);
    }
  });
  io.run();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = thread_cpu_seconds(server.thread.native_handle()) - cpu0;
  std::printf("{\"mode\":\"get\",\"connections\":%zu,\"requests\":%llu,\"requests_per_s\":%.0f,"
              "\"server_cpu_s\":%.3f,\"server_us_per_request\":%.2f}\n",
              a.connections, static_cast<unsigned long long>(done), done / secs, cpu,
              done ? cpu * 1e6 / static_cast<double>(done) : 0.0);
  return 0;
}

// Child: the server. Reads one byte per request on `cmd`, answers "<heap> <streams>\n" on `out`.
[[noreturn]] void memory_child(int cmd, int out) {
  ServerSide server;
  server.run();
  auto port = server.server->port();
  if (write(out, &port, sizeof port) != sizeof port) std::_Exit(1);
  char c;
  while (read(cmd, &c, 1) == 1 && c == 'r') {
    // Let the io thread settle, then measure what malloc has handed out.
    std::this_thread::sleep_for(500ms);
    malloc_trim(0);
    auto mi = mallinfo2();
    char line[64];
    int n = std::snprintf(line, sizeof line, "%zu %zu\n", mi.uordblks + mi.hblkhd, server.server->streams());
    if (write(out, line, static_cast<std::size_t>(n)) != n) break;
  }
  std::_Exit(0);
}

int memory(const Args& a) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    close(to_child[1]);
    close(from_child[0]);
    memory_child(to_child[0], from_child[1]);
  }
  close(to_child[0]);
  close(from_child[1]);
  std::uint16_t port = 0;
  if (read(from_child[0], &port, sizeof port) != sizeof port) return 1;
  auto sample = [&](std::size_t expect) {
    for (;;) {
      if (write(to_child[1], "r", 1) != 1) std::exit(1);
      char line[64] = {};
      std::size_t used = 0;
      while (used < sizeof line - 1) {
        if (read(from_child[0], line + used, 1) != 1) std::exit(1);
        if (line[used++] == '\n') break;
      }
      std::size_t heap = 0, streams = 0;
      std::sscanf(line, "%zu %zu", &heap, &streams);
      if (streams == expect) return heap;
    }
  };
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> sockets;
  static const std::string request = "GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n";
  auto open = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      auto& s = *sockets.emplace_back(std::make_unique<tcp::socket>(io));
      s.connect({asio::ip::make_address("127.0.0.1"), port});
      asio::write(s, asio::buffer(request));
      asio::streambuf head;
      asio::read_until(s, head, "id: 0\n\n");  // the stream is set up and idle
    }
  };
  const auto h0 = sample(0);
  open(a.clients / 2);
  const auto h1 = sample(a.clients / 2);
  open(a.clients - a.clients / 2);
  const auto h2 = sample(a.clients);
  const double per = static_cast<double>(h2 - h1) / static_cast<double>(a.clients - a.clients / 2);
  std::printf("{\"mode\":\"memory\",\"streams\":%zu,\"heap_0\":%zu,\"heap_half\":%zu,\"heap_all\":%zu,"
              "\"heap_bytes_per_stream\":%.0f}\n",
              a.clients, h0, h1, h2, per);
  close(to_child[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto a = parse(argc, argv);
  if (a.mode == "fanout") return fanout(a);
  if (a.mode == "get") return get(a);
  if (a.mode == "memory") return memory(a);
  std::fprintf(stderr, "usage: http_bench fanout|get|memory [options]\n");
  return 2;
}
