// The Database behaviour suite on SQLite (temp files, no sockets), plus what is SQLite's own:
// URL forms, WAL mode, the in-memory database.
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "storage/database.hpp"
#include "storage/sqlite/sqlite_database.hpp"
#include "storage/tests/database_suite.hpp"

namespace ts::storage::testing {
namespace {

/// A directory of its own for each test, removed afterwards (TS_KEEP_TEST_DIRS=1 keeps it).
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ts-sqlite-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    if (path_.empty()) return;
    const char* keep = std::getenv("TS_KEEP_TEST_DIRS");
    if (keep != nullptr && std::string_view(keep) == "1") return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(ScratchDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ScratchDir& operator=(ScratchDir&& other) noexcept {
    std::swap(path_, other.path_);
    return *this;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Runs SQL on a SQLite file directly.
void execute_sqlite(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("sqlite3_open");
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  const std::string text = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("sqlite3_exec: " + text);
}

struct SqliteBackend {
  ScratchDir dir;
  std::string url() const { return "sqlite:" + (dir.path() / "test.db").string(); }
  std::filesystem::path data_dir() const { return dir.path(); }
  void execute(const std::string& sql) const { execute_sqlite(dir.path() / "test.db", sql); }
  // A trigger on a table that does not exist: SQLITE_ERROR, the database's state (query_failed).
  static std::string fail_inserts_sql(const std::string& table) {
    return "CREATE TRIGGER fail_" + table + " BEFORE INSERT ON " + table +
           " BEGIN INSERT INTO no_such_table VALUES (1); END";
  }
  // RAISE(ABORT) is SQLITE_CONSTRAINT: the data refused (rejected).
  static std::string reject_inserts_sql(const std::string& table) {
    return "CREATE TRIGGER fail_" + table + " BEFORE INSERT ON " + table +
           " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END";
  }
  static std::string bytes_sql(const std::string& hex) { return "X'" + hex + "'"; }
  static std::string allow_inserts_sql(const std::string& table) {
    return "DROP TRIGGER fail_" + table;
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, DatabaseSuite, SqliteBackend);

TEST(SqliteDatabase, ResultCodesSplitIntoRejectedDataAndRetryableFailures) {
  for (int rc : {SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_CONSTRAINT_UNIQUE,
                 SQLITE_CONSTRAINT_TRIGGER, SQLITE_MISMATCH, SQLITE_RANGE}) {
    EXPECT_EQ(sqlite::error_code_of_sqlite(rc), make_error_code(errc::rejected)) << rc;
    EXPECT_FALSE(is_retryable(sqlite::error_code_of_sqlite(rc))) << rc;
  }
  for (int rc : {SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT}) {
    EXPECT_EQ(sqlite::error_code_of_sqlite(rc), make_error_code(errc::timeout)) << rc;
  }
  for (int rc : {SQLITE_IOERR, SQLITE_IOERR_WRITE, SQLITE_CANTOPEN}) {
    EXPECT_EQ(sqlite::error_code_of_sqlite(rc), make_error_code(errc::unavailable)) << rc;
  }
  for (int rc : {SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_BUSY, SQLITE_LOCKED,
                 SQLITE_NOMEM, SQLITE_ERROR}) {
    EXPECT_TRUE(is_retryable(sqlite::error_code_of_sqlite(rc))) << rc;
  }
}

TEST(SqliteDatabase, EmptyUrlMeansTeslasyncDbInTheDataDirWhichIsCreated) {
  ScratchDir dir;
  const std::filesystem::path data = dir.path() / "data" / "nested";
  auto db = open_database("", data);
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ((*db)->backend(), "sqlite");
  EXPECT_TRUE(std::filesystem::exists(data / "teslasync.db"));
}

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(SqliteDatabase, TheDataDirectoryIs0700AndTheDatabaseFiles0600WhateverTheUmask) {
  ScratchDir dir;
  const mode_t old_umask = ::umask(022);
  const std::filesystem::path data = dir.path() / "data";
  {
    auto db = open_database("", data);
    ASSERT_TRUE(db) << db.error().message();
    ASSERT_TRUE((*db)->set_setting("tesla_refresh_token", "secret"));
    EXPECT_EQ(mode_of(data), 0700u);
    for (const char* file : {"teslasync.db", "teslasync.db-wal", "teslasync.db-shm"}) {
      ASSERT_TRUE(std::filesystem::exists(data / file)) << file;
      EXPECT_EQ(mode_of(data / file), 0600u) << file;
    }
  }
  // Files an older release left readable by everyone are restricted on open.
  const std::filesystem::path loose = dir.path() / "loose.db";
  ASSERT_TRUE(open_database("sqlite:" + loose.string(), ""));
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::filesystem::path f = loose.string() + suffix;
    if (std::filesystem::exists(f)) ::chmod(f.c_str(), 0644);
  }
  ::chmod(loose.c_str(), 0644);
  {
    auto db = open_database("sqlite:" + loose.string(), "");
    ASSERT_TRUE(db);
    EXPECT_EQ(mode_of(loose), 0600u);
    EXPECT_EQ(mode_of(loose.string() + "-wal"), 0600u);
  }
  // An existing data directory is left as the operator made it.
  const std::filesystem::path mine = dir.path() / "mine";
  std::filesystem::create_directory(mine);
  ::chmod(mine.c_str(), 0750);
  ASSERT_TRUE(open_database("", mine));
  EXPECT_EQ(mode_of(mine), 0750u);
  ::umask(old_umask);
}

TEST(SqliteDatabase, AcceptsBothUrlFormsAndUsesWal) {
  ScratchDir dir;
  const std::filesystem::path a = dir.path() / "a.db";
  const std::filesystem::path b = dir.path() / "b.db";
  auto db_a = open_database("sqlite:" + a.string(), "/nonexistent");
  ASSERT_TRUE(db_a) << db_a.error().message();
  auto db_b = open_database("sqlite://" + b.string() + "?synchronous=normal", "/nonexistent");
  ASSERT_TRUE(db_b) << db_b.error().message();
  ASSERT_TRUE((*db_a)->set_setting("k", "v"));
  // WAL: the write-ahead log sits next to the database while it is open.
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "a.db-wal"));
  EXPECT_TRUE(std::filesystem::exists(b));
}

TEST(SqliteDatabase, InMemoryDatabaseWorksForTests) {
  auto db = open_database("sqlite::memory:", "/nonexistent");
  ASSERT_TRUE(db) << db.error().message();
  std::vector<Signal> rows = {make_signal("VIN1", "Soc", base_time(), Value::int64(5))};
  ASSERT_TRUE((*db)->append_signals(rows));
  auto page = (*db)->query_signals({.vin = "VIN1"});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0], rows[0]);
  // Another open is another (empty) database.
  auto other = open_database("sqlite::memory:", "/nonexistent");
  ASSERT_TRUE(other);
  EXPECT_TRUE((*other)->query_signals({.vin = "VIN1"})->rows.empty());
}

