// The main thread's health machinery for one cluster version: its active
// health checker and its outlier detector, wired so that a passing active
// check returns an ejected host (successful_active_health_check_uneject_host).
#pragma once

#include <memory>

#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/health_checker.h"
#include "source/common/upstream/outlier_detection.h"

namespace courier::upstream {

class ClusterHealth {
 public:
  // nullptr when the cluster has neither health checks nor outlier
  // detection. `previous`: the version this one replaces, or nullptr.
  static std::unique_ptr<ClusterHealth> create(const ClusterConstSharedPtr& cluster, const Cluster* previous,
                                               event::Dispatcher& main, stats::Store& store);

  HealthChecker* healthChecker() const { return health_checker_.get(); }
  OutlierDetector* outlierDetector() const { return outlier_detector_.get(); }

 private:
  // The detector first: the checker's success callback points into it.
  std::unique_ptr<OutlierDetector> outlier_detector_;
  std::unique_ptr<HealthChecker> health_checker_;
};

}  // namespace courier::upstream
