#pragma once
// The behavioural contract of storage::Database (database.hpp), as a typed test suite that every
// backend instantiates with a Backend type:
//   Backend()                      a fresh, empty database for one test
//   std::string url() const        its DATABASE_URL
//   std::filesystem::path data_dir() const
//   void execute(const std::string& sql)   SQL straight to that database (schema tests)
//   static std::string fail_inserts_sql(table), allow_inserts_sql(table)
//                                  SQL that makes every INSERT into `table` fail for a reason of
//                                  the database (retryable), and undoes it
//   static std::string bytes_sql(hex)  a literal of those bytes (PostgreSQL bytea, SQLite BLOB)
//   static std::string reject_inserts_sql(table)
//                                  SQL that makes every INSERT into `table` fail as a data
//                                  error (a constraint); undone by allow_inserts_sql
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "core/metrics.hpp"
#include "storage/database.hpp"
#include "storage/detail.hpp"

namespace ts::storage::testing {

using signal::Signal;
using signal::Source;
using signal::Value;

inline constexpr std::int64_t kSecond = 1'000'000;
inline constexpr std::int64_t kDay = detail::kMicrosPerDay;
/// Midnight UTC five days ago: rows of the suite fall on recent days (PostgreSQL partitions).
inline Timestamp base_time() { return (detail::day_of(signal::now()) - 5) * kDay; }

inline Signal make_signal(std::string vin, std::string name, Timestamp ts, Value value,
                          Source source = Source::Stream) {
  return Signal{.vin = std::move(vin),
                .name = std::move(name),
                .ts = ts,
                .received_at = ts + 250'000,
                .source = source,
                .value = std::move(value)};
}

/// `bytes` bytes of random, incompressible UTF-8 (two-byte characters U+0100..U+07FF): a key
/// no compression brings under an index's row limit.
inline std::string random_text(std::size_t bytes, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::uint32_t> cp(0x100, 0x7FF);
  std::string out;
  out.reserve(bytes);
  while (out.size() + 2 <= bytes) {
    const std::uint32_t c = cp(rng);
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

template <class Backend>
class DatabaseSuite : public ::testing::Test {
 protected:
  void SetUp() override { db_ = open(); }

  std::unique_ptr<Database> open(OpenOptions options = {}) {
    auto db = open_database(backend_.url(), backend_.data_dir(), options);
    if (!db) {
      ADD_FAILURE() << "open_database(" << backend_.url() << "): " << db.error().message();
      return nullptr;
    }
    return std::move(*db);
  }

  /// Every row of one vehicle, paging with the cursor.
  std::vector<Signal> all_rows(Database& db, const std::string& vin, std::size_t page = 1000) {
    std::vector<Signal> out;
    SignalQuery q{.vin = vin, .limit = page};
    for (int guard = 0; guard < 100'000; ++guard) {
      auto r = db.query_signals(q);
      EXPECT_TRUE(r) << r.error().message();
      if (!r) break;
      out.insert(out.end(), r->rows.begin(), r->rows.end());
      if (!r->next) break;
      q.after = r->next;
    }
    return out;
  }

  Backend backend_;
  std::unique_ptr<Database> db_;
};

TYPED_TEST_SUITE_P(DatabaseSuite);

TYPED_TEST_P(DatabaseSuite, OpensAtTheLatestSchemaAndReopeningChangesNothing) {
  ASSERT_TRUE(this->db_);
  auto v = this->db_->schema_version();
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(*v, 5);
  const Timestamp t = base_time();
  ASSERT_TRUE(
      this->db_->append_signals(std::vector{make_signal("VIN1", "Soc", t, Value::float64(80))}));
  this->db_.reset();

  auto again = this->open();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again->schema_version(), 5);
  EXPECT_EQ(this->all_rows(*again, "VIN1").size(), 1u);
}

TYPED_TEST_P(DatabaseSuite, MigratesAnOlderSchemaForwardKeepingItsRows) {
  this->db_.reset();
  this->backend_ = TypeParam();  // a fresh database, migrated only to version 1
  auto old = this->open(OpenOptions{.migrate_to_version_for_test = 1});
  ASSERT_TRUE(old);
  EXPECT_EQ(*old->schema_version(), 1);
  const Timestamp t = base_time();
  EXPECT_FALSE(old->set_setting("k", "v")) << "version 1 has no settings table yet";
  old.reset();
  // A row as version 1 stored it (this release's writer speaks the newest schema only).
  this->backend_.execute("INSERT INTO signal_series (vin, name) VALUES ('VIN1', 'Soc')");
  this->backend_.execute(
      "INSERT INTO signal_log (series_id, ts, kind, value_int, source, received_at) SELECT id, " +
      std::to_string(t) + ", 2, 7, 'stream', " + std::to_string(t) + " FROM signal_series");

  auto now = this->open(OpenOptions{.migrate_to_version_for_test = 2});
  ASSERT_TRUE(now);
  EXPECT_EQ(*now->schema_version(), 2);
  now.reset();
  now = this->open();
  ASSERT_TRUE(now);
  EXPECT_EQ(*now->schema_version(), 5);
  const auto rows = this->all_rows(*now, "VIN1");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].value, Value::int64(7));
  EXPECT_TRUE(now->set_setting("k", "v"));
}

TYPED_TEST_P(DatabaseSuite, RefusesASchemaNewerThanThisRelease) {
  this->db_.reset();
  this->backend_.execute(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)");
  auto db = open_database(this->backend_.url(), this->backend_.data_dir());
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error(), make_error_code(errc::schema_too_new));
}

TYPED_TEST_P(DatabaseSuite, RedeliveredSignalsAreStoredOnceAndTheFirstValueWins) {
  const Timestamp t = base_time();
  std::vector<Signal> batch;
  for (int i = 0; i < 50; ++i) {
    batch.push_back(make_signal("VIN1", "VehicleSpeed", t + i * kSecond, Value::float64(i)));
  }
  auto first = this->db_->append_signals(batch);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, 50u);
  auto again = this->db_->append_signals(batch);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
  // Same key, other value: ignored; duplicates inside one batch: stored once.
  std::vector<Signal> changed = {make_signal("VIN1", "VehicleSpeed", t, Value::float64(999)),
                                 make_signal("VIN1", "Gear", t, Value::enumeration("ShiftStateD")),
                                 make_signal("VIN1", "Gear", t, Value::enumeration("ShiftStateR"))};
  auto third = this->db_->append_signals(changed);
  ASSERT_TRUE(third);
  EXPECT_EQ(*third, 1u);
  const auto rows = this->all_rows(*this->db_, "VIN1");
  ASSERT_EQ(rows.size(), 51u);
  EXPECT_EQ(rows[0].name, "Gear");  // ts ties order by name
  EXPECT_EQ(rows[0].value, Value::enumeration("ShiftStateD"));
  EXPECT_EQ(rows[1].value, Value::float64(0));
}

