#include "pki/tests/test_pki.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <random>
#include <stdexcept>

#include "pki/tls_context.hpp"

namespace ts::pki::test {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
std::chrono::system_clock::time_point now() { return std::chrono::system_clock::now(); }

KeyGenerator& keys() {
  thread_local KeyGenerator generator;
  return generator;
}
}  // namespace

KeyedCert make_ca(std::vector<NameEntry> subject, const KeyedCert* parent) {
  CertificateSpec spec;
  spec.subject = std::move(subject);
  spec.is_ca = true;
  spec.not_before = now() - std::chrono::hours(1);
  spec.not_after = now() + std::chrono::hours(24 * 30);
  KeyedCert ca;
  ca.key = keys().generate();
  ca.cert = parent != nullptr
                ? issue_certificate(spec, ca.key.get(), parent->cert.get(), parent->key.get())
                : issue_certificate(spec, ca.key.get(), nullptr, ca.key.get());
  return ca;
}

KeyedCert make_leaf(std::vector<NameEntry> subject, std::vector<std::string> ext_key_usage,
                    const KeyedCert& issuer, std::vector<std::string> dns_names,
                    std::vector<std::string> ip_addresses) {
  CertificateSpec spec;
  spec.subject = std::move(subject);
  spec.ext_key_usage = std::move(ext_key_usage);
  spec.dns_names = std::move(dns_names);
  spec.ip_addresses = std::move(ip_addresses);
  spec.not_before = now() - std::chrono::hours(1);
  spec.not_after = now() + std::chrono::hours(24);
  KeyedCert leaf;
  leaf.key = keys().generate();
  leaf.cert = issue_certificate(spec, leaf.key.get(), issuer.cert.get(), issuer.key.get());
  return leaf;
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device random;
  path_ = std::filesystem::path(::testing::TempDir()) /
          ("pki_test_" + std::to_string(::getpid()) + "_" + std::to_string(random()) + "_" +
           std::to_string(counter++));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const auto file = path_ / name;
  std::ofstream out(file, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + file.string());
  return file.string();
}

std::string pem_of(std::initializer_list<X509*> certs) {
  std::string pem;
  for (X509* cert : certs) pem += to_pem(cert);
  return pem;
}

X509Ptr load_cert(const std::filesystem::path& path) {
  std::string error;
  auto pem = read_file(path, error);
  if (!pem) throw std::runtime_error(path.string() + ": " + error);
  auto certs = read_pem_certificates(*pem);
  if (certs.empty()) throw std::runtime_error(path.string() + ": no certificate");
  return std::move(certs.front());
}

TestServer::TestServer(ssl::context& context)
    : context_(context), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

asio::awaitable<void> TestServer::accept_loop() {
  for (;;) {
    error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(io_, session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> TestServer::session(tcp::socket socket) {
  ssl::stream<tcp::socket> stream(std::move(socket), context_);
  error_code ec;
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  ServerOutcome outcome;
  outcome.handshake = ec;
  if (!ec) {
    outcome.id = identity_from_connection(stream.native_handle());
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(stream.native_handle(), &alpn, &alpn_len);
    outcome.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  }
  record(std::move(outcome));
  if (ec) co_return;
  std::string request;
  co_await asio::async_read_until(stream, asio::dynamic_buffer(request, 8192), "\r\n\r\n",
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  // spec §2.4: /status answers `mtls ok` on the mTLS port.
  const bool status = request.rfind("GET /status ", 0) == 0;
  const std::string body = status ? "mtls ok" : "not found";
  const std::string response =
      std::string(status ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found") +
      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  co_await asio::async_write(stream, asio::buffer(response),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

TestServer::~TestServer() {
  io_.stop();
  thread_.join();
}

void TestServer::record(ServerOutcome outcome) {
  std::lock_guard lock(mutex_);
  outcomes_.push_back(std::move(outcome));
  changed_.notify_all();
}

std::vector<ServerOutcome> TestServer::wait_for_outcomes(std::size_t n,
                                                         std::chrono::milliseconds deadline) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, deadline, [&] { return outcomes_.size() >= n; });
  return std::vector<ServerOutcome>(outcomes_.begin(),
                                    outcomes_.begin() + std::min(n, outcomes_.size()));
}

ClientOutcome run_client(ssl::context& context, std::uint16_t port, const std::string& server_name,
                         std::chrono::milliseconds deadline) {
  asio::io_context io;
  ClientOutcome outcome;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        ssl::stream<tcp::socket> stream(io, context);
        if (!expect_server_name(stream.native_handle(), server_name)) {
          throw std::runtime_error("expect_server_name refused " + server_name);
        }
        error_code ec;
        co_await stream.lowest_layer().async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
            asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) {
          co_await stream.async_handshake(ssl::stream_base::client,
                                          asio::redirect_error(asio::use_awaitable, ec));
        }
        outcome.handshake = ec;
        if (!ec) {
          const std::string request = "GET /status HTTP/1.1\r\nHost: " + server_name + "\r\n\r\n";
          co_await asio::async_write(stream, asio::buffer(request),
                                     asio::redirect_error(asio::use_awaitable, ec));
          if (!ec) {
            co_await asio::async_read(stream, asio::dynamic_buffer(outcome.response, 8192),
                                      asio::redirect_error(asio::use_awaitable, ec));
          }
          // The server closes after its answer: EOF (or a truncated stream) ends a good exchange.
          if (ec == asio::error::eof || ec == ssl::error::stream_truncated) ec = {};
          outcome.exchange = ec;
        }
        outcome.finished = true;
      },
      asio::detached);
  io.run_for(deadline);
  return outcome;
}

std::uint16_t unused_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace ts::pki::test
