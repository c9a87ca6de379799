#include "pki/keypair.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/file.hpp"
#include "pki/openssl.hpp"

namespace ts::pki {

namespace fs = std::filesystem;

namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class KeyCategory final : public boost::system::error_category {
 public:
  constexpr KeyCategory() noexcept : error_category(0x7473706b6b657931ULL) {}
  const char* name() const noexcept override { return "ts.pki.key"; }
  std::string message(int ev) const override {
    switch (static_cast<key_errc>(ev)) {
      case key_errc::private_key_present:
        return "the file holds a private key; only the public key may be served";
      case key_errc::no_public_key:
        return "no PEM public key (\"-----BEGIN PUBLIC KEY-----\") found";
      case key_errc::no_private_key:
        return "no unencrypted private key found";
      case key_errc::not_p256:
        return "the key is not an EC key on P-256 (prime256v1)";
    }
    return "unknown key error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

BioPtr memory_bio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string drain(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::vector<std::string> pem_labels(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  constexpr std::string_view kDashes = "-----";
  std::vector<std::string> labels;
  std::size_t pos = 0;
  while ((pos = text.find(kBegin, pos)) != std::string_view::npos) {
    const std::size_t start = pos + kBegin.size();
    const std::size_t end = text.find(kDashes, start);
    const std::size_t eol = text.find('\n', start);
    if (end == std::string_view::npos || (eol != std::string_view::npos && eol < end)) {
      pos = start;
      continue;
    }
    labels.emplace_back(text.substr(start, end - start));
    pos = end + kDashes.size();
  }
  return labels;
}

EvpPkeyPtr parse_private_key(std::string_view text) {
  EvpPkeyPtr key = read_pem_private_key(text);
  if (!key && !text.empty()) {
    // DER (PKCS#8, SEC1 or PKCS#1): a key without armour is still a key.
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    key.reset(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(text.size())));
  }
  ERR_clear_error();
  return key;
}

EvpPkeyPtr parse_public_key(std::string_view text) {
  BioPtr bio = memory_bio(text);
  EvpPkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  return key;
}

std::string public_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    ERR_clear_error();
    return {};
  }
  return drain(bio.get());
}

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw std::runtime_error(path.string() + ": " + what);
}

void write_file(const fs::path& path, const std::string& content, mode_t mode) {
  core::write_file_atomically(path, content, mode);
}

void refuse_existing(const fs::path& path) {
  std::error_code ec;
  if (fs::exists(path, ec) || fs::is_symlink(path, ec)) {
    throw KeyFileExists(path.string() + ": already exists (use --force to overwrite it)");
  }
}

void make_parent(const fs::path& path) {
  const fs::path parent = path.parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail(parent, ec.message());
}

}  // namespace

const boost::system::error_category& key_category() noexcept {
  static const KeyCategory category;
  return category;
}

PemInspection inspect_pem(std::string_view text) {
  PemInspection out;
  out.labels = pem_labels(text);
  for (const auto& label : out.labels) {
    if (label.find("PRIVATE KEY") != std::string::npos) out.private_key = true;
  }
  if (!out.private_key && parse_private_key(text)) out.private_key = true;
  out.public_key = parse_public_key(text) != nullptr;
  return out;
}

PemInspection inspect_pem_file(const fs::path& path) {
  std::string error;
  auto text = read_file(path, error);
  if (!text) fail(path, error);
  return inspect_pem(*text);
}

ts::Result<std::string> validate_public_key_pem(std::string_view pem) {
  if (inspect_pem(pem).private_key) return make_error_code(key_errc::private_key_present);
  EvpPkeyPtr key = parse_public_key(pem);
  if (!key) return make_error_code(key_errc::no_public_key);
  if (!is_p256(key.get())) return make_error_code(key_errc::not_p256);
  std::string out = public_pem(key.get());
  if (out.empty()) return make_error_code(key_errc::no_public_key);
  return out;
}

ts::Result<std::string> derive_public_key_pem(std::string_view private_pem) {
  EvpPkeyPtr key = parse_private_key(private_pem);
  if (!key) return make_error_code(key_errc::no_private_key);
  if (!is_p256(key.get())) return make_error_code(key_errc::not_p256);
  std::string out = public_pem(key.get());
  if (out.empty()) return make_error_code(key_errc::no_private_key);
  return out;
}

KeyPairPem generate_p256_key_pair() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("cannot generate a P-256 key: " + take_openssl_errors());
  KeyPairPem out;
  out.private_pem = to_pem(key.get());
  out.public_pem = public_pem(key.get());
  if (out.private_pem.empty() || out.public_pem.empty()) {
    throw std::runtime_error("cannot encode the P-256 key: " + take_openssl_errors());
  }
  return out;
}

KeyPairFiles write_key_pair(const fs::path& private_key, const fs::path& public_key, bool force) {
  const fs::path priv = fs::absolute(private_key);
  const fs::path pub = fs::absolute(public_key);
  if (priv.lexically_normal() == pub.lexically_normal()) {
    fail(priv, "the private and the public key need different files");
  }
  if (!force) {
    refuse_existing(priv);
    refuse_existing(pub);
  }
  make_parent(priv);
  make_parent(pub);
  KeyPairPem pair = generate_p256_key_pair();
  write_file(priv, pair.private_pem, 0600);
  OPENSSL_cleanse(pair.private_pem.data(), pair.private_pem.size());
  write_file(pub, pair.public_pem, 0644);
  return {priv, pub};
}

fs::path write_public_key_from(const fs::path& private_key, const fs::path& public_key,
                               bool force) {
  const fs::path pub = fs::absolute(public_key);
  if (fs::absolute(private_key).lexically_normal() == pub.lexically_normal()) {
    fail(pub, "the private and the public key need different files");
  }
  if (!force) refuse_existing(pub);
  std::string error;
  auto text = read_file(private_key, error);
  if (!text) fail(private_key, error);
  auto derived = derive_public_key_pem(*text);
  OPENSSL_cleanse(text->data(), text->size());
  if (!derived) fail(private_key, derived.error().message());
  make_parent(pub);
  write_file(pub, *derived, 0644);
  return pub;
}

}  // namespace ts::pki
