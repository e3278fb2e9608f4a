#include "source/common/upstream/zone_aware_lb.h"

#include <algorithm>
#include <numeric>

namespace courier::upstream {
namespace {

// Stands in for a local cluster that does not exist: no hosts, no localities.
const Cluster& noCluster() {
  static const Cluster none;
  return none;
}

}  // namespace

ZoneRouting computeZoneRouting(const ZoneInputs& in, uint64_t min_cluster_size, ZoneSkip* skip) {
  ZoneRouting out;
  const auto skipped = [&](ZoneSkip why) {
    if (skip != nullptr) *skip = why;
    return out;
  };
  if (in.upstream_localities < 2) return skipped(ZoneSkip::kTooFewLocalities);
  const uint64_t local_total =
      std::accumulate(in.local_healthy.begin(), in.local_healthy.end(), uint64_t{0}) + in.local_healthy_elsewhere;
  if (!in.local_cluster_present || local_total == 0 || !in.upstream_has_local_zone || in.upstream_healthy.empty() ||
      in.upstream_healthy[0] == 0) {
    return skipped(ZoneSkip::kLocalClusterNotOk);
  }
  if (in.upstream_localities != in.local_localities) return skipped(ZoneSkip::kNumberDiffers);
  const uint64_t upstream_total = std::accumulate(in.upstream_healthy.begin(), in.upstream_healthy.end(), uint64_t{0});
  if (upstream_total < min_cluster_size) return skipped(ZoneSkip::kTooSmall);
  if (skip != nullptr) *skip = ZoneSkip::kNone;

  const size_t n = in.upstream_healthy.size();
  std::vector<uint64_t> upstream(n), local(n);
  for (size_t i = 0; i < n; ++i) {
    upstream[i] = 10000 * uint64_t{in.upstream_healthy[i]} / upstream_total;
    local[i] = i < in.local_healthy.size() ? 10000 * uint64_t{in.local_healthy[i]} / local_total : 0;
  }
  if (upstream[0] >= local[0]) {
    out.mode = ZoneRouting::Mode::kDirect;
    return out;
  }
  out.mode = ZoneRouting::Mode::kResidual;
  out.local_percent_to_route = upstream[0] * 10000 / local[0];
  out.residual_capacity.assign(n, 0);
  for (size_t i = 1; i < n; ++i) {
    const uint64_t spare = upstream[i] > local[i] ? upstream[i] - local[i] : 0;
    out.residual_capacity[i] = out.residual_capacity[i - 1] + spare;
  }
  return out;
}

ZoneAwareLoadBalancer::ZoneAwareLoadBalancer(const Cluster& cluster, const Cluster* local,
                                             const LocalityEntry& local_locality)
    : cluster_(cluster), local_(local), layout_(*cluster.layout) {
  all_ = createHealthFilteringLoadBalancer(*layout_.levels[0].all);
  const auto& level = layout_.levels[0];
  // The local zone's view first, then the others in table order.
  std::vector<size_t> order;
  for (size_t i = 0; i < level.localities.size(); ++i) {
    if (cluster_.localities[level.locality_index[i]].sameName(local_locality)) {
      order.insert(order.begin(), i);
      has_local_zone_ = true;
    } else {
      order.push_back(i);
    }
  }
  if (!has_local_zone_) {
    // Index 0 stands for the local zone: an empty placeholder.
    views_.push_back(nullptr);
    localities_.push_back(nullptr);
    local_index_.push_back(-1);
  }
  const Cluster& lc = local_ != nullptr ? *local_ : noCluster();
  for (size_t i : order) {
    views_.push_back(level.localities[i].get());
    localities_.push_back(createHealthFilteringLoadBalancer(*level.localities[i]));
    const LocalityEntry& name = cluster_.localities[level.locality_index[i]];
    int match = -1;
    for (size_t l = 0; l < lc.localities.size(); ++l) {
      if (lc.localities[l].sameName(name)) match = static_cast<int>(l);
    }
    local_index_.push_back(match);
  }
  // The local zone in the local cluster, even when the upstream lacks it.
  if (!has_local_zone_) {
    for (size_t l = 0; l < lc.localities.size(); ++l) {
      if (lc.localities[l].sameName(local_locality)) local_index_[0] = static_cast<int>(l);
    }
  }
  std::vector<bool> used(lc.localities.size(), false);
  for (const auto& h : lc.hosts) {
    if (h->locality < used.size()) used[h->locality] = true;
  }
  local_localities_ = static_cast<uint32_t>(std::count(used.begin(), used.end(), true));
}

void ZoneAwareLoadBalancer::recompute(uint32_t mine, uint32_t theirs) {
  fresh_ = true;
  seen_mine_ = mine;
  seen_theirs_ = theirs;
  const Cluster& lc = local_ != nullptr ? *local_ : noCluster();
  std::vector<uint32_t> local_by_table(lc.localities.size(), 0);
  uint32_t local_healthy = 0;
  for (const auto& h : lc.hosts) {
    if (!h->healthy()) continue;
    ++local_healthy;
    if (h->locality < local_by_table.size()) ++local_by_table[h->locality];
  }
  ZoneInputs in;
  in.local_cluster_present = local_ != nullptr;
  in.upstream_has_local_zone = has_local_zone_;
  in.local_localities = local_localities_;
  uint32_t matched = 0;
  for (size_t i = 0; i < views_.size(); ++i) {
    if (views_[i] != nullptr) {
      ++in.upstream_localities;
      const auto hosts = static_cast<uint32_t>(views_[i]->hosts.size());
      in.upstream_healthy.push_back(hosts - std::min(hosts, views_[i]->unhealthy_hosts.load()));
    } else {
      in.upstream_healthy.push_back(0);
    }
    const uint32_t l = local_index_[i] >= 0 ? local_by_table[local_index_[i]] : 0;
    in.local_healthy.push_back(l);
    matched += l;
  }
  in.local_healthy_elsewhere = local_healthy - matched;
  ZoneSkip skip = ZoneSkip::kNone;
  routing_ = computeZoneRouting(in, cluster_.zone_aware->min_cluster_size, &skip);
  if (zoneStats() != nullptr) {
    switch (skip) {
      case ZoneSkip::kLocalClusterNotOk:
        zoneStats()->lb_local_cluster_not_ok.inc();
        break;
      case ZoneSkip::kNumberDiffers:
        zoneStats()->lb_zone_number_differs.inc();
        break;
      case ZoneSkip::kTooSmall:
        zoneStats()->lb_zone_cluster_too_small.inc();
        break;
      default:
        break;
    }
  }
  // Envoy's panic test of the local host set: its healthy share below the
  // panic threshold, without the overprovisioning factor.
  const size_t local_hosts = lc.hosts.size();
  local_panic_ = local_hosts == 0 || 100.0 * static_cast<double>(local_healthy) / static_cast<double>(local_hosts) <
                                         cluster_.healthy_panic_threshold;
}

size_t ZoneAwareLoadBalancer::chooseLocality() {
  if (routing_.mode == ZoneRouting::Mode::kDirect) {
    if (zoneStats() != nullptr) zoneStats()->lb_zone_routing_all_directly.inc();
    return 0;
  }
  if (random_.next() % 10000 < routing_.local_percent_to_route) {
    if (zoneStats() != nullptr) zoneStats()->lb_zone_routing_sampled.inc();
    return 0;
  }
  if (zoneStats() != nullptr) zoneStats()->lb_zone_routing_cross_zone.inc();
  const auto& residual = routing_.residual_capacity;
  if (residual.back() == 0) {
    // Only rounding leaves no spare capacity anywhere: any locality.
    if (zoneStats() != nullptr) zoneStats()->lb_zone_no_capacity_left.inc();
    return random_.below(residual.size());
  }
  const uint64_t threshold = random_.next() % residual.back();
  return std::upper_bound(residual.begin(), residual.end(), threshold) - residual.begin();
}

const Host* ZoneAwareLoadBalancer::chooseHost(const LoadBalancerContext* context) {
  refresh();
  const auto& config = *cluster_.zone_aware;
  const uint32_t unhealthy = cluster_.unhealthy_hosts.load();
  const bool panic = unhealthy != 0 && inHealthyPanic(cluster_, cluster_.hosts.size(), unhealthy);
  if (panic && config.fail_traffic_on_panic) {
    if (cluster_.stats != nullptr) cluster_.stats->lb_healthy_panic.inc();
    return nullptr;
  }
  if (panic || routing_.mode == ZoneRouting::Mode::kNone) return plain(context);
  if (config.routing_enabled < 100 && random_.below(100) >= config.routing_enabled) return plain(context);
  if (local_panic_) {
    if (zoneStats() != nullptr) zoneStats()->lb_local_cluster_not_ok.inc();
    return config.fail_traffic_on_panic ? nullptr : plain(context);
  }
  const size_t index = chooseLocality();
  if (index >= localities_.size() || localities_[index] == nullptr) return plain(context);
  const Host* host = localities_[index]->chooseHealthy(context);
  return host != nullptr ? host : plain(context);
}

std::unique_ptr<LoadBalancer> createZoneAwareOrPlainLoadBalancer(const Cluster& cluster, bool local_cluster_named,
                                                                 const Cluster* local,
                                                                 const LocalityEntry& local_locality) {
  if (local_cluster_named && routesByZone(cluster)) {
    return std::make_unique<ZoneAwareLoadBalancer>(cluster, local, local_locality);
  }
  return createLoadBalancer(cluster);
}

}  // namespace courier::upstream
