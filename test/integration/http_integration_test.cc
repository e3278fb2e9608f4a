// HTTP/1.1 proxying end to end: the real courier binary with an HTTP
// connection manager in front of real upstream HTTP servers on loopback.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <set>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"
#include "test/integration/http_test_util.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string config(uint16_t primary, uint16_t canary, const std::string& timeout = "5s",
                   const std::string& hcm_extra = "") {
  const auto cluster = staticCluster;
  return hcmListener(hcm_extra) + R"(          route_config:
            name: local
            virtual_hosts:
            - name: orders
              domains: ["orders.example.com"]
              routes:
              - match:
                  prefix: "/"
                  headers:
                  - name: x-canary-version
                    string_match: {exact: v2}
                route: {cluster: canary, timeout: )" +
         timeout + R"(}
              - match: {prefix: "/"}
                route: {cluster: primary, timeout: )" +
         timeout + R"(}
            - name: misc
              domains: ["*"]
              routes:
              - match: {path: "/direct"}
                direct_response: {status: 200, body: {inline_string: "hello"}}
              - match: {path: "/old"}
                redirect: {path_redirect: "/new"}
              - match: {prefix: "/rewrite/"}
                route: {cluster: primary, prefix_rewrite: "/"}
              - match: {prefix: "/missing-cluster"}
                route: {cluster: primary}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + cluster("primary", primary) +
         cluster("canary", canary);
}

class HttpIntegrationTest : public ::testing::Test {
 protected:
  void start(const std::string& timeout = "5s") {
    ASSERT_TRUE(courier_.start(config(primary_.port(), canary_.port(), timeout))) << courier_.log();
    port_ = courier_.listenerPort("http");
    ASSERT_NE(port_, 0);
  }
  TcpServer primary_{namedUpstream("primary")};
  TcpServer canary_{namedUpstream("canary")};
  CourierProcess courier_;
  uint16_t port_ = 0;
};

TEST_F(HttpIntegrationTest, CanaryHeaderSelectsTheCanaryCluster) {
  start();
  Raw c(port_);
  std::string r = c.roundTrip(get("orders.example.com", "/", "x-canary-version: v2\r\n"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r, HasSubstr("canary GET / HTTP/1.1"));
}

TEST_F(HttpIntegrationTest, WithoutTheHeaderThePrimaryAnswers) {
  start();
  Raw c(port_);
  std::string r = c.roundTrip(get("orders.example.com", "/orders/7", "x-canary-version: v1\r\n"));
  EXPECT_THAT(r, HasSubstr("primary GET /orders/7 HTTP/1.1"));
  EXPECT_THAT(r, HasSubstr("x-envoy-upstream-service-time: "));
  EXPECT_THAT(r, HasSubstr("server: envoy"));
  // Courier adds x-request-id on the way up.
  EXPECT_THAT(r, HasSubstr(" rid"));
}

TEST_F(HttpIntegrationTest, KeepAliveReusesOneUpstreamConnection) {
  start();
  Raw c(port_);
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(c.roundTrip(get("orders.example.com", "/k")), HasSubstr("primary GET /k"));
  }
  EXPECT_EQ(courier_.stat("cluster.primary.upstream_cx_total"), 1u);
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_2xx"), 5u);
}

TEST(HttpPoolTest, MaxRequestsPerConnectionRetiresUpstreamConnections) {
  TcpServer upstream(namedUpstream("primary"));
  std::string cfg = config(upstream.port(), upstream.port());
  // Istio's way: the HttpProtocolOptions extension option on the cluster.
  cfg.replace(cfg.find("  - name: primary\n    connect_timeout: 1s\n") + 42, 0, R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        common_http_protocol_options: {max_requests_per_connection: 2}
        explicit_http_config: {http_protocol_options: {}}
)");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg, {"--concurrency", "1"})) << courier.log();
  Raw c(courier.listenerPort("http"));
  for (int i = 0; i < 5; ++i) EXPECT_THAT(c.roundTrip(get("orders.example.com", "/m")), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 3u);
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_max_requests"), 2u);
}

TEST_F(HttpIntegrationTest, PostBodyIsForwarded) {
  start();
  Raw c(port_);
  std::string r = c.roundTrip("POST /submit HTTP/1.1\r\nhost: orders.example.com\r\ncontent-length: 11\r\n\r\nhello world");
  EXPECT_THAT(r, HasSubstr("primary POST /submit HTTP/1.1 body=11"));
}

