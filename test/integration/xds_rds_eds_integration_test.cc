// RDS and EDS end to end: the real courier binary fetching listeners, route
// tables, clusters and endpoints from the fake ADS server (state of the world
// and delta) or from watched files, with real upstreams counting accepts.
#include <stdio.h>

#include <atomic>
#include <iostream>
#include <map>
#include <thread>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "test/integration/http_test_util.h"
#include "test/integration/load_clients.h"
#include "test/integration/xds_test_util.h"

namespace courier::test {
namespace {

using envoy::config::endpoint::v3::ClusterLoadAssignment;
using ::testing::HasSubstr;

template <class T>
T fromYaml(const std::string& yaml) {
  T out;
  auto s = protobuf::loadFromYamlString(yaml, out);
  EXPECT_TRUE(s.ok()) << s.message() << "\n" << yaml;
  return out;
}

// An EDS cluster whose endpoints come over ADS.
envoy::config::cluster::v3::Cluster edsCluster(const std::string& name) {
  return fromYaml<envoy::config::cluster::v3::Cluster>("name: " + name + R"(
connect_timeout: 1s
type: EDS
eds_cluster_config:
  eds_config: {ads: {}, resource_api_version: V3}
)");
}

struct Endpoint {
  uint16_t port;
  std::string health = "HEALTHY";
  uint32_t weight = 1;
};

std::string endpointsYaml(const std::vector<Endpoint>& endpoints, const std::string& indent) {
  std::string out = indent + "endpoints:\n" + indent + "- lb_endpoints:\n";
  for (const auto& e : endpoints) {
    out += indent + "  - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " +
           std::to_string(e.port) + "}}}\n" + indent + "    health_status: " + e.health + "\n" + indent +
           "    load_balancing_weight: " + std::to_string(e.weight) + "\n";
  }
  return out;
}

ClusterLoadAssignment assignment(const std::string& name, const std::vector<Endpoint>& endpoints) {
  return fromYaml<ClusterLoadAssignment>("cluster_name: " + name + "\n" + endpointsYaml(endpoints, ""));
}

// The route table `name` sending everything to `cluster`; `match` replaces
// the catch-all prefix match.
std::string routeYaml(const std::string& name, const std::string& cluster, const std::string& indent,
                      const std::string& match = "{prefix: \"/\"}") {
  return indent + "name: " + name + "\n" + indent + "virtual_hosts:\n" + indent + "- name: all\n" + indent +
         "  domains: [\"*\"]\n" + indent + "  routes:\n" + indent + "  - match: " + match + "\n" + indent +
         "    route: {cluster: " + cluster + "}\n";
}

envoy::config::route::v3::RouteConfiguration route(const std::string& name, const std::string& cluster,
                                                   const std::string& match = "{prefix: \"/\"}") {
  return fromYaml<envoy::config::route::v3::RouteConfiguration>(routeYaml(name, cluster, "", match));
}

// An HTTP listener on `port` whose table is RDS's `route_config_name` from `source`.
std::string rdsListenerYaml(const std::string& name, uint16_t port, const std::string& route_config_name,
                            const std::string& source) {
  return "name: " + name + R"(
address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(port) + R"(}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: )" + name + R"(
      rds:
        route_config_name: )" + route_config_name + R"(
        config_source: )" + source + R"(
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
}

constexpr char kAdsSource[] = "{ads: {}, resource_api_version: V3}";

// `extra`: more top-level Listener fields, as YAML lines.
envoy::config::listener::v3::Listener rdsListener(uint16_t port, const std::string& route_config_name,
                                                  const std::string& name = "ads", const std::string& extra = "") {
  return fromYaml<envoy::config::listener::v3::Listener>(
      rdsListenerYaml(name, port, route_config_name, kAdsSource) + extra);
}

// True when a connect to the port is refused: nothing listens on it (Envoy
// binds a listener's socket when it is created and listens only once the
// listener goes to the workers).
bool refuses(uint16_t port) { return !TcpClient(port).connected(); }

std::string bodyOf(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

class XdsRdsEdsIntegrationTest : public AdsIntegrationTest {
 protected:
  std::string bootstrap() const { return adsBootstrap(delta(), ads_port_); }

  std::vector<ClusterLoadAssignment> endpoints(const std::vector<Endpoint>& web) const {
    return {assignment("web", web), assignment("api", {{b_.port()}})};
  }

  // CDS (web and api, both EDS), then EDS (web -> a, api -> b), then LDS
  // (one listener naming r1), then RDS (r1 -> web), in Envoy's warming order.
  void serveInitial(size_t& cursor) {
    ASSERT_TRUE(serve(0, cursor, kClusterType, "c1", std::vector{edsCluster("web"), edsCluster("api")}))
        << courier_.log();
    // Both clusters warm until their endpoints arrive; nothing asked for listeners yet.
    ASSERT_TRUE(courier_.waitForStat("cluster_manager.warming_clusters", 2)) << courier_.log();
    for (size_t i = 0; i < ads_->requestCount(0); ++i) {
      std::string type;
      if (delta()) {
        DeltaDiscoveryRequest r;
        ASSERT_TRUE(ads_->waitDeltaRequest(0, i, &r));
        type = r.type_url();
      } else {
        DiscoveryRequest r;
        ASSERT_TRUE(ads_->waitSotwRequest(0, i, &r));
        type = r.type_url();
      }
      EXPECT_NE(type, kListenerType) << "LDS was asked for before the clusters warmed";
    }
    ASSERT_TRUE(serve(0, cursor, kEndpointType, "e1", endpoints({{a_.port()}}))) << courier_.log();
    ASSERT_TRUE(courier_.waitForStat("cluster_manager.warming_clusters", 0)) << courier_.log();
    ASSERT_TRUE(serve(0, cursor, kListenerType, "l1", std::vector{rdsListener(port_, "r1")})) << courier_.log();
    ASSERT_TRUE(serve(0, cursor, kRouteType, "r1v1", std::vector{route("r1", "web")})) << courier_.log();
    ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_success", 1)) << courier_.log();
  }

  std::string fetch() {
    HttpResponse r = httpRequest(port_, "GET", "/");
    return std::to_string(r.status) + " " + r.body;
  }

  TcpServer a_{named("a")};
  TcpServer b_{named("b")};
  TcpServer c_{named("c")};
};

INSTANTIATE_TEST_SUITE_P(Protocols, XdsRdsEdsIntegrationTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

TEST_P(XdsRdsEdsIntegrationTest, InitialFetchOfAllFourTypes) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  EXPECT_EQ(fetch(), "200 a");
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();

  // The RDS and EDS requests named what the listener and clusters asked for.
  std::vector<std::string> rds_names, eds_names;
  for (size_t i = 0; i < ads_->requestCount(0); ++i) {
    if (delta()) {
      DeltaDiscoveryRequest r;
      ASSERT_TRUE(ads_->waitDeltaRequest(0, i, &r));
      auto* names = r.type_url() == kRouteType ? &rds_names : r.type_url() == kEndpointType ? &eds_names : nullptr;
      if (names != nullptr) names->insert(names->end(), r.resource_names_subscribe().begin(), r.resource_names_subscribe().end());
    } else {
      DiscoveryRequest r;
      ASSERT_TRUE(ads_->waitSotwRequest(0, i, &r));
      auto* names = r.type_url() == kRouteType ? &rds_names : r.type_url() == kEndpointType ? &eds_names : nullptr;
      if (names != nullptr) names->insert(names->end(), r.resource_names().begin(), r.resource_names().end());
    }
  }
  EXPECT_THAT(rds_names, ::testing::Contains("r1"));
  EXPECT_THAT(eds_names, ::testing::IsSupersetOf({"web", "api"}));

  EXPECT_EQ(courier_.stat("http.ads.rds.r1.update_attempt"), 1u);
  EXPECT_EQ(courier_.stat("http.ads.rds.r1.update_rejected"), 0u);
  EXPECT_EQ(courier_.stat("cluster.web.update_success"), 1u);
  EXPECT_EQ(courier_.stat("cluster.web.membership_total"), 1u);
  EXPECT_EQ(courier_.stat("cluster.web.membership_healthy"), 1u);
  EXPECT_EQ(courier_.stat("cluster_manager.active_clusters"), 3u);

  const std::string dump = courier_.admin("/config_dump?include_eds").body;
  EXPECT_THAT(dump, HasSubstr("type.googleapis.com/envoy.admin.v3.RoutesConfigDump"));
  EXPECT_THAT(dump, HasSubstr("\"dynamic_route_configs\""));
  EXPECT_THAT(dump, HasSubstr("\"version_info\": \"r1v1\""));
  EXPECT_THAT(dump, HasSubstr("\"dynamic_endpoint_configs\""));
  EXPECT_THAT(dump, HasSubstr("\"version_info\": \"e1\""));
  EXPECT_THAT(dump, HasSubstr("\"cluster_name\": \"web\""));
  // Endpoints only when asked, as Envoy.
  EXPECT_THAT(courier_.admin("/config_dump").body, ::testing::Not(HasSubstr("dynamic_endpoint_configs")));
  const std::string routes = courier_.admin("/config_dump?resource=dynamic_route_configs").body;
  EXPECT_THAT(routes, HasSubstr("RoutesConfigDump.DynamicRouteConfig"));
  EXPECT_THAT(routes, HasSubstr("last_updated"));
}

TEST_P(XdsRdsEdsIntegrationTest, RouteUpdateSwitchesTrafficOnAnOpenConnection) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  Raw conn(port_);
  ASSERT_EQ(bodyOf(conn.roundTrip(get("x", "/"))), "a");

  ASSERT_TRUE(push(0, kRouteType, "r1v2", std::vector{route("r1", "api")}));
  ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_success", 2)) << courier_.log();
  // The same downstream connection: no listener drain, no reset.
  EXPECT_EQ(bodyOf(conn.roundTrip(get("x", "/"))), "b");
  EXPECT_EQ(bodyOf(conn.roundTrip(get("x", "/"))), "b");
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 0u);
  EXPECT_EQ(courier_.stat("listener_manager.lds.update_success"), 1u);
  EXPECT_NE(courier_.stat("http.ads.rds.r1.version"), 0u);
}

TEST_P(XdsRdsEdsIntegrationTest, BadRouteConfigurationIsNackedAndTheOldTableServes) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  ASSERT_TRUE(push(0, kRouteType, "r1v2", std::vector{route("r1", "api", "{safe_regex: {regex: \"(\"}}")}));
  const std::string error = nextNack(0, cursor, kRouteType);
  EXPECT_THAT(error, HasSubstr("route configuration \"r1\""));
  EXPECT_THAT(error, HasSubstr("safe_regex.regex"));
  ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_rejected", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 a");
  EXPECT_EQ(courier_.stat("http.ads.rds.r1.update_success"), 1u);
  EXPECT_THAT(courier_.admin("/config_dump").body, HasSubstr("\"version_info\": \"r1v1\""));
}

