// File-based LDS and CDS end to end: the real courier binary reading
// DiscoveryResponse files through dynamic_resources.{lds,cds}_config, with
// the files replaced by atomic rename while traffic flows.
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

#include <atomic>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Reads one request head (no bodies in these tests); false on EOF or timeout.
bool readRequestHead(int fd, std::string& buffered) {
  char buf[4096];
  while (buffered.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffered.append(buf, static_cast<size_t>(n));
  }
  buffered.erase(0, buffered.find("\r\n\r\n") + 4);
  return true;
}

void respond(int fd, const std::string& body) {
  std::string r = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ::send(fd, r.data(), r.size(), MSG_NOSIGNAL);
}

// Answers every request with its own name, keep-alive.
TcpServer::Handler named(std::string name) {
  return [name](int fd) {
    std::string buffered;
    while (readRequestHead(fd, buffered)) respond(fd, name);
  };
}

// A Cluster YAML list entry; `resource` adds the Any type for a DiscoveryResponse.
std::string cluster(const std::string& name, uint16_t port, const std::string& indent, bool resource = false) {
  return indent + "- " + (resource ? "\"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n" + indent + "  " : "") +
         "name: " + name + "\n" + indent + "  connect_timeout: 1s\n" + indent + "  type: STATIC\n" +
         indent + "  load_assignment:\n" + indent + "    cluster_name: " + name + "\n" + indent +
         "    endpoints:\n" + indent + "    - lb_endpoints:\n" + indent +
         "      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " + std::to_string(port) +
         "}}}\n";
}

// A DiscoveryResponse with one HTTP listener `name` on `port` routing
// everything to `cluster_name`.
std::string httpListener(const std::string& name, uint16_t port, const std::string& cluster_name) {
  return R"(- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: )" + name + R"(
  address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(port) + R"(}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: )" + name + R"(
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
}

// A DiscoveryResponse entry: a TCP proxy listener to `cluster_name`.
std::string tcpListener(const std::string& name, uint16_t port, const std::string& cluster_name,
                        const std::string& stat_prefix) {
  return R"(- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: )" + name + R"(
  address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(port) + R"(}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.tcp_proxy
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
        stat_prefix: )" + stat_prefix + R"(
        cluster: )" + cluster_name + "\n";
}

std::string discoveryResponse(const std::string& version, const std::string& resources) {
  return "version_info: \"" + version + "\"\nresources:\n" + resources;
}

class XdsFileIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tempDir();
    lds_path_ = dir_ + "/lds.yaml";
    cds_path_ = dir_ + "/cds.yaml";
    port_ = unusedPort();
  }

  // Replaces `path` the way config management does: write beside, rename over.
  void replaceFile(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp";
    writeFile(tmp, content);
    ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
  }

  // Admin, static clusters a and b, LDS (and CDS when `with_cds`) from files.
  // `wait`: until the first LDS update applied.
  bool start(bool with_cds = false, std::vector<std::string> args = {}, bool wait = true) {
    std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  lds_config:
    path_config_source: {path: ")" + lds_path_ + R"("}
)";
    if (with_cds) yaml += "  cds_config:\n    path: \"" + cds_path_ + "\"\n";
    yaml += "static_resources:\n  clusters:\n" + cluster("a", a_.port(), "  ") + cluster("b", b_.port(), "  ");
    if (!courier_.start(yaml, std::move(args))) return false;
    return !wait || courier_.waitForStat("listener_manager.lds.update_success", 1);
  }

  std::string get() {
    HttpResponse r = httpRequest(port_, "GET", "/");
    return std::to_string(r.status) + " " + r.body;
  }

  TcpServer a_{named("a")};
  TcpServer b_{named("b")};
  CourierProcess courier_;
  std::string dir_;
  std::string lds_path_;
  std::string cds_path_;
  uint16_t port_ = 0;
};

TEST_F(XdsFileIntegrationTest, ListenerFromLdsFileServes) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  EXPECT_EQ(get(), "200 a");
  EXPECT_EQ(courier_.stat("listener_manager.listener_added"), 1u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(courier_.admin("/ready").status, 200);
  EXPECT_THAT(courier_.admin("/listeners").body, HasSubstr("lds::127.0.0.1:" + std::to_string(port_)));
  const std::string dump = courier_.admin("/config_dump").body;
  EXPECT_THAT(dump, HasSubstr("\"dynamic_listeners\""));
  EXPECT_THAT(dump, HasSubstr("\"active_state\""));
  EXPECT_THAT(dump, HasSubstr("\"version_info\": \"1\""));
}