TEST_F(HttpIntegrationTest, UnknownRouteIs404) {
  start();
  Raw c(port_);
  // "misc" catches every other host, but nothing there matches this path.
  std::string r = c.roundTrip(get("other.example.com", "/nothing"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 404"));
  EXPECT_TRUE(courier_.waitForStat("http.ingress.no_route", 1));
}

TEST_F(HttpIntegrationTest, DirectResponseAndRedirectAreAnsweredLocally) {
  start();
  Raw c(port_);
  std::string direct = c.roundTrip(get("x", "/direct"));
  EXPECT_THAT(direct, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(direct, HasSubstr("\r\n\r\nhello"));
  std::string redirect = c.roundTrip(get("x", "/old"));
  EXPECT_THAT(redirect, StartsWith("HTTP/1.1 301"));
  EXPECT_THAT(redirect, HasSubstr("location: http://x/new"));
  EXPECT_EQ(primary_.acceptedCount(), 0);
}

TEST_F(HttpIntegrationTest, PrefixRewriteChangesTheUpstreamPath) {
  start();
  Raw c(port_);
  EXPECT_THAT(c.roundTrip(get("x", "/rewrite/a/b")), HasSubstr("primary GET /a/b HTTP/1.1"));
}

TEST_F(HttpIntegrationTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  Raw c(port_);
  c.client.write(get("orders.example.com", "/first") + get("orders.example.com", "/second"));
  EXPECT_THAT(c.readResponse(), HasSubstr("/first"));
  EXPECT_THAT(c.readResponse(), HasSubstr("/second"));
}

TEST_F(HttpIntegrationTest, ContentLengthWithChunkedIsRejectedAndTheConnectionClosed) {
  start();
  Raw c(port_);
  c.client.write(
      "POST / HTTP/1.1\r\nhost: orders.example.com\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n"
      "0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: orders.example.com\r\n\r\n");
  std::string r = c.client.readToEof();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 400"));
  EXPECT_EQ(r.find("smuggled"), std::string::npos);
  EXPECT_EQ(primary_.acceptedCount(), 0);
}

TEST_F(HttpIntegrationTest, OversizedHeadersGet431) {
  start();
  Raw c(port_);
  c.client.write(get("orders.example.com", "/", "x-big: " + std::string(70 * 1024, 'a') + "\r\n"));
  EXPECT_THAT(c.client.readToEof(), StartsWith("HTTP/1.1 431"));
}

TEST_F(HttpIntegrationTest, ExpectContinueIsAnsweredLocallyAndNotForwarded) {
  start();
  Raw c(port_);
  c.client.write("POST /up HTTP/1.1\r\nhost: orders.example.com\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n");
  EXPECT_EQ(c.client.readExactly(25), "HTTP/1.1 100 Continue\r\n\r\n");
  std::string r = c.roundTrip("hello");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r, HasSubstr("body=5"));
  EXPECT_EQ(r.find(" expect"), std::string::npos);
}

TEST(HttpFlowControlTest, SlowClientPausesTheUpstreamInsteadOfBufferingTheBody) {
  constexpr size_t kBody = 64 << 20;
  std::atomic<size_t> sent{0};
  TcpServer upstream([&](int fd) {
    std::string buffered, request;
    if (!readRequest(fd, buffered, request)) return;
    sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(kBody) + "\r\n\r\n");
    std::string chunk(64 * 1024, 'b');
    while (sent < kBody) {
      ssize_t w = ::send(fd, chunk.data(), std::min(chunk.size(), kBody - sent.load()), MSG_NOSIGNAL);
      if (w <= 0) return;
      sent += static_cast<size_t>(w);
    }
  });
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "60s"))) << courier.log();
  TcpClient c(courier.listenerPort("http"), std::chrono::milliseconds(30000));
  c.write(get("orders.example.com", "/big"));
  size_t last = 0;
  ASSERT_TRUE(waitFor(
      [&] {
        size_t now = sent.load();
        bool stalled = now > 0 && now == last;
        last = now;
        return stalled;
      },
      std::chrono::milliseconds(20000)));
  // Socket buffers on both legs plus the 1 MiB connection limits, not 64 MiB.
  EXPECT_LT(sent.load(), 24u << 20);
  std::string head = c.readExactly(100);
  ASSERT_THAT(head, StartsWith("HTTP/1.1 200"));
  size_t header_end = head.find("\r\n\r\n") + 4;
  std::string rest = c.readExactly(kBody - (head.size() - header_end));
  EXPECT_EQ(rest.size() + head.size() - header_end, kBody);
}

