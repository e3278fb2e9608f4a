// The immutable view of upstream clusters that workers route to: a cluster's
// settings, its hosts and its stats. Built on the main thread from config and
// shared with workers as a ClusterSet snapshot.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "source/common/http/http2/settings.h"
#include "source/common/network/address.h"
#include "source/common/network/transport_socket.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/resource_manager.h"

namespace courier::upstream {

// Why a host is not used for traffic, or only as a last resort (Envoy's
// Host::HealthFlag names, the subset we set). Zero means healthy.
namespace health_flag {
inline constexpr uint32_t kFailedActiveHc = 0x1;
inline constexpr uint32_t kFailedOutlierCheck = 0x2;
// EDS health_status UNHEALTHY, DRAINING or TIMEOUT.
inline constexpr uint32_t kFailedEdsHealth = 0x4;
// Set with kFailedActiveHc until the first active check finished.
inline constexpr uint32_t kPendingActiveHc = 0x8;
// Degraded, not failed: the last active HTTP check's response carried
// x-envoy-degraded, or EDS said DEGRADED. A host whose only flags are these
// takes the load healthy hosts cannot (Envoy's degraded priority load).
inline constexpr uint32_t kDegradedActiveHc = 0x10;
inline constexpr uint32_t kDegradedEdsHealth = 0x20;
inline constexpr uint32_t kDegradedMask = kDegradedActiveHc | kDegradedEdsHealth;
}  // namespace health_flag

// Envoy's coarse health of a host from its flags: any failure flag makes it
// unhealthy, else a degraded flag degraded.
enum class HostHealth : uint8_t { kHealthy, kDegraded, kUnhealthy };
inline HostHealth hostHealthOf(uint32_t flags) {
  if (flags == 0) return HostHealth::kHealthy;
  return (flags & ~health_flag::kDegradedMask) != 0 ? HostHealth::kUnhealthy : HostHealth::kDegraded;
}

// Per-host request outcomes that workers count for outlier detection
// (outlier_detection.h); the main thread reads and resets them. Consecutive
// counts are 16 bits (thresholds are capped to fit; a wrap only re-reports a
// host already reported), which keeps this at 24 bytes per host.
struct HostOutlierCounters {
  // Since the last interval: requests in the high 32 bits, failures in the
  // low 32, so one fetch_add counts both consistently.
  std::atomic<uint64_t> external{0};
  std::atomic<uint64_t> local_origin{0};
  std::atomic<uint16_t> consecutive_5xx{0};
  std::atomic<uint16_t> consecutive_gateway_failure{0};
  std::atomic<uint16_t> consecutive_local_origin_failure{0};
};

struct Host {
  network::Address address;
  uint32_t weight = 1;
  // Requests in flight to this host from all workers (the router counts an
  // upstream attempt); least-request balancing reads it. Shared like Envoy's,
  // so every worker sees the same load; relaxed atomics, no lock. Placed in
  // the padding after weight, so it costs no bytes.
  mutable std::atomic<uint32_t> active_requests{0};
  // health_flag bits. Health is published to workers through this word
  // rather than through a new snapshot: only the main thread writes it
  // (health checks, outlier detection, EDS), workers' balancers read it with
  // a relaxed load per pick, so the request path stays lock-free and a
  // health change costs no rebuild. Use setHealthFlag() to change it.
  mutable std::atomic<uint32_t> health_flags{0};
  // LocalityLbEndpoints.priority, and the index of the host's locality in
  // Cluster::localities. Both sit in what was padding after health_flags.
  uint16_t priority = 0;
  uint16_t locality = 0;
  std::string hostname;
  mutable HostOutlierCounters outlier;
  bool healthy() const { return health_flags.load(std::memory_order_relaxed) == 0; }
  // Only degraded flags set.
  bool degraded() const { return hostHealthOf(health_flags.load(std::memory_order_relaxed)) == HostHealth::kDegraded; }
};
using HostConstSharedPtr = std::shared_ptr<const Host>;

// Highest priority level and most localities a cluster may have (Host keeps
// both in 16 bits).
inline constexpr uint32_t kMaxPriority = 127;
inline constexpr uint32_t kMaxLocalities = 65535;

// A core.v3.Locality and its LocalityLbEndpoints.load_balancing_weight (0:
// none given, which locality weighting treats as never picked, as Envoy).
struct LocalityEntry {
  std::string region;
  std::string zone;
  std::string sub_zone;
  uint32_t weight = 0;
  bool sameName(const LocalityEntry& o) const { return region == o.region && zone == o.zone && sub_zone == o.sub_zone; }
};

// Envoy's cluster.<name>.* stats that this engine maintains, as
// COUNTER(name) / GAUGE(name) / HISTOGRAM(name) entries.
#define COURIER_CLUSTER_STATS(COUNTER, GAUGE, HISTOGRAM) \
  COUNTER(upstream_cx_total)                             \
  COUNTER(upstream_cx_http1_total)                       \
  COUNTER(upstream_cx_http2_total)                       \
  GAUGE(upstream_cx_active)                              \
  COUNTER(upstream_cx_connect_fail)                      \
  COUNTER(upstream_cx_connect_timeout)                   \
  COUNTER(upstream_cx_destroy)                           \
  COUNTER(upstream_cx_destroy_local)                     \
  COUNTER(upstream_cx_destroy_remote)                    \
  COUNTER(upstream_cx_rx_bytes_total)                    \
  COUNTER(upstream_cx_tx_bytes_total)                    \
  COUNTER(upstream_cx_none_healthy)                      \
  COUNTER(upstream_cx_max_requests)                      \
  COUNTER(upstream_flow_control_paused_reading_total)    \
  COUNTER(upstream_flow_control_resumed_reading_total)   \
  COUNTER(upstream_rq_total)                             \
  GAUGE(upstream_rq_active)                              \
  COUNTER(upstream_rq_1xx)                               \
  COUNTER(upstream_rq_2xx)                               \
  COUNTER(upstream_rq_3xx)                               \
  COUNTER(upstream_rq_4xx)                               \
  COUNTER(upstream_rq_5xx)                               \
  COUNTER(upstream_rq_timeout)                           \
  COUNTER(upstream_rq_per_try_timeout)                   \
  COUNTER(upstream_rq_retry)                             \
  COUNTER(upstream_rq_retry_success)                     \
  COUNTER(upstream_rq_retry_limit_exceeded)              \
  COUNTER(upstream_rq_pending_failure_eject)             \
  COUNTER(upstream_rq_pending_overflow)                  \
  COUNTER(upstream_cx_overflow)                          \
  COUNTER(upstream_rq_retry_overflow)                    \
  HISTOGRAM(upstream_rq_time)                            \
  GAUGE(membership_total)                                \
  GAUGE(membership_healthy)                              \
  GAUGE(membership_degraded)                             \
  COUNTER(lb_healthy_panic)

// Zone-aware routing (zone_aware_lb.h), Envoy's names.
#define COURIER_CLUSTER_ZONE_STATS(COUNTER, GAUGE, HISTOGRAM) \
  COUNTER(lb_local_cluster_not_ok)                            \
  COUNTER(lb_zone_number_differs)                             \
  COUNTER(lb_zone_cluster_too_small)                          \
  COUNTER(lb_zone_routing_all_directly)                       \
  COUNTER(lb_zone_routing_sampled)                            \
  COUNTER(lb_zone_routing_cross_zone)                         \
  COUNTER(lb_zone_no_capacity_left)

// A cluster's stats: one block of the store (stats::Store::block), kept for
// the store's life and shared by every version of the same-named cluster, so
// counts carry across updates and a re-added cluster goes on from them.
struct ClusterStats {
  // The stats of cluster `name`, made on first use. With zone_stats the
  // zone-routing counters too (7 stats less per cluster in a mesh without a
  // local cluster); they stay once made.
  static ClusterStats& of(stats::Store& store, std::string_view cluster_name, bool zone_stats = false);

