// The Database behaviour suite on a real PostgreSQL (tests/support PostgresServer, one server for
// the suite, a fresh database per test), plus what is PostgreSQL's own: daily partitions and the
// default partition, retention by dropping partitions, outages and reconnects, concurrent
// migrations, passwords kept out of logs.
#include <libpq-fe.h>
#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/log.hpp"
#include "storage/database.hpp"
#include "storage/postgres/pg_connection.hpp"
#include "storage/postgres/postgres_database.hpp"
#include "storage/tests/database_suite.hpp"
#include "support/ports.hpp"
#include "support/postgres_server.hpp"

namespace ts::storage::testing {
namespace {

using testsupport::PostgresServer;

/// The suite's server, started on first use and stopped at exit.
PostgresServer& shared_server() {
  static std::unique_ptr<PostgresServer> server = std::make_unique<PostgresServer>();
  return *server;
}

std::string fresh_database(PostgresServer& server) {
  static int counter = 0;
  return server.create_database("t" + std::to_string(++counter));
}

/// Runs SQL on a database directly; returns the first cell of the result (or "").
std::string execute_pg(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("connect: " + message);
  }
  PGresult* r = PQexec(conn, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  std::string out;
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
  const std::string message = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error(message);
  return out;
}

struct PostgresBackend {
  std::string database_url = fresh_database(shared_server());
  std::string url() const { return database_url; }
  std::filesystem::path data_dir() const { return "/nonexistent"; }
  void execute(const std::string& sql) const { execute_pg(database_url, sql); }
  static std::string fail_inserts_sql(const std::string& table) {
    return "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "RAISE EXCEPTION 'refused by the test'; END $$; CREATE TRIGGER fail_" +
           table + " BEFORE INSERT ON " + table + " FOR EACH ROW EXECUTE FUNCTION refuse()";
  }
  // A data error (check_violation, class 23): rejected.
  static std::string reject_inserts_sql(const std::string& table) {
    return "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; END $$; "
           "CREATE TRIGGER fail_" +
           table + " BEFORE INSERT ON " + table + " FOR EACH ROW EXECUTE FUNCTION refuse()";
  }
  static std::string bytes_sql(const std::string& hex) { return "decode('" + hex + "', 'hex')"; }
  static std::string allow_inserts_sql(const std::string& table) {
    return "DROP TRIGGER fail_" + table + " ON " + table + "; DROP FUNCTION refuse()";
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, DatabaseSuite, PostgresBackend);

std::unique_ptr<Database> open_or_fail(const std::string& url, OpenOptions options = {}) {
  auto db = open_database(url, "/nonexistent", options);
  if (!db) throw std::runtime_error("open_database: " + db.error().message());
  return std::move(*db);
}

TEST(PostgresDatabase, SqlstatesSplitIntoRejectedDataAndRetryableFailures) {
  using postgres::error_code_of_sqlstate;
  // The same data fails again: the writer isolates the row instead of retrying.
  for (const char* s : {"22001", "22003", "22P02", "22021", "23505", "23514", "23502", "54000",
                        "54001", "42804", "42846"}) {
    EXPECT_EQ(error_code_of_sqlstate(s), make_error_code(errc::rejected)) << s;
    EXPECT_FALSE(is_retryable(error_code_of_sqlstate(s))) << s;
  }
  for (const char* s : {"08000", "08006", "08P01", "57P01", "57P02", "57P03", "53300"}) {
    EXPECT_EQ(error_code_of_sqlstate(s), make_error_code(errc::unavailable)) << s;
  }
  for (const char* s : {"57014", "55P03", "40P01", "40001"}) {
    EXPECT_EQ(error_code_of_sqlstate(s), make_error_code(errc::timeout)) << s;
  }
  for (const char* s : {"53100", "53200", "42P01", "42501", "XX000", "P0001", ""}) {
    EXPECT_EQ(error_code_of_sqlstate(s), make_error_code(errc::query_failed)) << s;
  }
  for (const char* s : {"08006", "57P01", "40001", "40P01", "53100", "57014", "55P03"}) {
    EXPECT_TRUE(is_retryable(error_code_of_sqlstate(s))) << s;
  }
}

TEST(PostgresDatabase, SignalsGoToDailyPartitionsThatRetentionDrops) {
  auto db = open_or_fail(fresh_database(shared_server()));
  const Timestamp t = base_time();
  const std::int64_t day0 = detail::day_of(t);
  std::vector<Signal> rows;
  for (int d = 0; d < 4; ++d) {
    rows.push_back(make_signal("VIN1", "Soc", t + d * kDay + 3600 * kSecond, Value::int64(d)));
  }
  ASSERT_TRUE(db->append_signals(rows));
  auto days = postgres::partition_days_for_test(*db);
  ASSERT_TRUE(days);
  const std::set<std::int64_t> have(days->begin(), days->end());
  for (int d = 0; d < 4; ++d) EXPECT_TRUE(have.contains(day0 + d)) << d;
  const std::int64_t today = detail::day_of(signal::now());
  EXPECT_TRUE(have.contains(today) && have.contains(today + 1)) << "created ahead at open";
  EXPECT_EQ(*postgres::default_partition_rows_for_test(*db), 0u);

  auto r = db->delete_signals_before(t + 2 * kDay + 7200 * kSecond);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->partitions_dropped, 2u);
  EXPECT_EQ(r->rows_deleted, 1u);  // day 2's row at 01:00, before the cutoff at 02:00
  days = postgres::partition_days_for_test(*db);
  ASSERT_TRUE(days);
  EXPECT_EQ(std::count(days->begin(), days->end(), day0), 0);
  EXPECT_EQ(std::count(days->begin(), days->end(), day0 + 2), 1) << "the cutoff's day stays";
  auto page = db->query_signals({.vin = "VIN1"});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0].value, Value::int64(3));

