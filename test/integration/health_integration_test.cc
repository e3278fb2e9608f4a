// Active health checks, outlier detection and panic mode against real
// upstreams on loopback that fail and recover while courier runs.
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/configs.h"
#include "test/integration/http_test_util.h"
#include "test/integration/test_pki.h"
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
  std::atomic<int> checks{0};                     // /healthz requests seen
  std::atomic<bool> degraded{false};              // health checks answered with x-envoy-degraded
  std::mutex mu;
  std::string last_check;  // the last health-check request (head and body)
  // Health-check answers: the body (empty: the upstream's name) and an
  // x-envoy-upstream-healthchecked-cluster value (empty: none).
  std::string health_body;
  std::string healthchecked_cluster;
  std::string lastCheck() {
    std::lock_guard<std::mutex> lock(mu);
    return last_check;
  }
  void setHealthAnswer(const std::string& body, const std::string& cluster) {
    std::lock_guard<std::mutex> lock(mu);
    health_body = body;
    healthchecked_cluster = cluster;
  }
};

TcpServer::Handler controlledUpstream(std::string name, Control& c) {
  return [name, &c](int fd) {
    if (c.down) return;
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) {
      if (c.down) return;
      // /healthz by any method is the health check; other paths are traffic
      // (or a second checker's path).
      const bool hc = request.substr(0, request.find("\r\n")).find(" /healthz ") != std::string::npos;
      const int code = hc ? c.health_status.load() : c.status.load();
      std::string extra;
      std::string body = name;
      if (hc) {
        ++c.checks;
        std::lock_guard<std::mutex> lock(c.mu);
        c.last_check = request;
        if (!c.health_body.empty()) body = c.health_body;
        if (!c.healthchecked_cluster.empty()) {
          extra = "x-envoy-upstream-healthchecked-cluster: " + c.healthchecked_cluster + "\r\n";
        }
      }
      if (!hc && c.immediate_fail) extra = "x-envoy-immediate-health-check-fail: true\r\n";
      if (hc && c.degraded) extra += "x-envoy-degraded: true\r\n";
      sendAll(fd, "HTTP/1.1 " + std::to_string(code) + " X\r\ncontent-length: " + std::to_string(body.size()) + "\r\n" +
                      extra + "\r\n" + body);
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
)" + extra +
         R"(    load_assignment:
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

// One health_checks entry that checks every 50 ms, with or without traffic:
// `check` is its checker ("http_health_check: {path: /healthz}"), `extra`
// more lines of the entry.
std::string fastCheck(int unhealthy_threshold, int healthy_threshold, const std::string& check,
                      const std::string& extra = "") {
  return absl::StrCat("    - timeout: 1s\n      interval: 0.05s\n      no_traffic_interval: 0.05s\n", extra,
                      "      unhealthy_threshold: ", unhealthy_threshold,
                      "\n      healthy_threshold: ", healthy_threshold, "\n      ", check, "\n");
}

// A cluster's health_checks list of the given entries.
std::string healthChecks(const std::vector<std::string>& entries) {
  return absl::StrCat("    health_checks:\n", absl::StrJoin(entries, ""));
}

const std::string kHttpHealthCheck = healthChecks({fastCheck(2, 2, "http_health_check: {path: /healthz}")});

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
  start(healthChecks({fastCheck(1000, 1,
                                "http_health_check: {path: /healthz, expected_statuses: [{start: 200, end: 300}], "
                                "retriable_statuses: [{start: 429, end: 430}]}")}));
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
  start(healthChecks({fastCheck(
      2, 2,
      R"(http_health_check: {path: /healthz, host: hc.example, request_headers_to_add: [{header: {key: x-probe, value: "1"}}]})")}));
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
)")))) << courier_.log();
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
  start(healthChecks({fastCheck(100, 1000, "http_health_check: {path: /healthz}")}));
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

TEST_F(HealthIntegrationTest, WithTwoCheckersEitherFailingTakesTheHostOut) {
  // The first checks /healthz (health_status), the second /ready (status).
  start(healthChecks(
      {fastCheck(2, 2, "http_health_check: {path: /healthz}"), fastCheck(2, 1, "http_health_check: {path: /ready}")}));
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << flags(a_.port()) << courier_.log();
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  EXPECT_EQ(stat("cluster.backend.health_check.healthy"), 2u);

  // Only the second checker fails A.
  ca_.status = 503;
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  EXPECT_EQ(stat("cluster.backend.health_check.healthy"), 1u);
  EXPECT_EQ(stat("cluster.backend.membership_healthy"), 1u);
  EXPECT_EQ(flags(b_.port()), "healthy");
  // The first keeps passing meanwhile: A stays out while either fails.
  const uint64_t checks = stat("cluster.backend.health_check.success");
  ASSERT_TRUE(courier_.waitForStat("cluster.backend.health_check.success", checks + 6));
  EXPECT_EQ(flags(a_.port()), "/failed_active_hc");

  // Now only the first fails A.
  ca_.health_status = 503;
  ca_.status = 200;
  const uint64_t failures = stat("cluster.backend.health_check.failure");
  ASSERT_TRUE(courier_.waitForStat("cluster.backend.health_check.failure", failures + 6));
  EXPECT_EQ(flags(a_.port()), "/failed_active_hc");

  // Both pass: A returns.
  ca_.health_status = 200;
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy"));
  EXPECT_EQ(stat("cluster.backend.health_check.healthy"), 2u);
  EXPECT_TRUE(waitFor([&] { return requests(4).find('A') != std::string::npos; }));
}

