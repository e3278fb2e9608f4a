// Parse + encode of a typical small GET request/response through the HTTP/1
// server codec (no sockets): ns per request.
#include <benchmark/benchmark.h>

#include <memory>

#include "source/common/buffer/buffer.h"
#include "source/common/http/http1/codec.h"

namespace {

using namespace courier;

class Decoder : public http::StreamDecoder {
 public:
  void decodeHeaders(http::HeaderMapPtr headers, bool) override { headers_ = std::move(headers); }
  void decodeData(buffer::Buffer&, bool) override {}
  void decodeTrailers(http::HeaderMapPtr) override {}
  http::HeaderMapPtr headers_;
};

class Callbacks : public http::ServerConnectionCallbacks {
 public:
  http::StreamDecoder& newStream(http::ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    return decoder_;
  }
  http::ResponseEncoder* encoder_ = nullptr;
  Decoder decoder_;
};

constexpr std::string_view kRequest =
    "GET /api/v1/items?id=42 HTTP/1.1\r\n"
    "Host: service.default.svc.cluster.local\r\n"
    "User-Agent: curl/8.5.0\r\n"
    "Accept: */*\r\n"
    "X-Request-Id: 3e1c6a4e-2f1b-4b8e-9f0e-6a1d2c3b4a59\r\n"
    "\r\n";

void BM_Http1ServerGetRoundTrip(benchmark::State& state) {
  Callbacks cb;
  buffer::Buffer output;
  http::http1::ServerConnection codec(cb, output);
  buffer::Buffer input;
  const std::string body = "{\"id\":42}";
  for (auto _ : state) {
    input.add(kRequest);
    auto err = codec.dispatch(input);
    if (err) state.SkipWithError("dispatch failed");
    http::ResponseHeaderMap response{{":status", "200"},
                                     {"content-type", "application/json"},
                                     {"content-length", "9"}};
    cb.encoder_->encodeHeaders(response, false);
    buffer::Buffer data;
    data.add(body);
    cb.encoder_->encodeData(data, true);
    benchmark::DoNotOptimize(output.length());
    output.drain(output.length());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Http1ServerGetRoundTrip);

void BM_HeaderMapBuild(benchmark::State& state) {
  for (auto _ : state) {
    http::RequestHeaderMap h;
    h.add(":method", "GET");
    h.add(":path", "/api/v1/items?id=42");
    h.add(":authority", "service.default.svc.cluster.local");
    h.add("user-agent", "curl/8.5.0");
    h.add("accept", "*/*");
    h.add("x-request-id", "3e1c6a4e-2f1b-4b8e-9f0e-6a1d2c3b4a59");
    benchmark::DoNotOptimize(h.host());
  }
}
BENCHMARK(BM_HeaderMapBuild);

}  // namespace

BENCHMARK_MAIN();
