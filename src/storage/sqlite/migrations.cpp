// The SQLite schema. Times are INTEGER µs since the epoch (signal::Timestamp), like everywhere in
// storage. signal_log has the shape of the PostgreSQL one (postgres/migrations.cpp): each (vin,
// name) is a row of signal_series, and signal_log is keyed by (series_id, ts) only, WITHOUT ROWID,
// so the primary key is the table itself: one small B-tree per insert (docs/storage.md has the
// numbers that led here). signal_log_named is the readable view.
// Never edit a released migration: append one.
#include <array>

#include "storage/sqlite/sqlite_database.hpp"

namespace ts::storage::sqlite {
namespace {

constexpr std::string_view kV1 = R"sql(
CREATE TABLE signal_series (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  name TEXT NOT NULL,
  UNIQUE (vin, name)
);
CREATE TABLE signal_log (
  series_id INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  value_int INTEGER,
  value_num REAL,
  value_num2 REAL,
  value_text TEXT,
  source TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE VIEW signal_log_named AS
  SELECT s.vin, s.name, l.ts, l.kind, l.value_int, l.value_num, l.value_num2, l.value_text,
         l.source, l.received_at
  FROM signal_log l JOIN signal_series s ON s.id = l.series_id;
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at INTEGER NOT NULL,
  topic TEXT NOT NULL,
  vin TEXT NOT NULL,
  reason TEXT NOT NULL,
  payload BLOB NOT NULL
);
CREATE INDEX dead_letters_vin ON dead_letters (vin, id);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE TABLE vehicles (
  vin TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('manual', 'fleet_api')),
  created_at INTEGER NOT NULL
);
)sql";

constexpr std::string_view kV2 = R"sql(
CREATE TABLE alerts (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  name TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  audiences TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (vin, name, started_at)
);
CREATE INDEX alerts_vin_started_at ON alerts (vin, started_at);
CREATE TABLE connectivity_events (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  connection_id TEXT NOT NULL,
  status TEXT NOT NULL,
  network_interface TEXT NOT NULL,
  ts INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (vin, connection_id, status, ts)
);
CREATE INDEX connectivity_events_vin_ts ON connectivity_events (vin, ts);
CREATE INDEX connectivity_events_received_at ON connectivity_events (received_at);
CREATE TABLE vehicle_errors (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  name TEXT NOT NULL,
  body TEXT NOT NULL,
  tags TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  fingerprint INTEGER NOT NULL,
  UNIQUE (vin, name, created_at, fingerprint)
);
CREATE INDEX vehicle_errors_vin_created_at ON vehicle_errors (vin, created_at);
CREATE INDEX vehicle_errors_received_at ON vehicle_errors (received_at);
)sql";

constexpr std::string_view kV3 = R"sql(
CREATE TABLE fleet_telemetry_errors (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  error_name TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  name TEXT NOT NULL,
  txid TEXT NOT NULL,
  raw_json TEXT NOT NULL,
  fetched_at INTEGER NOT NULL,
  UNIQUE (vin, error_name, created_at, error)
);
CREATE INDEX fleet_telemetry_errors_created_at ON fleet_telemetry_errors (created_at);
CREATE INDEX fleet_telemetry_errors_vin_created_at ON fleet_telemetry_errors (vin, created_at);
CREATE TABLE fleet_telemetry_error_vins (
  vin TEXT PRIMARY KEY,
  active INTEGER NOT NULL,
  first_seen_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  resolved_at INTEGER
);
CREATE INDEX fleet_telemetry_error_vins_active ON fleet_telemetry_error_vins (last_seen_at)
  WHERE active = 1;
)sql";

constexpr std::string_view kV4 = R"sql(
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
)sql";

// Dead letters deduplicated: key_hash is detail::dead_letter_key (SHA-256 of topic, reason,
// payload size and payload; the writer connection provides it as the SQL function
// ts_dead_letter_key), with a count of occurrences, the latest receipt and the payload's
// original size. Letters stored before are merged (the first id stays) and cut to 64 KiB.
// SQLite's unique keys on text need no hashing: an index entry of any length is stored (overflow
// pages), so alerts, connectivity and vehicle errors keep their keys.
constexpr std::string_view kV5 = R"sql(
CREATE TABLE dead_letters_v5 (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at INTEGER NOT NULL,
  topic TEXT NOT NULL,
  vin TEXT NOT NULL,
  reason TEXT NOT NULL,
  payload BLOB NOT NULL,
  payload_size INTEGER NOT NULL,
  occurrences INTEGER NOT NULL,
  last_received_at INTEGER NOT NULL,
  key_hash BLOB NOT NULL UNIQUE
);
INSERT INTO dead_letters_v5 (id, received_at, topic, vin, reason, payload, payload_size,
                             occurrences, last_received_at, key_hash)
  SELECT min(id), min(received_at), topic, min(vin), reason, substr(payload, 1, 65536),
         length(CAST(payload AS BLOB)), count(*), max(received_at), k
  FROM (SELECT *, ts_dead_letter_key(topic, reason, length(CAST(payload AS BLOB)), payload) AS k
        FROM dead_letters)
  GROUP BY k;
DROP TABLE dead_letters;
ALTER TABLE dead_letters_v5 RENAME TO dead_letters;
CREATE INDEX dead_letters_vin ON dead_letters (vin, id);
CREATE INDEX dead_letters_last_received_at ON dead_letters (last_received_at);
)sql";

constexpr std::array kMigrations = {
    detail::Migration{1, "signal_log, dead_letters, vehicles", kV1},
    detail::Migration{2, "alerts, connectivity_events, vehicle_errors", kV2},
    detail::Migration{3, "fleet_telemetry_errors, fleet_telemetry_error_vins", kV3},
    detail::Migration{4, "api_tokens, settings", kV4},
    detail::Migration{5, "dead letters deduplicated", kV5},
};

}  // namespace

std::span<const detail::Migration> migrations() { return kMigrations; }

}  // namespace ts::storage::sqlite
