// Clusters whose hosts are discovered at run time (STRICT_DNS, LOGICAL_DNS,
// ORIGINAL_DST), against the real server with a DNS responder and upstreams
// on loopback addresses.
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/dns_server.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

// A listener routing everything to cluster "backend", then `cluster_yaml`.
std::string withCluster(const std::string& cluster_yaml, const std::string& route_extra = "") {
  return hcmListener("") + R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: backend, timeout: 5s)" + route_extra + R"(}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + cluster_yaml;
}

std::string dnsCluster(const std::string& type, uint16_t dns_port, uint16_t port, const std::string& extra = "") {
  return R"(  - name: backend
    connect_timeout: 1s
    type: )" + type + R"(
    dns_lookup_family: V4_ONLY
    dns_refresh_rate: 0.2s
    typed_dns_resolver_config:
      name: envoy.network.dns_resolver.cares
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig
        resolvers: [{socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(dns_port) + R"(}}]
        dns_resolver_options: {no_default_search_domain: true}
)" + extra + R"(    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: backend.test, port_value: )" +
         std::to_string(port) + "}}}\n";
}

// The body of a GET through the proxy (empty on failure).
std::string fetch(uint16_t port) {
  HttpResponse r = httpRequest(port, "GET", "/");
  return r.status == 200 ? r.body : "status " + std::to_string(r.status);
}

TEST(StrictDnsClusterTest, TrafficFollowsTheNameToItsNewAddress) {
  TcpServer a(namedUpstream("A"));
  TcpServer b(namedUpstream("B"), "127.0.0.2", a.port());
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1"});
  CourierProcess courier;
  ASSERT_TRUE(courier.start(withCluster(dnsCluster("STRICT_DNS", dns.port(), a.port())))) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("A ", 0) == 0; })) << courier.log();
  EXPECT_EQ(courier.stat("cluster.backend.membership_total"), 1u);
  EXPECT_EQ(courier.stat("cluster.backend.membership_change"), 1u);

  dns.set("backend.test", {"127.0.0.2"});
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("B ", 0) == 0; })) << courier.log();
  EXPECT_EQ(courier.stat("cluster.backend.membership_change"), 2u);
  EXPECT_GE(courier.stat("cluster.backend.update_success").value_or(0), 2u);
  EXPECT_GE(courier.stat("cluster.backend.update_attempt").value_or(0), 2u);
}

TEST(StrictDnsClusterTest, EveryAddressBecomesAHost) {
  TcpServer a(namedUpstream("A"));
  TcpServer b(namedUpstream("B"), "127.0.0.2", a.port());
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1", "127.0.0.2"});
  CourierProcess courier;
  ASSERT_TRUE(courier.start(withCluster(dnsCluster("STRICT_DNS", dns.port(), a.port())))) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_TRUE(courier.waitForStat("cluster.backend.membership_total", 2)) << courier.log();
  bool seen_a = false, seen_b = false;
  for (int i = 0; i < 10; ++i) {
    std::string body = fetch(port);
    seen_a |= body.rfind("A ", 0) == 0;
    seen_b |= body.rfind("B ", 0) == 0;
  }
  EXPECT_TRUE(seen_a && seen_b);
  // Same answers again and again: no new host set.
  ASSERT_TRUE(waitFor([&] { return courier.stat("cluster.backend.update_no_rebuild").value_or(0) >= 2; }));
  EXPECT_EQ(courier.stat("cluster.backend.membership_change"), 1u);
}

TEST(StrictDnsClusterTest, ConnectionsToAHostThatStaysSurviveAnUpdate) {
  TcpServer a(namedUpstream("A"));
  TcpServer b(namedUpstream("B"), "127.0.0.2", a.port());
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1"});
  CourierProcess courier;
  // One worker: one pool per host.
  ASSERT_TRUE(courier.start(withCluster(dnsCluster("STRICT_DNS", dns.port(), a.port())), {"--concurrency", "1"}))
      << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("A ", 0) == 0; })) << courier.log();
  EXPECT_EQ(a.acceptedCount(), 1);
  dns.set("backend.test", {"127.0.0.1", "127.0.0.2"});
  ASSERT_TRUE(courier.waitForStat("cluster.backend.membership_total", 2)) << courier.log();
  bool seen_b = false;
  for (int i = 0; i < 6; ++i) seen_b |= fetch(port).rfind("B ", 0) == 0;
  EXPECT_TRUE(seen_b);
  // A's keep-alive connection was reused after the host set changed.
  EXPECT_EQ(a.acceptedCount(), 1);
}

