// HTTP/2 conformance of the real courier binary over raw sockets: a client
// that writes hand-built frames (bad ones, floods, window abuse) and reads
// what courier answers, checked against RFC 9113 (GOAWAY or RST_STREAM with
// the right error code, or a close where the RFC leaves no frame to send).
// After every bad connection a well-behaved client must still be served:
// courier never crashes and other traffic is unaffected.
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/common/http/http2/frame_util.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using http::http2::test::frame;
using http::http2::test::getRequest;
using http::http2::test::HeaderList;
using http::http2::test::HpackEncoder;
using http::http2::test::kMagic;
using http::http2::test::ParsedFrame;
using http::http2::test::parseFrames;
using http::http2::test::readU32;
using http::http2::test::setting;
using http::http2::test::u32;
using ::testing::HasSubstr;

std::string config(const std::string& codec_type, uint16_t upstream) {
  return hcmListener("          codec_type: " + codec_type + "\n") + R"(          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: "/direct"}
                direct_response: {status: 200, body: {inline_string: "hello"}}
              - match: {prefix: "/"}
                route: {cluster: primary}
          http_filters:
          # Holds a request until its body ended, so a stream opened without
          # END_STREAM stays open with no upstream behind it.
          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: 65536
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + staticCluster("primary", upstream);
}

// A client that speaks HTTP/2 only through the frames the test writes.
class RawH2 {
 public:
  explicit RawH2(uint16_t port) : socket_(port) {}

  bool send(const std::string& bytes) { return socket_.write(bytes); }
  // Magic, an empty SETTINGS and the ACK of the server's SETTINGS.
  bool preface() {
    return send(std::string(kMagic) + frame(NGHTTP2_SETTINGS, 0, 0) + frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0));
  }
  std::string headers(uint32_t stream_id, const HeaderList& h, bool end_stream) {
    return frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (end_stream ? NGHTTP2_FLAG_END_STREAM : 0), stream_id,
                 hpack_.block(h));
  }

  // Reads frames until pred(frame) holds for one of them, the peer closes, or
  // the timeout; returns the matching frame.
  template <class Pred>
  std::optional<ParsedFrame> readUntil(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t consumed = 0;
      std::vector<ParsedFrame> frames = parseFrames(pending_, &consumed);
      pending_.erase(0, consumed);
      for (ParsedFrame& f : frames) {
        received_.push_back(f);
        if (pred(f)) return f;
      }
      if (closed_ || std::chrono::steady_clock::now() > deadline) return std::nullopt;
      pollfd p{socket_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::read(socket_.fd(), buf, sizeof(buf));
      if (n <= 0) {
        closed_ = true;
        continue;
      }
      pending_.append(buf, static_cast<size_t>(n));
    }
  }
  // The GOAWAY courier sent (its error code), if any, before it closed.
  std::optional<uint32_t> goAwayCode() {
    auto f = readUntil([](const ParsedFrame& f) { return f.type == NGHTTP2_GOAWAY; });
    if (!f || f->payload.size() < 8) return std::nullopt;
    return readU32(f->payload, 4);
  }
  std::optional<uint32_t> rstCode(uint32_t stream_id) {
    auto f = readUntil(
        [&](const ParsedFrame& f) { return f.type == NGHTTP2_RST_STREAM && f.stream_id == stream_id; });
    if (!f || f->payload.size() < 4) return std::nullopt;
    return readU32(f->payload, 0);
  }
  // A stream error's code: RST_STREAM on stream_id, or GOAWAY, since RFC 9113
  // 5.4 lets an endpoint treat any stream error as a connection error.
  std::optional<uint32_t> streamErrorCode(uint32_t stream_id) {
    auto f = readUntil([&](const ParsedFrame& f) {
      return (f.type == NGHTTP2_RST_STREAM && f.stream_id == stream_id) || f.type == NGHTTP2_GOAWAY;
    });
    if (!f) return std::nullopt;
    if (f->type == NGHTTP2_GOAWAY) return f->payload.size() < 8 ? std::nullopt : std::optional(readU32(f->payload, 4));
    return f->payload.size() < 4 ? std::nullopt : std::optional(readU32(f->payload, 0));
  }
  // True once courier closed the connection (reads to EOF, bounded).
  bool waitForClose(std::chrono::milliseconds timeout = 5000ms) {
    readUntil([](const ParsedFrame&) { return false; }, timeout);
    return closed_;
  }
  // The body of stream_id's response, once its END_STREAM arrived.
  std::optional<std::string> body(uint32_t stream_id) {
    std::string body;
    auto end = readUntil([&](const ParsedFrame& f) {
      if (f.stream_id != stream_id) return false;
      if (f.type == NGHTTP2_DATA) body += f.payload;
      return (f.type == NGHTTP2_DATA || f.type == NGHTTP2_HEADERS) && (f.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    });
    if (!end) return std::nullopt;
    return body;
  }
  bool closed() const { return closed_; }

 private:
  TcpClient socket_;
  HpackEncoder hpack_;
  std::string pending_;
  std::vector<ParsedFrame> received_;
  bool closed_ = false;
};

