// tools/xds_server's server driving the real courier binary over ADS, both
// protocols: a directory of resource files is served, and a changed file
// becomes a pushed update.
#include "tools/xds_server/snapshot_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

// Answers every HTTP request with `name`, keep-alive.
TcpServer::Handler named(std::string name) {
  return [name](int fd) {
    std::string buffered;
    char buf[4096];
    for (;;) {
      while (buffered.find("\r\n\r\n") == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) return;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) return;
        buffered.append(buf, static_cast<size_t>(n));
      }
      buffered.erase(0, buffered.find("\r\n\r\n") + 4);
      std::string r = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(name.size()) + "\r\n\r\n" + name;
      ::send(fd, r.data(), r.size(), MSG_NOSIGNAL);
    }
  };
}

std::string clusters(uint16_t a, uint16_t b) {
  std::string out = "resources:\n";
  for (auto [name, port] : {std::pair<std::string, uint16_t>{"a", a}, {"b", b}}) {
    out += R"(- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: )" + name + R"(
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: )" + name + R"(
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
           std::to_string(port) + "}}}\n";
  }
  return out;
}

std::string listener(uint16_t port, const std::string& cluster) {
  return R"(resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: ingress
  address: {socket_address: {address: 127.0.0.1, port_value: )" + std::to_string(port) + R"(}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: ingress
        route_config:
          virtual_hosts:
          - name: all
            domains: ["*"]
            routes:
            - match: {prefix: "/"}
              route: {cluster: )" + cluster + "}\n";
}

class SnapshotServerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = tempDir();
    port_ = unusedPort();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    target_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    courier_.signal(SIGKILL);
    server_->Shutdown(std::chrono::system_clock::now());
  }

  bool load() {
    tools::Snapshot snapshot;
    absl::Status s = tools::loadSnapshot(dir_, snapshot);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return false;
    service_.update(std::move(snapshot));
    return true;
  }

  bool startCourier() {
    courier_.setWaitForReady(false);
    return courier_.start(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: )" + std::string(GetParam() ? "DELTA_GRPC" : "GRPC") + R"(
    transport_api_version: V3
    grpc_services: [{google_grpc: {target_uri: ")" + target_ + R"(", stat_prefix: ads}}]
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
)");
  }

  std::string get() {
    HttpResponse r = httpRequest(port_, "GET", "/");
    return std::to_string(r.status) + " " + r.body;
  }

  TcpServer a_{named("a")};
  TcpServer b_{named("b")};
  tools::SnapshotServer service_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
  std::string dir_;
  uint16_t port_ = 0;
  CourierProcess courier_;
};

INSTANTIATE_TEST_SUITE_P(Protocols, SnapshotServerTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

TEST_P(SnapshotServerTest, ServesTheDirectoryAndPushesChanges) {
  writeFile(dir_ + "/cds.yaml", clusters(a_.port(), b_.port()));
  writeFile(dir_ + "/lds.yaml", listener(port_, "a"));
  ASSERT_TRUE(load());
  ASSERT_TRUE(startCourier()) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();
  EXPECT_EQ(get(), "200 a");
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; }));

  writeFile(dir_ + "/lds.yaml", listener(port_, "b"));
  ASSERT_TRUE(load());
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(get(), "200 b");
  // Clusters did not change: not pushed again.
  EXPECT_EQ(courier_.stat("cluster_manager.cds.update_success"), 1u);
}

// EDS clusters, a listener naming RDS table "routes", the table sending "/"
// to `cluster`, and the assignments web -> `web`, api -> `api`.
std::string edsClusters(const std::vector<std::string>& names) {
  std::string out = "resources:\n";
  for (const std::string& name : names) {
    out += std::string(R"(- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: )") + name + R"(
  type: EDS
  connect_timeout: 1s
  eds_cluster_config: {eds_config: {ads: {}, resource_api_version: V3}}
)";
  }
  return out;
}

std::string rdsListener(uint16_t port) {
  return R"(resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: ingress
  address: {socket_address: {address: 127.0.0.1, port_value: )" + std::to_string(port) + R"(}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: ingress
        rds:
          route_config_name: routes
          config_source: {ads: {}, resource_api_version: V3}
        http_filters:
        - name: envoy.filters.http.router
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
}

std::string routes(const std::string& cluster) {
  return R"(resources:
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: routes
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - match: {prefix: "/"}
      route: {cluster: )" + cluster + "}\n";
}

std::string assignments(uint16_t web, uint16_t api) {
  std::string out = "resources:\n";
  for (auto [name, port] : {std::pair<std::string, uint16_t>{"web", web}, {"api", api}}) {
    out += R"(- "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
  cluster_name: )" + name + R"(
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
           std::to_string(port) + "}}}\n";
  }
  return out;
}

TEST_P(SnapshotServerTest, ServesRouteTablesAndEndpointsByTheNamesAsked) {
  writeFile(dir_ + "/cds.yaml", edsClusters({"web"}));
  writeFile(dir_ + "/lds.yaml", rdsListener(port_));
  writeFile(dir_ + "/rds.yaml", routes("web"));
  writeFile(dir_ + "/eds.yaml", assignments(a_.port(), b_.port()));
  ASSERT_TRUE(load());
  ASSERT_TRUE(startCourier()) << courier_.log();
  ASSERT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  EXPECT_EQ(get(), "200 a");
  EXPECT_EQ(courier_.stat("http.ingress.rds.routes.update_success"), 1u);
  EXPECT_EQ(courier_.stat("cluster.web.membership_total"), 1u);

  // A second EDS cluster asks for an assignment the server had all along:
  // answered for the new name although the EDS files did not change.
  writeFile(dir_ + "/cds.yaml", edsClusters({"web", "api"}));
  ASSERT_TRUE(load());
  ASSERT_TRUE(courier_.waitForStat("cluster.api.membership_total", 1)) << courier_.log();
  // The table moves to api: pushed as RDS.
  writeFile(dir_ + "/rds.yaml", routes("api"));
  ASSERT_TRUE(load());
  ASSERT_TRUE(courier_.waitForStat("http.ingress.rds.routes.update_success", 2)) << courier_.log();
  EXPECT_EQ(get(), "200 b");
  // web's endpoints move to b: pushed as EDS.
  writeFile(dir_ + "/rds.yaml", routes("web"));
  writeFile(dir_ + "/eds.yaml", assignments(b_.port(), b_.port()));
  ASSERT_TRUE(load());
  ASSERT_TRUE(waitFor([&] { return get() == "200 b"; })) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.lds.update_success"), 1u);
}

TEST(LoadSnapshotTest, DuplicateNameAcrossFilesIsAnErrorNamingBoth) {
  const std::string dir = tempDir();
  writeFile(dir + "/one.yaml", clusters(1, 2));
  writeFile(dir + "/two.yaml", clusters(3, 4));
  tools::Snapshot snapshot;
  absl::Status s = tools::loadSnapshot(dir, snapshot);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("one.yaml"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("two.yaml"));
}

}  // namespace
}  // namespace courier::test