  // A day dropped by retention comes back as a partition if (late) data for it arrives.
  ASSERT_TRUE(db->append_signals(std::vector{make_signal("VIN1", "Soc", t, Value::int64(0))}));
  EXPECT_EQ(*postgres::default_partition_rows_for_test(*db), 0u);
}

TEST(PostgresDatabase, RowsNoDayPartitionCoversUseTheDefaultAndMoveWhenTheirDayIsCreated) {
  auto db = open_or_fail(fresh_database(shared_server()));
  const Timestamp future = signal::now() + 30 * kDay;  // a vehicle clock far ahead
  const Timestamp ancient = 631'152'000LL * kSecond;   // 1990
  ASSERT_TRUE(
      db->append_signals(std::vector{make_signal("VIN1", "Soc", future, Value::int64(1)),
                                     make_signal("VIN1", "Soc", ancient, Value::int64(2))}));
  EXPECT_EQ(*postgres::default_partition_rows_for_test(*db), 2u);
  auto days = postgres::partition_days_for_test(*db);
  ASSERT_TRUE(days);
  EXPECT_EQ(std::count(days->begin(), days->end(), detail::day_of(future)), 0);

  ASSERT_TRUE(postgres::create_partition_for_test(*db, detail::day_of(future)));
  EXPECT_EQ(*postgres::default_partition_rows_for_test(*db), 1u);
  days = postgres::partition_days_for_test(*db);
  EXPECT_EQ(std::count(days->begin(), days->end(), detail::day_of(future)), 1);
  ASSERT_TRUE(
      db->append_signals(std::vector{make_signal("VIN1", "Soc", future + 1, Value::int64(3))}));
  EXPECT_EQ(*postgres::default_partition_rows_for_test(*db), 1u);
  auto page = db->query_signals({.vin = "VIN1"});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->rows.size(), 3u);
  EXPECT_EQ(page->rows[0].ts, ancient);
  EXPECT_EQ(page->rows[2].ts, future + 1);
  // Redelivery stays idempotent across the move.
  EXPECT_EQ(*db->append_signals(std::vector{make_signal("VIN1", "Soc", future, Value::int64(9))}),
            0u);
}