TEST_P(XdsRdsEdsIntegrationTest, EndpointUpdateMovesTrafficAndKeepsConnectionsToHostsThatStay) {
  ASSERT_TRUE(courier_.start(bootstrap(), {"--concurrency", "1"})) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  ASSERT_EQ(fetch(), "200 a");
  ASSERT_EQ(a_.acceptedCount(), 1);

  // a stays, c joins: both serve, and a's pooled connection is the one used.
  ASSERT_TRUE(push(0, kEndpointType, "e2", endpoints({{a_.port()}, {c_.port()}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.membership_total", 2)) << courier_.log();
  std::map<std::string, int> seen;
  for (int i = 0; i < 6; ++i) ++seen[fetch()];
  EXPECT_EQ(seen["200 a"], 3);
  EXPECT_EQ(seen["200 c"], 3);
  EXPECT_EQ(a_.acceptedCount(), 1);
  EXPECT_EQ(c_.acceptedCount(), 1);

  // a leaves: everything goes to c, over the connection it already has.
  ASSERT_TRUE(push(0, kEndpointType, "e3", endpoints({{c_.port()}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.membership_total", 1)) << courier_.log();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(fetch(), "200 c");
  EXPECT_EQ(c_.acceptedCount(), 1);
  EXPECT_EQ(a_.acceptedCount(), 1);
  EXPECT_GE(courier_.stat("cluster.web.update_success").value_or(0), 3u);
}

TEST_P(XdsRdsEdsIntegrationTest, UnhealthyEndpointsAreNotPickedAndWeightsAreHonoured) {
  ASSERT_TRUE(courier_.start(bootstrap(), {"--concurrency", "1"})) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  // Two of three healthy: 93% available, no panic (one of three would be,
  // as Envoy's, and then every host serves).
  ASSERT_TRUE(push(0, kEndpointType, "e2", endpoints({{a_.port(), "DRAINING"}, {c_.port()}, {b_.port()}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.membership_total", 3)) << courier_.log();
  EXPECT_EQ(courier_.stat("cluster.web.membership_healthy"), 2u);
  std::map<std::string, int> spread;
  for (int i = 0; i < 6; ++i) ++spread[fetch()];
  EXPECT_EQ(spread["200 b"], 3);
  EXPECT_EQ(spread["200 c"], 3);

  ASSERT_TRUE(push(0, kEndpointType, "e3", endpoints({{a_.port(), "HEALTHY", 3}, {c_.port(), "HEALTHY", 1}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.membership_total", 2)) << courier_.log();
  std::map<std::string, int> seen;
  for (int i = 0; i < 8; ++i) ++seen[fetch()];
  EXPECT_EQ(seen["200 a"], 6);
  EXPECT_EQ(seen["200 c"], 2);
}

// The host's health_flags line in /clusters ("" when not listed).
std::string healthFlags(const std::string& clusters, const std::string& cluster, uint16_t port) {
  const std::string key = cluster + "::127.0.0.1:" + std::to_string(port) + "::health_flags::";
  const size_t at = clusters.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return clusters.substr(start, clusters.find('\n', start) - start);
}

TEST_P(XdsRdsEdsIntegrationTest, AnEdsUnhealthyHostStaysListedGetsNoTrafficAndReturnsOnItsPooledConnection) {
  ASSERT_TRUE(courier_.start(bootstrap(), {"--concurrency", "1"})) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  // update_success counts a version once the worker balances over it: e1
  // was the first.
  ASSERT_TRUE(push(0, kEndpointType, "e2", endpoints({{a_.port()}, {c_.port()}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.update_success", 2)) << courier_.log();
  std::map<std::string, int> seen;
  for (int i = 0; i < 4; ++i) ++seen[fetch()];
  EXPECT_EQ(seen["200 a"], 2);
  EXPECT_EQ(seen["200 c"], 2);
  ASSERT_EQ(a_.acceptedCount(), 1);

  // EDS fails a: it stays in /clusters, flagged, and gets nothing.
  ASSERT_TRUE(push(0, kEndpointType, "e3", endpoints({{a_.port(), "UNHEALTHY"}, {c_.port()}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.update_success", 3)) << courier_.log();
  EXPECT_EQ(courier_.stat("cluster.web.membership_total"), 2u);
  EXPECT_EQ(courier_.stat("cluster.web.membership_healthy"), 1u);
  const std::string clusters = courier_.admin("/clusters").body;
  EXPECT_EQ(healthFlags(clusters, "web", a_.port()), "/failed_eds_health") << clusters;
  EXPECT_EQ(healthFlags(clusters, "web", c_.port()), "healthy") << clusters;
  EXPECT_THAT(courier_.admin("/clusters?format=json").body, HasSubstr("\"eds_health_status\": \"UNHEALTHY\""));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(fetch(), "200 c");

  // Healthy again: a serves at once, over the connection it had (its pool
  // stayed with the host, which never left the cluster).
  ASSERT_TRUE(push(0, kEndpointType, "e4", endpoints({{a_.port()}, {c_.port()}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.update_success", 4)) << courier_.log();
  EXPECT_EQ(healthFlags(courier_.admin("/clusters").body, "web", a_.port()), "healthy");
  EXPECT_EQ(courier_.stat("cluster.web.membership_healthy"), 2u);
  seen.clear();
  for (int i = 0; i < 6; ++i) ++seen[fetch()];
  EXPECT_EQ(seen["200 a"], 3);
  EXPECT_EQ(seen["200 c"], 3);
  EXPECT_EQ(a_.acceptedCount(), 1);
  EXPECT_EQ(c_.acceptedCount(), 1);

  // DEGRADED: listed as such; with a healthy host beside it at 140% (70%
  // available each), it still serves a share.
  ASSERT_TRUE(push(0, kEndpointType, "e5", endpoints({{a_.port(), "DEGRADED"}, {c_.port()}})));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.update_success", 5)) << courier_.log();
  EXPECT_EQ(healthFlags(courier_.admin("/clusters").body, "web", a_.port()), "/degraded_eds_health");
  EXPECT_THAT(courier_.admin("/clusters?format=json").body, HasSubstr("\"eds_health_status\": \"DEGRADED\""));
  EXPECT_EQ(courier_.stat("cluster.web.membership_healthy"), 1u);
}

TEST_P(XdsRdsEdsIntegrationTest, BadAssignmentIsNackedAndTheOldEndpointsServe) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  auto bad = endpoints({{a_.port()}});
  bad[0].mutable_endpoints(0)->mutable_lb_endpoints(0)->mutable_endpoint()->mutable_address()->mutable_socket_address()->set_address(
      "not-an-ip");
  ASSERT_TRUE(push(0, kEndpointType, "e2", bad));
  const std::string error = nextNack(0, cursor, kEndpointType);
  EXPECT_THAT(error, HasSubstr("cluster load assignment \"web\""));
  EXPECT_THAT(error, HasSubstr("endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address"));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.update_rejected", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 a");
  EXPECT_EQ(courier_.stat("cluster.web.membership_total"), 1u);
}

TEST_P(XdsRdsEdsIntegrationTest, AtStartupTheListenerIsActiveButRefusesConnectionsUntilItsTableArrives) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serve(0, cursor, kClusterType, "c1", std::vector{edsCluster("web"), edsCluster("api")}));
  ASSERT_TRUE(serve(0, cursor, kEndpointType, "e1", endpoints({{a_.port()}})));
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l1", std::vector{rdsListener(port_, "r1")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();
  // Envoy before its workers start: the listener goes straight to the active
  // list and the server's initialization waits for its table; its socket is
  // bound but nothing listens on it yet.
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 0u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(courier_.admin("/ready").status, 503);
  EXPECT_TRUE(refuses(port_));
  const std::string dump = courier_.admin("/config_dump?resource=dynamic_listeners").body;
  EXPECT_THAT(dump, HasSubstr("\"active_state\""));
  EXPECT_THAT(dump, ::testing::Not(HasSubstr("\"warming_state\"")));

  ASSERT_TRUE(serve(0, cursor, kRouteType, "r1v1", std::vector{route("r1", "web")}));
  ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_success", 1)) << courier_.log();
  // Listening from the moment the table applied: the first connect is served.
  EXPECT_EQ(fetch(), "200 a");
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
}

TEST_P(XdsRdsEdsIntegrationTest, WithoutRdsTheListenerGoesActiveAfterTheInitialFetchTimeoutAndAnswers404) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serve(0, cursor, kClusterType, "c1", std::vector{edsCluster("web"), edsCluster("api")}));
  ASSERT_TRUE(serve(0, cursor, kEndpointType, "e1", endpoints({{a_.port()}})));
  auto listener = fromYaml<envoy::config::listener::v3::Listener>(rdsListenerYaml(
      "ads", port_, "r1", "{ads: {}, resource_api_version: V3, initial_fetch_timeout: 0.3s}"));
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l1", std::vector{listener}));
  ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_failure", 1)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(fetch().substr(0, 3), "404");
  // A late table still applies.
  ASSERT_TRUE(serve(0, cursor, kRouteType, "r1v1", std::vector{route("r1", "web")}));
  ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_success", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 a");
}

// A listener's YAML as an item of static_resources.listeners.
std::string asListItem(const std::string& yaml) {
  std::string out;
  for (size_t at = 0; at < yaml.size();) {
    size_t nl = yaml.find('\n', at);
    if (nl == std::string::npos) nl = yaml.size();
    out += (at == 0 ? "  - " : "    ") + yaml.substr(at, nl - at) + "\n";
    at = nl + 1;
  }
  return out;
}

// --- static listeners whose table comes from RDS (Envoy's server init) ---

class StaticRdsListenerTest : public AdsIntegrationTest {
 protected:
  // ADS for RDS only; a static listener "static" on port_ naming r1, and a
  // static cluster "web" (upstream a).
  std::string bootstrap(const std::string& rds_source_extra = "") const {
    return R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: )" + std::string(delta() ? "DELTA_GRPC" : "GRPC") + R"(
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds}
static_resources:
  clusters:
)" + staticCluster("web", a_.port()) + staticCluster("xds", ads_port_) +
           R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
  listeners:
)" + asListItem(rdsListenerYaml("static", port_, "r1", "{ads: {}, resource_api_version: V3" + rds_source_extra + "}"));
  }

  TcpServer a_{named("a")};
};

INSTANTIATE_TEST_SUITE_P(Protocols, StaticRdsListenerTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

TEST_P(StaticRdsListenerTest, TheListenerRefusesConnectionsUntilItsTableArrivesThenRoutesByIt) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  if (delta()) {
    DeltaDiscoveryRequest r;
    ASSERT_TRUE(nextDelta(0, cursor, kRouteType, &r)) << courier_.log();
  } else {
    DiscoveryRequest r;
    ASSERT_TRUE(nextSotw(0, cursor, kRouteType, &r)) << courier_.log();
  }
  // The server initializes until the table arrives: the port is bound (and
  // listed) but refuses connections, as Envoy's before its workers start.
  EXPECT_EQ(courier_.admin("/ready").status, 503);
  EXPECT_EQ(courier_.listenerPort("static"), port_);
  EXPECT_FALSE(TcpClient(port_).connected());

  ASSERT_TRUE(push(0, kRouteType, "r1v1", std::vector{route("r1", "web")})) << courier_.log();
  // The first request the port takes is routed by the table: never a 404.
  const HttpResponse first = firstAnswer(port_);
  EXPECT_EQ(first.status, 200) << courier_.log();
  EXPECT_EQ(first.body, "a");
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  // Counted once every worker swapped the table in, which may come after
  // the table warmed the listener (each worker got the table first).
  EXPECT_TRUE(courier_.waitForStat("http.static.rds.r1.update_success", 1)) << courier_.log();
}

TEST_P(StaticRdsListenerTest, WithoutTheTableTheListenerStartsAfterTheInitialFetchTimeoutAndAnswers404) {
  ASSERT_TRUE(courier_.start(bootstrap(", initial_fetch_timeout: 0.5s"))) << courier_.log();
  // Envoy's answer with no route table, once the fetch timed out.
  EXPECT_EQ(firstAnswer(port_).status, 404) << courier_.log();
  EXPECT_EQ(courier_.stat("http.static.rds.r1.update_failure"), 1u);
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
}

// --- delta removal of a route table or an assignment (Envoy keeps serving) ---

TEST_P(XdsRdsEdsIntegrationTest, RemovedRouteConfigurationAndAssignmentKeepServingTheLastOnes) {
  if (!delta()) GTEST_SKIP() << "removed_resources is delta xDS";
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  ASSERT_EQ(fetch(), "200 a");

  // Envoy's RDS logs and ignores a removal (rds_route_config_subscription);
  // its EDS takes a removal-only update as an empty one and keeps its hosts.
  ASSERT_TRUE(driver().push(0, kRouteType, "r1gone", std::vector<envoy::config::route::v3::RouteConfiguration>{},
                            {"r1"}));
  ASSERT_TRUE(driver().waitAck(0, cursor, kRouteType, "r1gone")) << courier_.log();
  ASSERT_TRUE(driver().push(0, kEndpointType, "e-gone", std::vector<ClusterLoadAssignment>{}, {"web"}));
  ASSERT_TRUE(driver().waitAck(0, cursor, kEndpointType, "e-gone")) << courier_.log();
  EXPECT_EQ(courier_.stat("http.ads.rds.r1.update_success"), 2u);
  EXPECT_EQ(courier_.stat("http.ads.rds.r1.update_empty"), 0u);
  EXPECT_EQ(courier_.stat("cluster.web.update_empty"), 1u);
  EXPECT_EQ(courier_.stat("cluster.web.membership_total"), 1u);
  EXPECT_EQ(fetch(), "200 a");
  EXPECT_THAT(courier_.admin("/config_dump").body, HasSubstr("\"version_info\": \"r1v1\""));

  // A table sent again under the same name applies as usual.
  ASSERT_TRUE(push(0, kRouteType, "r1v2", std::vector{route("r1", "api")}));
  ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_success", 3)) << courier_.log();
  EXPECT_EQ(fetch(), "200 b");
}

TEST_P(XdsRdsEdsIntegrationTest, ListenersNamingOneTableShareItsSubscription) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serve(0, cursor, kClusterType, "c1", std::vector{edsCluster("web"), edsCluster("api")}));
  ASSERT_TRUE(serve(0, cursor, kEndpointType, "e1", endpoints({{a_.port()}})));
  const uint16_t second_port = unusedPort();
  const std::string source = "{ads: {}, resource_api_version: V3}";
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l1",
                    std::vector{fromYaml<envoy::config::listener::v3::Listener>(rdsListenerYaml("one", port_, "r1", source)),
                                fromYaml<envoy::config::listener::v3::Listener>(
                                    rdsListenerYaml("two", second_port, "r1", source))}));
  // One RDS request for the pair, naming r1 once.
  if (delta()) {
    DeltaDiscoveryRequest r;
    ASSERT_TRUE(nextDelta(0, cursor, kRouteType, &r)) << courier_.log();
    EXPECT_EQ(r.resource_names_subscribe_size(), 1);
  } else {
    DiscoveryRequest r;
    ASSERT_TRUE(nextSotw(0, cursor, kRouteType, &r)) << courier_.log();
    EXPECT_EQ(r.resource_names_size(), 1);
  }
  ASSERT_TRUE(push(0, kRouteType, "r1v1", std::vector{route("r1", "web")}));
  ASSERT_TRUE(courier_.waitForStat("http.one.rds.r1.update_success", 1)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 2u);
  EXPECT_EQ(httpRequest(port_, "GET", "/").body, "a");
  EXPECT_EQ(httpRequest(second_port, "GET", "/").body, "a");
  // Counted once, under the first listener's stat_prefix.
  EXPECT_EQ(courier_.stat("http.one.rds.r1.update_attempt"), 1u);
  EXPECT_FALSE(courier_.stat("http.two.rds.r1.update_attempt").has_value());

  ASSERT_TRUE(push(0, kRouteType, "r1v2", std::vector{route("r1", "api")}));
  ASSERT_TRUE(courier_.waitForStat("http.one.rds.r1.update_success", 2)) << courier_.log();
  EXPECT_EQ(httpRequest(port_, "GET", "/").body, "b");
  EXPECT_EQ(httpRequest(second_port, "GET", "/").body, "b");
}

TEST_P(XdsRdsEdsIntegrationTest, AListenerChangedWhileWarmingWarmsAsTheNewVersion) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  const uint16_t port2 = unusedPort();
  ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{rdsListener(port_, "r1"), rdsListener(port2, "r2", "two")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_warming", 1)) << courier_.log();
  // The same listener now names r3: r2's warming version is gone.
  ASSERT_TRUE(push(0, kListenerType, "l3", std::vector{rdsListener(port_, "r1"), rdsListener(port2, "r3", "two")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 3)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 1u);
  ASSERT_TRUE(push(0, kRouteType, "r2v1", std::vector{route("r2", "web")}));
  ASSERT_TRUE(courier_.waitForStat("http.two.rds.r2.update_attempt", 1)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 1u);
  EXPECT_TRUE(refuses(port2));
  ASSERT_TRUE(push(0, kRouteType, "r3v1", std::vector{route("r3", "api")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_active", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 0u);
  EXPECT_EQ(httpRequest(port2, "GET", "/").body, "b");
  EXPECT_EQ(fetch(), "200 a");
}

// --- listener warming after the server initialized (Envoy's onListenerWarmed) ---

// A listener LDS adds to a live server warms on its own: its socket is bound
// (a clash fails the update) but does not listen, so a client is refused
// rather than queued in a backlog nobody accepts, until its table arrives.
TEST_P(XdsRdsEdsIntegrationTest, ANewListenerRefusesConnectionsWhileItWarmsThenServes) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  ASSERT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  const uint16_t port2 = unusedPort();
  ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{rdsListener(port_, "r1"), rdsListener(port2, "r2", "two")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 1u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_THAT(courier_.admin("/config_dump?resource=dynamic_listeners").body, HasSubstr("\"warming_state\""));
  EXPECT_TRUE(refuses(port2));
  // Still refused after other updates applied meanwhile; the live listener
  // and the server carry on.
  ASSERT_TRUE(push(0, kRouteType, "r1v2", std::vector{route("r1", "web")}));
  ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_success", 2)) << courier_.log();
  EXPECT_TRUE(refuses(port2));
  EXPECT_EQ(fetch(), "200 a");
  EXPECT_EQ(courier_.admin("/ready").status, 200);

  ASSERT_TRUE(push(0, kRouteType, "r2v1", std::vector{route("r2", "api")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_warming", 0)) << courier_.log();
  // Listening from the moment it went active: the first connect is served.
  const HttpResponse first = httpRequest(port2, "GET", "/");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "b");
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 2u);
  EXPECT_EQ(courier_.stat("listener_manager.listener_added"), 2u);
}

// A new version at another address binds its own socket, which listens only
// once it is warm; until then the old version serves on the old address.
TEST_P(XdsRdsEdsIntegrationTest, AListenerMovingToANewPortServesOnTheOldOneUntilTheNewVersionIsWarm) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  const uint16_t port2 = unusedPort();
  ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{rdsListener(port2, "r2")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 1u);
  EXPECT_TRUE(refuses(port2));
  EXPECT_EQ(fetch(), "200 a");

  ASSERT_TRUE(push(0, kRouteType, "r2v1", std::vector{route("r2", "api")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_warming", 0)) << courier_.log();
  EXPECT_EQ(httpRequest(port2, "GET", "/").body, "b");
  // The old version stopped accepting on its address.
  EXPECT_TRUE(waitFor([&] { return refuses(port_); })) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 1u);
}

// A new version of a serving listener, at the same address, warms beside it:
// the old version keeps accepting on the shared socket until the new one's
// table arrives, then the new one takes over. Not one request fails.
class ListenerUpdateWarmingTest : public XdsRdsEdsIntegrationTest {
 protected:
  void updateUnderLoad(const std::string& listener_extra, bool in_place) {
    ASSERT_TRUE(courier_.start(bootstrap(), {"--drain-time-s", "120"})) << courier_.log();
    size_t cursor = 0;
    serveInitial(cursor);
    LoadClients load(port_, 2);
    ASSERT_TRUE(load.waitForOk(20)) << load.errors();

    ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{rdsListener(port_, "r2", "ads", listener_extra)}));
    ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
    EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 1u);
    // The old version serves (by r1: upstream a), old and new connections alike.
    ASSERT_TRUE(load.waitForOk(50)) << load.errors();
    EXPECT_EQ(fetch(), "200 a");
    EXPECT_EQ(load.servedBy('b'), 0u);
    EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 1u);

    ASSERT_TRUE(push(0, kRouteType, "r2v1", std::vector{route("r2", "api")}));
    ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_warming", 0)) << courier_.log();
    EXPECT_EQ(fetch(), "200 b");
    // The clients' connections move over too (the old ones are told to close).
    EXPECT_TRUE(waitFor([&] { return load.servedBy('b') >= 20 || load.failed() > 0; })) << load.errors();
    load.stop();
    EXPECT_EQ(load.failed(), 0u) << load.errors();
    EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 1u);
    EXPECT_EQ(courier_.stat("listener_manager.listener_in_place_updated"), in_place ? 1u : 0u);
    EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  }
};

INSTANTIATE_TEST_SUITE_P(Protocols, ListenerUpdateWarmingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

TEST_P(ListenerUpdateWarmingTest, FilterChainChangeKeepsTheOldChainsServingUntilTheNewTableArrives) {
  updateUnderLoad("", /*in_place=*/true);
}

TEST_P(ListenerUpdateWarmingTest, ListenerLevelChangeKeepsTheOldVersionServingUntilTheNewTableArrives) {
  updateUnderLoad("per_connection_buffer_limit_bytes: 65536\n", /*in_place=*/false);
}

// --- LDS listeners at start-up are part of the server's initialization ---

// Envoy starts its workers, with every listener, once the server initialized:
// clusters warm, the first LDS response, and the listeners in it warm. Until
// then the listeners are active (not warming) but none listens; then all
// start together.
TEST_P(XdsRdsEdsIntegrationTest, StartupListenersStartTogetherOnceTheLastOneWarmed) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serve(0, cursor, kClusterType, "c1", std::vector{edsCluster("web"), edsCluster("api")}));
  ASSERT_TRUE(serve(0, cursor, kEndpointType, "e1", endpoints({{a_.port()}})));
  const uint16_t port2 = unusedPort();
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l1",
                    std::vector{rdsListener(port_, "r1", "one"), rdsListener(port2, "r2", "two")}));
  ASSERT_TRUE(serve(0, cursor, kRouteType, "r1v1", std::vector{route("r1", "web")})) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("http.one.rds.r1.update_success", 1)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 2u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 0u);
  EXPECT_EQ(courier_.stat("listener_manager.listener_added"), 2u);
  EXPECT_EQ(courier_.admin("/ready").status, 503);
  // "one" is warm, but waits for "two".
  EXPECT_TRUE(refuses(port_));
  EXPECT_TRUE(refuses(port2));

  ASSERT_TRUE(push(0, kRouteType, "r2v1", std::vector{route("r2", "api")}));
  ASSERT_TRUE(courier_.waitForStat("http.two.rds.r2.update_success", 1)) << courier_.log();
  EXPECT_EQ(httpRequest(port_, "GET", "/").body, "a");
  EXPECT_EQ(httpRequest(port2, "GET", "/").body, "b");
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 2u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 0u);
}

TEST_P(XdsRdsEdsIntegrationTest, StartupListenersStartTogetherWhenAWithheldTableTimesOut) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serve(0, cursor, kClusterType, "c1", std::vector{edsCluster("web"), edsCluster("api")}));
  ASSERT_TRUE(serve(0, cursor, kEndpointType, "e1", endpoints({{a_.port()}})));
  const uint16_t port2 = unusedPort();
  auto two = fromYaml<envoy::config::listener::v3::Listener>(
      rdsListenerYaml("two", port2, "r2", "{ads: {}, resource_api_version: V3, initial_fetch_timeout: 1s}"));
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l1", std::vector{rdsListener(port_, "r1", "one"), two}));
  ASSERT_TRUE(serve(0, cursor, kRouteType, "r1v1", std::vector{route("r1", "web")})) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("http.one.rds.r1.update_success", 1)) << courier_.log();
  EXPECT_TRUE(refuses(port_) || courier_.stat("http.two.rds.r2.update_failure") == 1u)
      << "listening before r2 timed out";
  // r2 never comes: its initial fetch times out and both start, "two"
  // without a table (404, as Envoy).
  const HttpResponse first = firstAnswer(port_);
  EXPECT_EQ(first.status, 200) << courier_.log();
  EXPECT_EQ(first.body, "a");
  EXPECT_EQ(courier_.stat("http.two.rds.r2.update_failure"), 1u);
  EXPECT_EQ(httpRequest(port2, "GET", "/").status, 404);
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
}

TEST_P(XdsRdsEdsIntegrationTest, SteadyTrafficThroughRouteAndEndpointUpdatesLosesNoRequest) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  serveInitial(cursor);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string unexpected;
  // One client on a keep-alive connection, one opening a connection per request.
  auto client = [&](bool keep_alive) {
    std::unique_ptr<Raw> conn;
    while (!stop.load()) {
      std::string body;
      if (keep_alive) {
        if (conn == nullptr) conn = std::make_unique<Raw>(port_);
        std::string r = conn->roundTrip(get("x", "/"));
        body = r.rfind("HTTP/1.1 200", 0) == 0 ? bodyOf(r) : "status: " + r.substr(0, 12);
      } else {
        HttpResponse r = httpRequest(port_, "GET", "/");
        body = r.status == 200 ? r.body : "status " + std::to_string(r.status);
      }
      if (body == "a" || body == "b" || body == "c") {
        ++ok;
      } else {
        if (failed.fetch_add(1) == 0) unexpected = body;
      }
    }
  };
  std::thread keep_alive(client, true);
  std::thread per_request(client, false);
  // Joined however the test leaves this scope (an ASSERT returns early).
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& a;
    std::thread& b;
    ~Joiner() {
      stop = true;
      if (a.joinable()) a.join();
      if (b.joinable()) b.join();
    }
  } joiner{stop, keep_alive, per_request};
  for (int i = 0; i < 40; ++i) {
    // Some requests between updates, so that every update meets traffic.
    const int before = ok.load() + failed.load();
    ASSERT_TRUE(waitFor([&] { return ok.load() + failed.load() >= before + 4; }));
    const std::string v = std::to_string(i + 2);
    ASSERT_TRUE(push(0, kRouteType, "r1v" + v, std::vector{route("r1", i % 2 == 0 ? "api" : "web")}));
    ASSERT_TRUE(courier_.waitForStat("http.ads.rds.r1.update_success", i + 2)) << courier_.log();
    ASSERT_TRUE(push(0, kEndpointType, "e" + v,
                     endpoints(i % 2 == 0 ? std::vector<Endpoint>{{a_.port()}, {c_.port()}}
                                          : std::vector<Endpoint>{{c_.port()}})));
    ASSERT_TRUE(courier_.waitForStat("cluster.web.update_success", i + 2)) << courier_.log();
  }
  stop = true;
  keep_alive.join();
  per_request.join();
  std::cout << ok.load() << " requests through 80 updates\n";
  EXPECT_EQ(failed.load(), 0) << unexpected;
  EXPECT_GE(ok.load(), 160);
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 0u);
}

// --- file-based RDS and EDS (path_config_source) ---

class XdsRdsEdsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tempDir();
    port_ = unusedPort();
  }

  void replaceFile(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp";
    writeFile(tmp, content);
    ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
  }

  std::string routeFile(const std::string& version, const std::string& cluster,
                        const std::string& match = "{prefix: \"/\"}") const {
    return "version_info: " + version +
           "\nresources:\n- \"@type\": type.googleapis.com/envoy.config.route.v3.RouteConfiguration\n" +
           routeYaml("r1", cluster, "  ", match);
  }
  std::string endpointFile(const std::string& version, const std::string& name, uint16_t port) const {
    return "version_info: " + version +
           "\nresources:\n- \"@type\": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\n"
           "  cluster_name: " + name + "\n" + endpointsYaml({{port}}, "  ");
  }
  std::string edsClusterYaml(const std::string& name) const {
    return "  - name: " + name + "\n    connect_timeout: 1s\n    type: EDS\n    eds_cluster_config:\n"
           "      eds_config: {path_config_source: {path: \"" + dir_ + "/" + name + ".yaml\"}}\n";
  }

  // `rds_extra`: more ConfigSource fields for the listener's RDS source.
  bool start(const std::string& rds_extra = "") {
    const std::string listener = rdsListenerYaml(
        "files", port_, "r1", "{path_config_source: {path: \"" + dir_ + "/rds.yaml\"}" + rds_extra + "}");
    std::string indented;
    for (size_t at = 0; at < listener.size();) {
      size_t nl = listener.find('\n', at);
      indented += (at == 0 ? "  - " : "    ") + listener.substr(at, nl - at) + "\n";
      at = nl + 1;
    }
    const std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  clusters:
)" + edsClusterYaml("web") + edsClusterYaml("api") + "  listeners:\n" + indented;
    return courier_.start(yaml, {"--concurrency", "1"});
  }

  std::string fetch() {
    HttpResponse r = httpRequest(port_, "GET", "/");
    return std::to_string(r.status) + " " + r.body;
  }

  std::string dir_;
  uint16_t port_ = 0;
  TcpServer a_{named("a")};
  TcpServer b_{named("b")};
  TcpServer c_{named("c")};
  CourierProcess courier_;
};

TEST_F(XdsRdsEdsFileTest, FilesServeAndAtomicRenamesSwitchRoutesAndEndpoints) {
  writeFile(dir_ + "/rds.yaml", routeFile("r1", "web"));
  writeFile(dir_ + "/web.yaml", endpointFile("w1", "web", a_.port()));
  writeFile(dir_ + "/api.yaml", endpointFile("p1", "api", b_.port()));
  ASSERT_TRUE(start()) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("http.files.rds.r1.update_success", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 a");
  EXPECT_EQ(courier_.stat("cluster.web.membership_total"), 1u);

  // New endpoints for web.
  replaceFile(dir_ + "/web.yaml", endpointFile("w2", "web", c_.port()));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.update_success", 2)) << courier_.log();
  EXPECT_EQ(fetch(), "200 c");

  // The route moves to api.
  replaceFile(dir_ + "/rds.yaml", routeFile("r2", "api"));
  ASSERT_TRUE(courier_.waitForStat("http.files.rds.r1.update_success", 2)) << courier_.log();
  EXPECT_EQ(fetch(), "200 b");

  // A bad table is refused whole; api keeps serving.
  replaceFile(dir_ + "/rds.yaml", routeFile("r3", "web", "{safe_regex: {regex: \"(\"}}"));
  ASSERT_TRUE(courier_.waitForStat("http.files.rds.r1.update_rejected", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 b");
  // So is a bad assignment.
  replaceFile(dir_ + "/api.yaml", endpointFile("p2", "api", 0) + "    - endpoint: {}\n");
  ASSERT_TRUE(courier_.waitForStat("cluster.api.update_rejected", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 b");
  EXPECT_THAT(courier_.admin("/config_dump?resource=dynamic_endpoint_configs").body, HasSubstr("\"p1\""));
}

TEST_F(XdsRdsEdsFileTest, MissingEndpointFileWarmsTheClusterWithNoHosts) {
  writeFile(dir_ + "/rds.yaml", routeFile("r1", "web"));
  writeFile(dir_ + "/api.yaml", endpointFile("p1", "api", b_.port()));
  ASSERT_TRUE(start()) << courier_.log();
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  EXPECT_EQ(courier_.stat("cluster_manager.warming_clusters"), 0u);
  EXPECT_EQ(fetch().substr(0, 3), "503");
  // The file appears: web gets its host.
  replaceFile(dir_ + "/web.yaml", endpointFile("w1", "web", a_.port()));
  ASSERT_TRUE(courier_.waitForStat("cluster.web.update_success", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 a");
}

TEST_F(XdsRdsEdsFileTest, WithInitialFetchTimeoutAMissingRouteFileIsWaitedForAndTheFirstRequestIsRoutedByIt) {
  writeFile(dir_ + "/web.yaml", endpointFile("w1", "web", a_.port()));
  writeFile(dir_ + "/api.yaml", endpointFile("p1", "api", b_.port()));
  courier_.setWaitForReady(false);
  ASSERT_TRUE(start(", initial_fetch_timeout: 30s")) << courier_.log();
  ASSERT_TRUE(waitFor([&] { return courier_.stat("cluster.web.update_success") == 1u; })) << courier_.log();
  // The listener's table is awaited: the server is not ready, the port not open.
  EXPECT_EQ(courier_.admin("/ready").status, 503);
  EXPECT_FALSE(TcpClient(port_).connected());
  replaceFile(dir_ + "/rds.yaml", routeFile("r1", "web"));
  const HttpResponse first = firstAnswer(port_);
  EXPECT_EQ(first.status, 200) << courier_.log();
  EXPECT_EQ(first.body, "a");
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
}

TEST_F(XdsRdsEdsFileTest, MissingRouteFileTimesOutThenTheListenerAnswers404UntilTheFileAppears) {
  writeFile(dir_ + "/web.yaml", endpointFile("w1", "web", a_.port()));
  writeFile(dir_ + "/api.yaml", endpointFile("p1", "api", b_.port()));
  courier_.setWaitForReady(false);
  ASSERT_TRUE(start(", initial_fetch_timeout: 0.3s")) << courier_.log();
  ASSERT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  EXPECT_EQ(courier_.stat("http.files.rds.r1.update_failure"), 1u);
  EXPECT_EQ(fetch().substr(0, 3), "404");
  replaceFile(dir_ + "/rds.yaml", routeFile("r1", "web"));
  ASSERT_TRUE(courier_.waitForStat("http.files.rds.r1.update_success", 1)) << courier_.log();
  EXPECT_EQ(fetch(), "200 a");
}

TEST(XdsRdsEdsConfigTest, AdsSourcesWithoutAdsConfigAreRefusedNamingTheField) {
  const std::string dir = tempDir();
  writeFile(dir + "/eds.yaml", R"(static_resources:
  clusters:
  - name: web
    connect_timeout: 1s
    type: EDS
    eds_cluster_config: {eds_config: {ads: {}}}
)");
  const std::string listener = rdsListenerYaml("l", 0, "r1", "{ads: {}}");
  std::string rds = "static_resources:\n  listeners:\n";
  for (size_t at = 0; at < listener.size();) {
    size_t nl = listener.find('\n', at);
    rds += (at == 0 ? "  - " : "    ") + listener.substr(at, nl - at) + "\n";
    at = nl + 1;
  }
  writeFile(dir + "/rds.yaml", rds);
  for (const char* mode : {"serve", "validate"}) {
    std::string output;
    EXPECT_NE(CourierProcess::runToExit({"--mode", mode, "-c", dir + "/eds.yaml"}, &output), 0) << mode;
    EXPECT_THAT(output, HasSubstr("static_resources.clusters[0].eds_cluster_config.eds_config.ads")) << mode;
    EXPECT_NE(CourierProcess::runToExit({"--mode", mode, "-c", dir + "/rds.yaml"}, &output), 0) << mode;
    EXPECT_THAT(output, HasSubstr("rds.config_source.ads")) << mode;
  }
}

}  // namespace
}  // namespace courier::test
