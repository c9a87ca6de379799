#include "runtime/tls_stream.hpp"

#include <openssl/err.h>

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>
#include <cerrno>

namespace ts::runtime {

namespace asio = boost::asio;
using boost::system::error_code;
using detail::TlsStep;
using detail::TlsWant;

namespace {

// An entry of OpenSSL's error queue as an error_code whose message() is OpenSSL's reason.
error_code from_openssl(unsigned long e) {
  if (ERR_SYSTEM_ERROR(e) || ERR_GET_LIB(e) == ERR_LIB_SYS) {
    return {static_cast<int>(ERR_GET_REASON(e)), boost::system::system_category()};
  }
  if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    // The peer closed TCP without close_notify: the name Asio's ssl::stream uses for it.
    return asio::ssl::error::stream_truncated;
  }
  // Library errors pack lib (< 2^8) and reason (< 2^23) below bit 31: they fit an int.
  return {static_cast<int>(e), asio::error::get_ssl_category()};
}

[[noreturn]] void throw_openssl(const char* what) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0)
    throw boost::system::system_error(make_error_code(std::errc::not_enough_memory), what);
  throw boost::system::system_error(from_openssl(e), what);
}

}  // namespace

TlsStream::TlsStream(asio::ip::tcp::socket socket, SSL_CTX* context, Role role)
    : socket_(std::move(socket)), role_(role) {
  // OpenSSL's socket BIO calls recv()/send() itself: the descriptor must not block.
  socket_.non_blocking(true);
  ERR_clear_error();
  ssl_ = SSL_new(context);
  if (ssl_ == nullptr) throw_openssl("SSL_new");
  // Partial writes give write_some semantics; a moving buffer lets a retry come from a moved
  // operation (same bytes, other address); released buffers are the point of this class.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                         SSL_MODE_RELEASE_BUFFERS);
  // The BIO does not own the descriptor (BIO_NOCLOSE): socket_ closes it.
  if (SSL_set_fd(ssl_, socket_.native_handle()) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    throw_openssl("SSL_set_fd");
  }
  if (role_ == Role::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsStream::~TlsStream() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

TlsStream::TlsStream(TlsStream&& other) noexcept
    : socket_(std::move(other.socket_)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      records_(std::move(other.records_)),
      role_(other.role_),
      fatal_(other.fatal_),
      close_notify_pending_(other.close_notify_pending_),
      io_started_(other.io_started_) {}

TlsStream& TlsStream::operator=(TlsStream&& other) noexcept {
  if (this != &other) {
    if (ssl_ != nullptr) SSL_free(ssl_);
    socket_ = std::move(other.socket_);
    ssl_ = std::exchange(other.ssl_, nullptr);
    records_ = std::move(other.records_);
    role_ = other.role_;
    fatal_ = other.fatal_;
    close_notify_pending_ = other.close_notify_pending_;
    io_started_ = other.io_started_;
  }
  return *this;
}

void TlsStream::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
}

bool TlsStream::take_over_records() {
  // The record layer starts at sequence number 0: only before the first SSL_read/SSL_write.
  if (role_ != Role::server || ssl_ == nullptr || fatal_ || io_started_) return false;
  records_ = Tls13Records::take_over(ssl_);
  if (!records_) return false;
  SSL_free(ssl_);
  ssl_ = nullptr;
  return true;
}

TlsStep TlsStream::read_step(void* data, std::size_t size) {
  if (size == 0) return {};
  if (!socket_.is_open()) return {asio::error::bad_descriptor};
  if (records_) return records_->read(socket_.native_handle(), data, size);
  io_started_ = true;
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int ret = SSL_read_ex(ssl_, data, size, &n);
  const int saved_errno = errno;
  if (ret == 1) return {{}, n};
  return fail(ret, saved_errno);
}

TlsStep TlsStream::write_step(const void* data, std::size_t size) {
  if (size == 0) return {};
  if (!socket_.is_open()) return {asio::error::bad_descriptor};
  if (records_) return records_->write(socket_.native_handle(), data, size);
  io_started_ = true;
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int ret = SSL_write_ex(ssl_, data, size, &n);
  const int saved_errno = errno;
  if (ret == 1) return {{}, n};
  return fail(ret, saved_errno);
}

TlsStep TlsStream::handshake_step() {
  if (!socket_.is_open()) return {asio::error::bad_descriptor};
  if (records_) return {};  // long done
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl_);
  const int saved_errno = errno;
  if (ret == 1) return {};
  return fail(ret, saved_errno);
}

TlsStep TlsStream::shutdown_step() {
  if (!socket_.is_open()) return {asio::error::bad_descriptor};
  if (records_) return records_->shutdown(socket_.native_handle());
  if (fatal_ || SSL_is_init_finished(ssl_) != 1) return {};
  const bool sent = (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0;
  // A second SSL_shutdown would read (waiting for the peer's close_notify): never do that.
  if (sent && !close_notify_pending_) return {};
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_shutdown(ssl_);
  const int saved_errno = errno;
  close_notify_pending_ = false;
  if (ret >= 0) {
    ERR_clear_error();
    return {};  // 0: ours is out, the peer's has not come; 1: both
  }
  TlsStep step = fail(ret, saved_errno);
  if (step.want == TlsWant::write) close_notify_pending_ = true;
  if (step.want == TlsWant::read) step = {};  // ours is out; it wants the peer's: not our business
  return step;
}

TlsStep TlsStream::fail(int ret, int saved_errno) {
  TlsStep step;
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      step.want = TlsWant::read;
      break;
    case SSL_ERROR_WANT_WRITE:
      step.want = TlsWant::write;
      break;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: a clean end of the stream
      step.ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL: {
      fatal_ = true;
      const unsigned long e = ERR_get_error();
      if (e != 0) {
        step.ec = from_openssl(e);
      } else if (saved_errno != 0) {
        step.ec = error_code(saved_errno, boost::system::system_category());
      } else {
        step.ec = asio::error::eof;
      }
      break;
    }
    case SSL_ERROR_SSL: {
      fatal_ = true;
      const unsigned long e = ERR_get_error();
      step.ec = e != 0 ? from_openssl(e) : error_code(asio::ssl::error::unexpected_result);
      break;
    }
    default:  // WANT_X509_LOOKUP, WANT_ASYNC, ...: callbacks and engines we never enable
      fatal_ = true;
      step.ec = asio::ssl::error::unexpected_result;
      break;
  }
  // Whatever else OpenSSL queued belongs to this failure: do not leave it to the next caller.
  ERR_clear_error();
  return step;
}

void TlsStream::begin_close() {
  if (!socket_.is_open()) return;
  if (records_) {
    (void)records_->shutdown(socket_.native_handle());  // one attempt, as below
  } else if (!fatal_ && SSL_is_init_finished(ssl_) == 1 &&
      ((SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0 || close_notify_pending_)) {
    // One attempt: if the socket cannot take the alert now, the peer is not reading anyway.
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);
    ERR_clear_error();
    close_notify_pending_ = false;
  }
  error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_send, ignored);
}

