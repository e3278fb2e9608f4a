// Hand-built frames against the HTTP/2 ServerConnection: protocol violations
// and floods a real client would never send.
#include <nghttp2/nghttp2.h>

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/common/http/http2/codec_test_util.h"
#include "test/common/http/http2/frame_util.h"

namespace courier::http::http2::test {
namespace {

// A raw client: its own HPACK encoder (state carries across HEADERS frames).
class RawClient {
 public:
  explicit RawClient(const Http2Settings& settings = {}) : server_(callbacks_, output_, settings) {}

  std::string headerBlock(const HeaderList& headers) { return hpack_.block(headers); }

  std::string headers(uint32_t stream_id, const std::vector<std::pair<std::string, std::string>>& h,
                      bool end_stream) {
    return frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (end_stream ? NGHTTP2_FLAG_END_STREAM : 0),
                 stream_id, headerBlock(h));
  }

  static std::vector<std::pair<std::string, std::string>> get(std::string path = "/") {
    return {{":method", "GET"}, {":path", path}, {":scheme", "http"}, {":authority", "x"}};
  }

  static std::string preface() {
    return std::string(kMagic) + frame(NGHTTP2_SETTINGS, 0, 0) + frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
  }

  DispatchResult send(std::string_view bytes) {
    buffer::Buffer in;
    in.add(bytes);
    return server_.dispatch(in);
  }

  // Everything the server wrote since the last call, as frames.
  std::vector<ParsedFrame> read() {
    std::string s = output_.toString();
    output_.drain(output_.length());
    if (!skipped_settings_) skipped_settings_ = true;
    return parseFrames(s);
  }

  std::optional<ParsedFrame> findRst(uint32_t stream_id) {
    for (ParsedFrame& f : read()) {
      if (f.type == NGHTTP2_RST_STREAM && f.stream_id == stream_id) return f;
    }
    return std::nullopt;
  }

  RecordingServer callbacks_;
  buffer::Buffer output_;
  ServerConnection server_;
  HpackEncoder hpack_;
  bool skipped_settings_ = false;
};

TEST(Http2FrameTest, ValidRequestOpensStream) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface() + c.headers(1, RawClient::get(), true)), std::nullopt);
  ASSERT_EQ(c.callbacks_.streams_.size(), 1u);
  EXPECT_EQ(c.callbacks_.streams_[0]->decoder.headers_->path(), "/");
}

TEST(Http2FrameTest, BadPrefaceIsCodecError) {
  RawClient c;
  DispatchResult r = c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kCodecError);
  // Sticky.
  EXPECT_TRUE(c.send(RawClient::preface()).has_value());
}

TEST(Http2FrameTest, PingFloodWithoutReadingIsCodecError) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  std::string pings;
  for (int i = 0; i < 1100; ++i) pings += frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  DispatchResult r = c.send(pings);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kOutboundControlFlood);
  EXPECT_EQ(c.server_.stats().outbound_control_flood, 1u);
}

TEST(Http2FrameTest, PingFloodAcrossReadsIsCodecError) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  // A few PINGs per read: each batch of ACKs is written but never drained.
  std::string pings;
  for (int i = 0; i < 10; ++i) pings += frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  DispatchResult r;
  int reads = 0;
  for (; reads < 200 && !r; ++reads) r = c.send(pings);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kOutboundControlFlood);
  EXPECT_LE(reads * 10, 1010);
}

TEST(Http2FrameTest, PingsThatAreReadAreFine) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  std::string pings;
  for (int i = 0; i < 10; ++i) pings += frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(c.send(pings), std::nullopt) << i;
    c.read();  // the socket took the ACKs
  }
}

TEST(Http2FrameTest, SettingsFloodIsCodecError) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  std::string settings;
  for (int i = 0; i < 1100; ++i) settings += frame(NGHTTP2_SETTINGS, 0, 0);
  DispatchResult r = c.send(settings);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kOutboundControlFlood);
}

TEST(Http2FrameTest, EmptyDataFloodIsCodecError) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface() +
                   c.headers(1, {{":method", "POST"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}},
                             false)),
            std::nullopt);
  // One empty DATA frame is tolerated (the default limit is 1)...
  ASSERT_EQ(c.send(frame(NGHTTP2_DATA, 0, 1)), std::nullopt);
  // ...two in a row are not.
  DispatchResult r = c.send(frame(NGHTTP2_DATA, 0, 1));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kInboundEmptyFramesFlood);
}

