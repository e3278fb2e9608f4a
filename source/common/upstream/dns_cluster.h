// STRICT_DNS and LOGICAL_DNS clusters: the endpoints' names are looked up
// with c-ares on the main thread and looked up again every dns_refresh_rate
// (or TTL, or failure back-off). STRICT_DNS makes every address a host;
// LOGICAL_DNS keeps one host at the first address. Hosts whose address stays
// keep their identity across versions. The discovery is warm (the cluster
// initialized, in Envoy's words) once a first lookup answered or failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "source/common/network/dns/dns_resolver.h"
#include "source/common/upstream/host_discovery.h"

namespace courier::upstream {

struct DnsClusterConfig {
  struct Target {
    std::string name;
    uint32_t port = 0;
    uint32_t weight = 1;
  };
  bool logical = false;
  network::DnsResolverOptions resolver;
  network::DnsLookupFamily family = network::DnsLookupFamily::Auto;
  std::chrono::milliseconds refresh_rate{5000};
  bool respect_dns_ttl = false;
  // dns_failure_refresh_rate; unset: failures retry at refresh_rate.
  std::optional<std::chrono::milliseconds> failure_base;
  std::chrono::milliseconds failure_max{0};
  std::vector<Target> targets;
};

// Validates the DNS parts of a STRICT_DNS/LOGICAL_DNS cluster; errors name
// the field under `path`.
absl::StatusOr<DnsClusterConfig> parseDnsClusterConfig(const envoy::config::cluster::v3::Cluster& config,
                                                       const std::string& path);

absl::StatusOr<std::unique_ptr<HostDiscovery>> createDnsDiscovery(DnsClusterConfig config,
                                                                  ClusterConstSharedPtr cluster,
                                                                  event::Dispatcher& dispatcher,
                                                                  stats::Store& stats,
                                                                  HostsChangedCallback on_change);

}  // namespace courier::upstream
