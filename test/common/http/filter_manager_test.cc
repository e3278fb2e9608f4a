#include "source/common/http/filter_manager.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace courier::http {
namespace {

// Records what reaches each filter and answers with scripted statuses.
class ScriptedFilter : public StreamFilter {
 public:
  ScriptedFilter(std::string name, std::vector<std::string>& log) : name_(std::move(name)), log_(log) {}

  std::function<FilterHeadersStatus(HeaderMap&, bool)> on_headers;
  std::function<FilterDataStatus(buffer::Buffer&, bool)> on_data;
  std::function<FilterTrailersStatus(HeaderMap&)> on_trailers;
  std::function<FilterHeadersStatus(HeaderMap&, bool)> on_encode_headers;
  std::function<FilterDataStatus(buffer::Buffer&, bool)> on_encode_data;
  std::function<void(HeaderMap&)> on_encode_trailers;
  int destroyed = 0;
  StreamDecoderFilterCallbacks* decoder_callbacks = nullptr;
  StreamEncoderFilterCallbacks* encoder_callbacks = nullptr;

  FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) override {
    log_.push_back(name_ + ".dh" + (end_stream ? "!" : ""));
    return on_headers ? on_headers(headers, end_stream) : FilterHeadersStatus::Continue;
  }
  FilterDataStatus decodeData(buffer::Buffer& data, bool end_stream) override {
    log_.push_back(name_ + ".dd(" + data.toString() + ")" + (end_stream ? "!" : ""));
    return on_data ? on_data(data, end_stream) : FilterDataStatus::Continue;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap& trailers) override {
    log_.push_back(name_ + ".dt");
    return on_trailers ? on_trailers(trailers) : FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& cb) override { decoder_callbacks = &cb; }
  FilterHeadersStatus encodeHeaders(HeaderMap& headers, bool end_stream) override {
    log_.push_back(name_ + ".eh" + (end_stream ? "!" : ""));
    return on_encode_headers ? on_encode_headers(headers, end_stream) : FilterHeadersStatus::Continue;
  }
  FilterDataStatus encodeData(buffer::Buffer& data, bool end_stream) override {
    log_.push_back(name_ + ".ed(" + data.toString() + ")" + (end_stream ? "!" : ""));
    return on_encode_data ? on_encode_data(data, end_stream) : FilterDataStatus::Continue;
  }
  FilterTrailersStatus encodeTrailers(HeaderMap& trailers) override {
    log_.push_back(name_ + ".et");
    if (on_encode_trailers) on_encode_trailers(trailers);
    return FilterTrailersStatus::Continue;
  }
  void setEncoderFilterCallbacks(StreamEncoderFilterCallbacks& cb) override { encoder_callbacks = &cb; }
  void onDestroy() override { ++destroyed; }

 private:
  std::string name_;
  std::vector<std::string>& log_;
};

// The connection manager's side: records what leaves the encoder chain.
class FakeOwner : public FilterManagerCallbacks {
 public:
  explicit FakeOwner(std::vector<std::string>& log) : log_(log) {}
  void encodeHeadersToCodec(HeaderMap& headers, bool end_stream) override {
    log_.push_back(std::string("codec.h") + std::string(headers.statusString()) + (end_stream ? "!" : ""));
  }
  void encodeDataToCodec(buffer::Buffer& data, bool end_stream) override {
    log_.push_back("codec.d(" + data.toString() + ")" + (end_stream ? "!" : ""));
    data.drain(data.length());
  }
  void encodeTrailersToCodec(HeaderMap&) override { log_.push_back("codec.t"); }
  void onDecoderBufferOverflow() override { log_.push_back("overflow.decode"); }
  void onEncoderBufferOverflow() override { log_.push_back("overflow.encode"); }
  network::Connection& connection() override { std::abort(); }
  event::Dispatcher& dispatcher() override { std::abort(); }
  stream_info::StreamInfo& streamInfo() override { return info_; }
  const router::RouteEntry* route() override { return nullptr; }
  void clearRouteCache() override {}
  void resetStream() override { log_.push_back("reset"); }
  uint32_t bufferLimit() const override { return limit; }
  void sendLocalReply(int status, std::string_view, stream_info::ResponseFlag, std::string_view) override {
    log_.push_back("local" + std::to_string(status));
  }
  void onUpstreamWatermark(bool above) override { log_.push_back(above ? "upstream.high" : "upstream.low"); }
  server::WorkerContext& worker() override { std::abort(); }