TYPED_TEST_P(DatabaseSuite, EveryValueKindRoundTrips) {
  const Timestamp t = base_time();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Signal> in = {
      make_signal("VIN1", "A_Invalid", t, Value::invalid()),
      make_signal("VIN1", "B_Bool", t, Value::boolean(true)),
      make_signal("VIN1", "C_IntMin", t, Value::int64(std::numeric_limits<std::int64_t>::min())),
      make_signal("VIN1", "D_IntMax", t, Value::int64(std::numeric_limits<std::int64_t>::max())),
      make_signal("VIN1", "E_Float", t, Value::float64(0.1)),
      make_signal("VIN1", "F_Tiny", t, Value::float64(5e-324)),
      make_signal("VIN1", "G_Inf", t, Value::float64(-inf)),
      make_signal(
          "VIN1", "H_String", t,
          Value::string("tab\there\nnew line \\ back \"quote\" {brace} ,comma, NULL \xc3\xa9")),
      make_signal("VIN1", "I_Empty", t, Value::string("")),
      make_signal("VIN1", "J_Enum", t, Value::enumeration("ShiftStateD")),
      make_signal("VIN1", "K_Location", t, Value::location(37.7749, -122.4194)),
      make_signal("VIN1", "L_Doors", t,
                  Value::doors(R"({"DriverFront":true,"DriverRear":false,"PassengerFront":false,)"
                               R"("PassengerRear":false,"TrunkFront":false,"TrunkRear":true})")),
      make_signal("VIN1", "M_Tires", t, Value::tires(R"({"front_left":true})")),
      make_signal("VIN1", "N_Time", t, Value::time_of_day("07:05:09")),
      make_signal("VIN1", "O_Poll", t, Value::int64(3), Source::Poll),
  };
  ASSERT_TRUE(this->db_->append_signals(in));
  const auto out = this->all_rows(*this->db_, "VIN1");
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) EXPECT_EQ(out[i], in[i]) << in[i].name;
}

TYPED_TEST_P(DatabaseSuite, OutOfOrderAppendsAreReadInEventTimeOrder) {
  const Timestamp t = base_time();
  for (int i = 9; i >= 0; --i) {
    std::vector<Signal> one = {
        make_signal("VIN1", i % 2 ? "Odd" : "Even", t + i * kSecond, Value::int64(i))};
    ASSERT_TRUE(this->db_->append_signals(one));
  }
  const auto rows = this->all_rows(*this->db_, "VIN1", 3);
  ASSERT_EQ(rows.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(rows[static_cast<std::size_t>(i)].ts, t + i * kSecond);
    EXPECT_EQ(rows[static_cast<std::size_t>(i)].value, Value::int64(i));
  }
}

TYPED_TEST_P(DatabaseSuite, QueryPagesWithTheCursorAndFiltersByNameAndTime) {
  const Timestamp t = base_time();
  std::vector<Signal> batch;
  for (const char* name : {"Odometer", "Soc", "VehicleSpeed"}) {
    for (int i = 0; i < 100; ++i) {
      batch.push_back(make_signal("VIN1", name, t + i * kSecond, Value::int64(i)));
    }
  }
  batch.push_back(make_signal("VIN2", "Soc", t, Value::int64(1)));
  ASSERT_TRUE(this->db_->append_signals(batch));

  // Paging with a small limit visits every row once, in (ts, name) order.
  const auto rows = this->all_rows(*this->db_, "VIN1", 7);
  ASSERT_EQ(rows.size(), 300u);
  for (std::size_t i = 1; i < rows.size(); ++i) {
    EXPECT_TRUE(std::tie(rows[i - 1].ts, rows[i - 1].name) < std::tie(rows[i].ts, rows[i].name));
  }

  // One field, half-open time window, paged.
  SignalQuery q{
      .vin = "VIN1", .name = "Soc", .from = t + 10 * kSecond, .to = t + 20 * kSecond, .limit = 4};
  std::vector<Timestamp> seen;
  for (int page = 0; page < 10; ++page) {
    auto r = this->db_->query_signals(q);
    ASSERT_TRUE(r) << r.error().message();
    for (const Signal& s : r->rows) {
      EXPECT_EQ(s.name, "Soc");
      seen.push_back(s.ts);
    }
    if (!r->next) break;
    EXPECT_EQ(r->rows.size(), 4u);
    q.after = r->next;
  }
  ASSERT_EQ(seen.size(), 10u);
  EXPECT_EQ(seen.front(), t + 10 * kSecond);
  EXPECT_EQ(seen.back(), t + 19 * kSecond);

  // The cursor survives its text form; an exact last page has no next.
  auto page = this->db_->query_signals({.vin = "VIN2", .limit = 1});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->rows.size(), 1u);
  EXPECT_FALSE(page->next);
  auto first = this->db_->query_signals({.vin = "VIN1", .limit = 2});
  ASSERT_TRUE(first && first->next);
  auto parsed = SignalCursor::parse(first->next->to_string());
  ASSERT_TRUE(parsed);
  auto second = this->db_->query_signals({.vin = "VIN1", .limit = 2, .after = parsed});
  ASSERT_TRUE(second);
  ASSERT_EQ(second->rows.size(), 2u);
  EXPECT_EQ(second->rows[0], rows[2]);

  auto empty_vin = this->db_->query_signals({.vin = ""});
  ASSERT_FALSE(empty_vin);
  EXPECT_EQ(empty_vin.error(), make_error_code(errc::invalid_argument));
  auto unknown = this->db_->query_signals({.vin = "NOPE"});
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->rows.empty());
  EXPECT_FALSE(unknown->next);
}

