// A worker's view of the clusters: the snapshot it serves with plus its own
// load-balancer state per cluster, carried over across snapshot swaps when a
// cluster did not change.
#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/load_balancer.h"

namespace courier::upstream {

class ThreadLocalCluster {
 public:
  explicit ThreadLocalCluster(ClusterConstSharedPtr cluster)
      : cluster_(std::move(cluster)), lb_(createLoadBalancer(*cluster_)) {}
  const Cluster& info() const { return *cluster_; }
  // A connection keeps the cluster (and its hosts) alive while it uses them.
  const ClusterConstSharedPtr& shared() const { return cluster_; }
  LoadBalancer& loadBalancer() { return *lb_; }

 private:
  ClusterConstSharedPtr cluster_;
  std::unique_ptr<LoadBalancer> lb_;
};

class ThreadLocalClusterManager {
 public:
  // Worker thread: adopt a new cluster set.
  void update(ClusterSetConstSharedPtr set);
  ThreadLocalCluster* get(const std::string& name);
  const ClusterSetConstSharedPtr& clusterSet() const { return set_; }

 private:
  ClusterSetConstSharedPtr set_;
  absl::flat_hash_map<std::string, std::unique_ptr<ThreadLocalCluster>> clusters_;
};

}  // namespace courier::upstream
