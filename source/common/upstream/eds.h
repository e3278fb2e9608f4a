// EDS: a cluster's hosts from a ClusterLoadAssignment. Hosts that stay from
// one assignment to the next keep their Host object, so the workers' upstream
// pools keyed by it (and their connections) carry over.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "source/common/upstream/cluster.h"

namespace courier::upstream {

struct EdsHosts {
  // Every endpoint (all priorities) by "address:port", including those
  // not picked: the identities the next assignment reuses.
  absl::flat_hash_map<std::string, HostConstSharedPtr> all;
  // Every endpoint in assignment order, whatever its health_status (as
  // Envoy keeps them), and the EDS health flag each is to carry
  // (edsHealthFlag()): clusterWithAssignment() sets them on the hosts.
  std::vector<HostConstSharedPtr> hosts;
  std::vector<uint32_t> eds_flags;
  // The localities hosts name (Host::locality indexes it) and the policy's
  // overprovisioning factor.
  std::vector<LocalityEntry> localities;
  uint32_t overprovisioning_factor = 140;
};

// One lb_endpoint's address and weight, validated; errors name the field
// under `path` (the lb_endpoint's own path). `address_hint` is appended to
// an address error (static clusters suggest a DNS cluster type for names).
struct LbEndpointSpec {
  network::Address address;
  uint32_t weight = 1;
};
absl::StatusOr<LbEndpointSpec> parseLbEndpoint(const envoy::config::endpoint::v3::LbEndpoint& lb,
                                               const std::string& path, std::string_view address_hint = "");

// Validates the whole assignment (errors name the field under `path`) and
// builds its hosts with their priority and locality, reusing those of
// `previous` (whose localities index `previous_localities`) when address,
// weight, hostname, priority and locality did not change.
absl::StatusOr<EdsHosts> hostsFromAssignment(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
                                             const std::string& path,
                                             const absl::flat_hash_map<std::string, HostConstSharedPtr>& previous,
                                             const std::vector<LocalityEntry>& previous_localities = {});

// The health flag an lb_endpoint's health_status gives its host, as Envoy's:
// kFailedEdsHealth for UNHEALTHY, DRAINING and TIMEOUT, kDegradedEdsHealth
// for DEGRADED, none for HEALTHY and UNKNOWN.
uint32_t edsHealthFlag(envoy::config::core::v3::HealthStatus status);

// A new version of `cluster` serving an assignment (its hosts, localities
// and overprovisioning factor), with the same settings (and settings_id) and
// a load-balancer factory rebuilt for the hosts. Sets each host's EDS health flags (hosts kept from the version it
// replaces included, so a kept host's flag follows its health_status) and
// recounts the new version's health and membership gauges.
ClusterConstSharedPtr clusterWithAssignment(const Cluster& cluster, const EdsHosts& hosts);

}  // namespace courier::upstream