std::string readFileText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(HttpAccessLogTest, EachRequestIsLoggedWithEnvoysOperators) {
  TcpServer upstream(namedUpstream("primary"));
  const std::string log_path = tempDir() + "/access.log";
  const std::string access_log = R"(          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: )" + log_path + R"(
              log_format:
                text_format_source:
                  inline_string: "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER%\n"
)";
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "5s", access_log),
                            {"--file-flush-interval-msec", "20"}))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  c.roundTrip(get("orders.example.com", "/logged"));
  c.roundTrip(get("elsewhere", "/nothing"));
  EXPECT_TRUE(waitFor([&] { return readFileText(log_path).find("/nothing") != std::string::npos; }))
      << readFileText(log_path);
  EXPECT_EQ(readFileText(log_path), "GET /logged 200 - primary\nGET /nothing 404 NR -\n");
}

TEST(HttpEdgeTest, AutoHostRewriteUsesTheEndpointHostname) {
  TcpServer upstream(namedUpstream("primary"));
  std::string cfg = config(upstream.port(), upstream.port());
  cfg.replace(cfg.find("route: {cluster: primary, prefix_rewrite: \"/\"}"), 0, "route: {cluster: primary, auto_host_rewrite: true}\n              - match: {prefix: \"/x\"}\n                ");
  const std::string endpoint = "- endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " +
                               std::to_string(upstream.port()) + "}}}";
  cfg.replace(cfg.find(endpoint), endpoint.size(),
              "- endpoint: {hostname: backend.internal, address: {socket_address: {address: 127.0.0.1, port_value: " +
                  std::to_string(upstream.port()) + "}}}");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg)) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("client.example", "/rewrite/a")), HasSubstr(" hostname"));
}

TEST(HttpEdgeTest, UseRemoteAddressAppendsXffAndMarksLoopbackClientsInternal) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "5s", "          use_remote_address: true\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(get("orders.example.com", "/"));
  EXPECT_THAT(r, HasSubstr(" internal"));
  EXPECT_THAT(r, HasSubstr(" xff"));
}

// One trusted proxy in front (xff_num_trusted_hops: 1): the client is the
// address that proxy put in x-forwarded-for, here an external one.
std::string edgeRequest() {
  return get("orders.example.com", "/",
             "x-forwarded-for: 203.0.113.7\r\nx-envoy-max-retries: 3\r\nx-envoy-custom: yes\r\n"
             "x-request-id: client-chosen\r\n");
}

TEST(HttpEdgeTest, TrustedHopRevealsAnExternalClientWhoseEnvoyHeadersAreStripped) {
  TcpServer upstream(echoHeadersUpstream());
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "5s",
                                   "          use_remote_address: true\n          xff_num_trusted_hops: 1\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(edgeRequest());
  EXPECT_THAT(r, HasSubstr("x-envoy-external-address: 203.0.113.7\r\n"));
  EXPECT_THAT(r, HasSubstr("x-forwarded-for: 203.0.113.7,127.0.0.1\r\n"));
  EXPECT_THAT(r, Not(HasSubstr("x-envoy-custom")));
  EXPECT_THAT(r, Not(HasSubstr("x-envoy-max-retries")));
  EXPECT_THAT(r, Not(HasSubstr("x-envoy-internal")));
  // An edge request gets an id of ours, not the client's.
  EXPECT_THAT(r, Not(HasSubstr("client-chosen")));
  EXPECT_THAT(r, HasSubstr("x-request-id: "));
}

TEST(HttpEdgeTest, PreserveExternalRequestIdKeepsTheClientsId) {
  TcpServer upstream(echoHeadersUpstream());
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "5s",
                                   "          use_remote_address: true\n          xff_num_trusted_hops: 1\n"
                                   "          preserve_external_request_id: true\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(edgeRequest()), HasSubstr("x-request-id: client-chosen\r\n"));
}

TEST(HttpEdgeTest, WithoutTrustedHopsTheLoopbackPeerIsTheClientAndStaysInternal) {
  TcpServer upstream(echoHeadersUpstream());
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "5s", "          use_remote_address: true\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(edgeRequest());
  EXPECT_THAT(r, HasSubstr("x-envoy-internal: true\r\n"));
  EXPECT_THAT(r, HasSubstr("x-envoy-custom: yes\r\n"));
  EXPECT_THAT(r, HasSubstr("x-request-id: client-chosen\r\n"));
  EXPECT_THAT(r, Not(HasSubstr("x-envoy-external-address")));
}

TEST(HttpFlowControlTest, PipelinedInputStopsBeingReadWhileAResponseIsPending) {
  std::atomic<bool> stop{false};
  TcpServer silent(silentUpstream(stop));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(silent.port(), silent.port(), "30s"))) << courier.log();
  TcpClient c(courier.listenerPort("http"));
  ASSERT_TRUE(c.write(get("orders.example.com", "/pending")));
  // Keep pipelining while the first response is pending; the proxy must stop
  // taking bytes after a bounded amount.
  const std::string chunk = std::string(64 * 1024, 'p');
  size_t accepted = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (accepted < (64u << 20) && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::send(c.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      accepted += static_cast<size_t>(n);
      continue;
    }
    // The socket is full: see whether it stays full.
    pollfd p{c.fd(), POLLOUT, 0};
    if (::poll(&p, 1, 500) == 0) break;
  }
  EXPECT_LT(accepted, 24u << 20);
  EXPECT_EQ(courier.admin("/ready").status, 200);
  stop = true;
}