TYPED_TEST_P(DatabaseSuite, QueryLimitIsCappedAtTenThousand) {
  const Timestamp t = base_time();
  std::vector<Signal> batch;
  for (int i = 0; i < 10'050; ++i) {
    batch.push_back(make_signal("VIN1", "Soc", t + i * 1000, Value::int64(i)));
  }
  ASSERT_TRUE(this->db_->append_signals(batch));
  auto r = this->db_->query_signals({.vin = "VIN1", .limit = 1'000'000});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rows.size(), kMaxLimit);
  ASSERT_TRUE(r->next);
  auto rest = this->db_->query_signals({.vin = "VIN1", .limit = 1'000'000, .after = r->next});
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->rows.size(), 50u);
  EXPECT_FALSE(rest->next);
  auto zero = this->db_->query_signals({.vin = "VIN1", .limit = 0});
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->rows.size(), 1u);
}

TYPED_TEST_P(DatabaseSuite, LatestSignalsGivesTheNewestRowOfEverySeries) {
  const Timestamp t = base_time();
  std::vector<Signal> batch;
  for (const char* vin : {"VIN2", "VIN1", "VIN3"}) {
    for (const char* name : {"Soc", "Gear", "Odometer"}) {
      for (int i : {3, 9, 1, 5}) {  // out of order; the newest is i = 9
        batch.push_back(make_signal(vin, name, t + i * kDay / 4, Value::int64(i)));
      }
    }
  }
  ASSERT_TRUE(this->db_->append_signals(batch));
  auto all = this->db_->latest_signals();
  ASSERT_TRUE(all) << all.error().message();
  ASSERT_EQ(all->size(), 9u);
  std::vector<std::string> keys;
  for (const Signal& s : *all) {
    EXPECT_EQ(s.value, Value::int64(9)) << s.vin << " " << s.name;
    EXPECT_EQ(s.ts, t + 9 * kDay / 4);
    keys.push_back(s.vin + "/" + s.name);
  }
  EXPECT_EQ(keys.front(), "VIN1/Gear");
  EXPECT_EQ(keys.back(), "VIN3/Soc");
  auto one = this->db_->latest_signals("VIN2");
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 3u);
  for (const Signal& s : *one) EXPECT_EQ(s.vin, "VIN2");
  auto none = this->db_->latest_signals("NOPE");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TYPED_TEST_P(DatabaseSuite, RetentionRemovesExactlyTheRowsBeforeTheCutoff) {
  const Timestamp t = base_time();
  std::vector<Signal> batch;
  for (const char* vin : {"VIN1", "VIN2"}) {
    for (int hour = 0; hour < 4 * 24; hour += 3) {  // four days, every three hours
      batch.push_back(make_signal(vin, "Soc", t + hour * 3600 * kSecond, Value::int64(hour)));
    }
  }
  ASSERT_TRUE(this->db_->append_signals(batch));
  const Timestamp cutoff = t + 2 * kDay + 12 * 3600 * kSecond;  // day 3, noon
  auto r = this->db_->delete_signals_before(cutoff);
  ASSERT_TRUE(r) << r.error().message();
  for (const char* vin : {"VIN1", "VIN2"}) {
    const auto rows = this->all_rows(*this->db_, vin);
    ASSERT_EQ(rows.size(), 12u);  // hours 60..93 of 0..93
    EXPECT_EQ(rows.front().ts, cutoff);
  }
  // Rows in dropped partitions are not counted; the remainder on the cutoff's day is.
  EXPECT_GE(r->rows_deleted, 2u * 4u);
  auto again = this->db_->delete_signals_before(cutoff);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->rows_deleted, 0u);
  EXPECT_EQ(again->partitions_dropped, 0u);
}

TYPED_TEST_P(DatabaseSuite, DeadLettersKeepTheirBytesAndListNewestFirst) {
  const Timestamp t = base_time();
  const std::string binary("\x00\x01\xff\xfe{\"x\":1}\n\t\\", 14);
  std::vector<DeadLetter> letters = {
      {.received_at = t,
       .topic = "telemetry/VIN1/v/Soc",
       .vin = "VIN1",
       .reason = "not_json",
       .payload = binary},
      {.received_at = t + 1,
       .topic = "telemetry/x",
       .vin = "",
       .reason = "bad_topic",
       .payload = ""},
      {.received_at = t + 2,
       .topic = "telemetry/VIN9/v/Soc",
       .vin = "VIN9",
       .reason = "unregistered_vin",
       .payload = "80"},
  };
  auto n = this->db_->append_dead_letters(letters);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 3u);
  DeadLetter other_payload = letters[0];  // same topic and reason, another payload: a new row
  other_payload.payload = "x";
  ASSERT_TRUE(this->db_->append_dead_letter(other_payload));

  auto list = this->db_->list_dead_letters(0, 10);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 4u);
  EXPECT_GT((*list)[0].id, (*list)[1].id);
  EXPECT_EQ((*list)[1].reason, "unregistered_vin");
  EXPECT_EQ((*list)[2].payload, "");
  EXPECT_EQ((*list)[2].vin, "");
  EXPECT_EQ((*list)[0].payload, "x");
  DeadLetter expected = letters[0];
  expected.id = (*list)[3].id;
  expected.payload_size = binary.size();
  expected.last_received_at = t;
  EXPECT_EQ((*list)[3], expected);

  auto page = this->db_->list_dead_letters(1, 2);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, (*list)[1].id);
  auto vin1 = this->db_->list_dead_letters(0, 10, "VIN1");
  ASSERT_TRUE(vin1);
  EXPECT_EQ(vin1->size(), 2u);
  EXPECT_EQ(*this->db_->count_dead_letters(), 4u);
  EXPECT_EQ(*this->db_->count_dead_letters("VIN9"), 1u);
  EXPECT_EQ(*this->db_->count_dead_letters("NOPE"), 0u);
}

