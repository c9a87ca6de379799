// TlsStream over real TCP on 127.0.0.1, against Asio's ssl::stream and against itself, alone and
// under Beast's websocket. Certificates are issued in-test (throwaway CA, server, client) and the
// contexts are the production ones of ts::pki. Every test runs its io_context for a bounded time
// and fails if a task is still pending then (a hang is a failure, not a timeout of the runner).
#include "runtime/tls_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/sslerr.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "pki/certificate.hpp"
#include "pki/openssl.hpp"
#include "pki/tls_context.hpp"

namespace ts::runtime {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

using AsioTls = ssl::stream<tcp::socket>;
using OurWs = websocket::stream<TlsStream>;
using AsioWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

static_assert(beast::is_async_stream<TlsStream>::value);
static_assert(std::is_same_v<beast::lowest_layer_type<OurWs>, tcp::socket>,
              "get_lowest_layer(ws) must be the socket so Beast's timeouts can close it");

auto use_ec(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// ---- certificates -------------------------------------------------------------------------------

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in a temporary
// directory that lives as long as the test program.
class TestPki {
 public:
  static const TestPki& get() {
    static const TestPki pki;
    return pki;
  }
  std::string file(const char* name) const { return (dir_ / name).string(); }

  ~TestPki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  TestPki() {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tls_stream_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const auto now = std::chrono::system_clock::now();
    pki::KeyGenerator keys;
    pki::EvpPkeyPtr ca_key = keys.generate();
    pki::X509Ptr ca =
        pki::issue_certificate({.subject = {{"O", "TeslaSync test"}, {"CN", "tls_stream_test CA"}},
                                .is_ca = true,
                                .not_before = now - 1h,
                                .not_after = now + 24h},
                               ca_key.get(), nullptr, ca_key.get());
    pki::EvpPkeyPtr server_key = keys.generate();
    pki::X509Ptr server =
        pki::issue_certificate({.subject = {{"CN", "tls_stream_test server"}},
                                .ext_key_usage = {std::string(pki::kOidServerAuth)},
                                .dns_names = {"localhost"},
                                .ip_addresses = {"127.0.0.1"},
                                .not_before = now - 1h,
                                .not_after = now + 24h},
                               server_key.get(), ca.get(), ca_key.get());
    pki::EvpPkeyPtr client_key = keys.generate();
    pki::X509Ptr client =
        pki::issue_certificate({.subject = {{"CN", "device-1"}},
                                .ext_key_usage = {std::string(pki::kOidClientAuth)},
                                .not_before = now - 1h,
                                .not_after = now + 24h},
                               client_key.get(), ca.get(), ca_key.get());
    write_text(dir_ / "ca.pem", pki::to_pem(ca.get()));
    write_text(dir_ / "server.pem", pki::to_pem(server.get()));
    write_text(dir_ / "server.key", pki::to_pem(server_key.get()));
    write_text(dir_ / "client.pem", pki::to_pem(client.get()));
    write_text(dir_ / "client.key", pki::to_pem(client_key.get()));
  }
  std::filesystem::path dir_;
};

// The vehicle-facing server context (client certificate required).
pki::VehicleServerContext server_context() {
  const TestPki& p = TestPki::get();
  return pki::make_vehicle_server_context({.server_cert = p.file("server.pem"),
                                           .server_key = p.file("server.key"),
                                           .ca_file = p.file("ca.pem")});
}

// A vehicle-side context; `max_version` 0 = highest; without a certificate if `with_cert` is false.
ssl::context client_context(int max_version = 0, bool with_cert = true) {
  const TestPki& p = TestPki::get();
  if (with_cert) {
    ssl::context c = pki::make_vehicle_client_context(p.file("ca.pem"), p.file("client.pem"),
                                                      p.file("client.key"));
    SSL_CTX_set_max_proto_version(c.native_handle(), max_version);
    return c;
  }
  ssl::context c(ssl::context::tls_client);
  c.load_verify_file(p.file("ca.pem"));
  c.set_verify_mode(ssl::verify_peer);
  SSL_CTX_set_max_proto_version(c.native_handle(), max_version);
  return c;
}

// ---- harness ------------------------------------------------------------------------------------

// Coroutines spawned on one io_context; `run` runs it for a bounded time and reports tasks that
// did not finish (a hang) and exceptions that escaped.
class Tasks {
 public:
  explicit Tasks(asio::io_context& io) : io_(io) {}

  template <class F>
  void spawn(F&& f) {
    ++started_;
    asio::co_spawn(io_, std::forward<F>(f), [this](std::exception_ptr e) {
      ++finished_;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          errors_ += std::string(ex.what()) + "; ";
        }
      }
    });
  }

  ::testing::AssertionResult run(std::chrono::seconds limit = 30s) {
    io_.run_for(limit);
    if (finished_ != started_) {
      return ::testing::AssertionFailure()
             << (started_ - finished_) << " of " << started_ << " tasks still pending after "
             << limit.count() << " s";
    }
    if (!errors_.empty()) return ::testing::AssertionFailure() << "exceptions: " << errors_;
    return ::testing::AssertionSuccess();
  }

 private:
  asio::io_context& io_;
  int started_ = 0;
  int finished_ = 0;
  std::string errors_;
};

