#pragma once
/// TLS 1.3 record protection (RFC 8446 §5) for server connections once OpenSSL has finished the
/// handshake, so that an established connection no longer holds an OpenSSL SSL object.
///
/// Why: after the handshake OpenSSL keeps ~23 KB per connection that no public API frees (the SSL
/// object, the verified client chain, the session, the transcript; docs/benchmarks.md), more
/// than the whole per-vehicle memory budget. What a TLS 1.3 connection needs from then on is
/// the record layer: per direction, the traffic secret, the key and IV derived from it and a
/// sequence number, ~250 bytes. The handshake, certificate verification and every negotiation
/// stay OpenSSL's; the AEAD (AES-GCM, ChaCha20-Poly1305) and HKDF are OpenSSL's EVP. This is
/// the hand-off Linux kernel TLS does, in user space.
///
/// How: `enable_tls13_record_takeover` installs a key-log callback on the server SSL_CTX that
/// keeps each connection's two application traffic secrets next to its SSL (ex_data; wiped and
/// freed with the SSL or at take-over). After a successful handshake, `Tls13Records::take_over`
/// checks the connection is eligible: TLS 1.3, a suite implemented here (TLS_AES_128_GCM_SHA256,
/// TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256), nothing buffered inside OpenSSL, no
/// application record exchanged yet (the sequence numbers are then 0: the server sends no
/// session tickets; TlsStream refuses the take-over once it has called SSL_read or SSL_write),
/// both secrets captured. Otherwise it returns null and OpenSSL keeps the connection.
///
/// Records: reads take the 5-byte header, then the record into a buffer allocated for it (freed
/// once its plaintext is consumed, so an idle connection holds no buffer), open it with
/// nonce = iv XOR sequence and the header as additional data, refuse a TLSInnerPlaintext over
/// 2^14 + 1 bytes (padding included, RFC 8446 §5.4), strip the padding and dispatch on
/// the inner content type: application data to the caller, close_notify as end of stream, any
/// other alert as an error, KeyUpdate (RFC 8446 §4.6.3) by moving the read keys forward (and,
/// if the peer asked, sending our own KeyUpdate before our next record), anything else as
/// unexpected_message. Writes seal up to 2^14 bytes per record into a buffer that lives until
/// the record has left. New keys (take-over, KeyUpdate) are derived into temporaries and
/// replace a direction's key, iv and sequence number only when every derivation succeeded, so a
/// failed derivation cannot reuse a nonce. Errors are fatal; where RFC 8446 requires it, the
/// matching alert is sent (one try, never waiting).
///
/// Thread: like TlsStream, one thread; one read and one write (or shutdown) may be pending.
#include <openssl/ssl.h>

#include <array>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/tls_step.hpp"

namespace ts::runtime {

/// Installs the key-log callback that keeps TLS 1.3 application traffic secrets for
/// Tls13Records::take_over, on a server context, before connections are made from it. Replaces
/// any key-log callback of `ctx`.
void enable_tls13_record_takeover(SSL_CTX* ctx);

/// Errors of the record layer (category "tls13 record").
enum class Tls13Errc {
  bad_record_mac = 1,  ///< a record failed authentication
  record_overflow,     ///< a record longer than RFC 8446 allows
  unexpected_message,  ///< a record or handshake message not allowed after the handshake
  decode_error,        ///< a malformed record, alert or KeyUpdate
  peer_alert,          ///< the peer sent a fatal alert (other than close_notify)
  crypto_failure,      ///< OpenSSL's EVP failed (out of memory)
  illegal_parameter,   ///< a KeyUpdate with a request value other than 0 or 1
  too_many_empty_records,  ///< 32 records in a row without data (empty, KeyUpdate, user_canceled)
};
const boost::system::error_category& tls13_category() noexcept;
inline boost::system::error_code make_error_code(Tls13Errc e) noexcept {
  return {static_cast<int>(e), tls13_category()};
}

class Tls13Records {
 public:
  /// Takes over a server connection whose handshake just completed on `ssl` (see the file
  /// comment for the conditions), or returns null and leaves `ssl` untouched. On success the
  /// captured secrets are wiped from `ssl`; free it without any further SSL_read/SSL_write/
  /// SSL_shutdown. Never throws except std::bad_alloc.
  static std::unique_ptr<Tls13Records> take_over(SSL* ssl);