TYPED_TEST_P(DatabaseSuite, VehicleUpsertKeepsCreatedAtAndNeverDuplicates) {
  auto a = this->db_->upsert_vehicle(
      {.vin = "VIN2", .name = "Blue", .source = VehicleSource::Manual, .created_at = 100});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->created_at, 100);
  ASSERT_TRUE(this->db_->upsert_vehicle({.vin = "VIN1", .name = "Red", .created_at = 50}));
  auto b = this->db_->upsert_vehicle(
      {.vin = "VIN2", .name = "", .source = VehicleSource::FleetApi, .created_at = 999});
  ASSERT_TRUE(b);
  EXPECT_EQ(
      *b,
      (Vehicle{
          .vin = "VIN2", .name = "Blue", .source = VehicleSource::FleetApi, .created_at = 100}));
  auto c = this->db_->upsert_vehicle({.vin = "VIN2", .name = "Green", .created_at = 5});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "Green");
  EXPECT_EQ(c->source, VehicleSource::Manual);

  auto list = this->db_->list_vehicles();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].vin, "VIN1");
  EXPECT_EQ((*list)[1], *c);
  auto got = this->db_->get_vehicle("VIN2");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(**got, *c);
  EXPECT_FALSE(*this->db_->get_vehicle("NOPE"));
  EXPECT_EQ(this->db_->upsert_vehicle({.vin = ""}).error(),
            make_error_code(errc::invalid_argument));
  EXPECT_TRUE(*this->db_->delete_vehicle("VIN1"));
  EXPECT_FALSE(*this->db_->delete_vehicle("VIN1"));
  EXPECT_EQ(this->db_->list_vehicles()->size(), 1u);
}

TYPED_TEST_P(DatabaseSuite, AlertsAreIdempotentAndLearnTheirEnd) {
  const Timestamp t = base_time();
  const Alert active{.vin = "VIN1",
                     .name = "A1",
                     .started_at = t,
                     .audiences_json = R"(["Customer"])",
                     .received_at = t + 5};
  const Alert other{.vin = "VIN1", .name = "A2", .started_at = t + 10, .received_at = t + 11};
  auto n = this->db_->append_alerts(std::vector{active, other, active});
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(*this->db_->append_alerts(std::vector{active}), 0u);
  Alert ended = active;
  ended.ended_at = t + 100;
  ended.received_at = t + 101;
  EXPECT_EQ(*this->db_->append_alerts(std::vector{ended}), 1u);
  EXPECT_EQ(*this->db_->append_alerts(std::vector{active, ended}), 0u) << "the end stays";

  auto list = this->db_->list_alerts("VIN1", 10, 0);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], other);  // newest start first
  Alert stored = active;
  stored.ended_at = t + 100;
  EXPECT_EQ((*list)[1], stored);
  EXPECT_EQ(this->db_->list_alerts("VIN1", 1, 1)->size(), 1u);
  EXPECT_TRUE(this->db_->list_alerts("VIN2", 10, 0)->empty());
}

TYPED_TEST_P(DatabaseSuite, ConnectivityAndVehicleErrorsAreIdempotent) {
  const Timestamp t = base_time();
  const ConnectivityEvent up{.vin = "VIN1",
                             .connection_id = "c1",
                             .status = "CONNECTED",
                             .network_interface = "wifi",
                             .ts = t,
                             .received_at = t + 1};
  ConnectivityEvent down = up;
  down.status = "DISCONNECTED";
  down.ts = t + 60 * kSecond;
  EXPECT_EQ(*this->db_->append_connectivity(std::vector{up, down, up}), 2u);
  EXPECT_EQ(*this->db_->append_connectivity(std::vector{down}), 0u);
  auto events = this->db_->list_connectivity("VIN1", 10, 0);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0], down);
  EXPECT_EQ((*events)[1], up);

  const VehicleError e1{.vin = "VIN1",
                        .name = "E1",
                        .body = "b",
                        .tags_json = R"({"a":"2"})",
                        .created_at = t,
                        .received_at = t + 1};
  VehicleError e2 = e1;
  e2.body = "other body";
  VehicleError redelivered = e1;
  redelivered.received_at = t + 999;
  EXPECT_EQ(*this->db_->append_vehicle_errors(std::vector{e1, e2}), 2u);
  EXPECT_EQ(*this->db_->append_vehicle_errors(std::vector{redelivered}), 0u);
  auto errors = this->db_->list_vehicle_errors("VIN1", 10, 0);
  ASSERT_TRUE(errors);
  ASSERT_EQ(errors->size(), 2u);
  EXPECT_EQ((*errors)[1], e1);
}

TYPED_TEST_P(DatabaseSuite, WriteBatchStoresEveryKindAndCountsWhatIsNew) {
  const Timestamp t = base_time();
  Batch batch;
  batch.signals = {make_signal("VIN1", "Soc", t, Value::int64(1)),
                   make_signal("VIN1", "Soc", t + 1, Value::int64(2))};
  batch.alerts = {{.vin = "VIN1", .name = "A", .started_at = t, .received_at = t}};
  batch.connectivity = {{.vin = "VIN1", .connection_id = "c", .status = "CONNECTED", .ts = t}};
  batch.vehicle_errors = {{.vin = "VIN1", .name = "E", .created_at = t, .received_at = t}};
  batch.dead_letters = {{.received_at = t, .topic = "x", .reason = "not_json", .payload = "{"}};
  EXPECT_EQ(batch.size(), 6u);
  auto r = this->db_->write_batch(batch);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->signals, 2u);
  EXPECT_EQ(r->alerts, 1u);
  EXPECT_EQ(r->connectivity, 1u);
  EXPECT_EQ(r->vehicle_errors, 1u);
  EXPECT_EQ(r->dead_letters, 1u);
  auto again = this->db_->write_batch(batch);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->signals + again->alerts + again->connectivity + again->vehicle_errors, 0u);
  EXPECT_EQ(again->dead_letters, 0u) << "a redelivered dead letter is counted, not added";
  auto none = this->db_->write_batch(Batch{});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->signals, 0u);
}

