// Picks over a cluster with priority levels or locality weighting: first a
// level by Envoy's priority load (priority_set.h) and whether its healthy or
// its degraded hosts serve, then a locality in it by weight times
// availability when locality weighting is on, then a host with the cluster's
// policy inside that group.
#pragma once

#include <memory>
#include <vector>

#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/priority_set.h"

namespace courier::upstream {

// Main thread: sets cluster.layout for the cluster's hosts, building each
// group's balancer state with cluster.lb_factory->forHosts(). nullptr when
// one level serves without locality weighting. Call once `hosts`,
// `localities` and `lb_factory` are set.
void buildPriorityLayout(Cluster& cluster);

class PriorityLoadBalancer : public LoadBalancer {
 public:
  // cluster.layout must be set; the cluster outlives the balancer.
  explicit PriorityLoadBalancer(const Cluster& cluster);
  const Host* chooseHost(const LoadBalancerContext* context) override;
  // The load in force after the last pick (for tests).
  const PriorityLoad& priorityLoad() const { return load_; }

 private:
  struct LevelBalancers {
    std::unique_ptr<HealthFilteringLoadBalancer> all;
    std::vector<std::unique_ptr<HealthFilteringLoadBalancer>> localities;
    // Running totals of the localities' effective weights, by healthy and by
    // degraded hosts.
    std::vector<double> cumulative;
    std::vector<double> degraded_cumulative;
  };
  // Recomputes the loads and locality weights when health changed.
  void refresh() {
    const uint32_t generation = layout_.generation.load();
    if (fresh_ && generation == seen_generation_) return;
    recompute(generation);
  }
  void recompute(uint32_t generation);
  const Host* chooseInLevel(uint32_t priority, bool degraded, const LoadBalancerContext* context);

  const Cluster& cluster_;
  const PriorityLayout& layout_;
  std::vector<LevelBalancers> balancers_;
  uint32_t seen_generation_ = 0;
  bool fresh_ = false;
  PriorityLoad load_;
  FastRandom random_;
};

}  // namespace courier::upstream
