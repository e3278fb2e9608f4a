// Turns bootstrap dynamic_resources into running xDS sources: the ADS client
// (ads_config) and the CDS/LDS subscriptions, from files or over ADS. The
// server owns what these return; nothing here starts a stream by itself.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "source/common/config/grpc_mux.h"
#include "source/common/config/subscription.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/cluster_manager.h"
#include "source/server/options.h"

namespace courier::server {

// The Envoy release whose protocol and config we match. Control planes
// (Istio) gate features on the node's user_agent_build_version, so we report
// this rather than our own version.
inline constexpr uint32_t kEnvoyCompatibleVersion[3] = {1, 32, 0};

// The node a control plane sees: bootstrap `node` with --service-node,
// --service-cluster and --service-zone on top, as Envoy applies them.
envoy::config::core::v3::Node localNode(const envoy::config::core::v3::Node& bootstrap_node, const Options& options);

// The ADS client for dynamic_resources.ads_config, or nullptr without one.
// An envoy_grpc cluster_name must name a static cluster: its first endpoint is
// the target. Sets control_plane.connected_state. The mux is not started.
absl::StatusOr<std::unique_ptr<config::GrpcMux>> createAdsMux(const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
                                                              const Options& options,
                                                              const upstream::ClusterManager& clusters,
                                                              event::Dispatcher& dispatcher, stats::Store& stats);

// --mode validate: the checks createAdsMux and createSubscription make on
// ads_config and on ADS/gRPC config sources, without creating anything.
// File sources are left alone (their paths are relative to where it runs).
absl::Status checkDynamicResources(const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
                                   const upstream::ClusterManager& clusters);

// The refusals createSubscription makes for `source` without creating
// anything: per-type API sources, ads without ads_config, V2.
absl::Status checkConfigSource(const envoy::config::core::v3::ConfigSource& source, const std::string& field_path,
                               bool have_ads);

// The subscription `source` asks for (path_config_source, path or ads). `ads`
// may be null when there is no ads_config. A non-aggregated
// api_config_source (its own gRPC stream per type) is refused naming the field.
absl::StatusOr<std::unique_ptr<config::Subscription>> createSubscription(
    const envoy::config::core::v3::ConfigSource& source, const std::string& field_path, event::Dispatcher& dispatcher,
    config::GrpcMux* ads, const std::string& type_url, config::SubscriptionCallbacks& callbacks);

// Callbacks that hold the requests of the types depending on this one while
// an update of it applies, as Envoy's CDS (EDS, LDS) and LDS (RDS) do, so
// requests caused by the update merge into one per type sent after it.
class PausingCallbacks : public config::SubscriptionCallbacks {
 public:
  PausingCallbacks(config::GrpcMux& mux, config::SubscriptionCallbacks& inner, std::vector<std::string> paused_types)
      : mux_(mux), inner_(inner), paused_types_(std::move(paused_types)) {}

  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                              const std::string& version_info) override;
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& added,
                              const std::vector<std::string>& removed,
                              const std::string& system_version_info) override;
  void onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) override {
    inner_.onConfigUpdateFailed(reason, error);
  }

 private:
  void pause();
  void resume();

  config::GrpcMux& mux_;
  config::SubscriptionCallbacks& inner_;
  const std::vector<std::string> paused_types_;
};

// CDS pauses EDS and LDS.
class PausingCdsCallbacks : public PausingCallbacks {
 public:
  PausingCdsCallbacks(config::GrpcMux& mux, config::SubscriptionCallbacks& clusters)
      : PausingCallbacks(mux, clusters, {config::type_url::kClusterLoadAssignment, config::type_url::kListener}) {}
};

// LDS pauses RDS.
class PausingLdsCallbacks : public PausingCallbacks {
 public:
  PausingLdsCallbacks(config::GrpcMux& mux, config::SubscriptionCallbacks& listeners)
      : PausingCallbacks(mux, listeners, {config::type_url::kRouteConfiguration}) {}
};

}  // namespace courier::server