// A one-shot signal between two coroutines of one io_context.
class Event {
 public:
  explicit Event(asio::io_context& io) : timer_(io, asio::steady_timer::time_point::max()) {}
  void notify() {
    set_ = true;
    timer_.cancel();
  }
  asio::awaitable<void> wait() {
    while (!set_) {
      error_code ec;
      co_await timer_.async_wait(use_ec(ec));
    }
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

struct SocketPair {
  tcp::socket server;
  tcp::socket client;
};

SocketPair connect_pair(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  tcp::socket server = acceptor.accept();
  return {std::move(server), std::move(client)};
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

std::string common_name(X509* cert) {
  return cert == nullptr ? "" : pki::last_name_entry(X509_get_subject_name(cert), NID_commonName);
}

// GCC 12 rejects a braced list as an argument inside a coroutine lambda: named vectors instead.
const std::vector<std::size_t> kSmallSizes = {7, 70000};
const std::vector<std::size_t> kEchoSizes = {1,     2,     100,   511,   512,    513,
                                             16383, 16384, 16385, 65536, 300000, 1 << 20};

// Reads each message whole and writes it back.
template <class Stream>
asio::awaitable<void> echo_back(Stream& s, std::vector<std::size_t> sizes) {
  for (std::size_t size : sizes) {
    std::string buf(size, '\0');
    error_code ec;
    co_await asio::async_read(s, asio::buffer(buf), use_ec(ec));
    EXPECT_FALSE(ec) << "echo read of " << size << ": " << ec.message();
    if (ec) co_return;
    co_await asio::async_write(s, asio::buffer(buf), use_ec(ec));
    EXPECT_FALSE(ec) << "echo write of " << size << ": " << ec.message();
    if (ec) co_return;
  }
}

// Sends each message, reads it back and compares.
template <class Stream>
asio::awaitable<void> send_and_check(Stream& s, std::vector<std::size_t> sizes, unsigned seed) {
  for (std::size_t size : sizes) {
    const std::string message = random_bytes(size, seed + static_cast<unsigned>(size));
    error_code ec;
    co_await asio::async_write(s, asio::buffer(message), use_ec(ec));
    EXPECT_FALSE(ec) << "write of " << size << ": " << ec.message();
    if (ec) co_return;
    std::string back(size, '\0');
    co_await asio::async_read(s, asio::buffer(back), use_ec(ec));
    EXPECT_FALSE(ec) << "read of " << size << ": " << ec.message();
    if (ec) co_return;
    EXPECT_TRUE(back == message) << "echo of " << size << " bytes differs";
  }
}

// A TlsStream server and an Asio ssl::stream client, connected and handshaken.
struct OursVsAsio {
  explicit OursVsAsio(asio::io_context& io, int max_version = 0)
      : server_ctx(server_context()), client_ctx(client_context(max_version)) {
    SocketPair p = connect_pair(io);
    server.emplace(std::move(p.server), server_ctx.context.native_handle(),
                   TlsStream::Role::server);
    client.emplace(std::move(p.client), client_ctx);
  }

  asio::awaitable<void> server_handshake() { co_await server->async_handshake(use_ec(server_ec)); }
  asio::awaitable<void> client_handshake() {
    co_await client->async_handshake(ssl::stream_base::client, use_ec(client_ec));
  }

  // Runs both handshakes to completion; false (with a test failure) if either failed.
  bool handshake(asio::io_context& io) {
    Tasks tasks(io);
    tasks.spawn([this] { return server_handshake(); });
    tasks.spawn([this] { return client_handshake(); });
    EXPECT_TRUE(tasks.run());
    io.restart();
    EXPECT_FALSE(server_ec) << "server: " << server_ec.message();
    EXPECT_FALSE(client_ec) << "client: " << client_ec.message();
    return !server_ec && !client_ec;
  }

  pki::VehicleServerContext server_ctx;
  ssl::context client_ctx;
  std::optional<TlsStream> server;
  std::optional<AsioTls> client;
  error_code server_ec;
  error_code client_ec;
};

// ---- record layers ------------------------------------------------------------------------------

// OursVsAsio whose server, with `native`, hands its records to Tls13Records right after the
// handshake (as telemetry-server does); the client is OpenSSL limited to `suite` when given.
struct TakenOver : OursVsAsio {
  explicit TakenOver(asio::io_context& io, const char* suite = nullptr, int max_version = 0,
                     bool native_records = true)
      : OursVsAsio(io, max_version), native(native_records) {
    if (native) enable_tls13_record_takeover(server_ctx.context.native_handle());
    if (suite != nullptr) SSL_set_ciphersuites(client->native_handle(), suite);
  }
  // Handshake, then (native) the take-over; false when either failed.
  bool start(asio::io_context& io) {
    if (!handshake(io)) return false;
    identity_cn = common_name(SSL_get0_peer_certificate(server->native_handle()));
    return !native || server->take_over_records();
  }
  bool native;
  std::string identity_cn;
};

// The tests that hold for both record layers of a server TlsStream: OpenSSL's, and ours after
// the take-over. Param: true = native.
class TlsRecordLayers : public ::testing::TestWithParam<bool> {};

// ---- handshake ----------------------------------------------------------------------------------

class TlsStreamVersions : public ::testing::TestWithParam<int> {};

TEST_P(TlsStreamVersions, ServerHandshakesWithAsioClientAndSeesTheVerifiedClient) {
  asio::io_context io;
  OursVsAsio pair(io, GetParam());
  ASSERT_TRUE(pair.handshake(io));
  SSL* ssl = pair.server->native_handle();
  EXPECT_EQ(SSL_version(ssl), GetParam());
  EXPECT_EQ(SSL_get_verify_result(ssl), X509_V_OK);
  EXPECT_EQ(common_name(SSL_get0_peer_certificate(ssl)), "device-1");
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_len), "http/1.1");

  Tasks tasks(io);
  tasks.spawn([&] { return echo_back(*pair.server, {5}); });
  tasks.spawn([&] { return send_and_check(*pair.client, {5}, 1); });
  EXPECT_TRUE(tasks.run());
}

TEST_P(TlsStreamVersions, ClientHandshakesWithAsioServer) {
  asio::io_context io;
  pki::VehicleServerContext server_ctx = server_context();
  ssl::context client_ctx = client_context(GetParam());
  SocketPair p = connect_pair(io);
  AsioTls server(std::move(p.server), server_ctx.context);
  TlsStream client(std::move(p.client), client_ctx.native_handle(), TlsStream::Role::client);
  EXPECT_EQ(client.role(), TlsStream::Role::client);
  error_code server_ec, client_ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await server.async_handshake(ssl::stream_base::server, use_ec(server_ec));
    if (!server_ec) co_await echo_back(server, kSmallSizes);
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await client.async_handshake(use_ec(client_ec));
    if (!client_ec) co_await send_and_check(client, kSmallSizes, 2);
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(server_ec) << server_ec.message();
  EXPECT_FALSE(client_ec) << client_ec.message();
  EXPECT_EQ(SSL_version(client.native_handle()), GetParam());
  EXPECT_EQ(common_name(SSL_get0_peer_certificate(client.native_handle())),
            "tls_stream_test server");
}

TEST_P(TlsStreamVersions, TlsStreamOnBothSidesEchoes) {
  asio::io_context io;
  pki::VehicleServerContext server_ctx = server_context();
  ssl::context client_ctx = client_context(GetParam());
  SocketPair p = connect_pair(io);
  TlsStream server(std::move(p.server), server_ctx.context.native_handle(),
                   TlsStream::Role::server);
  TlsStream client(std::move(p.client), client_ctx.native_handle(), TlsStream::Role::client);
  error_code server_ec, client_ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await server.async_handshake(use_ec(server_ec));
    if (!server_ec) co_await echo_back(server, kEchoSizes);
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await client.async_handshake(use_ec(client_ec));
    if (!client_ec) co_await send_and_check(client, kEchoSizes, 3);
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(server_ec) << server_ec.message();
  EXPECT_FALSE(client_ec) << client_ec.message();
}

INSTANTIATE_TEST_SUITE_P(Tls, TlsStreamVersions, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const auto& param_info) {
                           return param_info.param == TLS1_2_VERSION ? std::string("Tls12")
                                                                     : std::string("Tls13");
                         });

