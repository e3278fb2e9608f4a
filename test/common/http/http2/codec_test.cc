// Client and server HTTP/2 codecs wired back to back through buffers.
#include <malloc.h>

#include <string>

#include "gtest/gtest.h"
#include "test/common/http/http2/codec_test_util.h"

namespace courier::http::http2::test {
namespace {

void respond(ServerStream& s, std::string_view body, int status = 200) {
  ResponseHeaderMap h{{":status", std::to_string(status)}};
  if (body.empty()) {
    s.encoder->encodeHeaders(h, true);
    return;
  }
  s.encoder->encodeHeaders(h, false);
  buffer::Buffer b;
  b.add(body);
  s.encoder->encodeData(b, true);
}

TEST(Http2CodecTest, GetRoundTrip) {
  CodecPair p;
  RequestHeaderMap req = CodecPair::get("/items?id=1");
  req.add("user-agent", "test");
  ClientStream& c = p.startRequest(req, true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  ServerStream& s = *p.server_callbacks_.streams_[0];
  ASSERT_NE(s.decoder.headers_, nullptr);
  EXPECT_EQ(s.decoder.headers_->method(), "GET");
  EXPECT_EQ(s.decoder.headers_->path(), "/items?id=1");
  EXPECT_EQ(s.decoder.headers_->host(), "example.com");
  EXPECT_EQ(s.decoder.headers_->scheme(), "http");
  EXPECT_EQ(s.decoder.headers_->getValue("user-agent"), "test");
  EXPECT_TRUE(s.decoder.end_stream_);

  respond(s, "hello");
  p.pump();
  ASSERT_NE(c.decoder.headers_, nullptr);
  EXPECT_EQ(c.decoder.headers_->status(), 200);
  EXPECT_EQ(c.decoder.body_, "hello");
  EXPECT_TRUE(c.decoder.end_stream_);
  EXPECT_EQ(c.callbacks.resets_, 0);
  EXPECT_EQ(s.callbacks.resets_, 0);
}

TEST(Http2CodecTest, PostWithBodyAndTrailersRoundTrip) {
  CodecPair p;
  RequestHeaderMap req{{":method", "POST"}, {":path", "/upload"}, {":scheme", "https"},
                       {":authority", "example.com"}, {"content-type", "text/plain"}};
  ClientStream& c = p.startRequest(req, false);
  buffer::Buffer body;
  body.add("part one, ");
  c.encoder->encodeData(body, false);
  body.add("part two");
  c.encoder->encodeData(body, false);
  c.encoder->encodeTrailers(TrailerMap{{"x-checksum", "abc"}});
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  ServerStream& s = *p.server_callbacks_.streams_[0];
  EXPECT_EQ(s.decoder.headers_->method(), "POST");
  EXPECT_EQ(s.decoder.headers_->scheme(), "https");
  EXPECT_EQ(s.decoder.body_, "part one, part two");
  ASSERT_NE(s.decoder.trailers_, nullptr);
  EXPECT_EQ(s.decoder.trailers_->getValue("x-checksum"), "abc");

  ResponseHeaderMap h{{":status", "201"}};
  s.encoder->encodeHeaders(h, false);
  buffer::Buffer rb;
  rb.add("created");
  s.encoder->encodeData(rb, false);
  s.encoder->encodeTrailers(TrailerMap{{"grpc-status", "0"}});
  p.pump();
  EXPECT_EQ(c.decoder.headers_->status(), 201);
  EXPECT_EQ(c.decoder.body_, "created");
  ASSERT_NE(c.decoder.trailers_, nullptr);
  EXPECT_EQ(c.decoder.trailers_->getValue("grpc-status"), "0");
  EXPECT_TRUE(c.decoder.end_stream_);
}

TEST(Http2CodecTest, ConnectionSpecificHeadersAreNotSent) {
  CodecPair p;
  RequestHeaderMap req{{":method", "GET"}, {":path", "/"}, {"host", "h.example"},
                       {"connection", "keep-alive"}, {"keep-alive", "timeout=5"},
                       {"transfer-encoding", "chunked"}, {"upgrade", "websocket"},
                       {"proxy-connection", "x"}, {"te", "gzip"}};
  p.startRequest(req, true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  const HeaderMap& h = *p.server_callbacks_.streams_[0]->decoder.headers_;
  // Host becomes :authority, :scheme defaults to http (an HTTP/1 downstream has none).
  EXPECT_EQ(h.host(), "h.example");
  EXPECT_EQ(h.scheme(), "http");
  for (std::string_view k : {"connection", "keep-alive", "transfer-encoding", "upgrade",
                             "proxy-connection", "te", "host"}) {
    EXPECT_FALSE(h.has(k)) << k;
  }
}

TEST(Http2CodecTest, TeTrailersIsKept) {
  CodecPair p;
  RequestHeaderMap req = CodecPair::get();
  req.add("te", "trailers");
  p.startRequest(req, true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  EXPECT_EQ(p.server_callbacks_.streams_[0]->decoder.headers_->getValue("te"), "trailers");
}

TEST(Http2CodecTest, CookieCrumbsAreJoined) {
  CodecPair p;
  RequestHeaderMap req = CodecPair::get();
  req.add("cookie", "a=1");
  req.add("cookie", "b=2");
  p.startRequest(req, true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  const HeaderMap& h = *p.server_callbacks_.streams_[0]->decoder.headers_;
  EXPECT_EQ(h.getAll("cookie").size(), 1u);
  EXPECT_EQ(h.getValue("cookie"), "a=1; b=2");
}

TEST(Http2CodecTest, HundredConcurrentStreams) {
  CodecPair p;
  p.pump();
  for (int i = 0; i < 100; ++i) {
    ClientStream& c = p.startRequest(CodecPair::get("/" + std::to_string(i)), false);
    buffer::Buffer b;
    b.add("req" + std::to_string(i));
    c.encoder->encodeData(b, true);
  }
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 100u);
  EXPECT_EQ(p.server_.activeStreams(), 100u);
  // Answer in reverse order: streams are independent.
  for (int i = 99; i >= 0; --i) {
    ServerStream& s = *p.server_callbacks_.streams_[i];
    EXPECT_EQ(s.decoder.body_, "req" + std::string(s.decoder.headers_->path().substr(1)));
    respond(s, "resp:" + std::string(s.decoder.headers_->path()));
  }
  p.pump();
  for (int i = 0; i < 100; ++i) {
    ClientStream& c = *p.client_streams_[i];
    EXPECT_EQ(c.decoder.body_, "resp:/" + std::to_string(i));
    EXPECT_TRUE(c.decoder.end_stream_);
  }
  EXPECT_EQ(p.client_.activeStreams(), 0u);
}

TEST(Http2CodecTest, InformationalHeadersReachTheClient) {
  CodecPair p;
  ClientStream& c = p.startRequest(CodecPair::get(), true);
  p.pump();
  ServerStream& s = *p.server_callbacks_.streams_[0];
  s.encoder->encode100ContinueHeaders();
  respond(s, "");
  p.pump();
  ASSERT_EQ(c.decoder.informational_.size(), 1u);
  EXPECT_EQ(c.decoder.informational_[0]->status(), 100);
  EXPECT_EQ(c.decoder.headers_->status(), 200);
  EXPECT_TRUE(c.decoder.end_stream_);
}

// The receiver never consumes: the sender stops once the stream window is
// full and buffers the rest (high watermark); consuming lets it all through.
TEST(Http2CodecTest, LargeBodyFollowsReceiverConsumption) {
  Http2Settings server_settings;
  server_settings.initial_stream_window_size = 65535;
  server_settings.initial_connection_window_size = 1024 * 1024;
  CodecPair p(server_settings);
  p.server_callbacks_.on_new_stream = [](ServerStream& s) { s.encoder->getStream()->readDisable(true); };
  p.pump();

  RequestHeaderMap req{{":method", "POST"}, {":path", "/big"}, {":scheme", "http"},
                       {":authority", "x"}};
  ClientStream& c = p.startRequest(req, false);
  constexpr size_t kBody = 16 * 1024 * 1024;
  std::string chunk(64 * 1024, 'x');
  buffer::Buffer b;
  for (size_t sent = 0; sent < kBody; sent += chunk.size()) b.add(chunk);
  c.encoder->encodeData(b, true);
  EXPECT_EQ(c.callbacks.high_, 1);
  p.pump();

  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  ServerStream& s = *p.server_callbacks_.streams_[0];
  // In flight (received but not acknowledged) never exceeds the window.
  EXPECT_EQ(s.decoder.body_.size(), 65535u);
  EXPECT_EQ(c.encoder->getStream() != nullptr, true);
  auto* cs = static_cast<CodecStream*>(c.encoder);
  EXPECT_EQ(cs->pendingSendBytes(), kBody - 65535);
  EXPECT_EQ(static_cast<CodecStream*>(s.encoder)->unconsumedBytes(), 65535u);
  EXPECT_EQ(c.callbacks.low_, 0);

  // Consume in steps: each step lets at most one more window through.
  s.encoder->getStream()->readDisable(false);
  s.encoder->getStream()->readDisable(true);
  p.pump();
  EXPECT_LE(s.decoder.body_.size(), 2u * 65535);
  EXPECT_GT(s.decoder.body_.size(), 65535u);

  s.encoder->getStream()->readDisable(false);
  p.pump();
  EXPECT_EQ(s.decoder.body_.size(), kBody);
  EXPECT_TRUE(s.decoder.end_stream_);
  EXPECT_EQ(c.callbacks.low_, 1);
  EXPECT_EQ(std::string(s.decoder.body_.data() + kBody - 3, 3), "xxx");
}

TEST(Http2CodecTest, InputOfMoreThanSixteenSlicesIsDispatchedInOneCall) {
  // A socket read of a big gRPC message leaves the input in many slices; the
  // codec used to look at the first 16 only and spin forever past them.
  Http2Settings big_windows;
  big_windows.initial_stream_window_size = 4 * 1024 * 1024;
  big_windows.initial_connection_window_size = 4 * 1024 * 1024;
  CodecPair p(big_windows, big_windows);
  p.pump();
  RequestHeaderMap req{{":method", "POST"}, {":path", "/big"}, {":scheme", "http"}, {":authority", "x"}};
  ClientStream& c = p.startRequest(req, false);
  constexpr size_t kBody = 1024 * 1024;
  buffer::Buffer b;
  b.add(std::string(kBody, 'y'));
  c.encoder->encodeData(b, true);
  // Re-slice the client's output into 4 KiB slices, then dispatch it once.
  std::string wire = p.to_server_.toString();
  p.to_server_.drain(p.to_server_.length());
  buffer::Buffer input;
  for (size_t at = 0; at < wire.size(); at += 4096) {
    buffer::Buffer piece;
    piece.add(wire.substr(at, 4096));
    input.move(piece, piece.length());
  }
  ASSERT_GT(input.sliceCount(), 16u);
  ASSERT_EQ(p.server_.dispatch(input), std::nullopt);
  EXPECT_TRUE(input.empty());
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  EXPECT_EQ(p.server_callbacks_.streams_[0]->decoder.body_.size(), kBody);
  EXPECT_TRUE(p.server_callbacks_.streams_[0]->decoder.end_stream_);
}

TEST(Http2CodecTest, ClientResetReachesServer) {
  CodecPair p;
  ClientStream& c = p.startRequest(CodecPair::get(), false);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  c.encoder->getStream()->resetStream(StreamResetReason::LocalReset);
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::LocalReset);
  p.pump();
  ServerStream& s = *p.server_callbacks_.streams_[0];
  EXPECT_EQ(s.callbacks.resets_, 1);
  EXPECT_EQ(s.callbacks.reason_, StreamResetReason::RemoteReset);
  EXPECT_EQ(c.callbacks.resets_, 1);
  EXPECT_EQ(p.server_.stats().rx_reset, 1u);
  EXPECT_EQ(p.client_.stats().tx_reset, 1u);
  EXPECT_EQ(p.server_.activeStreams(), 0u);
}

TEST(Http2CodecTest, ServerResetReachesClient) {
  CodecPair p;
  ClientStream& c = p.startRequest(CodecPair::get(), false);
  p.pump();
  ServerStream& s = *p.server_callbacks_.streams_[0];
  s.encoder->getStream()->resetStream(StreamResetReason::LocalReset);
  EXPECT_EQ(s.callbacks.reason_, StreamResetReason::LocalReset);
  p.pump();
  EXPECT_EQ(c.callbacks.resets_, 1);
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::RemoteReset);
  EXPECT_EQ(s.callbacks.resets_, 1);
}

TEST(Http2CodecTest, RefusedStreamIsReportedAsRefused) {
  CodecPair p;
  ClientStream& c = p.startRequest(CodecPair::get(), true);
  p.pump();
  p.server_callbacks_.streams_[0]->encoder->getStream()->resetStream(
      StreamResetReason::LocalRefusedStreamReset);
  p.pump();
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::RemoteRefusedStreamReset);
}

TEST(Http2CodecTest, ResetOfOneStreamLeavesOthersAlone) {
  CodecPair p;
  ClientStream& a = p.startRequest(CodecPair::get("/a"), true);
  ClientStream& b = p.startRequest(CodecPair::get("/b"), true);
  p.pump();
  a.encoder->getStream()->resetStream(StreamResetReason::LocalReset);
  respond(*p.server_callbacks_.streams_[1], "b");
  p.pump();
  EXPECT_EQ(b.decoder.body_, "b");
  EXPECT_EQ(b.callbacks.resets_, 0);
}

TEST(Http2CodecTest, GoAwayReportsUnprocessedStreams) {
  CodecPair p;
  ClientStream& first = p.startRequest(CodecPair::get("/1"), true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  // Two more requests are on the wire when the server decides to go away.
  ClientStream& second = p.startRequest(CodecPair::get("/2"), true);
  ClientStream& third = p.startRequest(CodecPair::get("/3"), true);
  p.server_.goAway();
  ASSERT_EQ(p.client_.dispatch(p.to_client_), std::nullopt);
  EXPECT_EQ(p.goaway_.goaways_, 1);
  EXPECT_TRUE(p.client_.goAwayReceived());
  EXPECT_EQ(p.goaway_.last_stream_id_, 1u);
  EXPECT_EQ(p.goaway_.error_code_, 0u);
  ASSERT_EQ(p.goaway_.unprocessed_.size(), 2u);
  EXPECT_EQ(p.goaway_.unprocessed_[0], second.encoder);
  EXPECT_EQ(p.goaway_.unprocessed_[1], third.encoder);
  EXPECT_EQ(second.callbacks.reason_, StreamResetReason::RemoteRefusedStreamReset);
  EXPECT_EQ(third.callbacks.reason_, StreamResetReason::RemoteRefusedStreamReset);
  EXPECT_EQ(first.callbacks.resets_, 0);

  // The processed stream still completes; the others never reach the server.
  p.pump();
  EXPECT_EQ(p.server_callbacks_.streams_.size(), 1u);
  respond(*p.server_callbacks_.streams_[0], "done");
  p.pump();
  EXPECT_EQ(first.decoder.body_, "done");
  // GOAWAY sent and the last stream done: the server may close.
  EXPECT_EQ(p.server_.activeStreams(), 0u);
  EXPECT_TRUE(p.server_.wantsToClose());
}

TEST(Http2CodecTest, ShutdownNoticeThenGoAway) {
  CodecPair p;
  p.startRequest(CodecPair::get("/1"), true);
  p.pump();
  p.server_.shutdownNotice();
  p.pump();
  EXPECT_EQ(p.goaway_.goaways_, 1);
  EXPECT_EQ(p.goaway_.last_stream_id_, 2147483647u);
  EXPECT_FALSE(p.server_.wantsToClose());
  p.server_.goAway();
  p.pump();
  EXPECT_EQ(p.goaway_.goaways_, 2);
  EXPECT_EQ(p.goaway_.last_stream_id_, 1u);
  EXPECT_EQ(p.server_.stats().goaway_sent, 2u);
}

TEST(Http2CodecTest, ClientRespectsMaxConcurrentStreams) {
  Http2Settings server_settings;
  server_settings.max_concurrent_streams = 5;
  CodecPair p(server_settings);
  p.pump();
  EXPECT_EQ(p.client_.maxConcurrentStreams(), 5u);
  for (int i = 0; i < 10; ++i) p.startRequest(CodecPair::get("/" + std::to_string(i)), true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 5u);
  for (auto& s : p.server_callbacks_.streams_) EXPECT_EQ(s->callbacks.resets_, 0);
  for (int i = 0; i < 5; ++i) respond(*p.server_callbacks_.streams_[i], "ok");
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 10u);
  for (int i = 5; i < 10; ++i) respond(*p.server_callbacks_.streams_[i], "ok");
  p.pump();
  for (auto& c : p.client_streams_) {
    EXPECT_EQ(c->decoder.body_, "ok");
    EXPECT_EQ(c->callbacks.resets_, 0);
  }
}

TEST(Http2CodecTest, ConnectionCloseResetsLiveStreams) {
  CodecPair p;
  ClientStream& c = p.startRequest(CodecPair::get(), false);
  p.pump();
  p.client_.onConnectionClosed();
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::ConnectionTermination);
  p.server_.onConnectionClosed();
  EXPECT_EQ(p.server_callbacks_.streams_[0]->callbacks.reason_,
            StreamResetReason::ConnectionTermination);
}

TEST(Http2CodecTest, ResponseHeaderOverflowResetsStream) {
  Http2Settings client_settings;
  client_settings.max_headers_count = 3;
  CodecPair p({}, client_settings);
  ClientStream& c = p.startRequest(CodecPair::get(), true);
  p.pump();
  ResponseHeaderMap h{{":status", "200"}, {"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}};
  p.server_callbacks_.streams_[0]->encoder->encodeHeaders(h, true);
  p.pump();
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::Overflow);
  EXPECT_EQ(c.decoder.headers_, nullptr);
  EXPECT_EQ(p.client_.stats().header_overflow, 1u);
}


// The peer stops reading: frames pile up in the output buffer until the
// connection gives up instead of buffering without bound.
TEST(Http2CodecTest, OutboundFrameFloodFailsConnection) {
  Http2Settings server_settings;
  server_settings.max_outbound_frames = 100;
  CodecPair p(server_settings);
  p.startRequest(CodecPair::get(), true);
  p.pump();
  ServerStream& s = *p.server_callbacks_.streams_[0];
  s.encoder->encodeHeaders(ResponseHeaderMap{{":status", "200"}}, false);
  buffer::Buffer b;
  b.add(std::string(4 * 1024 * 1024, 'y'));  // ~256 DATA frames of 16 KiB
  s.encoder->encodeData(b, true);
  ASSERT_TRUE(p.server_.error().has_value());
  EXPECT_EQ(p.server_.error()->details, codec_details::kOutboundFlood);
  EXPECT_EQ(p.server_.stats().outbound_flood, 1u);
  // Writing stopped at the limit.
  EXPECT_LE(p.to_client_.length(), 102u * (16384 + 9));
  buffer::Buffer more;
  more.add("x");
  EXPECT_TRUE(p.server_.dispatch(more).has_value());
}

TEST(Http2CodecTest, OutboundFramesThatAreDrainedAreFine) {
  Http2Settings server_settings;
  server_settings.max_outbound_frames = 100;
  CodecPair p(server_settings);
  ClientStream& c = p.startRequest(CodecPair::get(), true);
  p.pump();
  ServerStream& s = *p.server_callbacks_.streams_[0];
  s.encoder->encodeHeaders(ResponseHeaderMap{{":status", "200"}}, false);
  for (int i = 0; i < 64; ++i) {
    buffer::Buffer b;
    b.add(std::string(64 * 1024, 'y'));
    s.encoder->encodeData(b, i == 63);
    p.pump();
  }
  EXPECT_FALSE(p.server_.error().has_value());
  EXPECT_EQ(c.decoder.body_.size(), 64u * 64 * 1024);
}

TEST(Http2CodecTest, NothingMovesAfterConnectionClosed) {
  CodecPair p;
  ClientStream& c = p.startRequest(CodecPair::get(), false);
  buffer::Buffer b;
  b.add("abc");
  c.encoder->encodeData(b, false);
  p.client_.onConnectionClosed();
  p.to_server_.drain(p.to_server_.length());
  p.client_.goAway();
  EXPECT_TRUE(p.to_server_.empty());
}


// A stalled stream holds connection window; when it goes away its
// unconsumed bytes are given back so the other streams move again.
TEST(Http2CodecTest, ClosedStreamReturnsItsConnectionWindow) {
  Http2Settings server_settings;
  server_settings.initial_stream_window_size = 65535;
  server_settings.initial_connection_window_size = 65535;
  CodecPair p(server_settings);
  p.server_callbacks_.on_new_stream = [](ServerStream& s) {
    if (s.decoder.headers_ == nullptr) s.encoder->getStream()->readDisable(true);
  };
  p.pump();
  RequestHeaderMap req{{":method", "POST"}, {":path", "/a"}, {":scheme", "http"}, {":authority", "x"}};
  ClientStream& a = p.startRequest(req, false);
  buffer::Buffer b;
  b.add(std::string(100000, 'a'));
  a.encoder->encodeData(b, true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  EXPECT_EQ(p.server_callbacks_.streams_[0]->decoder.body_.size(), 65535u);

  // Stream b cannot send a byte: the connection window is spent on a.
  p.server_callbacks_.on_new_stream = nullptr;
  ClientStream& c = p.startRequest(req, false);
  buffer::Buffer cb;
  cb.add(std::string(1000, 'c'));
  c.encoder->encodeData(cb, true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 2u);
  EXPECT_EQ(p.server_callbacks_.streams_[1]->decoder.body_.size(), 0u);

  p.server_callbacks_.streams_[0]->encoder->getStream()->resetStream(StreamResetReason::LocalReset);
  p.pump();
  EXPECT_EQ(p.server_callbacks_.streams_[1]->decoder.body_.size(), 1000u);
  EXPECT_TRUE(p.server_callbacks_.streams_[1]->decoder.end_stream_);
}

TEST(Http2CodecTest, TrailersWithoutBody) {
  CodecPair p;
  RequestHeaderMap req{{":method", "POST"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}};
  ClientStream& c = p.startRequest(req, false);
  c.encoder->encodeTrailers(TrailerMap{{"x-t", "1"}});
  p.pump();
  ServerStream& s = *p.server_callbacks_.streams_[0];
  EXPECT_EQ(s.decoder.body_, "");
  ASSERT_NE(s.decoder.trailers_, nullptr);
  EXPECT_EQ(s.decoder.trailers_->getValue("x-t"), "1");
  respond(s, "");
  p.pump();
  EXPECT_TRUE(c.decoder.end_stream_);
}

TEST(Http2CodecTest, GarbageFromServerIsClientCodecError) {
  CodecPair p;
  ClientStream& c = p.startRequest(CodecPair::get(), true);
  p.pump();
  buffer::Buffer garbage;
  garbage.add(std::string("\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00", 13));  // WINDOW_UPDATE 0
  DispatchResult r = p.client_.dispatch(garbage);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->details, codec_details::kCodecError);
  EXPECT_TRUE(p.client_.wantsToClose());
  p.client_.onConnectionClosed();
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::ConnectionTermination);
}

TEST(Http2CodecTest, ServerGoAwayWithErrorReachesClient) {
  CodecPair p;
  p.startRequest(CodecPair::get(), true);
  p.pump();
  // A client that breaks the protocol gets GOAWAY(PROTOCOL_ERROR) from the server.
  buffer::Buffer bad;
  bad.add(std::string("\x00\x00\x03\x00\x00\x00\x00\x00\x63" "abc", 12));  // DATA on idle stream 99
  ASSERT_TRUE(p.server_.dispatch(bad).has_value());
  ASSERT_EQ(p.client_.dispatch(p.to_client_), std::nullopt);
  EXPECT_EQ(p.goaway_.goaways_, 1);
  EXPECT_EQ(p.goaway_.error_code_, static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
}


// A long-lived connection does not accumulate state per finished stream.
TEST(Http2CodecTest, FinishedStreamsDoNotAccumulate) {
  CodecPair p;
  p.pump();
  auto roundTrips = [&p](int n) {
    for (int i = 0; i < n; ++i) {
      p.startRequest(CodecPair::get(), true);
      p.pump();
      respond(*p.server_callbacks_.streams_.back(), "ok");
      p.pump();
      p.client_streams_.clear();
      p.server_callbacks_.streams_.clear();
    }
  };
  roundTrips(1000);
  const size_t before = mallinfo2().uordblks;
  roundTrips(20000);
  const size_t after = mallinfo2().uordblks;
  EXPECT_LT(after, before + 1024 * 1024) << "heap grew by " << (after - before);
  EXPECT_EQ(p.server_.activeStreams(), 0u);
}


// A pool should not, but if a stream starts after GOAWAY it is reset (never
// left hanging) with a reason that allows a retry elsewhere.
TEST(Http2CodecTest, StreamStartedAfterGoAwayIsRefused) {
  CodecPair p;
  p.pump();
  p.server_.goAway();
  p.pump();
  ASSERT_TRUE(p.client_.goAwayReceived());
  ClientStream& c = p.startRequest(CodecPair::get(), true);
  p.pump();
  EXPECT_EQ(c.callbacks.resets_, 1);
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::RemoteRefusedStreamReset);
  EXPECT_TRUE(p.server_callbacks_.streams_.empty());
}


TEST(Http2CodecTest, ConnectTunnelWhenAllowed) {
  Http2Settings server_settings;
  server_settings.allow_connect = true;
  CodecPair p(server_settings);
  p.pump();
  // An HTTP/1 CONNECT carries no :scheme or :path in HTTP/2 (RFC 9113 8.5).
  RequestHeaderMap req{{":method", "CONNECT"}, {":authority", "db.internal:5432"},
                       {":scheme", "http"}, {":path", "db.internal:5432"}};
  ClientStream& c = p.startRequest(req, false);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  ServerStream& s = *p.server_callbacks_.streams_[0];
  EXPECT_EQ(s.decoder.headers_->method(), "CONNECT");
  EXPECT_EQ(s.decoder.headers_->host(), "db.internal:5432");
  EXPECT_FALSE(s.decoder.headers_->has(":path"));
  s.encoder->encodeHeaders(ResponseHeaderMap{{":status", "200"}}, false);
  buffer::Buffer up;
  up.add("ping");
  c.encoder->encodeData(up, false);
  p.pump();
  buffer::Buffer down;
  down.add("pong");
  s.encoder->encodeData(down, false);
  p.pump();
  EXPECT_EQ(s.decoder.body_, "ping");
  EXPECT_EQ(c.decoder.body_, "pong");
  EXPECT_EQ(c.decoder.headers_->status(), 200);
}

TEST(Http2CodecTest, ExtendedConnectWhenAllowed) {
  Http2Settings server_settings;
  server_settings.allow_connect = true;
  CodecPair p(server_settings);
  p.pump();
  RequestHeaderMap req{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                       {":path", "/chat"}, {":authority", "x"}};
  p.startRequest(req, false);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  EXPECT_EQ(p.server_callbacks_.streams_[0]->decoder.headers_->protocol(), "websocket");
  EXPECT_EQ(p.server_callbacks_.streams_[0]->decoder.headers_->path(), "/chat");
}

TEST(Http2CodecTest, ExtendedConnectRefusedByDefault) {
  CodecPair p;
  p.pump();
  RequestHeaderMap req{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                       {":path", "/chat"}, {":authority", "x"}};
  ClientStream& c = p.startRequest(req, false);
  p.pump();
  EXPECT_TRUE(p.server_callbacks_.streams_.empty());
  EXPECT_EQ(c.callbacks.reason_, StreamResetReason::RemoteReset);
}


// A request still queued behind max_concurrent_streams can be reset; it never
// reaches the server and leaves nothing behind.
TEST(Http2CodecTest, ResetOfQueuedRequest) {
  Http2Settings server_settings;
  server_settings.max_concurrent_streams = 1;
  CodecPair p(server_settings);
  p.pump();
  ClientStream& a = p.startRequest(CodecPair::get("/a"), true);
  ClientStream& b = p.startRequest(CodecPair::get("/b"), true);
  p.pump();
  ASSERT_EQ(p.server_callbacks_.streams_.size(), 1u);
  b.encoder->getStream()->resetStream(StreamResetReason::LocalReset);
  EXPECT_EQ(b.callbacks.resets_, 1);
  respond(*p.server_callbacks_.streams_[0], "a");
  p.pump();
  EXPECT_EQ(a.decoder.body_, "a");
  EXPECT_EQ(p.server_callbacks_.streams_.size(), 1u);
  EXPECT_EQ(p.client_.activeStreams(), 0u);
  EXPECT_EQ(b.callbacks.resets_, 1);
}

}  // namespace
}  // namespace courier::http::http2::test
