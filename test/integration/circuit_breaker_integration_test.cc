// Circuit breakers per routing priority through the real server: a route
// with `priority: HIGH` uses its own connection pools, whose connections and
// pending requests count against the cluster's HIGH thresholds, so a
// saturated DEFAULT priority overflows (503, UO) only the DEFAULT routes and
// the reverse.
#include <poll.h>

#include <atomic>
#include <chrono>
#include <fstream>
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

// Holds every request it reads (counting it in `held`) until the test sets
// `release`, then answers it with "held <request line>"; keep-alive. A
// request arriving after the release is answered at once.
struct HeldUpstream {
  std::atomic<int> held{0};
  std::atomic<bool> release{false};

  TcpServer::Handler handler() {
    return [this](int fd) {
      std::string buffered, request;
      while (readRequest(fd, buffered, request)) {
        ++held;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!release && std::chrono::steady_clock::now() < deadline) {
          pollfd p{fd, POLLIN, 0};
          // Readable while held: the proxy gave up on the connection.
          if (::poll(&p, 1, 10) > 0) {
            char c;
            if (::recv(fd, &c, 1, MSG_PEEK) <= 0) return;
          }
        }
        const std::string body = "held " + request.substr(0, request.find("\r\n"));
        sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
      }
    };
  }
};

std::string readFileText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Cluster "shared" (one endpoint) behind two routes: /high with priority
// HIGH, everything else DEFAULT; the thresholds are the fields of each
// priority's entry. Each request is logged as "<path> <code> <flags>".
std::string config(uint16_t port, const std::string& default_thresholds, const std::string& high_thresholds,
                   const std::string& log_path) {
  return hcmListener("") + R"(          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: )" +
         log_path + R"(
              log_format:
                text_format_source:
                  inline_string: "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n"
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/high"}
                route: {cluster: shared, priority: HIGH}
              - match: {prefix: "/"}
                route: {cluster: shared}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + staticCluster("shared", port) +
         "    circuit_breakers:\n      thresholds:\n      - {" + default_thresholds + "}\n      - {priority: HIGH, " +
         high_thresholds + "}\n";
}

// Saturates one priority (max_connections 1, max_pending_requests 1) with
// requests to `busy_path` and checks that the other priority's route, whose
// thresholds are larger, still gets its own connection and its answer.
void saturateOnePriority(const std::string& busy_path, const std::string& other_path, bool saturate_high) {
  HeldUpstream upstream;
  TcpServer server(upstream.handler());
  const std::string tight = "max_connections: 1, max_pending_requests: 1";
  const std::string roomy = "max_connections: 4, max_pending_requests: 4";
  const std::string log_path = tempDir() + "/access.log";
  CourierProcess courier;
  ASSERT_TRUE(
      courier.start(config(server.port(), saturate_high ? roomy : tight, saturate_high ? tight : roomy, log_path),
                    {"--concurrency", "1", "--file-flush-interval-msec", "20"}))
      << courier.log();
  const uint16_t port = courier.listenerPort("http");
  // /clusters shows each priority's own thresholds.
  const std::string clusters = courier.admin("/clusters").body;
  EXPECT_THAT(clusters, HasSubstr(std::string("shared::default_priority::max_connections::") +
                                  (saturate_high ? "4" : "1") + "\n"));
  EXPECT_THAT(clusters, HasSubstr(std::string("shared::high_priority::max_pending_requests::") +
                                  (saturate_high ? "1" : "4") + "\n"));
  EXPECT_THAT(clusters, HasSubstr("shared::high_priority::max_requests::1024\n"));
  // The first takes the saturated priority's only connection and is held.
  Raw first(port);
  ASSERT_TRUE(first.client.write(get("x", busy_path + "/1")));
  ASSERT_TRUE(waitFor([&] { return upstream.held == 1; }));
  // The second waits: no connection may be added.
  Raw second(port);
  ASSERT_TRUE(second.client.write(get("x", busy_path + "/2")));
  ASSERT_TRUE(courier.waitForStat("cluster.shared.upstream_cx_overflow", 1));
  // The third finds that priority's pending queue full.
  Raw third(port);
  const std::string overflowed = third.roundTrip(get("x", busy_path + "/3"));
  EXPECT_THAT(overflowed, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(overflowed, HasSubstr("reset reason: overflow"));
  EXPECT_EQ(courier.stat("cluster.shared.upstream_rq_pending_overflow"), 1u);
  // The other priority is untouched: its request opens a connection of its
  // own and reaches the upstream while the saturated one is still held.
  Raw other(port);
  ASSERT_TRUE(other.client.write(get("x", other_path + "/4")));
  ASSERT_TRUE(waitFor([&] { return upstream.held == 2; })) << upstream.held;
  EXPECT_EQ(courier.stat("cluster.shared.upstream_cx_total"), 2u);
  upstream.release = true;
  EXPECT_THAT(other.readResponse(), HasSubstr("held GET " + other_path + "/4 "));
  EXPECT_THAT(first.readResponse(), HasSubstr("held GET " + busy_path + "/1 "));
  // The waiter gets the connection the first one freed.
  EXPECT_THAT(second.readResponse(), HasSubstr("held GET " + busy_path + "/2 "));
  EXPECT_EQ(courier.stat("cluster.shared.upstream_rq_pending_overflow"), 1u);
  EXPECT_EQ(courier.stat("cluster.shared.upstream_cx_total"), 2u);
  EXPECT_TRUE(waitFor([&] { return readFileText(log_path).find(other_path + "/4") != std::string::npos; }))
      << readFileText(log_path);
  const std::string log = readFileText(log_path);
  EXPECT_THAT(log, HasSubstr(busy_path + "/3 503 UO\n"));
  EXPECT_THAT(log, HasSubstr(other_path + "/4 200 -\n"));
}

TEST(CircuitBreakerPriorityTest, ASaturatedDefaultPriorityOverflowsOnlyDefaultRoutes) {
  saturateOnePriority("/default", "/high", false);
}

TEST(CircuitBreakerPriorityTest, ASaturatedHighPriorityOverflowsOnlyHighRoutes) {
  saturateOnePriority("/high", "/default", true);
}

}  // namespace
}  // namespace courier::test