TEST(PostgresDatabase, FarOffDaysUseTheDefaultPartitionAndCreateNone) {
  // M3: a vehicle's clock must not decide how many partitions exist.
  const std::string url = fresh_database(shared_server());
  auto db = open_or_fail(url);
  const std::string count_sql =
      "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'signal_log'::regclass";
  const std::string before = execute_pg(url, count_sql);
  const Timestamp y2001 = 978'307'200LL * kSecond + 3600 * kSecond;  // 2001-01-01 01:00
  const Timestamp y2099 = 4'070'908'800LL * kSecond;                 // 2099-01-01
  const Timestamp month_ago = signal::now() - 40 * kDay;             // beyond the 30-day window
  ASSERT_TRUE(db->append_signals(std::vector{make_signal("VIN1", "Soc", y2001, Value::int64(1)),
                                             make_signal("VIN1", "Soc", y2099, Value::int64(2)),
                                             make_signal("VIN1", "Soc", month_ago,
                                                         Value::int64(3))}));
  EXPECT_EQ(execute_pg(url, count_sql), before) << "no partition was created";
  auto days = postgres::partition_days_for_test(*db);
  ASSERT_TRUE(days);
  for (Timestamp ts : {y2001, y2099, month_ago}) {
    EXPECT_EQ(std::count(days->begin(), days->end(), detail::day_of(ts)), 0) << ts;
  }
  EXPECT_EQ(*postgres::default_partition_rows_for_test(*db), 3u);
  auto page = db->query_signals({.vin = "VIN1"});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->rows.size(), 3u);
  EXPECT_EQ(page->rows[0].ts, y2001);
  EXPECT_EQ(page->rows[2].ts, y2099);
  auto ranged = db->query_signals({.vin = "VIN1", .from = y2099 - 1, .to = y2099 + 1});
  ASSERT_TRUE(ranged && ranged->rows.size() == 1u);
  EXPECT_EQ(ranged->rows[0].value, Value::int64(2));

  // With a retention of 2 days, a row 5 days old is inside no partition's window either.
  auto kept = open_or_fail(fresh_database(shared_server()),
                           OpenOptions{.retention = std::chrono::hours(48)});
  const Timestamp five_days = signal::now() - 5 * kDay;
  const Timestamp yesterday = signal::now() - kDay;
  ASSERT_TRUE(kept->append_signals(std::vector{make_signal("VIN1", "Soc", five_days, Value::int64(1)),
                                               make_signal("VIN1", "Soc", yesterday,
                                                           Value::int64(2))}));
  days = postgres::partition_days_for_test(*kept);
  ASSERT_TRUE(days);
  EXPECT_EQ(std::count(days->begin(), days->end(), detail::day_of(five_days)), 0);
  EXPECT_EQ(std::count(days->begin(), days->end(), detail::day_of(yesterday)), 1);
  EXPECT_EQ(*postgres::default_partition_rows_for_test(*kept), 1u);
}

TEST(PostgresDatabase, TextItCannotHoldIsStoredWithReplacementCharacters) {
  core::MetricsRegistry registry;
  auto db = open_or_fail(fresh_database(shared_server()), OpenOptions{.metrics = &registry});
  const Timestamp t = base_time();
  // A JSON "\u0000" decodes to a NUL; bytes that are not UTF-8 could come from a topic. Either
  // would make PostgreSQL refuse the whole batch, and the ingest would retry it forever.
  Batch batch;
  batch.signals = {make_signal("VIN1", "Name", t, Value::string(std::string("a\0b", 3))),
                   make_signal("VIN1", "Other", t, Value::string("ok \xc3\xa9"))};
  batch.vehicle_errors = {{.vin = "VIN1", .name = "E", .body = "bad \xff byte", .created_at = t}};
  batch.dead_letters = {{.received_at = t,
                         .topic = "t/\xc3",
                         .reason = "bad_topic",
                         .payload = std::string("\0\xff", 2)}};
  auto r = db->write_batch(batch);
  ASSERT_TRUE(r) << r.error().message();
  const auto rows = db->query_signals({.vin = "VIN1"});
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->rows.size(), 2u);
  EXPECT_EQ(rows->rows[0].value.text,
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(rows->rows[1].value.text, "ok \xc3\xa9");
  EXPECT_EQ((*db->list_vehicle_errors("VIN1", 10, 0))[0].body, "bad \xef\xbf\xbd byte");
  const auto letters = db->list_dead_letters(0, 10);
  ASSERT_TRUE(letters && letters->size() == 1u);
  EXPECT_EQ((*letters)[0].topic, "t/\xef\xbf\xbd");
  EXPECT_EQ((*letters)[0].payload, std::string("\0\xff", 2)) << "bytea keeps every byte";
  EXPECT_NE(registry.render_prometheus().find("teslasync_storage_texts_repaired_total 3\n"),
            std::string::npos);
}