TEST(StrictDnsClusterTest, DnsFailureKeepsTheLastHosts) {
  TcpServer a(namedUpstream("A"));
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1"});
  CourierProcess courier;
  ASSERT_TRUE(courier.start(withCluster(dnsCluster(
      "STRICT_DNS", dns.port(), a.port(), "    dns_failure_refresh_rate: {base_interval: 0.1s, max_interval: 0.2s}\n"))))
      << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("A ", 0) == 0; })) << courier.log();
  dns.setMode(DnsServer::Mode::ServFail);
  ASSERT_TRUE(waitFor([&] { return courier.stat("cluster.backend.update_failure").value_or(0) >= 2; }));
  EXPECT_THAT(fetch(port), ::testing::StartsWith("A "));
  EXPECT_EQ(courier.stat("cluster.backend.membership_total"), 1u);
  // Back to answering: the cluster recovers on the failure back-off's schedule.
  dns.setMode(DnsServer::Mode::Answer);
  const uint64_t successes = courier.stat("cluster.backend.update_success").value_or(0);
  EXPECT_TRUE(waitFor([&] { return courier.stat("cluster.backend.update_success").value_or(0) > successes; }));
}

TEST(StrictDnsClusterTest, RespectDnsTtlRefreshesOnTheTtl) {
  TcpServer a(namedUpstream("A"));
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1"}, 3600);
  CourierProcess courier;
  // dns_refresh_rate 0.2s would ask again and again; a one-hour TTL asks once.
  ASSERT_TRUE(courier.start(withCluster(dnsCluster("STRICT_DNS", dns.port(), a.port(), "    respect_dns_ttl: true\n"))))
      << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("A ", 0) == 0; })) << courier.log();
  // Enough time for several 0.2s refreshes, bounded by a second lookup's absence.
  EXPECT_FALSE(waitFor([&] { return courier.stat("cluster.backend.update_attempt").value_or(0) > 1; }, 1000ms));
}

TEST(StrictDnsClusterTest, DeprecatedDnsResolversFieldIsHonoured) {
  TcpServer a(namedUpstream("A"));
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1"});
  const std::string cluster = R"(  - name: backend
    connect_timeout: 1s
    type: STRICT_DNS
    dns_lookup_family: V4_ONLY
    dns_resolvers: [{socket_address: {address: 127.0.0.1, port_value: )" +
                              std::to_string(dns.port()) + R"(}}]
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: backend.test, port_value: )" +
                              std::to_string(a.port()) + "}}}\n";
  CourierProcess courier;
  ASSERT_TRUE(courier.start(withCluster(cluster))) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("A ", 0) == 0; })) << courier.log();
  EXPECT_GE(dns.queriesFor("backend.test"), 1);
}

// Envoy's cluster initialization: a DNS cluster warms until its first lookup
// completes, and the server's listeners take no connection before that, so
// the first request the port takes is served, not answered 503.
class DnsClusterWarmingTest : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Types, DnsClusterWarmingTest, ::testing::Values("STRICT_DNS", "LOGICAL_DNS"));

TEST_P(DnsClusterWarmingTest, ListenersOpenOnlyOnceTheFirstLookupAnsweredSoNoRequestMeetsAnEmptyCluster) {
  TcpServer a(namedUpstream("A"));
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1"});
  dns.setMode(DnsServer::Mode::Hold);
  CourierProcess courier;
  courier.setWaitForReady(false);
  ASSERT_TRUE(courier.start(withCluster(dnsCluster(GetParam(), dns.port(), a.port())))) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_NE(port, 0) << courier.log();
  ASSERT_TRUE(waitFor([&] { return dns.held() > 0; })) << courier.log();
  // Still initializing: the lookup is pending and the port refuses connections.
  EXPECT_EQ(courier.admin("/ready").status, 503);
  EXPECT_EQ(courier.stat("cluster.backend.membership_total"), 0u);
  EXPECT_FALSE(TcpClient(port).connected());

  dns.setMode(DnsServer::Mode::Answer);
  // The first request the port takes finds the resolved host: never a 503.
  const HttpResponse first = firstAnswer(port, "/early");
  EXPECT_EQ(first.status, 200) << courier.log();
  EXPECT_THAT(first.body, HasSubstr("A GET /early")) << courier.log();
  EXPECT_TRUE(waitFor([&] { return courier.admin("/ready").status == 200; })) << courier.log();
  EXPECT_EQ(courier.stat("cluster.backend.membership_total"), 1u);
}

