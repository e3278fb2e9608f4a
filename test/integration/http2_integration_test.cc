// HTTP/2 downstream end to end: the real courier binary with an HTTP
// connection manager speaking HTTP/2 (prior knowledge, or AUTO by preface) to
// curl, nghttp, h2load and a raw client built on our own HTTP/2 client codec,
// in front of HTTP/1 upstreams on loopback.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/http/http2/client_codec.h"
#include "source/common/http/http2/codec.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string cluster(const std::string& name, uint16_t port) { return staticCluster(name, port); }

std::string config(const std::string& codec_type, uint16_t primary, uint16_t slow, const std::string& hcm_extra = "") {
  return hcmListener("          codec_type: " + codec_type + "\n" + hcm_extra) + R"(          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: "/direct"}
                direct_response: {status: 200, body: {inline_string: "hello"}}
              - match: {prefix: "/slow"}
                route: {cluster: slow, timeout: 30s}
              - match: {prefix: "/up"}
                route: {cluster: primary}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + cluster("primary", primary) +
         cluster("slow", slow);
}

// A blocking HTTP/2 client over one socket: our client codec drives the
// frames, the test decides when streams start and reset.
class H2Client : public http::http2::ClientConnectionCallbacks {
 public:
  struct Response : http::ResponseDecoder, http::StreamCallbacks {
    void decode1xxHeaders(http::HeaderMapPtr) override {}
    void decodeHeaders(http::HeaderMapPtr h, bool end) override {
      status = h->status();
      headers = std::move(h);
      done = end;
    }
    void decodeData(buffer::Buffer& data, bool end) override {
      body += data.toString();
      data.drain(data.length());
      done = end;
    }
    void decodeTrailers(http::HeaderMapPtr t) override {
      trailers = std::move(t);
      done = true;
    }
    void onResetStream(http::StreamResetReason r, std::string_view) override {
      reset = true;
      reason = r;
    }
    int status = 0;
    http::HeaderMapPtr headers;
    http::HeaderMapPtr trailers;
    std::string body;
    bool done = false;
    bool reset = false;
    http::StreamResetReason reason{};
    http::RequestEncoder* encoder = nullptr;
  };

  explicit H2Client(uint16_t port) : socket_(port), codec_(out_, {}, this) { flush(); }

  void onGoAway(uint32_t, uint32_t, const std::vector<http::RequestEncoder*>&) override { goaway_ = true; }

  // end_stream false: a POST whose upload_length body bytes follow later.
  Response& get(const std::string& path, bool end_stream = true, size_t upload_length = 0) {
    responses_.push_back(std::make_unique<Response>());
    Response& r = *responses_.back();
    r.encoder = &codec_.newStream(r);
    r.encoder->getStream()->addCallbacks(r);
    http::HeaderMap h;
    h.set(http::headers::kMethod, end_stream ? "GET" : "POST");
    h.set(http::headers::kPath, path);
    h.set(http::headers::kScheme, "http");
    h.set(http::headers::kAuthority, "example.com");
    // The test upstreams read bodies by content-length (no chunked).
    if (!end_stream) h.set("content-length", std::to_string(upload_length));
    r.encoder->encodeHeaders(h, end_stream);
    flush();
    return r;
  }

  // Pumps bytes both ways until done() or the timeout; false on timeout.
  template <class Pred>
  bool until(Pred done, int timeout_ms = 10000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!done()) {
      flush();
      if (closed_ || std::chrono::steady_clock::now() > deadline) return done();
      pollfd p{socket_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      buffer::Buffer in;
      auto io = in.readFromFd(socket_.fd(), 65536);
      if (io.bytes <= 0) {
        closed_ = true;
        codec_.onConnectionClosed();
        continue;
      }
      if (codec_.dispatch(in)) closed_ = true;
    }
    flush();
    return true;
  }

  void flush() {
    while (!out_.empty()) {
      if (out_.writeToFd(socket_.fd()).bytes <= 0) return;
    }
  }

