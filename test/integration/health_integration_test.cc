// Active health checks, outlier detection and panic mode against real
// upstreams on loopback that fail and recover while courier runs.
#include <atomic>
#include <mutex>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/configs.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

// An upstream whose answers the test changes while it runs.
struct Control {
  std::atomic<int> health_status{200};  // for /healthz
  std::atomic<int> status{200};         // for everything else
  std::atomic<bool> down{false};        // close every connection at once
  std::atomic<bool> immediate_fail{false};
  std::atomic<bool> close_after_response{false};  // keep-alive reply, then close
  std::atomic<bool> degraded{false};              // health checks answered with x-envoy-degraded
  std::mutex mu;
  std::string last_check;  // the last health-check request's head
  std::string lastCheck() {
    std::lock_guard<std::mutex> lock(mu);
    return last_check;
  }
};

TcpServer::Handler controlledUpstream(std::string name, Control& c) {
  return [name, &c](int fd) {
    if (c.down) return;
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) {
      if (c.down) return;
      const bool hc = request.rfind("GET /healthz ", 0) == 0;
      const int code = hc ? c.health_status.load() : c.status.load();
      if (hc) {
        std::lock_guard<std::mutex> lock(c.mu);
        c.last_check = request;
      }
      std::string extra;
      if (!hc && c.immediate_fail) extra = "x-envoy-immediate-health-check-fail: true\r\n";
      if (hc && c.degraded) extra = "x-envoy-degraded: true\r\n";
      sendAll(fd, "HTTP/1.1 " + std::to_string(code) + " X\r\ncontent-length: " + std::to_string(name.size()) +
                      "\r\n" + extra + "\r\n" + name);
      if (c.close_after_response) return;
    }
  };
}

// Answers "PING" with "PONG" on each connection unless down.
TcpServer::Handler pingPongUpstream(Control& c) {
  return [&c](int fd) {
    if (c.down) return;
    std::string got;
    char buf[16];
    while (got.find("PING") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      got.append(buf, n);
    }
    if (c.down) return;
    sendAll(fd, "PONG");
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 2000);  // until courier closes
  };
}

std::string twoHostCluster(uint16_t a, uint16_t b, const std::string& extra) {
  return R"(  - name: backend
    connect_timeout: 1s
    type: STATIC
)" + extra + R"(    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(a) + R"(}}}
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(b) + "}}}\n";
}

std::string config(const std::string& clusters) {
  return hcmListener("") + R"(          route_config:
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
)" + clusters;
}

const char* kHttpHealthCheck = R"(    health_checks:
    - timeout: 1s
      interval: 0.05s
      no_traffic_interval: 0.05s
      unhealthy_threshold: 2
      healthy_threshold: 2
      http_health_check: {path: /healthz}
)";

class HealthIntegrationTest : public ::testing::Test {
 protected:
  void start(const std::string& cluster_extra) {
    ASSERT_TRUE(courier_.start(config(twoHostCluster(a_.port(), b_.port(), cluster_extra)))) << courier_.log();
    port_ = courier_.listenerPort("http");
    ASSERT_NE(port_, 0);
  }
  // The host's health_flags line in /clusters.
  std::string flags(uint16_t port) {
    const std::string body = courier_.admin("/clusters").body;
    const std::string key = "backend::127.0.0.1:" + std::to_string(port) + "::health_flags::";
    const size_t at = body.find(key);
    if (at == std::string::npos) return "";
    const size_t start = at + key.size();
    return body.substr(start, body.find('\n', start) - start);
  }
  bool waitForFlags(uint16_t port, const std::string& want) {
    return waitFor([&] { return flags(port) == want; }, std::chrono::milliseconds(10000));
  }
  uint64_t stat(const std::string& name) { return courier_.stat(name).value_or(0); }
  // Bodies of n requests, concatenated with spaces.
  std::string requests(int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += httpRequest(port_, "GET", "/x").body + " ";
    return out;
  }

  Control ca_, cb_;
  TcpServer a_{controlledUpstream("A", ca_)};
  TcpServer b_{controlledUpstream("B", cb_)};
  CourierProcess courier_;
  uint16_t port_ = 0;
};