TEST_F(HttpIntegrationTest, RandomBytesNeverTakeTheServerDown) {
  start();
  // Seeded, so a failure reproduces: request-looking prefixes followed by
  // random bytes, and pure noise, each on its own connection.
  std::mt19937 rng(20261123);
  const std::vector<std::string> prefixes = {"", "GET / HTTP/1.1\r\n", "POST /x HTTP/1.1\r\ncontent-length: 5\r\n",
                                             "GET / HTTP/1.1\r\nhost: orders.example.com\r\ntransfer-encoding: chunked\r\n\r\n"};
  for (int i = 0; i < 300; ++i) {
    std::string bytes = prefixes[rng() % prefixes.size()];
    const size_t n = rng() % 2048;
    for (size_t j = 0; j < n; ++j) bytes.push_back(static_cast<char>(rng()));
    TcpClient c(port_, std::chrono::milliseconds(2000));
    ASSERT_TRUE(c.connected()) << "connection " << i;
    c.write(bytes);
    c.shutdownWrite();
    c.readToEof();
  }
  // Still serving, and well-formed traffic still works.
  Raw ok(port_);
  EXPECT_THAT(ok.roundTrip(get("orders.example.com", "/after")), HasSubstr("primary GET /after"));
  EXPECT_EQ(courier_.admin("/ready").status, 200);
}

TEST(HttpTimeoutTest, MaxStreamDurationEndsALongStreamWith408) {
  std::atomic<bool> stop{false};
  TcpServer silent(silentUpstream(stop));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(silent.port(), silent.port(), "30s",
                                   "          common_http_protocol_options: {max_stream_duration: 0.2s}\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(get("orders.example.com", "/"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 408"));
  EXPECT_THAT(r, HasSubstr("downstream duration timeout"));
  stop = true;
}

TEST(HttpTimeoutTest, IdleStreamGets408AfterStreamIdleTimeout) {
  std::atomic<bool> stop{false};
  TcpServer silent(silentUpstream(stop));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(silent.port(), silent.port(), "30s", "          stream_idle_timeout: 0.2s\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(get("orders.example.com", "/"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 408"));
  EXPECT_THAT(r, HasSubstr("stream timeout"));
  stop = true;
}

TEST(HttpTimeoutTest, IncompleteHeadersGet408AfterRequestHeadersTimeout) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "5s", "          request_headers_timeout: 0.2s\n")))
      << courier.log();
  TcpClient c(courier.listenerPort("http"));
  c.write("GET / HTTP/1.1\r\nhost: orders.example.com\r\n");  // never finished
  EXPECT_THAT(c.readToEof(), StartsWith("HTTP/1.1 408"));
  EXPECT_EQ(upstream.acceptedCount(), 0);
}

TEST(HttpUpstreamFailureTest, PooledConnectionClosedByTheUpstreamIsReplayedOnAFreshOne) {
  // Each upstream connection answers one request (claiming keep-alive), then
  // closes on the next without answering, as an upstream whose keep-alive
  // timeout fires just as the request arrives.
  TcpServer upstream([](int fd) {
    std::string buffered, request;
    if (!readRequest(fd, buffered, request)) return;
    sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    readRequest(fd, buffered, request);
  });
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port()), {"--concurrency", "1"})) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("orders.example.com", "/one")), StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(c.roundTrip(get("orders.example.com", "/two")), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 2u);
}

TEST(HttpUpstreamFailureTest, RefusedUpstreamGives503) {
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(unusedPort(), unusedPort()))) << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(get("orders.example.com", "/"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(r, HasSubstr("upstream connect error"));
  EXPECT_TRUE(courier.waitForStat("cluster.primary.upstream_cx_connect_fail", 1));
}

TEST(HttpUpstreamFailureTest, SilentUpstreamGives504AfterTheRouteTimeout) {
  std::atomic<bool> stop{false};
  TcpServer silent([&](int fd) {
    std::string buffered, request;
    readRequest(fd, buffered, request);
    // Hold the connection without answering until the test ends.
    pollfd p{fd, POLLIN, 0};
    while (!stop && ::poll(&p, 1, 50) == 0) {
    }
  });
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(silent.port(), silent.port(), "0.2s"))) << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(get("orders.example.com", "/"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 504"));
  EXPECT_THAT(r, HasSubstr("upstream request timeout"));
  stop = true;
}

TEST(HttpUpstreamFailureTest, UpstreamDyingMidBodyClosesTheClientWithoutAFullBody) {
  TcpServer dying([](int fd) {
    std::string buffered, request;
    readRequest(fd, buffered, request);
    sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + std::string(1000, 'd'));
  });
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(dying.port(), dying.port()))) << courier.log();
  TcpClient c(courier.listenerPort("http"));
  c.write(get("orders.example.com", "/"));
  std::string r = c.readToEof();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_LT(r.size(), 100000u);
  // Other clients are unaffected.
  EXPECT_EQ(courier.admin("/ready").status, 200);
}