  bool goAway() const { return goaway_; }
  bool closed() const { return closed_; }

 private:
  TcpClient socket_;
  buffer::Buffer out_;
  http::http2::ClientConnection codec_;
  std::vector<std::unique_ptr<Response>> responses_;
  bool goaway_ = false;
  bool closed_ = false;
};

// An HTTP/2 upstream on our own server codec: each request is answered with
// "<name> <method> <path> body=<n>" (and "trailers" if the request had
// some); with_trailers adds grpc-status trailers to the response. After
// goaway_after responses on a connection it sends GOAWAY and closes once the
// streams are done. With batch, responses wait until that many requests are
// complete on the connection. A path containing "/reset" is answered with
// RST_STREAM. With hold, every response waits (counted in hold->held, across
// connections) until hold->release is set.
struct Hold {
  std::atomic<bool> release{false};
  std::atomic<int> held{0};
};
TcpServer::Handler http2Upstream(std::string name, bool with_trailers = false, uint32_t goaway_after = 0,
                                 http::http2::Http2Settings settings = {}, size_t batch = 0,
                                 std::shared_ptr<Hold> hold = nullptr) {
  return [=](int fd) {
    struct Conn : http::ServerConnectionCallbacks {
      struct Request : http::RequestDecoder {
        Request(Conn& c, http::ResponseEncoder& e) : conn(c), encoder(e) {}
        void decodeHeaders(http::HeaderMapPtr h, bool end) override {
          line = std::string(h->method()) + " " + std::string(h->path());
          if (end) respond();
        }
        void decodeData(buffer::Buffer& d, bool end) override {
          body += d.length();
          d.drain(d.length());
          if (end) respond();
        }
        void decodeTrailers(http::HeaderMapPtr) override {
          had_trailers = true;
          respond();
        }
        void respond() {
          if (line.find("/refuse") != std::string::npos && !conn.refused_once) {
            // Unprocessed: the proxy may send it again.
            conn.refused_once = true;
            encoder.getStream()->resetStream(http::StreamResetReason::LocalRefusedStreamReset);
            return;
          }
          if (line.find("/reset") != std::string::npos) {
            encoder.getStream()->resetStream(http::StreamResetReason::ProtocolError);
            return;
          }
          if (conn.hold != nullptr && !conn.hold->release) {
            conn.held.push_back(this);
            ++conn.hold->held;
            return;
          }
          if (conn.batch != 0) {
            conn.ready.push_back(this);
            if (conn.ready.size() < conn.batch) return;
            std::vector<Request*> now;
            now.swap(conn.ready);
            for (Request* r : now) r->answer();
            return;
          }
          answer();
        }
        void answer() {
          std::string text = conn.name + " " + line + " body=" + std::to_string(body) + (had_trailers ? " trailers" : "");
          http::HeaderMap h;
          h.setStatus(200);
          if (!conn.with_trailers) h.set("content-length", std::to_string(text.size()));
          encoder.encodeHeaders(h, false);
          buffer::Buffer b;
          b.add(text);
          encoder.encodeData(b, !conn.with_trailers);
          if (conn.with_trailers) {
            http::HeaderMap t;
            t.set("grpc-status", "0");
            encoder.encodeTrailers(t);
          }
          if (conn.goaway_after != 0 && ++conn.answered == conn.goaway_after) conn.codec->goAway();
        }
        Conn& conn;
        http::ResponseEncoder& encoder;
        std::string line;
        size_t body = 0;
        bool had_trailers = false;
      };
      http::RequestDecoder& newStream(http::ResponseEncoder& e) override {
        requests.push_back(std::make_unique<Request>(*this, e));
        return *requests.back();
      }
      std::string name;
      bool with_trailers;
      uint32_t goaway_after;
      uint32_t answered = 0;
      size_t batch = 0;
      bool refused_once = false;
      std::vector<Request*> ready;
      std::shared_ptr<Hold> hold;
      std::vector<Request*> held;
      buffer::Buffer out;
      std::unique_ptr<http::http2::ServerConnection> codec;
      std::vector<std::unique_ptr<Request>> requests;
    } conn;
    conn.name = name;
    conn.with_trailers = with_trailers;
    conn.goaway_after = goaway_after;
    conn.batch = batch;
    conn.hold = hold;
    conn.codec = std::make_unique<http::http2::ServerConnection>(conn, conn.out, settings);
    while (true) {
      while (!conn.out.empty()) {
        if (conn.out.writeToFd(fd).bytes <= 0) break;
      }
      if (conn.codec->wantsToClose()) break;
      pollfd p{fd, POLLIN, 0};
      if (hold != nullptr) {
        // Wake often to see the release; give up after 10 s of silence.
        int rc = 0;
        for (int waited = 0; waited < 10000 && rc == 0; waited += 20) {
          rc = ::poll(&p, 1, 20);
          if (hold->release && !conn.held.empty()) break;
        }
        if (hold->release && !conn.held.empty()) {
          decltype(conn.held) now;
          now.swap(conn.held);
          for (auto* r : now) r->answer();
          continue;
        }
        if (rc <= 0) break;
      } else if (::poll(&p, 1, 10000) <= 0) {
        break;
      }
      buffer::Buffer in;
      if (in.readFromFd(fd, 65536).bytes <= 0) break;
      if (conn.codec->dispatch(in)) {
        while (!conn.out.empty() && conn.out.writeToFd(fd).bytes > 0) {
        }
        break;
      }
    }
    conn.codec->onConnectionClosed();
  };
}

