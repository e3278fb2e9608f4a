#include "source/extensions/filters/listener/http_inspector/http_inspector.h"

#include <string>

#include "gtest/gtest.h"
#include "source/common/stats/store.h"

namespace courier::extensions::http_inspector {
namespace {

TEST(DetectHttpTest, RequestLinesAndPreface) {
  EXPECT_EQ(detectHttp("GET / HTTP/1.1\r\n"), HttpDetection::Http11);
  EXPECT_EQ(detectHttp("POST /x?y=1 HTTP/1.0\r\nhost: a\r\n"), HttpDetection::Http10);
  EXPECT_EQ(detectHttp("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), HttpDetection::Http2);
  EXPECT_EQ(detectHttp("PRI * HTTP/2.0\r\n"), HttpDetection::NeedMoreData);
  EXPECT_EQ(detectHttp(""), HttpDetection::NeedMoreData);
  EXPECT_EQ(detectHttp("GE"), HttpDetection::NeedMoreData);
  EXPECT_EQ(detectHttp("GET /index"), HttpDetection::NeedMoreData);
  EXPECT_EQ(detectHttp("GET / HTTP/1."), HttpDetection::NeedMoreData);
  EXPECT_EQ(detectHttp("GET / HTTP/1.1"), HttpDetection::NeedMoreData);
}

TEST(DetectHttpTest, NotHttp) {
  EXPECT_EQ(detectHttp(std::string("\x16\x03\x01\x00", 4)), HttpDetection::NotHttp);
  EXPECT_EQ(detectHttp("SSH-2.0-OpenSSH\r\n"), HttpDetection::NotHttp);
  EXPECT_EQ(detectHttp(" GET / HTTP/1.1\r\n"), HttpDetection::NotHttp);
  EXPECT_EQ(detectHttp("GET  / HTTP/1.1\r\n"), HttpDetection::NotHttp);
  EXPECT_EQ(detectHttp("GET / HTTP/2.0\r\n"), HttpDetection::NotHttp);
  EXPECT_EQ(detectHttp("GET / HTTP/1.1\n"), HttpDetection::NotHttp);
  EXPECT_EQ(detectHttp("PRI * HTTP/2.0\r\n\r\nXX"), HttpDetection::NotHttp);
}

TEST(HttpInspectorTest, CountsSetsProtocolAndSkipsTls) {
  stats::Store store;
  HttpInspector inspector(store);
  server::ListenerFilterState state;
  EXPECT_EQ(inspector.onData("GET / HTTP/1.1\r\n", state), server::ListenerFilterStatus::Continue);
  EXPECT_EQ(state.application_protocols, std::vector<std::string>{"http/1.1"});
  server::ListenerFilterState h2;
  EXPECT_EQ(inspector.onData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", h2), server::ListenerFilterStatus::Continue);
  EXPECT_EQ(h2.application_protocols, std::vector<std::string>{"h2c"});
  server::ListenerFilterState h10;
  inspector.onData("GET / HTTP/1.0\r\n", h10);
  server::ListenerFilterState junk;
  EXPECT_EQ(inspector.onData("hello", junk), server::ListenerFilterStatus::NeedMoreData);
  EXPECT_EQ(inspector.onData("hello there\r\n", junk), server::ListenerFilterStatus::Continue);
  EXPECT_TRUE(junk.application_protocols.empty());
  // A request line longer than the inspector looks: not HTTP, not a hang.
  server::ListenerFilterState longline;
  EXPECT_EQ(inspector.onData("GET /" + std::string(kMaxInspectSize, 'a'), longline),
            server::ListenerFilterStatus::Continue);
  EXPECT_EQ(store.counter("http_inspector.http11_found").value(), 1u);
  EXPECT_EQ(store.counter("http_inspector.http2_found").value(), 1u);
  EXPECT_EQ(store.counter("http_inspector.http10_found").value(), 1u);
  EXPECT_EQ(store.counter("http_inspector.http_not_found").value(), 2u);
  server::ListenerFilterState tls;
  tls.transport_protocol = "tls";
  EXPECT_EQ(inspector.onData("GET / HTTP/1.1\r\n", tls), server::ListenerFilterStatus::Continue);
  EXPECT_TRUE(tls.application_protocols.empty());
}

}  // namespace
}  // namespace courier::extensions::http_inspector
