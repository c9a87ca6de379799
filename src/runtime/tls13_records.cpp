#include "runtime/tls13_records.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <string_view>

namespace ts::runtime {

using boost::system::error_code;
using detail::TlsStep;
using detail::TlsWant;

namespace {

// RFC 8446 §5: content types, size limits, alert descriptions used here.
constexpr unsigned char kAlert = 21, kHandshake = 22, kApplicationData = 23;
constexpr unsigned char kKeyUpdate = 24;  // HandshakeType key_update
constexpr std::size_t kMaxPlaintext = 16384;
constexpr std::size_t kMaxCiphertext = kMaxPlaintext + 256;
constexpr std::size_t kTag = 16, kHeader = 5;
// OpenSSL's limits on records without data in a row (empty records, KeyUpdates, warning alerts):
// without one, a peer could keep a shard thread in one read for as long as it sends them.
constexpr std::uint8_t kMaxEmptyRecords = 32;
// Our own KeyUpdate after this many records under one key: far below AES-GCM's limit of ~2^24.5
// records per key (RFC 8446 §5.5); a vehicle at 1 Hz never gets there.
constexpr std::uint64_t kRekeyAfter = std::uint64_t{1} << 23;
constexpr int kAlertCloseNotify = 0, kAlertUnexpectedMessage = 10, kAlertBadRecordMac = 20,
              kAlertRecordOverflow = 22, kAlertIllegalParameter = 47, kAlertDecodeError = 50,
              kAlertInternalError = 80, kAlertUserCanceled = 90;

// ---- secrets captured from OpenSSL's key log ----------------------------------------------

struct Captured {
  std::array<unsigned char, 48> client{}, server{};
  std::uint8_t client_len = 0, server_len = 0;
};

void free_captured(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  if (ptr == nullptr) return;
  OPENSSL_cleanse(ptr, sizeof(Captured));
  delete static_cast<Captured*>(ptr);
}

int captured_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_captured);
  return index;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Lines are "<LABEL> <client_random hex> <secret hex>" (NSS key log format).
void keylog(const SSL* ssl, const char* line) {
  const std::string_view text(line);
  const bool client = text.starts_with("CLIENT_TRAFFIC_SECRET_0 ");
  const bool server = text.starts_with("SERVER_TRAFFIC_SECRET_0 ");
  if (!client && !server) return;
  const std::string_view hex = text.substr(text.rfind(' ') + 1);
  if (hex.size() % 2 != 0 || hex.size() / 2 > 48) return;
  // OpenSSL passes a const SSL*, but ex_data is set through SSL*: the object is ours to annotate.
  SSL* s = const_cast<SSL*>(ssl);
  auto* captured = static_cast<Captured*>(SSL_get_ex_data(s, captured_index()));
  if (captured == nullptr) {
    captured = new (std::nothrow) Captured;
    if (captured == nullptr) return;
    if (SSL_set_ex_data(s, captured_index(), captured) != 1) {
      delete captured;
      return;
    }
  }
  auto& out = client ? captured->client : captured->server;
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  (client ? captured->client_len : captured->server_len) = static_cast<std::uint8_t>(hex.size() / 2);
}

// ---- crypto (OpenSSL EVP) -------------------------------------------------------------------

const char* digest_name(std::size_t hash_len) { return hash_len == 48 ? "SHA384" : "SHA256"; }

// Tls13Records::fail_key_derivation_for_test: derivations to let pass before one fails; -1 = off.
std::atomic<int> derivations_before_failure{-1};

// HKDF-Expand-Label(secret, label, "", out_len), RFC 8446 §7.1.
bool expand_label(const unsigned char* secret, std::size_t secret_len, std::string_view label,
                  unsigned char* out, std::size_t out_len) {
  if (int n = derivations_before_failure.load(std::memory_order_relaxed); n >= 0) {
    derivations_before_failure.store(n - 1, std::memory_order_relaxed);
    if (n == 0) return false;
  }
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return false;
  std::array<unsigned char, 2 + 1 + 6 + 32 + 1> info{};
  std::size_t n = 0;
  info[n++] = static_cast<unsigned char>(out_len >> 8);
  info[n++] = static_cast<unsigned char>(out_len);
  info[n++] = static_cast<unsigned char>(6 + label.size());
  std::memcpy(info.data() + n, "tls13 ", 6);
  n += 6;
  std::memcpy(info.data() + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0;  // empty context
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  if (ctx == nullptr) return false;
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                       const_cast<char*>(digest_name(secret_len)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(secret),
                                        secret_len),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), n),
      OSSL_PARAM_construct_end()};
  const bool ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