  uint32_t limit = 1024;

 private:
  std::vector<std::string>& log_;
  stream_info::StreamInfo info_;
};

class FilterManagerTest : public ::testing::Test {
 protected:
  ScriptedFilter& add(const std::string& name) {
    auto f = std::make_unique<ScriptedFilter>(name, log);
    ScriptedFilter& ref = *f;
    fm.addStreamFilter(std::move(f));
    return ref;
  }
  static HeaderMapPtr request() {
    auto h = std::make_unique<HeaderMap>();
    h->add(":method", "POST");
    h->add(":path", "/");
    return h;
  }
  static HeaderMapPtr response(int status = 200) {
    auto h = std::make_unique<HeaderMap>();
    h->setStatus(status);
    return h;
  }
  void decodeData(const std::string& s, bool end) {
    buffer::Buffer b;
    b.add(s);
    fm.decodeData(b, end);
  }
  void encodeData(const std::string& s, bool end) {
    buffer::Buffer b;
    b.add(s);
    fm.encodeData(b, end);
  }

  std::vector<std::string> log;
  FakeOwner owner{log};
  FilterManager fm{owner};
};

using Log = std::vector<std::string>;

TEST_F(FilterManagerTest, DecodersRunInConfigOrderAndEncodersInReverse) {
  add("a");
  add("b");
  fm.decodeHeaders(request(), false);
  decodeData("x", true);
  fm.encodeHeaders(response(), false);
  encodeData("y", true);
  EXPECT_EQ(log, (Log{"a.dh", "b.dh", "a.dd(x)!", "b.dd(x)!", "b.eh", "a.eh", "codec.h200", "b.ed(y)!", "a.ed(y)!",
                      "codec.d(y)!"}));
}

TEST_F(FilterManagerTest, DataAddedFromEncodeTrailersGoesToLaterFiltersBeforeTheTrailers) {
  add("a");
  ScriptedFilter& b = add("b");
  b.on_encode_trailers = [&](HeaderMap&) {
    buffer::Buffer extra;
    extra.add("tail");
    b.encoder_callbacks->addEncodedData(extra);
  };
  fm.decodeHeaders(request(), true);
  log.clear();
  fm.encodeHeaders(response(), false);
  encodeData("y", false);
  fm.encodeTrailers(std::make_unique<HeaderMap>());
  EXPECT_EQ(log, (Log{"b.eh", "a.eh", "codec.h200", "b.ed(y)", "a.ed(y)", "codec.d(y)", "b.et", "a.ed(tail)",
                      "codec.d(tail)", "a.et", "codec.t"}));
}

TEST_F(FilterManagerTest, HeadersStopKeepsLaterFiltersWaitingButDataReachesTheStopper) {
  auto& a = add("a");
  add("b");
  a.on_headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopIteration; };
  a.on_data = [](buffer::Buffer&, bool) { return FilterDataStatus::StopIterationAndBuffer; };
  fm.decodeHeaders(request(), false);
  decodeData("x", false);
  decodeData("y", true);
  EXPECT_EQ(log, (Log{"a.dh", "a.dd(x)", "a.dd(y)!"}));
  ASSERT_NE(a.decoder_callbacks->decodingBuffer(), nullptr);
  EXPECT_EQ(a.decoder_callbacks->decodingBuffer()->toString(), "xy");
  log.clear();
  a.decoder_callbacks->continueDecoding();
  EXPECT_EQ(log, (Log{"b.dh", "b.dd(xy)!"}));
}