TEST(PostgresDatabase, AnOutageFailsCallsAndTheFirstCallAfterRestartSucceeds) {
  PostgresServer server;
  core::MetricsRegistry registry;
  auto db = open_or_fail(
      server.url(), OpenOptions{.metrics = &registry, .connect_timeout = std::chrono::seconds(2)});
  const Timestamp t = base_time();
  Batch batch;
  batch.signals = {make_signal("VIN1", "Soc", t, Value::int64(1))};
  ASSERT_TRUE(db->write_batch(batch));
  ASSERT_TRUE(db->query_signals({.vin = "VIN1"}));

  server.stop();
  batch.signals = {make_signal("VIN1", "Soc", t + 1, Value::int64(2))};
  auto during = db->write_batch(batch);
  ASSERT_FALSE(during);
  EXPECT_EQ(during.error(), make_error_code(errc::unavailable));
  auto read = db->query_signals({.vin = "VIN1"});
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error(), make_error_code(errc::unavailable));
  EXPECT_FALSE(db->write_batch(batch)) << "still down";

  server.start();
  auto after = db->write_batch(batch);
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(after->signals, 1u);
  auto page = db->query_signals({.vin = "VIN1"});
  ASSERT_TRUE(page) << page.error().message();
  EXPECT_EQ(page->rows.size(), 2u);
  const std::string metrics = registry.render_prometheus();
  EXPECT_NE(metrics.find("teslasync_storage_failures_total{op=\"write_batch\"} 2\n"),
            std::string::npos)
      << metrics;

  // A restart while idle: the stale connection is replaced within the same call.
  server.stop();
  server.start();
  batch.signals = {make_signal("VIN1", "Soc", t + 2, Value::int64(3))};
  auto after_idle = db->write_batch(batch);
  ASSERT_TRUE(after_idle) << after_idle.error().message();
  EXPECT_TRUE(db->query_signals({.vin = "VIN1"}));
}

TEST(PostgresDatabase, NoServerMeansUnavailableAndThePasswordIsNeverLogged) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = ts::log::get("storage");
  logger->sinks().push_back(sink);
  const std::string url =
      "postgresql://postgres:topsecret@127.0.0.1:" + std::to_string(testsupport::free_port()) +
      "/teslasync";
  auto db =
      open_database(url, "/nonexistent", OpenOptions{.connect_timeout = std::chrono::seconds(2)});
  logger->sinks().pop_back();
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error(), make_error_code(errc::unavailable));
  const std::string log = captured.str();
  EXPECT_NE(log.find("postgres:***@127.0.0.1"), std::string::npos) << log;
  EXPECT_EQ(log.find("topsecret"), std::string::npos) << log;
}

TEST(PostgresDatabase, ConcurrentOpensMigrateOnce) {
  const std::string url = fresh_database(shared_server());
  Result<std::unique_ptr<Database>> a = make_error_code(errc::unavailable);
  Result<std::unique_ptr<Database>> b = make_error_code(errc::unavailable);
  std::thread other([&] { b = open_database(url, "/nonexistent"); });
  a = open_database(url, "/nonexistent");
  other.join();
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(execute_pg(url, "SELECT COUNT(*) FROM schema_migrations"), "5");
  EXPECT_EQ(*(*a)->schema_version(), 5);
}

}  // namespace
}  // namespace ts::storage::testing
