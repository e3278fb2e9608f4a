// Filter-chain-only listener updates over ADS (Envoy's in-place update):
// the listener keeps its socket, connections of unchanged chains keep
// running, and only the connections of the changed chain drain.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "test/integration/xds_test_util.h"

namespace courier::test {
namespace {

// A loopback connection from `source_ip` (any 127/8 address is local), so
// source_prefix_ranges can tell connections apart.
class Client {
 public:
  Client(const std::string& source_ip, uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source_ip.c_str(), &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return fd_ >= 0; }
  // Sends `s` and reads back as many bytes (the upstream echoes); "" on close or timeout.
  std::string echo(const std::string& s) {
    if (::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(s.size())) return "";
    std::string got;
    while (got.size() < s.size()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return "";
      char buf[256];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return "";
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // True once the proxy closed the connection (within 10 s).
  bool waitForClose() {
    for (int i = 0; i < 100; ++i) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char buf[256];
        if (::recv(fd_, buf, sizeof(buf), 0) <= 0) return true;
      }
    }
    return false;
  }

 private:
  int fd_ = -1;
};

envoy::config::cluster::v3::Cluster echoCluster(uint16_t port) {
  envoy::config::cluster::v3::Cluster c;
  EXPECT_TRUE(protobuf::loadFromYamlString(R"(name: echo
connect_timeout: 1s
type: STATIC
load_assignment:
  cluster_name: echo
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" + std::to_string(port) + "}}}\n",
                                           c)
                  .ok());
  return c;
}

// Listener "fc" with chain "keep" for connections from 127.0.0.2 and chain
// "other" for the rest, both tcp_proxy to the echo cluster; `other_prefix`
// is the stat_prefix of "other" (changing it changes only that chain).
envoy::config::listener::v3::Listener listener(uint16_t port, const std::string& other_prefix,
                                               const std::string& listener_extra = "") {
  auto tcp_proxy = [](const std::string& prefix) {
    return R"(
  filters:
  - name: envoy.filters.network.tcp_proxy
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
      stat_prefix: )" + prefix + R"(
      cluster: echo
)";
  };
  envoy::config::listener::v3::Listener l;
  const std::string yaml = "name: fc\naddress: {socket_address: {address: 127.0.0.1, port_value: " +
                           std::to_string(port) + "}}\n" + listener_extra + R"(filter_chains:
- name: keep
  filter_chain_match: {source_prefix_ranges: [{address_prefix: 127.0.0.2, prefix_len: 32}]})" +
                           tcp_proxy("keep") + "- name: other" + tcp_proxy(other_prefix);
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, l).ok()) << yaml;
  return l;
}

class FilterChainUpdateTest : public AdsIntegrationTest {
 protected:
  void SetUp() override {
    AdsIntegrationTest::SetUp();
    ASSERT_TRUE(courier_.start(adsBootstrap(delta(), ads_port_), {"--drain-time-s", "1"})) << courier_.log();
    ASSERT_TRUE(serve(0, cursor_, kClusterType, "c1", std::vector{echoCluster(echo_.port())}));
    ASSERT_TRUE(serve(0, cursor_, kListenerType, "l1", std::vector{listener(port_, "other1")}));
    ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();
  }

  TcpServer echo_{TcpServer::echo()};
  size_t cursor_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Protocols, FilterChainUpdateTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

TEST_P(FilterChainUpdateTest, UnchangedChainKeepsItsConnectionsWhileTheChangedOneDrains) {
  Client kept("127.0.0.2", port_);
  Client changed("127.0.0.1", port_);
  ASSERT_TRUE(kept.connected() && changed.connected());
  ASSERT_EQ(kept.echo("k1"), "k1");
  ASSERT_EQ(changed.echo("c1"), "c1");

  ASSERT_TRUE(push(0, kListenerType, "l2", std::vector{listener(port_, "other2")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.listener_in_place_updated"), 1u);
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 1u);

  // The changed chain's connection is closed when the drain time ends...
  EXPECT_TRUE(changed.waitForClose());
  ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_draining", 0));
  // ...while the unchanged chain's connection lives on past it.
  EXPECT_EQ(kept.echo("k2"), "k2");
  // New connections meet the new chain on the same socket.
  Client fresh("127.0.0.1", port_);
  ASSERT_TRUE(fresh.connected());
  EXPECT_EQ(fresh.echo("f1"), "f1");
  EXPECT_TRUE(courier_.waitForStat("tcp.other2.downstream_cx_total", 1));
  EXPECT_EQ(courier_.stat("listener.127.0.0.1_" + std::to_string(port_) + ".downstream_cx_active"), 2u);
}

TEST_P(FilterChainUpdateTest, ListenerLevelChangeDrainsEveryChain) {
  Client kept("127.0.0.2", port_);
  ASSERT_TRUE(kept.connected());
  ASSERT_EQ(kept.echo("k1"), "k1");
  ASSERT_TRUE(push(0, kListenerType, "l2",
                   std::vector{listener(port_, "other1", "per_connection_buffer_limit_bytes: 65536\n")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.listener_in_place_updated"), 0u);
  EXPECT_TRUE(kept.waitForClose());
  Client fresh("127.0.0.2", port_);
  ASSERT_TRUE(fresh.connected());
  EXPECT_EQ(fresh.echo("f1"), "f1");
}

}  // namespace
}  // namespace courier::test
