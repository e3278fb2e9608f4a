#include "source/common/upstream/random_lb.h"

#include <algorithm>

namespace courier::upstream {

RandomLoadBalancer::RandomLoadBalancer(const Cluster& cluster, uint64_t seed)
    : cluster_(cluster), random_(seed == 0 ? FastRandom() : FastRandom(seed)) {
  if (!hasUnequalWeights(cluster)) return;
  uint64_t total = 0;
  cumulative_.reserve(cluster.hosts.size());
  for (const auto& h : cluster.hosts) cumulative_.push_back(total += h->weight);
}

const Host* RandomLoadBalancer::chooseHost(const LoadBalancerContext*) {
  const auto& hosts = cluster_.hosts;
  if (hosts.empty()) return nullptr;
  if (cumulative_.empty()) return hosts[random_.below(hosts.size())].get();
  // The first host whose running total exceeds the draw owns it.
  const uint64_t draw = random_.below(cumulative_.back());
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), draw);
  return hosts[it - cumulative_.begin()].get();
}

}  // namespace courier::upstream