// One route with a retry policy to cluster "flaky" (the given ports).
std::string retryConfig(const std::vector<uint16_t>& ports, const std::string& retry_on,
                        const std::string& policy_extra = "") {
  std::string endpoints;
  for (uint16_t p : ports) {
    endpoints += "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " +
                 std::to_string(p) + "}}}\n";
  }
  std::string policy =
      retry_on.empty() ? "" : ", retry_policy: {retry_on: \"" + retry_on + "\", num_retries: 2" + policy_extra + "}";
  return hcmListener("") + R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: flaky)" +
         policy + R"(}
  clusters:
  - name: flaky
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: flaky
      endpoints:
      - lb_endpoints:
)" + endpoints;
}

// Answers the first `failures` requests with 503, then 200.
TcpServer::Handler failingThenOk(std::atomic<int>& seen, int failures) {
  return [&seen, failures](int fd) {
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) {
      int n = seen.fetch_add(1);
      if (n < failures) {
        sendAll(fd, "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy");
      } else {
        sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      }
    }
  };
}

// primary answers; mirror records what reached it.
std::string mirrorConfig(uint16_t primary, uint16_t mirror, const std::string& fraction) {
  const auto cluster = staticCluster;
  return hcmListener("") + R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route:
                  cluster: primary
                  request_mirror_policies:
                  - cluster: mirror
)" + fraction + R"(  clusters:
)" + cluster("primary", primary) + cluster("mirror", mirror);
}

struct RecordingUpstream {
  RecordingUpstream()
      : server([this](int fd) {
          std::string buffered, request;
          while (readRequest(fd, buffered, request)) {
            {
              std::lock_guard<std::mutex> lock(mu);
              requests.push_back(request);
            }
            sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nmirror");
          }
        }) {}
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mu);
    return requests;
  }
  std::mutex mu;
  std::vector<std::string> requests;
  TcpServer server;
};

TEST(HttpMirrorTest, TheCompleteRequestIsCopiedToTheMirrorWithAShadowHost) {
  TcpServer primary(namedUpstream("primary"));
  RecordingUpstream mirror;
  CourierProcess courier;
  ASSERT_TRUE(courier.start(mirrorConfig(primary.port(), mirror.server.port(), ""))) << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip("POST /orders HTTP/1.1\r\nhost: shop.example.com\r\ncontent-length: 5\r\n\r\nhello");
  // The client sees the primary's answer, never the mirror's.
  EXPECT_THAT(r, HasSubstr("primary POST /orders HTTP/1.1 body=5"));
  ASSERT_TRUE(courier.waitForStat("cluster.mirror.upstream_rq_2xx", 1));
  auto seen = mirror.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_THAT(seen[0], StartsWith("POST /orders HTTP/1.1\r\n"));
  EXPECT_THAT(seen[0], HasSubstr("host: shop.example.com-shadow\r\n"));
  EXPECT_THAT(seen[0], HasSubstr("\r\n\r\nhello"));
}