// ---- data ---------------------------------------------------------------------------------------

TEST_P(TlsRecordLayers, EchoesFromOneByteToOneMebibyteInBothDirections) {
  asio::io_context io;
  TakenOver pair(io, nullptr, 0, GetParam());
  ASSERT_TRUE(pair.start(io));
  {
    Tasks tasks(io);  // the Asio client talks first, TlsStream echoes
    tasks.spawn([&] { return echo_back(*pair.server, kEchoSizes); });
    tasks.spawn([&] { return send_and_check(*pair.client, kEchoSizes, 10); });
    ASSERT_TRUE(tasks.run());
  }
  io.restart();
  {
    Tasks tasks(io);  // TlsStream talks first, the Asio client echoes
    tasks.spawn([&] { return send_and_check(*pair.server, kEchoSizes, 20); });
    tasks.spawn([&] { return echo_back(*pair.client, kEchoSizes); });
    ASSERT_TRUE(tasks.run());
  }
}

TEST(TlsStream, GatherWriteArrivesWholeAndInOrder) {
  // Short first buffers are joined with what follows (one TLS record for a websocket frame
  // header and its payload); long ones are written from the caller's memory.
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  const std::string a = random_bytes(3, 1), b = random_bytes(5, 2), c = random_bytes(100000, 3),
                    d = random_bytes(600, 4), e = random_bytes(10, 5);
  std::vector<asio::const_buffer> tiny;  // 700 one-byte buffers, then an empty one
  for (std::size_t i = 0; i < 700; ++i) tiny.emplace_back(&c[i], 1);
  tiny.emplace_back(nullptr, 0);
  const std::vector<std::vector<asio::const_buffer>> writes = {
      {asio::buffer(a), asio::buffer(b)},
      {asio::const_buffer(), asio::buffer(a), asio::buffer(c)},
      {asio::buffer(d), asio::buffer(e)},
      tiny,
  };
  std::string expected;
  for (const auto& w : writes) {
    for (const auto& buf : w) expected.append(static_cast<const char*>(buf.data()), buf.size());
  }
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    for (const auto& w : writes) {
      error_code ec;
      const std::size_t n = co_await asio::async_write(*pair.server, w, use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      EXPECT_EQ(n, asio::buffer_size(w));
    }
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    std::string got(expected.size(), '\0');
    error_code ec;
    co_await asio::async_read(*pair.client, asio::buffer(got), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(got == expected);
  });
  EXPECT_TRUE(tasks.run());
}

TEST(TlsStream, EmptyReadAndWriteCompleteAtOnceWithZeroBytes) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  std::optional<std::size_t> read_n, write_n;
  pair.server->async_read_some(asio::mutable_buffer(), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    read_n = n;
  });
  pair.server->async_write_some(asio::const_buffer(), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    write_n = n;
  });
  EXPECT_FALSE(read_n) << "a handler must never run inside the initiating function";
  io.run_for(5s);
  EXPECT_EQ(read_n, 0u);
  EXPECT_EQ(write_n, 0u);
}

TEST(TlsStream, PendingReadAndBlockedWriteProgressIndependently) {
  // The server writes 8 MiB to a peer that does not read yet, so the write waits on wait_write,
  // while a read is pending on wait_read. The peer sends a message: the read must complete while
  // the write is still blocked; then the peer drains the write.
  asio::io_context io;
  OursVsAsio pair(io);
  pair.server->socket().set_option(asio::socket_base::send_buffer_size(16384));
  pair.client->next_layer().set_option(asio::socket_base::receive_buffer_size(16384));
  ASSERT_TRUE(pair.handshake(io));
  const std::string big = random_bytes(8 << 20, 7);
  const std::string small = "ping from the client";
  Event server_read_done(io);
  bool write_done = false;
  std::optional<bool> write_done_when_read_completed;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    error_code ec;
    co_await asio::async_write(*pair.server, asio::buffer(big), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    write_done = true;
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    std::string got(small.size(), '\0');
    error_code ec;
    co_await asio::async_read(*pair.server, asio::buffer(got), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, small);
    write_done_when_read_completed = write_done;
    server_read_done.notify();
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    error_code ec;
    co_await asio::async_write(*pair.client, asio::buffer(small), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    co_await server_read_done.wait();
    std::string got(big.size(), '\0');
    co_await asio::async_read(*pair.client, asio::buffer(got), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(got == big);
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(write_done_when_read_completed, false);
  EXPECT_TRUE(write_done);
}

// ---- errors -------------------------------------------------------------------------------------

TEST(TlsStream, ClientWithoutCertificateFailsTheHandshakeWithAReadableReason) {
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
    asio::io_context io;
    pki::VehicleServerContext server_ctx = server_context();
    ssl::context bare = client_context(version, /*with_cert=*/false);
    SocketPair p = connect_pair(io);
    TlsStream server(std::move(p.server), server_ctx.context.native_handle(),
                     TlsStream::Role::server);
    AsioTls client(std::move(p.client), bare);
    error_code server_ec, client_ec;
    Tasks tasks(io);
    tasks.spawn(
        [&]() -> asio::awaitable<void> { co_await server.async_handshake(use_ec(server_ec)); });
    tasks.spawn([&]() -> asio::awaitable<void> {
      co_await client.async_handshake(ssl::stream_base::client, use_ec(client_ec));
      if (!client_ec) {  // TLS 1.3: the client finishes first and hears of it on its first read
        char byte = 0;
        co_await client.async_read_some(asio::buffer(&byte, 1), use_ec(client_ec));
      }
    });
    ASSERT_TRUE(tasks.run());
    ASSERT_TRUE(server_ec);
    EXPECT_EQ(&server_ec.category(), &asio::error::get_ssl_category());
    EXPECT_EQ(ERR_GET_REASON(static_cast<unsigned long>(server_ec.value())),
              SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
    EXPECT_NE(server_ec.message().find("peer did not return a certificate"), std::string::npos)
        << server_ec.message();
    EXPECT_TRUE(client_ec);
    EXPECT_EQ(ERR_peek_error(), 0u) << "the failure must not stay in this thread's error queue";
  }
}

TEST(TlsStream, TlsStreamClientWithoutCertificateReadsTheAlert) {
  asio::io_context io;
  pki::VehicleServerContext server_ctx = server_context();
  ssl::context bare = client_context(TLS1_3_VERSION, /*with_cert=*/false);
  SocketPair p = connect_pair(io);
  TlsStream server(std::move(p.server), server_ctx.context.native_handle(),
                   TlsStream::Role::server);
  TlsStream client(std::move(p.client), bare.native_handle(), TlsStream::Role::client);
  error_code server_ec, client_handshake_ec, client_read_ec;
  Tasks tasks(io);
  tasks.spawn(
      [&]() -> asio::awaitable<void> { co_await server.async_handshake(use_ec(server_ec)); });
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await client.async_handshake(use_ec(client_handshake_ec));
    char byte = 0;
    co_await client.async_read_some(asio::buffer(&byte, 1), use_ec(client_read_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_TRUE(server_ec);
  EXPECT_FALSE(client_handshake_ec) << client_handshake_ec.message();
  EXPECT_EQ(client_read_ec.message(), "tlsv13 alert certificate required (SSL routines)");
}

TEST(TlsStream, StaleOpenSslErrorOfThisThreadDoesNotFailAnOperation) {
  // SSL_get_error looks at the thread's error queue first: an error left there by another
  // connection (or any OpenSSL user on this thread) would turn an ordinary WANT_READ into
  // SSL_ERROR_SSL. (OpenSSL's handshake clears the queue itself; SSL_read does not.)
  asio::io_context io;
  OursVsAsio pair(io);
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
  ASSERT_NE(ERR_peek_error(), 0u);
  ASSERT_TRUE(pair.handshake(io));
  EXPECT_EQ(ERR_peek_error(), 0u);

  error_code read_ec;
  std::string got(3, '\0');
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);  // stale when SSL_read says WANT_READ
    co_await asio::async_read(*pair.server, asio::buffer(got), use_ec(read_ec));
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    error_code ec;
    co_await asio::async_write(*pair.client, asio::buffer("abc", 3), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_P(TlsRecordLayers, PeerClosingTcpWithoutCloseNotifyEndsThePendingRead) {
  asio::io_context io;
  TakenOver pair(io, nullptr, 0, GetParam());
  ASSERT_TRUE(pair.start(io));
  error_code ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(ec));
  });
  asio::post(io, [&] { pair.client->next_layer().close(); });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(ec, asio::ssl::error::stream_truncated) << ec.message();
}

TEST(TlsStream, PeerResettingTheConnectionEndsThePendingRead) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  error_code ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(ec));
  });
  asio::post(io, [&] {
    pair.client->next_layer().set_option(asio::socket_base::linger(true, 0));  // close -> RST
    pair.client->next_layer().close();
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
}

TEST_P(TlsRecordLayers, CloseNotifyBothWays) {
  // The Asio client shuts down: TlsStream reads eof (again on a second read), answers with its
  // own close_notify.
  asio::io_context io;
  TakenOver pair(io, nullptr, 0, GetParam());
  ASSERT_TRUE(pair.start(io));
  error_code read_ec, again_ec, shutdown_ec, client_ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(read_ec));
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(again_ec));
    co_await pair.server->async_shutdown(use_ec(shutdown_ec));
  });
  tasks.spawn(
      [&]() -> asio::awaitable<void> { co_await pair.client->async_shutdown(use_ec(client_ec)); });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(read_ec, asio::error::eof) << read_ec.message();
  EXPECT_EQ(again_ec, asio::error::eof) << again_ec.message();
  EXPECT_FALSE(shutdown_ec) << shutdown_ec.message();
  EXPECT_FALSE(client_ec) << client_ec.message();
}

