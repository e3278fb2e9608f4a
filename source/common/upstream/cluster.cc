#include "source/common/upstream/cluster.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "source/common/upstream/priority_set.h"

namespace courier::upstream {

uint64_t nextClusterSettingsId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

ClusterStats& ClusterStats::of(stats::Store& store, std::string_view cluster_name, bool zone_stats) {
  const std::string prefix =
      stats::sanitizeStatName(absl::StrCat("cluster.", absl::string_view(cluster_name.data(), cluster_name.size()))) +
      ".";
  ClusterStats& out = store.block<ClusterStats>(prefix);
  if (zone_stats && out.zone == nullptr) out.zone = &store.block<Zone>(prefix);
  return out;
}

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

void recountHostCounts(const Cluster& cluster) {
  uint32_t unhealthy = 0;
  uint32_t degraded = 0;
  for (const auto& h : cluster.hosts) {
    const HostHealth health = hostHealthOf(h->health_flags.load(std::memory_order_relaxed));
    unhealthy += health != HostHealth::kHealthy ? 1 : 0;
    degraded += health == HostHealth::kDegraded ? 1 : 0;
  }
  cluster.unhealthy_hosts.set(unhealthy);
  cluster.degraded_hosts.set(degraded);
}

void recountHealth(const Cluster& cluster) {
  recountHostCounts(cluster);
  cluster.health_generation.add(1);
  if (cluster.layout != nullptr) cluster.layout->recount();
  if (cluster.stats) {
    cluster.stats->membership_healthy.set(cluster.hosts.size() - cluster.unhealthy_hosts.load());
    cluster.stats->membership_degraded.set(cluster.degraded_hosts.load());
  }
}

}  // namespace courier::upstream
