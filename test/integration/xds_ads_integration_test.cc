// LDS and CDS over ADS end to end: the real courier binary against the fake
// management server from test/common/config, state of the world and delta,
// through updates, a NACK, and the control plane going away and coming back.
#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "test/integration/xds_test_util.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

envoy::config::cluster::v3::Cluster cluster(const std::string& name, uint16_t port) {
  envoy::config::cluster::v3::Cluster c;
  const std::string yaml = "name: " + name + R"(
connect_timeout: 1s
type: STATIC
load_assignment:
  cluster_name: )" + name + R"(
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
                           std::to_string(port) + "}}}\n";
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, c).ok());
  return c;
}

// An HTTP listener on `port` routing everything to `cluster_name`.
envoy::config::listener::v3::Listener listener(uint16_t port, const std::string& cluster_name) {
  envoy::config::listener::v3::Listener l;
  const std::string yaml = R"(name: ads
address: {socket_address: {address: 127.0.0.1, port_value: )" + std::to_string(port) + R"(}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ads
      route_config:
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: {prefix: "/"}
            route: {cluster: )" + cluster_name + R"(}
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, l).ok());
  return l;
}

class XdsAdsIntegrationTest : public AdsIntegrationTest {
 protected:

  std::string bootstrap(const std::string& extra_ads = "") const {
    return R"(node:
  id: node-1
  cluster: mesh
  metadata: {team: edge}
  locality: {region: r1, zone: z1}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: )" + std::string(delta() ? "DELTA_GRPC" : "GRPC") + R"(
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc: {cluster_name: xds}
)" + extra_ads + R"(  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
           std::to_string(ads_port_) + "}}}\n";
  }

  // Serves clusters a and b, then the listener routing to `route_to`.
  bool serveInitial(size_t& cursor, const std::string& route_to) {
    return serve(0, cursor, kClusterType, "c1", std::vector{cluster("a", a_.port()), cluster("b", b_.port())}) &&
           serve(0, cursor, kListenerType, "l1", std::vector{listener(port_, route_to)}) &&
           courier_.waitForStat("listener_manager.lds.update_success", 1);
  }

  std::string get() {
    HttpResponse r = httpRequest(port_, "GET", "/");
    return std::to_string(r.status) + " " + r.body;
  }

  TcpServer a_{named("a")};
  TcpServer b_{named("b")};
};

INSTANTIATE_TEST_SUITE_P(Protocols, XdsAdsIntegrationTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

TEST_P(XdsAdsIntegrationTest, FirstRequestIsCdsWithTheBootstrapNode) {
  ASSERT_TRUE(courier_.start(bootstrap(), {"--service-node", "flag-node"})) << courier_.log();
  envoy::config::core::v3::Node node;
  std::string type_url;
  if (delta()) {
    DeltaDiscoveryRequest r;
    ASSERT_TRUE(ads_->waitDeltaRequest(0, 0, &r)) << courier_.log();
    node = r.node();
    type_url = r.type_url();
  } else {
    DiscoveryRequest r;
    ASSERT_TRUE(ads_->waitSotwRequest(0, 0, &r)) << courier_.log();
    node = r.node();
    type_url = r.type_url();
  }
  EXPECT_EQ(type_url, kClusterType);
  // --service-node wins over node.id, as in Envoy; the rest is the bootstrap's.
  EXPECT_EQ(node.id(), "flag-node");
  EXPECT_EQ(node.cluster(), "mesh");
  EXPECT_EQ(node.locality().zone(), "z1");
  EXPECT_EQ(node.metadata().fields().at("team").string_value(), "edge");
  EXPECT_EQ(node.user_agent_name(), "envoy");
  EXPECT_EQ(node.user_agent_build_version().version().major_number(), 1u);
  EXPECT_EQ(node.user_agent_build_version().version().minor_number(), 32u);
  EXPECT_EQ(node.client_features_size(), 0);
  // Not live before CDS and LDS arrived.
  EXPECT_EQ(courier_.admin("/ready").status, 503);
}

TEST_P(XdsAdsIntegrationTest, ServedListenerRoutesThroughServedCluster) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serveInitial(cursor, "a")) << courier_.log();
  EXPECT_EQ(get(), "200 a");
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  EXPECT_EQ(courier_.stat("cluster_manager.cds.update_success"), 1u);
  EXPECT_EQ(courier_.stat("control_plane.connected_state"), 1u);
  const std::string dump = courier_.admin("/config_dump").body;
  EXPECT_THAT(dump, HasSubstr("\"version_info\": \"l1\""));
  EXPECT_THAT(dump, HasSubstr("\"version_info\": \"c1\""));
}

TEST_P(XdsAdsIntegrationTest, UpdatedRouteApplies) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serveInitial(cursor, "a")) << courier_.log();
  ASSERT_EQ(get(), "200 a");
  ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{listener(port_, "b")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(get(), "200 b");
}