TYPED_TEST_P(DatabaseSuite, AFailedBatchStoresNothingAndTheNextOneWorks) {
  const Timestamp t = base_time();
  Batch batch;
  batch.signals = {make_signal("VIN1", "Soc", t, Value::int64(1))};
  batch.dead_letters = {{.received_at = t, .topic = "x", .reason = "not_json"}};
  batch.vehicle_errors = {{.vin = "VIN1", .name = "E", .created_at = t}};  // written after signals
  this->backend_.execute(TypeParam::fail_inserts_sql("vehicle_errors"));
  auto failed = this->db_->write_batch(batch);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error(), make_error_code(errc::query_failed));
  EXPECT_TRUE(is_retryable(failed.error()));
  EXPECT_TRUE(this->db_->query_signals({.vin = "VIN1"})->rows.empty());
  EXPECT_EQ(*this->db_->count_dead_letters(), 0u);

  this->backend_.execute(TypeParam::allow_inserts_sql("vehicle_errors"));
  auto ok = this->db_->write_batch(batch);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->signals, 1u);
  EXPECT_EQ(ok->vehicle_errors, 1u);
}

TYPED_TEST_P(DatabaseSuite, DataTheDatabaseRefusesIsRejectedNotRetryable) {
  const Timestamp t = base_time();
  Batch batch;
  batch.signals = {make_signal("VIN1", "Soc", t, Value::int64(1))};
  batch.alerts = {{.vin = "VIN1", .name = "A", .started_at = t}};
  this->backend_.execute(TypeParam::reject_inserts_sql("alerts"));
  auto refused = this->db_->write_batch(batch);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), make_error_code(errc::rejected));
  EXPECT_FALSE(is_retryable(refused.error()));
  EXPECT_TRUE(this->db_->query_signals({.vin = "VIN1"})->rows.empty());
  this->backend_.execute(TypeParam::allow_inserts_sql("alerts"));
  ASSERT_TRUE(this->db_->write_batch(batch));
}

TYPED_TEST_P(DatabaseSuite, KeysOfAnyLengthAreStoredReadBackAndDeduplicated) {
  // C1: names and ids the vehicle or the broker controls are part of unique keys. 7,000 random
  // bytes are far over PostgreSQL's btree limit (~2,700) and do not compress under it.
  const Timestamp t = base_time();
  const std::string alert = random_text(7000, 1);
  const std::string error = random_text(7000, 2);
  const std::string name = random_text(7000, 3);
  const std::string connection = random_text(7000, 4);
  std::string name2 = name;  // differs from `name` only in its last character
  name2.back() = static_cast<char>(name2.back() ^ 1);
  Batch batch;
  batch.signals = {make_signal("VIN1", name, t, Value::int64(1)),
                   make_signal("VIN1", name2, t, Value::int64(2))};
  batch.alerts = {{.vin = "VIN1", .name = alert, .started_at = t, .received_at = t}};
  batch.connectivity = {{.vin = "VIN1",
                         .connection_id = connection,
                         .status = "CONNECTED",
                         .ts = t,
                         .received_at = t}};
  batch.vehicle_errors = {{.vin = "VIN1", .name = error, .created_at = t, .received_at = t}};
  auto first = this->db_->write_batch(batch);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->signals, 2u);
  EXPECT_EQ(first->alerts, 1u);
  EXPECT_EQ(first->connectivity, 1u);
  EXPECT_EQ(first->vehicle_errors, 1u);

  auto again = this->db_->write_batch(batch);  // a redelivery
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->signals + again->alerts + again->connectivity + again->vehicle_errors, 0u);
  Alert ended = batch.alerts[0];  // the upsert still finds its row
  ended.ended_at = t + 5;
  EXPECT_EQ(*this->db_->append_alerts(std::vector{ended}), 1u);

  auto alerts = this->db_->list_alerts("VIN1", 10, 0);
  ASSERT_TRUE(alerts && alerts->size() == 1u);
  EXPECT_EQ((*alerts)[0].name, alert);
  EXPECT_EQ((*alerts)[0].ended_at, t + 5);
  auto errors = this->db_->list_vehicle_errors("VIN1", 10, 0);
  ASSERT_TRUE(errors && errors->size() == 1u);
  EXPECT_EQ((*errors)[0].name, error);
  auto links = this->db_->list_connectivity("VIN1", 10, 0);
  ASSERT_TRUE(links && links->size() == 1u);
  EXPECT_EQ((*links)[0].connection_id, connection);
  auto one = this->db_->query_signals({.vin = "VIN1", .name = name});
  ASSERT_TRUE(one) << one.error().message();
  ASSERT_EQ(one->rows.size(), 1u);
  EXPECT_EQ(one->rows[0].name, name);
  EXPECT_EQ(one->rows[0].value, Value::int64(1));
  auto latest = this->db_->latest_signals("VIN1");
  ASSERT_TRUE(latest && latest->size() == 2u);
  EXPECT_EQ(this->all_rows(*this->db_, "VIN1").size(), 2u);

  // A fresh instance (no cached series ids) finds the stored series again.
  this->db_.reset();
  auto reopened = this->open();
  ASSERT_TRUE(reopened);
  EXPECT_EQ(*reopened->append_signals(batch.signals), 0u);
  EXPECT_EQ(*reopened->append_signals(
                std::vector{make_signal("VIN1", name, t + 1, Value::int64(3))}),
            1u);
  EXPECT_EQ(reopened->query_signals({.vin = "VIN1", .name = name})->rows.size(), 2u);
}

