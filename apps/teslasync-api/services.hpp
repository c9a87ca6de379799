#pragma once
/// What the HTTP handlers reach: the running components, owned by main(). References stay valid
/// for the process lifetime; optional parts are null when not configured.
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "auth.hpp"
#include "config.hpp"
#include "core/metrics.hpp"
#include "fleet_api/client.hpp"
#include "http/sse.hpp"
#include "live.hpp"
#include "pipeline_status.hpp"
#include "polling/poller.hpp"
#include "state/store.hpp"
#include "storage/database.hpp"

namespace ts::api {

/// The registered VINs, read on every MQTT message. Thread-safe.
class VinRegistry {
 public:
  bool contains(std::string_view vin) const {
    std::shared_lock lock(mutex_);
    return vins_.contains(vin);
  }
  void add(std::string vin) {
    std::unique_lock lock(mutex_);
    vins_.insert(std::move(vin));
  }
  std::vector<std::string> list() const {
    std::shared_lock lock(mutex_);
    return {vins_.begin(), vins_.end()};
  }
  std::size_t size() const {
    std::shared_lock lock(mutex_);
    return vins_.size();
  }

 private:
  mutable std::shared_mutex mutex_;  // guards vins_
  std::set<std::string, std::less<>> vins_;
};

struct Services {
  const Config& config;
  core::MetricsRegistry& metrics;
  storage::Database& db;
  state::Store& store;
  VinRegistry& vins;
  TokenAuth& tokens;
  Live& live;
  std::shared_ptr<http::EventHub> hub;
  std::string public_key_pem;                 ///< empty: none configured
  fleet_api::Client* fleet = nullptr;         ///< null without TESLA_FLEET_API_BASE_URL
  polling::Poller* poller = nullptr;
  /// Fills the pipeline snapshot from the components (main.cpp knows them all).
  std::function<PipelineSnapshot()> pipeline;
  /// Ready when the database is open and, with telemetry on, MQTT is subscribed.
  std::function<std::string()> not_ready_reason;  ///< "" when ready
};

/// Refreshes Tesla's partner diagnostics into the database. Returns "" or the error text.
std::string refresh_fleet_errors(Services& s);
std::string refresh_error_vins(Services& s);

}  // namespace ts::api
