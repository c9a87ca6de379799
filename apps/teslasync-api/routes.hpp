#pragma once
/// Every HTTP route of teslasync-api (docs/teslasync-api.md "HTTP API").
#include <memory>

#include "http/router.hpp"
#include "services.hpp"

namespace ts::api {

/// Builds the router; `services` must outlive it.
std::shared_ptr<const http::Router> make_router(Services& services);

}  // namespace ts::api