TEST_F(HealthIntegrationTest, HttpCheckAnsweredWithXEnvoyDegradedMakesTheHostDegraded) {
  ca_.degraded = true;
  start(kHttpHealthCheck);
  ASSERT_TRUE(waitForFlags(a_.port(), "/degraded_active_hc")) << flags(a_.port()) << courier_.log();
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy")) << flags(b_.port());
  EXPECT_THAT(courier_.admin("/clusters?format=json").body, HasSubstr("\"failed_active_degraded_check\": true"));
  EXPECT_EQ(stat("cluster.backend.membership_healthy"), 1u);
  // One healthy and one degraded host at 140%: B takes its 70% of the load,
  // A the 30% left (Envoy's degraded load), with no panic.
  const int n = 200;
  int to_a = 0;
  for (int i = 0; i < n; ++i) to_a += httpRequest(port_, "GET", "/x").body == "A" ? 1 : 0;
  EXPECT_GT(to_a, 25) << "expected about 60 of " << n;
  EXPECT_LT(to_a, 100) << "expected about 60 of " << n;
  EXPECT_EQ(stat("cluster.backend.lb_healthy_panic"), 0u);

  // A check without the header makes A healthy again; both degraded share
  // everything between them.
  ca_.degraded = false;
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << flags(a_.port());
  EXPECT_THAT(courier_.admin("/clusters?format=json").body,
              ::testing::Not(HasSubstr("\"failed_active_degraded_check\": true")));
  ca_.degraded = true;
  cb_.degraded = true;
  ASSERT_TRUE(waitForFlags(a_.port(), "/degraded_active_hc"));
  ASSERT_TRUE(waitForFlags(b_.port(), "/degraded_active_hc"));
  const std::string bodies = requests(8);
  EXPECT_THAT(bodies, HasSubstr("A"));
  EXPECT_THAT(bodies, HasSubstr("B"));
  EXPECT_EQ(stat("cluster.backend.lb_healthy_panic"), 0u);
  EXPECT_EQ(stat("cluster.backend.membership_healthy"), 0u);
  EXPECT_EQ(stat("cluster.backend.membership_degraded"), 2u);
}

TEST_F(HealthIntegrationTest, HttpCheckFailingStatusTakesTheHostOutAndPassingBringsItBack) {
  start(kHttpHealthCheck);
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << flags(a_.port()) << courier_.log();
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  EXPECT_EQ(stat("cluster.backend.health_check.healthy"), 2u);

  ca_.health_status = 503;
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  EXPECT_THAT(requests(20), ::testing::Not(HasSubstr("A")));
  EXPECT_GE(stat("cluster.backend.health_check.failure"), 1u);
  EXPECT_EQ(stat("cluster.backend.health_check.healthy"), 1u);
  EXPECT_EQ(stat("cluster.backend.membership_healthy"), 1u);

  ca_.health_status = 200;
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy"));
  EXPECT_TRUE(waitFor([&] { return requests(4).find('A') != std::string::npos; }));
  EXPECT_GT(stat("cluster.backend.health_check.attempt"), stat("cluster.backend.health_check.failure"));
  EXPECT_GE(stat("cluster.backend.health_check.success"), 4u);
}

TEST_F(HealthIntegrationTest, HttpCheckConnectionFailuresNeedTheUnhealthyThreshold) {
  start(kHttpHealthCheck);
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  cb_.down = true;
  ASSERT_TRUE(waitForFlags(b_.port(), "/failed_active_hc"));
  EXPECT_GE(stat("cluster.backend.health_check.network_failure"), 2u);
  EXPECT_THAT(requests(10), ::testing::Not(HasSubstr("B")));
  cb_.down = false;
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
}

TEST_F(HealthIntegrationTest, UpstreamClosingIdleCheckConnectionsIsNotAFailure) {
  ca_.close_after_response = true;
  start(kHttpHealthCheck);
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy"));
  // Every check finds its kept connection closed and opens another.
  ASSERT_TRUE(waitFor([&] { return a_.acceptedCount() >= 10; }));
  EXPECT_EQ(flags(a_.port()), "healthy");
  EXPECT_EQ(stat("cluster.backend.health_check.failure"), 0u);
  EXPECT_TRUE(courier_.running());
}

TEST_F(HealthIntegrationTest, RetriableStatusNeedsTheUnhealthyThresholdAndExpectedStatusesWiden) {
  start(R"(    health_checks:
    - timeout: 1s
      interval: 0.05s
      no_traffic_interval: 0.05s
      unhealthy_threshold: 1000
      healthy_threshold: 1
      http_health_check:
        path: /healthz
        expected_statuses: [{start: 200, end: 300}]
        retriable_statuses: [{start: 429, end: 430}]
)");
  ca_.health_status = 204;
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy"));
  ca_.health_status = 429;
  // Far below the threshold of 1000: still healthy after several failures.
  ASSERT_TRUE(courier_.waitForStat("cluster.backend.health_check.failure", 3));
  EXPECT_EQ(flags(a_.port()), "healthy");
  ca_.health_status = 500;
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
}

