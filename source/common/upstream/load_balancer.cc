#include "source/common/upstream/load_balancer.h"

#include <random>

namespace courier::upstream {

FastRandom::FastRandom() : FastRandom(std::random_device{}() | (uint64_t{std::random_device{}()} << 32)) {}

std::string hashKeyOf(const Host& host, bool use_hostname) {
  return use_hostname && !host.hostname.empty() ? host.hostname : host.address.asString();
}

bool hasUnequalWeights(const Cluster& cluster) {
  for (const auto& h : cluster.hosts) {
    if (h->weight != cluster.hosts.front()->weight) return true;
  }
  return false;
}

RoundRobinLoadBalancer::RoundRobinLoadBalancer(const Cluster& cluster) : cluster_(cluster) {
  for (const auto& h : cluster.hosts) total_weight_ += h->weight;
  weighted_ = hasUnequalWeights(cluster);
  if (weighted_) current_.assign(cluster.hosts.size(), 0);
}

const Host* RoundRobinLoadBalancer::chooseHost(const LoadBalancerContext*) {
  const auto& hosts = cluster_.hosts;
  if (hosts.empty()) return nullptr;
  if (!weighted_) {
    const Host* h = hosts[next_].get();
    next_ = (next_ + 1) % hosts.size();
    return h;
  }
  size_t best = 0;
  for (size_t i = 0; i < hosts.size(); ++i) {
    current_[i] += hosts[i]->weight;
    if (current_[i] > current_[best]) best = i;
  }
  current_[best] -= total_weight_;
  return hosts[best].get();
}

std::unique_ptr<LoadBalancer> createLoadBalancer(const Cluster& cluster) {
  if (cluster.lb_factory != nullptr) return cluster.lb_factory->create(cluster);
  return std::make_unique<RoundRobinLoadBalancer>(cluster);
}

}  // namespace courier::upstream
