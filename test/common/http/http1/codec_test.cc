#include "source/common/http/http1/codec.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace courier::http::http1 {
namespace {

// Records every decoder call as text, one line per call.
class RecordingDecoder : public StreamDecoder {
 public:
  explicit RecordingDecoder(std::string& log) : log_(log) {}
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
  std::string& log_;
  HeaderMapPtr headers_;
};

class Http1ServerTest : public testing::Test, public ServerConnectionCallbacks {
 protected:
  StreamDecoder& newStream(ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    log_ += "stream\n";
    decoders_.push_back(std::make_unique<RecordingDecoder>(log_));
    return *decoders_.back();
  }

  void init(Http1Settings settings = {}) {
    codec_ = std::make_unique<ServerConnection>(*this, output_, settings);
  }

  DispatchResult feed(std::string_view bytes) {
    input_.add(bytes);
    return codec_->dispatch(input_);
  }

  // Dispatches bytes and expects an error with the given status and details.
  void expectError(std::string_view bytes, int status, std::string_view details,
                   Http1Settings settings = {}) {
    init(settings);
    auto err = feed(bytes);
    ASSERT_TRUE(err.has_value()) << log_;
    EXPECT_EQ(err->http_status, status) << err->message;
    EXPECT_EQ(err->details, details) << err->message;
    EXPECT_EQ(log_.find("headers"), std::string::npos) << log_;
  }

  void respond(std::string_view status = "200", std::string_view body = "") {
    ResponseHeaderMap h{{":status", status}};
    if (body.empty()) {
      encoder_->encodeHeaders(h, true);
    } else {
      h.add("content-length", std::to_string(body.size()));
      encoder_->encodeHeaders(h, false);
      buffer::Buffer b;
      b.add(body);
      encoder_->encodeData(b, true);
    }
  }

  std::string log_;
  std::vector<std::unique_ptr<RecordingDecoder>> decoders_;
  ResponseEncoder* encoder_ = nullptr;
  buffer::Buffer output_;
  buffer::Buffer input_;
  std::unique_ptr<ServerConnection> codec_;
};

constexpr std::string_view kGet = "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
constexpr std::string_view kGetDecoded =
    "stream\nheaders(end)\n:method: GET\n:path: /a?b=1\n:authority: example.com\nuser-agent: t\n";

TEST_F(Http1ServerTest, GetWithoutBodyDecodesHeadersWithEndStream) {
  init();
  EXPECT_FALSE(feed(kGet).has_value());
  EXPECT_EQ(log_, kGetDecoded);
  EXPECT_TRUE(input_.empty());
  EXPECT_FALSE(codec_->closeAfterResponse());
}

TEST_F(Http1ServerTest, ContentLengthBodyIsDelivered) {
  init();
  EXPECT_FALSE(feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello").has_value());
  EXPECT_EQ(log_,
            "stream\nheaders\n:method: POST\n:path: /\n:authority: h\ncontent-length: 5\n"
            "data(end):hello\n");
}

TEST_F(Http1ServerTest, ChunkedBodyIsDelivered) {
  init();
  EXPECT_FALSE(feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                   .has_value());
  EXPECT_NE(log_.find("data(end):hello world\n"), std::string::npos) << log_;
}

TEST_F(Http1ServerTest, ChunkedTrailersAreDecoded) {
  init();
  EXPECT_FALSE(feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n")
                   .has_value());
  EXPECT_NE(log_.find("data:abc\ntrailers\nx-checksum: 42\n"), std::string::npos) << log_;
}

TEST_F(Http1ServerTest, EmptyHeaderValueIsKept) {
  init();
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n").has_value());
  EXPECT_NE(log_.find("x-empty: \n"), std::string::npos) << log_;
}

TEST_F(Http1ServerTest, AbsoluteFormUrlSetsAuthorityPathAndScheme) {
  init();
  EXPECT_FALSE(feed("GET http://other.com:8080/x HTTP/1.1\r\nHost: h\r\n\r\n").has_value());
  EXPECT_EQ(decoders_[0]->headers_->host(), "other.com:8080");
  EXPECT_EQ(decoders_[0]->headers_->path(), "/x");
  EXPECT_EQ(decoders_[0]->headers_->scheme(), "http");
}

TEST_F(Http1ServerTest, KeepAliveServesTwoSequentialRequests) {
  init();
  EXPECT_FALSE(feed(kGet).has_value());
  respond();
  EXPECT_FALSE(codec_->shouldClose());
  EXPECT_FALSE(feed(kGet).has_value());
  EXPECT_EQ(decoders_.size(), 2u);
}

TEST_F(Http1ServerTest, PipelinedSecondRequestWaitsForFirstResponse) {
  init();
  EXPECT_FALSE(feed(std::string(kGet) + "GET /second HTTP/1.1\r\nHost: h\r\n\r\n").has_value());
  EXPECT_EQ(decoders_.size(), 1u);
  EXPECT_TRUE(codec_->waitingForResponse());
  EXPECT_FALSE(input_.empty());
  // Dispatching again while waiting consumes nothing.
  EXPECT_FALSE(codec_->dispatch(input_).has_value());
  EXPECT_EQ(decoders_.size(), 1u);
  respond();
  EXPECT_FALSE(codec_->waitingForResponse());
  EXPECT_FALSE(codec_->dispatch(input_).has_value());
  ASSERT_EQ(decoders_.size(), 2u);
  EXPECT_EQ(decoders_[1]->headers_->path(), "/second");
  EXPECT_TRUE(input_.empty());
}

TEST_F(Http1ServerTest, HopByHopRequestHeadersAreNotPassedOn) {
  init();
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nKeep-Alive: timeout=5\r\n"
                    "Proxy-Connection: keep-alive\r\nX-Kept: 1\r\n\r\n")
                   .has_value());
  ASSERT_EQ(decoders_.size(), 1u);
  const HeaderMap& h = *decoders_[0]->headers_;
  EXPECT_FALSE(h.has("connection"));
  EXPECT_FALSE(h.has("keep-alive"));
  EXPECT_FALSE(h.has("proxy-connection"));
  EXPECT_TRUE(h.has("x-kept"));
  // The codec still honours what the client asked of this connection.
  EXPECT_TRUE(codec_->closeAfterResponse());
}

