#include "source/common/upstream/thread_local_cluster_manager.h"

namespace courier::upstream {

bool ThreadLocalClusterManager::byZone(const Cluster& cluster) const {
  return !set_->local_cluster_name.empty() && routesByZone(cluster);
}

void ThreadLocalClusterManager::update(ClusterSetConstSharedPtr set) {
  set_ = std::move(set);
  // Zone-aware balancers route against one version of the local cluster: a
  // new version (membership changed) rebuilds them.
  local_ = nullptr;
  if (!set_->local_cluster_name.empty()) {
    auto found = set_->clusters.find(set_->local_cluster_name);
    if (found != set_->clusters.end()) local_ = found->second;
  }
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    auto found = set_->clusters.find(it->first);
    const bool same = found != set_->clusters.end() && it->second->shared() == found->second &&
                      it->second->local() == (byZone(*found->second) ? local_ : nullptr);
    if (same) {
      ++it;
    } else {
      clusters_.erase(it++);
    }
  }
}

ThreadLocalCluster* ThreadLocalClusterManager::get(const std::string& name) {
  auto it = clusters_.find(name);
  if (it != clusters_.end()) return it->second.get();
  if (set_ == nullptr) return nullptr;
  auto found = set_->clusters.find(name);
  if (found == set_->clusters.end()) return nullptr;
  auto made = byZone(*found->second) ? std::make_unique<ThreadLocalCluster>(found->second, local_, set_->local_locality)
                                     : std::make_unique<ThreadLocalCluster>(found->second);
  return clusters_.emplace(name, std::move(made)).first->second.get();
}

}  // namespace courier::upstream
