// LEAST_REQUEST load balancing. Equal weights: the best of choice_count random
// hosts by active requests (power of N choices). Unequal weights: earliest
// deadline first where a host's weight is weight / (active + 1)^bias, as Envoy.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "source/common/upstream/edf_scheduler.h"
#include "source/common/upstream/load_balancer.h"

namespace courier::upstream {

struct LeastRequestConfig {
  uint32_t choice_count = 2;
  double active_request_bias = 1.0;
};

class LeastRequestLoadBalancer : public LoadBalancer {
 public:
  LeastRequestLoadBalancer(const Cluster& cluster, const LeastRequestConfig& config, uint64_t seed = 0);
  const Host* chooseHost(const LoadBalancerContext* context) override;

 private:
  struct Entry {
    double deadline;
    uint64_t order;  // ties go to the host queued first, so equal hosts alternate
    uint32_t host;
  };
  struct Earlier {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.deadline < b.deadline || (a.deadline == b.deadline && a.order < b.order);
    }
  };
  double effectiveWeight(const Host& host) const;
  const Host* pickUnweighted();
  const Host* pickWeighted();

  const Cluster& cluster_;
  const LeastRequestConfig config_;
  FastRandom random_;
  // Weighted only: the EDF schedule.
  EdfQueue<Entry, Earlier> queue_;
  double now_ = 0;
  uint64_t order_ = 0;
};

class LeastRequestLoadBalancerFactory : public LoadBalancerFactory {
 public:
  explicit LeastRequestLoadBalancerFactory(LeastRequestConfig config) : config_(config) {}
  std::unique_ptr<LoadBalancer> create(const Cluster& cluster) const override {
    return std::make_unique<LeastRequestLoadBalancer>(cluster, config_);
  }
  std::shared_ptr<const LoadBalancerFactory> forHosts(const Cluster&) const override {
    return std::make_shared<LeastRequestLoadBalancerFactory>(config_);
  }
  const LeastRequestConfig& config() const { return config_; }

 private:
  LeastRequestConfig config_;
};

}  // namespace courier::upstream