TEST_P(DnsClusterWarmingTest, AFailedFirstLookupEndsWarmingWithNoHosts) {
  DnsServer dns;
  dns.setMode(DnsServer::Mode::Hold);
  CourierProcess courier;
  courier.setWaitForReady(false);
  ASSERT_TRUE(courier.start(withCluster(dnsCluster(GetParam(), dns.port(), unusedPort())))) << courier.log();
  ASSERT_TRUE(waitFor([&] { return dns.held() > 0; })) << courier.log();
  EXPECT_EQ(courier.admin("/ready").status, 503);
  // SERVFAIL: the server goes on, as Envoy's does, and the cluster has no host.
  dns.setMode(DnsServer::Mode::ServFail);
  ASSERT_TRUE(waitFor([&] { return courier.admin("/ready").status == 200; })) << courier.log();
  EXPECT_GE(courier.stat("cluster.backend.update_failure").value_or(0), 1u);
  EXPECT_EQ(fetch(courier.listenerPort("http")), "status 503");
}

// A CDS file holding the DNS cluster "backend" (dnsCluster's YAML as a
// DiscoveryResponse resource).
std::string cdsFile(const std::string& version, const std::string& cluster_yaml) {
  std::string out = "version_info: " + version + "\nresources:\n";
  std::string item = cluster_yaml;
  const std::string first = "  - name: ";
  item.replace(0, first.size(), "- \"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n  name: ");
  for (size_t at = item.find("\n    "); at != std::string::npos; at = item.find("\n    ", at + 1)) {
    item.erase(at + 1, 2);
  }
  return out + item;
}

TEST(DnsClusterFromCdsTest, WarmsUntilItsFirstLookupAndAChangedOneKeepsItsPredecessorServing) {
  TcpServer a(namedUpstream("A"));
  TcpServer b(namedUpstream("B"), "127.0.0.2", a.port());
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1"});
  dns.setMode(DnsServer::Mode::Hold);
  const std::string dir = tempDir();
  const std::string cds = dir + "/cds.yaml";
  writeFile(cds, cdsFile("1", dnsCluster("STRICT_DNS", dns.port(), a.port())));
  // The route names a cluster CDS brings: not checked at start-up.
  std::string yaml = withCluster("", "") + "  - name: placeholder\n    connect_timeout: 1s\n    type: STATIC\n";
  yaml.replace(yaml.find("          route_config:\n"), std::string("          route_config:\n").size(),
               "          route_config:\n            validate_clusters: false\n");
  yaml += "dynamic_resources:\n  cds_config: {path_config_source: {path: \"" + cds + "\"}}\n";
  CourierProcess courier;
  courier.setWaitForReady(false);
  ASSERT_TRUE(courier.start(yaml)) << courier.log();
  ASSERT_TRUE(waitFor([&] { return dns.held() > 0; })) << courier.log();
  EXPECT_EQ(courier.stat("cluster_manager.warming_clusters"), 1u);
  EXPECT_EQ(courier.admin("/ready").status, 503);
  dns.setMode(DnsServer::Mode::Answer);
  ASSERT_TRUE(courier.waitForStat("cluster_manager.warming_clusters", 0)) << courier.log();
  ASSERT_TRUE(waitFor([&] { return courier.admin("/ready").status == 200; })) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  EXPECT_EQ(fetch(port).substr(0, 2), "A ");

  // A changed cluster resolves afresh; meanwhile the previous version serves.
  // Held first: no lookup of the old version may see the new address.
  dns.setMode(DnsServer::Mode::Hold);
  dns.set("backend.test", {"127.0.0.2"});
  const std::string tmp = cds + ".tmp";
  writeFile(tmp, cdsFile("2", dnsCluster("STRICT_DNS", dns.port(), a.port(), "    respect_dns_ttl: true\n")));
  ASSERT_EQ(::rename(tmp.c_str(), cds.c_str()), 0);
  ASSERT_TRUE(courier.waitForStat("cluster_manager.cluster_modified", 1)) << courier.log();
  EXPECT_EQ(courier.stat("cluster_manager.warming_clusters"), 1u);
  EXPECT_EQ(fetch(port).substr(0, 2), "A ") << courier.log();
  dns.setMode(DnsServer::Mode::Answer);
  ASSERT_TRUE(courier.waitForStat("cluster_manager.warming_clusters", 0)) << courier.log();
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("B ", 0) == 0; })) << courier.log();
}

