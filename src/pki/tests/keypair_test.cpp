// The Fleet API key pair behind `tsctl keygen` and the public-key checks of teslasync-api.
#include "pki/keypair.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "pki/openssl.hpp"

namespace ts::pki {
namespace {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = (fs::temp_directory_path() / "ts-keypair-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read(const fs::path& path) {
  std::string error;
  auto text = read_file(path, error);
  if (!text) throw std::runtime_error(path.string() + ": " + error);
  return *text;
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::string rsa_private_pem() {
  EvpPkeyPtr key(EVP_RSA_gen(2048));
  return to_pem_generic(key.get());
}

std::string public_pem_of(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

TEST(KeyPair, GeneratesAP256PairWhosePublicHalfMatches) {
  KeyPairPem pair = generate_p256_key_pair();
  EXPECT_TRUE(pair.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_TRUE(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
  EvpPkeyPtr key = read_pem_private_key(pair.private_pem);
  ASSERT_TRUE(key);
  EXPECT_TRUE(is_p256(key.get()));
  auto derived = derive_public_key_pem(pair.private_pem);
  ASSERT_TRUE(derived) << derived.error().message();
  EXPECT_EQ(*derived, pair.public_pem);
  auto validated = validate_public_key_pem(pair.public_pem);
  ASSERT_TRUE(validated) << validated.error().message();
  EXPECT_EQ(*validated, pair.public_pem);
  // Two calls give two different keys.
  EXPECT_NE(generate_p256_key_pair().public_pem, pair.public_pem);
}

TEST(KeyPair, InspectFindsPrivateKeysByLabelOrByParsing) {
  KeyPairPem pair = generate_p256_key_pair();
  PemInspection pub = inspect_pem(pair.public_pem);
  EXPECT_FALSE(pub.private_key);
  EXPECT_TRUE(pub.public_key);
  EXPECT_EQ(pub.labels, std::vector<std::string>{"PUBLIC KEY"});

  PemInspection priv = inspect_pem(pair.private_pem);
  EXPECT_TRUE(priv.private_key);
  EXPECT_FALSE(priv.public_key);

  // Both in one file (a common mistake): refused.
  PemInspection both = inspect_pem(pair.public_pem + pair.private_pem);
  EXPECT_TRUE(both.private_key);
  EXPECT_TRUE(both.public_key);
  EXPECT_EQ(both.labels, (std::vector<std::string>{"PUBLIC KEY", "PRIVATE KEY"}));

  // Labels alone are enough, even when the body is damaged or encrypted.
  EXPECT_TRUE(inspect_pem("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
                  .private_key);
  EXPECT_TRUE(inspect_pem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nxx\n-----END ENCRYPTED "
                          "PRIVATE KEY-----\n")
                  .private_key);
  EXPECT_TRUE(inspect_pem("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n").private_key);
  EXPECT_TRUE(inspect_pem(rsa_private_pem()).private_key);

  // A DER private key has no label but still parses.
  EvpPkeyPtr key = read_pem_private_key(pair.private_pem);
  unsigned char* der = nullptr;
  int len = i2d_PrivateKey(key.get(), &der);
  ASSERT_GT(len, 0);
  std::string der_text(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  EXPECT_TRUE(inspect_pem(der_text).private_key);

  PemInspection nothing = inspect_pem("hello\n");
  EXPECT_FALSE(nothing.private_key);
  EXPECT_FALSE(nothing.public_key);
  EXPECT_TRUE(nothing.labels.empty());
}

TEST(KeyPair, ValidatePublicKeyRefusesPrivateKeysAndOtherCurves) {
  KeyPairPem pair = generate_p256_key_pair();
  EXPECT_EQ(validate_public_key_pem(pair.private_pem).error(), key_errc::private_key_present);
  EXPECT_EQ(validate_public_key_pem(pair.public_pem + pair.private_pem).error(),
            key_errc::private_key_present);
  EXPECT_EQ(validate_public_key_pem("").error(), key_errc::no_public_key);
  EXPECT_EQ(validate_public_key_pem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
                .error(),
            key_errc::no_public_key);

  EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  EXPECT_EQ(validate_public_key_pem(public_pem_of(p384.get())).error(), key_errc::not_p256);
  EvpPkeyPtr rsa(EVP_RSA_gen(2048));
  EXPECT_EQ(validate_public_key_pem(public_pem_of(rsa.get())).error(), key_errc::not_p256);
  EXPECT_EQ(derive_public_key_pem(to_pem_generic(p384.get())).error(), key_errc::not_p256);
  EXPECT_EQ(derive_public_key_pem(pair.public_pem).error(), key_errc::no_private_key);

  // Surrounding text (comments, a certificate-style preamble) does not matter.
  auto ok = validate_public_key_pem("# app key\n" + pair.public_pem);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, pair.public_pem);
  EXPECT_NE(std::string(make_error_code(key_errc::private_key_present).message()).find("private"),
            std::string::npos);
}

TEST(KeyPair, WritesPrivate0600AndPublic0644AndRefusesToOverwrite) {
  ScratchDir dir;
  const fs::path priv = dir.path() / "keys" / "private-key.pem";
  const fs::path pub = dir.path() / "keys" / "public-key.pem";
  ::umask(0);  // the modes must not depend on the caller's umask
  KeyPairFiles files = write_key_pair(priv, pub, false);
  ::umask(022);
  EXPECT_EQ(files.private_key, priv);
  EXPECT_EQ(files.public_key, pub);
  EXPECT_EQ(mode_of(priv), 0600u);
  EXPECT_EQ(mode_of(pub), 0644u);
  EXPECT_FALSE(fs::exists(fs::path(priv).concat(".tmp")));
  const std::string private_text = read(priv);
  const std::string public_text = read(pub);
  auto derived = derive_public_key_pem(private_text);
  ASSERT_TRUE(derived);
  EXPECT_EQ(*derived, public_text);
  EXPECT_FALSE(inspect_pem_file(pub).private_key);
  EXPECT_TRUE(inspect_pem_file(priv).private_key);

  EXPECT_THROW(write_key_pair(priv, pub, false), KeyFileExists);
  EXPECT_EQ(read(priv), private_text);  // untouched
  // Only the public file existing is enough to refuse as well.
  const fs::path other_priv = dir.path() / "other.pem";
  EXPECT_THROW(write_key_pair(other_priv, pub, false), KeyFileExists);
  EXPECT_FALSE(fs::exists(other_priv));

  KeyPairFiles again = write_key_pair(priv, pub, true);
  EXPECT_NE(read(priv), private_text);
  EXPECT_EQ(mode_of(again.private_key), 0600u);

  EXPECT_THROW(write_key_pair(priv, priv, true), std::runtime_error);
}

TEST(KeyPair, WritesThePublicHalfOfAnExistingPrivateKey) {
  ScratchDir dir;
  KeyPairPem pair = generate_p256_key_pair();
  const fs::path priv = dir.path() / "app.key";
  const fs::path pub = dir.path() / "app.pub.pem";
  write(priv, pair.private_pem);
  EXPECT_EQ(write_public_key_from(priv, pub, false), pub);
  EXPECT_EQ(read(pub), pair.public_pem);
  EXPECT_EQ(mode_of(pub), 0644u);
  EXPECT_THROW(write_public_key_from(priv, pub, false), KeyFileExists);
  EXPECT_NO_THROW(write_public_key_from(priv, pub, true));
  EXPECT_THROW(write_public_key_from(dir.path() / "missing.key", dir.path() / "x.pem", false),
               std::runtime_error);
  write(dir.path() / "rsa.key", rsa_private_pem());
  EXPECT_THROW(write_public_key_from(dir.path() / "rsa.key", dir.path() / "y.pem", false),
               std::runtime_error);
  EXPECT_THROW(inspect_pem_file(dir.path() / "missing.pem"), std::runtime_error);
}

}  // namespace
}  // namespace ts::pki
