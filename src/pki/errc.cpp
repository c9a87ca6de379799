#include "pki/errc.hpp"

#include <string>

namespace ts::pki {

namespace {

// Boost's error_category has a protected non-virtual destructor by design (categories are never
// deleted through a base pointer); -Wnon-virtual-dtor does not know that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class PkiCategory final : public boost::system::error_category {
 public:
  // A fixed 64-bit id makes equality work across shared-library copies (Boost.System docs).
  constexpr PkiCategory() noexcept : error_category(0x7473706b69303031ULL) {}

  const char* name() const noexcept override { return "ts.pki"; }

  std::string message(int ev) const override {
    // spec §2.3: the error names the reference logs (with `extract_sender_id_err`).
    switch (static_cast<errc>(ev)) {
      case errc::missing_verified_client_certificate:
        return "missing_verified_client_certificate";
      case errc::excluded_certificate:
        return "excluded certificate";
      case errc::unauthorized_certificate:
        return "unauthorized certificate";
      case errc::invalid_device_id:
        return "invalid device id (empty, longer than 64 bytes, or containing '/', '+', '#', "
               "NUL or a control character)";
    }
    return "unknown pki error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& pki_category() noexcept {
  static const PkiCategory category;
  return category;
}

}  // namespace ts::pki
