// Zone-aware routing through the real server: a local cluster (this proxy's
// peers, never connected to) and an upstream cluster with one real host in
// each of two zones; node.locality names zone a.
#include <cstdlib>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/configs.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

// A locality entry with `n` endpoints at `port` on distinct loopback addresses.
std::string locality(const std::string& zone, int n, uint16_t port, int first_address) {
  std::string out = "      - locality: {zone: " + zone + "}\n        lb_endpoints:\n";
  for (int i = 0; i < n; ++i) {
    out += "        - endpoint: {address: {socket_address: {address: 127.0.0." + std::to_string(first_address + i) +
           ", port_value: " + std::to_string(port) + "}}}\n";
  }
  return out;
}

std::string cluster(const std::string& name, const std::string& extra, const std::string& localities) {
  return "  - name: " + name + "\n    connect_timeout: 1s\n    type: STATIC\n" + extra +
         "    load_assignment:\n      cluster_name: " + name + "\n      endpoints:\n" + localities;
}

class ZoneAwareIntegrationTest : public ::testing::Test {
 protected:
  // The local cluster has `local_a` peers in zone a and `local_b` in zone b
  // (at a port nothing listens on); backend has A in zone a and B in zone b.
  std::string config(const std::string& local_cluster_name, int local_a, int local_b) {
    const std::string head = "node: {locality: {zone: a}}\ncluster_manager: {local_cluster_name: " +
                             local_cluster_name + "}\n";
    return head + hcmListener("") + R"(          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: backend, timeout: 5s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + cluster("local", "", locality("a", local_a, 1, 10) + locality("b", local_b, 1, 50)) +
           cluster("backend", "    common_lb_config: {zone_aware_lb_config: {min_cluster_size: 2}}\n",
                   locality("a", 1, a_.port(), 1) + locality("b", 1, b_.port(), 1));
  }
  void start(const std::string& yaml) {
    ASSERT_TRUE(courier_.start(yaml)) << courier_.log();
    port_ = courier_.listenerPort("http");
    ASSERT_NE(port_, 0);
  }
  uint64_t stat(const std::string& name) { return courier_.stat(name).value_or(0); }
  // How many of n requests each upstream answered.
  std::pair<int, int> spread(int n) {
    int a = 0, b = 0;
    for (int i = 0; i < n; ++i) {
      const std::string body = httpRequest(port_, "GET", "/x").body;
      a += body.rfind("A ", 0) == 0;
      b += body.rfind("B ", 0) == 0;
    }
    return {a, b};
  }

  TcpServer a_{namedUpstream("A")};
  TcpServer b_{namedUpstream("B")};
  CourierProcess courier_;
  uint16_t port_ = 0;
};

TEST_F(ZoneAwareIntegrationTest, EqualSharesSendEverythingToTheLocalZone) {
  // Local cluster 50% in a, upstream 50% in a: all directly.
  start(config("local", 1, 1));
  auto [a, b] = spread(40);
  EXPECT_EQ(a, 40);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(stat("cluster.backend.lb_zone_routing_all_directly"), 40u);
  EXPECT_EQ(stat("cluster.backend.lb_zone_routing_cross_zone"), 0u);
}

TEST_F(ZoneAwareIntegrationTest, ALargerLocalShareSpillsTheResidualToTheOtherZone) {
  // Local cluster 75% in a, upstream 50%: two thirds stay in a.
  start(config("local", 3, 1));
  auto [a, b] = spread(300);
  EXPECT_EQ(a + b, 300);
  EXPECT_GT(b, 50);   // expected 100
  EXPECT_GT(a, 150);  // expected 200
  EXPECT_EQ(stat("cluster.backend.lb_zone_routing_sampled"), static_cast<uint64_t>(a));
  EXPECT_EQ(stat("cluster.backend.lb_zone_routing_cross_zone"), static_cast<uint64_t>(b));
}

TEST_F(ZoneAwareIntegrationTest, WithoutALocalClusterRoundRobinServesBothZones) {
  std::string yaml = config("local", 1, 1);
  yaml.replace(yaml.find("cluster_manager"), yaml.find('\n', yaml.find("cluster_manager")) - yaml.find("cluster_manager"),
               "");
  start(yaml);
  auto [a, b] = spread(40);
  // Each of the two workers alternates: the zones differ by at most one pick
  // per worker.
  EXPECT_EQ(a + b, 40);
  EXPECT_LE(std::abs(a - b), 2) << a << " " << b;
  EXPECT_EQ(stat("cluster.backend.lb_zone_routing_all_directly"), 0u);
}

TEST_F(ZoneAwareIntegrationTest, ALocalClusterNameNamingNoClusterIsRejected) {
  EXPECT_FALSE(courier_.start(config("nowhere", 1, 1)));
  EXPECT_THAT(courier_.log(), HasSubstr("cluster_manager.local_cluster_name"));
}

}  // namespace
}  // namespace courier::test
