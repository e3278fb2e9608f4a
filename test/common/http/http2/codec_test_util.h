// Test doubles for the HTTP/2 codec tests: recording decoders and stream
// callbacks, a server side that records every stream it is handed, and a
// client<->server pair wired through two buffers (no sockets).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/buffer/buffer.h"
#include "source/common/http/codec.h"
#include "source/common/http/http2/client_codec.h"
#include "source/common/http/http2/codec.h"

namespace courier::http::http2::test {

class RecordingDecoder : public ResponseDecoder {
 public:
  void decodeHeaders(HeaderMapPtr headers, bool end_stream) override {
    headers_ = std::move(headers);
    end_stream_ = end_stream;
    if (on_headers) on_headers();
  }
  void decodeData(buffer::Buffer& data, bool end_stream) override {
    body_ += data.toString();
    data.drain(data.length());
    end_stream_ = end_stream;
  }
  void decodeTrailers(HeaderMapPtr trailers) override {
    trailers_ = std::move(trailers);
    end_stream_ = true;
  }
  void decode1xxHeaders(HeaderMapPtr headers) override { informational_.push_back(std::move(headers)); }

  std::function<void()> on_headers;
  HeaderMapPtr headers_;
  HeaderMapPtr trailers_;
  std::vector<HeaderMapPtr> informational_;
  std::string body_;
  bool end_stream_ = false;
};

class RecordingStreamCallbacks : public StreamCallbacks {
 public:
  void onResetStream(StreamResetReason reason, std::string_view details) override {
    ++resets_;
    reason_ = reason;
    details_ = std::string(details);
  }
  void onAboveWriteBufferHighWatermark() override { ++high_; }
  void onBelowWriteBufferLowWatermark() override { ++low_; }

  int resets_ = 0;
  std::optional<StreamResetReason> reason_;
  std::string details_;
  int high_ = 0;
  int low_ = 0;
};

// One request stream as the server's owner sees it.
struct ServerStream {
  ResponseEncoder* encoder = nullptr;
  RecordingDecoder decoder;
  RecordingStreamCallbacks callbacks;
};

class RecordingServer : public ServerConnectionCallbacks {
 public:
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    streams_.push_back(std::make_unique<ServerStream>());
    ServerStream& s = *streams_.back();
    s.encoder = &encoder;
    encoder.getStream()->addCallbacks(s.callbacks);
    if (on_new_stream) on_new_stream(s);
    return s.decoder;
  }
  std::function<void(ServerStream&)> on_new_stream;
  std::vector<std::unique_ptr<ServerStream>> streams_;
};

// One request stream as the client's owner sees it.
struct ClientStream {
  RequestEncoder* encoder = nullptr;
  RecordingDecoder decoder;
  RecordingStreamCallbacks callbacks;
};

class RecordingGoAway : public ClientConnectionCallbacks {
 public:
  void onGoAway(uint32_t last_stream_id, uint32_t error_code,
                const std::vector<RequestEncoder*>& unprocessed) override {
    ++goaways_;
    last_stream_id_ = last_stream_id;
    error_code_ = error_code;
    unprocessed_ = unprocessed;
  }
  int goaways_ = 0;
  uint32_t last_stream_id_ = 0;
  uint32_t error_code_ = 0;
  std::vector<RequestEncoder*> unprocessed_;
};

// A client and a server codec talking through two buffers.
class CodecPair {
 public:
  explicit CodecPair(const Http2Settings& server_settings = {},
                     const Http2Settings& client_settings = {})
      : server_(server_callbacks_, to_client_, server_settings),
        client_(to_server_, client_settings, &goaway_) {}

  // Moves bytes both ways until both directions are quiet (or the budget runs
  // out); fails the test on a codec error.
  void pump(int max_rounds = 100000) {
    for (int i = 0; i < max_rounds && (!to_server_.empty() || !to_client_.empty()); ++i) {
      if (!to_server_.empty()) {
        DispatchResult r = server_.dispatch(to_server_);
        ASSERT_FALSE(r.has_value()) << r->details << ": " << r->message;
      }
      if (!to_client_.empty()) {
        DispatchResult r = client_.dispatch(to_client_);
        ASSERT_FALSE(r.has_value()) << r->details << ": " << r->message;
      }
    }
  }

  ClientStream& startRequest(const HeaderMap& headers, bool end_stream) {
    client_streams_.push_back(std::make_unique<ClientStream>());
    ClientStream& s = *client_streams_.back();
    s.encoder = &client_.newStream(s.decoder);
    s.encoder->getStream()->addCallbacks(s.callbacks);
    s.encoder->encodeHeaders(headers, end_stream);
    return s;
  }

  static RequestHeaderMap get(std::string_view path = "/") {
    return RequestHeaderMap{{":method", "GET"}, {":path", path}, {":scheme", "http"},
                            {":authority", "example.com"}};
  }

  buffer::Buffer to_server_;
  buffer::Buffer to_client_;
  RecordingServer server_callbacks_;
  RecordingGoAway goaway_;
  ServerConnection server_;
  ClientConnection client_;
  std::vector<std::unique_ptr<ClientStream>> client_streams_;
};

}  // namespace courier::http::http2::test
