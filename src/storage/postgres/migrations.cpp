// The PostgreSQL schema. Times are bigint µs since the epoch (signal::Timestamp), as on SQLite:
// exact, cheap to compare and to COPY, and the same numbers the API speaks; to_timestamp(ts / 1e6)
// turns one into a timestamptz in psql.
//
// signal_log is normalized for write speed and size: each (vin, name) is a row of signal_series
// with an integer id, and signal_log is keyed by (series_id, ts) only. Index maintenance is most of
// an insert's cost; integer keys instead of (vin text, name text, ts) made COPY ~30 % cheaper in
// CPU and rows a third smaller, and dropping a second index on (vin, ts, name) roughly doubled the
// rate (docs/storage.md). signal_log_named is the readable view for psql. signal_log is range-
// partitioned by day on ts (partitions signal_log_pYYYYMMDD are created by the writer ahead of the
// data, postgres_database.cpp); the default partition catches rows no daily partition covers.
// vin and name use the "C" collation: bytewise order, as SQLite.
// Never edit a released migration: append one.
#include <array>

#include "storage/postgres/postgres_database.hpp"

namespace ts::storage::postgres {
namespace {

constexpr std::string_view kV1 = R"sql(
CREATE TABLE signal_series (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  vin text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  UNIQUE (vin, name)
);
CREATE TABLE signal_log (
  series_id integer NOT NULL,
  ts bigint NOT NULL,
  kind smallint NOT NULL,
  value_int bigint,
  value_num double precision,
  value_num2 double precision,
  value_text text,
  source text NOT NULL,
  received_at bigint NOT NULL,
  PRIMARY KEY (series_id, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE signal_log_default PARTITION OF signal_log DEFAULT;
CREATE VIEW signal_log_named AS
  SELECT s.vin, s.name, l.ts, l.kind, l.value_int, l.value_num, l.value_num2, l.value_text,
         l.source, l.received_at
  FROM signal_log l JOIN signal_series s ON s.id = l.series_id;
CREATE TABLE dead_letters (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  received_at bigint NOT NULL,
  topic text NOT NULL,
  vin text NOT NULL,
  reason text NOT NULL,
  payload bytea NOT NULL
);
CREATE INDEX dead_letters_vin ON dead_letters (vin, id);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE TABLE vehicles (
  vin text PRIMARY KEY,
  name text NOT NULL,
  source text NOT NULL CHECK (source IN ('manual', 'fleet_api')),
  created_at bigint NOT NULL
);
)sql";

constexpr std::string_view kV2 = R"sql(
CREATE TABLE alerts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  vin text NOT NULL,
  name text NOT NULL,
  started_at bigint NOT NULL,
  ended_at bigint,
  audiences text NOT NULL,
  received_at bigint NOT NULL,
  UNIQUE (vin, name, started_at)
);
CREATE INDEX alerts_vin_started_at ON alerts (vin, started_at);
CREATE TABLE connectivity_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  vin text NOT NULL,
  connection_id text NOT NULL,
  status text NOT NULL,
  network_interface text NOT NULL,
  ts bigint NOT NULL,
  received_at bigint NOT NULL,
  UNIQUE (vin, connection_id, status, ts)
);
CREATE INDEX connectivity_events_vin_ts ON connectivity_events (vin, ts);
CREATE INDEX connectivity_events_received_at ON connectivity_events (received_at);
CREATE TABLE vehicle_errors (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  vin text NOT NULL,
  name text NOT NULL,
  body text NOT NULL,
  tags text NOT NULL,
  created_at bigint NOT NULL,
  received_at bigint NOT NULL,
  fingerprint bigint NOT NULL,
  UNIQUE (vin, name, created_at, fingerprint)
);
CREATE INDEX vehicle_errors_vin_created_at ON vehicle_errors (vin, created_at);
CREATE INDEX vehicle_errors_received_at ON vehicle_errors (received_at);
)sql";

// The error text is part of the key; md5() keeps the index entry small whatever its length.
constexpr std::string_view kV3 = R"sql(
CREATE TABLE fleet_telemetry_errors (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  vin text NOT NULL,
  error_name text NOT NULL,
  error text NOT NULL,
  created_at bigint NOT NULL,
  name text NOT NULL,
  txid text NOT NULL,
  raw_json text NOT NULL,
  fetched_at bigint NOT NULL
);
CREATE UNIQUE INDEX fleet_telemetry_errors_key
  ON fleet_telemetry_errors (vin, error_name, created_at, md5(error));
CREATE INDEX fleet_telemetry_errors_created_at ON fleet_telemetry_errors (created_at);
CREATE INDEX fleet_telemetry_errors_vin_created_at ON fleet_telemetry_errors (vin, created_at);
CREATE TABLE fleet_telemetry_error_vins (
  vin text PRIMARY KEY,
  active boolean NOT NULL,
  first_seen_at bigint NOT NULL,
  last_seen_at bigint NOT NULL,
  resolved_at bigint
);
CREATE INDEX fleet_telemetry_error_vins_active ON fleet_telemetry_error_vins (last_seen_at)
  WHERE active;
)sql";

