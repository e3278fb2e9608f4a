// TCP proxy end to end: the real courier binary between a blocking test
// client and real upstream servers, all on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "test/integration/configs.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class TcpProxyIntegrationTest : public ::testing::Test {
 protected:
  void startCourier(const std::vector<uint16_t>& ports, const std::string& extra = "") {
    ASSERT_TRUE(courier_.start(tcpProxyConfig(ports, extra))) << courier_.log();
    port_ = courier_.listenerPort("tcp");
    ASSERT_NE(port_, 0) << courier_.admin("/listeners?format=json").body;
  }
  CourierProcess courier_;
  uint16_t port_ = 0;
};

TEST_F(TcpProxyIntegrationTest, OneMebibyteEchoesBackByteForByte) {
  TcpServer upstream(TcpServer::echo());
  startCourier({upstream.port()});
  TcpClient client(port_);
  ASSERT_TRUE(client.connected());
  const std::string payload = randomBytes(1 << 20, 1);
  std::thread writer([&] { client.write(payload); });
  std::string back = client.readExactly(payload.size());
  writer.join();
  EXPECT_EQ(back.size(), payload.size());
  EXPECT_TRUE(back == payload);
  EXPECT_TRUE(courier_.waitForStat("cluster.backend.upstream_cx_total", 1));
  EXPECT_TRUE(courier_.waitForStat("tcp.tcp.downstream_cx_total", 1));
}

TEST_F(TcpProxyIntegrationTest, ClientHalfCloseReachesUpstreamAndReplyStillArrives) {
  // The upstream reads to EOF, then answers with what it counted.
  TcpServer upstream([](int fd) {
    size_t total = 0;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) total += static_cast<size_t>(n);
    std::string reply = "got " + std::to_string(total);
    ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  });
  startCourier({upstream.port()});
  TcpClient client(port_);
  ASSERT_TRUE(client.write(std::string(10000, 'h')));
  client.shutdownWrite();
  EXPECT_EQ(client.readToEof(), "got 10000");
}

TEST_F(TcpProxyIntegrationTest, UpstreamClosingMidTransferDeliversWhatWasSentThenCloses) {
  const std::string data = randomBytes(300 * 1024, 2);
  TcpServer upstream(TcpServer::sendAndClose(data));
  startCourier({upstream.port()});
  TcpClient client(port_);
  std::string got = client.readToEof();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_TRUE(courier_.waitForStat("cluster.backend.upstream_cx_rx_bytes_total", data.size()));
  // The upstream's FIN half-closed the pair; the client's close ends it.
  client.close();
  EXPECT_TRUE(courier_.waitForStat("cluster.backend.upstream_cx_active", 0));
  // The proxy keeps serving other connections.
  TcpClient second(port_);
  EXPECT_EQ(second.readToEof().size(), data.size());
}

TEST_F(TcpProxyIntegrationTest, RefusedUpstreamClosesDownstreamAndCountsConnectFailure) {
  startCourier({unusedPort()});
  TcpClient client(port_);
  ASSERT_TRUE(client.connected());
  EXPECT_TRUE(client.waitForClose());
  EXPECT_TRUE(courier_.waitForStat("cluster.backend.upstream_cx_connect_fail", 1));
  EXPECT_TRUE(courier_.waitForStat("cluster.backend.upstream_cx_active", 0));
  EXPECT_EQ(courier_.admin("/ready").status, 200);
}

// A listener that never accepts and whose queue is full: the kernel drops
// further SYNs, so a connect to it hangs until the proxy's timeout.
class BlackholeListener {
 public:
  BlackholeListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    // Fill the accept queue with connections nobody accepts.
    for (int i = 0; i < 4; ++i) fillers_.push_back(std::make_unique<TcpClient>(port_, std::chrono::milliseconds(200)));
  }
  ~BlackholeListener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_;
  std::vector<std::unique_ptr<TcpClient>> fillers_;
};

TEST(TcpProxyConnectTimeoutTest, UnansweredConnectTimesOutAndClosesDownstream) {
  BlackholeListener hole;
  CourierProcess courier;
  ASSERT_TRUE(courier.start(tcpProxyConfig({hole.port()}, "", "0.25s"))) << courier.log();
  TcpClient client(courier.listenerPort("tcp"));
  ASSERT_TRUE(client.connected());
  EXPECT_TRUE(client.waitForClose());
  EXPECT_TRUE(courier.waitForStat("cluster.backend.upstream_cx_connect_timeout", 1));
  EXPECT_TRUE(courier.waitForStat("cluster.backend.upstream_cx_active", 0));
}

