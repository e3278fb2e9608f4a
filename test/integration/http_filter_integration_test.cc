// The HTTP filter chain through the real binary: http_filters config
// (ordering rules, optional and unknown filters) and a real buffering filter
// (envoy.filters.http.buffer) in front of the router.
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

std::string routerFilter() {
  return R"(          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
}

std::string bufferFilter(const std::string& max_request_bytes) {
  return R"(          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
)" + (max_request_bytes.empty() ? "" : "              max_request_bytes: " + max_request_bytes + "\n");
}

// One route to cluster "primary"; filters is the http_filters list body.
std::string filterConfig(uint16_t upstream, const std::string& filters) {
  return hcmListener("") + R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: primary}
          http_filters:
)" + filters + R"(  clusters:
  - name: primary
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: primary
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(upstream) + "}}}\n";
}

std::string validate(const std::string& config, int* code) {
  std::string path = tempDir() + "/filters.yaml";
  writeFile(path, config);
  std::string out;
  *code = CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out);
  return out;
}

TEST(HttpFilterChainTest, BufferFilterSendsAChunkedUploadUpstreamWithALength) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(filterConfig(upstream.port(), bufferFilter("1024") + routerFilter()))) << courier.log();
  Raw c(courier.listenerPort("http"));
  // The test upstream only understands content-length bodies: it sees all
  // 11 bytes only if the buffer filter turned the chunks into one body.
  std::string r = c.roundTrip(
      "POST /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r, HasSubstr("primary POST /up HTTP/1.1 body=11"));
}

TEST(HttpFilterChainTest, BufferFilterAnswers413OverMaxRequestBytesWithoutGoingUpstream) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(filterConfig(upstream.port(), bufferFilter("8") + routerFilter()))) << courier.log();
  Raw c(courier.listenerPort("http"));
  // A first chunk of 20 bytes, more to come: held, and over the limit.
  std::string r = c.roundTrip("POST /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n14\r\n" +
                              std::string(20, 'x') + "\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(r, HasSubstr("Payload Too Large"));
  EXPECT_TRUE(courier.waitForStat("http.ingress.downstream_rq_too_large", 1));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_rq_total"), 0u);
  // The listener keeps serving.
  Raw again(courier.listenerPort("http"));
  EXPECT_THAT(again.roundTrip(get("a", "/next")), HasSubstr("primary GET /next"));
}

TEST(HttpFilterChainTest, BufferFilterPassesAHeaderOnlyRequestStraightThrough) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(filterConfig(upstream.port(), bufferFilter("8") + routerFilter()))) << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("a", "/plain")), HasSubstr("primary GET /plain HTTP/1.1 body=0"));
}

TEST(HttpFilterChainTest, UnknownFilterIsAnErrorNamingItsPosition) {
  int code = 0;
  std::string out = validate(filterConfig(9, R"(          - name: envoy.filters.http.no_such_thing
)" + routerFilter()),
                             &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("http_filters[0]"));
  EXPECT_THAT(out, HasSubstr("envoy.filters.http.no_such_thing"));
}

TEST(HttpFilterChainTest, OptionalUnknownFilterIsSkipped) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(filterConfig(upstream.port(), R"(          - name: istio.stats
            is_optional: true
)" + routerFilter())))
      << courier.log();
  Raw c(courier.listenerPort("http"));
  EXPECT_THAT(c.roundTrip(get("a", "/x")), HasSubstr("primary GET /x"));
}

TEST(HttpFilterChainTest, RouterBeforeAnotherFilterIsAnError) {
  int code = 0;
  std::string out = validate(filterConfig(9, routerFilter() + bufferFilter("8")), &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("http_filters[0]: terminal filter"));
}

TEST(HttpFilterChainTest, ChainNotEndingInTheRouterIsAnError) {
  int code = 0;
  std::string out = validate(filterConfig(9, bufferFilter("8")), &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("http_filters[0]: non-terminal filter"));
}

TEST(HttpFilterChainTest, BufferFilterWithoutMaxRequestBytesNamesTheField) {
  int code = 0;
  std::string out = validate(filterConfig(9, bufferFilter("") + routerFilter()), &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("http_filters[0].typed_config.max_request_bytes"));
}

TEST(HttpFilterChainTest, DisabledFilterIsLeftOut) {
  TcpServer upstream(namedUpstream("primary"));
  CourierProcess courier;
  std::string disabled = bufferFilter("8");
  disabled.insert(disabled.find("            typed_config"), "            disabled: true\n");
  ASSERT_TRUE(courier.start(filterConfig(upstream.port(), disabled + routerFilter()))) << courier.log();
  Raw c(courier.listenerPort("http"));
  // Over the disabled buffer filter's limit, and still forwarded.
  std::string body(20, 'y');
  EXPECT_THAT(c.roundTrip("POST /d HTTP/1.1\r\nhost: a\r\ncontent-length: 20\r\n\r\n" + body),
              HasSubstr("primary POST /d HTTP/1.1 body=20"));
}

}  // namespace
}  // namespace courier::test