TEST_F(Http1ServerTest, ConnectionCloseRequestMustClose) {
  init();
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + std::string(kGet))
                   .has_value());
  EXPECT_TRUE(codec_->closeAfterResponse());
  EXPECT_FALSE(codec_->shouldClose());
  respond();
  EXPECT_TRUE(codec_->shouldClose());
  // Bytes after a close request are never parsed.
  EXPECT_FALSE(codec_->dispatch(input_).has_value());
  EXPECT_EQ(decoders_.size(), 1u);
}

TEST_F(Http1ServerTest, Http10IsRejectedWith426ByDefault) {
  expectError("GET / HTTP/1.0\r\n\r\n", 426, "low_version");
}

TEST_F(Http1ServerTest, Http10WithoutKeepAliveClosesAfterResponse) {
  Http1Settings s;
  s.accept_http_10 = true;
  init(s);
  EXPECT_FALSE(feed("GET / HTTP/1.0\r\n\r\n").has_value());
  EXPECT_EQ(codec_->protocol(), Protocol::Http10);
  EXPECT_TRUE(codec_->closeAfterResponse());
}

TEST_F(Http1ServerTest, Http10WithKeepAliveStaysOpen) {
  Http1Settings s;
  s.accept_http_10 = true;
  init(s);
  EXPECT_FALSE(feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").has_value());
  EXPECT_FALSE(codec_->closeAfterResponse());
}

TEST_F(Http1ServerTest, Http10ResponseWithoutLengthIsCloseDelimited) {
  Http1Settings s;
  s.accept_http_10 = true;
  init(s);
  EXPECT_FALSE(feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").has_value());
  encoder_->encodeHeaders(ResponseHeaderMap{{":status", "200"}}, false);
  buffer::Buffer b;
  b.add("body");
  encoder_->encodeData(b, true);
  EXPECT_EQ(output_.toString(), "HTTP/1.1 200 OK\r\n\r\nbody");
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ServerTest, Expect100ContinueIsSurfacedNotAnswered) {
  init();
  EXPECT_FALSE(feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
                   .has_value());
  EXPECT_TRUE(codec_->expect100Continue());
  EXPECT_EQ(decoders_[0]->headers_->getValue("expect"), "100-continue");
  EXPECT_TRUE(output_.empty());
  encoder_->encode100ContinueHeaders();
  EXPECT_EQ(output_.toString(), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_FALSE(feed("abc").has_value());
  EXPECT_NE(log_.find("data(end):abc\n"), std::string::npos) << log_;
}

TEST_F(Http1ServerTest, WebsocketUpgradeIsRefused) {
  init();
  auto err = feed("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, CodecError::Kind::UpgradeRefused);
  EXPECT_EQ(err->http_status, 403);
  EXPECT_TRUE(decoders_.empty());
}

constexpr std::string_view kWebsocketRequest =
    "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

Http1Settings websocketAllowed() {
  Http1Settings s;
  s.upgrade_types = {"websocket"};
  return s;
}

TEST_F(Http1ServerTest, AllowedUpgradeKeepsItsHeadersAndTunnelsLaterBytes) {
  init(websocketAllowed());
  EXPECT_FALSE(feed(std::string(kWebsocketRequest) + "early").has_value());
  ASSERT_EQ(decoders_.size(), 1u);
  EXPECT_EQ(log_,
            "stream\nheaders\n:method: GET\n:path: /ws\n:authority: h\nconnection: Upgrade\nupgrade: websocket\n"
            "data:early\n");
  EXPECT_TRUE(codec_->tunneling());
  // Anything after is raw, even what looks like HTTP.
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\n\r\n").has_value());
  EXPECT_NE(log_.find("data:GET / HTTP/1.1\r\n\r\n\n"), std::string::npos) << log_;
  codec_->endOfInput();
  EXPECT_NE(log_.find("data(end):\n"), std::string::npos) << log_;
}

TEST_F(Http1ServerTest, SwitchingProtocolsResponseHasNoFramingAndBodyIsRaw) {
  init(websocketAllowed());
  ASSERT_FALSE(feed(kWebsocketRequest).has_value());
  ResponseHeaderMap h{{":status", "101"}, {"connection", "upgrade"}, {"upgrade", "websocket"}};
  encoder_->encodeHeaders(h, false);
  buffer::Buffer frame;
  frame.add("\x81\x02hi");
  encoder_->encodeData(frame, false);
  EXPECT_EQ(output_.toString(),
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n\x81\x02hi");
  buffer::Buffer none;
  encoder_->encodeData(none, true);
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ServerTest, RefusedUpgradeResponseIsFramedAndClosesTheConnection) {
  init(websocketAllowed());
  ASSERT_FALSE(feed(kWebsocketRequest).has_value());
  respond("404", "nope");
  EXPECT_EQ(output_.toString(), "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope");
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ServerTest, UpgradeOfAnotherTypeIsStillRefused) {
  init(websocketAllowed());
  auto err = feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, CodecError::Kind::UpgradeRefused);
}

TEST_F(Http1ServerTest, ConnectIsRefused) {
  init();
  auto err = feed("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, CodecError::Kind::UpgradeRefused);
}

TEST_F(Http1ServerTest, H2cUpgradeIsStrippedAndServedAsHttp11) {
  init();
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" +
                    std::string(kGet))
                   .has_value());
  ASSERT_EQ(decoders_.size(), 1u);
  EXPECT_FALSE(decoders_[0]->headers_->has("upgrade"));
  EXPECT_FALSE(decoders_[0]->headers_->has("connection"));
  respond();
  EXPECT_FALSE(codec_->dispatch(input_).has_value());
  EXPECT_EQ(decoders_.size(), 2u);
}

// --- strictness / smuggling shapes ---

TEST_F(Http1ServerTest, ClTeTogetherIs400) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
              "0\r\n\r\n",
              400, details::kChunkedContentLength);
}

TEST_F(Http1ServerTest, TeClTogetherIs400) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
              "0\r\n\r\n",
              400, details::kChunkedContentLength);
}