class Http2IntegrationTest : public ::testing::Test {
 protected:
  void start(const std::string& codec_type = "HTTP2", const std::string& hcm_extra = "") {
    ASSERT_TRUE(courier_.start(config(codec_type, primary_.port(), slow_.port(), hcm_extra), {"--concurrency", "1"}))
        << courier_.log();
    port_ = courier_.listenerPort("http");
    ASSERT_NE(port_, 0);
  }
  std::string url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  std::atomic<bool> stop_{false};
  TcpServer primary_{namedUpstream("primary")};
  TcpServer slow_{silentUpstream(stop_)};
  CourierProcess courier_;
  uint16_t port_ = 0;

  void TearDown() override { stop_ = true; }
};

TEST_F(Http2IntegrationTest, CurlWithPriorKnowledgeReachesAnHttp1Upstream) {
  start();
  std::string out = runCommand("curl -s -i --http2-prior-knowledge " + url("/up/a"));
  EXPECT_THAT(out, StartsWith("HTTP/2 200"));
  EXPECT_THAT(out, HasSubstr("primary GET /up/a HTTP/1.1"));
  EXPECT_THAT(out, HasSubstr("server: envoy"));
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_2xx"), 1u);
}

TEST_F(Http2IntegrationTest, RequestBodyIsForwardedUpstream) {
  start();
  std::string out = runCommand("curl -s --http2-prior-knowledge --data-binary 0123456789 " + url("/up/post"));
  EXPECT_THAT(out, HasSubstr("primary POST /up/post HTTP/1.1 body=10"));
}

TEST_F(Http2IntegrationTest, AutoServesHttp2ByPrefaceAndHttp1Otherwise) {
  start("AUTO");
  EXPECT_THAT(runCommand("curl -s -i --http2-prior-knowledge " + url("/direct")), StartsWith("HTTP/2 200"));
  Raw h1(port_);
  std::string r = h1.roundTrip(get("example.com", "/up/h1"));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r, HasSubstr("primary GET /up/h1"));
}

