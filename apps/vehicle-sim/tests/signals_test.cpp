#include "sim/signals.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace ts::vehicle_sim {
namespace {

using VC = vd::Value::ValueCase;

// A fixed wall-clock timestamp so that records depend on the generator only.
const auto kCreatedAt =
    std::chrono::system_clock::time_point{std::chrono::milliseconds{1'700'000'000'123}};

const std::vector<std::string> kVins = {"5YJ3E1EA7JF000000", "5YJ3E1EA7JF000001",
                                        "7SAYGDEE9PA000042", "LRW3E7FS0NC000777",
                                        "5YJSA1E26MF000123"};

std::string record_bytes(const SignalGenerator& gen, std::size_t datums) {
  vd::Payload p;
  gen.fill_payload(p, datums, kCreatedAt);
  return p.SerializeAsString();
}

const vd::Datum* find(const vd::Payload& p, vd::Field f) {
  for (const auto& d : p.data()) {
    if (d.key() == f) return &d;
  }
  return nullptr;
}

TEST(FieldCatalogue, FirstTwentyAreTheBenchmarkFieldsWithoutDuplicates) {
  auto cat = field_catalogue();
  ASSERT_GE(cat.size(), kDefaultDatums);
  std::set<int> seen;
  for (const auto& spec : cat) EXPECT_TRUE(seen.insert(spec.field).second) << spec.field;
  std::set<int> first20;
  for (std::size_t i = 0; i < kDefaultDatums; ++i) first20.insert(cat[i].field);
  for (vd::Field f : {vd::VehicleSpeed,
                      vd::Odometer,
                      vd::Location,
                      vd::Gear,
                      vd::Soc,
                      vd::BatteryLevel,
                      vd::EstBatteryRange,
                      vd::DetailedChargeState,
                      vd::ACChargingPower,
                      vd::PackVoltage,
                      vd::PackCurrent,
                      vd::InsideTemp,
                      vd::OutsideTemp,
                      vd::Locked,
                      vd::SentryMode,
                      vd::VehicleName,
                      vd::Version,
                      vd::TpmsPressureFl,
                      vd::TpmsPressureFr,
                      vd::DoorState}) {
    EXPECT_TRUE(first20.count(f)) << vd::Field_Name(f);
  }
}

TEST(SignalGenerator, EachDatumUsesTheIntendedValueMember) {
  auto cat = field_catalogue();
  for (const auto& vin : kVins) {
    SignalGenerator gen(vin, SignalGenerator::seed_for(vin, 1));
    for (int step = 0; step < 200; ++step) {
      gen.advance(37);
      vd::Payload p;
      gen.fill_payload(p, cat.size(), kCreatedAt);
      ASSERT_EQ(static_cast<std::size_t>(p.data_size()), cat.size());
      for (std::size_t i = 0; i < cat.size(); ++i) {
        const auto& d = p.data(static_cast<int>(i));
        EXPECT_EQ(d.key(), cat[i].field);
        EXPECT_EQ(d.value().value_case(), cat[i].member)
            << vd::Field_Name(cat[i].field) << " in mode " << to_string(gen.state().mode);
      }
    }
  }
}

TEST(SignalGenerator, SpecificFieldsUseTheirTypedMembers) {
  SignalGenerator gen(kVins[0], 7);
  vd::Payload p;
  gen.fill_payload(p, field_catalogue().size(), kCreatedAt);
  EXPECT_EQ(find(p, vd::Odometer)->value().value_case(), VC::kDoubleValue);
  EXPECT_EQ(find(p, vd::Location)->value().value_case(), VC::kLocationValue);
  EXPECT_EQ(find(p, vd::Gear)->value().value_case(), VC::kShiftStateValue);
  EXPECT_EQ(find(p, vd::Soc)->value().value_case(), VC::kFloatValue);
  EXPECT_EQ(find(p, vd::BatteryLevel)->value().value_case(), VC::kFloatValue);
  EXPECT_EQ(find(p, vd::DetailedChargeState)->value().value_case(), VC::kDetailedChargeStateValue);
  EXPECT_EQ(find(p, vd::ChargeState)->value().value_case(), VC::kChargingValue);
  EXPECT_EQ(find(p, vd::Locked)->value().value_case(), VC::kBooleanValue);
  EXPECT_EQ(find(p, vd::SentryMode)->value().value_case(), VC::kSentryModeStateValue);
  EXPECT_EQ(find(p, vd::VehicleName)->value().value_case(), VC::kStringValue);
  EXPECT_EQ(find(p, vd::Version)->value().value_case(), VC::kStringValue);
  EXPECT_EQ(find(p, vd::DoorState)->value().value_case(), VC::kDoorValue);
  EXPECT_EQ(find(p, vd::TpmsPressureRr)->value().value_case(), VC::kDoubleValue);
  EXPECT_EQ(p.created_at().seconds(), 1'700'000'000);
  EXPECT_EQ(p.created_at().nanos(), 123'000'000);
  EXPECT_TRUE(p.vin().empty());
}

TEST(SignalGenerator, TwentyDatumsEncodeTo250To330Bytes) {
  double total = 0;
  int samples = 0;
  for (const auto& vin : kVins) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      SignalGenerator gen(vin, SignalGenerator::seed_for(vin, seed));
      for (int step = 0; step < 500; ++step) {
        gen.advance(13);
        std::size_t size = record_bytes(gen, kDefaultDatums).size();
        EXPECT_GE(size, 250u) << vin << " seed " << seed << " step " << step;
        EXPECT_LE(size, 330u) << vin << " seed " << seed << " step " << step;
        total += static_cast<double>(size);
        ++samples;
      }
    }
  }
  double mean = total / samples;
  EXPECT_NEAR(mean, 290.0, 20.0);  // the benchmark workload's shape
}