TEST_F(Http1ServerTest, ClTeAllowedDropsContentLength) {
  Http1Settings s;
  s.allow_chunked_length = true;
  init(s);
  EXPECT_FALSE(feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n2\r\nab\r\n0\r\n\r\n")
                   .has_value());
  EXPECT_FALSE(decoders_[0]->headers_->has("content-length"));
  EXPECT_NE(log_.find("data(end):ab\n"), std::string::npos) << log_;
}

TEST_F(Http1ServerTest, DuplicateDifferingContentLengthIs400) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
              details::kCodecError);
}

TEST_F(Http1ServerTest, DuplicateEqualContentLengthIs400) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400,
              details::kCodecError);
}

TEST_F(Http1ServerTest, NonNumericContentLengthIs400) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3x\r\n\r\nabc", 400, details::kCodecError);
}

TEST_F(Http1ServerTest, TransferEncodingChunkedIdentityIs501) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501,
              details::kInvalidTransferEncoding);
}

TEST_F(Http1ServerTest, TransferEncodingXchunkedIs501) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501,
              details::kInvalidTransferEncoding);
}

TEST_F(Http1ServerTest, DuplicateTransferEncodingIs501) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
              "\r\n0\r\n\r\n",
              501, details::kInvalidTransferEncoding);
}

