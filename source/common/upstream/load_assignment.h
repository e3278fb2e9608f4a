// What a ClusterLoadAssignment says beyond its endpoints' addresses, shared by
// static load_assignment and EDS: each LocalityLbEndpoints' priority and
// locality (interned into the cluster's locality table) and the policy's
// overprovisioning factor. Errors name the field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "source/common/upstream/cluster.h"

namespace courier::upstream {

struct LocalityPlacement {
  uint16_t priority = 0;
  uint16_t locality = 0;
};

// Validates endpoints[i] (at `path`) and finds or adds its locality in
// `table`; a locality listed twice keeps its first weight.
absl::StatusOr<LocalityPlacement> placeLocality(const envoy::config::endpoint::v3::LocalityLbEndpoints& endpoints,
                                                const std::string& path, std::vector<LocalityEntry>& table);

// policy.overprovisioning_factor, 140 when unset; `path` names the
// assignment.
absl::StatusOr<uint32_t> overprovisioningFactor(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
                                                const std::string& path);

}  // namespace courier::upstream