TYPED_TEST_P(DatabaseSuite, DeadLettersAreDeduplicatedCountedAndCut) {
  const Timestamp t = base_time();
  const DeadLetter letter{.received_at = t,
                          .topic = "telemetry/VIN9/v/Soc",
                          .vin = "VIN9",
                          .reason = "unregistered_vin",
                          .payload = "80"};
  DeadLetter later = letter;
  later.received_at = t + 10;
  DeadLetter earlier = letter;
  earlier.received_at = t + 5;
  auto n = this->db_->append_dead_letters(std::vector{letter, later});  // twice in one batch
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  n = this->db_->append_dead_letters(std::vector{earlier});  // redelivered
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(*this->db_->count_dead_letters(), 1u);
  auto list = this->db_->list_dead_letters(0, 10);
  ASSERT_TRUE(list && list->size() == 1u);
  EXPECT_EQ((*list)[0].occurrences, 3u);
  EXPECT_EQ((*list)[0].received_at, t) << "the first receipt";
  EXPECT_EQ((*list)[0].last_received_at, t + 10) << "the latest receipt";
  EXPECT_EQ((*list)[0].payload, "80");
  EXPECT_EQ((*list)[0].payload_size, 2u);

  // Another reason or payload is another letter.
  DeadLetter other = letter;
  other.reason = "not_json";
  EXPECT_EQ(*this->db_->append_dead_letter(other), 1u);

  // A payload over the cap is stored cut, with its original size; a repeat is still one row.
  std::string big = random_text(100'000, 7);
  DeadLetter huge{.received_at = t, .topic = "t/big", .reason = "too_big", .payload = big};
  EXPECT_EQ(*this->db_->append_dead_letter(huge), 1u);
  EXPECT_EQ(*this->db_->append_dead_letter(huge), 0u);
  DeadLetter pre_cut = huge;  // a caller that cut it already passes the original size
  pre_cut.payload = big.substr(0, 10);
  pre_cut.payload_size = big.size();
  EXPECT_EQ(*this->db_->append_dead_letter(pre_cut), 1u);
  list = this->db_->list_dead_letters(0, 10);
  ASSERT_TRUE(list && list->size() == 4u);
  EXPECT_EQ((*list)[1].topic, "t/big");
  EXPECT_EQ((*list)[1].payload, big.substr(0, kMaxDeadLetterPayload));
  EXPECT_EQ((*list)[1].payload_size, big.size());
  EXPECT_EQ((*list)[1].occurrences, 2u);
  EXPECT_EQ((*list)[0].payload, big.substr(0, 10));
  EXPECT_EQ((*list)[0].payload_size, big.size());
}

TYPED_TEST_P(DatabaseSuite, DeadLetterRetentionRemovesTheOldAndCapsTheRest) {
  const Timestamp t = base_time();
  // 11,000 old letters (more than two delete chunks), 10 recent ones, and one old letter that
  // was received again recently (it stays: retention looks at the latest receipt).
  std::vector<DeadLetter> old;
  for (int i = 0; i < 11'000; ++i) {
    old.push_back({.received_at = t + i, .topic = "t/" + std::to_string(i), .reason = "r"});
  }
  ASSERT_TRUE(this->db_->append_dead_letters(old));
  std::vector<DeadLetter> recent;
  for (int i = 0; i < 10; ++i) {
    recent.push_back(
        {.received_at = t + kDay + i, .topic = "new/" + std::to_string(i), .reason = "r"});
  }
  ASSERT_TRUE(this->db_->append_dead_letters(recent));
  DeadLetter again = old[0];
  again.received_at = t + kDay + 100;
  ASSERT_TRUE(this->db_->append_dead_letter(again));

  auto removed = this->db_->delete_dead_letters(t + kDay, UINT64_MAX);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 10'999u);
  EXPECT_EQ(*this->db_->count_dead_letters(), 11u);

  // The cap: the oldest (by latest receipt) go first.
  removed = this->db_->delete_dead_letters(t, 4);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 7u);
  auto left = this->db_->list_dead_letters(0, 100);
  ASSERT_TRUE(left && left->size() == 4u);
  std::set<std::string> topics;
  for (const DeadLetter& d : *left) topics.insert(d.topic);
  EXPECT_EQ(topics, (std::set<std::string>{"t/0", "new/9", "new/8", "new/7"}));
  removed = this->db_->delete_dead_letters(t, 0);
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, 4u);
  EXPECT_EQ(*this->db_->count_dead_letters(), 0u);
}

TYPED_TEST_P(DatabaseSuite, LatestSignalsWithASkewIgnoresRowsFromTheFuture) {
  const Timestamp now = signal::now();
  const Timestamp y2099 = 4'070'908'800LL * kSecond;  // 2099-01-01
  Signal future = make_signal("VIN1", "VehicleSpeed", y2099, Value::int64(10));
  future.received_at = now - 60 * kSecond;
  Signal current = make_signal("VIN1", "VehicleSpeed", now - 30 * kSecond, Value::int64(55));
  current.received_at = now - 29 * kSecond;
  Signal only_future = make_signal("VIN1", "Gear", y2099, Value::string("D"));
  only_future.received_at = now - 60 * kSecond;
  // Slightly ahead of its receipt, within the skew: still the newest.
  Signal soc = make_signal("VIN1", "Soc", now - 10 * kSecond, Value::int64(80));
  soc.received_at = now - 70 * kSecond;
  ASSERT_TRUE(this->db_->append_signals(std::vector{future, current, only_future, soc}));

  auto plain = this->db_->latest_signals("VIN1");
  ASSERT_TRUE(plain && plain->size() == 3u);
  EXPECT_EQ((*plain)[2].ts, y2099) << "without a skew the newest ts wins";

  auto bounded = this->db_->latest_signals("VIN1", std::chrono::minutes(5));
  ASSERT_TRUE(bounded) << bounded.error().message();
  ASSERT_EQ(bounded->size(), 2u) << "Gear has no row within the skew";
  EXPECT_EQ((*bounded)[0].name, "Soc");
  EXPECT_EQ((*bounded)[0].value, Value::int64(80));
  EXPECT_EQ((*bounded)[1].name, "VehicleSpeed");
  EXPECT_EQ((*bounded)[1].value, Value::int64(55));
  auto all = this->db_->latest_signals(std::nullopt, std::chrono::minutes(5));
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, *bounded);
  auto tight = this->db_->latest_signals("VIN1", std::chrono::seconds(0));
  ASSERT_TRUE(tight);
  ASSERT_EQ(tight->size(), 1u);
  EXPECT_EQ((*tight)[0].value, Value::int64(55));
}

