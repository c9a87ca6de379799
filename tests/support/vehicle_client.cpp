#include "support/vehicle_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ts::testsupport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct VehicleClient::Impl {
  VehicleClientOptions opt;
  asio::io_context io;
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  std::unique_ptr<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> ws;
  beast::flat_buffer buffer;
  std::thread thread;

  std::mutex mutex;  // guards replies, closed, close_frame
  std::condition_variable cv;
  std::deque<std::vector<std::uint8_t>> replies;
  bool closed = false;
  bool close_frame = false;

  explicit Impl(VehicleClientOptions o) : opt(std::move(o)) {
    ssl.set_verify_mode(asio::ssl::verify_peer);
    ssl.load_verify_file(opt.ca_file);
    if (!opt.cert_file.empty()) {
      ssl.use_certificate_chain_file(opt.cert_file);
      ssl.use_private_key_file(opt.key_file, asio::ssl::context::pem);
    }
    ws = std::make_unique<websocket::stream<beast::ssl_stream<beast::tcp_stream>>>(io, ssl);
    auto& lowest = beast::get_lowest_layer(*ws);
    lowest.expires_after(opt.connect_timeout);
    try {
      lowest.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), opt.port));
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("TCP connect: ") + e.what());
    }
    SSL_set_tlsext_host_name(ws->next_layer().native_handle(), opt.server_name.c_str());
    ws->next_layer().set_verify_callback(asio::ssl::host_name_verification(opt.server_name));
    boost::system::error_code ec;
    ws->next_layer().handshake(asio::ssl::stream_base::client, ec);
    if (ec) throw std::runtime_error("TLS handshake: " + ec.message());
    ws->set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
      for (const auto& [k, v] : opt.headers) req.set(k, v);
    }));
    ws->handshake(opt.server_name, opt.target, ec);
    if (ec) throw std::runtime_error("WebSocket upgrade: " + ec.message());
    lowest.expires_never();
    ws->binary(true);
    read_next();
    thread = std::thread([this] { io.run(); });
  }

  void read_next() {
    ws->async_read(buffer, [this](boost::system::error_code ec, std::size_t) {
      std::lock_guard lock(mutex);
      if (ec) {
        closed = true;
        close_frame = ec == websocket::error::closed;
        if (std::getenv("TS_DEBUG_CLIENT")) std::fprintf(stderr, "client read ended: %s\n", ec.message().c_str());
        cv.notify_all();
        return;
      }
      auto data = buffer.cdata();
      const auto* p = static_cast<const std::uint8_t*>(data.data());
      replies.emplace_back(p, p + data.size());
      buffer.consume(buffer.size());
      cv.notify_all();
      read_next();
    });
  }

  void write(std::vector<std::uint8_t> bytes, bool text) {
    std::promise<boost::system::error_code> done;
    auto buf = std::make_shared<std::vector<std::uint8_t>>(std::move(bytes));
    asio::post(io, [this, &done, buf, text] {
      ws->text(text);
      ws->async_write(asio::buffer(*buf), [this, &done, buf](boost::system::error_code ec, std::size_t) {
        ws->binary(true);
        done.set_value(ec);
      });
    });
    auto ec = done.get_future().get();
    if (ec) throw std::runtime_error("write: " + ec.message());
  }

  ~Impl() {
    asio::post(io, [this] {
      boost::system::error_code ec;
      beast::get_lowest_layer(*ws).socket().close(ec);
    });
    if (thread.joinable()) thread.join();
  }
};

VehicleClient::VehicleClient(VehicleClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

VehicleClient::~VehicleClient() = default;

void VehicleClient::send_binary(const std::vector<std::uint8_t>& frame) { impl_->write(frame, false); }

void VehicleClient::send_text(const std::string& text) {
  impl_->write(std::vector<std::uint8_t>(text.begin(), text.end()), true);
}

std::optional<std::vector<std::uint8_t>> VehicleClient::receive(std::chrono::milliseconds deadline) {
  std::unique_lock lock(impl_->mutex);
  impl_->cv.wait_for(lock, deadline, [&] { return !impl_->replies.empty() || impl_->closed; });
  if (impl_->replies.empty()) return std::nullopt;
  auto r = std::move(impl_->replies.front());
  impl_->replies.pop_front();
  return r;
}

bool VehicleClient::wait_closed(std::chrono::milliseconds deadline) {
  std::unique_lock lock(impl_->mutex);
  return impl_->cv.wait_for(lock, deadline, [&] { return impl_->closed; });
}

bool VehicleClient::got_close_frame() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->close_frame;
}

void VehicleClient::close() {
  std::promise<void> done;
  asio::post(impl_->io, [&] {
    impl_->ws->async_close(websocket::close_code::normal,
                           [&](boost::system::error_code) { done.set_value(); });
  });
  done.get_future().wait_for(std::chrono::seconds(5));
  wait_closed(std::chrono::seconds(5));
}

}  // namespace ts::testsupport