TEST(SignalGenerator, DatumsOptionChoosesHowManyAndIsClamped) {
  SignalGenerator gen(kVins[1], 3);
  vd::Payload p;
  gen.fill_payload(p, 5, kCreatedAt);
  EXPECT_EQ(p.data_size(), 5);
  gen.fill_payload(p, 1000, kCreatedAt);
  EXPECT_EQ(static_cast<std::size_t>(p.data_size()), field_catalogue().size());
  gen.fill_payload(p, kDefaultDatums, kCreatedAt);
  EXPECT_EQ(static_cast<std::size_t>(p.data_size()), kDefaultDatums);
}

TEST(SignalGenerator, ReusedPayloadEncodesLikeAFreshOne) {
  for (const auto& vin : kVins) {
    SignalGenerator gen(vin, SignalGenerator::seed_for(vin, 5));
    vd::Payload reused;
    reused.set_vin("stale");  // whatever the message held before must not leak into a record
    reused.set_is_resend(true);
    for (int step = 0; step < 400; ++step) {
      gen.advance(3);
      std::size_t datums = step % 3 == 0 ? 28 : step % 3 == 1 ? 20 : 7;
      gen.fill_payload(reused, datums, kCreatedAt);
      ASSERT_EQ(reused.SerializeAsString(), record_bytes(gen, datums))
          << vin << " step " << step << " mode " << to_string(gen.state().mode);
    }
  }
}

TEST(SignalGenerator, SameSeedGivesIdenticalRecords) {
  for (const auto& vin : kVins) {
    SignalGenerator a(vin, SignalGenerator::seed_for(vin, 42));
    SignalGenerator b(vin, SignalGenerator::seed_for(vin, 42));
    for (int step = 0; step < 300; ++step) {
      double dt = 0.5 + (step % 7);
      a.advance(dt);
      b.advance(dt);
      ASSERT_EQ(record_bytes(a, 28), record_bytes(b, 28)) << vin << " step " << step;
    }
  }
}

TEST(SignalGenerator, DifferentSeedsOrVinsGiveDifferentVehicles) {
  SignalGenerator a(kVins[0], SignalGenerator::seed_for(kVins[0], 1));
  SignalGenerator b(kVins[0], SignalGenerator::seed_for(kVins[0], 2));
  SignalGenerator c(kVins[1], SignalGenerator::seed_for(kVins[1], 1));
  EXPECT_NE(record_bytes(a, kDefaultDatums), record_bytes(b, kDefaultDatums));
  EXPECT_NE(record_bytes(a, kDefaultDatums), record_bytes(c, kDefaultDatums));
  EXPECT_NE(SignalGenerator::seed_for(kVins[0], 1), SignalGenerator::seed_for(kVins[1], 1));
  // Portable: the seed of a VIN does not depend on the standard library.
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cULL);
}

TEST(SignalGenerator, NonPositiveOrNanAdvanceChangesNothing) {
  SignalGenerator a(kVins[2], 9);
  SignalGenerator b(kVins[2], 9);
  a.advance(0);
  a.advance(-5);
  a.advance(std::nan(""));
  EXPECT_EQ(record_bytes(a, 28), record_bytes(b, 28));
  EXPECT_EQ(a.state().sim_time_s, 0);
}

