// The immutable view of upstream clusters that workers route to: a cluster's
// settings, its hosts and its stats. Built on the main thread from config and
// shared with workers as a ClusterSet snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <optional>

#include "absl/container/flat_hash_map.h"
#include "source/common/http/http2/settings.h"
#include "source/common/network/address.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/resource_manager.h"

namespace courier::upstream {

struct Host {
  network::Address address;
  uint32_t weight = 1;
  // Requests in flight to this host from all workers (the router counts an
  // upstream attempt); least-request balancing reads it. Shared like Envoy's,
  // so every worker sees the same load; relaxed atomics, no lock. Placed in
  // the padding after weight, so it costs no bytes.
  mutable std::atomic<uint32_t> active_requests{0};
  std::string hostname;
};
using HostConstSharedPtr = std::shared_ptr<const Host>;

// Envoy's cluster.<name>.* stats that this engine maintains.
struct ClusterStats {
  ClusterStats(stats::Store& store, const std::string& cluster_name);
  explicit ClusterStats(const stats::Scope& scope);
  stats::Counter& upstream_cx_total;
  stats::Counter& upstream_cx_http1_total;
  stats::Counter& upstream_cx_http2_total;
  stats::Gauge& upstream_cx_active;
  stats::Counter& upstream_cx_connect_fail;
  stats::Counter& upstream_cx_connect_timeout;
  stats::Counter& upstream_cx_destroy;
  stats::Counter& upstream_cx_destroy_local;
  stats::Counter& upstream_cx_destroy_remote;
  stats::Counter& upstream_cx_rx_bytes_total;
  stats::Counter& upstream_cx_tx_bytes_total;
  stats::Counter& upstream_cx_none_healthy;
  stats::Counter& upstream_cx_max_requests;
  stats::Counter& upstream_flow_control_paused_reading_total;
  stats::Counter& upstream_flow_control_resumed_reading_total;
  stats::Counter& upstream_rq_total;
  stats::Gauge& upstream_rq_active;
  stats::Counter& upstream_rq_1xx;
  stats::Counter& upstream_rq_2xx;
  stats::Counter& upstream_rq_3xx;
  stats::Counter& upstream_rq_4xx;
  stats::Counter& upstream_rq_5xx;
  stats::Counter& upstream_rq_timeout;
  stats::Counter& upstream_rq_per_try_timeout;
  stats::Counter& upstream_rq_retry;
  stats::Counter& upstream_rq_retry_success;
  stats::Counter& upstream_rq_retry_limit_exceeded;
  stats::Counter& upstream_rq_pending_failure_eject;
  stats::Counter& upstream_rq_pending_overflow;
  stats::Counter& upstream_cx_overflow;
  stats::Counter& upstream_rq_retry_overflow;
  stats::Histogram& upstream_rq_time;
  stats::Gauge& membership_total;
  stats::Gauge& membership_healthy;
};

enum class LbPolicy { RoundRobin, LeastRequest, Random, RingHash, Maglev };

// Immutable per-cluster-version load-balancing state (policy settings, a
// hash ring or Maglev table) from which each worker makes its own balancer.
class LoadBalancerFactory;

class Cluster {
 public:
  std::string name;
  std::chrono::milliseconds connect_timeout{5000};
  LbPolicy lb_policy = LbPolicy::RoundRobin;
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  // Upstream HTTP connections are retired after this many requests; 0: no limit.
  uint32_t max_requests_per_connection = 0;
  // Set: upstream requests go over HTTP/2 with these settings (cluster
  // http2_protocol_options, or HttpProtocolOptions explicit_http_config /
  // use_downstream_protocol_config). With use_downstream_protocol only
  // requests that arrived over HTTP/2 do.
  std::optional<http::http2::Http2Settings> http2_settings;
  bool use_downstream_protocol = false;
  std::vector<HostConstSharedPtr> hosts;
  // Built on the main thread from `hosts`; nullptr means round robin. Code
  // that replaces `hosts` must replace this with lb_factory->forHosts(*this).
  std::shared_ptr<const LoadBalancerFactory> lb_factory;
  // Shared by every version of the same-named cluster: stats outlive updates.
  std::shared_ptr<ClusterStats> stats;
  // Circuit breakers (mutable counts behind an immutable cluster).
  std::shared_ptr<ResourceManager> resources = std::make_shared<ResourceManager>();
  // Unique per cluster config; kept by a version that only changes `hosts`
  // (an EDS update), so the upstream pools of hosts that stay carry over.
  uint64_t settings_id = 0;
};

// A fresh settings_id (main thread or any: atomic).
uint64_t nextClusterSettingsId();
using ClusterConstSharedPtr = std::shared_ptr<const Cluster>;

struct ClusterSet {
  absl::flat_hash_map<std::string, ClusterConstSharedPtr> clusters;
  const Cluster* find(const std::string& name) const {
    auto it = clusters.find(name);
    return it == clusters.end() ? nullptr : it->second.get();
  }
};
using ClusterSetConstSharedPtr = std::shared_ptr<const ClusterSet>;

}  // namespace courier::upstream