TEST_F(Http2IntegrationTest, FiftyConcurrentStreamsShareOneConnection) {
  start();
  // nghttp -m 50 sends the 50 requests at once on one connection.
  std::string out = runCommand("nghttp -n -s -m 50 " + url("/up/many") + " 2>&1");
  size_t ok = 0;
  for (size_t at = out.find(" 200 "); at != std::string::npos; at = out.find(" 200 ", at + 1)) ++ok;
  EXPECT_EQ(ok, 50u) << out;
  EXPECT_EQ(courier_.stat("http.ingress.downstream_cx_total"), 1u);
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_2xx"), 50u);
}

TEST_F(Http2IntegrationTest, ALocalReplyOnOneStreamLeavesItsSiblingsAlone) {
  start();
  H2Client c(port_);
  auto& a = c.get("/up/one");
  auto& missing = c.get("/nowhere");
  auto& direct = c.get("/direct");
  auto& b = c.get("/up/two");
  ASSERT_TRUE(c.until([&] { return a.done && missing.done && direct.done && b.done; }));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(direct.status, 200);
  EXPECT_EQ(direct.body, "hello");
  EXPECT_EQ(a.status, 200);
  EXPECT_THAT(a.body, HasSubstr("primary GET /up/one"));
  EXPECT_THAT(b.body, HasSubstr("primary GET /up/two"));
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_4xx"), 1u);
}

TEST_F(Http2IntegrationTest, AStreamResetByTheClientDoesNotDisturbItsSiblings) {
  start();
  H2Client c(port_);
  auto& doomed = c.get("/slow/forever");
  // The request reaches the upstream before the client gives up on it.
  ASSERT_TRUE(courier_.waitForStat("cluster.slow.upstream_rq_total", 1));
  doomed.encoder->getStream()->resetStream(http::StreamResetReason::LocalReset);
  auto& sibling = c.get("/up/after");
  ASSERT_TRUE(c.until([&] { return sibling.done; }));
  EXPECT_EQ(sibling.status, 200);
  EXPECT_THAT(sibling.body, HasSubstr("primary GET /up/after"));
  EXPECT_FALSE(c.closed());
  // The reset stream's upstream request is abandoned (its connection closed).
  EXPECT_TRUE(courier_.waitForStat("http.ingress.downstream_rq_active", 0));
  auto& again = c.get("/direct");
  ASSERT_TRUE(c.until([&] { return again.done; }));
  EXPECT_EQ(again.status, 200);
}

TEST_F(Http2IntegrationTest, AStreamTimeoutResetsOnlyThatStream) {
  start("HTTP2", "          stream_idle_timeout: 0.3s\n");
  H2Client c(port_);
  auto& stuck = c.get("/slow/idle");
  ASSERT_TRUE(c.until([&] { return stuck.done || stuck.reset; }));
  // No response had started: the timeout is a local 408 on that stream.
  EXPECT_EQ(stuck.status, 408);
  auto& next = c.get("/up/next");
  ASSERT_TRUE(c.until([&] { return next.done; }));
  EXPECT_EQ(next.status, 200);
}

TEST_F(Http2IntegrationTest, DrainSendsGoAwayAndLetsTheStreamInFlightFinish) {
  start();
  H2Client c(port_);
  auto& first = c.get("/up/first");
  ASSERT_TRUE(c.until([&] { return first.done; }));
  auto& upload = c.get("/up/late", /*end_stream=*/false, 3);
  ASSERT_TRUE(courier_.waitForStat("http.ingress.downstream_rq_active", 1));
  EXPECT_EQ(courier_.admin("/drain_listeners?graceful", "POST").status, 200);
  ASSERT_TRUE(c.until([&] { return c.goAway(); }));
  EXPECT_FALSE(upload.done);
  buffer::Buffer body;
  body.add("abc");
  upload.encoder->encodeData(body, true);
  ASSERT_TRUE(c.until([&] { return upload.done; }));
  EXPECT_THAT(upload.body, HasSubstr("primary POST /up/late HTTP/1.1 body=3"));
  // With its last stream done, the connection closes.
  EXPECT_TRUE(c.until([&] { return c.closed(); }));
}

