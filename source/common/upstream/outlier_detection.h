// Outlier detection (Cluster.outlier_detection) as Envoy defines it. Workers
// report each upstream attempt's result into the host's counters (relaxed
// atomics on the shared Host, no lock); a host crossing a consecutive-failure
// threshold is handed to the main thread, which ejects it at once, and the
// main thread's interval timer runs success-rate and failure-percentage
// ejection and un-ejects hosts whose ejection time is over. Ejection is the
// host's kFailedOutlierCheck health flag, which balancers read.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/outlier_detection.pb.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/cluster.h"

namespace courier::upstream {

// outlier_detection with Envoy's defaults filled in. Percentages are 0-100.
struct OutlierDetectionConfig {
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds base_ejection_time{30000};
  std::chrono::milliseconds max_ejection_time{300000};
  uint32_t max_ejection_percent = 10;
  bool always_eject_one_host = false;
  bool split_external_local_origin_errors = false;
  bool successful_active_health_check_uneject_host = true;
  uint32_t consecutive_5xx = 5;
  uint32_t enforcing_consecutive_5xx = 100;
  uint32_t consecutive_gateway_failure = 5;
  uint32_t enforcing_consecutive_gateway_failure = 0;
  uint32_t consecutive_local_origin_failure = 5;
  uint32_t enforcing_consecutive_local_origin_failure = 100;
  uint32_t enforcing_success_rate = 100;
  uint32_t enforcing_local_origin_success_rate = 100;
  uint32_t success_rate_minimum_hosts = 5;
  uint32_t success_rate_request_volume = 100;
  uint32_t success_rate_stdev_factor = 1900;  // divided by 1000
  uint32_t failure_percentage_threshold = 85;
  uint32_t enforcing_failure_percentage = 0;
  uint32_t enforcing_failure_percentage_local_origin = 0;
  uint32_t failure_percentage_minimum_hosts = 5;
  uint32_t failure_percentage_request_volume = 50;
};

// Errors name the field under `path` (e.g. "...clusters[0].outlier_detection").
absl::StatusOr<OutlierDetectionConfig> parseOutlierDetection(const envoy::config::cluster::v3::OutlierDetection& proto,
                                                             const std::string& path);

// Why a host was ejected (Envoy's detection types, in its stat-name spelling).
enum class EjectionType {
  Consecutive5xx,
  ConsecutiveGatewayFailure,
  ConsecutiveLocalOriginFailure,
  SuccessRate,
  LocalOriginSuccessRate,
  FailurePercentage,
  FailurePercentageLocalOrigin,
};
const char* ejectionTypeName(EjectionType type);

// What the router knows about an attempt that is not an HTTP status code.
enum class LocalOriginEvent { ConnectFailed, Timeout, ConnectSuccess };

// The cluster's reporting end, shared by workers (report*) and the main
// thread's OutlierDetector (bind). Reports cost a few relaxed atomic
// operations on the host; only a threshold crossing takes the lock, to post.
class OutlierSink {
 public:
  explicit OutlierSink(OutlierDetectionConfig config) : config_(std::move(config)) {}
  const OutlierDetectionConfig& config() const { return config_; }

  // Any thread.
  void reportHttpCode(const Host& host, int code) const;
  void reportLocalOrigin(const Host& host, LocalOriginEvent event) const;

  // Main thread: crossings are posted to `main` and handed to `on_crossing`
  // there; bind(nullptr, nullptr) stops that.
  using CrossingCallback = std::function<void(const Host*, EjectionType)>;
  void bind(event::Dispatcher* main, std::shared_ptr<CrossingCallback> on_crossing);

 private:
  void crossed(const Host& host, EjectionType type) const;

  const OutlierDetectionConfig config_;
  mutable std::mutex mutex_;
  event::Dispatcher* main_ = nullptr;
  std::shared_ptr<CrossingCallback> on_crossing_;
};

// cluster.<name>.outlier_detection.* as Envoy names them.
struct OutlierDetectionStats {
  OutlierDetectionStats(stats::Store& store, const std::string& cluster_name);
  stats::Gauge& ejections_active;
  stats::Counter& ejections_total;
  stats::Counter& ejections_overflow;
  stats::Counter& ejections_enforced_total;
  stats::Counter* enforced[7];
  stats::Counter* detected[7];
};

// Main thread: the ejection decisions for one cluster version.
class OutlierDetector {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `random_percent` returns a draw in [0, 100) for the enforcing_* odds;
  // tests pass fixed clocks and draws.
  OutlierDetector(ClusterConstSharedPtr cluster, event::Dispatcher& main, stats::Store& store,
                  Clock clock = nullptr, std::function<uint32_t()> random_percent = nullptr);
  ~OutlierDetector();

  // Consecutive-failure crossing (normally posted by the sink).
  void onCrossing(const Host* host, EjectionType type);
  // The interval's work: un-ejection, success rate, failure percentage.
  void runInterval();
  // Active health check passed (successful_active_health_check_uneject_host).
  void onActiveHealthCheckSuccess(const Host& host);

  // For /clusters: -1 when not computed in the last interval.
  double successRate(const Host& host) const;
  double localOriginSuccessRate(const Host& host) const;

 private:
  struct HostState {
    bool ejected = false;
    uint32_t num_ejections = 0;
    std::chrono::steady_clock::time_point ejected_at;
    double success_rate = -1;
    double local_origin_success_rate = -1;
  };
  void eject(size_t index, EjectionType type, bool enforcing);
  void uneject(size_t index);
  bool enforce(uint32_t percent) { return percent > 0 && random_percent_() < percent; }
  void successRateEjections(bool local_origin, const std::vector<std::pair<uint64_t, uint64_t>>& counts);
  void failurePercentageEjections(bool local_origin, const std::vector<std::pair<uint64_t, uint64_t>>& counts);

  ClusterConstSharedPtr cluster_;
  const OutlierDetectionConfig& config_;
  OutlierDetectionStats stats_;
  Clock clock_;
  std::function<uint32_t()> random_percent_;
  std::vector<HostState> hosts_;
  absl::flat_hash_map<const Host*, size_t> index_;
  std::unique_ptr<event::Timer> timer_;
  std::shared_ptr<OutlierSink::CrossingCallback> crossing_;
};

}  // namespace courier::upstream
