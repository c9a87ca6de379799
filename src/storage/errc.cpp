#include "storage/errc.hpp"

#include <string>

namespace ts::storage {

namespace {

// Boost's error_category has a protected non-virtual destructor by design (categories are never
// deleted through a base pointer); -Wnon-virtual-dtor does not know that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class StorageCategory final : public boost::system::error_category {
 public:
  // A fixed 64-bit id makes equality work across shared-library copies (Boost.System docs).
  constexpr StorageCategory() noexcept : error_category(0x7473737430303031ULL) {}

  const char* name() const noexcept override { return "ts.storage"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::bad_url:
        return "database URL not understood";
      case errc::unavailable:
        return "database unavailable";
      case errc::timeout:
        return "database timed out";
      case errc::query_failed:
        return "database statement failed";
      case errc::migration_failed:
        return "database schema migration failed";
      case errc::schema_too_new:
        return "database schema is newer than this release";
      case errc::invalid_argument:
        return "invalid storage request";
      case errc::rejected:
        return "database rejected the data";
    }
    return "unknown storage error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& storage_category() noexcept {
  static const StorageCategory category;
  return category;
}

bool is_retryable(const boost::system::error_code& ec) noexcept {
  if (ec.category() != storage_category()) return false;
  switch (static_cast<errc>(ec.value())) {
    case errc::unavailable:
    case errc::timeout:
    case errc::query_failed:
      return true;
    default:
      return false;
  }
}

}  // namespace ts::storage
