#include "pki/identity.hpp"

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include "pki/openssl.hpp"

namespace ts::pki {

namespace {

using namespace std::string_view_literals;

// spec §2.3 step 3: issuers whose leaves are classified by their EKU OIDs.
constexpr std::array kOidIssuers = {
    "Tesla Motors Product Issuing CA"sv,           "Tesla Motors Product RSA Issuing CA"sv,
    "Tesla Motors GF3 Product Issuing CA"sv,       "Tesla Motors GF3 Product RSA Issuing CA"sv,
    "Tesla Energy Product Issuing CA"sv,           "Tesla Energy GF0 Product Issuing CA"sv,
    "Tesla Motors GF0 Product Issuing CA"sv,       "Tesla Motors GF Austin Product Issuing CA"sv,
    "Tesla Motors GF Berlin Product Issuing CA"sv, "Tesla Product Access Issuing CA"sv,
    "Tesla China Product Access Issuing CA"sv,     "Tesla GF0 Product Access Issuing CA"sv,
    "Tesla GF3 Product Access Issuing CA"sv,       "Tesla GF Austin Product Access Issuing CA"sv,
    "Tesla GF Berlin Product Access Issuing CA"sv,
};

// spec §2.3 step 3: the Wi-Fi EAP certificate OID; its presence (before a match) rejects.
constexpr std::string_view kExcludedOid = "1.3.6.1.4.1.49279.2.5.1.1";

struct OidClientType {
  std::string_view eng;
  std::string_view prod;
  std::string_view client_type;
};

// spec §2.3 step 3 table.
constexpr std::array kOidClientTypes = {
    OidClientType{"1.3.6.1.4.1.49279.2.4.1", "1.3.6.1.4.1.49279.2.5.1", "vehicle_device"},
    OidClientType{"1.3.6.1.4.1.49279.2.4.11", "1.3.6.1.4.1.49279.2.5.11", "vehicle_board_device"},
    OidClientType{"1.3.6.1.4.1.49279.2.4.2", "1.3.6.1.4.1.49279.2.5.2", "energy_device"},
    OidClientType{"1.3.6.1.4.1.49279.2.4.12", "1.3.6.1.4.1.49279.2.5.12", "das_device"},
    OidClientType{"1.3.6.1.4.1.49279.2.4.14", "1.3.6.1.4.1.49279.2.5.14", "vehicle_service"},
    OidClientType{"1.3.6.1.4.1.49279.2.4.15", "1.3.6.1.4.1.49279.2.5.15", "das_service"},
    OidClientType{"1.3.6.1.4.1.49279.2.4.16", "1.3.6.1.4.1.49279.2.5.16", "energy_service"},
    OidClientType{"1.3.6.1.4.1.49279.2.4.28", "1.3.6.1.4.1.49279.2.5.28", "robotics_device"},
};

// spec §2.3 step 3: subject OUs that override the OID's client type (first one in OU order).
struct OuOverride {
  std::string_view ou;
  std::string_view client_type;
};
constexpr std::array kOuOverrides = {
    OuOverride{"Solar Inverter", "solar_inverter_device"},
    OuOverride{"Gen3 Wall Connector", "wall_connector_device"},
};

// spec §2.3 step 4: issuers whose leaves are vehicles without looking at OIDs.
constexpr std::array kVehicleIssuers = {
    "TeslaMotors"sv,
    "Tesla Issuing CA"sv,
    "Tesla Motors Products CA"sv,
};
constexpr std::string_view kBoardIssuer = "Tesla Motors Products CA";
constexpr std::string_view kBoardOu = "Tesla Motors SN";

template <class Array>
bool contains(const Array& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// The EKU OIDs of `leaf` in certificate order, dotted. Go splits these into ExtKeyUsage (the
// standard ones) and UnknownExtKeyUsage; only the latter are walked, but no standard EKU is in
// the table or equal to the excluded OID, so walking all of them gives the same answer.
std::vector<std::string> ext_key_usage_oids(X509* leaf) {
  std::vector<std::string> oids;
  auto* eku =
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(leaf, NID_ext_key_usage, nullptr, nullptr));
  if (eku == nullptr) return oids;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku); ++i) {
    char buf[128];
    int len = OBJ_obj2txt(buf, sizeof buf, sk_ASN1_OBJECT_value(eku, i), 1);
    if (len > 0 && static_cast<std::size_t>(len) < sizeof buf) oids.emplace_back(buf, len);
  }
  sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
  return oids;
}

std::optional<std::string_view> client_type_for_oid(std::string_view oid) {
  for (const auto& row : kOidClientTypes) {
    if (oid == row.eng || oid == row.prod) return row.client_type;
  }
  return std::nullopt;
}

// spec §2.3 step 3.
ts::Result<std::string> client_type_from_oids(X509* leaf) {
  for (const auto& oid : ext_key_usage_oids(leaf)) {
    if (oid == kExcludedOid) return errc::excluded_certificate;
    if (auto client_type = client_type_for_oid(oid)) {
      for (const auto& ou : name_entries(X509_get_subject_name(leaf), NID_organizationalUnitName)) {
        for (const auto& o : kOuOverrides) {
          if (ou == o.ou) return std::string(o.client_type);
        }
      }
      return std::string(*client_type);
    }
  }
  return errc::unauthorized_certificate;
}

// spec §2.3 step 4.
ts::Result<std::string> client_type_from_issuer(X509* leaf, std::string_view issuer_cn) {
  if (!contains(kVehicleIssuers, issuer_cn)) return errc::unauthorized_certificate;
  if (issuer_cn == kBoardIssuer) {
    auto ous = name_entries(X509_get_subject_name(leaf), NID_organizationalUnitName);
    if (!ous.empty() && ous.front() == kBoardOu) return std::string("vehicle_board_device");
  }
  return std::string("vehicle_device");
}

}  // namespace

std::string Identity::sender_id() const { return client_type + "." + device_id; }

bool is_valid_device_id(std::string_view device_id) {
  if (device_id.empty() || device_id.size() > kMaxDeviceIdBytes) return false;
  return std::none_of(device_id.begin(), device_id.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f || c == '/' || c == '+' || c == '#';
  });
}

ts::Result<Identity> identity_from_leaf(X509* leaf) {
  // spec §2.3 step 1.
  if (leaf == nullptr) return errc::missing_verified_client_certificate;

  // spec §2.3 step 2.
  Identity identity;
  identity.device_id = last_name_entry(X509_get_subject_name(leaf), NID_commonName);
  std::replace(identity.device_id.begin(), identity.device_id.end(), '.', '-');
  // The device id becomes an MQTT topic level ("<base>/<vin>/v/..."), a label and a log field:
  // one a CA should never issue is refused here rather than trusted downstream.
  if (!is_valid_device_id(identity.device_id)) return errc::invalid_device_id;

  // spec §2.3 steps 3-4.
  const std::string issuer_cn = last_name_entry(X509_get_issuer_name(leaf), NID_commonName);
  ts::Result<std::string> client_type = contains(kOidIssuers, issuer_cn)
                                            ? client_type_from_oids(leaf)
                                            : client_type_from_issuer(leaf, issuer_cn);
  if (!client_type) return client_type.error();
  identity.client_type = std::move(*client_type);
  return identity;
}

}  // namespace ts::pki
