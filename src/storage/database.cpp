#include "storage/database.hpp"

#include <charconv>
#include <system_error>

#include "storage/detail.hpp"
#include "storage/postgres/postgres_database.hpp"
#include "storage/sqlite/sqlite_database.hpp"

namespace ts::storage {

std::string SignalCursor::to_string() const { return std::to_string(ts) + "." + name; }

std::optional<SignalCursor> SignalCursor::parse(std::string_view text) {
  const std::size_t dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  SignalCursor c;
  const char* begin = text.data();
  const char* end = text.data() + dot;
  auto [ptr, ec] = std::from_chars(begin, end, c.ts);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  c.name = std::string(text.substr(dot + 1));
  return c;
}

std::string_view vehicle_source_name(VehicleSource source) noexcept {
  return source == VehicleSource::FleetApi ? "fleet_api" : "manual";
}

std::optional<VehicleSource> parse_vehicle_source(std::string_view name) noexcept {
  if (name == "manual") return VehicleSource::Manual;
  if (name == "fleet_api") return VehicleSource::FleetApi;
  return std::nullopt;
}

bool Batch::empty() const noexcept { return size() == 0; }

std::size_t Batch::size() const noexcept {
  return signals.size() + alerts.size() + connectivity.size() + vehicle_errors.size() +
         dead_letters.size();
}

void Batch::clear() noexcept {
  signals.clear();
  alerts.clear();
  connectivity.clear();
  vehicle_errors.clear();
  dead_letters.clear();
}

bool BatchView::empty() const noexcept {
  return signals.empty() && alerts.empty() && connectivity.empty() && vehicle_errors.empty() &&
         dead_letters.empty();
}

Result<std::size_t> Database::append_signals(std::span<const signal::Signal> signals) {
  BatchView v;
  v.signals = signals;
  auto r = write(v);
  if (!r) return r.error();
  return r->signals;
}

Result<std::size_t> Database::append_alerts(std::span<const Alert> alerts) {
  BatchView v;
  v.alerts = alerts;
  auto r = write(v);
  if (!r) return r.error();
  return r->alerts;
}

Result<std::size_t> Database::append_connectivity(std::span<const ConnectivityEvent> events) {
  BatchView v;
  v.connectivity = events;
  auto r = write(v);
  if (!r) return r.error();
  return r->connectivity;
}

Result<std::size_t> Database::append_vehicle_errors(std::span<const VehicleError> errors) {
  BatchView v;
  v.vehicle_errors = errors;
  auto r = write(v);
  if (!r) return r.error();
  return r->vehicle_errors;
}

Result<std::size_t> Database::append_dead_letters(std::span<const DeadLetter> letters) {
  BatchView v;
  v.dead_letters = letters;
  auto r = write(v);
  if (!r) return r.error();
  return r->dead_letters;
}

std::string redact_url(std::string_view url) {
  std::string out(url);
  // scheme://user:password@host
  const std::size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const std::size_t auth_begin = scheme + 3;
    std::size_t auth_end = out.find_first_of("/?#", auth_begin);
    if (auth_end == std::string::npos) auth_end = out.size();
    const std::size_t at = out.rfind('@', auth_end);
    if (at != std::string::npos && at >= auth_begin) {
      const std::size_t colon = out.find(':', auth_begin);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // password=… as a URI query parameter or a key/value conninfo word.
  std::size_t pos = 0;
  while ((pos = out.find("password=", pos)) != std::string::npos) {
    const std::size_t begin = pos + 9;
    std::size_t end = begin;
    if (end < out.size() && out[end] == '\'') {
      end = out.find('\'', end + 1);
      end = end == std::string::npos ? out.size() : end + 1;
    } else {
      end = out.find_first_of("& ", begin);
      if (end == std::string::npos) end = out.size();
    }
    out.replace(begin, end - begin, "***");
    pos = begin + 3;
  }
  return out;
}

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

Result<std::unique_ptr<Database>> open_sqlite_url(std::string_view url,
                                                  const std::filesystem::path& data_dir,
                                                  const OpenOptions& options) {
  sqlite::SqliteOptions o;
  o.readers = options.readers;
  o.busy_timeout = options.statement_timeout;
  o.migrate_to_version = options.migrate_to_version_for_test;
  o.metrics = options.metrics;
  if (url.empty()) {
    // A directory we create is 0700 (it holds the database with the Tesla refresh token); an
    // existing one is left as the operator made it.
    std::error_code ec;
    const bool existed = std::filesystem::exists(data_dir, ec);
    if (!existed) std::filesystem::create_directories(data_dir, ec);
    if (!existed && !ec) {
      std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
    }
    if (ec) {
      detail::log().error("cannot create data directory {}: {}", data_dir.string(), ec.message());
      return make_error_code(errc::unavailable);
    }
    o.path = data_dir / "teslasync.db";
    return sqlite::open_sqlite(o);
  }
  std::string_view rest = starts_with(url, "sqlite://") ? url.substr(9) : url.substr(7);
  std::string_view query;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item == "synchronous=full") {
      o.synchronous_full = true;
    } else if (item == "synchronous=normal") {
      o.synchronous_full = false;
    } else if (!item.empty()) {
      detail::log().error(
          "DATABASE_URL: unknown SQLite option '{}' (known: synchronous=full|normal)", item);
      return make_error_code(errc::bad_url);
    }
  }
  if (rest == ":memory:") {
    o.in_memory = true;
  } else if (rest.empty()) {
    detail::log().error("DATABASE_URL '{}': no file path after 'sqlite:'", url);
    return make_error_code(errc::bad_url);
  } else {
    o.path = std::filesystem::path(std::string(rest));
  }
  return sqlite::open_sqlite(o);
}

}  // namespace

Result<std::unique_ptr<Database>> open_database(const std::string& url,
                                                const std::filesystem::path& data_dir,
                                                const OpenOptions& options) {
  if (url.empty() || starts_with(url, "sqlite:")) return open_sqlite_url(url, data_dir, options);
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) {
    postgres::PostgresOptions o;
    o.url = url;
    o.readers = options.readers;
    o.connect_timeout = options.connect_timeout;
    o.statement_timeout = options.statement_timeout;
    o.migrate_to_version = options.migrate_to_version_for_test;
    o.metrics = options.metrics;
    o.retention = options.retention;
    return postgres::open_postgres(o);
  }
  detail::log().error(
      "DATABASE_URL '{}' not understood: use postgresql://…, sqlite:PATH, or leave it unset for "
      "SQLite in the data directory",
      redact_url(url));
  return make_error_code(errc::bad_url);
}

}  // namespace ts::storage
