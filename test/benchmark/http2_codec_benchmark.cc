// A GET round trip through the HTTP/2 client and server codecs wired back to
// back (no sockets): request headers encoded, framed, HPACK-decoded on the
// server, response headers + small body back to the client. ns per request.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "source/common/buffer/buffer.h"
#include "source/common/http/http2/client_codec.h"
#include "source/common/http/http2/codec.h"

namespace {

using namespace courier;

class Decoder : public http::ResponseDecoder {
 public:
  void decodeHeaders(http::HeaderMapPtr headers, bool end_stream) override {
    headers_ = std::move(headers);
    done_ = end_stream;
  }
  void decodeData(buffer::Buffer& data, bool end_stream) override {
    bytes_ += data.length();
    done_ = end_stream;
  }
  void decodeTrailers(http::HeaderMapPtr) override { done_ = true; }
  void decode1xxHeaders(http::HeaderMapPtr) override {}
  http::HeaderMapPtr headers_;
  size_t bytes_ = 0;
  bool done_ = false;
};

class Server : public http::ServerConnectionCallbacks {
 public:
  http::StreamDecoder& newStream(http::ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    return decoder_;
  }
  http::ResponseEncoder* encoder_ = nullptr;
  Decoder decoder_;
};

void BM_Http2GetRoundTrip(benchmark::State& state) {
  buffer::Buffer to_server;
  buffer::Buffer to_client;
  Server server_cb;
  http::http2::ServerConnection server(server_cb, to_client);
  http::http2::ClientConnection client(to_server);
  // Connection prefaces and SETTINGS exchange.
  for (int i = 0; i < 4; ++i) {
    (void)server.dispatch(to_server);
    (void)client.dispatch(to_client);
  }
  const http::RequestHeaderMap request{{":method", "GET"},
                                       {":path", "/api/v1/items?id=42"},
                                       {":scheme", "http"},
                                       {":authority", "service.default.svc.cluster.local"},
                                       {"user-agent", "curl/8.5.0"},
                                       {"accept", "*/*"},
                                       {"x-request-id", "3e1c6a4e-2f1b-4b8e-9f0e-6a1d2c3b4a59"}};
  const http::ResponseHeaderMap response{
      {":status", "200"}, {"content-type", "application/json"}, {"content-length", "9"}};
  Decoder client_decoder;
  for (auto _ : state) {
    client_decoder.done_ = false;
    http::RequestEncoder& req = client.newStream(client_decoder);
    req.encodeHeaders(request, true);
    if (server.dispatch(to_server)) state.SkipWithError("server dispatch failed");
    server_cb.encoder_->encodeHeaders(response, false);
    buffer::Buffer body;
    body.add("{\"id\":42}");
    server_cb.encoder_->encodeData(body, true);
    if (client.dispatch(to_client)) state.SkipWithError("client dispatch failed");
    if (!client_decoder.done_) state.SkipWithError("response incomplete");
    // Window updates and the like go back so neither side builds up state.
    if (!to_server.empty() && server.dispatch(to_server)) state.SkipWithError("server dispatch failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Http2GetRoundTrip);

}  // namespace

BENCHMARK_MAIN();
