#pragma once
/// TLS over a non-blocking TCP socket with OpenSSL driven directly: `TlsStream`, the Beast
/// websocket teardown hooks for it, and `Deadline`, the timeout a caller puts around its
/// operations.
///
/// Why it exists: `asio::ssl::stream` copies every byte through four 17 KiB buffers of its own
/// (stream_core's two vectors and the engine's BIO pair), ~70 KiB per connection even when idle.
/// TlsStream gives OpenSSL the socket itself (`SSL_set_fd`) and calls `SSL_read_ex` /
/// `SSL_write_ex` on the caller's buffers, so an idle connection costs the SSL object and no
/// buffer of ours; with SSL_MODE_RELEASE_BUFFERS OpenSSL frees its record buffers while idle too.
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/append.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <utility>

#include "runtime/tls13_records.hpp"
#include "runtime/tls_step.hpp"

namespace ts::runtime {

class TlsStream;

namespace detail {

/// Tag for the posted re-entry of an operation that finished without waiting (Asio never calls
/// a completion handler from inside the initiating function).
struct TlsDone {};

struct TlsTeardownOp;

template <class Self>
void tls_wait(boost::asio::ip::tcp::socket& socket, TlsWant want, Self&& self) {
  socket.async_wait(want == TlsWant::read ? boost::asio::socket_base::wait_read
                                          : boost::asio::socket_base::wait_write,
                    std::forward<Self>(self));
}

// The loop every TlsStream operation runs: try the step; on WANT_READ/WANT_WRITE wait for the
// socket and try the *same* step again (OpenSSL's retry rule); otherwise complete. `Step` is
// `TlsStep(TlsStream&)`; `kWithBytes` selects void(error_code, size_t) over void(error_code).
template <class Step, bool kWithBytes>
class TlsOp {
 public:
  TlsOp(TlsStream& stream, Step step) : stream_(&stream), step_(std::move(step)) {}

  template <class Self>
  void operator()(Self& self) {
    run(self, /*first=*/true);
  }

  // A wait finished. An error here is operation_aborted (cancel(), a closed socket, a
  // cancellation slot) or a broken descriptor: OpenSSL is not touched again.
  template <class Self>
  void operator()(Self& self, boost::system::error_code ec) {
    if (ec) return finish(self, ec, 0);
    run(self, /*first=*/false);
  }

  template <class Self>
  void operator()(Self& self, TlsDone, boost::system::error_code ec, std::size_t bytes) {
    finish(self, ec, bytes);
  }

 private:
  template <class Self>
  void run(Self& self, bool first);

  template <class Self>
  void finish(Self& self, boost::system::error_code ec, std::size_t bytes) {
    if constexpr (kWithBytes) {
      self.complete(ec, bytes);
    } else {
      (void)bytes;
      self.complete(ec);
    }
  }

  TlsStream* stream_;
  Step step_;
};

// Copies the start of a buffer sequence when its first buffer is short, so that a websocket
// frame header (2-14 bytes, a buffer of its own in Beast) and its payload leave as one TLS
// record instead of a tiny record per header. Lives only inside a pending write.
inline constexpr std::size_t kTlsCoalesceBytes = 512;

}  // namespace detail

/// A TLS connection (server or client role) on a TCP socket, usable alone or as the next layer of
/// `boost::beast::websocket::stream<TlsStream>` (it is an Asio AsyncStream; the websocket
/// teardown hooks below are found by ADL).
///
/// Owner: the session that accepted or connected the socket; movable only while no operation is
/// pending. Thread: every call, and every completion, on the thread of an io_context run by that
/// one thread (our shards). (Not a strand of a multi-threaded io_context: the edge-triggered
/// reactor could then report readiness to another thread between OpenSSL's EAGAIN and our
/// wait.) Rule for concurrent operations: `async_handshake` runs alone; after it, at most one
/// read (`async_read_some`) and at most one write (`async_write_some` or `async_shutdown`) may be
/// pending at the same time, which is what Beast's websocket does. That is safe
/// because OpenSSL allows one SSL object to be used alternately by SSL_read and SSL_write from one
/// thread, each call is non-blocking and atomic with respect to the other, and each operation
/// keeps its own retry state (the read retries its SSL_read, the write its SSL_write with the
/// same arguments) and waits on its own readiness. Asio lets a wait_read and a wait_write be
/// pending on one socket together.
///
/// Buffers: none of ours. Reads decrypt straight into the caller's first non-empty buffer
/// (read_some semantics); writes encrypt straight from the caller's first non-empty buffer
/// (write_some semantics, SSL_MODE_ENABLE_PARTIAL_WRITE), except that a first buffer shorter
/// than 512 bytes is joined with what follows in a 512-byte array inside the pending operation.
/// SSL_MODE_RELEASE_BUFFERS is set on every SSL, so OpenSSL's own record buffers are freed
/// while the connection idles.
///
/// Timeouts are not part of the stream: bound an operation with a `Deadline`.
///
/// How it fails: operations complete with an error_code, never throw.
///  - peer's close_notify (SSL_ERROR_ZERO_RETURN) -> boost::asio::error::eof;
///  - TCP closed without close_notify -> boost::asio::ssl::error::stream_truncated (as Asio's
///    ssl::stream reports it; OpenSSL 3 calls it "unexpected eof while reading");
///  - SSL_ERROR_SYSCALL -> the errno (connection_reset, broken_pipe), or eof when there is none;
///  - any other OpenSSL error -> error_code{ERR_get_error(), asio::error::get_ssl_category()},
///    whose message() is OpenSSL's reason, e.g. "tlsv13 alert certificate required (SSL routines)";
///  - cancel(), a Deadline, or the socket closed under a pending operation -> operation_aborted;
///    an operation started on a closed socket -> bad_descriptor (OpenSSL is never handed a file
///    descriptor number that may already belong to another connection).
/// The thread's OpenSSL error queue is cleared before and after every OpenSSL call, so one
/// connection's errors never show up in another's. After a write completed with an error
/// (including operation_aborted), do not write again: OpenSSL may hold part of a record that
/// only a retry with the same bytes could finish, so close the connection instead. A cancelled
/// read is harmless: the next read continues where it stopped.
class TlsStream {
 public:
  enum class Role : std::uint8_t { server, client };

