// parseHealthChecks: Envoy's defaults and what each health_checks option
// accepts or refuses, with errors naming the field path.
#include "source/common/upstream/health_checker.h"

#include <algorithm>
#include <random>
#include <string>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"

namespace courier::upstream {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// The health_checks of a cluster written as YAML (a list of entries).
absl::StatusOr<std::shared_ptr<HealthCheckSink>> parse(const std::string& checks_yaml) {
  envoy::config::cluster::v3::Cluster cluster;
  auto loaded = protobuf::loadFromYamlString("{name: c, health_checks: " + checks_yaml + "}", cluster);
  EXPECT_TRUE(loaded.ok()) << loaded << checks_yaml;
  return parseHealthChecks(cluster.health_checks(), "clusters[0]");
}

// One entry with the required fields and `rest` (YAML mapping entries).
std::string entry(const std::string& rest) {
  return "{timeout: 1s, interval: 2s, unhealthy_threshold: 3, healthy_threshold: 2, " + rest + "}";
}

std::string errorOf(const std::string& checks_yaml) {
  auto r = parse(checks_yaml);
  return r.ok() ? "ok" : std::string(r.status().message());
}

TEST(HealthCheckParseTest, EmptyListIsNoChecker) {
  auto r = parse("[]");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, nullptr);
}

TEST(HealthCheckParseTest, SeveralEntriesEachKeepTheirOwnSettings) {
  auto r = parse("[" + entry("http_health_check: {path: /a}") + ", " +
                 entry("tcp_health_check: {send: {text: '50494e47'}, receive: [{text: '504f4e47'}]}") + ", " +
                 entry("grpc_health_check: {service_name: svc}") + "]");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& configs = (*r)->configs();
  ASSERT_EQ(configs.size(), 3u);
  EXPECT_EQ(configs[0].type, HealthCheckConfig::Type::Http);
  EXPECT_EQ(configs[0].path, "/a");
  EXPECT_EQ(configs[1].type, HealthCheckConfig::Type::Tcp);
  EXPECT_EQ(configs[1].send, "PING");
  EXPECT_EQ(configs[2].type, HealthCheckConfig::Type::Grpc);
  EXPECT_TRUE(configs[2].http2);
}

TEST(HealthCheckParseTest, ErrorsInALaterEntryNameItsIndex) {
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /a}") +
                      ", {timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: {path: /}}]"),
              HasSubstr("clusters[0].health_checks[1].interval"));
}

TEST(HealthCheckParseTest, IntervalDefaultsFollowEnvoy) {
  auto r = parse("[" + entry("no_traffic_interval: 7s, http_health_check: {path: /}") + "]");
  ASSERT_TRUE(r.ok()) << r.status();
  const HealthCheckConfig& c = (*r)->configs()[0];
  EXPECT_EQ(c.interval, 2000ms);
  EXPECT_EQ(c.unhealthy_interval, 2000ms);
  EXPECT_EQ(c.unhealthy_edge_interval, 2000ms);
  EXPECT_EQ(c.healthy_edge_interval, 2000ms);
  EXPECT_EQ(c.no_traffic_interval, 7000ms);
  EXPECT_EQ(c.no_traffic_healthy_interval, 7000ms);
  EXPECT_EQ(c.initial_jitter, 0ms);
  EXPECT_TRUE(c.reuse_connection);

  r = parse("[" + entry("unhealthy_interval: 5s, healthy_edge_interval: 0.5s, no_traffic_healthy_interval: 9s, "
                        "interval_jitter: 0.1s, interval_jitter_percent: 10, initial_jitter: 0.2s, "
                        "reuse_connection: false, http_health_check: {path: /}") +
            "]");
  ASSERT_TRUE(r.ok()) << r.status();
  const HealthCheckConfig& d = (*r)->configs()[0];
  EXPECT_EQ(d.unhealthy_interval, 5000ms);
  EXPECT_EQ(d.unhealthy_edge_interval, 5000ms);  // defaults to unhealthy_interval
  EXPECT_EQ(d.healthy_edge_interval, 500ms);
  EXPECT_EQ(d.no_traffic_interval, 60000ms);
  EXPECT_EQ(d.no_traffic_healthy_interval, 9000ms);
  EXPECT_EQ(d.interval_jitter, 100ms);
  EXPECT_EQ(d.interval_jitter_percent, 10u);
  EXPECT_EQ(d.initial_jitter, 200ms);
  EXPECT_FALSE(d.reuse_connection);
}