TEST_P(TlsRecordLayers, ShutdownMakesThePeerReadEofAndLaterWritesFail) {
  asio::io_context io;
  TakenOver pair(io, nullptr, 0, GetParam());
  ASSERT_TRUE(pair.start(io));
  error_code shutdown_ec, again_ec, write_ec, client_ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await pair.server->async_shutdown(use_ec(shutdown_ec));
    co_await pair.server->async_shutdown(use_ec(again_ec));  // already sent: nothing to do
    co_await pair.server->async_write_some(asio::buffer("x", 1), use_ec(write_ec));
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await pair.client->async_read_some(asio::buffer(&byte, 1), use_ec(client_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(shutdown_ec) << shutdown_ec.message();
  EXPECT_FALSE(again_ec) << again_ec.message();
  EXPECT_TRUE(write_ec) << "a write after close_notify must fail";
  if (GetParam()) {
    EXPECT_EQ(write_ec, asio::error::shut_down) << write_ec.message();
  }
  EXPECT_EQ(client_ec, asio::error::eof) << client_ec.message();
}

TEST(TlsStream, CancelAbortsThePendingReadAndTheStreamStillWorks) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  bool read_started = false;
  Event cancelled(io);
  error_code first_ec, second_ec;
  std::string got(1, '\0');
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    read_started = true;  // the read's wait is registered before this coroutine yields
    co_await pair.server->async_read_some(asio::buffer(got), use_ec(first_ec));
    cancelled.notify();
    co_await asio::async_read(*pair.server, asio::buffer(got), use_ec(second_ec));
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    while (!read_started) co_await asio::post(io, asio::use_awaitable);
    pair.server->cancel();
    co_await cancelled.wait();
    error_code ec;
    co_await asio::async_write(*pair.client, asio::buffer("x", 1), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(first_ec, asio::error::operation_aborted) << first_ec.message();
  EXPECT_FALSE(second_ec) << second_ec.message();
  EXPECT_EQ(got, "x");
}

TEST(TlsStream, OperationOnAClosedSocketFailsWithBadDescriptor) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  pair.server->socket().close();
  error_code read_ec, write_ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(read_ec));
    co_await pair.server->async_write_some(asio::buffer("x", 1), use_ec(write_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(read_ec, asio::error::bad_descriptor);
  EXPECT_EQ(write_ec, asio::error::bad_descriptor);
}

TEST(TlsStream, MovedStreamKeepsWorking) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  TlsStream moved(std::move(*pair.server));
  TlsStream assigned = std::move(moved);
  Tasks tasks(io);
  tasks.spawn([&] { return echo_back(assigned, {10, 20000}); });
  tasks.spawn([&] { return send_and_check(*pair.client, {10, 20000}, 30); });
  EXPECT_TRUE(tasks.run());
}

// ---- Deadline -----------------------------------------------------------------------------------

TEST(Deadline, ClosesTheSocketUnderAPendingRead) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  Deadline deadline(*pair.server);
  error_code ec, after_ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    deadline.arm(50ms);
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(ec));
    deadline.disarm();
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(after_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(ec, asio::error::operation_aborted) << ec.message();
  EXPECT_TRUE(deadline.expired());
  EXPECT_FALSE(pair.server->socket().is_open());
  EXPECT_EQ(after_ec, asio::error::bad_descriptor);
}

TEST(Deadline, DisarmedOrDestroyedDeadlineLeavesTheSocketAlone) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  Deadline deadline(*pair.server);
  deadline.arm(10ms);
  deadline.disarm();
  deadline.arm(1h);
  deadline.arm(20ms);  // re-arming replaces the hour
  deadline.disarm();
  {
    Deadline gone(*pair.server);
    gone.arm(10ms);
  }
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    asio::steady_timer t(io, 100ms);  // past every deadline above
    co_await t.async_wait(asio::use_awaitable);
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(deadline.expired());
  EXPECT_TRUE(pair.server->socket().is_open());
}