  using executor_type = boost::asio::ip::tcp::socket::executor_type;
  /// The TCP socket, so that `boost::beast::get_lowest_layer(ws)` is the socket and Beast's
  /// websocket timeouts (`beast::close_socket`) close it.
  using next_layer_type = boost::asio::ip::tcp::socket;
  using lowest_layer_type = boost::asio::ip::tcp::socket;

  /// Takes an open, connected socket, makes it non-blocking and creates the SSL from `context`
  /// (the SSL takes its own reference on it) in `role`. Configure the SSL (SNI,
  /// host name check) through native_handle() before async_handshake.
  /// Throws boost::system::system_error if the socket cannot be made non-blocking or OpenSSL
  /// cannot allocate the SSL (out of memory).
  TlsStream(boost::asio::ip::tcp::socket socket, SSL_CTX* context, Role role);
  ~TlsStream();
  TlsStream(TlsStream&& other) noexcept;
  TlsStream& operator=(TlsStream&& other) noexcept;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  /// The SSL object; null after take_over_records().
  SSL* native_handle() noexcept { return ssl_; }
  Role role() const noexcept { return role_; }
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
  next_layer_type& next_layer() noexcept { return socket_; }
  const next_layer_type& next_layer() const noexcept { return socket_; }
  lowest_layer_type& lowest_layer() noexcept { return socket_; }

  /// Cancels the pending waits: pending operations complete with operation_aborted.
  void cancel();

  /// Server role, right after async_handshake succeeded and before any read or write: hands the
  /// connection to the TLS 1.3 record layer of tls13_records.hpp and frees the SSL object (the
  /// context must have had enable_tls13_record_takeover). Read the peer's certificate first:
  /// native_handle() is null afterwards. Returns false, and OpenSSL keeps the connection, when
  /// it is not eligible (TLS 1.2, a CCM suite, ...). Operations behave the same either way.
  bool take_over_records();
  /// True once take_over_records() succeeded.
  bool records_taken_over() const noexcept { return records_ != nullptr; }

  /// The TLS handshake (SSL_accept or SSL_connect, by role). Signature void(error_code).
  template <class Token>
  auto async_handshake(Token&& token) {
    return boost::asio::async_compose<Token, void(boost::system::error_code)>(
        detail::TlsOp<HandshakeStep, false>(*this, HandshakeStep{}), token, socket_);
  }