TEST_F(FilterManagerTest, StopAllBuffersBodyAndTrailersWithoutShowingThemToTheStopper) {
  auto& a = add("a");
  add("b");
  a.on_headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopAllIterationAndBuffer; };
  fm.decodeHeaders(request(), false);
  decodeData("x", false);
  auto trailers = std::make_unique<HeaderMap>();
  trailers->add("grpc-status", "0");
  fm.decodeTrailers(std::move(trailers));
  EXPECT_EQ(log, (Log{"a.dh"}));
  a.decoder_callbacks->continueDecoding();
  EXPECT_EQ(log, (Log{"a.dh", "b.dh", "a.dd(x)", "b.dd(x)", "a.dt", "b.dt"}));
}

TEST_F(FilterManagerTest, ContinueFromDataReleasesEverythingBufferedInOrder) {
  auto& a = add("a");
  add("b");
  a.on_data = [](buffer::Buffer&, bool end) {
    return end ? FilterDataStatus::Continue : FilterDataStatus::StopIterationAndBuffer;
  };
  fm.decodeHeaders(request(), false);
  decodeData("1", false);
  decodeData("2", false);
  decodeData("3", true);
  EXPECT_EQ(log, (Log{"a.dh", "b.dh", "a.dd(1)", "a.dd(2)", "a.dd(3)!", "b.dd(123)!"}));
}

TEST_F(FilterManagerTest, BufferedBodyReachesALaterFilterThatStopsHeadersToo) {
  // The router's shape: it stops headers (it is terminal) yet takes the body.
  auto& a = add("a");
  auto& b = add("b");
  a.on_headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopIteration; };
  a.on_data = [](buffer::Buffer&, bool end) {
    return end ? FilterDataStatus::Continue : FilterDataStatus::StopIterationAndBuffer;
  };
  b.on_headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopIteration; };
  b.on_data = [](buffer::Buffer&, bool) { return FilterDataStatus::StopIterationNoBuffer; };
  fm.decodeHeaders(request(), false);
  decodeData("x", false);
  decodeData("", true);
  EXPECT_EQ(log, (Log{"a.dh", "a.dd(x)", "a.dd()!", "b.dh", "b.dd(x)!"}));
}

TEST_F(FilterManagerTest, HeaderOnlyRequestResumesWithEndStream) {
  auto& a = add("a");
  add("b");
  a.on_headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopIteration; };
  fm.decodeHeaders(request(), true);
  a.decoder_callbacks->continueDecoding();
  EXPECT_EQ(log, (Log{"a.dh!", "b.dh!"}));
}

TEST_F(FilterManagerTest, ContinueFromAFilterThatHoldsNothingDoesNothing) {
  add("a");
  auto& b = add("b");
  fm.decodeHeaders(request(), false);
  b.decoder_callbacks->continueDecoding();
  EXPECT_EQ(log, (Log{"a.dh", "b.dh"}));
}

TEST_F(FilterManagerTest, TrailersStopAndContinue) {
  auto& a = add("a");
  add("b");
  a.on_trailers = [](HeaderMap&) { return FilterTrailersStatus::StopIteration; };
  fm.decodeHeaders(request(), false);
  fm.decodeTrailers(std::make_unique<HeaderMap>());
  EXPECT_EQ(log, (Log{"a.dh", "b.dh", "a.dt"}));
  a.decoder_callbacks->continueDecoding();
  EXPECT_EQ(log.back(), "b.dt");
}

TEST_F(FilterManagerTest, DecodeBufferOverLimitIsReportedOnce) {
  owner.limit = 4;
  auto& a = add("a");
  a.on_data = [](buffer::Buffer&, bool) { return FilterDataStatus::StopIterationAndBuffer; };
  fm.decodeHeaders(request(), false);
  decodeData("abc", false);
  EXPECT_EQ(std::count(log.begin(), log.end(), "overflow.decode"), 0);
  decodeData("de", false);
  decodeData("fg", false);
  EXPECT_EQ(std::count(log.begin(), log.end(), "overflow.decode"), 1);
}

