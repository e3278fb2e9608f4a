#include "source/server/dynamic_resources.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/config/ads_config.h"
#include "source/common/config/path_subscription.h"

namespace courier::server {
namespace {

// V2 is deprecated in the API, which is why it must be named to be refused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr auto kApiV2 = envoy::config::core::v3::V2;
#pragma GCC diagnostic pop

using envoy::config::core::v3::ApiConfigSource;
using envoy::config::core::v3::ConfigSource;

// Envoy's default ConfigSource.initial_fetch_timeout.
constexpr std::chrono::milliseconds kDefaultInitialFetchTimeout{15000};

// The gRPC target of a static cluster's first endpoint.
absl::StatusOr<std::string> clusterTarget(const upstream::ClusterManager& clusters, const std::string& name) {
  auto it = clusters.entries().find(name);
  if (it == clusters.entries().end()) {
    return absl::NotFoundError(absl::StrCat("'", name, "' is not a cluster in static_resources.clusters"));
  }
  if (it->second.added_via_api) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' must be a static cluster"));
  }
  // From the config rather than the built hosts: a STRICT_DNS cluster has
  // none before its first resolution, and gRPC resolves the name itself.
  const auto proto = it->second.proto();
  for (const auto& locality : proto.load_assignment().endpoints()) {
    for (const auto& endpoint : locality.lb_endpoints()) {
      if (!endpoint.endpoint().address().has_socket_address()) continue;
      const auto& address = endpoint.endpoint().address().socket_address();
      const std::string& host = address.address();
      const bool ipv6 = host.find(':') != std::string::npos;
      return absl::StrCat(ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":", address.port_value());
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("cluster '", name, "' has no socket_address endpoint"));
}

}  // namespace

envoy::config::core::v3::Node localNode(const envoy::config::core::v3::Node& bootstrap_node, const Options& options) {
  envoy::config::core::v3::Node node = bootstrap_node;
  if (!options.service_node.empty()) node.set_id(options.service_node);
  if (!options.service_cluster.empty()) node.set_cluster(options.service_cluster);
  if (!options.service_zone.empty()) node.mutable_locality()->set_zone(options.service_zone);
  node.set_user_agent_name("envoy");
  auto* version = node.mutable_user_agent_build_version()->mutable_version();
  version->set_major_number(kEnvoyCompatibleVersion[0]);
  version->set_minor_number(kEnvoyCompatibleVersion[1]);
  version->set_patch(kEnvoyCompatibleVersion[2]);
  // No client_features: each one is a promise (e.g. that we ignore
  // overprovisioning) a control plane acts on; we claim none we do not keep.
  return node;
}

namespace {

// The refusals createSubscription makes for a non-file source, shared with validate.
absl::Status checkApiSource(const ConfigSource& source, const std::string& field_path, bool have_ads) {
  if (source.config_source_specifier_case() == ConfigSource::kApiConfigSource) {
    // A stream per resource type is a second client beside the mux; every
    // control plane we target (Istio, go-control-plane) serves ADS.
    return absl::UnimplementedError(
        absl::StrCat(field_path, ".api_config_source: a per-type gRPC/REST source is not supported; use "
                                 "dynamic_resources.ads_config with ",
                     field_path, ": {ads: {}}, or path_config_source"));
  }
  if (source.config_source_specifier_case() != ConfigSource::kAds) return absl::OkStatus();
  if (!have_ads) {
    return absl::InvalidArgumentError(
        absl::StrCat(field_path, ".ads: needs dynamic_resources.ads_config to name the ADS server"));
  }
  if (source.resource_api_version() == kApiV2) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".resource_api_version: V2 is not supported; use V3"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status checkConfigSource(const ConfigSource& source, const std::string& field_path, bool have_ads) {
  return checkApiSource(source, field_path, have_ads);
}

namespace {

absl::StatusOr<config::GrpcMuxOptions> adsOptions(const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
                                                  const envoy::config::core::v3::Node& node,
                                                  const upstream::ClusterManager& clusters) {
  const std::string field = "dynamic_resources.ads_config";
  const ApiConfigSource& ads = bootstrap.dynamic_resources().ads_config();
  if (ads.transport_api_version() == kApiV2) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".transport_api_version: V2 is not supported; use V3"));
  }
  return config::grpcMuxOptionsFromConfig(
      ads, node, field, [&clusters](const std::string& name) { return clusterTarget(clusters, name); });
}

}  // namespace

absl::Status checkDynamicResources(const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
                                   const upstream::ClusterManager& clusters) {
  const auto& dynamic = bootstrap.dynamic_resources();
  if (dynamic.has_ads_config()) {
    if (auto options = adsOptions(bootstrap, bootstrap.node(), clusters); !options.ok()) return options.status();
  }
  if (dynamic.has_cds_config()) {
    if (auto s = checkApiSource(dynamic.cds_config(), "dynamic_resources.cds_config", dynamic.has_ads_config());
        !s.ok()) {
      return s;
    }
  }
  if (dynamic.has_lds_config()) {
    return checkApiSource(dynamic.lds_config(), "dynamic_resources.lds_config", dynamic.has_ads_config());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<config::GrpcMux>> createAdsMux(const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
                                                              const Options& options,
                                                              const upstream::ClusterManager& clusters,
                                                              event::Dispatcher& dispatcher, stats::Store& stats) {
  const auto& dynamic = bootstrap.dynamic_resources();
  if (!dynamic.has_ads_config()) return std::unique_ptr<config::GrpcMux>();
  auto mux_options = adsOptions(bootstrap, localNode(bootstrap.node(), options), clusters);
  if (!mux_options.ok()) return mux_options.status();
  stats::Gauge& connected = stats.gauge("control_plane.connected_state");
  connected.set(0);
  mux_options->on_connection_state = [&connected](bool up) { connected.set(up ? 1 : 0); };
  return std::make_unique<config::GrpcMux>(dispatcher, std::move(*mux_options));
}

absl::StatusOr<std::unique_ptr<config::Subscription>> createSubscription(
    const ConfigSource& source, const std::string& field_path, event::Dispatcher& dispatcher, config::GrpcMux* ads,
    const std::string& type_url, config::SubscriptionCallbacks& callbacks) {
  if (auto s = checkApiSource(source, field_path, ads != nullptr); !s.ok()) return s;
  if (source.config_source_specifier_case() != ConfigSource::kAds) {
    return config::subscriptionFromConfigSource(source, field_path, dispatcher, type_url, callbacks);
  }
  std::chrono::milliseconds timeout = kDefaultInitialFetchTimeout;
  if (source.has_initial_fetch_timeout()) {
    timeout = std::chrono::milliseconds(
        google::protobuf::util::TimeUtil::DurationToMilliseconds(source.initial_fetch_timeout()));
  }
  return ads->subscription(type_url, callbacks, timeout);
}

absl::Status PausingCallbacks::onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                                              const std::string& version_info) {
  pause();
  absl::Status status = inner_.onConfigUpdate(resources, version_info);
  resume();
  return status;
}

absl::Status PausingCallbacks::onConfigUpdate(const std::vector<config::DecodedResource>& added,
                                              const std::vector<std::string>& removed,
                                              const std::string& system_version_info) {
  pause();
  absl::Status status = inner_.onConfigUpdate(added, removed, system_version_info);
  resume();
  return status;
}

void PausingCallbacks::pause() {
  for (const auto& type : paused_types_) mux_.pause(type);
}

void PausingCallbacks::resume() {
  for (auto it = paused_types_.rbegin(); it != paused_types_.rend(); ++it) mux_.resume(*it);
}

}  // namespace courier::server