TEST(LogicalDnsClusterTest, OneHostAtTheFirstAddressThatFollowsTheName) {
  TcpServer a(namedUpstream("A"));
  TcpServer b(namedUpstream("B"), "127.0.0.2", a.port());
  DnsServer dns;
  dns.set("backend.test", {"127.0.0.1", "127.0.0.2"});
  CourierProcess courier;
  ASSERT_TRUE(courier.start(withCluster(dnsCluster("LOGICAL_DNS", dns.port(), a.port())))) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("A ", 0) == 0; })) << courier.log();
  EXPECT_EQ(courier.stat("cluster.backend.membership_total"), 1u);
  for (int i = 0; i < 4; ++i) EXPECT_THAT(fetch(port), ::testing::StartsWith("A "));

  dns.set("backend.test", {"127.0.0.2", "127.0.0.1"});
  ASSERT_TRUE(waitFor([&] { return fetch(port).rfind("B ", 0) == 0; })) << courier.log();
  EXPECT_EQ(courier.stat("cluster.backend.membership_total"), 1u);
}

TEST(DnsClusterConfigTest, BadConfigNamesTheField) {
  struct Case {
    std::string cluster;
    std::string error;
  };
  const std::string head = "  - name: backend\n    connect_timeout: 1s\n";
  const std::vector<Case> cases = {
      {head + "    type: STRICT_DNS\n", "static_resources.clusters[0].load_assignment.endpoints: a STRICT_DNS cluster needs at least one endpoint"},
      {head + "    type: LOGICAL_DNS\n    load_assignment:\n      endpoints:\n      - lb_endpoints:\n"
              "        - endpoint: {address: {socket_address: {address: a.test, port_value: 80}}}\n"
              "        - endpoint: {address: {socket_address: {address: b.test, port_value: 80}}}\n",
       "static_resources.clusters[0].load_assignment.endpoints: a LOGICAL_DNS cluster needs exactly one"},
      {head + "    type: STRICT_DNS\n    dns_refresh_rate: 0s\n    load_assignment:\n      endpoints:\n      - lb_endpoints:\n"
              "        - endpoint: {address: {socket_address: {address: a.test, port_value: 80}}}\n",
       "static_resources.clusters[0].dns_refresh_rate: must be at least 1ms"},
      {head + "    type: STRICT_DNS\n    dns_failure_refresh_rate: {max_interval: 1s}\n    load_assignment:\n"
              "      endpoints:\n      - lb_endpoints:\n"
              "        - endpoint: {address: {socket_address: {address: a.test, port_value: 80}}}\n",
       "static_resources.clusters[0].dns_failure_refresh_rate.base_interval"},
      {head + "    type: STRICT_DNS\n    typed_dns_resolver_config:\n      name: x\n      typed_config:\n"
              "        \"@type\": type.googleapis.com/google.protobuf.Empty\n    load_assignment:\n"
              "      endpoints:\n      - lb_endpoints:\n"
              "        - endpoint: {address: {socket_address: {address: a.test, port_value: 80}}}\n",
       "static_resources.clusters[0].typed_dns_resolver_config.typed_config: only envoy.network.dns_resolver.cares"},
      {head + "    type: STRICT_DNS\n    dns_lookup_family: V5_ONLY\n", "dns_lookup_family"},
  };
  for (const auto& c : cases) {
    const std::string dir = tempDir();
    writeFile(dir + "/bad.yaml", withCluster(c.cluster));
    std::string output;
    EXPECT_NE(CourierProcess::runToExit({"--mode", "validate", "-c", dir + "/bad.yaml"}, &output), 0) << c.cluster;
    EXPECT_THAT(output, HasSubstr(c.error)) << c.cluster;
  }
}