  /// Decrypts up to the size of the first non-empty buffer. Signature
  /// void(error_code, std::size_t); completes at once with 0 bytes if all buffers are empty.
  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    const boost::asio::mutable_buffer first = first_buffer(buffers);
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        detail::TlsOp<ReadStep, true>(*this, ReadStep{first.data(), first.size()}), token, socket_);
  }

  /// Encrypts and sends from the first non-empty buffer (joined with the following ones when it
  /// is short); completes once at least one record left, with the bytes consumed. Signature
  /// void(error_code, std::size_t). Keep the buffers alive and unchanged until it completes.
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        detail::TlsOp<WriteStep, true>(*this, make_write_step(buffers)), token, socket_);
  }

  /// Sends close_notify (SSL_shutdown once) and completes when it has left, waiting for the
  /// socket to be writable if needed (bound that with a Deadline). It does not wait for the
  /// peer's close_notify (RFC 8446 §6.1 does not require it). Completes at once with success
  /// when the handshake never finished, a fatal error happened or close_notify was already sent;
  /// with bad_descriptor when the socket is closed. Signature void(error_code). The socket stays
  /// open: close it (or destroy the stream) next.
  template <class Token>
  auto async_shutdown(Token&& token) {
    return boost::asio::async_compose<Token, void(boost::system::error_code)>(
        detail::TlsOp<ShutdownStep, false>(*this, ShutdownStep{}), token, socket_);
  }

  /// Best-effort and never waits: one SSL_shutdown (close_notify if the socket takes it now),
  /// TCP shutdown of the sending side, discard what the peer already sent, close the socket.
  /// `ec` is the result of closing. The synchronous websocket teardown hook calls this;
  /// async_teardown below also waits for the peer's FIN first.
  void close(boost::system::error_code& ec);

 private:
  template <class Step, bool kWithBytes>
  friend class detail::TlsOp;
  friend struct detail::TlsTeardownOp;

  // One non-blocking step each, for the operations above.
  detail::TlsStep read_step(void* data, std::size_t size);
  detail::TlsStep write_step(const void* data, std::size_t size);
  detail::TlsStep handshake_step();
  detail::TlsStep shutdown_step();
  // The parts of close(): close_notify (one try) and FIN; discard what already arrived (want
  // read: nothing yet; done: the peer's FIN or an error); close the socket.
  void begin_close();
  detail::TlsStep drain_step();
  void finish_close(boost::system::error_code& ec);

  struct ReadStep {
    void* data;
    std::size_t size;
    detail::TlsStep operator()(TlsStream& s) const { return s.read_step(data, size); }
  };
  struct HandshakeStep {
    detail::TlsStep operator()(TlsStream& s) const { return s.handshake_step(); }
  };
  struct ShutdownStep {
    detail::TlsStep operator()(TlsStream& s) const { return s.shutdown_step(); }
  };
  // Either points into the caller's buffer, or (coalesced) at `joined`. Written pointer may move
  // between retries when the operation moves: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is set; the
  // length and bytes stay the same, which is what OpenSSL's retry rule needs.
  struct WriteStep {
    const void* data = nullptr;
    std::size_t size = 0;
    bool coalesced = false;
    std::array<unsigned char, detail::kTlsCoalesceBytes> joined;
    detail::TlsStep operator()(TlsStream& s) const {
      return s.write_step(coalesced ? joined.data() : data, size);
    }
  };

  template <class MutableBufferSequence>
  static boost::asio::mutable_buffer first_buffer(const MutableBufferSequence& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b(*it);
      if (b.size() != 0) return b;
    }
    return {};
  }

  template <class ConstBufferSequence>
  static WriteStep make_write_step(const ConstBufferSequence& buffers) {
    WriteStep step;
    auto it = boost::asio::buffer_sequence_begin(buffers);
    const auto end = boost::asio::buffer_sequence_end(buffers);
    while (it != end && boost::asio::const_buffer(*it).size() == 0) ++it;
    if (it == end) return step;
    const boost::asio::const_buffer first(*it);
    step.data = first.data();
    step.size = first.size();
    if (step.size >= detail::kTlsCoalesceBytes) return step;
    auto next = std::next(it);
    while (next != end && boost::asio::const_buffer(*next).size() == 0) ++next;
    if (next == end) return step;
    // A short first buffer with more after it: join them, up to the array's size.
    std::size_t used = 0;
    for (; it != end && used < step.joined.size(); ++it) {
      const boost::asio::const_buffer b(*it);
      const std::size_t n = std::min(b.size(), step.joined.size() - used);
      if (n != 0) std::memcpy(step.joined.data() + used, b.data(), n);
      used += n;
    }
    step.coalesced = true;
    step.size = used;
    return step;
  }

  detail::TlsStep fail(int ret, int saved_errno);

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;  // owned; its BIO uses socket_'s descriptor and never closes it
  std::unique_ptr<Tls13Records> records_;  // after take_over_records(); ssl_ is then null
  Role role_;
  bool fatal_ = false;  // SSL_ERROR_SSL/SYSCALL seen: OpenSSL forbids SSL_shutdown afterwards
  bool close_notify_pending_ = false;  // SSL_shutdown wanted to write: retry it, nothing else
  bool io_started_ = false;  // SSL_read/SSL_write called: too late for take_over_records()
};

