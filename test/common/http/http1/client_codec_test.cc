#include "source/common/http/http1/client_codec.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace courier::http::http1 {
namespace {

// Records every decoder call as text, one line per call.
class RecordingResponseDecoder : public ResponseDecoder {
 public:
  void decode1xxHeaders(HeaderMapPtr headers) override {
    log_ += "1xx\n" + headers->toString();
  }
  void decodeHeaders(HeaderMapPtr headers, bool end_stream) override {
    log_ += "headers" + std::string(end_stream ? "(end)" : "") + "\n" + headers->toString();
    headers_ = std::move(headers);
  }
  void decodeData(buffer::Buffer& data, bool end_stream) override {
    log_ += "data" + std::string(end_stream ? "(end)" : "") + ":" + data.toString() + "\n";
  }
  void decodeTrailers(HeaderMapPtr trailers) override {
    log_ += "trailers\n" + trailers->toString();
  }
  std::string log_;
  HeaderMapPtr headers_;
};

class Http1ClientTest : public testing::Test {
 protected:
  void SetUp() override { init(); }
  void init(Http1ClientSettings settings = {}) {
    codec_ = std::make_unique<ClientConnection>(output_, settings);
  }

  // Starts a request and encodes it headers-only.
  void request(std::string_view method = "GET", std::string_view path = "/") {
    encoder_ = &codec_->newStream(decoder_);
    RequestHeaderMap h{{":method", method}, {":path", path}, {":authority", "host.example"}};
    encoder_->encodeHeaders(h, true);
    output_.drain(output_.length());
  }

  DispatchResult feed(std::string_view bytes) {
    input_.add(bytes);
    return codec_->dispatch(input_);
  }

  void expectError(std::string_view response, std::string_view details,
                   std::string_view method = "GET") {
    request(method);
    auto err = feed(response);
    ASSERT_TRUE(err.has_value()) << decoder_.log_;
    EXPECT_EQ(err->kind, CodecError::Kind::Protocol);
    EXPECT_EQ(err->details, details) << err->message;
    EXPECT_TRUE(codec_->shouldClose());
    EXPECT_FALSE(codec_->idle());
  }

  RecordingResponseDecoder decoder_;
  RequestEncoder* encoder_ = nullptr;
  buffer::Buffer output_;
  buffer::Buffer input_;
  std::unique_ptr<ClientConnection> codec_;
};

// ---- Request encoding ----

TEST_F(Http1ClientTest, EncodesGetWithHostFirst) {
  RequestEncoder& enc = codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "GET"}, {":path", "/a?b=1"}, {"user-agent", "t"},
                     {":authority", "example.com"}};
  enc.encodeHeaders(h, true);
  EXPECT_EQ(output_.toString(),
            "GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\nuser-agent: t\r\n\r\n");
}

TEST_F(Http1ClientTest, AuthorityReplacesHostHeader) {
  RequestEncoder& enc = codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "GET"}, {":path", "/"}, {":authority", "a.com"},
                     {"host", "b.com"}, {"x", "y"}};
  enc.encodeHeaders(h, true);
  EXPECT_EQ(output_.toString(), "GET / HTTP/1.1\r\nhost: a.com\r\nx: y\r\n\r\n");
}

TEST_F(Http1ClientTest, EncodesPostWithContentLength) {
  RequestEncoder& enc = codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "POST"}, {":path", "/up"}, {":authority", "h"},
                     {"content-length", "5"}};
  enc.encodeHeaders(h, false);
  buffer::Buffer body;
  body.add("hello");
  enc.encodeData(body, true);
  EXPECT_TRUE(body.empty());
  EXPECT_EQ(output_.toString(),
            "POST /up HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\nhello");
}

TEST_F(Http1ClientTest, EncodesHeadersOnlyPostWithContentLengthZero) {
  RequestEncoder& enc = codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "POST"}, {":path", "/"}, {":authority", "h"}};
  enc.encodeHeaders(h, true);
  EXPECT_EQ(output_.toString(), "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n");
}

TEST_F(Http1ClientTest, EncodesChunkedBodyWithTrailers) {
  RequestEncoder& enc = codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "POST"}, {":path", "/"}, {":authority", "h"},
                     {"transfer-encoding", "chunked"}};
  enc.encodeHeaders(h, false);
  buffer::Buffer body;
  body.add("hello world");
  enc.encodeData(body, false);
  TrailerMap t{{"x-checksum", "42"}};
  enc.encodeTrailers(t);
  EXPECT_EQ(output_.toString(),
            "POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n"
            "b\r\nhello world\r\n0\r\nx-checksum: 42\r\n\r\n");
}