TEST(HttpMirrorTest, AZeroFractionMirrorsNothing) {
  TcpServer primary(namedUpstream("primary"));
  RecordingUpstream mirror;
  CourierProcess courier;
  ASSERT_TRUE(courier.start(mirrorConfig(primary.port(), mirror.server.port(),
                                         "                    runtime_fraction: {default_value: {numerator: 0}}\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  for (int i = 0; i < 5; ++i) EXPECT_THAT(c.roundTrip(get("a", "/")), HasSubstr("primary GET /"));
  EXPECT_EQ(courier.stat("cluster.mirror.upstream_rq_total"), 0u);
  EXPECT_TRUE(mirror.seen().empty());
}

TEST(HttpMirrorTest, ADeadMirrorDoesNotDisturbTheOriginal) {
  TcpServer primary(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(mirrorConfig(primary.port(), unusedPort(), ""))) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("a", "/one")), HasSubstr("primary GET /one"));
  EXPECT_THAT(c.roundTrip(get("a", "/two")), HasSubstr("primary GET /two"));
  EXPECT_TRUE(courier.waitForStat("cluster.mirror.upstream_cx_connect_fail", 2));
}

// Answers an upgrade request with 101, then echoes every byte back until the
// client half-closes, then closes too. A chunk starting "slow" is echoed
// after half a second: a tunnel peer that takes its time.
TcpServer::Handler websocketEchoUpstream() {
  return [](int fd) {
    std::string buffered, request;
    if (!readRequest(fd, buffered, request)) return;
    if (request.find("upgrade: websocket\r\n") == std::string::npos) {
      sendAll(fd, "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    sendAll(fd, "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n");
    if (!buffered.empty()) sendAll(fd, buffered);
    char buf[4096];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) return;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      std::string chunk(buf, static_cast<size_t>(n));
      if (chunk.rfind("slow", 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      sendAll(fd, chunk);
    }
  };
}

constexpr char kUpgradeRequest[] =
    "GET /chat HTTP/1.1\r\nhost: orders.example.com\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n";

TEST(HttpUpgradeTest, WebsocketTunnelsBytesBothWaysWhenConfigured) {
  TcpServer upstream(websocketEchoUpstream());
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "0.2s",
                                   "          upgrade_configs: [{upgrade_type: websocket}]\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string head = c.roundTrip(std::string(kUpgradeRequest) + "first");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 101 Switching Protocols\r\n"));
  EXPECT_THAT(head, HasSubstr("upgrade: websocket\r\n"));
  EXPECT_EQ(c.client.readExactly(5), "first");
  // An answer slower than the 0.2s route timeout: after the 101 the route
  // timeout no longer applies.
  ASSERT_TRUE(c.client.write("slow-frame"));
  EXPECT_EQ(c.client.readExactly(10), "slow-frame");
  for (int i = 0; i < 3; ++i) {
    const std::string msg = "frame-" + std::to_string(i);
    ASSERT_TRUE(c.client.write(msg));
    EXPECT_EQ(c.client.readExactly(msg.size()), msg);
  }
  // The client finishing ends the tunnel on both sides.
  c.client.shutdownWrite();
  EXPECT_TRUE(c.client.waitForClose());
  EXPECT_TRUE(courier.waitForStat("http.ingress.downstream_rq_1xx", 1));
}

TEST(HttpUpgradeTest, WebsocketIsRefusedWith403WithoutUpgradeConfigs) {
  TcpServer upstream(websocketEchoUpstream());
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port()))) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(kUpgradeRequest), StartsWith("HTTP/1.1 403"));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_rq_total"), 0u);
}

TEST(HttpUpgradeTest, UpstreamRefusingTheUpgradeAnswersNormallyAndCloses) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config(upstream.port(), upstream.port(), "5s",
                                   "          upgrade_configs: [{upgrade_type: websocket}]\n")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(kUpgradeRequest), StartsWith("HTTP/1.1 200"));
  EXPECT_TRUE(c.client.waitForClose());
}

std::string circuitBreakers(const std::string& thresholds) {
  return "    circuit_breakers:\n      thresholds:\n      - " + thresholds + "\n";
}

TEST(HttpCircuitBreakerTest, PendingRequestOverTheLimitGets503UOAtOnce) {
  std::atomic<bool> stop{false};
  TcpServer silent(silentUpstream(stop));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({silent.port()}, "") +
                                circuitBreakers("{max_connections: 1, max_pending_requests: 1}"),
                            {"--concurrency", "1"}))
      << courier.log();
  const uint16_t port = courier.listenerPort("http");
  // The first request takes the only connection and hangs upstream.
  Raw first(port);
  first.client.write(get("x", "/first"));
  ASSERT_TRUE(courier.waitForStat("cluster.flaky.upstream_rq_total", 1));
  // The second waits for a connection: max_connections is reached.
  Raw second(port);
  second.client.write(get("x", "/second"));
  ASSERT_TRUE(courier.waitForStat("cluster.flaky.upstream_cx_overflow", 1));
  // The third finds the pending queue full.
  Raw third(port);
  std::string r = third.roundTrip(get("x", "/third"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(r, HasSubstr("reset reason: overflow"));
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_pending_overflow"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_cx_total"), 1u);
  stop = true;
}

TEST(HttpCircuitBreakerTest, MaxRetriesZeroPassesTheFailureThroughUntried) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 1));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, "5xx") + circuitBreakers("{max_retries: 0}")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(get("x", "/"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(r, HasSubstr("busy"));
  EXPECT_EQ(seen.load(), 1);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry_overflow"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry"), 0u);
}

