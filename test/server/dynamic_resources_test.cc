// How bootstrap dynamic_resources become an ADS client and subscriptions:
// the node sent, the envoy_grpc cluster lookup, and what is refused.
#include "source/server/dynamic_resources.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"

namespace courier::server {
namespace {

using ::testing::HasSubstr;

class NoCallbacks : public config::SubscriptionCallbacks {
 public:
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>&, const std::string&) override {
    return absl::OkStatus();
  }
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>&, const std::vector<std::string>&,
                              const std::string&) override {
    return absl::OkStatus();
  }
  void onConfigUpdateFailed(config::UpdateFailureReason, const absl::Status&) override {}
};

class DynamicResourcesTest : public ::testing::Test {
 protected:
  envoy::config::bootstrap::v3::Bootstrap bootstrap(const std::string& yaml) {
    envoy::config::bootstrap::v3::Bootstrap b;
    EXPECT_TRUE(protobuf::loadFromYamlString(yaml, b).ok()) << yaml;
    EXPECT_TRUE(clusters_.addStaticClusters(b.static_resources().clusters()).ok());
    return b;
  }

  static std::string adsBootstrap(const std::string& service) {
    return R"(dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [)" + service + R"(]
  lds_config: {ads: {}}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: "::1", port_value: 15010}}}
)";
  }

  event::Dispatcher main_{"main"};
  stats::Store store_;
  thread_local_::SnapshotSlot<upstream::ClusterSet> slot_{main_, {}};
  upstream::ClusterManager clusters_{store_, slot_};
  NoCallbacks callbacks_;
};

TEST_F(DynamicResourcesTest, ServiceFlagsOverrideTheBootstrapNode) {
  envoy::config::core::v3::Node node;
  node.set_id("from-bootstrap");
  node.set_cluster("bootstrap-cluster");
  node.mutable_locality()->set_region("r");
  Options options;
  options.service_node = "flag-node";
  options.service_zone = "flag-zone";
  const auto local = localNode(node, options);
  EXPECT_EQ(local.id(), "flag-node");
  EXPECT_EQ(local.cluster(), "bootstrap-cluster");
  EXPECT_EQ(local.locality().region(), "r");
  EXPECT_EQ(local.locality().zone(), "flag-zone");
  EXPECT_EQ(local.user_agent_name(), "envoy");
  EXPECT_EQ(local.user_agent_build_version().version().major_number(), 1u);
  EXPECT_EQ(local.user_agent_build_version().version().minor_number(), 32u);
  EXPECT_EQ(local.client_features_size(), 0);
}

TEST_F(DynamicResourcesTest, EnvoyGrpcClusterResolvesToItsFirstEndpoint) {
  auto b = bootstrap(adsBootstrap("{envoy_grpc: {cluster_name: xds}}"));
  EXPECT_TRUE(checkDynamicResources(b, clusters_).ok());
  auto mux = createAdsMux(b, Options{}, clusters_, main_, store_);
  ASSERT_TRUE(mux.ok()) << mux.status();
  EXPECT_NE(*mux, nullptr);
  EXPECT_EQ(store_.gauge("control_plane.connected_state").value(), 0u);
}

TEST_F(DynamicResourcesTest, UnknownEnvoyGrpcClusterIsRefusedNamingTheField) {
  auto b = bootstrap(adsBootstrap("{envoy_grpc: {cluster_name: nope}}"));
  absl::Status s = checkDynamicResources(b, clusters_);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("nope"));
  EXPECT_FALSE(createAdsMux(b, Options{}, clusters_, main_, store_).ok());
}

TEST_F(DynamicResourcesTest, AdsSourceWithoutAdsConfigIsRefused) {
  auto b = bootstrap("dynamic_resources: {cds_config: {ads: {}}}");
  absl::Status s = checkDynamicResources(b, clusters_);
  EXPECT_THAT(std::string(s.message()), HasSubstr("dynamic_resources.cds_config.ads"));
  auto sub = createSubscription(b.dynamic_resources().cds_config(), "dynamic_resources.cds_config", main_, nullptr,
                                config::type_url::kCluster, callbacks_);
  EXPECT_FALSE(sub.ok());
}

TEST_F(DynamicResourcesTest, PerTypeGrpcSourceIsRefusedNamingTheField) {
  auto b = bootstrap(R"(dynamic_resources:
  lds_config:
    api_config_source:
      api_type: DELTA_GRPC
      grpc_services: [{google_grpc: {target_uri: "127.0.0.1:1", stat_prefix: x}}]
)");
  absl::Status s = checkDynamicResources(b, clusters_);
  EXPECT_THAT(std::string(s.message()), HasSubstr("dynamic_resources.lds_config.api_config_source"));
}

TEST_F(DynamicResourcesTest, AdsSubscriptionComesFromTheMux) {
  auto b = bootstrap(adsBootstrap("{google_grpc: {target_uri: \"127.0.0.1:1\", stat_prefix: ads}}"));
  auto mux = createAdsMux(b, Options{}, clusters_, main_, store_);
  ASSERT_TRUE(mux.ok()) << mux.status();
  auto sub = createSubscription(b.dynamic_resources().lds_config(), "dynamic_resources.lds_config", main_,
                                mux->get(), config::type_url::kListener, callbacks_);
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_NE(*sub, nullptr);
}

}  // namespace
}  // namespace courier::server
