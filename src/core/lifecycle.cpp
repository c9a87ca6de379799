#include "core/lifecycle.hpp"

#include <exception>

#include "core/log.hpp"

namespace ts::core {

Lifecycle::Lifecycle(std::string name) : name_(std::move(name)) {}

Lifecycle::~Lifecycle() { stop(); }

void Lifecycle::start(std::string_view component, const std::function<void()>& start,
                      std::function<void()> stop) {
  start();
  started(component, std::move(stop));
}

void Lifecycle::started(std::string_view component, std::function<void()> stop) {
  std::lock_guard lock(mutex_);
  entries_.push_back({std::string(component), std::move(stop)});
}

void Lifecycle::stop() noexcept {
  std::lock_guard serial(stop_mutex_);
  for (;;) {
    Entry entry;
    {
      std::lock_guard lock(mutex_);
      if (entries_.empty()) return;
      entry = std::move(entries_.back());
      entries_.pop_back();
    }
    try {
      log::get("lifecycle")->debug("{}: stopping {}", name_, entry.component);
      if (entry.stop) entry.stop();
    } catch (const std::exception& e) {
      log::get("lifecycle")->error("{}: stopping {} failed: {}", name_, entry.component, e.what());
    } catch (...) {
      log::get("lifecycle")->error("{}: stopping {} failed", name_, entry.component);
    }
  }
}

std::vector<std::string> Lifecycle::running() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.component);
  return out;
}

}  // namespace ts::core