constexpr std::string_view kV4 = R"sql(
CREATE TABLE api_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  token_sha256 text NOT NULL UNIQUE,
  created_at bigint NOT NULL,
  last_used_at bigint
);
CREATE TABLE settings (
  key text PRIMARY KEY,
  value text NOT NULL,
  updated_at bigint NOT NULL
);
)sql";

// Keys of any length. A btree entry cannot exceed ~2,700 bytes, so a unique key on raw text
// that a vehicle or the broker controls (an alert name, a connection id) let one over-long value
// fail every batch (docs/storage.md). Each such text is keyed by ts_text_key(text), its SHA-256
// (32 bytes; collisions are infeasible, unlike md5 which can be crafted): the full value stays
// in the row. ts_text_key is declared IMMUTABLE, which its body is for a given database
// encoding (textsend only returns the stored bytes). vin stays raw: rows are stored only for
// registered vehicles, whose VIN is the primary key of `vehicles`.
// Dead letters get a key (key_hash: SHA-256 of topic, reason, payload size and payload, the
// same bytes as detail::dead_letter_key), a count of occurrences, the latest receipt and the
// payload's original size; duplicates stored before are merged into the first of them, and
// payloads are cut to 64 KiB.
constexpr std::string_view kV5 = R"sql(
CREATE FUNCTION ts_text_key(text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS 'SELECT pg_catalog.sha256(pg_catalog.textsend($1))';
ALTER TABLE signal_series DROP CONSTRAINT signal_series_vin_name_key;
CREATE UNIQUE INDEX signal_series_key ON signal_series (vin, ts_text_key(name));
ALTER TABLE alerts DROP CONSTRAINT alerts_vin_name_started_at_key;
CREATE UNIQUE INDEX alerts_key ON alerts (vin, ts_text_key(name), started_at);
ALTER TABLE connectivity_events DROP CONSTRAINT connectivity_events_vin_connection_id_status_ts_key;
CREATE UNIQUE INDEX connectivity_events_key
  ON connectivity_events (vin, ts_text_key(connection_id), ts_text_key(status), ts);
ALTER TABLE vehicle_errors DROP CONSTRAINT vehicle_errors_vin_name_created_at_fingerprint_key;
CREATE UNIQUE INDEX vehicle_errors_key
  ON vehicle_errors (vin, ts_text_key(name), created_at, fingerprint);
DROP INDEX fleet_telemetry_errors_key;
CREATE UNIQUE INDEX fleet_telemetry_errors_key
  ON fleet_telemetry_errors (vin, ts_text_key(error_name), created_at, ts_text_key(error));
ALTER TABLE dead_letters ADD COLUMN payload_size bigint, ADD COLUMN occurrences bigint,
  ADD COLUMN last_received_at bigint, ADD COLUMN key_hash bytea;
UPDATE dead_letters SET payload_size = length(payload), occurrences = 1,
  last_received_at = received_at,
  key_hash = sha256(int8send(octet_length(topic)::int8) || textsend(topic) ||
                    int8send(octet_length(reason)::int8) || textsend(reason) ||
                    int8send(length(payload)::int8) || payload);
WITH g AS (SELECT key_hash, min(id) AS keep, count(*) AS n, max(received_at) AS last
           FROM dead_letters GROUP BY key_hash HAVING count(*) > 1)
UPDATE dead_letters d SET occurrences = g.n, last_received_at = g.last FROM g WHERE d.id = g.keep;
DELETE FROM dead_letters d USING dead_letters k WHERE k.key_hash = d.key_hash AND k.id < d.id;
UPDATE dead_letters SET payload = substring(payload FROM 1 FOR 65536) WHERE length(payload) > 65536;
ALTER TABLE dead_letters ALTER payload_size SET NOT NULL, ALTER occurrences SET NOT NULL,
  ALTER last_received_at SET NOT NULL, ALTER key_hash SET NOT NULL;
CREATE UNIQUE INDEX dead_letters_key ON dead_letters (key_hash);
DROP INDEX dead_letters_received_at;
CREATE INDEX dead_letters_last_received_at ON dead_letters (last_received_at, id);
)sql";

constexpr std::array kMigrations = {
    detail::Migration{1, "signal_log (partitioned by day), dead_letters, vehicles", kV1},
    detail::Migration{2, "alerts, connectivity_events, vehicle_errors", kV2},
    detail::Migration{3, "fleet_telemetry_errors, fleet_telemetry_error_vins", kV3},
    detail::Migration{4, "api_tokens, settings", kV4},
    detail::Migration{5, "keys of any length (hashed), dead letters deduplicated", kV5},
};

}  // namespace

std::span<const detail::Migration> migrations() { return kMigrations; }

}  // namespace ts::storage::postgres
