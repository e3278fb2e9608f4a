// What is known about one downstream request/response (or TCP connection)
// when it ends: timings, addresses, byte counts, response code and Envoy's
// response flags. Filled by the connection manager / tcp_proxy, read by
// access loggers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "source/common/http/header_map.h"
#include "source/common/network/address.h"

namespace courier::stream_info {

// Envoy's response flags (the short forms appear in %RESPONSE_FLAGS%).
enum ResponseFlag : uint32_t {
  kFailedLocalHealthCheck = 1u << 0,      // LH
  kNoHealthyUpstream = 1u << 1,           // UH
  kUpstreamRequestTimeout = 1u << 2,      // UT
  kLocalReset = 1u << 3,                  // LR
  kUpstreamRemoteReset = 1u << 4,         // UR
  kUpstreamConnectionFailure = 1u << 5,   // UF
  kUpstreamConnectionTermination = 1u << 6,  // UC
  kUpstreamOverflow = 1u << 7,            // UO
  kNoRouteFound = 1u << 8,                // NR
  kDelayInjected = 1u << 9,               // DI
  kFaultInjected = 1u << 10,              // FI
  kRateLimited = 1u << 11,                // RL
  kDownstreamConnectionTermination = 1u << 14,  // DC
  kUpstreamRetryLimitExceeded = 1u << 15,  // URX
  kStreamIdleTimeout = 1u << 16,          // SI
  kDownstreamProtocolError = 1u << 19,    // DPE
  kUpstreamProtocolError = 1u << 23,      // UPE
  kNoClusterFound = 1u << 24,             // NC
  kDurationTimeout = 1u << 26,            // DT
};

struct StreamInfo {
  // Wall-clock start (for %START_TIME%) and monotonic marks for durations.
  std::chrono::system_clock::time_point start_time;
  std::chrono::steady_clock::time_point start_mono;
  std::optional<std::chrono::nanoseconds> last_downstream_rx_byte_received;
  std::optional<std::chrono::nanoseconds> first_upstream_tx_byte_sent;
  std::optional<std::chrono::nanoseconds> first_upstream_rx_byte_received;
  std::optional<std::chrono::nanoseconds> last_upstream_rx_byte_received;
  std::optional<std::chrono::nanoseconds> first_downstream_tx_byte_sent;
  std::optional<std::chrono::nanoseconds> last_downstream_tx_byte_sent;  // end of the stream

  std::string protocol;  // "HTTP/1.1", "HTTP/2", empty for TCP
  std::optional<uint32_t> response_code;
  std::string response_code_details;  // e.g. "via_upstream", "route_not_found"
  uint32_t response_flags = 0;
  uint64_t bytes_received = 0;  // request body bytes from downstream
  uint64_t bytes_sent = 0;      // response body bytes to downstream

  network::Address downstream_remote_address;
  network::Address downstream_local_address;
  std::optional<network::Address> upstream_host;
  std::string upstream_cluster;
  std::string route_name;
  std::string upstream_transport_failure_reason;

  // HTTP only; null for TCP. Owned by the stream for the stream's life.
  const http::HeaderMap* request_headers = nullptr;
  const http::HeaderMap* response_headers = nullptr;
  const http::HeaderMap* response_trailers = nullptr;

  bool hasResponseFlag(ResponseFlag f) const { return (response_flags & f) != 0; }
  void setResponseFlag(ResponseFlag f) { response_flags |= f; }
  // Duration from start to the end of the stream, if it ended.
  std::optional<std::chrono::nanoseconds> requestComplete() const { return last_downstream_tx_byte_sent; }
};

// "UH,UF" etc. in Envoy's order; "-" when none.
std::string responseFlagsToString(uint32_t flags);

}  // namespace courier::stream_info