TYPED_TEST_P(DatabaseSuite, MigrationFiveMergesStoredDeadLettersAndKeysTheirRedeliveries) {
  this->db_.reset();
  this->backend_ = TypeParam();
  auto old = this->open(OpenOptions{.migrate_to_version_for_test = 4});
  ASSERT_TRUE(old);
  old.reset();
  // Rows as version 4 stored them: every copy of a dead letter appended.
  const Timestamp t = base_time();
  const DeadLetter letter{.received_at = t,
                          .topic = "telemetry/VIN9/v/Soc",
                          .vin = "VIN9",
                          .reason = "r",
                          .payload = std::string("\\x00\x01\xff", 6)};
  for (Timestamp at : {t, t + 7}) {
    this->backend_.execute(
        "INSERT INTO dead_letters (received_at, topic, vin, reason, payload) VALUES (" +
        std::to_string(at) + ", 'telemetry/VIN9/v/Soc', 'VIN9', 'r', " +
        TypeParam::bytes_sql("5c783030" "01ff") + ")");
  }
  this->backend_.execute(
      "INSERT INTO alerts (vin, name, started_at, audiences, received_at) VALUES ('VIN1', 'A', " +
      std::to_string(t) + ", '[]', 0)");

  auto db = this->open();
  ASSERT_TRUE(db);
  EXPECT_EQ(*db->schema_version(), 5);
  auto list = db->list_dead_letters(0, 10);
  ASSERT_TRUE(list && list->size() == 1u);
  EXPECT_EQ((*list)[0].occurrences, 2u);
  EXPECT_EQ((*list)[0].received_at, t);
  EXPECT_EQ((*list)[0].last_received_at, t + 7);
  EXPECT_EQ((*list)[0].payload_size, letter.payload.size());
  // The key computed in SQL by the migration equals the writer's: a redelivery is counted.
  EXPECT_EQ(*db->append_dead_letter(letter), 0u);
  EXPECT_EQ((*db->list_dead_letters(0, 10))[0].occurrences, 3u);
  EXPECT_EQ(*db->append_alerts(std::vector{Alert{
                .vin = "VIN1", .name = "A", .started_at = t, .received_at = t}}),
            0u);
}

TYPED_TEST_P(DatabaseSuite, FleetErrorUpsertsNeverDuplicate) {
  const Timestamp t = base_time();
  std::vector<FleetError> errors = {
      {.vin = "VIN1",
       .error_name = "config_manager_error",
       .error = "InvalidSignature: unknown issuer",
       .created_at = t,
       .name = "client",
       .txid = "tx1",
       .raw_json = "{}",
       .fetched_at = t + 1},
      {.vin = "VIN2",
       .error_name = "config_manager_error",
       .error = std::string(5000, 'x'),  // long texts are keys too
       .created_at = t + 5,
       .name = "client",
       .txid = "tx2",
       .raw_json = "{}",
       .fetched_at = t + 1},
  };
  ASSERT_TRUE(this->db_->upsert_fleet_errors(errors));
  for (FleetError& e : errors) {
    e.fetched_at = t + 100;
    e.txid += "b";
  }
  std::vector<FleetError> twice = {errors[0], errors[1], errors[1]};
  ASSERT_TRUE(this->db_->upsert_fleet_errors(twice));
  auto list = this->db_->list_fleet_errors(std::nullopt, 10, 0);
  ASSERT_TRUE(list) << list.error().message();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].vin, "VIN2");  // newest created_at first
  EXPECT_EQ((*list)[0].fetched_at, t + 100);
  EXPECT_EQ((*list)[0].txid, "tx2b");
  EXPECT_EQ((*list)[0].error, errors[1].error);
  auto one = this->db_->list_fleet_errors("VIN1", 10, 0);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  FleetError expected = errors[0];
  expected.id = (*one)[0].id;
  EXPECT_EQ((*one)[0], expected);
  EXPECT_EQ(this->db_->list_fleet_errors(std::nullopt, 1, 1)->size(), 1u);
}

TYPED_TEST_P(DatabaseSuite, ReplaceErrorVinsActivatesTheListedAndResolvesTheRest) {
  const std::vector<std::string> first = {"VIN_A", "VIN_B", "VIN_A"};
  ASSERT_TRUE(this->db_->replace_error_vins(first, 100));
  auto v = this->db_->list_error_vins(true);
  ASSERT_TRUE(v);
  ASSERT_EQ(v->size(), 2u);

  ASSERT_TRUE(this->db_->replace_error_vins(std::vector<std::string>{"VIN_B", "VIN_C"}, 200));
  auto all = this->db_->list_error_vins(false);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  // Ordered by last_seen_at descending, then vin.
  EXPECT_EQ((*all)[0],
            (ErrorVin{.vin = "VIN_B", .active = true, .first_seen_at = 100, .last_seen_at = 200}));
  EXPECT_EQ((*all)[1],
            (ErrorVin{.vin = "VIN_C", .active = true, .first_seen_at = 200, .last_seen_at = 200}));
  EXPECT_EQ((*all)[2], (ErrorVin{.vin = "VIN_A",
                                 .active = false,
                                 .first_seen_at = 100,
                                 .last_seen_at = 100,
                                 .resolved_at = 200}));

  ASSERT_TRUE(this->db_->replace_error_vins(std::vector<std::string>{"VIN_A"}, 300));
  auto active = this->db_->list_error_vins(true);
  ASSERT_TRUE(active);
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0],
            (ErrorVin{.vin = "VIN_A", .active = true, .first_seen_at = 100, .last_seen_at = 300}));
  ASSERT_TRUE(this->db_->replace_error_vins(std::vector<std::string>{}, 400));
  EXPECT_TRUE(this->db_->list_error_vins(true)->empty());
  EXPECT_EQ(this->db_->list_error_vins(false)->size(), 3u);
}

TYPED_TEST_P(DatabaseSuite, TokensAreFoundByTheirHashAndTouched) {
  const std::string hash(64, 'a');
  auto t = this->db_->create_token("admin", hash, 10);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->name, "admin");
  EXPECT_EQ(t->sha256_hex, hash);
  EXPECT_FALSE(t->last_used_at);
  auto found = this->db_->find_token(std::string(64, 'A'));  // hex is case-insensitive
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(**found, *t);
  EXPECT_FALSE(*this->db_->find_token(std::string(64, 'b')));
  EXPECT_FALSE(*this->db_->find_token("not-a-hash"));

  EXPECT_TRUE(*this->db_->touch_token(t->id, 99));
  EXPECT_FALSE(*this->db_->touch_token(t->id + 1000, 99));
  EXPECT_EQ((*this->db_->find_token(hash))->last_used_at, 99);

  auto dup = this->db_->create_token("again", hash, 11);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error(), make_error_code(errc::rejected));
  EXPECT_EQ(this->db_->create_token("bad", "xyz", 1).error(),
            make_error_code(errc::invalid_argument));
  auto second = this->db_->create_token("ci", std::string(64, 'c'), 12);
  ASSERT_TRUE(second);
  EXPECT_GT(second->id, t->id);
  EXPECT_EQ(this->db_->list_tokens()->size(), 2u);
  EXPECT_TRUE(*this->db_->delete_token(t->id));
  EXPECT_FALSE(*this->db_->delete_token(t->id));
  EXPECT_FALSE(*this->db_->find_token(hash));
}

