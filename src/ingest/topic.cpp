#include "ingest/topic.hpp"

namespace ts::ingest {

Topic parse_topic(std::string_view base, std::string_view topic) noexcept {
  Topic out;
  if (!topic.starts_with(base) || topic.size() <= base.size() || topic[base.size()] != '/') {
    return out;
  }
  std::string_view rest = topic.substr(base.size() + 1);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return out;
  std::string_view vin = rest.substr(0, slash);
  rest = rest.substr(slash + 1);
  auto take = [&](TopicKind kind, std::string_view name) {
    if (name.empty()) return out;
    return Topic{kind, vin, name};
  };
  if (rest == "connectivity") return Topic{TopicKind::Connectivity, vin, {}};
  if (rest == "v") return Topic{TopicKind::Record, vin, {}};
  if (rest.starts_with("v/")) {
    auto name = rest.substr(2);
    if (name.find('/') != std::string_view::npos) return out;
    return take(TopicKind::Signal, name);
  }
  if (rest.starts_with("errors/")) return take(TopicKind::Error, rest.substr(7));
  if (rest.starts_with("alerts/")) {
    auto name = rest.substr(7);
    if (name.ends_with("/current")) {
      return take(TopicKind::AlertCurrent, name.substr(0, name.size() - 8));
    }
    if (name.ends_with("/history")) {
      return take(TopicKind::AlertHistory, name.substr(0, name.size() - 8));
    }
  }
  return out;
}

std::vector<std::string> subscription_filters(std::string_view base) {
  std::string b(base);
  return {b + "/+/v/+", b + "/+/v", b + "/+/alerts/#", b + "/+/errors/#", b + "/+/connectivity"};
}

}  // namespace ts::ingest
