#include "source/common/upstream/thread_local_cluster_manager.h"

namespace courier::upstream {

void ThreadLocalClusterManager::update(ClusterSetConstSharedPtr set) {
  absl::flat_hash_map<std::string, std::unique_ptr<ThreadLocalCluster>> next;
  // Zone-aware balancers route against one version of the local cluster: a
  // new version (membership changed) rebuilds them.
  ClusterConstSharedPtr local;
  const bool zone = !set->local_cluster_name.empty();
  if (zone) {
    auto found = set->clusters.find(set->local_cluster_name);
    if (found != set->clusters.end()) local = found->second;
  }
  for (const auto& [name, cluster] : set->clusters) {
    const bool by_zone = zone && routesByZone(*cluster);
    auto it = clusters_.find(name);
    if (it != clusters_.end() && it->second->shared() == cluster &&
        it->second->local() == (by_zone ? local : nullptr)) {
      next.emplace(name, std::move(it->second));
    } else if (by_zone) {
      next.emplace(name, std::make_unique<ThreadLocalCluster>(cluster, local, set->local_locality));
    } else {
      next.emplace(name, std::make_unique<ThreadLocalCluster>(cluster));
    }
  }
  clusters_.swap(next);
  set_ = std::move(set);
}

ThreadLocalCluster* ThreadLocalClusterManager::get(const std::string& name) {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

}  // namespace courier::upstream