TEST_F(HealthIntegrationTest, UnhealthyIntervalSlowsTheChecksOfAFailedHostOnceTrafficFlowed) {
  start(healthChecks({fastCheck(2, 1, "http_health_check: {path: /healthz}", "      unhealthy_interval: 60s\n")}));
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << courier_.log();
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  requests(2);  // the cluster has carried traffic: the traffic intervals apply
  ca_.health_status = 503;
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  const int a = ca_.checks, b = cb_.checks;
  // B, healthy, is checked every 50ms meanwhile; A waits its 60s.
  ASSERT_TRUE(waitFor([&] { return cb_.checks >= b + 20; }));
  EXPECT_LE(ca_.checks, a + 1);
}

TEST_F(HealthIntegrationTest, WithoutTrafficHealthyHostsUseTheNoTrafficHealthyInterval) {
  ca_.health_status = 503;
  start(healthChecks(
      {fastCheck(2, 1, "http_health_check: {path: /healthz}", "      no_traffic_healthy_interval: 60s\n")}));
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy")) << courier_.log();
  // A keeps failing and is checked every 50ms; B, healthy, waits 60s.
  ASSERT_TRUE(waitFor([&] { return ca_.checks >= 20; }));
  EXPECT_EQ(flags(a_.port()), "/failed_active_hc");
  EXPECT_LE(cb_.checks, 2);
}

TEST_F(HealthIntegrationTest, ImmediateHealthCheckFailHeaderWorksWithTwoCheckers) {
  start(healthChecks(
      {fastCheck(100, 1000, "http_health_check: {path: /healthz}"), fastCheck(100, 1000, "tcp_health_check: {}")}));
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << courier_.log();
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
  ca_.immediate_fail = true;
  EXPECT_TRUE(waitFor([&] {
    httpRequest(port_, "GET", "/x");
    return flags(a_.port()) == "/failed_active_hc";
  }));
  EXPECT_EQ(flags(b_.port()), "healthy");
}

TEST_F(HealthIntegrationTest, ServiceNameMatcherChecksTheUpstreamsClusterHeader) {
  ca_.setHealthAnswer("", "backend-prod");
  cb_.setHealthAnswer("", "other-prod");
  start(
      healthChecks({fastCheck(2, 1, "http_health_check: {path: /healthz, service_name_matcher: {prefix: backend}}")}));
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("cluster.backend.health_check.verify_cluster", 4));
  EXPECT_EQ(flags(b_.port()), "/failed_active_hc");
  EXPECT_THAT(requests(6), ::testing::Not(HasSubstr("B")));

  // A missing header does not match either.
  ca_.setHealthAnswer("", "");
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  cb_.setHealthAnswer("", "backend-canary");
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
}

