#include "source/common/upstream/least_request_lb.h"

#include <algorithm>
#include <cmath>

namespace courier::upstream {

LeastRequestLoadBalancer::LeastRequestLoadBalancer(const Cluster& cluster, const LeastRequestConfig& config,
                                                   uint64_t seed)
    : cluster_(cluster), config_(config), random_(seed == 0 ? FastRandom() : FastRandom(seed)) {
  if (!hasUnequalWeights(cluster)) return;
  std::vector<Entry> entries;
  entries.reserve(cluster.hosts.size());
  for (uint32_t i = 0; i < cluster.hosts.size(); ++i) {
    entries.push_back({1.0 / effectiveWeight(*cluster.hosts[i]), order_++, i});
  }
  queue_.assign(std::move(entries));
}

double LeastRequestLoadBalancer::effectiveWeight(const Host& host) const {
  const double active = host.active_requests.load(std::memory_order_relaxed);
  const double bias = config_.active_request_bias;
  // The common bias of 1.0 (and 0.0, pure weights) need no pow().
  if (bias == 1.0) return host.weight / (active + 1);
  if (bias == 0.0) return host.weight;
  return host.weight / std::pow(active + 1, bias);
}

const Host* LeastRequestLoadBalancer::chooseHost(const LoadBalancerContext*) {
  if (cluster_.hosts.empty()) return nullptr;
  return queue_.empty() ? pickUnweighted() : pickWeighted();
}

const Host* LeastRequestLoadBalancer::pickUnweighted() {
  const auto& hosts = cluster_.hosts;
  const Host* best = nullptr;
  uint32_t best_active = 0;
  for (uint32_t i = 0; i < config_.choice_count; ++i) {
    const Host* candidate = hosts[random_.below(hosts.size())].get();
    const uint32_t active = candidate->active_requests.load(std::memory_order_relaxed);
    if (best == nullptr || active < best_active) {
      best = candidate;
      best_active = active;
    }
  }
  return best;
}

const Host* LeastRequestLoadBalancer::pickWeighted() {
  Entry& e = queue_.top();
  now_ = e.deadline;
  const Host* host = cluster_.hosts[e.host].get();
  // The next turn is re-weighed by the host's load now; the caller's
  // increment for this pick comes after, as in Envoy.
  e.deadline = now_ + 1.0 / effectiveWeight(*host);
  e.order = order_++;
  queue_.topMovedLater();
  return host;
}

}  // namespace courier::upstream
