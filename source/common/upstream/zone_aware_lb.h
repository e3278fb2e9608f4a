// Envoy's zone-aware routing: with a local cluster named in the bootstrap
// (the proxies of this zone and their peers elsewhere), picks favour the
// upstream hosts in the node's own locality as far as keeping every upstream
// host equally loaded allows, and send the rest to the other localities by
// their spare capacity. Applies to a cluster with one priority level and no
// locality weighting, with a round-robin, least-request or random policy.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/priority_set.h"

namespace courier::upstream {

// How picks are spread, derived from healthy host counts per locality.
struct ZoneRouting {
  enum class Mode {
    // No zone routing: the cluster's plain balancer.
    kNone,
    // Every pick to the local zone.
    kDirect,
    // local_percent_to_route (in 1/10000) to the local zone, the rest by
    // residual_capacity.
    kResidual,
  };
  Mode mode = Mode::kNone;
  uint64_t local_percent_to_route = 0;
  // Running totals of each locality's spare capacity (index 0, the local
  // zone, has none), in 1/10000 of the cluster.
  std::vector<uint64_t> residual_capacity;
};

// Why zone routing was not applied (each but kTooFewLocalities counts in
// Envoy's stat of the same meaning).
enum class ZoneSkip {
  kNone,
  kTooFewLocalities,
  kLocalClusterNotOk,  // lb_local_cluster_not_ok
  kNumberDiffers,      // lb_zone_number_differs
  kTooSmall,           // lb_zone_cluster_too_small
};

// Healthy host counts for the computation. upstream[i] and local[i] name the
// same locality, index 0 being the node's (the local zone).
struct ZoneInputs {
  std::vector<uint32_t> upstream_healthy;
  std::vector<uint32_t> local_healthy;
  // Localities with hosts, in each cluster (Envoy requires them equal).
  uint32_t upstream_localities = 0;
  uint32_t local_localities = 0;
  // Healthy hosts of the local cluster in localities the upstream lacks.
  uint32_t local_healthy_elsewhere = 0;
  // The local cluster exists and the upstream has hosts in the local zone.
  bool local_cluster_present = false;
  bool upstream_has_local_zone = false;
};

// Envoy's algorithm: each locality's share of healthy hosts (in 1/10000) in
// both clusters; when the upstream's local-zone share is at least the local
// cluster's, all picks stay local; otherwise upstream/local of them do and
// the rest go where the upstream's share exceeds the local cluster's, in
// proportion to the excess. `skip` says why it did not apply.
ZoneRouting computeZoneRouting(const ZoneInputs& in, uint64_t min_cluster_size, ZoneSkip* skip);

class ZoneAwareLoadBalancer : public LoadBalancer {
 public:
  // cluster.layout must be zone_only; both clusters outlive the balancer.
  // `local` null: the named local cluster does not exist (yet), which
  // counts as lb_local_cluster_not_ok.
  ZoneAwareLoadBalancer(const Cluster& cluster, const Cluster* local, const LocalityEntry& local_locality);
  const Host* chooseHost(const LoadBalancerContext* context) override;
  // The routing in force after the last pick (for tests).
  const ZoneRouting& routing() const { return routing_; }

 private:
  void refresh() {
    const uint32_t mine = cluster_.health_generation.load();
    const uint32_t theirs = local_ != nullptr ? local_->health_generation.load() : 0;
    if (fresh_ && mine == seen_mine_ && theirs == seen_theirs_) return;
    recompute(mine, theirs);
  }
  void recompute(uint32_t mine, uint32_t theirs);
  size_t chooseLocality();
  const Host* plain(const LoadBalancerContext* context) { return all_->chooseHost(context); }

  const Cluster& cluster_;
  ClusterStats::Zone* zoneStats() const { return cluster_.stats != nullptr ? cluster_.stats->zone : nullptr; }
  const Cluster* local_;
  const PriorityLayout& layout_;
  std::unique_ptr<HealthFilteringLoadBalancer> all_;
  // Per upstream locality view, local zone first (when the upstream has
  // one): the view's balancer and the local cluster's locality of the same
  // name (-1: none).
  std::vector<std::unique_ptr<HealthFilteringLoadBalancer>> localities_;
  std::vector<const Cluster*> views_;
  std::vector<int> local_index_;
  bool has_local_zone_ = false;
  uint32_t local_localities_ = 0;
  bool fresh_ = false;
  uint32_t seen_mine_ = 0;
  uint32_t seen_theirs_ = 0;
  ZoneRouting routing_;
  bool local_panic_ = false;
  FastRandom random_;
};

// The balancer for `cluster` on a worker: zone-aware when the cluster can
// route by zone and the bootstrap names a local cluster (`local` is that
// cluster, null while absent), otherwise createLoadBalancer(cluster).
std::unique_ptr<LoadBalancer> createZoneAwareOrPlainLoadBalancer(const Cluster& cluster, bool local_cluster_named,
                                                                 const Cluster* local,
                                                                 const LocalityEntry& local_locality);

// Whether createZoneAwareOrPlainLoadBalancer would use the local cluster.
inline bool routesByZone(const Cluster& cluster) { return cluster.layout != nullptr && cluster.layout->zone_only; }

}  // namespace courier::upstream