TEST(Http2FrameTest, EmptyDataBetweenNonEmptyIsFine) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface() +
                   c.headers(1, {{":method", "POST"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}},
                             false)),
            std::nullopt);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.send(frame(NGHTTP2_DATA, 0, 1) + frame(NGHTTP2_DATA, 0, 1, "abc")), std::nullopt);
  }
  EXPECT_EQ(c.callbacks_.streams_[0]->decoder.body_.size(), 60u);
}

TEST(Http2FrameTest, PriorityFloodIsCodecError) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  std::string prio;
  // Dependency on stream 0, weight 16; on idle streams (no stream opened).
  for (uint32_t i = 0; i < 150; ++i) prio += frame(NGHTTP2_PRIORITY, 0, 2 * i + 1, u32(0) + "\x0f");
  DispatchResult r = c.send(prio);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kInboundPriorityFramesFlood);
  // The peer is told to calm down.
  bool goaway = false;
  for (ParsedFrame& f : c.read()) {
    if (f.type == NGHTTP2_GOAWAY) goaway = readU32(f.payload, 4) == NGHTTP2_ENHANCE_YOUR_CALM;
  }
  EXPECT_TRUE(goaway);
}

TEST(Http2FrameTest, WindowUpdateFloodIsCodecError) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  std::string wu;
  for (int i = 0; i < 50; ++i) wu += frame(NGHTTP2_WINDOW_UPDATE, 0, 0, u32(1));
  DispatchResult r = c.send(wu);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kInboundWindowUpdateFramesFlood);
}

TEST(Http2FrameTest, RapidResetFloodIsCodecError) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  DispatchResult r;
  uint32_t id = 1;
  for (int i = 0; i < 1000 && !r; ++i, id += 2) {
    r = c.send(c.headers(id, RawClient::get(), true) +
               frame(NGHTTP2_RST_STREAM, 0, id, u32(NGHTTP2_CANCEL)));
    c.read();
  }
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kPrematureResets);
  // Caught at the configured threshold, well before nghttp2's own limit.
  EXPECT_LE(c.callbacks_.streams_.size(), 501u);
}

TEST(Http2FrameTest, ResetsOfOlderStreamsAreNotAFlood) {
  Http2Settings settings;
  settings.premature_reset_min_stream_lifetime_seconds = 0;  // every stream is "old"
  RawClient c(settings);
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  uint32_t id = 1;
  for (int i = 0; i < 700; ++i, id += 2) {
    ASSERT_EQ(c.send(c.headers(id, RawClient::get(), true) +
                     frame(NGHTTP2_RST_STREAM, 0, id, u32(NGHTTP2_CANCEL))),
              std::nullopt)
        << i;
    c.read();
  }
}

TEST(Http2FrameTest, ResetsAfterResponsesAreNotAFlood) {
  RawClient c;
  c.callbacks_.on_new_stream = [](ServerStream& s) {
    s.encoder->encodeHeaders(ResponseHeaderMap{{":status", "204"}}, true);
  };
  ASSERT_EQ(c.send(RawClient::preface()), std::nullopt);
  uint32_t id = 1;
  for (int i = 0; i < 700; ++i, id += 2) {
    // Answered before the RST arrives (a client cancelling completed work).
    ASSERT_EQ(c.send(c.headers(id, RawClient::get(), false)), std::nullopt) << i;
    ASSERT_EQ(c.send(frame(NGHTTP2_RST_STREAM, 0, id, u32(NGHTTP2_CANCEL))), std::nullopt) << i;
    c.read();
  }
}