TEST(TcpProxyConnectAttemptsTest, MaxConnectAttemptsRetriesTheNextHost) {
  // Round robin puts the refused host first for the first connection on each
  // worker; the second attempt reaches the live one.
  TcpServer live(TcpServer::sendAndClose("live"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(tcpProxyConfig({unusedPort(), live.port()}, "          max_connect_attempts: 2\n"),
                            {"--concurrency", "1"}))
      << courier.log();
  TcpClient client(courier.listenerPort("tcp"));
  EXPECT_EQ(client.readToEof(), "live");
  EXPECT_TRUE(courier.waitForStat("cluster.backend.upstream_cx_connect_fail", 1));
}

TEST(TcpProxyFileLimitTest, AcceptResumesAfterDescriptorsRunOut) {
  TcpServer upstream(TcpServer::echo());
  CourierProcess courier;
  // Enough for start-up and a few proxied connections (two descriptors each).
  courier.setFileLimit(40);
  ASSERT_TRUE(courier.start(tcpProxyConfig({upstream.port()}), {"--concurrency", "1"})) << courier.log();
  const uint16_t port = courier.listenerPort("tcp");
  // Hold connections until the proxy runs out of descriptors; the rest wait
  // in the kernel's accept queue.
  std::vector<std::unique_ptr<TcpClient>> held;
  for (int i = 0; i < 30; ++i) {
    held.push_back(std::make_unique<TcpClient>(port, std::chrono::milliseconds(3000)));
    ASSERT_TRUE(held.back()->connected());
  }
  const std::string last_word = "queued";
  ASSERT_TRUE(held.back()->write(last_word));
  ASSERT_TRUE(waitFor([&] { return courier.log().find("Too many open files") != std::string::npos; }))
      << courier.log();
  // Free descriptors: the queued connection must be accepted without any new
  // connection arriving to wake the listener.
  for (size_t i = 0; i + 1 < held.size(); ++i) held[i].reset();
  EXPECT_EQ(held.back()->readExactly(last_word.size()), last_word);
  EXPECT_EQ(courier.admin("/ready").status, 200);
}

TEST(TcpProxyAccessLogTest, ConnectionIsLoggedWithBytesAndUpstream) {
  TcpServer upstream(TcpServer::echo());
  const std::string log_path = tempDir() + "/tcp.log";
  const std::string extra = R"(          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: )" + log_path + R"(
              log_format:
                text_format_source:
                  inline_string: "%BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %RESPONSE_FLAGS%\n"
)";
  CourierProcess courier;
  ASSERT_TRUE(courier.start(tcpProxyConfig({upstream.port()}, extra), {"--file-flush-interval-msec", "20"}))
      << courier.log();
  {
    TcpClient c(courier.listenerPort("tcp"));
    c.write("twelve bytes");
    EXPECT_EQ(c.readExactly(12), "twelve bytes");
  }
  auto text = [&] {
    std::ifstream in(log_path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  EXPECT_TRUE(waitFor([&] { return !text().empty(); }));
  EXPECT_EQ(text(), "12 12 127.0.0.1:" + std::to_string(upstream.port()) + " backend -\n");
}

TEST_F(TcpProxyIntegrationTest, ClientGoneMidStreamReleasesTheUpstream) {
  std::atomic<bool> upstream_saw_close{false};
  TcpServer upstream([&](int fd) {
    char buf[4096];
    while (::recv(fd, buf, sizeof(buf), 0) > 0) {
    }
    upstream_saw_close = true;
  });
  startCourier({upstream.port()});
  {
    TcpClient client(port_);
    ASSERT_TRUE(client.write("partial request"));
    ASSERT_TRUE(waitFor([&] { return upstream.acceptedCount() == 1; }));
    // Abortive close: RST instead of FIN.
    linger lg{1, 0};
    setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  EXPECT_TRUE(waitFor([&] { return upstream_saw_close.load(); }));
  EXPECT_TRUE(courier_.waitForStat("cluster.backend.upstream_cx_active", 0));
  EXPECT_TRUE(courier_.waitForStat("listener.127.0.0.1_0.downstream_cx_active", 0));
}

TEST_F(TcpProxyIntegrationTest, RoundRobinSpreadsConnectionsEvenlyOverHosts) {
  TcpServer a(TcpServer::sendAndClose("a"));
  TcpServer b(TcpServer::sendAndClose("b"));
  startCourier({a.port(), b.port()});
  int as = 0, bs = 0;
  for (int i = 0; i < 20; ++i) {
    TcpClient c(port_);
    std::string got = c.readToEof();
    as += got == "a";
    bs += got == "b";
  }
  EXPECT_EQ(as + bs, 20);
  // Two workers each rotate on their own: neither host can get fewer than a
  // quarter of the connections even with unlucky kernel balancing.
  EXPECT_GE(as, 5);
  EXPECT_GE(bs, 5);
}

TEST_F(TcpProxyIntegrationTest, SlowReaderPausesTheUpstreamInsteadOfBuffering) {
  // The upstream pushes as fast as it can and records how much the kernel took.
  std::atomic<size_t> sent{0};
  constexpr size_t kTotal = 64 << 20;
  TcpServer upstream([&](int fd) {
    // Read the client's byte first: closing with unread input would send a
    // RST and throw away what is still in flight.
    char x;
    if (::recv(fd, &x, 1, 0) != 1) return;
    std::string chunk(64 * 1024, 's');
    while (sent < kTotal) {
      ssize_t w = ::send(fd, chunk.data(), std::min(chunk.size(), kTotal - sent.load()), MSG_NOSIGNAL);
      if (w <= 0) return;
      sent += static_cast<size_t>(w);
    }
  });
  startCourier({upstream.port()});
  TcpClient client(port_, std::chrono::milliseconds(30000));
  ASSERT_TRUE(client.write("x"));
  // Wait until the upstream stalls: sent stops growing.
  size_t last = 0;
  ASSERT_TRUE(waitFor(
      [&] {
        size_t now = sent.load();
        bool stalled = now > 0 && now == last;
        last = now;
        return stalled;
      },
      std::chrono::milliseconds(20000)));
  // Kernel socket buffers on both legs plus the proxy's 1 MiB limits; far
  // less than the 64 MiB the upstream wanted to push.
  EXPECT_LT(sent.load(), 24u << 20);
  std::string all = client.readExactly(kTotal);
  EXPECT_EQ(all.size(), kTotal);
  EXPECT_GE(courier_.stat("cluster.backend.upstream_flow_control_paused_reading_total").value_or(0), 1u);
  EXPECT_GE(courier_.stat("cluster.backend.upstream_flow_control_resumed_reading_total").value_or(0), 1u);
}

TEST(TcpProxyHashTest, SourceIpHashPinsAClientToOneMaglevHost) {
  TcpServer a(TcpServer::echo()), b(TcpServer::echo()), c(TcpServer::echo());
  std::string cfg = tcpProxyConfig({a.port(), b.port(), c.port()}, "          hash_policy:\n          - source_ip: {}\n");
  cfg.replace(cfg.find("    type: STATIC\n"), 17, "    type: STATIC\n    lb_policy: MAGLEV\n");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg, {"--concurrency", "2"})) << courier.log();
  const uint16_t port = courier.listenerPort("tcp");
  for (int i = 0; i < 9; ++i) {
    TcpClient client(port);
    ASSERT_TRUE(client.connected());
    client.write("ping");
    EXPECT_EQ(client.readExactly(4), "ping");
  }
  // Every connection comes from 127.0.0.1, so one host takes them all.
  std::vector<int> accepted{a.acceptedCount(), b.acceptedCount(), c.acceptedCount()};
  std::sort(accepted.begin(), accepted.end());
  EXPECT_EQ(accepted, (std::vector<int>{0, 0, 9}));
}

}  // namespace
}  // namespace courier::test