TEST_F(Http2IntegrationTest, AReplyBeforeTheUploadEndsWaitsForTheRestOfTheRequest) {
  start();
  H2Client c(port_);
  auto& upload = c.get("/direct", /*end_stream=*/false, 5);
  ASSERT_TRUE(c.until([&] { return upload.done; }));
  EXPECT_EQ(upload.body, "hello");
  // The stream stays open for the client's remaining bytes, then goes.
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_active"), 1u);
  buffer::Buffer rest;
  rest.add("abcde");
  upload.encoder->encodeData(rest, true);
  c.flush();
  EXPECT_TRUE(courier_.waitForStat("http.ingress.downstream_rq_active", 0));
  auto& next = c.get("/up/next");
  ASSERT_TRUE(c.until([&] { return next.done; }));
  EXPECT_EQ(next.status, 200);
  EXPECT_FALSE(upload.reset);
}

TEST_F(Http2IntegrationTest, GarbageAfterThePrefaceIsAConnectionError) {
  start("AUTO");
  TcpClient raw(port_);
  // The preface, then a frame header claiming an absurd length.
  std::string bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  bytes += std::string("\xff\xff\xff\x04\x00\x00\x00\x00\x00", 9) + std::string(64, 'z');
  ASSERT_TRUE(raw.write(bytes));
  EXPECT_TRUE(raw.waitForClose());
  EXPECT_TRUE(courier_.waitForStat("http.ingress.downstream_cx_protocol_error", 1));
}

TEST_F(Http2IntegrationTest, MaxConcurrentStreamsIsAdvertised) {
  start("HTTP2", "          http2_protocol_options: {max_concurrent_streams: 7, initial_stream_window_size: 70000}\n");
  std::string out = runCommand("nghttp -v -n " + url("/direct") + " 2>&1");
  EXPECT_THAT(out, HasSubstr("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7"));
  EXPECT_THAT(out, HasSubstr("SETTINGS_INITIAL_WINDOW_SIZE(0x04):70000"));
}

TEST(Http2TrailersTest, ChunkedUpstreamTrailersReachTheHttp2Client) {
  TcpServer upstream([](int fd) {
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) {
      sendAll(fd, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: grpc-status\r\n\r\n"
                  "5\r\nhello\r\n0\r\ngrpc-status: 0\r\nx-checksum: abc\r\n\r\n");
    }
  });
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config("HTTP2", upstream.port(), upstream.port()), {"--concurrency", "1"})) << courier.log();
  H2Client c(courier.listenerPort("http"));
  auto& r = c.get("/up/trailers");
  ASSERT_TRUE(c.until([&] { return r.done; }));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
  ASSERT_NE(r.trailers, nullptr);
  EXPECT_EQ(r.trailers->getValue("grpc-status"), "0");
  EXPECT_EQ(r.trailers->getValue("x-checksum"), "abc");
  // curl asks for trailers with te: trailers and prints them after the body.
  std::string out = runCommand("curl -s -i --http2-prior-knowledge -H 'te: trailers' http://127.0.0.1:" +
                        std::to_string(courier.listenerPort("http")) + "/up/curl");
  EXPECT_THAT(out, HasSubstr("hello"));
  EXPECT_THAT(out, HasSubstr("grpc-status: 0"));
}

TEST(Http2FlowControlTest, ALargeResponseCrossesASmallClientWindowWhole) {
  // 8 MiB: well past the codec's per-stream buffer limit (1 MiB), so the
  // stream's watermarks pause and resume the upstream read.
  const size_t size = 8u << 20;
  TcpServer upstream([size](int fd) {
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) {
      sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(size) + "\r\n\r\n");
      sendAll(fd, std::string(size, 'x'));
    }
  });
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config("HTTP2", upstream.port(), upstream.port()), {"--concurrency", "1"})) << courier.log();
  // nghttp -w/-W 16: 64 KiB stream and connection windows.
  std::string out = runCommand("nghttp -w 16 -W 16 http://127.0.0.1:" + std::to_string(courier.listenerPort("http")) +
                        "/up/big | wc -c");
  EXPECT_EQ(std::stoul(out), size);
}