TEST_F(XdsFileIntegrationTest, RenamedLdsFileWithChangedRouteAppliesToNewRequests) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  ASSERT_EQ(get(), "200 a");
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "b")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 1u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(get(), "200 b");
}

TEST_F(XdsFileIntegrationTest, UnchangedListenerIsLeftAlone) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  // A new version of the file with the same listener.
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "a")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 0u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_draining"), 0u);
  EXPECT_EQ(get(), "200 a");
}

TEST_F(XdsFileIntegrationTest, RequestInFlightAcrossListenerUpdateCompletes) {
  std::atomic<bool> received{false};
  std::atomic<bool> release{false};
  TcpServer slow([&](int fd) {
    std::string buffered;
    if (!readRequestHead(fd, buffered)) return;
    received = true;
    waitFor([&] { return release.load(); }, 15000ms);
    respond(fd, "slow");
  });
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "slow")));
  std::string yaml_clusters = cluster("slow", slow.port(), "  ");
  // Its own bootstrap: the route names cluster "slow".
  std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  lds_config:
    path_config_source: {path: ")" + lds_path_ + R"("}
static_resources:
  clusters:
)" + yaml_clusters + cluster("b", b_.port(), "  ");
  ASSERT_TRUE(courier_.start(yaml, {"--drain-time-s", "30"})) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();

  TcpClient client(port_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.write("GET /long HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
  ASSERT_TRUE(waitFor([&] { return received.load(); }));

  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "b")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_draining"), 1u);
  EXPECT_EQ(get(), "200 b");

  release = true;
  const std::string response = client.readToEof();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(response, HasSubstr("slow"));
}

TEST_F(XdsFileIntegrationTest, IdleKeepAliveConnectionOfAReplacedListenerEndsAfterItsNextResponse) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  Raw old_conn(port_);
  ASSERT_THAT(old_conn.roundTrip(test::get("x", "/")), HasSubstr("\r\n\r\na"));
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "b")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  // As Envoy: not closed under a client that may be sending; the request it
  // sends next is answered (by the old listener's routes) and ends the
  // connection, which is not reset.
  const std::string response = old_conn.roundTrip(test::get("x", "/"));
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(response, HasSubstr("connection: close\r\n"));
  EXPECT_THAT(response, HasSubstr("\r\n\r\na"));
  EXPECT_TRUE(old_conn.client.waitForClose());
  EXPECT_EQ(get(), "200 b");
}

TEST_F(XdsFileIntegrationTest, ResponseInFlightOnAReplacedListenerEndsWithConnectionClose) {
  std::atomic<bool> release{false};
  TcpServer slow([&](int fd) {
    std::string buffered;
    if (!readRequestHead(fd, buffered)) return;
    waitFor([&] { return release.load(); });
    respond(fd, "slow");
  });
  std::string lds = httpListener("lds", port_, "a");
  writeFile(lds_path_, discoveryResponse("1", lds));
  writeFile(cds_path_, discoveryResponse("c1", cluster("s", slow.port(), "", true)));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "s")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  Raw c(port_);
  ASSERT_TRUE(c.client.write(test::get("x", "/")));
  ASSERT_TRUE(courier_.waitForStat("cluster.s.upstream_rq_total", 1));
  // The listener is replaced while the response is pending.
  replaceFile(lds_path_, discoveryResponse("3", httpListener("lds", port_, "a")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 3)) << courier_.log();
  release = true;
  std::string r = c.readResponse();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r, HasSubstr("connection: close\r\n"));
  EXPECT_THAT(r, HasSubstr("slow"));
  EXPECT_TRUE(c.client.waitForClose());
}

TEST_F(XdsFileIntegrationTest, OldListenerConnectionsCloseAfterDrainTime) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start(false, {"--drain-time-s", "1"})) << courier_.log();
  TcpClient client(port_);
  ASSERT_TRUE(client.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
  ASSERT_THAT(client.readExactly(39), StartsWith("HTTP/1.1 200 OK"));
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "b")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  // The keep-alive connection is left alone until the drain time passes.
  EXPECT_TRUE(client.waitForClose());
  EXPECT_TRUE(courier_.waitForStat("listener_manager.total_listeners_draining", 0));
  EXPECT_EQ(get(), "200 b");
}

TEST_F(XdsFileIntegrationTest, ListenerMovedToANewPortServesThereAndTheOldPortRefuses) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  const uint16_t moved = unusedPort();
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", moved, "b")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(httpRequest(moved, "GET", "/").body, "b");
  EXPECT_EQ(courier_.listenerPort("lds"), moved);
  TcpClient refused(port_, 2000ms);
  EXPECT_FALSE(refused.connected());
}

