#include "pipeline/field_names.hpp"

#include <vector>

#include "pipeline/json_writer.hpp"
#include "wire/payload.hpp"

namespace ts::pipeline {
namespace {

// Built once from the generated descriptor: a dense table indexed by field number.
const std::vector<std::string_view>& names() {
  static const std::vector<std::string_view> table = [] {
    const auto* e = wire::vehicle_data::Field_descriptor();
    int max = 0;
    for (int i = 0; i < e->value_count(); ++i) max = std::max(max, e->value(i)->number());
    std::vector<std::string_view> t(static_cast<size_t>(max) + 1);
    for (int i = 0; i < e->value_count(); ++i)
      t[static_cast<size_t>(e->value(i)->number())] = e->value(i)->name();
    return t;
  }();
  return table;
}

}  // namespace

std::string_view field_name(int key) {
  const auto& t = names();
  if (key < 0 || static_cast<size_t>(key) >= t.size()) return {};
  return t[static_cast<size_t>(key)];
}

void append_field_name(std::string& out, int key) {
  std::string_view name = field_name(key);
  if (name.empty()) {
    json::append_int(out, key);
  } else {
    out.append(name);
  }
}

}  // namespace ts::pipeline