TEST(HealthCheckParseTest, ZeroOrNegativeIntervalsNameTheField) {
  EXPECT_THAT(errorOf("[" + entry("unhealthy_edge_interval: 0s, http_health_check: {path: /}") + "]"),
              HasSubstr("clusters[0].health_checks[0].unhealthy_edge_interval"));
  EXPECT_THAT(errorOf("[" + entry("no_traffic_healthy_interval: -1s, http_health_check: {path: /}") + "]"),
              HasSubstr("clusters[0].health_checks[0].no_traffic_healthy_interval"));
}

TEST(HealthCheckParseTest, ServiceNameMatcherIsCompiled) {
  auto r = parse("[" + entry("http_health_check: {path: /, service_name_matcher: {prefix: web}}") + "]");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& m = (*r)->configs()[0].service_name_matcher;
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->match("web-prod"));
  EXPECT_FALSE(m->match("db"));
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, service_name_matcher: {safe_regex: {regex: '('}}}") +
                      "]"),
              HasSubstr("clusters[0].health_checks[0].http_health_check.service_name_matcher.safe_regex.regex"));
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, service_name_matcher: {}}") + "]"),
              HasSubstr("clusters[0].health_checks[0].http_health_check.service_name_matcher"));
}

TEST(HealthCheckParseTest, HttpPayloads) {
  auto r = parse("[" + entry("http_health_check: {path: /, method: POST, send: {text: '70696e67'}, "
                             "receive: [{text: '706f'}, {binary: 'bmc='}], response_buffer_size: 8}") +
                 "]");
  ASSERT_TRUE(r.ok()) << r.status();
  const HealthCheckConfig& c = (*r)->configs()[0];
  EXPECT_EQ(c.method, "POST");
  EXPECT_EQ(c.send, "ping");
  EXPECT_EQ(c.receive, (std::vector<std::string>{"po", "ng"}));
  EXPECT_EQ(c.response_buffer_size, 8u);
  // The default buffer is Envoy's 1024 bytes.
  r = parse("[" + entry("http_health_check: {path: /, receive: [{text: '6f6b'}]}") + "]");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->configs()[0].response_buffer_size, 1024u);
}

TEST(HealthCheckParseTest, BadHttpPayloadsNameTheField) {
  // GET (the default), HEAD, DELETE and TRACE carry no body.
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, send: {text: '00'}}") + "]"),
              HasSubstr("clusters[0].health_checks[0].http_health_check.send"));
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, method: HEAD, send: {text: '00'}}") + "]"),
              HasSubstr("http_health_check.send"));
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, method: PUT, send: {text: 'xyz'}}") + "]"),
              HasSubstr("clusters[0].health_checks[0].http_health_check.send.text"));
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, receive: [{text: '00'}, {text: 'q'}]}") + "]"),
              HasSubstr("clusters[0].health_checks[0].http_health_check.receive[1].text"));
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, receive: [{text: '000000'}], "
                                  "response_buffer_size: 2}") +
                      "]"),
              HasSubstr("clusters[0].health_checks[0].http_health_check.receive"));
}

TEST(HealthCheckParseTest, GrpcInitialMetadata) {
  auto r = parse("[" + entry("grpc_health_check: {initial_metadata: [{header: {key: X-Token, value: abc}}]}") + "]");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->configs()[0].request_headers_to_add,
            (std::vector<std::pair<std::string, std::string>>{{"x-token", "abc"}}));
  EXPECT_THAT(errorOf("[" + entry("grpc_health_check: {initial_metadata: [{header: {key: x, value: y}}, "
                                  "{header: {key: ':path', value: /}}]}") +
                      "]"),
              HasSubstr("clusters[0].health_checks[0].grpc_health_check.initial_metadata[1].header.key"));
}

TEST(HealthCheckParseTest, TlsOptionsAlpn) {
  auto r = parse("[" + entry("tls_options: {alpn_protocols: [hc, http/1.1]}, http_health_check: {path: /}") + "]");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->configs()[0].alpn_protocols, (std::vector<std::string>{"hc", "http/1.1"}));
  EXPECT_THAT(errorOf("[" + entry("tls_options: {alpn_protocols: [h2, '']}, http_health_check: {path: /}") + "]"),
              HasSubstr("clusters[0].health_checks[0].tls_options.alpn_protocols[1]"));
}