TEST_P(XdsAdsIntegrationTest, BadListenerIsNackedAndOldOneKeepsServing) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serveInitial(cursor, "a")) << courier_.log();
  ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{listener(port_, "missing")}));
  const std::string error = nextNack(0, cursor, kListenerType);
  EXPECT_THAT(error, HasSubstr("route_config"));
  EXPECT_THAT(error, HasSubstr("missing"));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_rejected", 1)) << courier_.log();
  EXPECT_EQ(get(), "200 a");
  // Counted once, by the listener manager that refused.
  EXPECT_EQ(courier_.stat("listener_manager.lds.update_attempt"), 2u);
  EXPECT_EQ(courier_.stat("listener_manager.lds.update_success"), 1u);
  EXPECT_THAT(courier_.admin("/config_dump").body, HasSubstr("\"version_info\": \"l1\""));
}

TEST_P(XdsAdsIntegrationTest, ControlPlaneGoneAndBack) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serveInitial(cursor, "a")) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("control_plane.connected_state", 1)) << courier_.log();

  ads_.reset();
  ASSERT_TRUE(courier_.waitForStat("control_plane.connected_state", 0)) << courier_.log();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(get(), "200 a");

  ads_ = std::make_unique<FakeAdsServer>(ads_port_);
  ASSERT_EQ(ads_->address(), "127.0.0.1:" + std::to_string(ads_port_));
  size_t again = 0;
  if (delta()) {
    // The client tells the new server what it holds.
    DeltaDiscoveryRequest cds;
    ASSERT_TRUE(nextDelta(0, again, kClusterType, &cds)) << courier_.log();
    EXPECT_EQ(cds.initial_resource_versions().at("a"), "c1");
    EXPECT_EQ(cds.initial_resource_versions().at("b"), "c1");
    DeltaDiscoveryRequest lds;
    again = 0;
    ASSERT_TRUE(nextDelta(0, again, kListenerType, &lds)) << courier_.log();
    EXPECT_EQ(lds.initial_resource_versions().at("ads"), "l1");
  } else {
    DiscoveryRequest cds;
    ASSERT_TRUE(nextSotw(0, again, kClusterType, &cds)) << courier_.log();
    EXPECT_EQ(cds.version_info(), "c1");
    DiscoveryRequest lds;
    again = 0;
    ASSERT_TRUE(nextSotw(0, again, kListenerType, &lds)) << courier_.log();
    EXPECT_EQ(lds.version_info(), "l1");
  }
  ASSERT_TRUE(push(0, kClusterType, "c2", std::vector{cluster("a", a_.port()), cluster("b", b_.port())}));
  ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{listener(port_, "b")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("control_plane.connected_state"), 1u);
  EXPECT_EQ(get(), "200 b");
}

TEST_P(XdsAdsIntegrationTest, InitialFetchTimeoutLetsTheServerGoLiveWithoutAControlPlane) {
  ads_.reset();
  std::string yaml = bootstrap();
  // A short timeout on both types: the control plane never answers.
  const std::string ads_line = "  cds_config: {ads: {}, resource_api_version: V3}\n";
  yaml.replace(yaml.find(ads_line), ads_line.size(),
               "  cds_config: {ads: {}, resource_api_version: V3, initial_fetch_timeout: 0.2s}\n");
  const std::string lds_line = "  lds_config: {ads: {}, resource_api_version: V3}\n";
  yaml.replace(yaml.find(lds_line), lds_line.size(),
               "  lds_config: {ads: {}, resource_api_version: V3, initial_fetch_timeout: 0.2s}\n");
  ASSERT_TRUE(courier_.start(yaml)) << courier_.log();
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  EXPECT_EQ(courier_.stat("control_plane.connected_state"), 0u);
  // The timeout, then (Envoy counts them too) each failed reconnection.
  EXPECT_GE(courier_.stat("listener_manager.lds.update_failure").value_or(0), 1u);
  EXPECT_GE(courier_.stat("cluster_manager.cds.update_failure").value_or(0), 1u);
}

TEST(XdsAdsConfigTest, PerTypeGrpcSourceIsRefusedNamingTheField) {
  std::string output;
  const std::string dir = tempDir();
  writeFile(dir + "/c.yaml", R"(dynamic_resources:
  lds_config:
    api_config_source:
      api_type: GRPC
      transport_api_version: V3
      grpc_services: [{google_grpc: {target_uri: "127.0.0.1:1", stat_prefix: x}}]
)");
  EXPECT_NE(CourierProcess::runToExit({"-c", dir + "/c.yaml"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("dynamic_resources.lds_config.api_config_source"));
}

}  // namespace
}  // namespace courier::test