namespace detail {

template <class Step, bool kWithBytes>
template <class Self>
void TlsOp<Step, kWithBytes>::run(Self& self, bool first) {
  const TlsStep step = step_(*stream_);
  if (step.want != TlsWant::nothing) {
    return tls_wait(stream_->socket(), step.want, std::move(self));
  }
  if (first) {
    // Finished without waiting: complete through the executor, as Asio requires.
    return boost::asio::post(boost::asio::append(std::move(self), TlsDone{}, step.ec, step.bytes));
  }
  finish(self, step.ec, step.bytes);
}

// async_teardown: close_notify and FIN, then wait (a bounded number of times) for the peer's FIN,
// discarding what it still sends, then close. Waiting is what Beast's own TCP teardown does; it
// keeps our close() from finding unread bytes, which would make the kernel answer with RST.
struct TlsTeardownOp {
  static constexpr int kMaxWaits = 8;
  TlsStream* stream;
  int waits = 0;

  template <class Self>
  void operator()(Self& self);
  template <class Self>
  void operator()(Self& self, boost::system::error_code ec);
  template <class Self>
  void operator()(Self& self, TlsDone, boost::system::error_code ec) {
    self.complete(ec);
  }

 private:
  template <class Self>
  void drain(Self& self, bool first);
};

template <class Self>
void TlsTeardownOp::operator()(Self& self) {
  stream->begin_close();
  drain(self, /*first=*/true);
}

template <class Self>
void TlsTeardownOp::operator()(Self& self, boost::system::error_code ec) {
  if (ec) {  // cancel(), a Deadline or Beast's websocket timeout: close now
    boost::system::error_code ignored;
    stream->finish_close(ignored);
    return self.complete(ec);
  }
  drain(self, /*first=*/false);
}

template <class Self>
void TlsTeardownOp::drain(Self& self, bool first) {
  const TlsStep step = stream->drain_step();
  if (step.want == TlsWant::read && waits < kMaxWaits) {
    ++waits;
    return tls_wait(stream->socket(), TlsWant::read, std::move(self));
  }
  // The peer's FIN, a reset, or enough waiting: none of it is an error of the teardown.
  boost::system::error_code ec;
  stream->finish_close(ec);
  if (first) return boost::asio::post(boost::asio::append(std::move(self), TlsDone{}, ec));
  self.complete(ec);
}

}  // namespace detail

/// Beast websocket hook (found by ADL) for the synchronous websocket API: TlsStream::close.
/// Never blocks.
void teardown(boost::beast::role_type role, TlsStream& stream, boost::system::error_code& ec);

/// Beast websocket hook (found by ADL), called after the closing handshake: close_notify
/// (best-effort, one try), TCP shutdown of our sending side, then up to 8 waits for the peer's
/// FIN while discarding whatever it still sends (its close_notify), then close the socket.
/// Waiting for the FIN is what Beast's own TCP teardown does, and it lets the peer's last bytes
/// be read so that closing sends FIN, not RST. Time-bound it with the websocket timeout option
/// (Beast closes the socket when it expires; the teardown then completes with
/// operation_aborted) or a Deadline. Handler: void(error_code), success unless the wait was
/// aborted or closing failed; never invoked from inside this call.
template <class Handler>
void async_teardown(boost::beast::role_type /*role*/, TlsStream& stream, Handler&& handler) {
  boost::asio::async_compose<Handler, void(boost::system::error_code)>(
      detail::TlsTeardownOp{&stream}, handler, stream.socket());
}

/// A timeout around socket operations, since neither TlsStream nor a bare socket has one: while
/// armed, a steady_timer; when it fires, the socket is closed, so every pending operation on it
/// (TlsStream's waits, a websocket read or write above it) completes with operation_aborted and
/// later ones with bad_descriptor. Use `expired()` to tell a timeout from another error.
///
///   Deadline deadline(stream.socket());
///   deadline.arm(std::chrono::seconds(10));
///   co_await stream.async_handshake(redirect_error(use_awaitable, ec));
///   deadline.disarm();
///   if (ec && deadline.expired()) ...  // timed out
///
/// Owner: the code that owns the socket; it refers to the socket *object*, so create it after
/// the last move of the socket (or of the TlsStream holding it) and destroy it before them.
/// Thread: the socket's thread. arm() after arm() restarts the timer. A timer that fired but
/// whose handler has not yet run when disarm() or the destructor is called does nothing (the
/// state the handler sees is shared and outlives the Deadline). The constructor and arm() may
/// throw std::bad_alloc; nothing else throws.
class Deadline {
 public:
  explicit Deadline(boost::asio::ip::tcp::socket& socket);
  explicit Deadline(TlsStream& stream) : Deadline(stream.socket()) {}
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  /// Closes the socket `timeout` from now unless disarmed or re-armed before.
  void arm(std::chrono::steady_clock::duration timeout);
  void disarm();
  /// True once the timer has closed the socket (reset by arm()).
  bool expired() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ts::runtime