class Http2ConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(courier_.start(config(GetParam(), upstream_.port()), {"--concurrency", "1"})) << courier_.log();
    port_ = courier_.listenerPort("http");
    ASSERT_NE(port_, 0);
  }

  // A good client on a fresh connection is still served, by our raw client
  // and by curl, and the process is alive.
  void expectStillServing() {
    ASSERT_TRUE(courier_.running());
    RawH2 good(port_);
    ASSERT_TRUE(good.preface());
    ASSERT_TRUE(good.send(good.headers(1, getRequest("/direct"), true)));
    EXPECT_EQ(good.body(1), std::optional<std::string>("hello"));
    std::string out = runCommand("curl -s --max-time 5 --http2-prior-knowledge http://127.0.0.1:" + std::to_string(port_) +
                          "/up/after");
    EXPECT_THAT(out, HasSubstr("up GET /up/after"));
  }

  // A stream opened and waiting (buffer filter) for its body.
  std::string openStream(RawH2& c, uint32_t id) {
    return c.headers(id, {{":method", "POST"}, {":path", "/direct"}, {":scheme", "http"}, {":authority", "x"}},
                     false);
  }

  std::optional<uint64_t> stat(const std::string& name) { return courier_.stat(name); }

  TcpServer upstream_{namedUpstream("up")};
  CourierProcess courier_;
  uint16_t port_ = 0;
};

INSTANTIATE_TEST_SUITE_P(CodecType, Http2ConformanceTest, ::testing::Values("HTTP2", "AUTO"));

TEST_P(Http2ConformanceTest, AGoodRequestIsServed) { expectStillServing(); }

TEST_P(Http2ConformanceTest, ABadPrefaceClosesTheConnection) {
  RawH2 c(port_);
  // Starts like the HTTP/2 magic, then is not.
  ASSERT_TRUE(c.send("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(NGHTTP2_SETTINGS, 0, 0)));
  EXPECT_TRUE(c.waitForClose());
  expectStillServing();
}

TEST_P(Http2ConformanceTest, DataOnStreamZeroIsAConnectionProtocolError) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  ASSERT_TRUE(c.send(frame(NGHTTP2_DATA, 0, 0, "abc")));
  EXPECT_EQ(c.goAwayCode(), NGHTTP2_PROTOCOL_ERROR);
  EXPECT_TRUE(c.waitForClose());
  EXPECT_TRUE(waitFor([&] { return stat("http.ingress.downstream_cx_protocol_error").value_or(0) >= 1; }));
  expectStillServing();
}

TEST_P(Http2ConformanceTest, HeadersOnAnEvenStreamIdIsAConnectionProtocolError) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  ASSERT_TRUE(c.send(c.headers(2, getRequest("/direct"), true)));
  EXPECT_EQ(c.goAwayCode(), NGHTTP2_PROTOCOL_ERROR);
  EXPECT_TRUE(c.waitForClose());
  expectStillServing();
}

TEST_P(Http2ConformanceTest, MalformedRequestHeadersResetOnlyTheirStream) {
  const std::vector<std::pair<std::string, HeaderList>> bad = {
      {"uppercase name", {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}, {"X-Up", "1"}}},
      {"connection-specific header",
       {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}, {"connection", "close"}}},
      {"transfer-encoding",
       {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}, {"transfer-encoding", "chunked"}}},
      {"te other than trailers",
       {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}, {"te", "gzip"}}},
      {"missing :method", {{":path", "/"}, {":scheme", "http"}, {":authority", "x"}}},
      {"missing :path", {{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}}},
      {"pseudo header after a regular one",
       {{":method", "GET"}, {":scheme", "http"}, {"x-a", "1"}, {":path", "/"}, {":authority", "x"}}},
      {"unknown pseudo header",
       {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}, {":bogus", "1"}}},
      {"space in name", {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}, {"x a", "1"}}},
  };
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  uint32_t id = 1;
  for (const auto& [what, headers] : bad) {
    ASSERT_TRUE(c.send(c.headers(id, headers, true))) << what;
    EXPECT_EQ(c.rstCode(id), NGHTTP2_PROTOCOL_ERROR) << what;
    id += 2;
  }
  // RFC 9113 8.1.1: malformed is a stream error; the connection carries on.
  ASSERT_TRUE(c.send(c.headers(id, getRequest("/direct"), true)));
  EXPECT_EQ(c.body(id), std::optional<std::string>("hello"));
  EXPECT_FALSE(c.closed());
  expectStillServing();
}

