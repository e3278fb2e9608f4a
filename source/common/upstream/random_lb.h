// RANDOM load balancing: each pick is an independent draw, uniform over the
// hosts, or proportional to load_balancing_weight when weights differ.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "source/common/upstream/load_balancer.h"

namespace courier::upstream {

class RandomLoadBalancer : public LoadBalancer {
 public:
  explicit RandomLoadBalancer(const Cluster& cluster, uint64_t seed = 0);
  const Host* chooseHost(const LoadBalancerContext* context) override;

 private:
  const Cluster& cluster_;
  FastRandom random_;
  // Weighted only: running weight totals, searched with a draw below the sum.
  std::vector<uint64_t> cumulative_;
};

class RandomLoadBalancerFactory : public LoadBalancerFactory {
 public:
  std::unique_ptr<LoadBalancer> create(const Cluster& cluster) const override {
    return std::make_unique<RandomLoadBalancer>(cluster);
  }
  std::shared_ptr<const LoadBalancerFactory> forHosts(const Cluster&) const override {
    return std::make_shared<RandomLoadBalancerFactory>();
  }
};

}  // namespace courier::upstream