TEST_F(HealthIntegrationTest, HttpCheckSendsHostUserAgentAndAddedHeaders) {
  start(R"(    health_checks:
    - timeout: 1s
      interval: 0.05s
      no_traffic_interval: 0.05s
      unhealthy_threshold: 2
      healthy_threshold: 2
      http_health_check:
        path: /healthz
        host: hc.example
        request_headers_to_add: [{header: {key: x-probe, value: "1"}}]
)");
  ASSERT_TRUE(waitFor([&] { return !ca_.lastCheck().empty(); }));
  const std::string request = ca_.lastCheck();
  EXPECT_THAT(request, ::testing::StartsWith("GET /healthz HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr("host: hc.example\r\n"));
  EXPECT_THAT(request, HasSubstr("user-agent: Envoy/HC\r\n"));
  EXPECT_THAT(request, HasSubstr("x-probe: 1\r\n"));
}

TEST_F(HealthIntegrationTest, TcpCheckSendsAndExpectsPayloads) {
  Control cp, cq;
  TcpServer p{pingPongUpstream(cp)};
  TcpServer q{pingPongUpstream(cq)};
  ASSERT_TRUE(courier_.start(config(twoHostCluster(p.port(), q.port(), R"(    health_checks:
    - timeout: 1s
      interval: 0.1s
      no_traffic_interval: 0.1s
      unhealthy_threshold: 2
      healthy_threshold: 2
      tcp_health_check:
        send: {text: "50494E47"}
        receive: [{text: "504F4E47"}]
)"))))
      << courier_.log();
  ASSERT_TRUE(waitForFlags(p.port(), "healthy")) << flags(p.port());
  ASSERT_TRUE(waitForFlags(q.port(), "healthy"));
  cp.down = true;
  ASSERT_TRUE(waitForFlags(p.port(), "/failed_active_hc"));
  EXPECT_EQ(flags(q.port()), "healthy");
  EXPECT_GE(stat("cluster.backend.health_check.network_failure"), 2u);
  cp.down = false;
  ASSERT_TRUE(waitForFlags(p.port(), "healthy"));
}

TEST_F(HealthIntegrationTest, ConsecutiveFiveHundredsEjectAndTheHostReturnsAfterTheBaseTime) {
  start(R"(    outlier_detection:
      consecutive_5xx: 3
      interval: 0.05s
      base_ejection_time: 0.5s
      max_ejection_percent: 100
)");
  ca_.status = 503;
  for (int i = 0; i < 50 && stat("cluster.backend.outlier_detection.ejections_enforced_consecutive_5xx") == 0; ++i) {
    httpRequest(port_, "GET", "/x");
  }
  ASSERT_TRUE(courier_.waitForStat("cluster.backend.outlier_detection.ejections_enforced_consecutive_5xx", 1));
  EXPECT_EQ(stat("cluster.backend.outlier_detection.ejections_active"), 1u);
  EXPECT_EQ(flags(a_.port()), "/failed_outlier_check");
  EXPECT_THAT(requests(10), ::testing::Not(HasSubstr("A")));

  ca_.status = 200;
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy"));
  EXPECT_EQ(stat("cluster.backend.outlier_detection.ejections_active"), 0u);
  EXPECT_TRUE(waitFor([&] { return requests(4).find('A') != std::string::npos; }));
}

TEST_F(HealthIntegrationTest, WithEveryHostFailingPanicModeStillServes) {
  ca_.health_status = 503;
  cb_.health_status = 503;
  start(kHttpHealthCheck);
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  ASSERT_TRUE(waitForFlags(b_.port(), "/failed_active_hc"));
  const std::string bodies = requests(10);
  EXPECT_THAT(bodies, HasSubstr("A"));
  EXPECT_THAT(bodies, HasSubstr("B"));
  EXPECT_GE(stat("cluster.backend.lb_healthy_panic"), 10u);
}

TEST_F(HealthIntegrationTest, WithPanicDisabledNoHealthyHostMeans503) {
  ca_.health_status = 503;
  cb_.health_status = 503;
  start(std::string(kHttpHealthCheck) + "    common_lb_config: {healthy_panic_threshold: {value: 0}}\n");
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  ASSERT_TRUE(waitForFlags(b_.port(), "/failed_active_hc"));
  auto r = httpRequest(port_, "GET", "/x");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("no healthy upstream"));
  EXPECT_GE(stat("cluster.backend.upstream_cx_none_healthy"), 1u);
}

TEST_F(HealthIntegrationTest, ImmediateHealthCheckFailHeaderMarksTheHostAtOnce) {
  start(R"(    health_checks:
    - timeout: 1s
      interval: 0.05s
      no_traffic_interval: 0.05s
      unhealthy_threshold: 100
      healthy_threshold: 1000
      http_health_check: {path: /healthz}
)");
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy"));
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  ca_.immediate_fail = true;
  EXPECT_TRUE(waitFor([&] {
    httpRequest(port_, "GET", "/x");
    return flags(a_.port()) == "/failed_active_hc";
  }));
}

TEST_F(HealthIntegrationTest, ClustersJsonShowsHealthFlags) {
  ca_.health_status = 503;
  start(kHttpHealthCheck);
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  const std::string json = courier_.admin("/clusters?format=json").body;
  EXPECT_THAT(json, HasSubstr("\"failed_active_health_check\": true")) << json;
  EXPECT_THAT(json, HasSubstr("\"eds_health_status\": \"HEALTHY\""));
}

TEST_F(HealthIntegrationTest, AdminHealthcheckFailAndOkArePostOnly) {
  start("");
  EXPECT_EQ(courier_.admin("/healthcheck/fail").status, 405);
  EXPECT_EQ(courier_.admin("/healthcheck/fail", "POST").status, 200);
  EXPECT_EQ(courier_.admin("/healthcheck/ok", "POST").status, 200);
  EXPECT_THAT(courier_.admin("/help").body, HasSubstr("/healthcheck/fail"));
}

TEST(HealthConfigTest, MissingIntervalIsAnErrorNamingTheField) {
  const std::string dir = tempDir();
  const std::string path = dir + "/bad.yaml";
  writeFile(path, config(twoHostCluster(1, 2, R"(    health_checks:
    - timeout: 1s
      unhealthy_threshold: 2
      healthy_threshold: 2
      http_health_check: {path: /healthz}
)")));
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].health_checks[0].interval"));
}

TEST(HealthConfigTest, BadTcpPayloadIsAnErrorNamingTheField) {
  const std::string dir = tempDir();
  const std::string path = dir + "/bad.yaml";
  writeFile(path, config(twoHostCluster(1, 2, R"(    health_checks:
    - timeout: 1s
      interval: 1s
      unhealthy_threshold: 2
      healthy_threshold: 2
      tcp_health_check: {send: {text: "zz"}}
)")));
  std::string out;
  EXPECT_EQ(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].health_checks[0].tcp_health_check.send.text"));
}

TEST(TcpProxyOutlierTest, RefusedConnectsEjectTheHostAndTrafficStaysOnTheLiveOne) {
  TcpServer live{TcpServer::echo()};
  const uint16_t dead = unusedPort();
  std::string cfg = tcpProxyConfig({live.port(), dead});
  const std::string type = "    type: STATIC\n";
  cfg.replace(cfg.find(type), type.size(),
              type + "    outlier_detection: {consecutive_5xx: 2, interval: 10s, base_ejection_time: 30s, "
                     "max_ejection_percent: 100}\n");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg)) << courier.log();
  const uint16_t port = courier.listenerPort("tcp");
  const std::string ejected = "cluster.backend.outlier_detection.ejections_enforced_consecutive_5xx";
  for (int i = 0; i < 40 && courier.stat(ejected).value_or(0) == 0; ++i) {
    TcpClient c(port);
    c.write("x");
    c.readExactly(1);
  }
  ASSERT_TRUE(courier.waitForStat(ejected, 1)) << courier.log();
  for (int i = 0; i < 10; ++i) {
    TcpClient c(port);
    ASSERT_TRUE(c.write("y"));
    EXPECT_EQ(c.readExactly(1), "y") << "connection " << i;
  }
}


// A in priority 0, B in priority 1.
std::string twoPriorityCluster(uint16_t a, uint16_t b, const std::string& extra) {
  return R"(  - name: backend
    connect_timeout: 1s
    type: STATIC
)" + extra + R"(    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(a) + R"(}}}
      - priority: 1
        lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(b) + "}}}\n";
}

TEST_F(HealthIntegrationTest, TrafficFailsOverToTheNextPriorityAndBack) {
  ASSERT_TRUE(courier_.start(config(twoPriorityCluster(a_.port(), b_.port(), kHttpHealthCheck)))) << courier_.log();
  port_ = courier_.listenerPort("http");
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << courier_.log();
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  // Priority 0 healthy: it takes everything.
  EXPECT_THAT(requests(10), ::testing::Not(HasSubstr("B")));

  ca_.health_status = 503;
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  EXPECT_THAT(requests(10), ::testing::Not(HasSubstr("A")));
  EXPECT_EQ(stat("cluster.backend.lb_healthy_panic"), 0u);

  ca_.health_status = 200;
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy"));
  EXPECT_THAT(requests(10), ::testing::Not(HasSubstr("B")));
}

}  // namespace
}  // namespace courier::test