std::string originalDstCluster(const std::string& extra = "") {
  return R"(  - name: backend
    connect_timeout: 1s
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    cleanup_interval: 0.3s
    original_dst_lb_config: {use_http_header: true}
)" + extra;
}

HttpResponse fetchVia(uint16_t port, const std::string& dst) {
  Raw c(port);
  std::string raw = c.roundTrip(get("any", "/", "x-envoy-original-dst-host: " + dst + "\r\n"));
  HttpResponse r;
  if (raw.size() > 12) r.status = std::atoi(raw.c_str() + 9);
  size_t end = raw.find("\r\n\r\n");
  if (end != std::string::npos) r.body = raw.substr(end + 4);
  return r;
}

TEST(OriginalDstClusterTest, HeaderPicksTheHostAndIdleHostsAreCleanedUp) {
  TcpServer a(namedUpstream("A"));
  TcpServer b(namedUpstream("B"), "127.0.0.2", 0);
  CourierProcess courier;
  ASSERT_TRUE(courier.start(withCluster(originalDstCluster()))) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  const std::string to_a = "127.0.0.1:" + std::to_string(a.port());
  const std::string to_b = "127.0.0.2:" + std::to_string(b.port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(fetchVia(port, to_a).body, ::testing::StartsWith("A ")) << courier.log();
    EXPECT_THAT(fetchVia(port, to_b).body, ::testing::StartsWith("B ")) << courier.log();
  }
  // Both destinations become hosts of the cluster on the main thread...
  EXPECT_TRUE(courier.waitForStat("cluster.backend.membership_total", 2)) << courier.log();
  // ...and leave it once idle for a cleanup_interval or two.
  EXPECT_TRUE(courier.waitForStat("cluster.backend.membership_total", 0)) << courier.log();
  // A host that left comes back on the next request.
  EXPECT_THAT(fetchVia(port, to_b).body, ::testing::StartsWith("B "));
}

TEST(OriginalDstClusterTest, AHeaderThatIsNotAnAddressGets503) {
  CourierProcess courier;
  ASSERT_TRUE(courier.start(withCluster(originalDstCluster()))) << courier.log();
  EXPECT_EQ(fetchVia(courier.listenerPort("http"), "not-an-address").status, 503);
  EXPECT_EQ(fetchVia(courier.listenerPort("http"), "127.0.0.1:99999").status, 503);
}

TEST(OriginalDstClusterTest, BadConfigNamesTheField) {
  struct Case {
    std::string cluster;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"  - name: backend\n    type: ORIGINAL_DST\n",
       "static_resources.clusters[0].lb_policy: an ORIGINAL_DST cluster needs CLUSTER_PROVIDED"},
      {"  - name: backend\n    type: ORIGINAL_DST\n    lb_policy: CLUSTER_PROVIDED\n    load_assignment:\n"
       "      endpoints:\n      - lb_endpoints:\n"
       "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 80}}}\n",
       "static_resources.clusters[0].load_assignment: an ORIGINAL_DST cluster takes no endpoints"},
      {"  - name: backend\n    type: ORIGINAL_DST\n    lb_policy: CLUSTER_PROVIDED\n"
       "    original_dst_lb_config: {upstream_port_override: 70000}\n",
       "static_resources.clusters[0].original_dst_lb_config.upstream_port_override"},
  };
  for (const auto& c : cases) {
    const std::string dir = tempDir();
    writeFile(dir + "/bad.yaml", withCluster(c.cluster));
    std::string output;
    EXPECT_NE(CourierProcess::runToExit({"--mode", "validate", "-c", dir + "/bad.yaml"}, &output), 0) << c.cluster;
    EXPECT_THAT(output, HasSubstr(c.error)) << c.cluster;
  }
}

}  // namespace
}  // namespace courier::test
