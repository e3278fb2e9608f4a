// Reads the bootstrap's dynamic_resources.ads_config (an ApiConfigSource)
// into GrpcMux options. What we cannot honour (TLS channel credentials, REST)
// is refused with the field path rather than connecting some other way.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "source/common/config/grpc_mux.h"

namespace courier::config {

// Maps an envoy_grpc cluster_name to a gRPC target ("10.0.0.1:15010"); the
// cluster manager supplies it from the static cluster's single endpoint.
using ClusterTargetResolver = std::function<absl::StatusOr<std::string>(const std::string& cluster_name)>;

absl::StatusOr<GrpcMuxOptions> grpcMuxOptionsFromConfig(const envoy::config::core::v3::ApiConfigSource& config,
                                                        const envoy::config::core::v3::Node& node,
                                                        const std::string& field_path,
                                                        const ClusterTargetResolver& resolve_cluster);

}  // namespace courier::config
