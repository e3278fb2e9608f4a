// Hot reload under load: clients keep a steady stream of requests going
// through the real courier binary while the fake control plane pushes 100
// route updates, 100 cluster updates and 20 listener updates over ADS. Not a
// single request may fail or meet a reset, and every answer must come from
// an upstream that the old or the new route table names.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "test/integration/ads_driver.h"
#include "test/integration/http_test_util.h"
#include "test/integration/load_clients.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using config::test::FakeAdsServer;

constexpr char kClusterType[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
constexpr char kRouteType[] = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

template <class T>
T fromYaml(const std::string& yaml) {
  T message;
  auto status = protobuf::loadFromYamlString(yaml, message);
  EXPECT_TRUE(status.ok()) << status << "\n" << yaml;
  return message;
}

// `timeout_ms` varies so that each push is a real change of the cluster.
envoy::config::cluster::v3::Cluster cluster(const std::string& name, uint16_t port, int timeout_ms = 1000) {
  char timeout[32];
  std::snprintf(timeout, sizeof(timeout), "%d.%03ds", timeout_ms / 1000, timeout_ms % 1000);
  return fromYaml<envoy::config::cluster::v3::Cluster>("name: " + name + "\nconnect_timeout: " + timeout + R"(
type: STATIC
load_assignment:
  cluster_name: )" + name + R"(
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
                                                       std::to_string(port) + "}}}\n");
}

envoy::config::route::v3::RouteConfiguration routes(const std::string& to_cluster) {
  return fromYaml<envoy::config::route::v3::RouteConfiguration>(R"(name: routes
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: "/"}
    route: {cluster: )" + to_cluster + "}\n");
}

// The listener takes its routes from RDS; `generation` changes its stats
// prefix so that each push is a real change (the old version drains).
envoy::config::listener::v3::Listener listener(uint16_t port, int generation) {
  return fromYaml<envoy::config::listener::v3::Listener>(R"(name: ingress
address: {socket_address: {address: 127.0.0.1, port_value: )" + std::to_string(port) + R"(}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress_)" + std::to_string(generation) + R"(
      rds:
        route_config_name: routes
        config_source: {ads: {}, resource_api_version: V3}
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)");
}

class XdsHotReloadTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ads_ = std::make_unique<FakeAdsServer>();
    driver_ = std::make_unique<AdsDriver>(*ads_, GetParam());
    port_ = unusedPort();
    courier_.setWaitForReady(false);
  }

  std::string bootstrap() const {
    const std::string& ads = ads_->address();
    return adsBootstrap(GetParam(), static_cast<uint16_t>(std::stoi(ads.substr(ads.rfind(':') + 1))), "reload");
  }

  TcpServer a_{namedUpstream("a")};
  TcpServer b_{namedUpstream("b")};
  std::unique_ptr<FakeAdsServer> ads_;
  std::unique_ptr<AdsDriver> driver_;
  uint16_t port_ = 0;
  CourierProcess courier_;
};

INSTANTIATE_TEST_SUITE_P(Protocols, XdsHotReloadTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

TEST_P(XdsHotReloadTest, UpdatesUnderLoadLoseNoRequest) {
  // Drains outlast the test: a connection of an old listener ends after its
  // next response, never under a client.
  ASSERT_TRUE(courier_.start(bootstrap(), {"--drain-time-s", "120"})) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(driver_->serve(0, cursor, kClusterType, "c0", std::vector{cluster("a", a_.port()), cluster("b", b_.port())}));
  ASSERT_TRUE(driver_->serve(0, cursor, kListenerType, "l0", std::vector{listener(port_, 0)}));
  ASSERT_TRUE(driver_->serve(0, cursor, kRouteType, "r0", std::vector{routes("a")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();
  ASSERT_TRUE(waitFor([&] { return httpRequest(port_, "GET", "/").body.rfind("a ", 0) == 0; })) << courier_.log();

  LoadClients load(port_, 4);
  ASSERT_TRUE(load.waitForOk(50)) << load.errors() << courier_.log();

  int listener_updates = 0;
  for (int i = 1; i <= 100; ++i) {
    const std::string v = std::to_string(i);
    // A route update: traffic moves between a and b.
    ASSERT_TRUE(driver_->push(0, kRouteType, "r" + v, std::vector{routes(i % 2 ? "b" : "a")}));
    ASSERT_TRUE(driver_->waitAck(0, cursor, kRouteType, "r" + v)) << courier_.log();
    // A cluster update: both clusters change (their pools drain and are
    // rebuilt) while requests to them are in flight.
    ASSERT_TRUE(driver_->push(0, kClusterType, "c" + v,
                              std::vector{cluster("a", a_.port(), 1000 + i), cluster("b", b_.port(), 1000 + i)}));
    ASSERT_TRUE(driver_->waitAck(0, cursor, kClusterType, "c" + v)) << courier_.log();
    if (i % 5 == 0) {
      // A listener update: a new version takes the socket, the old drains.
      ++listener_updates;
      ASSERT_TRUE(driver_->push(0, kListenerType, "l" + v, std::vector{listener(port_, listener_updates)}));
      ASSERT_TRUE(driver_->waitAck(0, cursor, kListenerType, "l" + v)) << courier_.log();
    }
    // Some traffic between updates (and a bound on a stuck proxy).
    ASSERT_TRUE(load.waitForOk(5)) << load.errors() << courier_.log();
  }
  ASSERT_TRUE(load.waitForOk(50)) << load.errors() << courier_.log();
  load.stop();

  std::printf("%llu requests (a: %llu, b: %llu) over %llu connections, %llu failed, %llu reset\n",
              static_cast<unsigned long long>(load.ok()), static_cast<unsigned long long>(load.servedBy('a')),
              static_cast<unsigned long long>(load.servedBy('b')), static_cast<unsigned long long>(load.connections()),
              static_cast<unsigned long long>(load.failed()), static_cast<unsigned long long>(load.resets()));
  EXPECT_EQ(load.failed(), 0u) << load.errors();
  EXPECT_EQ(load.resets(), 0u) << load.errors();
  EXPECT_GT(load.ok(), 600u);
  // Both tables served traffic: the route switch was live.
  EXPECT_GT(load.servedBy('a'), 0u);
  EXPECT_GT(load.servedBy('b'), 0u);
  EXPECT_EQ(listener_updates, 20);
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 20u);
  EXPECT_EQ(courier_.stat("cluster_manager.cluster_modified"), 200u);
  // New connections after each listener update met the new version.
  EXPECT_GT(load.connections(), 20u);
}

}  // namespace
}  // namespace courier::test