TEST(HttpCircuitBreakerTest, DefaultLimitsLetRetriesHappen) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 1));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, "5xx") + circuitBreakers("{max_pending_requests: 5}")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("x", "/")), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry_overflow"), 0u);
}

TEST(HttpCircuitBreakerTest, ARetryBudgetReplacesMaxRetries) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 1));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, "5xx") +
                            circuitBreakers("{max_retries: 0, retry_budget: {min_retry_concurrency: 1}}")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("x", "/")), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(seen.load(), 2);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry_overflow"), 0u);
}

TEST(HttpCircuitBreakerTest, AnExhaustedRetryBudgetOverflows) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 1));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, "5xx") +
                            circuitBreakers("{retry_budget: {budget_percent: {value: 0}, min_retry_concurrency: 0}}")))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("x", "/")), StartsWith("HTTP/1.1 503"));
  EXPECT_EQ(seen.load(), 1);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry_overflow"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry"), 0u);
}

TEST(HttpCircuitBreakerTest, AHighPriorityRouteCountsAgainstTheHighThresholds) {
  // DEFAULT allows no retry, HIGH allows Envoy's default 3.
  const std::string breakers = circuitBreakers("{max_retries: 0}\n      - {priority: HIGH}");
  for (bool high : {false, true}) {
    std::atomic<int> seen{0};
    TcpServer upstream(failingThenOk(seen, 1));
    std::string yaml = retryConfig({upstream.port()}, "5xx") + breakers;
    if (high) {
      const std::string route = "route: {cluster: flaky";
      yaml.replace(yaml.find(route), route.size(), route + ", priority: HIGH");
    }
    CourierProcess courier;
    ASSERT_TRUE(courier.start(yaml)) << courier.log();
    Raw c(courier.listenerPort("http"));
    EXPECT_THAT(c.roundTrip(get("x", "/")), StartsWith(high ? "HTTP/1.1 200" : "HTTP/1.1 503")) << high;
    EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry_overflow"), high ? 0u : 1u);
  }
}

TEST(HttpRetryTest, A5xxIsRetriedAndTheClientSeesTheSuccess) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 1));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, "5xx"))) << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(seen.load(), 2);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry_success"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_total"), 2u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_5xx"), 1u);
}

TEST(HttpRetryTest, RetriesStopAtNumRetriesAndTheLastResponseIsReturned) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 100));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, "gateway-error"))) << courier.log();
  Raw c(courier.listenerPort("http"));
  std::string r = c.roundTrip(get("x", "/"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(r, HasSubstr("busy"));
  EXPECT_EQ(seen.load(), 3);  // the first try and two retries
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry_limit_exceeded"), 1u);
}

TEST(HttpRetryTest, WithoutAPolicyA5xxIsPassedThroughOnce) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 1));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, ""))) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("x", "/")), StartsWith("HTTP/1.1 503"));
  EXPECT_EQ(seen.load(), 1);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry"), 0u);
}

TEST(HttpRetryTest, ConnectFailureIsRetriedOnTheNextHost) {
  std::atomic<int> seen{0};
  TcpServer upstream(failingThenOk(seen, 0));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({unusedPort(), upstream.port()}, "connect-failure"), {"--concurrency", "1"}))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("x", "/")), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_cx_connect_fail"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry"), 1u);
}

TEST(HttpRetryTest, PerTryTimeoutAbandonsASlowTryAndRetries) {
  std::atomic<int> connections{0};
  std::atomic<bool> stop{false};
  TcpServer upstream([&](int fd) {
    std::string buffered, request;
    if (!readRequest(fd, buffered, request)) return;
    if (connections.fetch_add(1) == 0) {
      // The first try never gets an answer.
      pollfd p{fd, POLLIN, 0};
      while (!stop && ::poll(&p, 1, 50) == 0) {
      }
      return;
    }
    sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  });
  CourierProcess courier;
  ASSERT_TRUE(courier.start(retryConfig({upstream.port()}, "5xx", ", per_try_timeout: 0.2s"))) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("x", "/")), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_per_try_timeout"), 1u);
  EXPECT_EQ(courier.stat("cluster.flaky.upstream_rq_retry"), 1u);
  stop = true;
}

TEST(HttpTimeoutTest, UpstreamTimeoutHeaderFromAnInternalClientOverridesTheRoute) {
  std::atomic<bool> stop{false};
  TcpServer silent(silentUpstream(stop));
  CourierProcess courier;
  // The route allows 30 s; the header asks for 200 ms.
  ASSERT_TRUE(courier.start(config(silent.port(), silent.port(), "30s"))) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("orders.example.com", "/", "x-envoy-upstream-rq-timeout-ms: 200\r\n")),
              StartsWith("HTTP/1.1 504"));
  stop = true;
}

