#include "source/common/http/http2/codec.h"

namespace courier::http::http2 {

ServerConnection::ServerConnection(ServerConnectionCallbacks& callbacks, buffer::Buffer& output,
                                   const Http2Settings& settings)
    : Connection(output, settings, /*server=*/true) {
  start(&callbacks);
}

void ServerConnection::shutdownNotice() {
  if (error()) return;
  nghttp2_submit_shutdown_notice(session_);
  flushOutput();
}

}  // namespace courier::http::http2