TEST_F(Http1ClientTest, EncodesChunkedEndWithEmptyData) {
  RequestEncoder& enc = codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "PUT"}, {":path", "/"}, {":authority", "h"}};
  enc.encodeHeaders(h, false);
  buffer::Buffer body;
  body.add("abc");
  enc.encodeData(body, false);
  buffer::Buffer empty;
  enc.encodeData(empty, true);
  EXPECT_EQ(output_.toString(),
            "PUT / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n");
}

// ---- Response parsing ----

TEST_F(Http1ClientTest, ContentLengthResponse) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello").has_value());
  EXPECT_EQ(decoder_.log_,
            "headers\n:status: 200\ncontent-length: 5\nx-a: b\ndata(end):hello\n");
  EXPECT_TRUE(codec_->idle());
  EXPECT_FALSE(codec_->shouldClose());
}

TEST_F(Http1ClientTest, ZeroContentLengthResponseIsHeadersOnly) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").has_value());
  EXPECT_EQ(decoder_.log_, "headers(end)\n:status: 200\ncontent-length: 0\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, ChunkedResponse) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                   .has_value());
  EXPECT_EQ(decoder_.log_,
            "headers\n:status: 200\ntransfer-encoding: chunked\ndata(end):hello world\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, ChunkedResponseTrailers) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n")
                   .has_value());
  EXPECT_EQ(decoder_.log_,
            "headers\n:status: 200\ntransfer-encoding: chunked\ndata:abc\n"
            "trailers\nx-checksum: 42\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, Continue100ThenFinalResponse) {
  request("POST");
  EXPECT_FALSE(feed("HTTP/1.1 100 Continue\r\n\r\n").has_value());
  EXPECT_EQ(decoder_.log_, "1xx\n:status: 100\n");
  EXPECT_FALSE(codec_->idle());
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").has_value());
  EXPECT_EQ(decoder_.log_,
            "1xx\n:status: 100\nheaders\n:status: 200\ncontent-length: 2\ndata(end):ok\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, Continue100AndFinalResponseInOneRead) {
  request("POST");
  EXPECT_FALSE(
      feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").has_value());
  EXPECT_EQ(decoder_.log_, "1xx\n:status: 100\nheaders(end)\n:status: 204\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, HeadResponseWithContentLengthHasNoBody) {
  request("HEAD");
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n").has_value());
  EXPECT_EQ(decoder_.log_, "headers(end)\n:status: 200\ncontent-length: 10\n");
  EXPECT_TRUE(input_.empty());
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, Response204IsHeadersOnly) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 204 No Content\r\n\r\n").has_value());
  EXPECT_EQ(decoder_.log_, "headers(end)\n:status: 204\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, Response304WithContentLengthIsHeadersOnly) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n").has_value());
  EXPECT_EQ(decoder_.log_, "headers(end)\n:status: 304\ncontent-length: 7\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, UpgradeRequestIsUnframedAnd101StartsATunnel) {
  encoder_ = &codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "GET"}, {":path", "/ws"}, {":authority", "h"}, {"connection", "Upgrade"},
                     {"upgrade", "websocket"}};
  encoder_->encodeHeaders(h, false);
  buffer::Buffer early;
  early.add("ping");
  encoder_->encodeData(early, false);
  EXPECT_EQ(output_.toString(), "GET /ws HTTP/1.1\r\nhost: h\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\nping");
  EXPECT_FALSE(feed("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\npong").has_value());
  EXPECT_TRUE(codec_->tunneling());
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\n\r\n").has_value());
  EXPECT_EQ(decoder_.log_,
            "headers\n:status: 101\nconnection: upgrade\nupgrade: websocket\ndata:pong\n"
            "data:HTTP/1.1 200 OK\r\n\r\n\n");
  EXPECT_FALSE(codec_->onConnectionClosed().has_value());
  EXPECT_NE(decoder_.log_.find("data(end):\n"), std::string::npos);
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ClientTest, SwitchingProtocolsWithoutAnUpgradeRequestIsAnError) {
  expectError("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", details::kCodecError);
}

TEST_F(Http1ClientTest, CloseDelimitedBodyCompletesOnConnectionClosed) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\n\r\nsome").has_value());
  EXPECT_FALSE(feed(" body").has_value());
  EXPECT_EQ(decoder_.log_, "headers\n:status: 200\ndata:some\ndata: body\n");
  EXPECT_FALSE(codec_->idle());
  EXPECT_FALSE(codec_->onConnectionClosed().has_value());
  EXPECT_EQ(decoder_.log_, "headers\n:status: 200\ndata:some\ndata: body\ndata(end):\n");
  EXPECT_TRUE(codec_->shouldClose());
  EXPECT_FALSE(codec_->idle());
}

