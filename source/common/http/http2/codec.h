// HTTP/2 SERVER (downstream) codec over nghttp2: bytes in through dispatch(),
// one ServerConnectionCallbacks::newStream() per request stream the client
// opens and StreamDecoder calls on it; ResponseEncoder calls in, frames out
// into the output buffer. No sockets. The shared machinery is Connection.
#pragma once

#include "source/common/buffer/buffer.h"
#include "source/common/http/codec.h"
#include "source/common/http/http2/connection.h"
#include "source/common/http/http2/settings.h"

namespace courier::http::http2 {

class ServerConnection : public Connection {
 public:
  // Writes our SETTINGS into output at once (the server preface).
  ServerConnection(ServerConnectionCallbacks& callbacks, buffer::Buffer& output,
                   const Http2Settings& settings = {});

  // First half of a graceful drain: GOAWAY with the maximum stream id, so the
  // client stops opening streams while those in flight still land; follow
  // with goAway() after a round trip.
  void shutdownNotice();
};

}  // namespace courier::http::http2
