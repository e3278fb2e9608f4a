#include "source/common/http/http2/client_codec.h"

namespace courier::http::http2 {

ClientConnection::ClientConnection(buffer::Buffer& output, const Http2Settings& settings,
                                   ClientConnectionCallbacks* callbacks)
    : Connection(output, settings, /*server=*/false), callbacks_(callbacks) {
  start(nullptr);
}

RequestEncoder& ClientConnection::newStream(ResponseDecoder& decoder) {
  return addStream(&decoder);
}

uint32_t ClientConnection::maxConcurrentStreams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

void ClientConnection::onGoAway(uint32_t last_stream_id, uint32_t error_code,
                                const std::vector<CodecStream*>& unprocessed) {
  if (callbacks_ == nullptr) return;
  std::vector<RequestEncoder*> encoders(unprocessed.begin(), unprocessed.end());
  callbacks_->onGoAway(last_stream_id, error_code, encoders);
}

}  // namespace courier::http::http2