TEST_F(HealthIntegrationTest, HttpCheckSendsTheBodyAndMatchesTheResponseBody) {
  ca_.setHealthAnswer("status: ok, load: 3", "");
  cb_.setHealthAnswer("status: degraded-but-up", "");
  start(healthChecks({fastCheck(
      2, 1,
      R"(http_health_check: {path: /healthz, method: POST, send: {text: "7b2270696e67223a317d"}, receive: [{text: "737461747573"}, {text: "6f6b"}]})")}));
  ASSERT_TRUE(waitForFlags(a_.port(), "healthy")) << courier_.log();
  // "status" then "ok" in order: B's body has "status" but no "ok" after it.
  ASSERT_TRUE(courier_.waitForStat("cluster.backend.health_check.failure", 2));
  EXPECT_EQ(flags(b_.port()), "/failed_active_hc");
  const std::string request = ca_.lastCheck();
  EXPECT_THAT(request, ::testing::StartsWith("POST /healthz HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr("content-length: 10\r\n"));
  EXPECT_THAT(request, ::testing::EndsWith("\r\n\r\n{\"ping\":1}"));

  // The body is checked before the status: a 200 without the payload fails.
  ca_.setHealthAnswer("nothing here", "");
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
  cb_.setHealthAnswer("status=ok", "");
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy"));
}

TEST_F(HealthIntegrationTest, ResponseBodyBeyondTheBufferSizeIsNotSearched) {
  ca_.setHealthAnswer(std::string(40, '.') + "ok", "");
  cb_.setHealthAnswer("ok" + std::string(40, '.'), "");
  start(healthChecks({fastCheck(
      2, 1, R"(http_health_check: {path: /healthz, receive: [{text: "6f6b"}], response_buffer_size: 16})")}));
  ASSERT_TRUE(waitForFlags(b_.port(), "healthy")) << courier_.log();
  ASSERT_TRUE(waitForFlags(a_.port(), "/failed_active_hc"));
}

// courier's TLS listener answering /healthz itself, as a TLS upstream.
std::string tlsUpstreamConfig() {
  return R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: https
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: )" +
         pki().path("server.pem") + R"(}
              private_key: {filename: )" +
         pki().path("server.key") + R"(}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: "/healthz"}
                direct_response: {status: 200, body: {inline_string: "fine"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
}

// A front courier whose cluster speaks TLS (offering `alpn`) to `port`, with
// an HTTP/1.1 health check (`hc_extra`: more fields of the entry).
std::string tlsFrontConfig(uint16_t port, const std::string& alpn, const std::string& hc_extra) {
  return config(R"(  - name: backend
    connect_timeout: 1s
    type: STATIC
)" + healthChecks({fastCheck(2, 1, "http_health_check: {path: /healthz}", hc_extra)}) +
                R"(    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: courier.test
        common_tls_context:
          alpn_protocols: [)" +
                alpn + R"(]
          validation_context:
            trusted_ca: {filename: )" +
                pki().path("ca.pem") + R"(}
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
                std::to_string(port) + "}}}\n");
}

class TlsHealthIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki().ok) << pki().log;
    ASSERT_TRUE(upstream_.start(tlsUpstreamConfig())) << upstream_.log();
    upstream_port_ = upstream_.listenerPort("https");
  }
  std::string flags() { return flags(front_); }
  std::string flags(const CourierProcess& front) {
    const std::string body = front.admin("/clusters").body;
    const std::string key = "backend::127.0.0.1:" + std::to_string(upstream_port_) + "::health_flags::";
    const size_t at = body.find(key);
    if (at == std::string::npos) return "";
    const size_t start = at + key.size();
    return body.substr(start, body.find('\n', start) - start);
  }
  CourierProcess upstream_;
  CourierProcess front_;
  uint16_t upstream_port_ = 0;
};

TEST_F(TlsHealthIntegrationTest, ChecksRunOverTheClustersTransportSocket) {
  ASSERT_TRUE(front_.start(tlsFrontConfig(upstream_port_, "http/1.1", ""))) << front_.log();
  ASSERT_TRUE(waitFor([&] { return flags() == "healthy"; })) << flags() << front_.log();
  // Only health checks reached the upstream, each over TLS.
  EXPECT_TRUE(front_.waitForStat("cluster.backend.ssl.handshake", 1));
  EXPECT_TRUE(upstream_.waitForStat("listener.127.0.0.1_0.ssl.handshake", 1));
  EXPECT_EQ(front_.stat("cluster.backend.upstream_rq_total").value_or(0), 0u);
  EXPECT_EQ(front_.stat("cluster.backend.health_check.failure").value_or(0), 0u);
}

TEST_F(TlsHealthIntegrationTest, TlsOptionsAlpnReplacesTheClustersList) {
  // The cluster offers only h2, so the upstream speaks HTTP/2 on the
  // connection and an HTTP/1.1 check on it fails...
  ASSERT_TRUE(front_.start(tlsFrontConfig(upstream_port_, "h2", ""))) << front_.log();
  ASSERT_TRUE(front_.waitForStat("cluster.backend.health_check.failure", 2)) << front_.log();
  EXPECT_EQ(flags(), "/failed_active_hc");
  EXPECT_EQ(front_.stat("cluster.backend.health_check.success").value_or(0), 0u);
  // ...unless the check's tls_options offer http/1.1 instead.
  CourierProcess front;
  ASSERT_TRUE(front.start(tlsFrontConfig(upstream_port_, "h2", "      tls_options: {alpn_protocols: [http/1.1]}\n")))
      << front.log();
  ASSERT_TRUE(waitFor([&] { return flags(front) == "healthy"; })) << flags(front) << front.log();
}

TEST(TlsHealthFailureTest, ATlsCheckAgainstAPlaintextUpstreamFailsWithoutHarm) {
  ASSERT_TRUE(pki().ok) << pki().log;
  // The upstream answers TLS hellos with plaintext HTTP errors.
  TcpServer plain{namedUpstream("P")};
  CourierProcess front;
  ASSERT_TRUE(front.start(tlsFrontConfig(plain.port(), "http/1.1", ""))) << front.log();
  ASSERT_TRUE(front.waitForStat("cluster.backend.health_check.network_failure", 3)) << front.log();
  EXPECT_EQ(front.stat("cluster.backend.health_check.success").value_or(0), 0u);
  EXPECT_EQ(front.stat("cluster.backend.ssl.handshake").value_or(0), 0u);
  EXPECT_TRUE(front.running());
  EXPECT_EQ(front.admin("/clusters").status, 200);
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
              type +
                  "    outlier_detection: {consecutive_5xx: 2, interval: 10s, base_ejection_time: 30s, "
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
)" + extra +
         R"(    load_assignment:
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
