#pragma once
/// What both MQTT clients (telemetry-server's publisher, teslasync-api's subscriber) need to talk
/// to a broker over TCP or TLS: the client TLS context from the options' files, and reads/writes
/// on an `ssl::stream` whose TLS layer is skipped when the connection is plain.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>

namespace ts::mqtt {

using BrokerStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

struct TlsFiles {
  bool tls = false;
  std::string ca_file;    ///< empty: the system's default CAs
  std::string cert_file;  ///< client certificate chain, optional
  std::string key_file;   ///< empty: taken from cert_file
};

/// TLS 1.2+ only. With `files.tls`: verify the broker against the CAs, load the client
/// certificate and key if given. Throws std::runtime_error "<who> <what> <path>: <reason>".
void configure_client_tls(boost::asio::ssl::context& ctx, const TlsFiles& files,
                          const std::string& who);

/// async_write / async_read_some through TLS when `tls`, else on the TCP socket underneath.
template <class Buffers>
boost::asio::awaitable<std::size_t> write(BrokerStream& stream, bool tls, const Buffers& buffers,
                                          boost::system::error_code& ec) {
  auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
  if (tls) co_return co_await boost::asio::async_write(stream, buffers, token);
  co_return co_await boost::asio::async_write(stream.next_layer(), buffers, token);
}

inline boost::asio::awaitable<std::size_t> read_some(BrokerStream& stream, bool tls,
                                                     boost::asio::mutable_buffer buffer,
                                                     boost::system::error_code& ec) {
  auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
  if (tls) co_return co_await stream.async_read_some(buffer, token);
  co_return co_await stream.next_layer().async_read_some(buffer, token);
}

}  // namespace ts::mqtt
