// `tsctl dev-ca` (DESIGN.md contract): files, modes, verification against ca.pem, identity.
#include "pki/dev_ca.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <set>

#include "pki/identity.hpp"
#include "pki/openssl.hpp"
#include "pki/tests/test_pki.hpp"

namespace ts::pki {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& path) {
  std::string error;
  auto bytes = read_file(path, error);
  if (!bytes) throw std::runtime_error(path.string() + ": " + error);
  return *bytes;
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

// X509_verify_cert of `cert` against ca.pem only, with `purpose`.
int verify_against(X509* ca, X509* cert, int purpose) {
  X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

TEST(DevCa, WritesCaServerAndVehiclesThatVerifyAndYieldTheVin) {
  test::TempDir dir;
  DevCaResult result =
      write_dev_ca({.out_dir = dir.path(), .vins = {"5YJ3E1EA7JF000000", "5YJYGDEE1MF000001"}});
  EXPECT_TRUE(result.ca_created);
  EXPECT_TRUE(result.server_written);
  EXPECT_EQ(result.vehicles_written.size(), 2u);
  EXPECT_TRUE(result.vehicles_kept.empty());
  EXPECT_EQ(result.ca_file, dir.path() / "ca.pem");
  EXPECT_TRUE(result.ca_file.is_absolute());

  for (const char* name :
       {"ca.key", "server.key", "vehicle-5YJ3E1EA7JF000000.key", "vehicle-5YJYGDEE1MF000001.key"}) {
    EXPECT_EQ(mode_of(dir.path() / name), 0600u) << name;
  }
  for (const char* name : {"ca.pem", "server.pem", "vehicle-5YJ3E1EA7JF000000.pem"}) {
    EXPECT_EQ(mode_of(dir.path() / name), 0644u) << name;
  }
  EXPECT_FALSE(fs::exists(dir.path() / "ca.pem.tmp"));

  X509Ptr ca = test::load_cert(dir.path() / "ca.pem");
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);
  EXPECT_EQ(last_name_entry(X509_get_subject_name(ca.get()), NID_commonName),
            "Tesla Motors Product Issuing CA");
  EXPECT_EQ(last_name_entry(X509_get_subject_name(ca.get()), NID_organizationName),
            "TeslaSync Development (not Tesla)");

  X509Ptr server = test::load_cert(dir.path() / "server.pem");
  EXPECT_EQ(verify_against(ca.get(), server.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
  // serverAuth only: a server certificate cannot pass as a vehicle.
  EXPECT_NE(verify_against(ca.get(), server.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  for (const std::string vin : {"5YJ3E1EA7JF000000", "5YJYGDEE1MF000001"}) {
    X509Ptr vehicle = test::load_cert(dir.path() / ("vehicle-" + vin + ".pem"));
    EXPECT_EQ(verify_against(ca.get(), vehicle.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    auto id = identity_from_leaf(vehicle.get());
    ASSERT_TRUE(id.has_value()) << id.error().message();
    EXPECT_EQ(id->device_id, vin);
    EXPECT_EQ(id->client_type, "vehicle_device");
    EvpPkeyPtr key = read_pem_private_key(read(dir.path() / ("vehicle-" + vin + ".key")));
    ASSERT_TRUE(key);
    EXPECT_EQ(X509_check_private_key(vehicle.get(), key.get()), 1);
  }
}

TEST(DevCa, SecondRunReusesTheCaAndKeepsExistingVehicles) {
  test::TempDir dir;
  write_dev_ca({.out_dir = dir.path(), .vins = {"VIN00000000000001"}});
  const std::string ca_before = read(dir.path() / "ca.pem");
  const std::string server_before = read(dir.path() / "server.pem");
  const std::string vehicle_before = read(dir.path() / "vehicle-VIN00000000000001.pem");

  DevCaResult again =
      write_dev_ca({.out_dir = dir.path(), .vins = {"VIN00000000000001", "VIN00000000000002"}});
  EXPECT_FALSE(again.ca_created);
  EXPECT_FALSE(again.server_written);
  EXPECT_EQ(again.vehicles_kept, std::vector<std::string>{"VIN00000000000001"});
  EXPECT_EQ(again.vehicles_written, std::vector<std::string>{"VIN00000000000002"});
  EXPECT_EQ(read(dir.path() / "ca.pem"), ca_before);
  EXPECT_EQ(read(dir.path() / "server.pem"), server_before);
  EXPECT_EQ(read(dir.path() / "vehicle-VIN00000000000001.pem"), vehicle_before);

  X509Ptr ca = test::load_cert(dir.path() / "ca.pem");
  X509Ptr added = test::load_cert(dir.path() / "vehicle-VIN00000000000002.pem");
  EXPECT_EQ(verify_against(ca.get(), added.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  // Another server name needs another server certificate, from the same CA.
  DevCaResult renamed = write_dev_ca({.out_dir = dir.path(), .server_name = "telemetry.test"});
  EXPECT_TRUE(renamed.server_written);
  EXPECT_EQ(read(dir.path() / "ca.pem"), ca_before);
  X509Ptr server = test::load_cert(dir.path() / "server.pem");
  EXPECT_EQ(X509_check_host(server.get(), "telemetry.test", 0, 0, nullptr), 1);
  EXPECT_EQ(verify_against(ca.get(), server.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
}

TEST(DevCa, NewCaReplacesVehicleFilesOfTheOldOne) {
  test::TempDir dir;
  write_dev_ca({.out_dir = dir.path(), .vins = {"VIN00000000000001"}});
  fs::remove(dir.path() / "ca.pem");
  fs::remove(dir.path() / "ca.key");
  DevCaResult fresh = write_dev_ca({.out_dir = dir.path(), .vins = {"VIN00000000000001"}});
  EXPECT_TRUE(fresh.ca_created);
  EXPECT_TRUE(fresh.server_written);
  EXPECT_EQ(fresh.vehicles_written, std::vector<std::string>{"VIN00000000000001"});
  X509Ptr ca = test::load_cert(dir.path() / "ca.pem");
  X509Ptr vehicle = test::load_cert(dir.path() / "vehicle-VIN00000000000001.pem");
  EXPECT_EQ(verify_against(ca.get(), vehicle.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
}

TEST(DevCa, IpServerNameBecomesAnIpSan) {
  test::TempDir dir;
  write_dev_ca({.out_dir = dir.path(), .server_name = "10.1.2.3"});
  X509Ptr server = test::load_cert(dir.path() / "server.pem");
  EXPECT_EQ(X509_check_ip_asc(server.get(), "10.1.2.3", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
}

TEST(DevCa, RejectsBadInputsAndHalfCas) {
  test::TempDir dir;
  EXPECT_THROW(write_dev_ca({.out_dir = dir.path(), .vins = {"../escape"}}), std::runtime_error);
  EXPECT_THROW(write_dev_ca({.out_dir = dir.path(), .vins = {""}}), std::runtime_error);
  EXPECT_THROW(write_dev_ca({.out_dir = dir.path(), .server_name = "bad name"}),
               std::runtime_error);
  dir.write("ca.pem", "not a key pair");
  try {
    write_dev_ca({.out_dir = dir.path(), .vins = {"VIN1"}});
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("ca.key"), std::string::npos) << e.what();
  }
}

TEST(DevCaVin, ValidNames) {
  EXPECT_TRUE(is_valid_dev_vin("5YJ3E1EA7JF000000"));
  EXPECT_TRUE(is_valid_dev_vin("5YJ3.E1EA7.JF000001"));
  EXPECT_TRUE(is_valid_dev_vin("device-1"));
  EXPECT_FALSE(is_valid_dev_vin(""));
  EXPECT_FALSE(is_valid_dev_vin(".hidden"));
  EXPECT_FALSE(is_valid_dev_vin("a/b"));
  EXPECT_FALSE(is_valid_dev_vin(std::string(65, 'A')));
}

TEST(DevCaVin, CheckDigit) {
  EXPECT_EQ(vin_check_digit("1M8GDM9AXKP042788"), 'X');  // the textbook example
  EXPECT_EQ(vin_check_digit("11111111111111111"), '1');
  EXPECT_EQ(vin_check_digit("5YJ3E1EA7JF000000"), '8');  // the vectors' VIN is not valid
  EXPECT_EQ(vin_check_digit("5YJ3E1EA0JF000000"), '8');  // position 9 does not count
  EXPECT_EQ(vin_check_digit("5YJ3E1EAOJF000000"), '?');  // 'O' is not a VIN character
  EXPECT_EQ(vin_check_digit("SHORT"), '?');
}

TEST(DevCaVin, SyntheticVinsAreDistinctAndValid) {
  auto vins = synthetic_vins(1000);
  ASSERT_EQ(vins.size(), 1000u);
  std::set<std::string> distinct(vins.begin(), vins.end());
  EXPECT_EQ(distinct.size(), 1000u);
  for (const auto& vin : vins) {
    ASSERT_EQ(vin.size(), 17u);
    EXPECT_EQ(vin.substr(0, 8), "5YJ3E1EA");
    EXPECT_EQ(vin.substr(9, 2), "TF");
    EXPECT_EQ(vin[8], vin_check_digit(vin));
  }
  EXPECT_EQ(vins.front(), std::string("5YJ3E1EA") + vins.front()[8] + "TF100000");
  EXPECT_THROW(synthetic_vins(2, 999999), std::invalid_argument);
}

}  // namespace
}  // namespace ts::pki