TEST(Http2FrameTest, UppercaseHeaderNameResetsStream) {
  RawClient c;
  auto h = RawClient::get();
  h.push_back({"X-Upper", "1"});
  ASSERT_EQ(c.send(RawClient::preface() + c.headers(1, h, true)), std::nullopt);
  std::optional<ParsedFrame> rst = c.findRst(1);
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(readU32(rst->payload, 0), static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_TRUE(c.callbacks_.streams_.empty());
  // The connection lives on.
  ASSERT_EQ(c.send(c.headers(3, RawClient::get(), true)), std::nullopt);
  EXPECT_EQ(c.callbacks_.streams_.size(), 1u);
}

TEST(Http2FrameTest, MissingPathResetsStream) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface() +
                   c.headers(1, {{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}}, true)),
            std::nullopt);
  std::optional<ParsedFrame> rst = c.findRst(1);
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(readU32(rst->payload, 0), static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_TRUE(c.callbacks_.streams_.empty());
}

TEST(Http2FrameTest, MissingMethodResetsStream) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface() +
                   c.headers(1, {{":path", "/"}, {":scheme", "http"}, {":authority", "x"}}, true)),
            std::nullopt);
  ASSERT_TRUE(c.findRst(1).has_value());
  EXPECT_TRUE(c.callbacks_.streams_.empty());
}

TEST(Http2FrameTest, ConnectionHeaderResetsStream) {
  RawClient c;
  auto h = RawClient::get();
  h.push_back({"connection", "keep-alive"});
  ASSERT_EQ(c.send(RawClient::preface() + c.headers(1, h, true)), std::nullopt);
  ASSERT_TRUE(c.findRst(1).has_value());
  EXPECT_TRUE(c.callbacks_.streams_.empty());
}

TEST(Http2FrameTest, TeOtherThanTrailersResetsStream) {
  RawClient c;
  auto h = RawClient::get();
  h.push_back({"te", "gzip"});
  ASSERT_EQ(c.send(RawClient::preface() + c.headers(1, h, true)), std::nullopt);
  ASSERT_TRUE(c.findRst(1).has_value());
  EXPECT_TRUE(c.callbacks_.streams_.empty());
}

TEST(Http2FrameTest, ContentLengthMismatchResetsStream) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface() +
                   c.headers(1,
                             {{":method", "POST"}, {":path", "/"}, {":scheme", "http"},
                              {":authority", "x"}, {"content-length", "5"}},
                             false)),
            std::nullopt);
  ASSERT_EQ(c.callbacks_.streams_.size(), 1u);
  ASSERT_EQ(c.send(frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, "abc")), std::nullopt);
  std::optional<ParsedFrame> rst = c.findRst(1);
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(readU32(rst->payload, 0), static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_EQ(c.callbacks_.streams_[0]->callbacks.reason_, StreamResetReason::ProtocolError);
}

TEST(Http2FrameTest, ConnectRefusedWhenNotAllowed) {
  RawClient c;
  ASSERT_EQ(c.send(RawClient::preface() +
                   c.headers(1, {{":method", "CONNECT"}, {":authority", "example.com:443"}}, false)),
            std::nullopt);
  std::optional<ParsedFrame> rst = c.findRst(1);
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(readU32(rst->payload, 0), static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_TRUE(c.callbacks_.streams_.empty());
}

TEST(Http2FrameTest, ConnectAcceptedWhenAllowed) {
  Http2Settings s;
  s.allow_connect = true;
  RawClient c(s);
  ASSERT_EQ(c.send(RawClient::preface() +
                   c.headers(1, {{":method", "CONNECT"}, {":authority", "example.com:443"}}, false)),
            std::nullopt);
  EXPECT_FALSE(c.findRst(1).has_value());
  ASSERT_EQ(c.callbacks_.streams_.size(), 1u);
  EXPECT_EQ(c.callbacks_.streams_[0]->decoder.headers_->method(), "CONNECT");
}

TEST(Http2FrameTest, AdvertisesConfiguredSettings) {
  Http2Settings s;
  s.max_concurrent_streams = 7;
  s.initial_stream_window_size = 100000;
  RawClient c(s);
  std::vector<ParsedFrame> frames = c.read();
  ASSERT_FALSE(frames.empty());
  ASSERT_EQ(frames[0].type, NGHTTP2_SETTINGS);
  bool saw_streams = false;
  bool saw_window = false;
  for (size_t i = 0; i + 6 <= frames[0].payload.size(); i += 6) {
    const uint16_t id = (static_cast<uint8_t>(frames[0].payload[i]) << 8) |
                        static_cast<uint8_t>(frames[0].payload[i + 1]);
    const uint32_t v = readU32(frames[0].payload, i + 2);
    if (id == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) saw_streams = v == 7;
    if (id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) saw_window = v == 100000;
  }
  EXPECT_TRUE(saw_streams);
  EXPECT_TRUE(saw_window);
  // The connection window is opened to its configured size (default 256 MiB).
  ASSERT_GE(frames.size(), 2u);
  EXPECT_EQ(frames[1].type, NGHTTP2_WINDOW_UPDATE);
  EXPECT_EQ(readU32(frames[1].payload, 0), 268435456u - 65535u);
}

TEST(Http2FrameTest, DataOnIdleStreamIsConnectionError) {
  RawClient c;
  DispatchResult r = c.send(RawClient::preface() + frame(NGHTTP2_DATA, 0, 5, "abc"));
  ASSERT_TRUE(r.has_value());
  bool goaway = false;
  for (ParsedFrame& f : c.read()) goaway |= f.type == NGHTTP2_GOAWAY;
  EXPECT_TRUE(goaway);
}

TEST(Http2FrameTest, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    RawClient c;
    std::string bytes = RawClient::preface();
    if (round % 2 == 0) bytes += c.headers(1, RawClient::get(), false);
    const size_t n = rng() % 2000;
    for (size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>(rng()));
    // Feed in random pieces.
    size_t pos = 0;
    while (pos < bytes.size()) {
      const size_t len = 1 + rng() % 300;
      if (c.send(std::string_view(bytes).substr(pos, len))) break;
      pos += len;
    }
  }
}

