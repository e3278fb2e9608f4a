// ORIGINAL_DST clusters (lb_policy CLUSTER_PROVIDED): the host is the address
// the downstream connection was headed to (SO_ORIGINAL_DST, else the local
// address) or, with use_http_header, the x-envoy-original-dst-host header.
// Workers create hosts on first use and tell the main thread, which adds
// them to the next cluster version and drops those idle for cleanup_interval.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "source/common/upstream/host_discovery.h"
#include "source/common/upstream/load_balancer.h"

namespace courier::upstream {

struct OriginalDstSettings {
  std::string header;  // empty: the connection's original destination only
  std::optional<uint32_t> port_override;
  std::chrono::milliseconds cleanup_interval{5000};
};

// Where workers report the hosts they create; the main-thread discovery
// plugs itself in. Only taken when a new destination shows up.
struct OriginalDstHostSink {
  std::mutex mu;
  std::function<void(HostConstSharedPtr)> add;
};

class OriginalDstLbFactory : public LoadBalancerFactory {
 public:
  struct Known {
    HostConstSharedPtr host;
    // Set by workers on every pick; the cleanup clears it.
    std::shared_ptr<std::atomic<bool>> used;
  };
  OriginalDstLbFactory(OriginalDstSettings settings, std::shared_ptr<OriginalDstHostSink> sink,
                       std::vector<Known> known);

  std::unique_ptr<LoadBalancer> create(const Cluster& cluster) const override;
  std::shared_ptr<const LoadBalancerFactory> forHosts(const Cluster& cluster) const override;

  const OriginalDstSettings& settings() const { return settings_; }
  const std::shared_ptr<OriginalDstHostSink>& sink() const { return sink_; }
  const Known* find(const std::string& address) const;
  // Worker: keeps a host made for this version alive as long as the version.
  void adopt(HostConstSharedPtr host) const;

 private:
  const OriginalDstSettings settings_;
  const std::shared_ptr<OriginalDstHostSink> sink_;
  absl::flat_hash_map<std::string, Known> known_;
  mutable std::mutex created_mu_;
  mutable std::vector<HostConstSharedPtr> created_;
};

// The settings from the cluster config (cleanup_interval, original_dst_lb_config).
absl::StatusOr<OriginalDstSettings> parseOriginalDstConfig(const envoy::config::cluster::v3::Cluster& config,
                                                           const std::string& path);

std::unique_ptr<HostDiscovery> createOriginalDstDiscovery(ClusterConstSharedPtr cluster, event::Dispatcher& dispatcher,
                                                          HostsChangedCallback on_change);

}  // namespace courier::upstream
