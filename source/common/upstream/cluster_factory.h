// Turns an Envoy v3 Cluster into the immutable upstream::Cluster the workers
// use, checking what Envoy's validation would reject. Errors carry the field
// path given by the caller (e.g. "static_resources.clusters[2]").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/cluster.h"

namespace courier::tls {
class SecretManager;
class SecretProvider;
}  // namespace courier::tls

namespace courier::upstream {

// `secrets` resolves the transport socket's SDS references (null: refused);
// the secrets it uses are appended to `secret_providers` when set.
// `zone_routing`: whether the server has a local cluster to route by zone
// against; without one no cluster carries zone state or zone stats.
absl::StatusOr<ClusterConstSharedPtr> createCluster(
    const envoy::config::cluster::v3::Cluster& config, const std::string& path, stats::Store& stats,
    tls::SecretManager* secrets = nullptr,
    std::vector<std::shared_ptr<tls::SecretProvider>>* secret_providers = nullptr, bool zone_routing = true);

}  // namespace courier::upstream