TEST(SqliteDatabase, RejectsUrlsItDoesNotUnderstand) {
  for (const char* url :
       {"sqlite:", "sqlite://", "mysql://u:p@h/db", "sqlite:x.db?journal=off", "file.db"}) {
    auto db = open_database(url, "/nonexistent");
    ASSERT_FALSE(db) << url;
    EXPECT_EQ(db.error(), make_error_code(errc::bad_url)) << url;
  }
}

TEST(SqliteDatabase, AFileThatCannotBeOpenedIsUnavailable) {
  ScratchDir dir;
  auto missing_dir = open_database("sqlite:" + (dir.path() / "no/such/dir/x.db").string(), "");
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error(), make_error_code(errc::unavailable));
  const std::filesystem::path junk = dir.path() / "junk.db";
  {
    std::ofstream out(junk);
    out << std::string(8192, 'x');
  }
  auto not_a_db = open_database("sqlite:" + junk.string(), "");
  ASSERT_FALSE(not_a_db);
  EXPECT_EQ(not_a_db.error(), make_error_code(errc::unavailable));
}

TEST(SqliteDatabase, TwoInstancesOnOneFileSeeEachOthersCommits) {
  ScratchDir dir;
  const std::string url = "sqlite:" + (dir.path() / "shared.db").string();
  auto writer = open_database(url, "");
  auto reader = open_database(url, "");
  ASSERT_TRUE(writer && reader);
  std::vector<Signal> rows = {make_signal("VIN1", "Soc", base_time(), Value::int64(5))};
  ASSERT_TRUE((*writer)->append_signals(rows));
  auto page = (*reader)->query_signals({.vin = "VIN1"});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->rows.size(), 1u);
}

}  // namespace
}  // namespace ts::storage::testing