TEST(Http2FrameTest, RandomFramesNeverCrash) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    RawClient c;
    std::string bytes = RawClient::preface() + c.headers(1, RawClient::get(), false);
    for (int i = 0; i < 30; ++i) {
      std::string payload(rng() % 40, '\0');
      for (char& ch : payload) ch = static_cast<char>(rng());
      bytes += frame(static_cast<uint8_t>(rng() % 11), static_cast<uint8_t>(rng()), rng() % 8, payload);
    }
    c.send(bytes);
    c.server_.onConnectionClosed();
  }
}


// The client side under a hostile server: random frames after a valid
// SETTINGS, with requests (and bodies) in flight.
TEST(Http2FrameTest, RandomServerFramesNeverCrashClient) {
  std::mt19937 rng(99);
  for (int round = 0; round < 300; ++round) {
    buffer::Buffer out;
    ClientConnection client(out);
    std::vector<std::unique_ptr<ClientStream>> streams;
    for (int i = 0; i < 3; ++i) {
      streams.push_back(std::make_unique<ClientStream>());
      ClientStream& cs = *streams.back();
      cs.encoder = &client.newStream(cs.decoder);
      cs.encoder->getStream()->addCallbacks(cs.callbacks);
      cs.encoder->encodeHeaders(
          RequestHeaderMap{{":method", "POST"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}},
          false);
      buffer::Buffer b;
      b.add(std::string(rng() % 100000, 'b'));
      cs.encoder->encodeData(b, true);
    }
    nghttp2_hd_deflater* deflater;
    nghttp2_hd_deflate_new(&deflater, 4096);
    std::string bytes = frame(NGHTTP2_SETTINGS, 0, 0);
    for (int i = 0; i < 30; ++i) {
      const uint32_t id = 1 + 2 * (rng() % 3);
      if (rng() % 3 == 0) {
        std::string status = std::to_string(100 + rng() % 500);
        nghttp2_nv nv{reinterpret_cast<uint8_t*>(const_cast<char*>(":status")),
                      reinterpret_cast<uint8_t*>(status.data()), 7, status.size(), NGHTTP2_NV_FLAG_NONE};
        std::string block(64, '\0');
        const ssize_t n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(block.data()),
                                                block.size(), &nv, 1);
        block.resize(n < 0 ? 0 : n);
        bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (rng() % 2), id, block);
        continue;
      }
      std::string payload(rng() % 40, '\0');
      for (char& ch : payload) ch = static_cast<char>(rng());
      bytes += frame(static_cast<uint8_t>(rng() % 11), static_cast<uint8_t>(rng()), id, payload);
    }
    nghttp2_hd_deflate_del(deflater);
    buffer::Buffer in;
    in.add(bytes);
    client.dispatch(in);
    out.drain(out.length());
    client.onConnectionClosed();
  }
}