// Runs every VIN for 12 simulated hours in 1 s steps and checks each record against physics.
TEST(SignalGenerator, ValuesStayPlausibleAndModesCycle) {
  for (const auto& vin : kVins) {
    SignalGenerator gen(vin, SignalGenerator::seed_for(vin, 1));
    const auto& prof = gen.profile();
    std::set<Mode> modes_seen;
    int mode_changes = 0;
    Mode prev_mode = gen.state().mode;
    double prev_odometer = gen.state().odometer_mi;
    double driven_mi = 0;
    double charged_pct = 0;
    double prev_soc = gen.state().soc;
    for (int t = 0; t < 12 * 3600; ++t) {
      gen.advance(1.0);
      const VehicleState& s = gen.state();
      modes_seen.insert(s.mode);
      if (s.mode != prev_mode) {
        ++mode_changes;
        // parked -> driving|charging -> parked -> ...
        if (prev_mode == Mode::Parked) {
          EXPECT_NE(s.mode, Mode::Parked);
        } else {
          EXPECT_EQ(s.mode, Mode::Parked) << "after " << to_string(prev_mode);
        }
        prev_mode = s.mode;
      }
      ASSERT_GE(s.odometer_mi, prev_odometer);
      if (s.mode == Mode::Driving) driven_mi += s.odometer_mi - prev_odometer;
      if (s.mode != Mode::Driving) {
        ASSERT_EQ(s.odometer_mi, prev_odometer);
      }
      if (s.mode == Mode::Charging && s.soc > prev_soc) charged_pct += s.soc - prev_soc;
      prev_odometer = s.odometer_mi;
      prev_soc = s.soc;

      if (t % 10 != 0) continue;
      vd::Payload p;
      gen.fill_payload(p, field_catalogue().size(), kCreatedAt);
      auto num = [&](vd::Field f) {
        const auto& v = find(p, f)->value();
        return v.value_case() == VC::kFloatValue ? double{v.float_value()} : v.double_value();
      };
      EXPECT_GE(num(vd::VehicleSpeed), 0);
      EXPECT_LE(num(vd::VehicleSpeed), 90);
      EXPECT_GE(num(vd::Soc), 0);
      EXPECT_LE(num(vd::Soc), 100);
      EXPECT_LE(num(vd::BatteryLevel), num(vd::Soc));
      EXPECT_GE(num(vd::EstBatteryRange), 0);
      EXPECT_LE(num(vd::EstBatteryRange), 450);
      EXPECT_GE(num(vd::PackVoltage), 300);
      EXPECT_LE(num(vd::PackVoltage), 420);
      EXPECT_GE(num(vd::PackCurrent), -60);
      EXPECT_LE(num(vd::PackCurrent), 150);
      EXPECT_GE(num(vd::ACChargingPower), 0);
      EXPECT_LE(num(vd::ACChargingPower), 11.5);
      for (vd::Field f : {vd::InsideTemp, vd::OutsideTemp}) {
        EXPECT_GE(num(f), -10);
        EXPECT_LE(num(f), 45);
      }
      for (vd::Field f :
           {vd::TpmsPressureFl, vd::TpmsPressureFr, vd::TpmsPressureRl, vd::TpmsPressureRr}) {
        EXPECT_GE(num(f), 2.5);
        EXPECT_LE(num(f), 3.3);
      }
      const auto& loc = find(p, vd::Location)->value().location_value();
      EXPECT_NEAR(loc.latitude(), prof.home_lat, 0.5);
      EXPECT_NEAR(loc.longitude(), prof.home_lon, 0.7);
      EXPECT_GE(num(vd::GpsHeading), 0);
      EXPECT_LT(num(vd::GpsHeading), 360);

      auto gear = find(p, vd::Gear)->value().shift_state_value();
      auto detailed = find(p, vd::DetailedChargeState)->value().detailed_charge_state_value();
      if (s.mode == Mode::Driving) {
        EXPECT_TRUE(gear == vd::ShiftStateD || gear == vd::ShiftStateR);
        EXPECT_TRUE(find(p, vd::Locked)->value().boolean_value());
        EXPECT_EQ(find(p, vd::SentryMode)->value().sentry_mode_state_value(),
                  vd::SentryModeStateOff);
        EXPECT_EQ(num(vd::ACChargingPower), 0);
      } else {
        EXPECT_EQ(gear, vd::ShiftStateP);
        EXPECT_EQ(num(vd::VehicleSpeed), 0);
      }
      if (s.mode == Mode::Charging) {
        EXPECT_NE(detailed, vd::DetailedChargeStateDisconnected);
        EXPECT_LE(num(vd::PackCurrent), 0);
      } else {
        EXPECT_EQ(detailed, vd::DetailedChargeStateDisconnected);
        EXPECT_EQ(num(vd::ACChargingPower), 0);
      }
      EXPECT_EQ(find(p, vd::VehicleName)->value().string_value(), prof.name);
      EXPECT_EQ(find(p, vd::ChargeLimitSoc)->value().int_value(), prof.charge_limit_soc);
    }
    EXPECT_EQ(modes_seen.size(), 3u) << vin;
    // Modes last 2-10 simulated minutes: 12 hours hold dozens of changes.
    EXPECT_GE(mode_changes, 40) << vin;
    EXPECT_GT(driven_mi, 20.0) << vin;
    EXPECT_GT(charged_pct, 1.0) << vin;
  }
}

TEST(SignalGenerator, HugeTimeJumpIsBoundedAndStaysInRange) {
  SignalGenerator gen(kVins[3], 11);
  gen.advance(30 * 86400.0);  // 1000 coarse steps at most
  EXPECT_NEAR(gen.state().sim_time_s, 30 * 86400.0, 1e-3);
  EXPECT_GE(gen.state().soc, 0);
  EXPECT_LE(gen.state().soc, 100);
  // Coarse steps move further per step, but the car still turns back towards home.
  EXPECT_NEAR(gen.state().lat, gen.profile().home_lat, 1.5);
}

}  // namespace
}  // namespace ts::vehicle_sim
