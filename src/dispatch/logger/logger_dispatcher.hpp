#pragma once
/// The `logger` dispatcher (spec §8.7): one INFO line `record_payload` per record with the VIN,
/// the record metadata (§7.4) and the record as JSON (the §7.3 form; the reference's own layout
/// is human-facing and not a compatibility surface). Never a reliable-ack source. Thread-safe.
#include "dispatch/dispatcher.hpp"

#include <memory>

#include <spdlog/spdlog.h>

namespace ts::dispatch {

class LoggerDispatcher final : public Dispatcher {
 public:
  LoggerDispatcher();
  std::string_view name() const override { return "logger"; }
  boost::asio::awaitable<bool> dispatch(const pipeline::Record& record) override;
  void dispatch_detached(const pipeline::Record& record) override;
  void shutdown(std::chrono::milliseconds) override {}
  bool connected() const override { return true; }

  /// The line logged for a record (without the logger's prefix).
  static std::string format(const pipeline::Record& record);

 private:
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace ts::dispatch