TEST(Deadline, BoundsAHandshakeWithASilentPeer) {
  asio::io_context io;
  pki::VehicleServerContext server_ctx = server_context();
  SocketPair p = connect_pair(io);  // the client never speaks TLS
  TlsStream server(std::move(p.server), server_ctx.context.native_handle(),
                   TlsStream::Role::server);
  Deadline deadline(server);
  error_code ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    deadline.arm(50ms);
    co_await server.async_handshake(use_ec(ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(ec, asio::error::operation_aborted);
  EXPECT_TRUE(deadline.expired());
}

// ---- many connections ---------------------------------------------------------------------------

TEST_P(TlsRecordLayers, TwoHundredConcurrentConnectionsEchoOnOneIoContext) {
  constexpr int kConnections = 200;
  const std::vector<std::size_t> sizes = {1, 1000, 20000};
  asio::io_context io;
  pki::VehicleServerContext server_ctx = server_context();
  if (GetParam()) enable_tls13_record_takeover(server_ctx.context.native_handle());
  ssl::context client_ctx = client_context();
  int server_done = 0, client_done = 0, taken_over = 0;
  Tasks tasks(io);
  for (int i = 0; i < kConnections; ++i) {
    SocketPair p = connect_pair(io);
    tasks.spawn([&, s = std::move(p.server)]() mutable -> asio::awaitable<void> {
      TlsStream server(std::move(s), server_ctx.context.native_handle(), TlsStream::Role::server);
      error_code ec;
      co_await server.async_handshake(use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
      if (GetParam() && server.take_over_records()) ++taken_over;
      co_await echo_back(server, sizes);
      ++server_done;
    });
    tasks.spawn([&, c = std::move(p.client), i]() mutable -> asio::awaitable<void> {
      AsioTls client(std::move(c), client_ctx);
      error_code ec;
      co_await client.async_handshake(ssl::stream_base::client, use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
      co_await send_and_check(client, sizes, static_cast<unsigned>(100 + i));
      ++client_done;
    });
  }
  ASSERT_TRUE(tasks.run(60s));
  EXPECT_EQ(server_done, kConnections);
  EXPECT_EQ(client_done, kConnections);
  EXPECT_EQ(taken_over, GetParam() ? kConnections : 0);
}

INSTANTIATE_TEST_SUITE_P(Layer, TlsRecordLayers, ::testing::Bool(), [](const auto& param_info) {
  return param_info.param ? std::string("Native") : std::string("OpenSsl");
});

// ---- Beast websocket over TlsStream -------------------------------------------------------------

// A websocket server over TlsStream and a Beast websocket client over Asio's ssl::stream, both
// through the TLS and websocket handshakes.
class WebSocketOverTlsStream : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ctx_.emplace(server_context());
    client_ctx_.emplace(client_context());
    SocketPair p = connect_pair(io_);
    Tasks tasks(io_);
    tasks.spawn([&, s = std::move(p.server)]() mutable -> asio::awaitable<void> {
      TlsStream tls(std::move(s), server_ctx_->context.native_handle(), TlsStream::Role::server);
      error_code ec;
      co_await tls.async_handshake(use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
      server_.emplace(std::move(tls));  // as the vehicle server does: TLS first, then upgrade
      server_->binary(true);
      co_await server_->async_accept(use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
    });
    tasks.spawn([&, c = std::move(p.client)]() mutable -> asio::awaitable<void> {
      client_.emplace(std::move(c), *client_ctx_);
      error_code ec;
      co_await client_->next_layer().async_handshake(ssl::stream_base::client, use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
      client_->binary(true);
      co_await client_->async_handshake("127.0.0.1", "/", use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
    });
    ASSERT_TRUE(tasks.run());
    io_.restart();
    ASSERT_TRUE(server_ && server_->is_open());
    ASSERT_TRUE(client_ && client_->is_open());
  }

  template <class Ws>
  static asio::awaitable<void> ws_echo_back(Ws& ws, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      beast::flat_buffer buf;
      error_code ec;
      co_await ws.async_read(buf, use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
      EXPECT_TRUE(ws.got_binary());
      co_await ws.async_write(buf.cdata(), use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
    }
  }

  template <class Ws>
  static asio::awaitable<void> ws_send_and_check(Ws& ws, std::vector<std::size_t> sizes,
                                                 unsigned seed) {
    for (std::size_t size : sizes) {
      const std::string message = random_bytes(size, seed + static_cast<unsigned>(size));
      error_code ec;
      co_await ws.async_write(asio::buffer(message), use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
      beast::flat_buffer buf;
      co_await ws.async_read(buf, use_ec(ec));
      EXPECT_FALSE(ec) << ec.message();
      if (ec) co_return;
      EXPECT_TRUE(beast::buffers_to_string(buf.cdata()) == message) << "message of " << size;
    }
  }

  asio::io_context io_;
  std::optional<pki::VehicleServerContext> server_ctx_;
  std::optional<ssl::context> client_ctx_;
  std::optional<OurWs> server_;
  std::optional<AsioWs> client_;
};

const std::vector<std::size_t> kWsSizes = {1, 125, 126, 65535, 65536, 1 << 20};

TEST_F(WebSocketOverTlsStream, BinaryMessagesEchoBothWays) {
  {
    Tasks tasks(io_);
    tasks.spawn([&] { return ws_echo_back(*server_, kWsSizes.size()); });
    tasks.spawn([&] { return ws_send_and_check(*client_, kWsSizes, 40); });
    ASSERT_TRUE(tasks.run());
  }
  io_.restart();
  Tasks tasks(io_);
  tasks.spawn([&] { return ws_send_and_check(*server_, kWsSizes, 50); });
  tasks.spawn([&] { return ws_echo_back(*client_, kWsSizes.size()); });
  ASSERT_TRUE(tasks.run());
}

TEST_F(WebSocketOverTlsStream, PingsAreAnsweredWhileReadsArePending) {
  // Each side's pending read answers the other's ping (Beast writes the pong from inside the
  // read); the server pings while its own read is pending.
  std::vector<std::string> client_pongs, server_pongs;
  client_->control_callback([&](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) client_pongs.emplace_back(payload);
  });
  Event server_got_pong(io_);
  server_->control_callback([&](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) {
      server_pongs.emplace_back(payload);
      server_got_pong.notify();
    }
  });
  error_code server_read_ec;
  Tasks tasks(io_);
  tasks.spawn([&]() -> asio::awaitable<void> {  // server: a read that stays pending
    beast::flat_buffer buf;
    co_await server_->async_read(buf, use_ec(server_read_ec));
  });
  tasks.spawn([&]() -> asio::awaitable<void> {  // server: ping, then a message when answered
    error_code ec;
    co_await server_->async_ping("s-ping", use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    co_await server_got_pong.wait();
    co_await server_->async_write(asio::buffer("done", 4), use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
  });
  tasks.spawn([&]() -> asio::awaitable<void> {  // client: ping, read until "done", close
    error_code ec;
    co_await client_->async_ping("c-ping", use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    beast::flat_buffer buf;
    co_await client_->async_read(buf, use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(beast::buffers_to_string(buf.cdata()), "done");
    co_await client_->async_close(websocket::close_code::normal, use_ec(ec));
    EXPECT_FALSE(ec) << ec.message();
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(client_pongs, std::vector<std::string>{"c-ping"});
  EXPECT_EQ(server_pongs, std::vector<std::string>{"s-ping"});
  EXPECT_EQ(server_read_ec, websocket::error::closed) << server_read_ec.message();
}

TEST_F(WebSocketOverTlsStream, ClientInitiatedCloseTearsDownTheServer) {
  error_code server_ec, client_ec;
  Tasks tasks(io_);
  tasks.spawn([&]() -> asio::awaitable<void> {
    beast::flat_buffer buf;
    co_await server_->async_read(buf, use_ec(server_ec));
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await client_->async_close(websocket::close_code::normal, use_ec(client_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(server_ec, websocket::error::closed) << server_ec.message();
  EXPECT_EQ(server_->reason().code, websocket::close_code::normal);
  EXPECT_FALSE(client_ec) << client_ec.message();
  EXPECT_FALSE(beast::get_lowest_layer(*server_).is_open()) << "teardown closes the socket";
}

TEST_F(WebSocketOverTlsStream, ServerInitiatedCloseWhileItsReadIsPending) {
  bool read_started = false;
  error_code server_read_ec, server_close_ec, client_ec;
  Tasks tasks(io_);
  tasks.spawn([&]() -> asio::awaitable<void> {
    beast::flat_buffer buf;
    read_started = true;
    co_await server_->async_read(buf, use_ec(server_read_ec));
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    while (!read_started) co_await asio::post(io_, asio::use_awaitable);
    co_await server_->async_close(websocket::close_code::going_away, use_ec(server_close_ec));
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    beast::flat_buffer buf;
    co_await client_->async_read(buf, use_ec(client_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(server_close_ec) << server_close_ec.message();
  // Beast: the close operation finishes the closing handshake; the pending read it overtook
  // completes with operation_aborted (the same over Beast's ssl_stream).
  EXPECT_EQ(server_read_ec, asio::error::operation_aborted) << server_read_ec.message();
  EXPECT_EQ(client_ec, websocket::error::closed) << client_ec.message();
  EXPECT_EQ(client_->reason().code, websocket::close_code::going_away);
  EXPECT_FALSE(beast::get_lowest_layer(*server_).is_open());
}

TEST_F(WebSocketOverTlsStream, WebSocketTimeoutClosesTheSocketUnderTlsStream) {
  // Beast's idle timeout closes get_lowest_layer(ws), the tcp::socket under our TlsStream.
  server_->set_option(websocket::stream_base::timeout{std::chrono::seconds(5),
                                                      std::chrono::milliseconds(100), false});
  error_code ec;
  Tasks tasks(io_);
  tasks.spawn([&]() -> asio::awaitable<void> {
    beast::flat_buffer buf;
    co_await server_->async_read(buf, use_ec(ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(ec, beast::error::timeout) << ec.message();
  EXPECT_FALSE(beast::get_lowest_layer(*server_).is_open());
}

TEST_F(WebSocketOverTlsStream, SynchronousTeardownClosesTheSocket) {
  error_code ec;
  teardown(boost::beast::role_type::server, server_->next_layer(), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(server_->next_layer().socket().is_open());
  // The peer sees the close_notify sent by the teardown.
  error_code client_ec;
  Tasks tasks(io_);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await client_->next_layer().async_read_some(asio::buffer(&byte, 1), use_ec(client_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(client_ec, asio::error::eof) << client_ec.message();
}

// ---- TLS 1.3 record layer after the handshake (tls13_records.hpp) --------------------------------

class Tls13RecordSuites : public ::testing::TestWithParam<const char*> {};

TEST_P(Tls13RecordSuites, EchoesFromOneByteToOneMebibyteInBothDirections) {
  asio::io_context io;
  TakenOver pair(io, GetParam());
  ASSERT_TRUE(pair.start(io));
  EXPECT_EQ(pair.identity_cn, "device-1");
  EXPECT_EQ(pair.server->native_handle(), nullptr) << "the SSL object is freed";
  EXPECT_STREQ(SSL_CIPHER_get_name(SSL_get_current_cipher(pair.client->native_handle())),
               GetParam());
  {
    Tasks tasks(io);
    tasks.spawn([&] { return echo_back(*pair.server, kEchoSizes); });
    tasks.spawn([&] { return send_and_check(*pair.client, kEchoSizes, 30); });
    ASSERT_TRUE(tasks.run());
  }
  io.restart();
  {
    Tasks tasks(io);
    tasks.spawn([&] { return send_and_check(*pair.server, kEchoSizes, 40); });
    tasks.spawn([&] { return echo_back(*pair.client, kEchoSizes); });
    ASSERT_TRUE(tasks.run());
  }
}

TEST_P(Tls13RecordSuites, KeyUpdatesFromThePeerAreFollowedAndAnswered) {
  // Each round the client asks for a key update (its next record carries KeyUpdate with
  // update_requested); the server must move its read keys, send its own KeyUpdate before its
  // next record and move its write keys, or OpenSSL on the client fails the record's MAC.
  asio::io_context io;
  TakenOver pair(io, GetParam());
  ASSERT_TRUE(pair.start(io));
  for (int round = 0; round < 4; ++round) {
    ASSERT_EQ(SSL_key_update(pair.client->native_handle(),
                             round % 2 == 0 ? SSL_KEY_UPDATE_REQUESTED
                                            : SSL_KEY_UPDATE_NOT_REQUESTED),
              1);
    Tasks tasks(io);
    tasks.spawn([&] { return echo_back(*pair.server, kSmallSizes); });
    tasks.spawn([&] { return send_and_check(*pair.client, kSmallSizes, 50 + round); });
    ASSERT_TRUE(tasks.run()) << "round " << round;
    io.restart();
  }
}

INSTANTIATE_TEST_SUITE_P(Tls13, Tls13RecordSuites,
                         ::testing::Values("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                           "TLS_CHACHA20_POLY1305_SHA256"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::erase(name, '_');
                           return name;
                         });

TEST(Tls13Records, Tls12ConnectionsStayWithOpenSsl) {
  asio::io_context io;
  TakenOver pair(io, nullptr, TLS1_2_VERSION);
  EXPECT_FALSE(pair.start(io));
  ASSERT_NE(pair.server->native_handle(), nullptr);
  Tasks tasks(io);
  tasks.spawn([&] { return echo_back(*pair.server, kSmallSizes); });
  tasks.spawn([&] { return send_and_check(*pair.client, kSmallSizes, 60); });
  EXPECT_TRUE(tasks.run());
}

TEST(Tls13Records, WithoutTheKeyLogHookNothingIsTakenOver) {
  asio::io_context io;
  OursVsAsio pair(io);
  ASSERT_TRUE(pair.handshake(io));
  EXPECT_FALSE(pair.server->take_over_records());
  EXPECT_NE(pair.server->native_handle(), nullptr);
}

// The client's application traffic secret, from the client context's key log (the test only).
std::string g_client_traffic_secret;

void client_keylog(const SSL*, const char* line) {
  const std::string text(line);
  if (!text.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) return;
  const std::string hex = text.substr(text.rfind(' ') + 1);
  g_client_traffic_secret.clear();
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    g_client_traffic_secret.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
}

// HKDF-Expand-Label(secret, label, "", n) with SHA-256 (RFC 8446 §7.1), for the test's own records.
std::string expand_label_sha256(const std::string& secret, const std::string& label, std::size_t n) {
  std::string info;
  info.push_back(static_cast<char>(n >> 8));
  info.push_back(static_cast<char>(n));
  info.push_back(static_cast<char>(6 + label.size()));
  info += "tls13 " + label;
  info.push_back('\0');
  std::string out(n, '\0');
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  std::size_t len = n;
  const bool ok =
      ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
      EVP_PKEY_CTX_set_hkdf_mode(ctx, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) == 1 &&
      EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
      EVP_PKEY_CTX_set1_hkdf_key(ctx, reinterpret_cast<const unsigned char*>(secret.data()),
                                 static_cast<int>(secret.size())) == 1 &&
      EVP_PKEY_CTX_add1_hkdf_info(ctx, reinterpret_cast<const unsigned char*>(info.data()),
                                  static_cast<int>(info.size())) == 1 &&
      EVP_PKEY_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), &len) == 1;
  EVP_PKEY_CTX_free(ctx);
  EXPECT_TRUE(ok);
  return out;
}

// The client's first application record (sequence 0) carrying `inner` (TLSInnerPlaintext:
// content, type, padding) under TLS_AES_128_GCM_SHA256, sealed by the test itself.
std::string seal_first_client_record(const std::string& inner) {
  const std::string key = expand_label_sha256(g_client_traffic_secret, "key", 16);
  const std::string iv = expand_label_sha256(g_client_traffic_secret, "iv", 12);  // xor 0
  const std::size_t length = inner.size() + 16;
  std::string record = {'\x17', '\x03', '\x03', static_cast<char>(length >> 8),
                        static_cast<char>(length)};
  std::string body(inner.size(), '\0'), tag(16, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  auto u = [](const std::string& x) { return reinterpret_cast<const unsigned char*>(x.data()); };
  auto w = [](std::string& x) { return reinterpret_cast<unsigned char*>(x.data()); };
  const bool ok =
      EVP_EncryptInit_ex2(ctx, EVP_aes_128_gcm(), u(key), u(iv), nullptr) == 1 &&
      EVP_EncryptUpdate(ctx, nullptr, &n, u(record), 5) == 1 &&
      EVP_EncryptUpdate(ctx, w(body), &n, u(inner), static_cast<int>(inner.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx, w(body) + n, &n) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, w(tag)) == 1;
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_TRUE(ok);
  return record + body + tag;
}

// Raw bytes written under the client's TLS: the server must refuse them, say why with the
// matching alert, and fail every later call the same way. `make_raw` runs after the handshake
// (the client's key log has run by then).
void expect_refused(const std::function<std::string()>& make_raw, error_code expected,
                    const char* client_sees) {
  asio::io_context io;
  TakenOver pair(io, "TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_keylog_callback(pair.client_ctx.native_handle(), client_keylog);
  ASSERT_TRUE(pair.start(io));
  const std::string raw = make_raw();
  asio::write(pair.client->next_layer(), asio::buffer(raw));
  error_code ec, again_ec, client_ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(ec));
    co_await pair.server->async_write_some(asio::buffer("x", 1), use_ec(again_ec));
    error_code ignored;
    pair.server->close(ignored);
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await pair.client->async_read_some(asio::buffer(&byte, 1), use_ec(client_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(ec, expected) << ec.message();
  EXPECT_EQ(again_ec, expected) << again_ec.message();
  EXPECT_NE(client_ec.message().find(client_sees), std::string::npos) << client_ec.message();
}

void expect_refused(const std::string& raw, error_code expected, const char* client_sees) {
  expect_refused([&raw] { return raw; }, expected, client_sees);
}

TEST(Tls13Records, ForgedRecordFailsWithBadRecordMac) {
  std::string raw = "\x17\x03\x03";
  raw += std::string("\x00\x20", 2) + random_bytes(32, 7);
  expect_refused(raw, Tls13Errc::bad_record_mac, "bad record mac");
}

TEST(Tls13Records, OversizeRecordFailsWithRecordOverflow) {
  expect_refused(std::string("\x17\x03\x03\x41\x01", 5) + random_bytes(64, 8),
                 Tls13Errc::record_overflow, "record overflow");
}

TEST(Tls13Records, PaddingPastTheInnerPlaintextLimitFailsWithRecordOverflow) {
  // RFC 8446 §5.4: TLSInnerPlaintext (content, type and padding) is at most 2^14 + 1 bytes.
  // 2^14 bytes of data, the type and 16 bytes of padding fit the ciphertext limit but not this.
  expect_refused(
      [] { return seal_first_client_record(std::string(16384, 'a') + '\x17' + std::string(16, '\0')); },
      Tls13Errc::record_overflow, "record overflow");
}

TEST(Tls13Records, TestSealedRecordWithPaddingWithinTheLimitIsRead) {
  // The control for the test above: the same sealing, within the limit, is plain data.
  asio::io_context io;
  TakenOver pair(io, "TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_keylog_callback(pair.client_ctx.native_handle(), client_keylog);
  ASSERT_TRUE(pair.start(io));
  asio::write(pair.client->next_layer(),
              asio::buffer(seal_first_client_record(std::string(16383, 'a') + '\x17' + '\0')));
  std::string got(16383, '\0');
  error_code ec;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await asio::async_read(*pair.server, asio::buffer(got), use_ec(ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, std::string(16383, 'a'));
}

TEST(Tls13Records, FailedKeyDerivationForOurKeyUpdateSendsTheAlertUnderTheCurrentKeys) {
  // L2: the client asks for a KeyUpdate; deriving our next write key fails. The alert must be
  // sealed under the keys the client still uses, at the next sequence number: then the client
  // reads "internal error". Before the fix the sequence number was reset to 0 before the
  // derivation, so the alert reused the first nonce of the old key (the client saw a bad MAC).
  asio::io_context io;
  TakenOver pair(io, "TLS_AES_128_GCM_SHA256");
  ASSERT_TRUE(pair.start(io));
  ASSERT_EQ(SSL_key_update(pair.client->native_handle(), SSL_KEY_UPDATE_REQUESTED), 1);
  {
    Tasks tasks(io);
    tasks.spawn([&] { return echo_back(*pair.server, kSmallSizes); });
    tasks.spawn([&] { return send_and_check(*pair.client, kSmallSizes, 90); });
    ASSERT_TRUE(tasks.run());
    io.restart();
  }
  ASSERT_EQ(SSL_key_update(pair.client->native_handle(), SSL_KEY_UPDATE_REQUESTED), 1);
  error_code read_ec, write_ec, client_ec;
  {
    Tasks tasks(io);
    tasks.spawn([&]() -> asio::awaitable<void> {
      char byte = 0;
      co_await pair.server->async_read_some(asio::buffer(&byte, 1), use_ec(read_ec));
      // The read moved the read keys; the next derivation pair is "traffic upd", then "key".
      Tls13Records::fail_key_derivation_for_test(1);
      co_await pair.server->async_write_some(asio::buffer("x", 1), use_ec(write_ec));
      Tls13Records::fail_key_derivation_for_test(-1);
    });
    tasks.spawn([&]() -> asio::awaitable<void> {
      co_await asio::async_write(*pair.client, asio::buffer("y", 1), use_ec(client_ec));
      char byte = 0;
      co_await pair.client->async_read_some(asio::buffer(&byte, 1), use_ec(client_ec));
    });
    ASSERT_TRUE(tasks.run());
  }
  Tls13Records::fail_key_derivation_for_test(-1);
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_EQ(write_ec, Tls13Errc::crypto_failure) << write_ec.message();
  EXPECT_NE(client_ec.message().find("internal error"), std::string::npos) << client_ec.message();
}

TEST(Tls13Records, PlaintextRecordTypeAfterTheHandshakeIsUnexpected) {
  expect_refused(std::string("\x16\x03\x03\x00\x05\x18\x00\x00\x01\x00", 10),
                 Tls13Errc::unexpected_message, "unexpected message");
}

TEST(Tls13Records, APeerSendingOnlyKeyUpdatesIsCutOff) {
  // 40 KeyUpdates and no data: without a cap the server's read would loop for as long as the
  // peer keeps sending them, holding its shard thread. The client is TlsStream (OpenSSL on the
  // socket itself), so each SSL_do_handshake puts one KeyUpdate record on the wire.
  asio::io_context io;
  pki::VehicleServerContext server_ctx = server_context();
  enable_tls13_record_takeover(server_ctx.context.native_handle());
  ssl::context client_ctx = client_context();
  SocketPair p = connect_pair(io);
  TlsStream server(std::move(p.server), server_ctx.context.native_handle(), TlsStream::Role::server);
  TlsStream client(std::move(p.client), client_ctx.native_handle(), TlsStream::Role::client);
  error_code server_ec, client_ec, read_ec;
  {
    Tasks tasks(io);
    tasks.spawn([&]() -> asio::awaitable<void> { co_await server.async_handshake(use_ec(server_ec)); });
    tasks.spawn([&]() -> asio::awaitable<void> { co_await client.async_handshake(use_ec(client_ec)); });
    ASSERT_TRUE(tasks.run());
    io.restart();
  }
  ASSERT_FALSE(server_ec) << server_ec.message();
  ASSERT_FALSE(client_ec) << client_ec.message();
  ASSERT_TRUE(server.take_over_records());
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(SSL_key_update(client.native_handle(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(client.native_handle()), 1) << "update " << i;
  }
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    char byte = 0;
    co_await server.async_read_some(asio::buffer(&byte, 1), use_ec(read_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_EQ(read_ec, Tls13Errc::too_many_empty_records) << read_ec.message();
}

TEST(Tls13Records, NoTakeOverOnceOpenSslHasCarriedData) {
  // The record layer starts at sequence number 0: after one SSL_read it would be out of step.
  asio::io_context io;
  TakenOver pair(io);
  ASSERT_TRUE(pair.handshake(io));
  Tasks tasks(io);
  tasks.spawn([&] { return echo_back(*pair.server, kSmallSizes); });
  tasks.spawn([&] { return send_and_check(*pair.client, kSmallSizes, 70); });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(pair.server->take_over_records());
  EXPECT_NE(pair.server->native_handle(), nullptr);
}

TEST(Tls13Records, WebSocketOverTakenOverStreamEchoesAndCloses) {
  asio::io_context io;
  TakenOver pair(io);
  ASSERT_TRUE(pair.start(io));
  OurWs server(std::move(*pair.server));
  websocket::stream<AsioTls&> client(*pair.client);
  error_code accept_ec, handshake_ec, close_ec, end_ec;
  std::string echoed;
  Tasks tasks(io);
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await server.async_accept(use_ec(accept_ec));
    beast::flat_buffer buf;
    for (;;) {
      error_code ec;
      co_await server.async_read(buf, use_ec(ec));
      if (ec) {
        end_ec = ec;
        co_return;
      }
      server.binary(true);
      co_await server.async_write(buf.data(), use_ec(ec));
      buf.consume(buf.size());
    }
  });
  tasks.spawn([&]() -> asio::awaitable<void> {
    co_await client.async_handshake("localhost", "/", use_ec(handshake_ec));
    if (handshake_ec) co_return;
    client.binary(true);
    const std::string message = random_bytes(70000, 9);
    error_code ec;
    co_await client.async_write(asio::buffer(message), use_ec(ec));
    beast::flat_buffer buf;
    co_await client.async_read(buf, use_ec(ec));
    echoed = beast::buffers_to_string(buf.data());
    EXPECT_TRUE(echoed == message);
    co_await client.async_close(websocket::close_code::normal, use_ec(close_ec));
  });
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(accept_ec) << accept_ec.message();
  EXPECT_FALSE(handshake_ec) << handshake_ec.message();
  EXPECT_FALSE(close_ec) << close_ec.message();
  EXPECT_EQ(end_ec, websocket::error::closed) << end_ec.message();
}

}  // namespace
}  // namespace ts::runtime
