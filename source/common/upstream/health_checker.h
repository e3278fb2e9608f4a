// Active health checking (Cluster.health_checks) as Envoy does it: on the
// main thread, one session per host probes it over HTTP/1.1 or HTTP/2
// (path, expected statuses), raw TCP (send/receive payloads) or gRPC
// (grpc.health.v1.Health/Check), and moves the host's kFailedActiveHc flag by
// the healthy/unhealthy thresholds. Workers see the flag on their next pick.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/core/v3/health_check.pb.h"
#include "google/protobuf/repeated_field.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/cluster.h"

namespace courier::upstream {

// One health_checks entry with Envoy's defaults filled in.
struct HealthCheckConfig {
  enum class Type { Http, Tcp, Grpc };
  Type type = Type::Http;
  std::chrono::milliseconds timeout{1000};
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds initial_jitter{0};
  std::chrono::milliseconds interval_jitter{0};
  uint32_t interval_jitter_percent = 0;
  std::chrono::milliseconds no_traffic_interval{60000};
  std::optional<std::chrono::milliseconds> no_traffic_healthy_interval;
  std::chrono::milliseconds unhealthy_interval{1000};
  std::chrono::milliseconds unhealthy_edge_interval{1000};
  std::chrono::milliseconds healthy_edge_interval{1000};
  uint32_t unhealthy_threshold = 1;
  uint32_t healthy_threshold = 1;
  bool reuse_connection = true;
  uint32_t alt_port = 0;
  // HTTP.
  std::string host;  // empty: the cluster name
  std::string path;
  std::string method = "GET";
  bool http2 = false;
  std::vector<std::pair<uint64_t, uint64_t>> expected_statuses;  // [start, end)
  // Not expected but not fatal: counted toward unhealthy_threshold.
  std::vector<std::pair<uint64_t, uint64_t>> retriable_statuses;
  std::vector<std::string> request_headers_to_remove;
  std::vector<std::pair<std::string, std::string>> request_headers_to_add;
  // TCP: bytes to send, and byte strings that must arrive in this order.
  std::string send;
  std::vector<std::string> receive;
  // gRPC.
  std::string service_name;
  std::string authority;
};

// The cluster's health-check end shared with workers: the config, and the
// way a worker hands the main thread's checker a host whose response carried
// x-envoy-immediate-health-check-fail (rare, so a lock and a post).
class HealthCheckSink {
 public:
  explicit HealthCheckSink(HealthCheckConfig config) : config_(std::move(config)) {}
  const HealthCheckConfig& config() const { return config_; }
  // Any thread.
  void reportImmediateFailure(const Host& host) const;
  // Main thread; bind(nullptr, nullptr) stops the posts.
  using Callback = std::function<void(const Host*)>;
  void bind(event::Dispatcher* main, std::shared_ptr<Callback> callback);

 private:
  const HealthCheckConfig config_;
  mutable std::mutex mutex_;
  event::Dispatcher* main_ = nullptr;
  std::shared_ptr<Callback> callback_;
};

// health_checks; errors name the field under `path` (…clusters[0]).
// nullptr when the list is empty.
absl::StatusOr<std::shared_ptr<HealthCheckSink>> parseHealthChecks(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HealthCheck>& checks, const std::string& path);

// cluster.<name>.health_check.* as Envoy names them.
struct HealthCheckerStats {
  HealthCheckerStats(stats::Store& store, const std::string& cluster_name);
  stats::Counter& attempt;
  stats::Counter& success;
  stats::Counter& failure;
  stats::Counter& passive_failure;
  stats::Counter& network_failure;
  stats::Counter& verify_cluster;
  stats::Gauge& healthy;
  stats::Gauge& degraded;
};

// Main thread: checks every host of one cluster version.
class HealthChecker {
 public:
  // `previous`: the cluster version this one replaces, whose hosts' active
  // health carries over by address (Envoy keeps it across updates); other
  // hosts start failed and pending their first check. on_success runs after
  // every passing check (outlier un-ejection).
  HealthChecker(ClusterConstSharedPtr cluster, const Cluster* previous, event::Dispatcher& main, stats::Store& store,
                std::function<void(const Host&)> on_success = nullptr);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // An upstream's response said x-envoy-immediate-health-check-fail
  // (posted from a worker through the sink): unhealthy at once, as Envoy.
  void onImmediateFailure(const Host* host);

  class Session;

 private:
  friend class Session;
  ClusterConstSharedPtr cluster_;
  const HealthCheckConfig& config_;
  event::Dispatcher& dispatcher_;
  HealthCheckerStats stats_;
  std::function<void(const Host&)> on_success_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::shared_ptr<HealthCheckSink::Callback> immediate_;
};

}  // namespace courier::upstream