TEST_F(FilterManagerTest, EncodeBufferOverLimitIsReported) {
  owner.limit = 2;
  auto& a = add("a");
  a.on_encode_data = [](buffer::Buffer&, bool) { return FilterDataStatus::StopIterationAndBuffer; };
  fm.decodeHeaders(request(), true);
  fm.encodeHeaders(response(), false);
  encodeData("abc", false);
  EXPECT_EQ(log.back(), "overflow.encode");
}

TEST_F(FilterManagerTest, EncoderHeadersStopThenContinueSendsHeadersThenBody) {
  auto& a = add("a");
  a.on_encode_headers = [](HeaderMap& h, bool) {
    h.set("x-seen", "1");
    return FilterHeadersStatus::StopIteration;
  };
  a.on_encode_data = [](buffer::Buffer&, bool) { return FilterDataStatus::StopIterationAndBuffer; };
  fm.decodeHeaders(request(), true);
  fm.encodeHeaders(response(201), false);
  encodeData("body", true);
  EXPECT_EQ(std::count(log.begin(), log.end(), "codec.h201"), 0);
  EXPECT_FALSE(fm.responseHeadersSent());
  a.encoder_callbacks->continueEncoding();
  EXPECT_EQ(log, (Log{"a.dh!", "a.eh", "a.ed(body)!", "codec.h201", "codec.d(body)!"}));
  EXPECT_EQ(fm.responseHeaders()->getValue("x-seen"), "1");
  EXPECT_TRUE(fm.responseHeadersSent());
}

TEST_F(FilterManagerTest, StoppedDecodingIgnoresFurtherRequestEvents) {
  add("a");
  fm.decodeHeaders(request(), false);
  fm.stopDecoding();
  decodeData("late", true);
  fm.decodeTrailers(std::make_unique<HeaderMap>());
  EXPECT_EQ(log, (Log{"a.dh"}));
}

TEST_F(FilterManagerTest, DestroyCallsEachFilterOnceAndEndsEncoding) {
  auto& a = add("a");
  auto& b = add("b");
  fm.decodeHeaders(request(), true);
  fm.destroyFilters();
  fm.destroyFilters();
  EXPECT_EQ(a.destroyed, 1);
  EXPECT_EQ(b.destroyed, 1);
  fm.encodeHeaders(response(), true);
  EXPECT_EQ(log, (Log{"a.dh!", "b.dh!"}));
}

TEST_F(FilterManagerTest, DiscardUnsentResponseLetsALocalReplyStartOver) {
  auto& a = add("a");
  a.on_encode_headers = [](HeaderMap& h, bool) {
    return h.status() == 200 ? FilterHeadersStatus::StopIteration : FilterHeadersStatus::Continue;
  };
  fm.decodeHeaders(request(), true);
  fm.encodeHeaders(response(200), false);
  fm.discardUnsentResponse();
  fm.encodeHeaders(response(500), true);
  EXPECT_EQ(log.back(), "codec.h500!");
}

TEST_F(FilterManagerTest, DownstreamWatermarksReachRegisteredCallbacks) {
  struct Recorder : DownstreamWatermarkCallbacks {
    void onAboveWriteBufferHighWatermark() override { events.push_back("high"); }
    void onBelowWriteBufferLowWatermark() override { events.push_back("low"); }
    std::vector<std::string> events;
  } recorder;
  auto& a = add("a");
  a.decoder_callbacks->addDownstreamWatermarkCallbacks(recorder);
  fm.onDownstreamWatermark(true);
  fm.onDownstreamWatermark(false);
  a.decoder_callbacks->removeDownstreamWatermarkCallbacks(recorder);
  fm.onDownstreamWatermark(true);
  EXPECT_EQ(recorder.events, (std::vector<std::string>{"high", "low"}));
  a.decoder_callbacks->onDecoderFilterAboveWriteBufferHighWatermark();
  EXPECT_EQ(log.back(), "upstream.high");
}

}  // namespace
}  // namespace courier::http