namespace courier::test {
namespace {

TEST(TcpProxyCircuitBreakerTest, ConnectionsOverDefaultMaxConnectionsAreClosedWithUO) {
  TcpServer upstream(TcpServer::echo());
  const std::string log_path = tempDir() + "/tcp.log";
  const std::string extra = R"(          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: )" + log_path + R"(
              log_format:
                text_format_source:
                  inline_string: "%BYTES_RECEIVED% %RESPONSE_FLAGS%\n"
)";
  // tcp_proxy has no routing priority: DEFAULT's limit applies, not HIGH's.
  const std::string breakers =
      "    circuit_breakers:\n      thresholds:\n      - {max_connections: 1}\n"
      "      - {priority: HIGH, max_connections: 100}\n";
  CourierProcess courier;
  ASSERT_TRUE(courier.start(tcpProxyConfig({upstream.port()}, extra) + breakers,
                            {"--concurrency", "1", "--file-flush-interval-msec", "20"}))
      << courier.log();
  const uint16_t port = courier.listenerPort("tcp");
  auto text = [&] {
    std::ifstream in(log_path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  {
    TcpClient first(port);
    ASSERT_TRUE(first.write("first"));
    ASSERT_EQ(first.readExactly(5), "first");
    // The only connection the breaker allows is in use: the next client is
    // closed without an upstream connect.
    TcpClient second(port);
    EXPECT_TRUE(second.waitForClose());
    EXPECT_TRUE(courier.waitForStat("cluster.backend.upstream_cx_overflow", 1));
    EXPECT_EQ(upstream.acceptedCount(), 1);
    EXPECT_EQ(courier.stat("cluster.backend.upstream_cx_total"), 1u);
    EXPECT_TRUE(waitFor([&] { return text() == "0 UO\n"; })) << text();
  }
  // The first connection's place is given back when it closes.
  ASSERT_TRUE(courier.waitForStat("cluster.backend.upstream_cx_active", 0));
  TcpClient third(port);
  ASSERT_TRUE(third.write("third"));
  EXPECT_EQ(third.readExactly(5), "third");
  EXPECT_EQ(courier.stat("cluster.backend.upstream_cx_overflow"), 1u);
}

}  // namespace
}  // namespace courier::test
