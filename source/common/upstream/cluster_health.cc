#include "source/common/upstream/cluster_health.h"

namespace courier::upstream {

std::unique_ptr<ClusterHealth> ClusterHealth::create(const ClusterConstSharedPtr& cluster, const Cluster* previous,
                                                     event::Dispatcher& main, stats::Store& store) {
  if (cluster->health_check == nullptr && cluster->outlier == nullptr) return nullptr;
  auto health = std::make_unique<ClusterHealth>();
  if (cluster->outlier != nullptr) {
    health->outlier_detector_ = std::make_unique<OutlierDetector>(cluster, main, store);
  }
  if (cluster->health_check != nullptr) {
    OutlierDetector* detector = health->outlier_detector_.get();
    std::function<void(const Host&)> on_success;
    if (detector != nullptr) on_success = [detector](const Host& host) { detector->onActiveHealthCheckSuccess(host); };
    health->health_checker_ = std::make_unique<HealthChecker>(cluster, previous, main, store, std::move(on_success));
  }
  return health;
}

}  // namespace courier::upstream