// Three real upstreams behind a RING_HASH cluster hashed on x-user: a user
// sticks to one upstream across connections and workers; users spread out.
TEST(HttpLoadBalancingTest, RingHashKeepsAUserOnOneUpstream) {
  TcpServer a(namedUpstream("up-a")), b(namedUpstream("up-b")), c(namedUpstream("up-c"));
  auto endpoint = [](uint16_t port) {
    return "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " + std::to_string(port) +
           "}}}\n";
  };
  std::string cfg = hcmListener("") + R"(          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route:
                  cluster: sticky
                  hash_policy:
                  - header: {header_name: x-user}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: sticky
    connect_timeout: 1s
    type: STATIC
    lb_policy: RING_HASH
    ring_hash_lb_config: {minimum_ring_size: 3000}
    load_assignment:
      cluster_name: sticky
      endpoints:
      - lb_endpoints:
)" + endpoint(a.port()) + endpoint(b.port()) + endpoint(c.port());
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg, {"--concurrency", "2"})) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  auto upstreamFor = [port](const std::string& user) {
    Raw conn(port);  // a new connection each time, so either worker may serve it
    std::string r = conn.roundTrip(get("x", "/", "x-user: " + user + "\r\n"));
    size_t at = r.find("up-");
    return at == std::string::npos ? r : r.substr(at, 4);
  };
  std::set<std::string> used;
  for (int u = 0; u < 30; ++u) {
    const std::string user = "user" + std::to_string(u);
    const std::string first = upstreamFor(user);
    ASSERT_THAT(first, StartsWith("up-")) << first;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(upstreamFor(user), first) << user;
    used.insert(first);
  }
  EXPECT_EQ(used.size(), 3u);
}

// LEAST_REQUEST with many choices: while a request is in flight on one host
// (counted by the router, seen by every worker), new requests go to the idle
// one; once it ends, the held host is picked again.
TEST(HttpLoadBalancingTest, LeastRequestAvoidsTheHostWithARequestInFlight) {
  std::atomic<int> held{0}, released{0};
  // Host "hold" never answers: it keeps each request until the proxy lets go.
  TcpServer hold([&](int fd) {
    std::string buffered, request;
    if (!readRequest(fd, buffered, request)) return;
    ++held;
    char buf[256];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, 100);
      if (r < 0) break;
      if (r > 0 && ::recv(fd, buf, sizeof(buf), 0) <= 0) break;
    }
    ++released;
  });
  TcpServer answer(namedUpstream("answer"));
  // The primary cluster gets both hosts.
  std::string cfg = config(hold.port(), answer.port());
  cfg.replace(cfg.find("    load_assignment:\n      cluster_name: primary\n"), 0,
              "    lb_policy: LEAST_REQUEST\n    least_request_lb_config: {choice_count: 30}\n");
  const std::string hold_endpoint = "port_value: " + std::to_string(hold.port()) + "}}}\n";
  cfg.insert(cfg.find(hold_endpoint) + hold_endpoint.size(),
             "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " +
                 std::to_string(answer.port()) + "}}}\n");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg, {"--concurrency", "2"})) << courier.log();
  const uint16_t port = courier.listenerPort("http");
  const std::string request = get("orders.example.com", "/lr");
  auto answered = [&](TcpClient& c) { return c.readExactly(12) == "HTTP/1.1 200"; };

  // Until one request is held: with both hosts idle either may be picked.
  std::unique_ptr<TcpClient> holder;
  for (int i = 0; i < 40 && holder == nullptr; ++i) {
    auto c = std::make_unique<TcpClient>(port, 1500ms);
    c->write(request);
    if (!answered(*c)) holder = std::move(c);
  }
  ASSERT_NE(holder, nullptr);
  ASSERT_EQ(held.load(), 1);

  // One keep-alive connection: each request's attempt has ended on its worker
  // before the next is read, so only the held request counts as active.
  Raw keep_alive(port);
  for (int i = 0; i < 20; ++i) {
    EXPECT_THAT(keep_alive.roundTrip(request), HasSubstr("answer GET /lr")) << "request " << i;
  }
  EXPECT_EQ(held.load(), 1);

  // The client leaves: the attempt ends and the held host counts as idle again.
  holder.reset();
  for (int i = 0; i < 50 && released.load() == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(released.load(), 1);
  std::vector<std::unique_ptr<TcpClient>> more;
  for (int i = 0; i < 40 && held.load() < 2; ++i) {
    auto c = std::make_unique<TcpClient>(port, 1500ms);
    c->write(request);
    if (!answered(*c)) more.push_back(std::move(c));
  }
  EXPECT_EQ(held.load(), 2);
}

}  // namespace
}  // namespace courier::test