TEST_P(Http2ConformanceTest, AZeroWindowUpdateIsAProtocolError) {
  {
    // On a stream: a stream error (nghttp2 makes it a connection error).
    RawH2 c(port_);
    ASSERT_TRUE(c.preface());
    ASSERT_TRUE(c.send(openStream(c, 1) + frame(NGHTTP2_WINDOW_UPDATE, 0, 1, u32(0))));
    EXPECT_EQ(c.streamErrorCode(1), NGHTTP2_PROTOCOL_ERROR);
  }
  {
    // On the connection: a connection error.
    RawH2 c(port_);
    ASSERT_TRUE(c.preface());
    ASSERT_TRUE(c.send(frame(NGHTTP2_WINDOW_UPDATE, 0, 0, u32(0))));
    EXPECT_EQ(c.goAwayCode(), NGHTTP2_PROTOCOL_ERROR);
    EXPECT_TRUE(c.waitForClose());
  }
  expectStillServing();
}

TEST_P(Http2ConformanceTest, AWindowAbove2To31Minus1IsAFlowControlError) {
  {
    RawH2 c(port_);
    ASSERT_TRUE(c.preface());
    ASSERT_TRUE(c.send(frame(NGHTTP2_WINDOW_UPDATE, 0, 0, u32(0x7fffffff))));
    EXPECT_EQ(c.goAwayCode(), NGHTTP2_FLOW_CONTROL_ERROR);
    EXPECT_TRUE(c.waitForClose());
  }
  {
    RawH2 c(port_);
    ASSERT_TRUE(c.preface());
    ASSERT_TRUE(c.send(openStream(c, 1) + frame(NGHTTP2_WINDOW_UPDATE, 0, 1, u32(0x7fffffff))));
    EXPECT_EQ(c.streamErrorCode(1), NGHTTP2_FLOW_CONTROL_ERROR);
  }
  expectStillServing();
}

TEST_P(Http2ConformanceTest, SettingsWithBadValuesAreConnectionErrors) {
  const struct {
    const char* what;
    uint16_t id;
    uint32_t value;
    uint32_t code;
  } cases[] = {
      {"ENABLE_PUSH=2", NGHTTP2_SETTINGS_ENABLE_PUSH, 2, NGHTTP2_PROTOCOL_ERROR},
      {"INITIAL_WINDOW_SIZE=2^31", NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0x80000000u, NGHTTP2_FLOW_CONTROL_ERROR},
      {"MAX_FRAME_SIZE below 2^14", NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16383, NGHTTP2_PROTOCOL_ERROR},
      {"MAX_FRAME_SIZE above 2^24-1", NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1u << 24, NGHTTP2_PROTOCOL_ERROR},
  };
  for (const auto& k : cases) {
    RawH2 c(port_);
    ASSERT_TRUE(c.send(std::string(kMagic) + frame(NGHTTP2_SETTINGS, 0, 0, setting(k.id, k.value))));
    EXPECT_EQ(c.goAwayCode(), k.code) << k.what;
    EXPECT_TRUE(c.waitForClose()) << k.what;
  }
  {
    // A SETTINGS payload that is not a multiple of 6 octets.
    RawH2 c(port_);
    ASSERT_TRUE(c.send(std::string(kMagic) + frame(NGHTTP2_SETTINGS, 0, 0, "abcde")));
    EXPECT_EQ(c.goAwayCode(), NGHTTP2_FRAME_SIZE_ERROR);
  }
  expectStillServing();
}

TEST_P(Http2ConformanceTest, AFrameLargerThanMaxFrameSizeIsAFrameSizeError) {
  {
    RawH2 c(port_);
    ASSERT_TRUE(c.preface());
    // We never raised SETTINGS_MAX_FRAME_SIZE above its 16384 default.
    ASSERT_TRUE(c.send(openStream(c, 1) + frame(NGHTTP2_DATA, 0, 1, std::string(16385, 'x'))));
    EXPECT_EQ(c.goAwayCode(), NGHTTP2_FRAME_SIZE_ERROR);
    EXPECT_TRUE(c.waitForClose());
  }
  {
    // A PING is exactly 8 octets.
    RawH2 c(port_);
    ASSERT_TRUE(c.preface());
    ASSERT_TRUE(c.send(frame(NGHTTP2_PING, 0, 0, "123456789")));
    EXPECT_EQ(c.goAwayCode(), NGHTTP2_FRAME_SIZE_ERROR);
    EXPECT_TRUE(c.waitForClose());
  }
  expectStillServing();
}