  // For Store::block: `prefix` is "cluster.<name>." sanitized.
  explicit ClusterStats(std::string_view prefix) : prefix_(prefix) {}
  const std::string& prefix() const { return prefix_; }
  template <class F>
  void forEachStat(F&& f) {
    COURIER_CLUSTER_STATS(COURIER_STAT_VISIT, COURIER_STAT_VISIT, COURIER_STAT_VISIT)
  }

 private:
  const std::string prefix_;  // before the stats, which borrow it

 public:
  COURIER_CLUSTER_STATS(COURIER_STAT_MEMBER_COUNTER, COURIER_STAT_MEMBER_GAUGE, COURIER_STAT_MEMBER_HISTOGRAM)

  struct Zone {
    explicit Zone(std::string_view prefix) : prefix_(prefix) {}
    const std::string& prefix() const { return prefix_; }
    template <class F>
    void forEachStat(F&& f) {
      COURIER_CLUSTER_ZONE_STATS(COURIER_STAT_VISIT, COURIER_STAT_VISIT, COURIER_STAT_VISIT)
    }

   private:
    const std::string prefix_;

   public:
    COURIER_CLUSTER_ZONE_STATS(COURIER_STAT_MEMBER_COUNTER, COURIER_STAT_MEMBER_GAUGE, COURIER_STAT_MEMBER_HISTOGRAM)
  };
  // Null unless the cluster may route by zone; set (once) before the
  // cluster is published.
  Zone* zone = nullptr;
};

// common_lb_config.zone_aware_lb_config with Envoy's defaults.
struct ZoneAwareConfig {
  // routing_enabled, rounded to a whole percent.
  uint32_t routing_enabled = 100;
  uint64_t min_cluster_size = 6;
  bool fail_traffic_on_panic = false;
};

enum class LbPolicy { RoundRobin, LeastRequest, Random, RingHash, Maglev };

// Immutable per-cluster-version load-balancing state (policy settings, a
// hash ring or Maglev table) from which each worker makes its own balancer.
class LoadBalancerFactory;
class PriorityLayout;
class HealthCheckSink;
class OutlierSink;

// A copyable relaxed atomic count (a Cluster stays copyable for whoever
// builds a new version from an old one).
class HostCount {
 public:
  HostCount() = default;
  HostCount(const HostCount& other) : value_(other.load()) {}
  HostCount& operator=(const HostCount& other) {
    value_.store(other.load(), std::memory_order_relaxed);
    return *this;
  }
  uint32_t load() const { return value_.load(std::memory_order_relaxed); }
  void add(int32_t n) { value_.fetch_add(static_cast<uint32_t>(n), std::memory_order_relaxed); }
  void set(uint32_t n) { value_.store(n, std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> value_{0};
};

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
  // HttpProtocolOptions auto_config: over TLS each connection speaks HTTP/2
  // when the server picks "h2" by ALPN, else HTTP/1.1 (http2_settings hold
  // the HTTP/2 settings); plaintext is HTTP/1.1.
  bool auto_http = false;
  // ORIGINAL_DST with use_http_header: the request header naming the host
  // (lower case); callers copy it into the LoadBalancerContext.
  std::string original_dst_host_header;
  std::vector<HostConstSharedPtr> hosts;
  // Built on the main thread from `hosts`; nullptr means round robin. Code
  // that replaces `hosts` must replace this with lb_factory->forHosts(*this).
  std::shared_ptr<const LoadBalancerFactory> lb_factory;
  // Owned by the store (ClusterStats::of), shared by every version of the
  // same-named cluster: stats outlive updates.
  ClusterStats* stats = nullptr;
  // Circuit breakers (mutable counts behind an immutable cluster): the
  // DEFAULT routing priority's thresholds, and HIGH's.
  std::shared_ptr<ResourceManager> resources = std::make_shared<ResourceManager>();
  std::shared_ptr<ResourceManager> high_resources = std::make_shared<ResourceManager>();
  ResourceManager& resourcesFor(bool high_priority) const { return high_priority ? *high_resources : *resources; }
  // Unique per cluster config; kept by a version that only changes `hosts`
  // (an EDS update), so the upstream pools of hosts that stay carry over.
  uint64_t settings_id = 0;
  // common_lb_config.healthy_panic_threshold in percent (Envoy's default 50;
  // 0 disables panic mode).
  double healthy_panic_threshold = 50;
  // ClusterLoadAssignment.policy.overprovisioning_factor, in percent.
  uint32_t overprovisioning_factor = 140;
  // common_lb_config.locality_weighted_lb_config is set.
  bool locality_weighted = false;
  // Set when the cluster may route by zone (a policy Envoy routes zone-aware
  // with, no locality weighting); applied only while the bootstrap names a
  // local cluster (cluster_manager.local_cluster_name).
  std::optional<ZoneAwareConfig> zone_aware;
  // The localities hosts name (Host::locality indexes this).
  std::vector<LocalityEntry> localities;
  // Hosts grouped by priority (and by locality when weighted or routing by
  // zone), with a view and balancer state per group (priority_set.h).
  // nullptr while one priority serves without locality weighting or zone
  // routing: the plain fast path. A zone_only layout serves zone-aware
  // balancers only; plain ones ignore it.
  // Whoever replaces `hosts` rebuilds it with buildPriorityLayout().
  std::shared_ptr<const PriorityLayout> layout;
  // Hosts with any health flag set (degraded ones included); kept by
  // setHealthFlag() (main thread), read by balancers to skip the health scan
  // while everything is healthy.
  mutable HostCount unhealthy_hosts;
  // Of those, the hosts with only degraded flags (HostHealth::kDegraded).
  mutable HostCount degraded_hosts;
  // Bumped by setHealthFlag() and recountHealth() whenever a host's health
  // changed: balancers that derive state from health (zone routing) redo it
  // when this moved.
  mutable HostCount health_generation;
  // health_checks[0], parsed (health_checker.h); workers report upstream
  // x-envoy-immediate-health-check-fail into it. nullptr: no active checks.
  std::shared_ptr<HealthCheckSink> health_check;
  // outlier_detection (outlier_detection.h): workers report request results
  // into it; nullptr: no outlier detection.
  std::shared_ptr<OutlierSink> outlier;
  // TLS to the hosts (transport_socket); null is plaintext.
  network::TransportSocketFactoryConstSharedPtr transport_socket_factory;
};

// A fresh settings_id (main thread or any: atomic).
uint64_t nextClusterSettingsId();
using ClusterConstSharedPtr = std::shared_ptr<const Cluster>;

// Main thread only: sets or clears `flag` on a host of `cluster`, keeping the
// cluster's unhealthy and degraded counts and membership_healthy/_degraded in
// step.
// True if the host's coarse health (hostHealthOf) changed.
bool setHealthFlag(const Cluster& cluster, const Host& host, uint32_t flag, bool on);
// Sets unhealthy_hosts and degraded_hosts of `cluster` (or of a group view
// of it) from its hosts' flags; nothing else.
void recountHostCounts(const Cluster& cluster);
// Recounts unhealthy_hosts, degraded_hosts and membership_healthy/_degraded from the
// host flags (after a new host list was built with flags already set).
void recountHealth(const Cluster& cluster);
// Envoy's panic test for a cluster with one priority level: panic needs the
// level to be short of hosts (healthy plus degraded availability, each share
// times the overprovisioning factor, below 100%) and its healthy plus
// degraded share below the threshold. `unhealthy` counts degraded hosts too
// (as Cluster::unhealthy_hosts does); `degraded` is how many of them are.
inline bool inHealthyPanic(const Cluster& cluster, size_t host_count, uint32_t unhealthy, uint32_t degraded = 0) {
  if (host_count == 0) return false;
  const uint64_t healthy = host_count - unhealthy;
  const uint64_t factor = cluster.overprovisioning_factor;
  if (std::min<uint64_t>(100, factor * healthy / host_count) +
          std::min<uint64_t>(100, factor * degraded / host_count) >=
      100) {
    return false;
  }
  return 100.0 * static_cast<double>(healthy + degraded) / static_cast<double>(host_count) <
         cluster.healthy_panic_threshold;
}

struct ClusterSet {
  absl::flat_hash_map<std::string, ClusterConstSharedPtr> clusters;
  // bootstrap cluster_manager.local_cluster_name (empty: none) and the
  // node's locality: what zone-aware routing compares against.
  std::string local_cluster_name;
  LocalityEntry local_locality;
  const Cluster* find(const std::string& name) const {
    auto it = clusters.find(name);
    return it == clusters.end() ? nullptr : it->second.get();
  }
};
using ClusterSetConstSharedPtr = std::shared_ptr<const ClusterSet>;

}  // namespace courier::upstream
