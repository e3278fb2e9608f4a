// Per-worker host selection over an immutable cluster. The state (round-robin
// position) lives on the worker, so picks take no lock.
#pragma once

#include <cstdint>
#include <memory>

#include "source/common/upstream/cluster.h"

namespace courier::upstream {

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // nullptr when the cluster has no usable host.
  virtual const Host* chooseHost() = 0;
};

// Plain rotation when weights are equal; smooth weighted round robin
// (each pick raises every host by its weight and lowers the winner by the
// total) when they differ, which spreads a heavy host's turns out.
class RoundRobinLoadBalancer : public LoadBalancer {
 public:
  explicit RoundRobinLoadBalancer(const Cluster& cluster);
  const Host* chooseHost() override;

 private:
  const Cluster& cluster_;
  bool weighted_ = false;
  int64_t total_weight_ = 0;
  std::vector<int64_t> current_;
  size_t next_ = 0;
};

std::unique_ptr<LoadBalancer> createLoadBalancer(const Cluster& cluster);

}  // namespace courier::upstream
