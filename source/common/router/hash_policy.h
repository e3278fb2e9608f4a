// Evaluates a route's hash_policy list (Envoy's RouteAction.hash_policy) on a
// request: the 64-bit key that ring-hash and Maglev clusters place it by.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "source/common/http/header_map.h"
#include "source/common/network/address.h"
#include "source/common/router/route_table.h"

namespace courier::router {

// std::nullopt when no policy produced a hash (the balancer then picks at
// random). Policies combine as Envoy's: hash = rotl(hash, 1) ^ next, and a
// terminal policy that produced a hash ends the list. downstream may be null.
std::optional<uint64_t> computeHash(const std::vector<HashPolicy>& policies, const http::HeaderMap& headers,
                                    const network::Address* downstream);

// The hash of one policy alone, exposed for tests.
std::optional<uint64_t> computeOneHash(const HashPolicy& policy, const http::HeaderMap& headers,
                                       const network::Address* downstream);

// The value of cookie `name` among the request's cookie headers.
std::optional<std::string_view> findCookie(const http::HeaderMap& headers, std::string_view name);
// The value of the first query parameter `name` in a :path (no decoding, as Envoy).
std::optional<std::string_view> findQueryParameter(std::string_view path, std::string_view name);

}  // namespace courier::router
