#pragma once
/// Logging: one named spdlog logger per component ("link", "pipeline", "mqtt", ...).
/// Thread-safe. Loggers write to stderr; `configure` sets the level and text/JSON format for all.
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace ts::log {

struct Options {
  std::string level = "info";  ///< trace, debug, info, warn, error, critical/fatal/panic, off
  bool json = false;           ///< one JSON object per line (json_log_enable)
};

/// Applies options to every logger, existing and future. Returns false if the level is unknown
/// (the level is then left unchanged and the caller should warn).
bool configure(const Options& options);

/// The logger for a component; created on first use.
std::shared_ptr<spdlog::logger> get(std::string_view component);

}  // namespace ts::log
