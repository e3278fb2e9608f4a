// A cluster's hosts grouped by priority level (and by locality inside a level
// when locality weighting is on), and Envoy's arithmetic for sharing load
// among the groups: per-level availability scaled by the overprovisioning
// factor, spill to lower levels, panic per level and in total.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "source/common/upstream/cluster.h"

namespace courier::upstream {

// One priority level's host counts: all of them, the healthy ones and the
// degraded ones (the rest are unhealthy).
struct LevelHealth {
  uint32_t hosts = 0;
  uint32_t healthy = 0;
  uint32_t degraded = 0;
};

struct PriorityLoad {
  // Percent of picks per level that go to its healthy hosts, and to its
  // degraded hosts; together they sum to 100.
  std::vector<uint32_t> load;
  std::vector<uint32_t> degraded;
  // Per level: picks there use every host of the level, healthy or not.
  std::vector<bool> panic;
};

// Envoy's rules (LoadBalancerBase::recalculatePriorityLoad and friends): a
// level's healthy availability is min(100, factor * healthy / hosts) and its
// degraded availability min(100, factor * degraded / hosts) (integer
// percent); their sum over all levels, capped at 100, normalises them. The
// 100 percent goes first to healthy hosts, level by level in order, each its
// availability scaled by the normalised total, until it is handed out; what
// is left goes the same way to degraded hosts; rounding leftovers go to the
// first level with healthy availability (else with degraded). Panic counts
// only while the normalised total is below 100, for levels whose healthy plus
// degraded share is below the threshold; when every level is in panic, load
// follows host counts instead (all of it on the healthy side).
PriorityLoad computePriorityLoad(const std::vector<LevelHealth>& levels, uint32_t overprovisioning_factor,
                                 double panic_threshold);

// The level owning `draw` (reduced modulo 100), as Envoy's choosePriority.
uint32_t choosePriority(const std::vector<uint32_t>& load, uint64_t draw);
// The same over healthy then degraded loads: the level and whether the pick
// goes to its degraded hosts.
struct PriorityChoice {
  uint32_t priority = 0;
  bool degraded = false;
};
PriorityChoice choosePriority(const PriorityLoad& load, uint64_t draw);

// The single-level case without allocation, for the plain balancer's slow
// path: the percent of picks for healthy hosts (the rest go to degraded
// ones) and whether the level is in panic. Agrees with computePriorityLoad
// for one level.
struct LevelShare {
  uint32_t healthy_load = 100;
  bool panic = false;
};
LevelShare singleLevelShare(const LevelHealth& level, uint32_t overprovisioning_factor, double panic_threshold);

// A locality's weight scaled by its availability, capped at 1:
// weight * min(1, factor/100 * healthy / hosts).
double effectiveLocalityWeight(uint32_t weight, uint32_t hosts, uint32_t healthy, uint32_t overprovisioning_factor);

// Immutable grouping built with a cluster version on the main thread. Each
// group is a view: a Cluster with the parent's settings and stats holding only
// the group's hosts, with its own balancer state and unhealthy and degraded
// counts (which setHealthFlag() keeps in step through onHealthChange()).
class PriorityLayout {
 public:
  struct Level {
    // Every host of the level (empty hosts when the level has none).
    std::shared_ptr<const Cluster> all;
    // Locality weighting or zone routing only: one view per locality present
    // in the level.
    std::vector<std::shared_ptr<const Cluster>> localities;
    // The Cluster::localities index of each entry of `localities`.
    std::vector<uint16_t> locality_index;
  };
  // Indexed by priority; levels between used ones are present and empty.
  std::vector<Level> levels;
  // Built only for zone routing: one level with a view per locality, which
  // picks without a local cluster ignore (plain balancer).
  bool zone_only = false;

  // Bumped by every health change below: workers recompute their loads only
  // when it moved.
  mutable HostCount generation;

  // Main thread: `host`'s coarse health changed; the deltas of its group's
  // unhealthy (degraded included) and degraded counts.
  void onHealthChange(const Host& host, int32_t unhealthy_delta, int32_t degraded_delta) const;
  // Main thread: recount every group from its hosts' flags.
  void recount() const;
};

}  // namespace courier::upstream
