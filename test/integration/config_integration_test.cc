// Configuration loading through the binary: --mode validate, --config-yaml
// merging, and the exact errors for each class of bad config.
#include <algorithm>
#include <string>

#include "gtest/gtest.h"
#include "gmock/gmock.h"
#include "test/integration/configs.h"
#include "test/test_common/courier_process.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

std::string writeConfig(const std::string& name, const std::string& body) {
  std::string path = tempDir() + "/" + name;
  writeFile(path, body);
  return path;
}

TEST(ConfigIntegrationTest, ValidateModeAcceptsAGoodConfig) {
  std::string path = writeConfig("good.yaml", tcpProxyConfig({9}));
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 0);
  EXPECT_THAT(out, HasSubstr("configuration '" + path + "' OK"));
}

TEST(ConfigIntegrationTest, ExampleBootstrapsValidate) {
  for (const char* example : {"examples/default/courier.yaml", "examples/canary/bootstrap.yaml", "examples/ads/courier.yaml"}) {
    std::string out;
    EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", runfile(example)}, &out), 0) << example << ": " << out;
    EXPECT_THAT(out, HasSubstr("OK")) << example;
  }
}

TEST(ConfigIntegrationTest, JsonConfigIsAccepted) {
  std::string path = writeConfig("good.json", R"({"static_resources": {"clusters": [{"name": "c",
      "connect_timeout": "0.25s", "type": "STATIC", "load_assignment": {"cluster_name": "c", "endpoints": [
      {"lb_endpoints": [{"endpoint": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 80}}}}]}]}}]}})");
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 0) << out;
}

TEST(ConfigIntegrationTest, UnknownFieldIsAnErrorNamingFileLineAndPath) {
  std::string config = tcpProxyConfig({9});
  config.replace(config.find("    connect_timeout"), 0, "    lb_polcy: ROUND_ROBIN\n");
  std::string path = writeConfig("bad.yaml", config);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("bad.yaml:"));
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].lb_polcy"));
}

TEST(ConfigIntegrationTest, BadDurationNamesTheField) {
  std::string path = writeConfig("bad.yaml", tcpProxyConfig({9}, "", "five seconds"));
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].connect_timeout"));
}

TEST(ConfigIntegrationTest, UnknownTypedConfigTypeIsNamed) {
  std::string config = tcpProxyConfig({9});
  config.replace(config.find("tcp_proxy.v3.TcpProxy"), 21, "tcp_proxy.v3.NoSuchThing");
  std::string path = writeConfig("bad.yaml", config);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("static_resources.listeners[0].filter_chains[0].filters[0].typed_config"));
  EXPECT_THAT(out, HasSubstr("envoy.extensions.filters.network.tcp_proxy.v3.NoSuchThing"));
}

TEST(ConfigIntegrationTest, UnsupportedClusterTypeIsNamed) {
  std::string config = tcpProxyConfig({9});
  // Every DiscoveryType is served now; custom cluster types are not.
  config.replace(config.find("type: STATIC"), 12, "cluster_type: {name: envoy.clusters.aggregate}");
  std::string path = writeConfig("bad.yaml", config);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].cluster_type: custom cluster type "
                             "\"envoy.clusters.aggregate\" is not supported"));
}

TEST(ConfigIntegrationTest, EdsClusterWithoutEdsConfigIsNamed) {
  std::string config = tcpProxyConfig({9});
  config.replace(config.find("type: STATIC"), 12, "type: EDS");
  std::string path = writeConfig("bad.yaml", config);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].eds_cluster_config.eds_config: an EDS cluster needs an eds_config"));
}

TEST(ConfigIntegrationTest, DuplicateClusterNameIsAnError) {
  std::string config = tcpProxyConfig({9});
  std::string cluster = config.substr(config.find("  - name: backend"));
  std::string path = writeConfig("bad.yaml", config + cluster);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  // Found after loading, yet still pointed at the line of the second cluster.
  const int line = 1 + static_cast<int>(std::count(config.begin(), config.end(), '\n'));
  EXPECT_THAT(out, HasSubstr("bad.yaml:" + std::to_string(line) +
                             ": static_resources.clusters[1].name: duplicate cluster name \"backend\""));
}

TEST(ConfigIntegrationTest, BadEndpointAddressNamesThePath) {
  std::string config = tcpProxyConfig({9});
  config.replace(config.rfind("127.0.0.1"), 9, "not-an-ip");
  std::string path = writeConfig("bad.yaml", config);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint."
                             "address.socket_address.address: \"not-an-ip\" is not an IPv4 or IPv6 address"));
}

TEST(ConfigIntegrationTest, MissingConfigIsAnError) {
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({}, &out), 1);
  EXPECT_THAT(out, HasSubstr("At least one of --config-path or --config-yaml"));
}

TEST(ConfigIntegrationTest, ConfigYamlIsMergedOverTheFile) {
  std::string path = writeConfig("base.yaml", tcpProxyConfig({9}));
  std::string out;
  // The overlay adds a second cluster whose endpoint is invalid: the error
  // proves the overlay was read and merged (clusters are appended).
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path, "--config-yaml",
                                       "static_resources: {clusters: [{name: extra, connect_timeout: 1s, "
                                       "load_assignment: {cluster_name: extra, endpoints: [{lb_endpoints: "
                                       "[{endpoint: {address: {socket_address: {address: bogus, port_value: 1}}}}]}]}}]}"},
                                      &out),
            1);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[1].load_assignment"));
}

TEST(ConfigIntegrationTest, BindFailureStopsStartupWithTheListenerNamed) {
  std::string config = tcpProxyConfig({9});
  // 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind fails.
  config.replace(config.find("address: 127.0.0.1, port_value: 0}}\n    filter_chains"), 19, "address: 192.0.2.1,");
  std::string path = writeConfig("bad.yaml", config);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("static_resources.listeners[0].address: cannot bind 192.0.2.1:0"));
}

TEST(ConfigIntegrationTest, NonPrimeMaglevTableSizeNamesTheField) {
  std::string config = tcpProxyConfig({9});
  config.replace(config.find("    type: STATIC\n"), 17,
                 "    type: STATIC\n    lb_policy: MAGLEV\n    maglev_lb_config: {table_size: 1000}\n");
  std::string path = writeConfig("bad.yaml", config);
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].maglev_lb_config.table_size: 1000 is not a prime number"));
}

TEST(ConfigIntegrationTest, TcpProxyFilterStateHashPolicyIsRejected) {
  std::string path = writeConfig("bad.yaml", tcpProxyConfig({9}, "          hash_policy:\n          - filter_state: {key: k}\n"));
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1);
  EXPECT_THAT(out, HasSubstr("hash_policy[0]: only source_ip is supported"));
}

}  // namespace
}  // namespace courier::test
