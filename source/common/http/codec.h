// Codec-neutral stream interfaces, shaped like Envoy's Http::StreamDecoder /
// StreamEncoder / ServerConnectionCallbacks. A codec turns bytes into calls on
// a StreamDecoder and calls on a StreamEncoder into bytes; it never touches a
// socket. Codec errors are values (CodecError) returned from dispatch().
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "source/common/buffer/buffer.h"
#include "source/common/http/header_map.h"

namespace courier::http {

enum class Protocol { Http10, Http11, Http2 };

// Envoy's response code details for HTTP/1 codec errors.
namespace details {
inline constexpr std::string_view kCodecError = "http1.codec_error";
inline constexpr std::string_view kHeadersTooLarge = "http1.headers_too_large";
inline constexpr std::string_view kTooManyHeaders = "http1.too_many_headers";
inline constexpr std::string_view kInvalidCharacters = "http1.invalid_characters";
inline constexpr std::string_view kInvalidUrl = "http1.invalid_url";
inline constexpr std::string_view kInvalidTransferEncoding = "http1.invalid_transfer_encoding";
inline constexpr std::string_view kChunkedContentLength =
    "http1.content_length_and_chunked_not_allowed";
inline constexpr std::string_view kTransferEncodingNotAllowed =
    "http1.transfer_encoding_not_allowed";
inline constexpr std::string_view kContentLengthNotAllowed = "http1.content_length_not_allowed";
// Not a codec detail in Envoy: the HCM's detail for a refused upgrade.
inline constexpr std::string_view kUpgradeFailed = "upgrade_failed";
}  // namespace details

struct CodecError {
  enum class Kind {
    Protocol,         // malformed / disallowed bytes: answer http_status and close
    UpgradeRefused,   // a well-formed Upgrade or CONNECT request we do not support
    PrematureResponse // client side: the upstream response was malformed or cut short
  };
  Kind kind = Kind::Protocol;
  int http_status = 400;  // 400, 413, 431, 501, 403 (upgrade), 503 (client side)
  std::string details;    // Envoy response code details, e.g. "http1.codec_error"
  std::string message;    // human-readable reason (llhttp's reason where it applies)
};

using DispatchResult = std::optional<CodecError>;  // nullopt == ok

// Why a stream ended before both directions completed (Envoy's
// Http::StreamResetReason, the subset a codec produces).
enum class StreamResetReason {
  LocalReset,                // the owner called resetStream()
  LocalRefusedStreamReset,   // the owner refused the stream (safe to retry)
  RemoteReset,               // the peer sent RST_STREAM
  RemoteRefusedStreamReset,  // the peer refused it (RST_STREAM REFUSED_STREAM, or above GOAWAY's last id)
  ProtocolError,             // the stream's frames or headers broke the protocol
  ConnectionTermination,     // the connection closed or failed under the stream
  Overflow,                  // a codec buffer or limit overflowed
};

// Envoy's names for the reasons (as in %UPSTREAM_TRANSPORT_FAILURE_REASON% etc.).
inline std::string_view resetReasonToString(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::LocalReset: return "local reset";
    case StreamResetReason::LocalRefusedStreamReset: return "local refused stream reset";
    case StreamResetReason::RemoteReset: return "remote reset";
    case StreamResetReason::RemoteRefusedStreamReset: return "remote refused stream reset";
    case StreamResetReason::ProtocolError: return "protocol error";
    case StreamResetReason::ConnectionTermination: return "connection termination";
    case StreamResetReason::Overflow: return "overflow";
  }
  return "unknown";
}

// Stream lifecycle events for the owner of a stream (the HCM's ActiveStream,
// the router's upstream request). Multiplexing codecs (HTTP/2) raise them; the
// HTTP/1 codecs do not (a reset there is a connection close).
class StreamCallbacks {
 public:
  virtual ~StreamCallbacks() = default;
  // The stream is gone: the encoder and decoder must not be used afterwards.
  virtual void onResetStream(StreamResetReason reason, std::string_view details) = 0;
  // Data encoded on the stream is buffered in the codec above its limit
  // (the peer's flow-control window is closed): stop reading the source.
  virtual void onAboveWriteBufferHighWatermark() {}
  // ... and has drained below half the limit again.
  virtual void onBelowWriteBufferLowWatermark() {}
};

// Per-stream controls of a multiplexing codec, reached through
// StreamEncoder::getStream().
class Stream {
 public:
  virtual ~Stream() = default;
  virtual void addCallbacks(StreamCallbacks& callbacks) = 0;
  virtual void removeCallbacks(StreamCallbacks& callbacks) = 0;
  // Ends the stream now (RST_STREAM); the stream's callbacks see onResetStream
  // with this reason.
  virtual void resetStream(StreamResetReason reason) = 0;
  // Counted: while disabled (more disables than enables), received body bytes
  // are still delivered but not acknowledged to the peer, so its flow-control
  // window closes and it stops sending.
  virtual void readDisable(bool disable) = 0;
};

// Receives a decoded stream (a request on the server side, a response on the
// client side). end_stream marks the last call for the stream.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  virtual void decodeHeaders(HeaderMapPtr headers, bool end_stream) = 0;
  // data is drained by the callee or left; the codec clears it after the call.
  virtual void decodeData(buffer::Buffer& data, bool end_stream) = 0;
  // Trailers always end the stream.
  virtual void decodeTrailers(HeaderMapPtr trailers) = 0;
};

using RequestDecoder = StreamDecoder;

class ResponseDecoder : public StreamDecoder {
 public:
  // A 1xx informational response (100 Continue etc.) before the final one.
  virtual void decode1xxHeaders(HeaderMapPtr headers) = 0;
};

// Encodes a stream into the codec's output buffer.
class StreamEncoder {
 public:
  virtual ~StreamEncoder() = default;
  virtual void encodeHeaders(const HeaderMap& headers, bool end_stream) = 0;
  // Moves data out of the buffer (it is drained).
  virtual void encodeData(buffer::Buffer& data, bool end_stream) = 0;
  // Trailers end the stream.
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  // Per-stream controls, or nullptr for codecs without them (HTTP/1).
  virtual Stream* getStream() { return nullptr; }
};

using RequestEncoder = StreamEncoder;

class ResponseEncoder : public StreamEncoder {
 public:
  // Writes "HTTP/1.1 100 Continue\r\n\r\n" (the codec never sends it by itself).
  virtual void encode100ContinueHeaders() = 0;
};

class ServerConnectionCallbacks {
 public:
  virtual ~ServerConnectionCallbacks() = default;
  // A new request's headers arrived; return the decoder for it. The encoder
  // belongs to the codec and stays valid until the response is complete and
  // the next request starts (or the codec is destroyed).
  virtual RequestDecoder& newStream(ResponseEncoder& response_encoder) = 0;
};

}  // namespace courier::http