TYPED_TEST_P(DatabaseSuite, SettingsAreStoredAndReplaced) {
  EXPECT_FALSE(*this->db_->get_setting("ui.theme"));
  ASSERT_TRUE(this->db_->set_setting("ui.theme", "dark"));
  ASSERT_TRUE(this->db_->set_setting("ui.theme", "light"));
  ASSERT_TRUE(this->db_->set_setting("empty", ""));
  EXPECT_EQ(*this->db_->get_setting("ui.theme"), "light");
  EXPECT_EQ(*this->db_->get_setting("empty"), "");
}

TYPED_TEST_P(DatabaseSuite, EventRetentionTrimsTheEventTables) {
  const Timestamp t = base_time();
  Batch old;
  old.connectivity = {
      {.vin = "V", .connection_id = "c", .status = "CONNECTED", .ts = t, .received_at = t}};
  old.vehicle_errors = {{.vin = "V", .name = "E", .created_at = t, .received_at = t}};
  old.dead_letters = {{.received_at = t, .topic = "x", .reason = "r"}};
  old.alerts = {{.vin = "V", .name = "ended", .started_at = t, .ended_at = t + 1, .received_at = t},
                {.vin = "V", .name = "active", .started_at = t, .received_at = t}};
  ASSERT_TRUE(this->db_->write_batch(old));
  Batch recent;
  recent.dead_letters = {{.received_at = t + kDay, .topic = "x", .reason = "r2"}};
  ASSERT_TRUE(this->db_->write_batch(recent));
  auto n = this->db_->delete_events_before(t + 10);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(*this->db_->count_dead_letters(), 2u) << "dead letters have their own retention";
  auto alerts = this->db_->list_alerts("V", 10, 0);
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ((*alerts)[0].name, "active");
}

TYPED_TEST_P(DatabaseSuite, ReadersWorkWhileTheWriterWrites) {
  const Timestamp t = base_time();
  constexpr int kBatches = 40;
  std::atomic<int> read_failures{0};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    for (int i = 0; i < 10'000 && !done.load(); ++i) {
      if (!this->db_->query_signals({.vin = "VIN1", .limit = 100})) ++read_failures;
      if (!this->db_->latest_signals("VIN1")) ++read_failures;
    }
  });
  int write_failures = 0;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<Signal> batch;
    for (int i = 0; i < 200; ++i) {
      batch.push_back(make_signal("VIN1", "F" + std::to_string(i % 20), t + (b * 200 + i) * 1000,
                                  Value::int64(i)));
    }
    if (!this->db_->append_signals(batch)) ++write_failures;
  }
  done = true;
  reader.join();
  EXPECT_EQ(write_failures, 0);
  EXPECT_EQ(read_failures.load(), 0);
  EXPECT_EQ(this->all_rows(*this->db_, "VIN1").size(), static_cast<std::size_t>(kBatches * 200));
}

TYPED_TEST_P(DatabaseSuite, WritesAreCountedInTheMetrics) {
  core::MetricsRegistry registry;
  this->db_.reset();
  this->db_ = this->open(OpenOptions{.metrics = &registry});
  ASSERT_TRUE(this->db_);
  const Timestamp t = base_time();
  std::vector<Signal> batch = {make_signal("VIN1", "Soc", t, Value::int64(1)),
                               make_signal("VIN1", "Soc", t, Value::int64(1))};
  ASSERT_TRUE(this->db_->append_signals(batch));
  const std::string text = registry.render_prometheus();
  EXPECT_NE(text.find("teslasync_storage_rows_written_total{table=\"signal_log\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("teslasync_storage_duplicate_signals_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("teslasync_storage_transactions_total{op=\"write_batch\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("teslasync_storage_duration_microseconds_total{op=\"write_batch\"}"),
            std::string::npos);
  EXPECT_NE(text.find("teslasync_storage_backend_info{backend=\"" +
                      std::string(this->db_->backend()) + "\"} 1\n"),
            std::string::npos);
}

REGISTER_TYPED_TEST_SUITE_P(
    DatabaseSuite, OpensAtTheLatestSchemaAndReopeningChangesNothing,
    MigratesAnOlderSchemaForwardKeepingItsRows, RefusesASchemaNewerThanThisRelease,
    RedeliveredSignalsAreStoredOnceAndTheFirstValueWins, EveryValueKindRoundTrips,
    OutOfOrderAppendsAreReadInEventTimeOrder, QueryPagesWithTheCursorAndFiltersByNameAndTime,
    QueryLimitIsCappedAtTenThousand, LatestSignalsGivesTheNewestRowOfEverySeries,
    RetentionRemovesExactlyTheRowsBeforeTheCutoff, DeadLettersKeepTheirBytesAndListNewestFirst,
    VehicleUpsertKeepsCreatedAtAndNeverDuplicates, AlertsAreIdempotentAndLearnTheirEnd,
    ConnectivityAndVehicleErrorsAreIdempotent, WriteBatchStoresEveryKindAndCountsWhatIsNew,
    AFailedBatchStoresNothingAndTheNextOneWorks, FleetErrorUpsertsNeverDuplicate,
    ReplaceErrorVinsActivatesTheListedAndResolvesTheRest, TokensAreFoundByTheirHashAndTouched,
    SettingsAreStoredAndReplaced, EventRetentionTrimsTheEventTables,
    ReadersWorkWhileTheWriterWrites, WritesAreCountedInTheMetrics,
    DataTheDatabaseRefusesIsRejectedNotRetryable, KeysOfAnyLengthAreStoredReadBackAndDeduplicated,
    DeadLettersAreDeduplicatedCountedAndCut, DeadLetterRetentionRemovesTheOldAndCapsTheRest,
    LatestSignalsWithASkewIgnoresRowsFromTheFuture,
    MigrationFiveMergesStoredDeadLettersAndKeysTheirRedeliveries);

}  // namespace ts::storage::testing
