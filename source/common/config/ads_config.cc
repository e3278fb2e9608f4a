#include "source/common/config/ads_config.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace courier::config {

using envoy::config::core::v3::ApiConfigSource;

absl::StatusOr<GrpcMuxOptions> grpcMuxOptionsFromConfig(const ApiConfigSource& config,
                                                        const envoy::config::core::v3::Node& node,
                                                        const std::string& field_path,
                                                        const ClusterTargetResolver& resolve_cluster) {
  GrpcMuxOptions options;
  options.node = node;
  options.set_node_on_first_message_only = config.set_node_on_first_message_only();
  switch (config.api_type()) {
    // Envoy picks the delta mux for either delta type and the state-of-the-world
    // one for the other gRPC types; ADS is implied by ads_config itself.
    case ApiConfigSource::GRPC:
    case ApiConfigSource::AGGREGATED_GRPC:
      options.protocol = AdsProtocol::kStateOfTheWorld;
      break;
    case ApiConfigSource::DELTA_GRPC:
    case ApiConfigSource::AGGREGATED_DELTA_GRPC:
      options.protocol = AdsProtocol::kDelta;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field_path, ".api_type: ", ApiConfigSource::ApiType_Name(config.api_type()),
                       " is not a gRPC transport; ADS needs GRPC or DELTA_GRPC"));
  }
  if (config.cluster_names_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field_path, ".cluster_names: a gRPC config source names its server in grpc_services"));
  }
  if (config.grpc_services_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(field_path, ".grpc_services: exactly one gRPC service is supported, got ",
                     config.grpc_services_size()));
  }
  const auto& service = config.grpc_services(0);
  const std::string service_path = absl::StrCat(field_path, ".grpc_services[0]");
  if (service.has_google_grpc()) {
    const auto& google = service.google_grpc();
    if (google.target_uri().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(service_path, ".google_grpc.target_uri: must be set"));
    }
    if (google.has_channel_credentials() || google.call_credentials_size() > 0) {
      return absl::UnimplementedError(
          absl::StrCat(service_path, ".google_grpc: channel and call credentials are not supported yet"));
    }
    options.target_uri = google.target_uri();
  } else if (service.has_envoy_grpc()) {
    const std::string& cluster = service.envoy_grpc().cluster_name();
    if (cluster.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(service_path, ".envoy_grpc.cluster_name: must be set"));
    }
    if (!resolve_cluster) {
      return absl::UnimplementedError(absl::StrCat(service_path, ".envoy_grpc: no cluster resolver available"));
    }
    auto target = resolve_cluster(cluster);
    if (!target.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(service_path, ".envoy_grpc.cluster_name: ", target.status().message()));
    }
    options.target_uri = *target;
    // Envoy: unset or 0 is no limit.
    const auto& limit = service.envoy_grpc().max_receive_message_length();
    if (service.envoy_grpc().has_max_receive_message_length() && limit.value() > 0) {
      options.max_receive_message_length =
          static_cast<int>(std::min<uint32_t>(limit.value(), std::numeric_limits<int>::max()));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(service_path, ": set envoy_grpc or google_grpc"));
  }
  for (int i = 0; i < service.initial_metadata_size(); ++i) {
    const auto& header = service.initial_metadata(i);
    // gRPC refuses a call whose metadata keys are not lowercase tokens;
    // better to say so at config time than fail every stream.
    const std::string key = absl::AsciiStrToLower(std::string(header.key()));
    const bool valid = !key.empty() && key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") ==
                                           std::string::npos;
    if (!valid || key[0] == ':') {
      return absl::InvalidArgumentError(
          absl::StrCat(service_path, ".initial_metadata[", i, "].key: '", header.key(), "' is not a valid header name"));
    }
    options.initial_metadata.emplace_back(key, header.value().empty() ? header.raw_value() : header.value());
  }
  return options;
}

}  // namespace courier::config