TEST(Http2ConfigTest, OutOfRangeWindowNamesTheField) {
  CourierProcess courier;
  EXPECT_FALSE(courier.start(config("HTTP2", 9, 9, "          http2_protocol_options: {initial_stream_window_size: 10}\n")));
  EXPECT_THAT(courier.log(), HasSubstr("http2_protocol_options.initial_stream_window_size"));
}

TEST_F(Http2IntegrationTest, H2loadCompletesWithoutFailures) {
  start();
  std::string out = runCommand("h2load -n 2000 -c 4 -m 10 " + url("/up/load") + " 2>&1");
  EXPECT_THAT(out, HasSubstr("2000 succeeded, 0 failed, 0 errored"));
  std::printf("%s\n", out.substr(out.find("finished in")).c_str());
}

}  // namespace
}  // namespace courier::test

namespace courier::test {
namespace {

// The primary cluster speaks HTTP/2 upstream, by the HttpProtocolOptions
// extension (Istio's way) or by the deprecated cluster field.
std::string h2UpstreamConfig(const std::string& codec_type, uint16_t port, bool deprecated_field = false) {
  std::string cfg = config(codec_type, port, port);
  const std::string anchor = "  - name: primary\n    connect_timeout: 1s\n";
  cfg.replace(cfg.find(anchor) + anchor.size(), 0,
              deprecated_field ? "    http2_protocol_options: {}\n" : R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
)");
  return cfg;
}

TEST(Http2UpstreamTest, AnHttp1ClientReachesAnHttp2UpstreamOnOneConnection) {
  for (bool deprecated : {false, true}) {
    TcpServer upstream(http2Upstream("h2up"));
    CourierProcess courier;
    ASSERT_TRUE(courier.start(h2UpstreamConfig("HTTP1", upstream.port(), deprecated), {"--concurrency", "1"}))
        << courier.log();
    Raw c(courier.listenerPort("http"));
    for (int i = 0; i < 3; ++i) {
      std::string r = c.roundTrip(get("example.com", "/up/" + std::to_string(i)));
      EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
      EXPECT_THAT(r, HasSubstr("h2up GET /up/" + std::to_string(i) + " body=0"));
    }
    std::string post = c.roundTrip("POST /up/p HTTP/1.1\r\nhost: example.com\r\ncontent-length: 4\r\n\r\nabcd");
    EXPECT_THAT(post, HasSubstr("h2up POST /up/p body=4"));
    EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 1u);
  }
}

TEST(Http2UpstreamTest, FiftyConcurrentHttp2StreamsGoUpstreamMultiplexed) {
  TcpServer upstream(http2Upstream("h2up"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(h2UpstreamConfig("HTTP2", upstream.port()), {"--concurrency", "1"})) << courier.log();
  std::string out =
      runCommand("nghttp -n -s -m 50 http://127.0.0.1:" + std::to_string(courier.listenerPort("http")) + "/up/m 2>&1");
  size_t ok = 0;
  for (size_t at = out.find(" 200 "); at != std::string::npos; at = out.find(" 200 ", at + 1)) ++ok;
  EXPECT_EQ(ok, 50u) << out;
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 1u);
  EXPECT_EQ(courier.stat("cluster.primary.upstream_rq_total"), 50u);
}

TEST(Http2UpstreamTest, AfterAnUpstreamGoAwayRequestsMoveToANewConnection) {
  TcpServer upstream(http2Upstream("h2up", false, /*goaway_after=*/2));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(h2UpstreamConfig("HTTP1", upstream.port()), {"--concurrency", "1"})) << courier.log();
  Raw c(courier.listenerPort("http"));
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(c.roundTrip(get("example.com", "/up/g")), HasSubstr("h2up GET /up/g")) << i;
  }
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 3u);
}

