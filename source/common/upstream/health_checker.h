// Active health checking (Cluster.health_checks) as Envoy does it: on the
// main thread, one session per host and health_checks entry probes it over
// HTTP/1.1 or HTTP/2 (path, expected statuses, body payloads, the upstream's
// cluster name), raw TCP (send/receive payloads) or gRPC
// (grpc.health.v1.Health/Check), through the cluster's transport socket (TLS
// when it has one). Each entry keeps its own verdict per host by the
// healthy/unhealthy thresholds; the host's kFailedActiveHc flag is set while
// any entry finds it unhealthy. Workers see the flag on their next pick.
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
#include "source/common/network/transport_socket.h"
#include "source/common/router/route_table.h"
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
  std::chrono::milliseconds no_traffic_healthy_interval{60000};
  std::chrono::milliseconds unhealthy_interval{1000};
  std::chrono::milliseconds unhealthy_edge_interval{1000};
  std::chrono::milliseconds healthy_edge_interval{1000};
  uint32_t unhealthy_threshold = 1;
  uint32_t healthy_threshold = 1;
  bool reuse_connection = true;
  uint32_t alt_port = 0;
  // Every failed check is logged (at info), not only a host's transitions.
  bool always_log_health_check_failures = false;
  // HTTP.
  std::string host;  // empty: the cluster name
  std::string path;
  std::string method = "GET";
  bool http2 = false;
  std::vector<std::pair<uint64_t, uint64_t>> expected_statuses;  // [start, end)
  // Not expected but not fatal: counted toward unhealthy_threshold.
  std::vector<std::pair<uint64_t, uint64_t>> retriable_statuses;
  std::vector<std::string> request_headers_to_remove;
  // HTTP request_headers_to_add, or gRPC initial_metadata.
  std::vector<std::pair<std::string, std::string>> request_headers_to_add;
  // http_health_check.service_name_matcher: the response's
  // x-envoy-upstream-healthchecked-cluster must match it.
  std::optional<router::StringMatcher> service_name_matcher;
  // TCP: bytes to send, and byte strings that must arrive in this order.
  // HTTP: the request body, and byte strings the first response_buffer_size
  // bytes of the response body must hold in this order.
  std::string send;
  std::vector<std::string> receive;
  uint64_t response_buffer_size = 1024;
  // gRPC.
  std::string service_name;
  std::string authority;
  // tls_options.alpn_protocols: offered on this entry's TLS connections
  // instead of the cluster's list (empty: the cluster's).
  std::vector<std::string> alpn_protocols;
  // Made from the cluster's transport_socket with alpn_protocols; null: the
  // cluster's own factory (plaintext when the cluster has none).
  network::TransportSocketFactoryConstSharedPtr transport_socket_factory;
};

// Envoy's HealthTransition: whether a check changed its entry's verdict on
// a host, or moved toward changing it without reaching the threshold yet.
enum class HealthTransition { Unchanged, Changed, ChangePending };

// Envoy's HealthCheckerImplBase::interval: the wait before the next check
// after one that passed (healthy) or failed. Before the cluster carried any
// traffic: no_traffic_healthy_interval after a pass that is not a pending
// transition, else no_traffic_interval. Then: the edge intervals while a
// transition is pending, else interval (pass) or unhealthy_interval (fail).
// Jitter: up to interval_jitter_percent of that, plus up to interval_jitter,
// drawn from `random`.
std::chrono::milliseconds nextCheckDelay(const HealthCheckConfig& config, bool had_traffic, bool healthy,
                                         HealthTransition transition, uint64_t random);
// The first check waits a random part of initial_jitter (none without it).
std::chrono::milliseconds firstCheckDelay(const HealthCheckConfig& config, uint64_t random);

// The cluster's health-check end shared with workers: the configs (one per
// health_checks entry), and the way a worker hands the main thread's checker
// a host whose response carried x-envoy-immediate-health-check-fail (rare, so
// a lock and a post).
class HealthCheckSink {
 public:
  explicit HealthCheckSink(std::vector<HealthCheckConfig> configs) : configs_(std::move(configs)) {}
  const std::vector<HealthCheckConfig>& configs() const { return configs_; }
  // cluster_factory, before the cluster is shared: gives entry i its own
  // transport socket factory (tls_options.alpn_protocols).
  void setTransportSocketFactory(size_t i, network::TransportSocketFactoryConstSharedPtr factory) {
    configs_[i].transport_socket_factory = std::move(factory);
  }
  // Any thread.
  void reportImmediateFailure(const Host& host) const;
  // Main thread; bind(nullptr, nullptr) stops the posts.
  using Callback = std::function<void(const Host*)>;
  void bind(event::Dispatcher* main, std::shared_ptr<Callback> callback);

 private:
  std::vector<HealthCheckConfig> configs_;
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

// Main thread: checks every host of one cluster version with every
// health_checks entry.
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
  // (posted from a worker through the sink): unhealthy at once for every
  // entry, as Envoy.
  void onImmediateFailure(const Host* host);

  class Session;

 private:
  friend class Session;
  // After a session's verdict on host i changed: the host's kFailedActiveHc
  // (any entry failing) and kPendingActiveHc (any entry before its first
  // check), the healthy gauge and the log.
  void updateHost(size_t i);

  ClusterConstSharedPtr cluster_;
  event::Dispatcher& dispatcher_;
  HealthCheckerStats stats_;
  std::function<void(const Host&)> on_success_;
  // sessions_[entry][host index].
  std::vector<std::vector<std::unique_ptr<Session>>> sessions_;
  std::shared_ptr<HealthCheckSink::Callback> immediate_;
};

}  // namespace courier::upstream