TlsStep TlsStream::drain_step() {
  // Raw bytes (the peer's close_notify, a late frame): nobody will decrypt them any more.
  std::array<unsigned char, 512> sink;
  for (int i = 0; i < 16; ++i) {
    error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(sink), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      return {{}, 0, TlsWant::read};
    }
    if (ec || n == 0) return {};  // FIN (eof), reset, closed: nothing more to wait for
  }
  return {{}, 0, TlsWant::read};  // a talkative peer: the caller bounds how often we come back
}

void TlsStream::finish_close(error_code& ec) {
  ec = {};
  if (socket_.is_open()) socket_.close(ec);
}

void TlsStream::close(error_code& ec) {
  begin_close();
  // Unread bytes at close() make the kernel send RST instead of FIN, which can destroy what we
  // sent last: discard what already arrived (without waiting).
  if (socket_.is_open()) (void)drain_step();
  finish_close(ec);
}

void teardown(boost::beast::role_type, TlsStream& stream, error_code& ec) { stream.close(ec); }

struct Deadline::State {
  explicit State(asio::ip::tcp::socket& s) : timer(s.get_executor()), socket(&s) {}
  asio::steady_timer timer;
  asio::ip::tcp::socket* socket;  // null once the Deadline is gone
  std::uint64_t generation = 0;   // which arm() a firing timer belongs to
  bool armed = false;
  bool expired = false;
};

Deadline::Deadline(asio::ip::tcp::socket& socket) : state_(std::make_shared<State>(socket)) {}

Deadline::~Deadline() {
  state_->socket = nullptr;
  state_->armed = false;
  state_->timer.cancel();
}

void Deadline::arm(std::chrono::steady_clock::duration timeout) {
  State& s = *state_;
  s.armed = true;
  s.expired = false;
  const std::uint64_t generation = ++s.generation;
  s.timer.expires_after(timeout);  // cancels the previous wait, if any
  s.timer.async_wait([state = state_, generation](error_code ec) {
    // A handler queued before disarm()/re-arm()/destruction finds its generation stale.
    if (ec || !state->armed || state->generation != generation || state->socket == nullptr) {
      return;
    }
    state->armed = false;
    state->expired = true;
    error_code ignored;
    state->socket->cancel(ignored);
    state->socket->close(ignored);
  });
}

void Deadline::disarm() {
  state_->armed = false;
  state_->timer.cancel();
}

bool Deadline::expired() const { return state_->expired; }

}  // namespace ts::runtime