TEST(Http2UpstreamTest, TrailersFromAnHttp2UpstreamReachAnHttp1Client) {
  TcpServer upstream(http2Upstream("h2up", /*with_trailers=*/true));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(h2UpstreamConfig("AUTO", upstream.port()), {"--concurrency", "1"})) << courier.log();
  const std::string base = "http://127.0.0.1:" + std::to_string(courier.listenerPort("http"));
  // HTTP/1: chunked, with the trailers after the last chunk.
  std::string h1 = runCommand("curl -s --raw -i -H 'te: trailers' " + base + "/up/t1");
  EXPECT_THAT(h1, HasSubstr("transfer-encoding: chunked"));
  EXPECT_THAT(h1, HasSubstr("h2up GET /up/t1"));
  EXPECT_THAT(h1, HasSubstr("grpc-status: 0"));
  // HTTP/2 end to end.
  H2Client c(courier.listenerPort("http"));
  auto& r = c.get("/up/t2");
  ASSERT_TRUE(c.until([&] { return r.done; }));
  ASSERT_NE(r.trailers, nullptr);
  EXPECT_EQ(r.trailers->getValue("grpc-status"), "0");
}

TEST(Http2UpstreamTest, StreamsBeyondThePeersLimitAllComplete) {
  http::http2::Http2Settings limited;
  limited.max_concurrent_streams = 2;
  // Responses leave in pairs per connection, so progress needs the pool to
  // fill each connection with exactly the peer's two streams.
  TcpServer upstream(http2Upstream("h2up", false, 0, limited, /*batch=*/2));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(h2UpstreamConfig("HTTP2", upstream.port()), {"--concurrency", "1"})) << courier.log();
  std::string out =
      runCommand("nghttp -n -s -m 6 http://127.0.0.1:" + std::to_string(courier.listenerPort("http")) + "/up/lim 2>&1");
  size_t ok = 0;
  for (size_t at = out.find(" 200 "); at != std::string::npos; at = out.find(" 200 ", at + 1)) ++ok;
  EXPECT_EQ(ok, 6u) << out;
}

TEST(Http2UpstreamTest, AFullConnectionMakesThePoolOpenAnotherOne) {
  http::http2::Http2Settings one;
  one.max_concurrent_streams = 1;
  auto hold = std::make_shared<Hold>();
  TcpServer upstream(http2Upstream("h2up", false, 0, one, 0, hold));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(h2UpstreamConfig("HTTP2", upstream.port()), {"--concurrency", "1"})) << courier.log();
  constexpr int kRequests = 5;
  H2Client c(courier.listenerPort("http"));
  std::vector<H2Client::Response*> rs;
  for (int i = 0; i < kRequests; ++i) rs.push_back(&c.get("/up/one/" + std::to_string(i)));
  // Five responses held upstream at once, one stream per connection: only
  // possible on five connections.
  ASSERT_TRUE(c.until([&] { return hold->held == kRequests; })) << hold->held;
  EXPECT_EQ(upstream.acceptedCount(), kRequests);
  hold->release = true;
  ASSERT_TRUE(c.until([&] {
    for (auto* r : rs) {
      if (!r->done) return false;
    }
    return true;
  }));
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(rs[i]->status, 200);
    EXPECT_THAT(rs[i]->body, HasSubstr("GET /up/one/" + std::to_string(i)));
  }
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), static_cast<uint64_t>(kRequests));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_http2_total"), static_cast<uint64_t>(kRequests));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_http1_total"), 0u);
}