TEST_F(XdsFileIntegrationTest, TcpProxyConnectionOnAReplacedListenerLastsUntilTheDrainTime) {
  TcpServer echo(TcpServer::echo());
  const std::string clusters = cluster("echo", echo.port(), "  ");
  writeFile(lds_path_, discoveryResponse("1", tcpListener("tcp", port_, "echo", "one")));
  ASSERT_TRUE(courier_.start(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  lds_config:
    path_config_source: {path: ")" + lds_path_ + R"("}
static_resources:
  clusters:
)" + clusters, {"--drain-time-s", "2"})) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();
  TcpClient old_connection(port_);
  ASSERT_TRUE(old_connection.write("before"));
  ASSERT_EQ(old_connection.readExactly(6), "before");

  replaceFile(lds_path_, discoveryResponse("2", tcpListener("tcp", port_, "echo", "two")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  // The old connection still carries bytes; new ones meet the new listener.
  ASSERT_TRUE(old_connection.write("during"));
  EXPECT_EQ(old_connection.readExactly(6), "during");
  TcpClient new_connection(port_);
  ASSERT_TRUE(new_connection.write("new"));
  EXPECT_EQ(new_connection.readExactly(3), "new");
  EXPECT_TRUE(courier_.waitForStat("tcp.two.downstream_cx_total", 1));
  // When the drain time is over the old connection is closed.
  EXPECT_TRUE(old_connection.waitForClose());
  EXPECT_TRUE(courier_.waitForStat("listener_manager.total_listeners_draining", 0));
  ASSERT_TRUE(new_connection.write("still"));
  EXPECT_EQ(new_connection.readExactly(5), "still");
}

TEST_F(XdsFileIntegrationTest, BadLdsFileIsRejectedAndTheOldListenerKeepsServing) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  // An HTTP filter whose typed_config decodes but names no HTTP filter.
  std::string bad = httpListener("lds", port_, "b");
  const std::string router = "envoy.extensions.filters.http.router.v3.Router";
  bad.replace(bad.find(router), router.size(), "envoy.config.cluster.v3.Cluster");
  replaceFile(lds_path_, discoveryResponse("2", bad));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_rejected", 1)) << courier_.log();
  EXPECT_THAT(courier_.log(), HasSubstr("listener \"lds\": resources[0].filter_chains[0].filters[0].typed_config.http_filters[0]"));
  EXPECT_EQ(get(), "200 a");
  EXPECT_EQ(courier_.stat("listener_manager.lds.update_success"), 1u);
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 0u);
}

TEST_F(XdsFileIntegrationTest, ListenerNamingAnUnknownClusterIsRejectedWithItsFieldPath) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "a") +
                                                    httpListener("other", unusedPort(), "missing")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_rejected", 1)) << courier_.log();
  EXPECT_THAT(courier_.log(), HasSubstr("listener \"other\": resources[1].filter_chains[0].filters[0]"));
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(get(), "200 a");
}

TEST_F(XdsFileIntegrationTest, ListenerOnAPortInUseIsRejected) {
  TcpServer squatter(named("squatter"));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "a") +
                                                    httpListener("other", squatter.port(), "a")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_rejected", 1)) << courier_.log();
  EXPECT_THAT(courier_.log(), HasSubstr("listener \"other\": resources[1].address"));
  EXPECT_EQ(get(), "200 a");
}

TEST_F(XdsFileIntegrationTest, RemovedListenerRefusesNewConnections) {
  const uint16_t second = unusedPort();
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a") + httpListener("two", second, "b")));
  ASSERT_TRUE(start()) << courier_.log();
  ASSERT_EQ(httpRequest(second, "GET", "/").body, "b");
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "a")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.listener_removed"), 1u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  TcpClient refused(second, 2000ms);
  EXPECT_FALSE(refused.connected());
  EXPECT_EQ(get(), "200 a");
}

TEST_F(XdsFileIntegrationTest, AddedListenerOnANewPortServes) {
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start()) << courier_.log();
  const uint16_t second = unusedPort();
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "a") + httpListener("two", second, "b")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.listener_added"), 2u);
  EXPECT_EQ(httpRequest(second, "GET", "/").body, "b");
  EXPECT_EQ(get(), "200 a");
}