  ~Tls13Records();  ///< wipes the keys
  Tls13Records(const Tls13Records&) = delete;
  Tls13Records& operator=(const Tls13Records&) = delete;

  /// Decrypts into [data, data + size); read_some semantics, non-blocking on `fd`. A peer that
  /// sends 32 records in a row that carry no data (empty, KeyUpdate, user_canceled) is cut off,
  /// as OpenSSL does, so it cannot keep the thread in this call.
  /// The peer's close_notify -> asio::error::eof; TCP closed without one ->
  /// asio::ssl::error::stream_truncated.
  detail::TlsStep read(int fd, void* data, std::size_t size);
  /// Seals up to 2^14 bytes of [data, data + size) into one record and sends it; completes (with
  /// the bytes taken) once the record has left. While a record is partly sent, a retry continues
  /// it whatever its arguments.
  detail::TlsStep write(int fd, const void* data, std::size_t size);
  /// Sends close_notify once (completes at once when already sent or after a fatal error).
  detail::TlsStep shutdown(int fd);

  /// Makes a key derivation (HKDF-Expand-Label) fail, as an EVP failure would: the one after
  /// `after` more have succeeded; -1 turns it off. Process-wide; for tests only.
  static void fail_key_derivation_for_test(int after);

 private:
  struct Direction {
    std::array<unsigned char, 48> secret{};
    std::array<unsigned char, 32> key{};
    std::array<unsigned char, 12> iv{};
    std::uint64_t sequence = 0;
  };
  enum class Suite : std::uint8_t { aes128gcm, aes256gcm, chacha20poly1305 };

  Tls13Records(Suite suite, std::size_t hash_len) : suite_(suite), hash_len_(hash_len) {}
  // Key and iv from `secret` into `out` (sequence 0); `out` is scratch on failure.
  bool derive(const unsigned char* secret, Direction& out) const;
  // The "traffic upd" generation after `d`, into `out`.
  bool derive_next_generation(const Direction& d, Direction& out) const;
  // Both replace `d` only when every derivation succeeded; on failure `d` is unchanged.
  bool set_secret(Direction& d, const unsigned char* secret);
  bool next_generation(Direction& d);
  std::size_t key_len() const noexcept { return suite_ == Suite::aes128gcm ? 16 : 32; }

  detail::TlsStep fail(boost::system::error_code ec, int alert = -1, int fd = -1);
  detail::TlsStep flush(int fd);
  // Appends one sealed record of `inner_type` with `size` bytes to out_ (grown to fit).
  bool seal_record(unsigned char inner_type, const unsigned char* data, std::size_t size);
  // A handshake record's `size` plaintext bytes: KeyUpdate or an error (`ec` and the alert).
  int handle_handshake(std::size_t size, boost::system::error_code& ec);
  void release_record();

  Suite suite_;
  std::uint8_t hash_len_;
  bool key_update_due_ = false;  // the peer asked for our KeyUpdate: send it before our next record
  bool close_notify_sent_ = false;
  bool eof_ = false;  // the peer's close_notify came
  bool fatal_ = false;
  std::uint8_t empty_records_ = 0;  // records in a row that carried no data
  boost::system::error_code error_;  // the fatal error, returned again by later calls
  Direction read_, write_;

  // Read side: the record being received, then its plaintext being handed out.
  std::array<unsigned char, 5> header_{};
  std::uint8_t header_have_ = 0;
  std::unique_ptr<unsigned char[]> record_;
  std::uint16_t record_len_ = 0, record_have_ = 0;
  std::uint16_t plain_begin_ = 0, plain_end_ = 0;

  // Write side: sealed records not yet sent, and how many caller bytes they carry.
  std::unique_ptr<unsigned char[]> out_;
  std::uint32_t out_len_ = 0, out_sent_ = 0;
  std::size_t out_consumed_ = 0;
};

}  // namespace ts::runtime

namespace boost::system {
template <>
struct is_error_code_enum<ts::runtime::Tls13Errc> : std::true_type {};
}  // namespace boost::system
