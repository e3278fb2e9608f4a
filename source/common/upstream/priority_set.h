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

// One priority level's host counts.
struct LevelHealth {
  uint32_t hosts = 0;
  uint32_t healthy = 0;
};

struct PriorityLoad {
  // Percent of picks per level; sums to 100.
  std::vector<uint32_t> load;
  // Per level: picks there use every host of the level, healthy or not.
  std::vector<bool> panic;
};

// Envoy's rules: a level's availability is min(100, factor * healthy / hosts)
// (integer percent); levels take load in order, each its availability scaled
// by the normalised total (capped at 100), until 100 is handed out; rounding
// leftovers go to the first available level. Panic counts only while the
// normalised total is below 100, for levels whose healthy share is below the
// threshold; when every level is in panic, load follows host counts instead.
PriorityLoad computePriorityLoad(const std::vector<LevelHealth>& levels, uint32_t overprovisioning_factor,
                                 double panic_threshold);

// The level owning `draw` (reduced modulo 100), as Envoy's choosePriority.
uint32_t choosePriority(const std::vector<uint32_t>& load, uint64_t draw);

// A locality's weight scaled by its availability, capped at 1:
// weight * min(1, factor/100 * healthy / hosts).
double effectiveLocalityWeight(uint32_t weight, uint32_t hosts, uint32_t healthy, uint32_t overprovisioning_factor);

// Immutable grouping built with a cluster version on the main thread. Each
// group is a view: a Cluster with the parent's settings and stats holding only
// the group's hosts, with its own balancer state and unhealthy count (which
// setHealthFlag() keeps in step through onHealthChange()).
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

  // Main thread: `host` became unhealthy (+1) or healthy again (-1).
  void onHealthChange(const Host& host, int32_t delta) const;
  // Main thread: recount every group from its hosts' flags.
  void recount() const;
};

}  // namespace courier::upstream
