#include "source/common/upstream/cluster.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "source/common/upstream/priority_set.h"

namespace courier::upstream {

uint64_t nextClusterSettingsId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

ClusterStats::ClusterStats(stats::Store& store, const std::string& cluster_name, bool zone_stats)
    : ClusterStats(stats::Scope(store, absl::StrCat("cluster.", cluster_name)), zone_stats) {}

// The names are literals, so every stat shares the scope's one copy of
// "cluster.<name>." (a mesh has ~30 of these per cluster, 10k+ clusters).
ClusterStats::ClusterStats(const stats::Scope& scope, bool zone_stats)
#define COURIER_CLUSTER_COUNTER(n) n(scope.counter(#n))
#define COURIER_CLUSTER_GAUGE(n) n(scope.gauge(#n))
    : COURIER_CLUSTER_COUNTER(upstream_cx_total),
      COURIER_CLUSTER_COUNTER(upstream_cx_http1_total),
      COURIER_CLUSTER_COUNTER(upstream_cx_http2_total),
      COURIER_CLUSTER_GAUGE(upstream_cx_active),
      COURIER_CLUSTER_COUNTER(upstream_cx_connect_fail),
      COURIER_CLUSTER_COUNTER(upstream_cx_connect_timeout),
      COURIER_CLUSTER_COUNTER(upstream_cx_destroy),
      COURIER_CLUSTER_COUNTER(upstream_cx_destroy_local),
      COURIER_CLUSTER_COUNTER(upstream_cx_destroy_remote),
      COURIER_CLUSTER_COUNTER(upstream_cx_rx_bytes_total),
      COURIER_CLUSTER_COUNTER(upstream_cx_tx_bytes_total),
      COURIER_CLUSTER_COUNTER(upstream_cx_none_healthy),
      COURIER_CLUSTER_COUNTER(upstream_cx_max_requests),
      COURIER_CLUSTER_COUNTER(upstream_flow_control_paused_reading_total),
      COURIER_CLUSTER_COUNTER(upstream_flow_control_resumed_reading_total),
      COURIER_CLUSTER_COUNTER(upstream_rq_total),
      COURIER_CLUSTER_GAUGE(upstream_rq_active),
      COURIER_CLUSTER_COUNTER(upstream_rq_1xx),
      COURIER_CLUSTER_COUNTER(upstream_rq_2xx),
      COURIER_CLUSTER_COUNTER(upstream_rq_3xx),
      COURIER_CLUSTER_COUNTER(upstream_rq_4xx),
      COURIER_CLUSTER_COUNTER(upstream_rq_5xx),
      COURIER_CLUSTER_COUNTER(upstream_rq_timeout),
      COURIER_CLUSTER_COUNTER(upstream_rq_per_try_timeout),
      COURIER_CLUSTER_COUNTER(upstream_rq_retry),
      COURIER_CLUSTER_COUNTER(upstream_rq_retry_success),
      COURIER_CLUSTER_COUNTER(upstream_rq_retry_limit_exceeded),
      COURIER_CLUSTER_COUNTER(upstream_rq_pending_failure_eject),
      COURIER_CLUSTER_COUNTER(upstream_rq_pending_overflow),
      COURIER_CLUSTER_COUNTER(upstream_cx_overflow),
      COURIER_CLUSTER_COUNTER(upstream_rq_retry_overflow),
      upstream_rq_time(scope.histogram("upstream_rq_time")),
      COURIER_CLUSTER_GAUGE(membership_total),
      COURIER_CLUSTER_GAUGE(membership_healthy),
      COURIER_CLUSTER_GAUGE(membership_degraded),
      COURIER_CLUSTER_COUNTER(lb_healthy_panic) {
  if (zone_stats) zone = std::make_unique<Zone>(scope);
}
ClusterStats::Zone::Zone(const stats::Scope& scope)
    : COURIER_CLUSTER_COUNTER(lb_local_cluster_not_ok),
      COURIER_CLUSTER_COUNTER(lb_zone_number_differs),
      COURIER_CLUSTER_COUNTER(lb_zone_cluster_too_small),
      COURIER_CLUSTER_COUNTER(lb_zone_routing_all_directly),
      COURIER_CLUSTER_COUNTER(lb_zone_routing_sampled),
      COURIER_CLUSTER_COUNTER(lb_zone_routing_cross_zone),
      COURIER_CLUSTER_COUNTER(lb_zone_no_capacity_left) {}

#undef COURIER_CLUSTER_COUNTER
#undef COURIER_CLUSTER_GAUGE

bool setHealthFlag(const Cluster& cluster, const Host& host, uint32_t flag, bool on) {
  const uint32_t old = host.health_flags.load(std::memory_order_relaxed);
  const uint32_t now = on ? (old | flag) : (old & ~flag);
  if (old == now) return false;
  host.health_flags.store(now, std::memory_order_relaxed);
  const HostHealth before = hostHealthOf(old);
  const HostHealth after = hostHealthOf(now);
  if (before == after) return false;
  const int32_t unhealthy_delta = (after != HostHealth::kHealthy ? 1 : 0) - (before != HostHealth::kHealthy ? 1 : 0);
  const int32_t degraded_delta = (after == HostHealth::kDegraded ? 1 : 0) - (before == HostHealth::kDegraded ? 1 : 0);
  cluster.unhealthy_hosts.add(unhealthy_delta);
  cluster.degraded_hosts.add(degraded_delta);
  cluster.health_generation.add(1);
  if (cluster.layout != nullptr) cluster.layout->onHealthChange(host, unhealthy_delta, degraded_delta);
  if (cluster.stats) {
    cluster.stats->membership_healthy.set(cluster.hosts.size() - cluster.unhealthy_hosts.load());
    cluster.stats->membership_degraded.set(cluster.degraded_hosts.load());
  }
  return true;
}

void recountHealth(const Cluster& cluster) {
  uint32_t unhealthy = 0;
  uint32_t degraded = 0;
  for (const auto& h : cluster.hosts) {
    const HostHealth health = hostHealthOf(h->health_flags.load(std::memory_order_relaxed));
    unhealthy += health != HostHealth::kHealthy ? 1 : 0;
    degraded += health == HostHealth::kDegraded ? 1 : 0;
  }
  cluster.unhealthy_hosts.set(unhealthy);
  cluster.degraded_hosts.set(degraded);
  cluster.health_generation.add(1);
  if (cluster.layout != nullptr) cluster.layout->recount();
  if (cluster.stats) {
    cluster.stats->membership_healthy.set(cluster.hosts.size() - unhealthy);
    cluster.stats->membership_degraded.set(degraded);
  }
}

}  // namespace courier::upstream
