// Reads a Cluster's lb_policy and its lb_config (least_request_lb_config,
// ring_hash_lb_config, maglev_lb_config) and builds the cluster version's
// shared load-balancing state. Main thread, once the hosts are known.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/load_balancer.h"

namespace courier::upstream {

// nullptr for round robin (the worker default). Errors carry path + field.
absl::StatusOr<std::shared_ptr<const LoadBalancerFactory>> createLoadBalancerFactory(
    const envoy::config::cluster::v3::Cluster& config, const std::string& path, const Cluster& cluster);

}  // namespace courier::upstream