TEST_F(XdsFileIntegrationTest, CdsClusterIsWarmedBeforeTheLdsRouteThatUsesIt) {
  TcpServer dynamic_upstream(named("dyn"));
  writeFile(cds_path_, discoveryResponse("c1", cluster("dyn", dynamic_upstream.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  EXPECT_EQ(get(), "200 dyn");
  EXPECT_EQ(courier_.stat("cluster_manager.cds.update_success"), 1u);
  EXPECT_EQ(courier_.stat("cluster_manager.cluster_added"), 1u);
  EXPECT_EQ(courier_.stat("cluster_manager.active_clusters"), 3u);
  EXPECT_THAT(courier_.admin("/config_dump").body, HasSubstr("\"dynamic_active_clusters\""));
  EXPECT_THAT(courier_.admin("/clusters").body, HasSubstr("dyn::added_via_api::true"));
}

TEST_F(XdsFileIntegrationTest, CdsAddsAClusterThatALaterRouteUses) {
  writeFile(cds_path_, discoveryResponse("c1", ""));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  TcpServer dynamic_upstream(named("dyn"));
  replaceFile(cds_path_, discoveryResponse("c2", cluster("dyn", dynamic_upstream.port(), "", true)));
  ASSERT_TRUE(courier_.waitForStat("cluster_manager.cds.update_success", 2)) << courier_.log();
  replaceFile(lds_path_, discoveryResponse("2", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(get(), "200 dyn");
}

TEST_F(XdsFileIntegrationTest, CdsRemovingAClusterAnswers503ForRoutesNamingIt) {
  TcpServer dynamic_upstream(named("dyn"));
  writeFile(cds_path_, discoveryResponse("c1", cluster("dyn", dynamic_upstream.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  ASSERT_EQ(get(), "200 dyn");
  replaceFile(cds_path_, discoveryResponse("c2", ""));
  ASSERT_TRUE(courier_.waitForStat("cluster_manager.cds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("cluster_manager.cluster_removed"), 1u);
  EXPECT_EQ(courier_.stat("cluster_manager.active_clusters"), 2u);
  HttpResponse r = httpRequest(port_, "GET", "/");
  EXPECT_EQ(r.status, 503);
}

TEST_F(XdsFileIntegrationTest, CdsChangingAClusterEndpointMovesNewRequests) {
  TcpServer first(named("first"));
  TcpServer second(named("second"));
  writeFile(cds_path_, discoveryResponse("c1", cluster("dyn", first.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  ASSERT_EQ(get(), "200 first");
  replaceFile(cds_path_, discoveryResponse("c2", cluster("dyn", second.port(), "", true)));
  ASSERT_TRUE(courier_.waitForStat("cluster_manager.cds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("cluster_manager.cluster_modified"), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(get(), "200 second");
}

TEST_F(XdsFileIntegrationTest, ChangedClusterClosesTheOldVersionsIdleConnectionsAndConnectsAnew) {
  TcpServer upstream(named("dyn"));
  writeFile(cds_path_, discoveryResponse("c1", cluster("dyn", upstream.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true, {"--concurrency", "1"})) << courier_.log();
  ASSERT_EQ(get(), "200 dyn");
  // The kept-alive upstream connection sits idle in the pool.
  ASSERT_EQ(courier_.stat("cluster.dyn.upstream_cx_active"), 1u);
  // Same endpoint, other settings: a new version of the cluster.
  std::string changed = cluster("dyn", upstream.port(), "", true);
  changed.replace(changed.find("connect_timeout: 1s"), 19, "connect_timeout: 2s");
  replaceFile(cds_path_, discoveryResponse("c2", changed));
  ASSERT_TRUE(courier_.waitForStat("cluster_manager.cds.update_success", 2)) << courier_.log();
  EXPECT_TRUE(courier_.waitForStat("cluster.dyn.upstream_cx_active", 0));
  EXPECT_EQ(get(), "200 dyn");
  EXPECT_EQ(courier_.stat("cluster.dyn.upstream_cx_total"), 2u);
}

TEST_F(XdsFileIntegrationTest, UnchangedClusterKeepsItsPooledConnection) {
  TcpServer upstream(named("dyn"));
  TcpServer other(named("other"));
  writeFile(cds_path_, discoveryResponse("c1", cluster("dyn", upstream.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true, {"--concurrency", "1"})) << courier_.log();
  ASSERT_EQ(get(), "200 dyn");
  // Another cluster joins; "dyn" stays as it was.
  replaceFile(cds_path_, discoveryResponse("c2", cluster("dyn", upstream.port(), "", true) +
                                                     cluster("other", other.port(), "", true)));
  ASSERT_TRUE(courier_.waitForStat("cluster_manager.cds.update_success", 2)) << courier_.log();
  EXPECT_EQ(get(), "200 dyn");
  EXPECT_EQ(courier_.stat("cluster.dyn.upstream_cx_total"), 1u);
}

TEST_F(XdsFileIntegrationTest, RequestInFlightOnARemovedClusterCompletes) {
  std::atomic<bool> received{false};
  std::atomic<bool> release{false};
  TcpServer slow([&](int fd) {
    std::string buffered;
    if (!readRequestHead(fd, buffered)) return;
    received = true;
    waitFor([&] { return release.load(); }, 15000ms);
    respond(fd, "slow");
  });
  writeFile(cds_path_, discoveryResponse("c1", cluster("dyn", slow.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  TcpClient client(port_);
  ASSERT_TRUE(client.write("GET /long HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
  ASSERT_TRUE(waitFor([&] { return received.load(); }));

  replaceFile(cds_path_, discoveryResponse("c2", ""));
  ASSERT_TRUE(courier_.waitForStat("cluster_manager.cds.update_success", 2)) << courier_.log();
  EXPECT_EQ(httpRequest(port_, "GET", "/").status, 503);

  release = true;
  const std::string response = client.readToEof();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(response, HasSubstr("slow"));
}

TEST_F(XdsFileIntegrationTest, ConfigDumpShowsDynamicResourcesInEnvoysShape) {
  TcpServer dynamic_upstream(named("dyn"));
  writeFile(cds_path_, discoveryResponse("c7", cluster("dyn", dynamic_upstream.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("l9", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  const std::string listeners = courier_.admin("/config_dump?resource=dynamic_listeners").body;
  EXPECT_THAT(listeners, HasSubstr("ListenersConfigDump.DynamicListener"));
  EXPECT_THAT(listeners, HasSubstr("\"name\": \"lds\""));
  EXPECT_THAT(listeners, HasSubstr("\"version_info\": \"l9\""));
  EXPECT_THAT(listeners, HasSubstr("\"last_updated\""));
  const std::string clusters = courier_.admin("/config_dump?resource=dynamic_active_clusters").body;
  EXPECT_THAT(clusters, HasSubstr("ClustersConfigDump.DynamicCluster"));
  EXPECT_THAT(clusters, HasSubstr("\"version_info\": \"c7\""));
  EXPECT_THAT(clusters, HasSubstr("envoy.config.cluster.v3.Cluster"));
  // Dynamic resources are not static ones.
  EXPECT_THAT(courier_.admin("/config_dump?resource=static_listeners").body, ::testing::Not(HasSubstr("\"lds\"")));
  EXPECT_THAT(courier_.admin("/config_dump?resource=static_clusters").body, ::testing::Not(HasSubstr("\"dyn\"")));
}

TEST_F(XdsFileIntegrationTest, BadCdsUpdateIsRejectedWholeWithItsFieldPath) {
  TcpServer dynamic_upstream(named("dyn"));
  writeFile(cds_path_, discoveryResponse("c1", cluster("dyn", dynamic_upstream.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "dyn")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  std::string bad = cluster("broken", 1, "", true);
  bad.replace(bad.find("connect_timeout: 1s"), 19, "connect_timeout: 0s");
  // Removing dyn and adding a broken cluster: neither happens.
  replaceFile(cds_path_, discoveryResponse("c2", bad));
  ASSERT_TRUE(courier_.waitForStat("cluster_manager.cds.update_rejected", 1)) << courier_.log();
  EXPECT_THAT(courier_.log(), HasSubstr("cluster \"broken\": resources[0].connect_timeout"));
  EXPECT_EQ(courier_.stat("cluster_manager.cluster_removed"), 0u);
  EXPECT_EQ(get(), "200 dyn");
}

TEST_F(XdsFileIntegrationTest, StaticClustersCannotBeRemovedOrReplacedByCds) {
  writeFile(cds_path_, discoveryResponse("c1", cluster("a", b_.port(), "", true)));
  writeFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(start(/*with_cds=*/true)) << courier_.log();
  EXPECT_EQ(get(), "200 a");
  EXPECT_EQ(courier_.stat("cluster_manager.cluster_modified"), 0u);
  EXPECT_EQ(courier_.stat("cluster_manager.active_clusters"), 2u);
}

TEST_F(XdsFileIntegrationTest, MissingLdsFileIsAFailedFetchTheServerGoesLiveWithout) {
  // A missing file is a failed initial fetch: the server goes live without it.
  ASSERT_TRUE(start(false, {}, /*wait=*/false)) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_failure", 1)) << courier_.log();
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; }));
  // The file appearing later is picked up.
  replaceFile(lds_path_, discoveryResponse("1", httpListener("lds", port_, "a")));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();
}

}  // namespace
}  // namespace courier::test