// Owners act from inside the codec's callbacks: reset, respond, reset others.
TEST(Http2FrameTest, OwnersMayResetFromInsideCallbacks) {
  CodecPair p;
  int n = 0;
  p.server_callbacks_.on_new_stream = [&](ServerStream& s) {
    if (n++ % 2 == 0) {
      s.encoder->getStream()->resetStream(StreamResetReason::LocalReset);
    } else {
      s.encoder->encodeHeaders(ResponseHeaderMap{{":status", "200"}}, true);
    }
  };
  for (int i = 0; i < 10; ++i) {
    ClientStream& c = p.startRequest(CodecPair::get(), true);
    c.decoder.on_headers = [&p, &c] {
      // A response arriving resets every other stream still open.
      for (auto& other : p.client_streams_) {
        if (other.get() != &c && other->callbacks.resets_ == 0 && !other->decoder.end_stream_) {
          other->encoder->getStream()->resetStream(StreamResetReason::LocalReset);
        }
      }
    };
  }
  p.pump();
  // A stream reset from inside newStream() never sees decodeHeaders().
  for (size_t i = 0; i < p.server_callbacks_.streams_.size(); i += 2) {
    EXPECT_EQ(p.server_callbacks_.streams_[i]->decoder.headers_, nullptr);
  }
  int done = 0;
  int reset = 0;
  for (auto& c : p.client_streams_) {
    EXPECT_LE(c->callbacks.resets_, 1);
    done += c->decoder.end_stream_ ? 1 : 0;
    reset += c->callbacks.resets_;
  }
  EXPECT_EQ(done + reset, 10);
  EXPECT_GE(done, 1);
}


TEST(Http2FrameTest, OversizedHeadersResetStreamOnly) {
  RawClient c;
  auto h = RawClient::get();
  // Over max_headers_kb (60 KiB) in several fields, each under HPACK's own limits.
  for (int i = 0; i < 8; ++i) h.push_back({"x-big-" + std::to_string(i), std::string(9000, 'v')});
  const std::string block = c.headerBlock(h);
  // Split over HEADERS + CONTINUATION frames of 16 KiB (the default max frame size).
  std::string bytes = RawClient::preface();
  size_t pos = 0;
  bool first = true;
  while (pos < block.size()) {
    const size_t len = std::min<size_t>(16384, block.size() - pos);
    const bool last = pos + len == block.size();
    bytes += frame(first ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION,
                   (first ? NGHTTP2_FLAG_END_STREAM : 0) | (last ? NGHTTP2_FLAG_END_HEADERS : 0), 1,
                   block.substr(pos, len));
    pos += len;
    first = false;
  }
  ASSERT_EQ(c.send(bytes), std::nullopt);
  EXPECT_TRUE(c.findRst(1).has_value());
  EXPECT_TRUE(c.callbacks_.streams_.empty());
  EXPECT_EQ(c.server_.stats().header_overflow, 1u);
  ASSERT_EQ(c.send(c.headers(3, RawClient::get(), true)), std::nullopt);
  EXPECT_EQ(c.callbacks_.streams_.size(), 1u);
}

TEST(Http2FrameTest, ConnectionClosedFromInsideCallback) {
  RawClient c;
  c.callbacks_.on_new_stream = [&c](ServerStream&) { c.server_.onConnectionClosed(); };
  // HPACK state: encode the blocks in wire order.
  std::string bytes = RawClient::preface() + c.headers(1, RawClient::get(), false);
  bytes += frame(NGHTTP2_DATA, 0, 1, "abc");
  bytes += c.headers(3, RawClient::get(), true);
  DispatchResult r = c.send(bytes);
  ASSERT_FALSE(r.has_value()) << r->details << ": " << r->message;
  ASSERT_EQ(c.callbacks_.streams_.size(), 1u);
  EXPECT_EQ(c.callbacks_.streams_[0]->callbacks.reason_, StreamResetReason::ConnectionTermination);
  EXPECT_EQ(c.send(frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'))), std::nullopt);
}

}  // namespace
}  // namespace courier::http::http2::test
