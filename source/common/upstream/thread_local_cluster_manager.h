// A worker's view of the clusters: the snapshot it serves with plus its own
// load-balancer state for each cluster it routed to, carried over across
// snapshot swaps when the cluster did not change.
#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/zone_aware_lb.h"

namespace courier::upstream {

class ThreadLocalCluster {
 public:
  explicit ThreadLocalCluster(ClusterConstSharedPtr cluster)
      : cluster_(std::move(cluster)), lb_(createLoadBalancer(*cluster_)) {}
  // With zone-aware routing against `local` (the set's local cluster, kept
  // alive here; null while the named cluster is absent).
  ThreadLocalCluster(ClusterConstSharedPtr cluster, ClusterConstSharedPtr local, const LocalityEntry& local_locality)
      : cluster_(std::move(cluster)),
        local_(std::move(local)),
        lb_(createZoneAwareOrPlainLoadBalancer(*cluster_, true, local_.get(), local_locality)) {}
  // The local cluster version the balancer routes against.
  const ClusterConstSharedPtr& local() const { return local_; }
  const Cluster& info() const { return *cluster_; }
  // A connection keeps the cluster (and its hosts) alive while it uses them.
  const ClusterConstSharedPtr& shared() const { return cluster_; }
  LoadBalancer& loadBalancer() { return *lb_; }

 private:
  ClusterConstSharedPtr cluster_;
  ClusterConstSharedPtr local_;
  std::unique_ptr<LoadBalancer> lb_;
};

class ThreadLocalClusterManager {
 public:
  // Worker thread: adopt a new cluster set. Balancer state is kept for the
  // clusters that stay the same; the rest is dropped.
  void update(ClusterSetConstSharedPtr set);
  // The cluster's worker state, made on this worker's first request to it:
  // a mesh pushes every cluster to every sidecar but each routes to few, so
  // balancers made up front were most of a cluster's per-worker memory and
  // of the workers' share of applying a push. Valid until the next update().
  ThreadLocalCluster* get(const std::string& name);
  const ClusterSetConstSharedPtr& clusterSet() const { return set_; }
  // Clusters this worker holds balancer state for.
  size_t clustersInUse() const { return clusters_.size(); }

 private:
  // Whether `cluster` gets a zone-aware balancer under the current set.
  bool byZone(const Cluster& cluster) const;

  ClusterSetConstSharedPtr set_;
  // The set's local cluster (zone-aware routing), null while absent.
  ClusterConstSharedPtr local_;
  absl::flat_hash_map<std::string, std::unique_ptr<ThreadLocalCluster>> clusters_;
};

}  // namespace courier::upstream
