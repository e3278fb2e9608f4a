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
  if ((old == 0) == (now == 0)) return false;
  cluster.unhealthy_hosts.add(now == 0 ? -1 : 1);
  cluster.health_generation.add(1);
  if (cluster.layout != nullptr) cluster.layout->onHealthChange(host, now == 0 ? -1 : 1);
  if (cluster.stats) cluster.stats->membership_healthy.set(cluster.hosts.size() - cluster.unhealthy_hosts.load());
  return true;
}

void recountHealth(const Cluster& cluster) {
  uint32_t unhealthy = 0;
  for (const auto& h : cluster.hosts) unhealthy += h->healthy() ? 0 : 1;
  cluster.unhealthy_hosts.set(unhealthy);
  cluster.health_generation.add(1);
  if (cluster.layout != nullptr) cluster.layout->recount();
  if (cluster.stats) cluster.stats->membership_healthy.set(cluster.hosts.size() - unhealthy);
}

}  // namespace courier::upstream
