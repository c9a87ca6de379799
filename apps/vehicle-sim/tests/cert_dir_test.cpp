#include "sim/cert_dir.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace ts::vehicle_sim {
namespace {

namespace fs = std::filesystem;

// A scratch directory per test, removed afterwards. Only names matter to the scanner.
class CertDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("vehicle_sim_certs_") + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void touch(const std::string& name) { std::ofstream(dir_ / name) << "x\n"; }
  void add_vehicle(const std::string& vin) {
    touch("vehicle-" + vin + ".pem");
    touch("vehicle-" + vin + ".key");
  }

  fs::path dir_;
};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CertDirError& e) {
    return e.what();
  }
  return "";
}

TEST_F(CertDirTest, FindsVehicleCertificatesSortedByVin) {
  touch("ca.pem");
  touch("ca.key");
  touch("server.pem");
  touch("server.key");
  add_vehicle("5YJ3E1EA7JF000002");
  add_vehicle("5YJ3E1EA7JF000000");
  add_vehicle("5YJ3E1EA7JF000001");
  touch("vehicle-ORPHANKEY.key");  // a key without a certificate is not a vehicle
  touch("vehicle-.pem");           // no VIN
  touch("notes.txt");

  CertDir certs = scan_cert_dir(dir_, 3);
  EXPECT_EQ(certs.ca_file, dir_ / "ca.pem");
  ASSERT_EQ(certs.vehicles.size(), 3u);
  EXPECT_EQ(certs.vehicles[0].vin, "5YJ3E1EA7JF000000");
  EXPECT_EQ(certs.vehicles[1].vin, "5YJ3E1EA7JF000001");
  EXPECT_EQ(certs.vehicles[2].vin, "5YJ3E1EA7JF000002");
  EXPECT_EQ(certs.vehicles[0].cert_file, dir_ / "vehicle-5YJ3E1EA7JF000000.pem");
  EXPECT_EQ(certs.vehicles[0].key_file, dir_ / "vehicle-5YJ3E1EA7JF000000.key");
}

TEST_F(CertDirTest, MissingDirectoryTellsHowToCreateIt) {
  auto msg = message_of([&] { scan_cert_dir(dir_ / "nope", 5); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tsctl dev-ca --out " + (dir_ / "nope").string() + " --count 5"),
            std::string::npos)
      << msg;
}

TEST_F(CertDirTest, MissingCaIsAnError) {
  add_vehicle("VIN1");
  auto msg = message_of([&] { scan_cert_dir(dir_, 1); });
  EXPECT_NE(msg.find("ca.pem"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tsctl dev-ca"), std::string::npos) << msg;
}

TEST_F(CertDirTest, CertificateWithoutKeyIsAnError) {
  touch("ca.pem");
  add_vehicle("VIN1");
  touch("vehicle-VIN2.pem");
  auto msg = message_of([&] { scan_cert_dir(dir_, 2); });
  EXPECT_NE(msg.find("vehicle-VIN2.key"), std::string::npos) << msg;
}

TEST_F(CertDirTest, NoVehicleCertificatesIsAnError) {
  touch("ca.pem");
  touch("server.pem");
  auto msg = message_of([&] { scan_cert_dir(dir_, 10); });
  EXPECT_NE(msg.find("no vehicle certificates"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--count 10"), std::string::npos) << msg;
}

TEST_F(CertDirTest, OneVehiclePerCertificateInVinOrder) {
  touch("ca.pem");
  add_vehicle("B");
  add_vehicle("A");
  add_vehicle("C");
  auto ids = assign_identities(scan_cert_dir(dir_, 2), 2, false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0].vin, "A");
  EXPECT_EQ(ids[1].vin, "B");
  EXPECT_EQ(ids[1].index, 1u);
  EXPECT_EQ(ids[1].cert_index, 1u);
  EXPECT_EQ(ids[1].copy, 0u);
  EXPECT_EQ(ids[1].txid_prefix, "B");
}

TEST_F(CertDirTest, TooFewCertificatesTellsTheUserToMakeMore) {
  touch("ca.pem");
  add_vehicle("A");
  add_vehicle("B");
  auto certs = scan_cert_dir(dir_, 5);
  auto msg = message_of([&] { assign_identities(certs, 5, false); });
  EXPECT_NE(msg.find("5 vehicles requested"), std::string::npos) << msg;
  EXPECT_NE(msg.find("only 2 vehicle certificates"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tsctl dev-ca --out " + dir_.string() + " --count 5"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("--reuse-certs"), std::string::npos) << msg;
}

TEST_F(CertDirTest, ReuseHandsCertificatesOutRoundRobinWithUniqueTxidPrefixes) {
  touch("ca.pem");
  add_vehicle("A");
  add_vehicle("B");
  auto ids = assign_identities(scan_cert_dir(dir_, 5), 5, true);
  ASSERT_EQ(ids.size(), 5u);
  const char* vins[] = {"A", "B", "A", "B", "A"};
  std::set<std::string> prefixes;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i].vin, vins[i]);
    EXPECT_EQ(ids[i].cert_index, i % 2);
    EXPECT_EQ(ids[i].copy, i / 2);
    prefixes.insert(ids[i].txid_prefix);
  }
  EXPECT_EQ(prefixes.size(), 5u);
  EXPECT_EQ(ids[2].txid_prefix, "A.1");
  EXPECT_EQ(ids[4].txid_prefix, "A.2");
}

}  // namespace
}  // namespace ts::vehicle_sim
