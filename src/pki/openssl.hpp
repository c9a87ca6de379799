#pragma once
/// Small RAII layer over the OpenSSL 3 C API used by this module: owning pointers, PEM reading and
/// writing, and the text of OpenSSL's error queue. Free functions, no shared state, any thread
/// (OpenSSL's error queue is per thread). Reading functions report failure through their return
/// value; none of them throw.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ts::pki {

/// Deleter calling an OpenSSL `*_free` function.
template <class T, void (*Free)(T*)>
struct OpensslDeleter {
  void operator()(T* p) const noexcept { Free(p); }
};

using X509Ptr = std::unique_ptr<X509, OpensslDeleter<X509, X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpensslDeleter<X509_NAME, X509_NAME_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpensslDeleter<X509_STORE, X509_STORE_free>>;
using X509StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, OpensslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO, BIO_free_all>>;

/// Takes a new reference on `cert` (X509_up_ref) and returns it as an owner.
X509Ptr up_ref(X509* cert);

/// Drains this thread's OpenSSL error queue into one line ("error:...; error:..."); returns
/// `fallback` when the queue was empty.
std::string take_openssl_errors(std::string_view fallback = "unknown OpenSSL error");

/// The whole file as bytes, or nullopt with `error` set to the OS error text.
std::optional<std::string> read_file(const std::filesystem::path& path, std::string& error);

/// Every PEM certificate in `pem`, in file order. Non-certificate PEM blocks are skipped.
/// Returns an empty vector when there is none (or the PEM is damaged).
std::vector<X509Ptr> read_pem_certificates(std::string_view pem);

/// The first private key in `pem` (PKCS#8, SEC1 or PKCS#1, unencrypted); null if none parses.
EvpPkeyPtr read_pem_private_key(std::string_view pem);

/// PEM text of a certificate ("-----BEGIN CERTIFICATE-----") or of a private key (PKCS#8,
/// unencrypted). Empty on failure. P-256 keys take a fixed-layout fast path whose output is
/// byte-identical to OpenSSL's encoder (`to_pem_generic`, tested).
std::string to_pem(X509* cert);
std::string to_pem(EVP_PKEY* key);
std::string to_pem_generic(EVP_PKEY* key);

/// True for an EC key on P-256 (prime256v1).
bool is_p256(EVP_PKEY* key);

/// The value of the last attribute `nid` in `name` as UTF-8 (Go's pkix.Name keeps the last
/// CommonName it sees, spec §2.3 compares against that); empty if absent.
std::string last_name_entry(const X509_NAME* name, int nid);

/// Every attribute `nid` in `name`, in order, as UTF-8 (Go: `OrganizationalUnit`).
std::vector<std::string> name_entries(const X509_NAME* name, int nid);

/// One-line RFC 2253 form of a name, e.g. "CN=Tesla Motors Product Issuing CA,O=Tesla".
std::string name_to_string(const X509_NAME* name);

}  // namespace ts::pki
