#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace ts::log {
namespace {

std::mutex g_mutex;  // guards g_options and logger creation
Options g_options;

std::shared_ptr<spdlog::sinks::sink> shared_sink() {
  static auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return sink;
}

void apply(spdlog::logger& logger) {
  if (g_options.json) {
    logger.set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    logger.set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ [%n] %v", spdlog::pattern_time_type::utc);
  }
  logger.set_level(spdlog::level::from_str(g_options.level));
}

}  // namespace

bool configure(const Options& options) {
  std::lock_guard lock(g_mutex);
  std::string level = options.level;
  if (level == "fatal" || level == "panic") level = "critical";
  if (level == "warning") level = "warn";
  bool ok = level == "off" || spdlog::level::from_str(level) != spdlog::level::off;
  g_options.json = options.json;
  if (ok) g_options.level = level;
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { apply(*l); });
  return ok;
}

std::shared_ptr<spdlog::logger> get(std::string_view component) {
  std::lock_guard lock(g_mutex);
  std::string name(component);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, shared_sink());
  apply(*logger);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace ts::log