TEST_F(Http1ClientTest, PrematureCloseMidBodyIsError) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").has_value());
  auto err = codec_->onConnectionClosed();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, CodecError::Kind::PrematureResponse);
  EXPECT_EQ(err->details, client_details::kPrematureClose);
  EXPECT_EQ(decoder_.log_, "headers\n:status: 200\ncontent-length: 10\ndata:abc\n");
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ClientTest, CloseBeforeAnyResponseIsError) {
  request();
  auto err = codec_->onConnectionClosed();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, CodecError::Kind::PrematureResponse);
  EXPECT_EQ(decoder_.log_, "");
}

TEST_F(Http1ClientTest, CloseWhileIdleIsNotError) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 204 No Content\r\n\r\n").has_value());
  EXPECT_FALSE(codec_->onConnectionClosed().has_value());
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ClientTest, ConnectionCloseResponseMustClose) {
  request();
  EXPECT_FALSE(
      feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").has_value());
  EXPECT_TRUE(codec_->shouldClose());
  EXPECT_FALSE(codec_->idle());
}

TEST_F(Http1ClientTest, Http10ResponseMustClose) {
  request();
  EXPECT_FALSE(feed("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").has_value());
  EXPECT_EQ(codec_->protocol(), Protocol::Http10);
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ClientTest, Http10KeepAliveResponseIsReusable) {
  request();
  EXPECT_FALSE(feed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")
                   .has_value());
  EXPECT_FALSE(codec_->shouldClose());
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, ConnectionCloseRequestMustCloseAfterResponse) {
  RequestEncoder& enc = codec_->newStream(decoder_);
  RequestHeaderMap h{{":method", "GET"}, {":path", "/"}, {":authority", "h"},
                     {"connection", "close"}};
  enc.encodeHeaders(h, true);
  EXPECT_EQ(output_.toString(), "GET / HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n");
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").has_value());
  EXPECT_TRUE(codec_->shouldClose());
  EXPECT_FALSE(codec_->idle());
}

TEST_F(Http1ClientTest, ShouldCloseOnlyAfterResponseCompletes) {
  request();
  EXPECT_FALSE(
      feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\no").has_value());
  EXPECT_FALSE(codec_->shouldClose());
  EXPECT_FALSE(feed("k").has_value());
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ClientTest, TwoSequentialRequestsReuseConnection) {
  request();
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na").has_value());
  EXPECT_TRUE(codec_->idle());
  RecordingResponseDecoder second;
  RequestEncoder& enc = codec_->newStream(second);
  EXPECT_FALSE(codec_->idle());
  RequestHeaderMap h{{":method", "GET"}, {":path", "/2"}, {":authority", "h"}};
  enc.encodeHeaders(h, true);
  EXPECT_EQ(output_.toString(), "GET /2 HTTP/1.1\r\nhost: h\r\n\r\n");
  EXPECT_FALSE(feed("HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nb").has_value());
  EXPECT_EQ(decoder_.log_, "headers\n:status: 200\ncontent-length: 1\ndata(end):a\n");
  EXPECT_EQ(second.log_, "headers\n:status: 404\ncontent-length: 1\ndata(end):b\n");
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http1ClientTest, HeadThenGetOnSameConnection) {
  request("HEAD");
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n").has_value());
  RecordingResponseDecoder second;
  RequestEncoder& enc = codec_->newStream(second);
  RequestHeaderMap h{{":method", "GET"}, {":path", "/"}, {":authority", "h"}};
  enc.encodeHeaders(h, true);
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").has_value());
  EXPECT_EQ(second.log_, "headers\n:status: 200\ncontent-length: 3\ndata(end):abc\n");
}

// ---- Errors ----

TEST_F(Http1ClientTest, UnsolicitedBytesAreError) {
  auto err = feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->details, client_details::kUnexpectedResponse);
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ClientTest, BytesAfterCompleteResponseAreError) {
  request();
  auto err = feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naEXTRA");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->details, client_details::kUnexpectedResponse);
  EXPECT_EQ(decoder_.log_, "headers\n:status: 200\ncontent-length: 1\ndata(end):a\n");
}

TEST_F(Http1ClientTest, GarbageIsCodecError) {
  expectError("garbage\r\n\r\n", details::kCodecError);
  EXPECT_EQ(decoder_.log_, "");
}

TEST_F(Http1ClientTest, BadStatusLineIsCodecError) {
  expectError("HTTP/1.1 2x0 OK\r\n\r\n", details::kCodecError);
}

TEST_F(Http1ClientTest, BadChunkSizeIsCodecError) {
  expectError("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
              details::kCodecError);
}

TEST_F(Http1ClientTest, ContentLengthAndChunkedIsError) {
  expectError("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
              details::kChunkedContentLength);
  EXPECT_EQ(decoder_.log_, "");
}

TEST_F(Http1ClientTest, UnknownTransferEncodingIsError) {
  expectError("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
              details::kInvalidTransferEncoding);
}

TEST_F(Http1ClientTest, OversizeHeadersAreError) {
  init(Http1ClientSettings{1, 100});
  expectError("HTTP/1.1 200 OK\r\nX-Big: " + std::string(1100, 'a') + "\r\n\r\n",
              details::kHeadersTooLarge);
}

TEST_F(Http1ClientTest, TooManyHeadersAreError) {
  init(Http1ClientSettings{60, 3});
  expectError("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
              details::kTooManyHeaders);
}

TEST_F(Http1ClientTest, UnrequestedUpgradeIsError) {
  expectError("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
              details::kCodecError);
}

TEST_F(Http1ClientTest, ErrorIsSticky) {
  request();
  auto err = feed("bad\r\n");
  ASSERT_TRUE(err.has_value());
  input_.drain(input_.length());
  auto again = feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->details, err->details);
  EXPECT_EQ(decoder_.log_, "");
}