TEST(HealthCheckParseTest, LoggingOptionsAreAccepted) {
  auto r = parse("[" + entry("always_log_health_check_failures: true, event_log_path: /dev/null, "
                             "http_health_check: {path: /}") +
                 "]");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE((*r)->configs()[0].always_log_health_check_failures);
}

TEST(HealthCheckParseTest, StillRefused) {
  EXPECT_THAT(errorOf("[" + entry("tcp_health_check: {proxy_protocol_config: {}}") + "]"),
              HasSubstr("clusters[0].health_checks[0].tcp_health_check.proxy_protocol_config"));
  EXPECT_THAT(errorOf("[" + entry("http_health_check: {path: /, codec_client_type: HTTP3}") + "]"),
              HasSubstr("http_health_check.codec_client_type"));
  EXPECT_THAT(errorOf("[" + entry("custom_health_check: {name: redis}") + "]"),
              HasSubstr("clusters[0].health_checks[0].custom_health_check"));
}

// nextCheckDelay over a config with every interval distinct.
class CheckDelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = parse("[" + entry("no_traffic_interval: 60s, no_traffic_healthy_interval: 90s, unhealthy_interval: 5s, "
                               "unhealthy_edge_interval: 0.3s, healthy_edge_interval: 0.4s, "
                               "http_health_check: {path: /}") +
                   "]");
    ASSERT_TRUE(r.ok()) << r.status();
    c_ = (*r)->configs()[0];
  }
  std::chrono::milliseconds delay(bool traffic, bool healthy, HealthTransition t, uint64_t random = 0) {
    return nextCheckDelay(c_, traffic, healthy, t, random);
  }
  HealthCheckConfig c_;
};

TEST_F(CheckDelayTest, AfterTrafficTheIntervalFollowsTheResultAndPendingTransitions) {
  using T = HealthTransition;
  // Passing: interval, or healthy_edge_interval while below healthy_threshold.
  EXPECT_EQ(delay(true, true, T::Unchanged), 2000ms);
  EXPECT_EQ(delay(true, true, T::Changed), 2000ms);
  EXPECT_EQ(delay(true, true, T::ChangePending), 400ms);
  // Failing: unhealthy_interval, or unhealthy_edge_interval while below
  // unhealthy_threshold.
  EXPECT_EQ(delay(true, false, T::Unchanged), 5000ms);
  EXPECT_EQ(delay(true, false, T::Changed), 5000ms);
  EXPECT_EQ(delay(true, false, T::ChangePending), 300ms);
}

TEST_F(CheckDelayTest, WithoutTrafficTheNoTrafficIntervalsApply) {
  using T = HealthTransition;
  EXPECT_EQ(delay(false, true, T::Unchanged), 90000ms);
  EXPECT_EQ(delay(false, true, T::Changed), 90000ms);
  EXPECT_EQ(delay(false, true, T::ChangePending), 60000ms);
  EXPECT_EQ(delay(false, false, T::Unchanged), 60000ms);
  EXPECT_EQ(delay(false, false, T::ChangePending), 60000ms);
}

TEST_F(CheckDelayTest, JitterAddsWithinItsBounds) {
  c_.interval_jitter_percent = 10;       // up to 200ms of the 2s interval
  c_.interval_jitter = 50ms;             // plus up to 50ms
  std::mt19937_64 random(7);
  std::chrono::milliseconds lo = 1h, hi = 0ms;
  for (int i = 0; i < 2000; ++i) {
    const auto d = delay(true, true, HealthTransition::Unchanged, random());
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GE(lo, 2000ms);
  EXPECT_LT(hi, 2000ms + 200ms + 50ms);
  // Spread over most of the range, not stuck at one end.
  EXPECT_LT(lo, 2030ms);
  EXPECT_GT(hi, 2200ms);
  // A percentage of the base in use: 10% of unhealthy_interval's 5s.
  EXPECT_LT(delay(true, false, HealthTransition::Unchanged, 499), 5000ms + 500ms + 50ms);
  EXPECT_EQ(delay(true, false, HealthTransition::Unchanged, 499), 5000ms + 499ms);
}

TEST_F(CheckDelayTest, InitialJitterDelaysOnlyTheFirstCheck) {
  EXPECT_EQ(firstCheckDelay(c_, 12345), 0ms);
  c_.initial_jitter = 100ms;
  EXPECT_EQ(firstCheckDelay(c_, 12345), 45ms);
  for (uint64_t r : {0ull, 99ull, 100ull, ~0ull}) EXPECT_LT(firstCheckDelay(c_, r), 100ms);
}

}  // namespace
}  // namespace courier::upstream
