#include "source/common/upstream/thread_local_cluster_manager.h"

namespace courier::upstream {

void ThreadLocalClusterManager::update(ClusterSetConstSharedPtr set) {
  absl::flat_hash_map<std::string, std::unique_ptr<ThreadLocalCluster>> next;
  for (const auto& [name, cluster] : set->clusters) {
    auto it = clusters_.find(name);
    if (it != clusters_.end() && it->second->shared() == cluster) {
      next.emplace(name, std::move(it->second));
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