TEST_F(Http1ServerTest, TransferEncodingWithSpaceBeforeColonIs400) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400,
              details::kCodecError);
}

TEST_F(Http1ServerTest, TransferEncodingWithVerticalTabIs400) {
  expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n0\r\n\r\n", 400,
              details::kCodecError);
}

TEST_F(Http1ServerTest, TransferEncodingWithLeadingTabIsChunked) {
  init();
  EXPECT_FALSE(feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\t chunked \r\n\r\n1\r\nz\r\n0\r\n\r\n")
                   .has_value());
  EXPECT_NE(log_.find("data(end):z\n"), std::string::npos) << log_;
}

TEST_F(Http1ServerTest, InvalidChunkSizeIs400) {
  init();
  auto err = feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->http_status, 400);
  EXPECT_EQ(err->details, details::kCodecError);
}

TEST_F(Http1ServerTest, BareLfLineEndingIs400) {
  expectError("GET / HTTP/1.1\nHost: h\n\n", 400, details::kCodecError);
}

TEST_F(Http1ServerTest, BadHeaderNameCharacterIs400) {
  expectError("GET / HTTP/1.1\r\nHost: h\r\nBad\"Name: x\r\n\r\n", 400, details::kCodecError);
}

TEST_F(Http1ServerTest, BadHeaderValueCharacterIs400) {
  expectError(std::string_view("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35), 400,
              details::kCodecError);
}

// llhttp 8.1 unfolds obs-fold; RFC 9112 5.2 allows replacing it with SP.
TEST_F(Http1ServerTest, ObsFoldIsReplacedWithSpace) {
  init();
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n").has_value());
  EXPECT_EQ(decoders_[0]->headers_->getValue("x"), "a b");
}

TEST_F(Http1ServerTest, HeadersOverLimitAre431) {
  Http1Settings s;
  s.max_request_headers_kb = 1;
  expectError("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(1100, 'a') + "\r\n\r\n", 431,
              details::kHeadersTooLarge, s);
}

TEST_F(Http1ServerTest, LongUrlCountsTowardHeaderLimit) {
  Http1Settings s;
  s.max_request_headers_kb = 1;
  expectError("GET /" + std::string(1100, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 431,
              details::kHeadersTooLarge, s);
}

TEST_F(Http1ServerTest, TooManyHeadersAre431) {
  Http1Settings s;
  s.max_headers_count = 3;
  expectError("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, details::kTooManyHeaders, s);
}

TEST_F(Http1ServerTest, HeaderCountAtLimitIsAccepted) {
  Http1Settings s;
  s.max_headers_count = 3;
  init(s);
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n").has_value());
}

TEST_F(Http1ServerTest, ErrorIsStickyAndRefusesFurtherInput) {
  init();
  ASSERT_TRUE(feed("GET / HTTP/1.1\r\nHost h\r\n\r\n").has_value());
  input_.drain(input_.length());
  input_.add(kGet);
  auto err = codec_->dispatch(input_);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(input_.length(), kGet.size());
  EXPECT_TRUE(decoders_.empty());
  EXPECT_TRUE(codec_->shouldClose());
}

TEST_F(Http1ServerTest, SendErrorResponseWritesMinimalReply) {
  init();
  auto err = feed("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n");
  ASSERT_TRUE(err.has_value());
  EXPECT_TRUE(codec_->sendErrorResponse(*err));
  EXPECT_EQ(output_.toString(), "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
}

// --- response encoding ---

TEST_F(Http1ServerTest, EncodesHeadersOnlyResponseWithContentLengthZero) {
  init();
  feed(kGet);
  encoder_->encodeHeaders(ResponseHeaderMap{{":status", "200"}, {"X-Foo", "Bar"}}, true);
  EXPECT_EQ(output_.toString(), "HTTP/1.1 200 OK\r\nx-foo: Bar\r\ncontent-length: 0\r\n\r\n");
}

TEST_F(Http1ServerTest, EncodesContentLengthBody) {
  init();
  feed(kGet);
  respond("200", "hello");
  EXPECT_EQ(output_.toString(), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
}

TEST_F(Http1ServerTest, EncodesChunkedBodyAndTrailers) {
  init();
  feed(kGet);
  encoder_->encodeHeaders(ResponseHeaderMap{{":status", "200"}}, false);
  buffer::Buffer b;
  b.add("0123456789abcdefX");
  encoder_->encodeData(b, false);
  EXPECT_TRUE(b.empty());
  encoder_->encodeTrailers(TrailerMap{{"grpc-status", "0"}});
  EXPECT_EQ(output_.toString(),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            "11\r\n0123456789abcdefX\r\n0\r\ngrpc-status: 0\r\n\r\n");
}

TEST_F(Http1ServerTest, EncodesChunkedEndWithEmptyData) {
  init();
  feed(kGet);
  encoder_->encodeHeaders(ResponseHeaderMap{{":status", "200"}}, false);
  buffer::Buffer b;
  b.add("ab");
  encoder_->encodeData(b, false);
  buffer::Buffer empty;
  encoder_->encodeData(empty, true);
  EXPECT_EQ(output_.toString(),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n");
}

TEST_F(Http1ServerTest, ResponseToHeadHasNoBody) {
  init();
  feed("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  respond("200", "hello");
  EXPECT_EQ(output_.toString(), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
}

TEST_F(Http1ServerTest, HeadersOnlyResponseToHeadHasNoContentLengthAdded) {
  init();
  feed("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  respond("200");
  EXPECT_EQ(output_.toString(), "HTTP/1.1 200 OK\r\n\r\n");
}

TEST_F(Http1ServerTest, Response204HasNoFramingHeaders) {
  init();
  feed(kGet);
  encoder_->encodeHeaders(ResponseHeaderMap{{":status", "204"}}, false);
  buffer::Buffer b;
  b.add("ignored");
  encoder_->encodeData(b, true);
  EXPECT_EQ(output_.toString(), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST_F(Http1ServerTest, Response304HasNoBody) {
  init();
  feed(kGet);
  respond("304");
  EXPECT_EQ(output_.toString(), "HTTP/1.1 304 Not Modified\r\n\r\n");
}

TEST_F(Http1ServerTest, TransferEncodingHeaderInMapIsNotDuplicated) {
  init();
  feed(kGet);
  encoder_->encodeHeaders(ResponseHeaderMap{{":status", "200"}, {"transfer-encoding", "chunked"}}, false);
  EXPECT_EQ(output_.toString(), "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
}

// --- byte-at-a-time ---

std::string decodeSplit(std::string_view request, size_t split, bool byte_at_a_time) {
  struct Cb : ServerConnectionCallbacks {
    std::string log;
    std::vector<std::unique_ptr<RecordingDecoder>> decoders;
    StreamDecoder& newStream(ResponseEncoder&) override {
      log += "stream\n";
      decoders.push_back(std::make_unique<RecordingDecoder>(log));
      return *decoders.back();
    }
  } cb;
  buffer::Buffer out, in;
  ServerConnection codec(cb, out);
  bool errored = false;
  auto run = [&](std::string_view part) {
    in.add(part);
    auto err = codec.dispatch(in);
    if (err && !errored) errored = true, cb.log += "error:" + err->details + "\n";
  };
  if (byte_at_a_time) {
    for (char c : request) run(std::string_view(&c, 1));
  } else {
    run(request.substr(0, split));
    run(request.substr(split));
  }
  // Coalesce data lines: splitting changes how body bytes are grouped.
  std::string merged, body;
  size_t pos = 0;
  while (pos < cb.log.size()) {
    size_t nl = cb.log.find('\n', pos);
    std::string_view line(cb.log.data() + pos, nl - pos);
    if (line.substr(0, 5) == "data:") {
      body += std::string(line.substr(5));
    } else {
      if (line.substr(0, 10) == "data(end):") {
        body += std::string(line.substr(10));
        merged += "body:" + body + "(end)\n";
        body.clear();
      } else {
        if (!body.empty()) merged += "body:" + body + "\n";
        body.clear();
        merged += std::string(line) + "\n";
      }
    }
    pos = nl + 1;
  }
  if (!body.empty()) merged += "body:" + body + "\n";
  return merged;
}

TEST(Http1ServerSplitTest, EverySplitOffsetParsesTheSame) {
  const std::vector<std::string> requests = {
      std::string(kGet),
      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
      "0\r\nX-T: v\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  };
  for (const auto& req : requests) {
    const std::string whole = decodeSplit(req, req.size(), false);
    EXPECT_TRUE(whole.find("stream") != std::string::npos || whole.find("error") != std::string::npos)
        << whole;
    for (size_t i = 0; i <= req.size(); ++i) {
      EXPECT_EQ(decodeSplit(req, i, false), whole) << "split at " << i << " of " << req;
    }
    EXPECT_EQ(decodeSplit(req, 0, true), whole) << req;
  }
}

}  // namespace
}  // namespace courier::http::http1