TEST_P(Http2ConformanceTest, APingFloodIsCutByFloodProtection) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  // Far more PINGs than max_outbound_control_frames (1000) in a few reads,
  // and never reading the ACKs.
  std::string flood;
  for (int i = 0; i < 20000; ++i) flood += frame(NGHTTP2_PING, 0, 0, "12345678");
  c.send(flood);  // may fail part way: courier closes
  EXPECT_TRUE(c.waitForClose(10000ms));
  EXPECT_TRUE(waitFor([&] { return stat("http2.outbound_control_flood").value_or(0) >= 1; }));
  expectStillServing();
}

TEST_P(Http2ConformanceTest, ASettingsFloodIsCutByFloodProtection) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  std::string flood;
  for (int i = 0; i < 20000; ++i) flood += frame(NGHTTP2_SETTINGS, 0, 0);
  c.send(flood);
  EXPECT_TRUE(c.waitForClose(10000ms));
  EXPECT_TRUE(waitFor([&] { return stat("http2.outbound_control_flood").value_or(0) >= 1; }));
  expectStillServing();
}

TEST_P(Http2ConformanceTest, AnEmptyDataFloodIsCutByFloodProtection) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  std::string flood = openStream(c, 1);
  for (int i = 0; i < 100; ++i) flood += frame(NGHTTP2_DATA, 0, 1);
  c.send(flood);
  EXPECT_TRUE(c.waitForClose());
  EXPECT_TRUE(waitFor([&] { return stat("http2.inbound_empty_frames_flood").value_or(0) >= 1; }));
  expectStillServing();
}

TEST_P(Http2ConformanceTest, ARapidResetFloodClosesTheConnection) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  // Streams opened and cancelled at once (CVE-2023-44487), past the 500
  // streams after which premature resets are judged.
  std::string flood;
  for (uint32_t i = 0; i < 700; ++i) {
    const uint32_t id = 1 + 2 * i;
    flood += openStream(c, id) + frame(NGHTTP2_RST_STREAM, 0, id, u32(NGHTTP2_CANCEL));
  }
  c.send(flood);
  EXPECT_TRUE(c.waitForClose(10000ms));
  EXPECT_TRUE(waitFor([&] { return stat("http.ingress.downstream_cx_protocol_error").value_or(0) >= 1; }));
  expectStillServing();
}

TEST_P(Http2ConformanceTest, HpackGarbageIsACompressionError) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  // An indexed header field pointing far past both tables.
  ASSERT_TRUE(c.send(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
                           std::string("\xff\xff\xff\xff\x0f", 5))));
  EXPECT_EQ(c.goAwayCode(), NGHTTP2_COMPRESSION_ERROR);
  EXPECT_TRUE(c.waitForClose());
  expectStillServing();
}

TEST_P(Http2ConformanceTest, ContinuationWithoutHeadersIsAProtocolError) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  HpackEncoder hpack;
  ASSERT_TRUE(c.send(frame(NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, hpack.block(getRequest("/direct")))));
  EXPECT_EQ(c.goAwayCode(), NGHTTP2_PROTOCOL_ERROR);
  EXPECT_TRUE(c.waitForClose());
  expectStillServing();
}

TEST_P(Http2ConformanceTest, AFrameOtherThanContinuationInsideAHeaderBlockIsAProtocolError) {
  RawH2 c(port_);
  ASSERT_TRUE(c.preface());
  HpackEncoder hpack;
  // HEADERS without END_HEADERS, then a PING where its CONTINUATION belongs.
  ASSERT_TRUE(c.send(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, hpack.block(getRequest("/direct"))) +
                     frame(NGHTTP2_PING, 0, 0, "12345678")));
  EXPECT_EQ(c.goAwayCode(), NGHTTP2_PROTOCOL_ERROR);
  EXPECT_TRUE(c.waitForClose());
  expectStillServing();
}

TEST_P(Http2ConformanceTest, APeerThatVanishesMidStreamLeavesNoTrace) {
  {
    RawH2 c(port_);
    ASSERT_TRUE(c.preface());
    // Half a frame, then gone.
    ASSERT_TRUE(c.send(openStream(c, 1) + frame(NGHTTP2_DATA, 0, 1, "abcd", 100)));
  }
  EXPECT_TRUE(courier_.waitForStat("http.ingress.downstream_cx_active", 0));
  EXPECT_TRUE(courier_.waitForStat("http.ingress.downstream_rq_active", 0));
  expectStillServing();
}

}  // namespace
}  // namespace courier::test