// ---- Split at every offset ----

// Parses response (for a request of method) fed in two pieces split at
// `split`, or one byte at a time; returns the decoder log with consecutive
// non-final data lines coalesced, plus "close" calls if needed.
std::string decodeSplit(std::string_view response, size_t split, bool byte_at_a_time,
                        std::string_view method, bool close_at_end) {
  buffer::Buffer out, in;
  ClientConnection codec(out);
  RecordingResponseDecoder dec;
  RequestEncoder& enc = codec.newStream(dec);
  RequestHeaderMap h{{":method", method}, {":path", "/"}, {":authority", "h"}};
  enc.encodeHeaders(h, true);
  std::string errors;
  auto run = [&](std::string_view part) {
    in.add(part);
    if (auto err = codec.dispatch(in)) errors += "error:" + err->details + "\n";
  };
  if (byte_at_a_time) {
    for (char c : response) run(std::string_view(&c, 1));
  } else {
    run(response.substr(0, split));
    run(response.substr(split));
  }
  if (close_at_end) {
    if (auto err = codec.onConnectionClosed()) errors += "close-error:" + err->details + "\n";
  }
  // Coalesce data lines: splitting changes how body bytes are grouped.
  std::string result;
  std::string pending;
  bool have_pending = false;
  size_t pos = 0;
  const std::string& log = dec.log_;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    std::string line = log.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("data:", 0) == 0) {
      pending += line.substr(5);
      have_pending = true;
      continue;
    }
    if (line.rfind("data(end):", 0) == 0) {
      result += "data(end):" + pending + line.substr(10) + "\n";
      pending.clear();
      have_pending = false;
      continue;
    }
    if (have_pending) {
      result += "data:" + pending + "\n";
      pending.clear();
      have_pending = false;
    }
    result += line + "\n";
  }
  if (have_pending) result += "data:" + pending + "\n";
  return result + errors + (codec.idle() ? "idle\n" : "busy\n");
}

TEST_F(Http1ClientTest, ResponseSplitAtEveryOffsetParsesTheSame) {
  struct Case {
    std::string_view response;
    std::string_view method;
    bool close_at_end;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world", "GET", false},
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
       "POST", false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "HEAD", false},
      {"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", "GET", false},
      {"HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil close", "GET", true},
  };
  for (const auto& c : cases) {
    const std::string whole = decodeSplit(c.response, c.response.size(), false, c.method,
                                          c.close_at_end);
    EXPECT_EQ(whole.find("error"), std::string::npos) << whole;
    for (size_t i = 0; i <= c.response.size(); ++i) {
      EXPECT_EQ(decodeSplit(c.response, i, false, c.method, c.close_at_end), whole)
          << "split at " << i << " of " << c.response;
    }
    EXPECT_EQ(decodeSplit(c.response, 0, true, c.method, c.close_at_end), whole)
        << "byte at a time: " << c.response;
  }
}

}  // namespace
}  // namespace courier::http::http1
