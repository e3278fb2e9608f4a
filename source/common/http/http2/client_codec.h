// HTTP/2 CLIENT (upstream) codec over nghttp2: newStream() per request, many
// at once on one connection (nghttp2 holds requests beyond the server's
// SETTINGS_MAX_CONCURRENT_STREAMS until a slot frees); bytes in through
// dispatch(), ResponseDecoder calls out. GOAWAY is reported so a pool can stop
// using the connection and retry the streams the server never processed.
#pragma once

#include <cstdint>
#include <vector>

#include "source/common/buffer/buffer.h"
#include "source/common/http/codec.h"
#include "source/common/http/http2/connection.h"
#include "source/common/http/http2/settings.h"

namespace courier::http::http2 {

class ClientConnectionCallbacks {
 public:
  virtual ~ClientConnectionCallbacks() = default;
  // The server sent GOAWAY: open no more streams here. unprocessed are the
  // streams above last_stream_id (safe to retry elsewhere); each of them then
  // sees onResetStream(RemoteRefusedStreamReset).
  virtual void onGoAway(uint32_t last_stream_id, uint32_t error_code,
                        const std::vector<RequestEncoder*>& unprocessed) = 0;
};

class ClientConnection : public Connection {
 public:
  // Writes the client preface (magic + SETTINGS) into output at once.
  ClientConnection(buffer::Buffer& output, const Http2Settings& settings = {},
                   ClientConnectionCallbacks* callbacks = nullptr);

  // Starts a stream whose response goes to decoder. The encoder belongs to
  // the codec: valid until the stream completes or its onResetStream().
  RequestEncoder& newStream(ResponseDecoder& decoder);

  // The server's SETTINGS_MAX_CONCURRENT_STREAMS (nghttp2's assumption, 100,
  // until the server's SETTINGS arrived).
  uint32_t maxConcurrentStreams() const;
  // The server's first SETTINGS arrived, so maxConcurrentStreams() is its own
  // limit rather than an assumption.
  bool remoteSettingsReceived() const { return remote_settings_received_; }
  bool goAwayReceived() const { return goaway_received_; }
  uint32_t goAwayLastStreamId() const { return goaway_last_stream_id_; }

 private:
  void onGoAway(uint32_t last_stream_id, uint32_t error_code,
                const std::vector<CodecStream*>& unprocessed) override;

  ClientConnectionCallbacks* callbacks_;
};

}  // namespace courier::http::http2
