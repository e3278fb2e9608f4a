// The server's life cycle and admin API, through the real binary: readiness,
// admin endpoints in Envoy's shapes, SIGTERM drain, SIGHUP ignored.
#include <signal.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/configs.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

class ServerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(courier_.start(tcpProxyConfig({upstream_.port()}), {"--drain-time-s", "30"})) << courier_.log();
    port_ = courier_.listenerPort("tcp");
    ASSERT_NE(port_, 0);
  }
  TcpServer upstream_{TcpServer::echo()};
  CourierProcess courier_;
  uint16_t port_ = 0;
};

TEST_F(ServerIntegrationTest, ReadyAnswersLive) {
  auto r = courier_.admin("/ready");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "LIVE\n");
}

TEST_F(ServerIntegrationTest, ServerInfoReportsStateAndCommandLine) {
  auto r = courier_.admin("/server_info");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("\"state\": \"LIVE\""));
  EXPECT_THAT(r.body, HasSubstr("\"concurrency\": 2"));
  EXPECT_THAT(r.body, HasSubstr("\"drain_time\": \"30s\""));
}

TEST_F(ServerIntegrationTest, ConfigDumpHasEnvoysShapeWithTypes) {
  auto r = courier_.admin("/config_dump");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("\"@type\": \"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\""));
  EXPECT_THAT(r.body, HasSubstr("\"@type\": \"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\""));
  EXPECT_THAT(r.body, HasSubstr("\"@type\": \"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\""));
  EXPECT_THAT(r.body, HasSubstr("\"static_clusters\""));
  EXPECT_THAT(r.body, HasSubstr("\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\""));
  EXPECT_THAT(r.body,
              HasSubstr("\"@type\": \"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\""));
  auto only = courier_.admin("/config_dump?resource=static_clusters");
  EXPECT_THAT(only.body, HasSubstr("envoy.admin.v3.ClustersConfigDump.StaticCluster"));
  EXPECT_EQ(only.body.find("ListenersConfigDump"), std::string::npos);
}

TEST_F(ServerIntegrationTest, ConfigDumpMaskKeepsOnlyTheNamedFields) {
  // Without ?resource= the mask applies to each top-level dump.
  auto top = courier_.admin("/config_dump?mask=static_clusters");
  EXPECT_EQ(top.status, 200);
  EXPECT_THAT(top.body, HasSubstr("\"static_clusters\""));
  EXPECT_EQ(top.body.find("\"static_listeners\""), std::string::npos);
  EXPECT_EQ(top.body.find("\"bootstrap\""), std::string::npos);
  // With ?resource= it applies to each element, and goes into the packed cluster.
  auto names = courier_.admin("/config_dump?resource=static_clusters&mask=cluster.name");
  EXPECT_THAT(names.body, HasSubstr("\"name\": \"backend\""));
  EXPECT_EQ(names.body.find("connect_timeout"), std::string::npos);
  EXPECT_EQ(names.body.find("last_updated"), std::string::npos);
}

TEST_F(ServerIntegrationTest, ListenersAndClustersListWhatIsConfigured) {
  auto text = courier_.admin("/listeners");
  EXPECT_EQ(text.body, "tcp::127.0.0.1:" + std::to_string(port_) + "\n");
  auto clusters = courier_.admin("/clusters");
  const std::string host = "backend::127.0.0.1:" + std::to_string(upstream_.port());
  EXPECT_THAT(clusters.body, HasSubstr(host + "::health_flags::healthy\n"));
  EXPECT_THAT(clusters.body, HasSubstr("backend::default_priority::max_connections::1024\n"));
  auto json = courier_.admin("/clusters?format=json");
  EXPECT_THAT(json.body, HasSubstr("\"cluster_statuses\""));
  EXPECT_THAT(json.body, HasSubstr(std::to_string(upstream_.port())));
}