TEST(Http2UpstreamTest, BeyondMaxConnectionsRequestsWaitForAFreeStream) {
  http::http2::Http2Settings one;
  one.max_concurrent_streams = 1;
  auto hold = std::make_shared<Hold>();
  TcpServer upstream(http2Upstream("h2up", false, 0, one, 0, hold));
  std::string cfg = h2UpstreamConfig("HTTP2", upstream.port());
  const std::string anchor = "  - name: primary\n    connect_timeout: 1s\n";
  cfg.replace(cfg.find(anchor) + anchor.size(), 0,
              "    circuit_breakers: {thresholds: [{max_connections: 2}]}\n");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg, {"--concurrency", "1"})) << courier.log();
  H2Client c(courier.listenerPort("http"));
  std::vector<H2Client::Response*> rs;
  for (int i = 0; i < 4; ++i) rs.push_back(&c.get("/up/cb/" + std::to_string(i)));
  ASSERT_TRUE(c.until([&] { return hold->held == 2; }));
  EXPECT_TRUE(waitFor([&] { return courier.stat("cluster.primary.upstream_cx_overflow").value_or(0) >= 1; }));
  EXPECT_EQ(upstream.acceptedCount(), 2);
  hold->release = true;
  ASSERT_TRUE(c.until([&] {
    for (auto* r : rs) {
      if (!r->done) return false;
    }
    return true;
  }));
  for (auto* r : rs) EXPECT_EQ(r->status, 200);
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 2u);
}

TEST(Http2UpstreamTest, AnUpstreamStreamResetFailsOnlyThatRequest) {
  TcpServer upstream(http2Upstream("h2up"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(h2UpstreamConfig("HTTP2", upstream.port()), {"--concurrency", "1"})) << courier.log();
  H2Client c(courier.listenerPort("http"));
  auto& before = c.get("/up/before");
  ASSERT_TRUE(c.until([&] { return before.done; }));
  auto& doomed = c.get("/up/reset");
  auto& sibling = c.get("/up/sibling");
  ASSERT_TRUE(c.until([&] { return doomed.done && sibling.done; }));
  EXPECT_EQ(doomed.status, 503);
  EXPECT_EQ(sibling.status, 200);
  EXPECT_THAT(sibling.body, HasSubstr("h2up GET /up/sibling"));
  // The upstream connection carried on.
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 1u);
}

TEST(Http2UpstreamTest, ARefusedStreamIsSentAgainTransparently) {
  TcpServer upstream(http2Upstream("h2up"));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(h2UpstreamConfig("HTTP1", upstream.port()), {"--concurrency", "1"})) << courier.log();
  Raw c(courier.listenerPort("http"));
  // A POST: not idempotent, yet safe to resend because it was refused.
  std::string r = c.roundTrip("POST /up/refuse HTTP/1.1\r\nhost: example.com\r\ncontent-length: 0\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r, HasSubstr("h2up POST /up/refuse"));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_rq_total"), 2u);
}

TEST(Http2UpstreamTest, MaxRequestsPerConnectionRetiresHttp2Connections) {
  TcpServer upstream(http2Upstream("h2up"));
  std::string cfg = h2UpstreamConfig("HTTP1", upstream.port());
  cfg.replace(cfg.find("        explicit_http_config:"), 0, "        common_http_protocol_options: {max_requests_per_connection: 2}\n");
  CourierProcess courier;
  ASSERT_TRUE(courier.start(cfg, {"--concurrency", "1"})) << courier.log();
  Raw c(courier.listenerPort("http"));
  for (int i = 0; i < 5; ++i) EXPECT_THAT(c.roundTrip(get("example.com", "/up/r")), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_total"), 3u);
  EXPECT_EQ(courier.stat("cluster.primary.upstream_cx_max_requests"), 2u);
}

TEST(Http2UpstreamTest, BadUpstreamHttp2OptionNamesTheField) {
  std::string cfg = h2UpstreamConfig("HTTP1", 9);
  cfg.replace(cfg.find("http2_protocol_options: {}"), 26, "http2_protocol_options: {max_concurrent_streams: 0}");
  CourierProcess courier;
  EXPECT_FALSE(courier.start(cfg));
  EXPECT_THAT(courier.log(), HasSubstr("explicit_http_config.http2_protocol_options.max_concurrent_streams"));
}

}  // namespace
}  // namespace courier::test
