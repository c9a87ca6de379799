#pragma once
/// Test support for pki: certificates of any shape (spec §2.3 and the vectors' certificate
/// table), a temporary directory, and a small mTLS server and client on 127.0.0.1 with bounded
/// waits. Test code: failures throw or fail the current test.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pki/certificate.hpp"
#include "pki/identity.hpp"
#include "pki/openssl.hpp"

namespace ts::pki::test {

/// A certificate with its key.
struct KeyedCert {
  X509Ptr cert;
  EvpPkeyPtr key;
};

/// A CA with subject `subject`, self-signed unless `parent` is given.
KeyedCert make_ca(std::vector<NameEntry> subject, const KeyedCert* parent = nullptr);

/// A leaf issued by `issuer` with EKU OIDs in this order and optional SANs.
KeyedCert make_leaf(std::vector<NameEntry> subject, std::vector<std::string> ext_key_usage,
                    const KeyedCert& issuer, std::vector<std::string> dns_names = {},
                    std::vector<std::string> ip_addresses = {});

/// A unique directory under the test temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// Writes `content` to path()/name and returns the full path as a string.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

/// PEM of several certificates, concatenated in order.
std::string pem_of(std::initializer_list<X509*> certs);

/// The first certificate in a PEM file.
X509Ptr load_cert(const std::filesystem::path& path);

/// What the test server saw on one connection.
struct ServerOutcome {
  boost::system::error_code handshake;     ///< set if the TLS handshake failed
  std::optional<ts::Result<Identity>> id;  ///< spec §2.3 on the verified chain, when it succeeded
  std::string alpn;                        ///< negotiated ALPN protocol ("" = none)
};

/// An mTLS server on 127.0.0.1 (ephemeral port) running `context` on its own thread: it records
/// each connection's handshake result and identity and answers `GET /status` with `mtls ok`
/// (spec §2.4). The destructor stops the thread.
class TestServer {
 public:
  explicit TestServer(boost::asio::ssl::context& context);
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::uint16_t port() const { return port_; }

  /// The outcomes of the first `n` connections, waiting at most `deadline` for them; returns
  /// fewer if they did not arrive in time.
  std::vector<ServerOutcome> wait_for_outcomes(
      std::size_t n, std::chrono::milliseconds deadline = std::chrono::seconds(10));

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket);
  void record(ServerOutcome outcome);

  boost::asio::ssl::context& context_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::mutex mutex_;  // guards outcomes_
  std::condition_variable changed_;
  std::vector<ServerOutcome> outcomes_;
  std::thread thread_;
};

/// What a client saw: the handshake result and, after it, the HTTP exchange.
struct ClientOutcome {
  boost::system::error_code handshake;
  boost::system::error_code exchange;  ///< error writing the request or reading the response
  std::string response;                ///< raw HTTP response bytes
  bool finished = false;               ///< false: the deadline passed first
};

/// Connects to 127.0.0.1:`port` with `context`, expects `server_name` (pki::expect_server_name),
/// handshakes and sends `GET /status`, reading the response until the server closes.
ClientOutcome run_client(boost::asio::ssl::context& context, std::uint16_t port,
                         const std::string& server_name = "localhost",
                         std::chrono::milliseconds deadline = std::chrono::seconds(10));

/// A port on 127.0.0.1 where nothing listens (bound, then released).
std::uint16_t unused_port();

}  // namespace ts::pki::test