TEST_F(ServerIntegrationTest, StatsUseEnvoyNamesInTextJsonAndPrometheus) {
  {
    TcpClient c(port_);
    c.write("ping");
    EXPECT_EQ(c.readExactly(4), "ping");
  }
  ASSERT_TRUE(courier_.waitForStat("cluster.backend.upstream_cx_total", 1));
  EXPECT_EQ(courier_.stat("server.live"), 1u);
  EXPECT_EQ(courier_.stat("server.concurrency"), 2u);
  EXPECT_EQ(courier_.stat("listener.127.0.0.1_0.downstream_cx_total"), 1u);
  EXPECT_THAT(courier_.admin("/stats?format=json").body, HasSubstr("{\"name\":\"cluster.backend.upstream_cx_total\",\"value\":1}"));
  auto prom = courier_.admin("/stats/prometheus");
  EXPECT_EQ(prom.status, 200);
  EXPECT_THAT(prom.body, HasSubstr("envoy_cluster_upstream_cx_total{envoy_cluster_name=\"backend\"} 1"));
}

TEST_F(ServerIntegrationTest, QuitQuitQuitNeedsPostThenExitsZero) {
  EXPECT_EQ(courier_.admin("/quitquitquit").status, 405);
  EXPECT_EQ(courier_.admin("/quitquitquit", "POST").status, 200);
  EXPECT_EQ(courier_.waitForExit(std::chrono::milliseconds(10000)), 0) << courier_.log();
}

TEST_F(ServerIntegrationTest, SighupIsIgnored) {
  courier_.signal(SIGHUP);
  // A request round trip after the signal proves the process handled it and lives.
  EXPECT_EQ(courier_.admin("/ready").status, 200);
  EXPECT_TRUE(courier_.running());
}

TEST_F(ServerIntegrationTest, SigtermStopsAcceptingLetsOpenConnectionsFinishThenExitsZero) {
  TcpClient open(port_);
  ASSERT_TRUE(open.write("before"));
  ASSERT_EQ(open.readExactly(6), "before");
  courier_.signal(SIGTERM);
  // Admin keeps answering and says the server is no longer live.
  ASSERT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 503; }));
  EXPECT_EQ(courier_.admin("/ready").body, "DRAINING\n");
  // New connections are refused once the listeners stop...
  ASSERT_TRUE(waitFor([&] { return !TcpClient(port_, std::chrono::milliseconds(500)).connected(); }));
  // ...while the open one keeps working.
  ASSERT_TRUE(open.write("during"));
  EXPECT_EQ(open.readExactly(6), "during");
  EXPECT_EQ(courier_.waitForExit(std::chrono::milliseconds(200)), -1) << "exited before its connection closed";
  open.close();
  EXPECT_EQ(courier_.waitForExit(std::chrono::milliseconds(10000)), 0);
}

TEST(DeprecatedFieldTest, DeprecatedFieldIsAcceptedWarnedAndCounted) {
  TcpServer upstream(TcpServer::echo());
  std::string config = tcpProxyConfig({upstream.port()});
  // Cluster.max_requests_per_connection is deprecated in v3 but still accepted.
  config.replace(config.find("    type: STATIC"), 0, "    max_requests_per_connection: 100\n");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config)) << courier.log();
  EXPECT_EQ(courier.stat("runtime.deprecated_feature_use"), 1u);
  EXPECT_THAT(courier.log(), HasSubstr("static_resources.clusters[0].max_requests_per_connection"));
}

TEST(ServerDrainTimeoutTest, SigtermExitsAfterDrainTimeEvenWithConnectionsOpen) {
  TcpServer upstream(TcpServer::echo());
  CourierProcess courier;
  ASSERT_TRUE(courier.start(tcpProxyConfig({upstream.port()}), {"--drain-time-s", "1"})) << courier.log();
  TcpClient open(courier.listenerPort("tcp"));
  ASSERT_TRUE(open.write("x"));
  ASSERT_EQ(open.readExactly(1), "x");
  courier.signal(SIGTERM);
  EXPECT_EQ(courier.waitForExit(std::chrono::milliseconds(10000)), 0);
  EXPECT_TRUE(open.waitForClose());
}

}  // namespace
}  // namespace courier::test