const EVP_CIPHER* cipher_for(int suite) {
  static EVP_CIPHER* const ciphers[] = {EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr),
                                        EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr),
                                        EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr)};
  return ciphers[suite];
}

}  // namespace

void enable_tls13_record_takeover(SSL_CTX* ctx) {
  (void)captured_index();
  SSL_CTX_set_keylog_callback(ctx, keylog);
}

namespace {

// Boost's error_category has a protected non-virtual destructor by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class Tls13Category final : public boost::system::error_category {
 public:
  constexpr Tls13Category() noexcept : error_category(0x7473746c73313372ULL) {}
  const char* name() const noexcept override { return "tls13 record"; }
  std::string message(int e) const override {
    switch (static_cast<Tls13Errc>(e)) {
      case Tls13Errc::bad_record_mac: return "bad record mac";
      case Tls13Errc::record_overflow: return "record overflow";
      case Tls13Errc::unexpected_message: return "unexpected message";
      case Tls13Errc::decode_error: return "decode error";
      case Tls13Errc::peer_alert: return "peer sent a fatal alert";
      case Tls13Errc::crypto_failure: return "record encryption failed";
      case Tls13Errc::illegal_parameter: return "illegal parameter";
      case Tls13Errc::too_many_empty_records: return "too many records without data";
    }
    return "tls13 record error";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& tls13_category() noexcept {
  static const Tls13Category c;
  return c;
}

std::unique_ptr<Tls13Records> Tls13Records::take_over(SSL* ssl) {
  if (SSL_version(ssl) != TLS1_3_VERSION || SSL_is_server(ssl) != 1 ||
      SSL_is_init_finished(ssl) != 1 || SSL_get_shutdown(ssl) != 0 ||
      SSL_get_num_tickets(ssl) != 0 || SSL_has_pending(ssl) != 0 || SSL_pending(ssl) != 0) {
    return nullptr;
  }
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  if (cipher == nullptr) return nullptr;
  Suite suite;
  std::size_t hash_len = 32;
  switch (SSL_CIPHER_get_protocol_id(cipher)) {
    case 0x1301: suite = Suite::aes128gcm; break;
    case 0x1302: suite = Suite::aes256gcm, hash_len = 48; break;
    case 0x1303: suite = Suite::chacha20poly1305; break;
    default: return nullptr;  // CCM suites: not offered by default, left to OpenSSL
  }
  auto* captured = static_cast<Captured*>(SSL_get_ex_data(ssl, captured_index()));
  if (captured == nullptr || captured->client_len != hash_len || captured->server_len != hash_len ||
      cipher_for(static_cast<int>(suite)) == nullptr) {
    return nullptr;
  }
  std::unique_ptr<Tls13Records> records(new Tls13Records(suite, hash_len));
  if (!records->set_secret(records->read_, captured->client.data()) ||
      !records->set_secret(records->write_, captured->server.data())) {
    return nullptr;
  }
  SSL_set_ex_data(ssl, captured_index(), nullptr);
  free_captured(nullptr, captured, nullptr, 0, 0, nullptr);
  return records;
}

Tls13Records::~Tls13Records() {
  if (record_) OPENSSL_cleanse(record_.get(), record_len_);
  OPENSSL_cleanse(&read_, sizeof read_);
  OPENSSL_cleanse(&write_, sizeof write_);
}

void Tls13Records::fail_key_derivation_for_test(int after) {
  derivations_before_failure.store(after, std::memory_order_relaxed);
}

bool Tls13Records::derive(const unsigned char* secret, Direction& out) const {
  // Into `out` only: the caller commits the whole direction (secret, key, iv, sequence 0) once
  // every step succeeded, so a failure never leaves a new sequence 0 beside an old key.
  std::memcpy(out.secret.data(), secret, hash_len_);
  out.sequence = 0;
  return expand_label(out.secret.data(), hash_len_, "key", out.key.data(), key_len()) &&
         expand_label(out.secret.data(), hash_len_, "iv", out.iv.data(), out.iv.size());
}

bool Tls13Records::set_secret(Direction& d, const unsigned char* secret) {
  Direction next;
  const bool ok = derive(secret, next);
  if (ok) d = next;
  OPENSSL_cleanse(&next, sizeof next);
  return ok;
}

bool Tls13Records::derive_next_generation(const Direction& d, Direction& out) const {
  std::array<unsigned char, 48> next{};
  const bool ok = expand_label(d.secret.data(), hash_len_, "traffic upd", next.data(), hash_len_) &&
                  derive(next.data(), out);
  OPENSSL_cleanse(next.data(), next.size());
  return ok;
}

bool Tls13Records::next_generation(Direction& d) {
  Direction next;
  const bool ok = derive_next_generation(d, next);
  if (ok) d = next;
  OPENSSL_cleanse(&next, sizeof next);
  return ok;
}

namespace {

// One AEAD operation in place: `data` (size bytes) with the record header as additional data;
// `tag` is written (seal) or checked (open). A per-thread context, keyed per record: a
// connection keeps 44 bytes of key and IV per direction instead of a cipher context.
bool aead(int suite, const unsigned char* key, const unsigned char* iv, std::uint64_t sequence,
          bool seal, const unsigned char* header, unsigned char* data, std::size_t size,
          unsigned char* tag) {
  thread_local const std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> owned(
      EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  // Passing the cipher again makes OpenSSL rebuild the provider context: only when it changes.
  thread_local const EVP_CIPHER* current = nullptr;
  EVP_CIPHER_CTX* ctx = owned.get();
  const EVP_CIPHER* cipher = cipher_for(suite);
  if (ctx == nullptr || cipher == nullptr) return false;
  const EVP_CIPHER* init_cipher = cipher == current ? nullptr : cipher;
  current = nullptr;  // until this init succeeded
  unsigned char nonce[12];
  std::memcpy(nonce, iv, sizeof nonce);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<unsigned char>(sequence >> (8 * i));
  int n = 0;
  if (EVP_CipherInit_ex2(ctx, init_cipher, key, nonce, seal ? 1 : 0, nullptr) != 1) return false;
  current = cipher;
  if (EVP_CipherUpdate(ctx, nullptr, &n, header, static_cast<int>(kHeader)) != 1 ||
      (size > 0 && EVP_CipherUpdate(ctx, data, &n, data, static_cast<int>(size)) != 1) ||
      (!seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTag, tag) != 1) ||
      EVP_CipherFinal_ex(ctx, data + size, &n) != 1 ||
      (seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTag, tag) != 1)) {
    return false;
  }
  return true;
}

constexpr std::size_t sealed_size(std::size_t plaintext) { return kHeader + plaintext + 1 + kTag; }

}  // namespace

bool Tls13Records::seal_record(unsigned char inner_type, const unsigned char* data,
                               std::size_t size) {
  // Appends to out_ (allocated by the caller with room for it at out_len_).
  unsigned char* out = out_.get() + out_len_;
  const std::size_t length = size + 1 + kTag;
  out[0] = kApplicationData;
  out[1] = 3;
  out[2] = 3;
  out[3] = static_cast<unsigned char>(length >> 8);
  out[4] = static_cast<unsigned char>(length);
  if (size > 0) std::memcpy(out + kHeader, data, size);
  out[kHeader + size] = inner_type;
  if (!aead(static_cast<int>(suite_), write_.key.data(), write_.iv.data(), write_.sequence, true,
            out, out + kHeader, size + 1, out + kHeader + size + 1)) {
    return false;
  }
  ++write_.sequence;
  out_len_ += static_cast<std::uint32_t>(sealed_size(size));
  return true;
}

TlsStep Tls13Records::fail(error_code ec, int alert, int fd) {
  fatal_ = true;
  error_ = ec;
  // One try at telling the peer, unless a record of ours is half sent (it cannot be cut).
  if (alert >= 0 && fd >= 0 && !close_notify_sent_ && !out_) {
    const unsigned char body[2] = {2, static_cast<unsigned char>(alert)};  // fatal
    out_ = std::make_unique<unsigned char[]>(sealed_size(2));
    out_len_ = out_sent_ = 0;
    if (seal_record(kAlert, body, 2)) (void)::send(fd, out_.get(), out_len_, MSG_NOSIGNAL);
    out_.reset();
    out_len_ = 0;
  }
  return {ec};
}

void Tls13Records::release_record() {
  record_.reset();
  record_len_ = record_have_ = plain_begin_ = plain_end_ = 0;
}

int Tls13Records::handle_handshake(std::size_t size, error_code& ec) {
  // After the handshake a client may only send KeyUpdate, and it must end its record (RFC 8446
  // §5.1: handshake messages must not span key changes). Anything else, or a message split
  // across records, is refused.
  const unsigned char* m = record_.get();
  if (size < 4 || m[0] != kKeyUpdate) {
    ec = Tls13Errc::unexpected_message;
    return kAlertUnexpectedMessage;
  }
  const std::size_t length = (std::size_t{m[1]} << 16) | (std::size_t{m[2]} << 8) | m[3];
  if (length != 1 || size != 5) {
    ec = size < 4 + length ? Tls13Errc::unexpected_message : Tls13Errc::decode_error;
    return size < 4 + length ? kAlertUnexpectedMessage : kAlertDecodeError;
  }
  if (m[4] > 1) {  // KeyUpdateRequest: update_not_requested(0), update_requested(1)
    ec = Tls13Errc::illegal_parameter;
    return kAlertIllegalParameter;
  }
  if (!next_generation(read_)) {
    ec = Tls13Errc::crypto_failure;
    return kAlertInternalError;
  }
  if (m[4] == 1) key_update_due_ = true;
  return -1;
}

TlsStep Tls13Records::read(int fd, void* data, std::size_t size) {
  if (fatal_) return {error_};
  if (size == 0) return {};
  // Reads until `want` bytes are in `buf` (from *have); the step to return when it cannot.
  auto fill = [fd, this](unsigned char* buf, std::size_t want, auto& have) -> std::optional<TlsStep> {
    while (have < want) {
      const ssize_t r = ::recv(fd, buf + have, want - have, 0);
      if (r > 0) {
        have = static_cast<std::remove_reference_t<decltype(have)>>(have + r);
      } else if (r == 0) {
        return fail(boost::asio::ssl::error::stream_truncated);  // FIN without close_notify
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return TlsStep{{}, 0, TlsWant::read};
      } else {
        return fail(error_code(errno, boost::system::system_category()));
      }
    }
    return std::nullopt;
  };
  for (;;) {
    if (plain_begin_ < plain_end_) {
      empty_records_ = 0;
      const std::size_t n = std::min<std::size_t>(size, plain_end_ - plain_begin_);
      std::memcpy(data, record_.get() + plain_begin_, n);
      plain_begin_ = static_cast<std::uint16_t>(plain_begin_ + n);
      if (plain_begin_ == plain_end_) release_record();
      return {{}, n};
    }
    if (eof_) return {boost::asio::error::eof};
    if (auto step = fill(header_.data(), kHeader, header_have_)) return *step;
    if (!record_) {
      const std::size_t length = (std::size_t{header_[3]} << 8) | header_[4];
      // Every protected record says application_data outside; legacy_record_version is ignored.
      if (header_[0] != kApplicationData) {
        return fail(Tls13Errc::unexpected_message, kAlertUnexpectedMessage, fd);
      }
      if (length > kMaxCiphertext) return fail(Tls13Errc::record_overflow, kAlertRecordOverflow, fd);
      if (length < kTag + 1) return fail(Tls13Errc::bad_record_mac, kAlertBadRecordMac, fd);
      record_ = std::make_unique_for_overwrite<unsigned char[]>(length);
      record_len_ = static_cast<std::uint16_t>(length);
      record_have_ = 0;
    }
    if (auto step = fill(record_.get(), record_len_, record_have_)) return *step;
    const std::size_t sealed = record_len_ - kTag;
    if (!aead(static_cast<int>(suite_), read_.key.data(), read_.iv.data(), read_.sequence, false,
              header_.data(), record_.get(), sealed, record_.get() + sealed)) {
      return fail(Tls13Errc::bad_record_mac, kAlertBadRecordMac, fd);
    }
    ++read_.sequence;
    header_have_ = 0;
    // TLSInnerPlaintext: content, the real type, zero padding. RFC 8446 §5.4: the whole of it,
    // padding included, is at most 2^14 + 1 bytes.
    if (sealed > kMaxPlaintext + 1) {
      return fail(Tls13Errc::record_overflow, kAlertRecordOverflow, fd);
    }
    std::size_t end = sealed;
    while (end > 0 && record_[end - 1] == 0) --end;
    if (end == 0) return fail(Tls13Errc::unexpected_message, kAlertUnexpectedMessage, fd);
    const unsigned char type = record_[end - 1];
    const std::size_t length = end - 1;
    if (length > kMaxPlaintext) return fail(Tls13Errc::record_overflow, kAlertRecordOverflow, fd);
    if (type != kApplicationData || length == 0) {
      if (++empty_records_ > kMaxEmptyRecords) {
        return fail(Tls13Errc::too_many_empty_records, kAlertUnexpectedMessage, fd);
      }
    }
    switch (type) {
      case kApplicationData:
        plain_begin_ = 0;
        plain_end_ = static_cast<std::uint16_t>(length);
        if (length == 0) release_record();
        continue;
      case kAlert: {
        if (length != 2) return fail(Tls13Errc::decode_error, kAlertDecodeError, fd);
        const int description = record_[1];
        release_record();
        if (description == kAlertCloseNotify) {
          eof_ = true;
          return {boost::asio::error::eof};
        }
        if (description == kAlertUserCanceled) continue;  // a close_notify follows (§6.1)
        return fail(Tls13Errc::peer_alert);
      }
      case kHandshake: {
        error_code ec;
        const int alert = handle_handshake(length, ec);
        release_record();
        if (ec) return fail(ec, alert, fd);
        continue;
      }
      default:
        return fail(Tls13Errc::unexpected_message, kAlertUnexpectedMessage, fd);
    }
  }
}

TlsStep Tls13Records::flush(int fd) {
  while (out_sent_ < out_len_) {
    const ssize_t r = ::send(fd, out_.get() + out_sent_, out_len_ - out_sent_, MSG_NOSIGNAL);
    const int error = r < 0 ? errno : EPIPE;
    if (r > 0) {
      out_sent_ += static_cast<std::uint32_t>(r);
    } else if (r < 0 && error == EINTR) {
      continue;
    } else if (r < 0 && (error == EAGAIN || error == EWOULDBLOCK)) {
      return {{}, 0, TlsWant::write};
    } else {
      out_.reset();
      out_len_ = out_sent_ = 0;
      return fail(error_code(error, boost::system::system_category()));
    }
  }
  out_.reset();
  out_len_ = out_sent_ = 0;
  return {};
}

TlsStep Tls13Records::write(int fd, const void* data, std::size_t size) {
  if (fatal_) return {error_};
  if (close_notify_sent_) return {boost::asio::error::shut_down};
  if (!out_) {
    if (size == 0) return {};
    if (write_.sequence >= kRekeyAfter) key_update_due_ = true;
    const std::size_t n = std::min(size, kMaxPlaintext);
    const std::size_t key_update = key_update_due_ ? sealed_size(5) : 0;
    out_ = std::make_unique_for_overwrite<unsigned char[]>(key_update + sealed_size(n));
    out_len_ = out_sent_ = 0;
    if (key_update_due_) {
      // Ours goes out under the current keys, then every later record uses the next ones. The
      // next keys are derived first: if that fails nothing was sealed, and the alert goes out
      // under the current keys at the next unused sequence number.
      const unsigned char message[5] = {kKeyUpdate, 0, 0, 1, 0};  // update_not_requested
      Direction next;
      const bool ok = derive_next_generation(write_, next) &&
                      seal_record(kHandshake, message, sizeof message);
      if (ok) write_ = next;
      OPENSSL_cleanse(&next, sizeof next);
      if (!ok) {
        out_.reset();
        return fail(Tls13Errc::crypto_failure, kAlertInternalError, fd);
      }
      key_update_due_ = false;
    }
    if (!seal_record(kApplicationData, static_cast<const unsigned char*>(data), n)) {
      out_.reset();
      return fail(Tls13Errc::crypto_failure, kAlertInternalError, fd);
    }
    out_consumed_ = n;
  }
  const TlsStep step = flush(fd);
  if (step.ec || step.want != TlsWant::nothing) return step;
  return {{}, std::exchange(out_consumed_, 0)};
}

TlsStep Tls13Records::shutdown(int fd) {
  if (fatal_) return {};
  if (!close_notify_sent_) {
    if (out_) {  // the rest of an abandoned write first: a record cannot be cut
      const TlsStep step = flush(fd);
      if (step.ec || step.want != TlsWant::nothing) return step;
    }
    out_ = std::make_unique<unsigned char[]>(sealed_size(2));
    out_len_ = out_sent_ = 0;
    const unsigned char body[2] = {1, kAlertCloseNotify};  // warning, close_notify
    if (!seal_record(kAlert, body, 2)) return fail(Tls13Errc::crypto_failure);
    close_notify_sent_ = true;
  }
  if (!out_) return {};
  return flush(fd);
}

}  // namespace ts::runtime
