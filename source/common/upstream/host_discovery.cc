#include "source/common/upstream/host_discovery.h"

#include "source/common/upstream/dns_cluster.h"
#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/original_dst_cluster.h"
#include "source/common/upstream/priority_lb.h"

namespace courier::upstream {

using ProtoCluster = envoy::config::cluster::v3::Cluster;

ClusterConstSharedPtr withHosts(const Cluster& base, std::vector<HostConstSharedPtr> hosts) {
  auto next = std::make_shared<Cluster>(base);
  next->hosts = std::move(hosts);
  if (next->lb_factory != nullptr) next->lb_factory = next->lb_factory->forHosts(*next);
  buildPriorityLayout(*next);
  if (next->stats != nullptr) next->stats->membership_total.set(next->hosts.size());
  // Hosts that stay keep their flags (active checks, outlier ejection): the
  // counts come from them, not from the previous version.
  recountHealth(*next);
  return next;
}

absl::StatusOr<std::unique_ptr<HostDiscovery>> createHostDiscovery(const ProtoCluster& config, const std::string& path,
                                                                   ClusterConstSharedPtr cluster,
                                                                   event::Dispatcher& dispatcher, stats::Store& stats,
                                                                   HostsChangedCallback on_change) {
  if (config.has_cluster_type()) return nullptr;
  switch (config.type()) {
    case ProtoCluster::STRICT_DNS:
    case ProtoCluster::LOGICAL_DNS: {
      auto dns = parseDnsClusterConfig(config, path);
      if (!dns.ok()) return dns.status();
      return createDnsDiscovery(std::move(*dns), std::move(cluster), dispatcher, stats, std::move(on_change));
    }
    case ProtoCluster::ORIGINAL_DST:
      return createOriginalDstDiscovery(std::move(cluster), dispatcher, std::move(on_change));
    default:
      return nullptr;
  }
}

}  // namespace courier::upstream
