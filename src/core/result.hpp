#pragma once
/// Result type used on the data plane: a value or a std::error_code-compatible error
/// (boost::system::result, Boost 1.81). Expected failures are values, never exceptions.
#include <boost/system/result.hpp>

namespace ts {
template <class T>
using Result = boost::system::result<T>;
}  // namespace ts
