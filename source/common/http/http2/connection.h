// The part of the HTTP/2 codec both directions share, over nghttp2's session
// API without its socket I/O: bytes in through dispatch() (nghttp2_session_mem_recv),
// frames out into the owner's output buffer (nghttp2_session_mem_send), many
// streams per connection, flow control that follows the owner's consumption,
// and Envoy's flood protections. ServerConnection and ClientConnection add the
// direction-specific entry points.
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/common/buffer/buffer.h"
#include "source/common/http/codec.h"
#include "source/common/http/header_map.h"
#include "source/common/http/http2/settings.h"

namespace courier::http::http2 {

// Response code details for connection-level failures (the flood names are
// Envoy's stat names for them).
namespace codec_details {
inline constexpr std::string_view kCodecError = "http2.codec_error";
inline constexpr std::string_view kOutboundFlood = "http2.outbound_flood";
inline constexpr std::string_view kOutboundControlFlood = "http2.outbound_control_flood";
inline constexpr std::string_view kInboundEmptyFramesFlood = "http2.inbound_empty_frames_flood";
inline constexpr std::string_view kInboundPriorityFramesFlood = "http2.inbound_priority_frames_flood";
inline constexpr std::string_view kInboundWindowUpdateFramesFlood =
    "http2.inbound_window_update_frames_flood";
inline constexpr std::string_view kPrematureResets = "http2.too_many_premature_resets";
}  // namespace codec_details

// Counters named as Envoy's http2.* codec stats.
struct Http2Stats {
  uint64_t rx_reset = 0;
  uint64_t tx_reset = 0;
  uint64_t goaway_sent = 0;
  uint64_t header_overflow = 0;
  uint64_t rx_messaging_error = 0;
  uint64_t inbound_empty_frames_flood = 0;
  uint64_t inbound_priority_frames_flood = 0;
  uint64_t inbound_window_update_frames_flood = 0;
  uint64_t outbound_flood = 0;
  uint64_t outbound_control_flood = 0;
  uint64_t rx_premature_reset_flood = 0;
};

class Connection;

// One HTTP/2 stream: the encoder the owner writes into and the state the codec
// keeps for it. Owned by its Connection; valid until onResetStream() or until
// both directions ended (then freed on the next dispatch()).
//
// Flow control: body bytes handed to decodeData() count as consumed (the
// window reopens) when decodeData() returns, unless the stream is
// read-disabled; then they are acknowledged only on the last readDisable(false).
// Encoded body bytes wait here until the peer's window takes them; above
// Http2Settings::stream_buffer_limit the stream's callbacks see the high
// watermark, at half of it the low one.
//
// resetStream() codes: LocalRefusedStreamReset -> REFUSED_STREAM,
// ProtocolError -> PROTOCOL_ERROR, Overflow -> FLOW_CONTROL_ERROR, anything
// else -> CANCEL. The owner's own callbacks see the reset at once.
class CodecStream : public ResponseEncoder, public Stream {
 public:
  CodecStream(Connection& conn, ResponseDecoder* response_decoder)
      : conn_(conn), response_decoder_(response_decoder), decoder_(response_decoder) {}
  ~CodecStream() override;

  void encodeHeaders(const HeaderMap& headers, bool end_stream) override;
  void encodeData(buffer::Buffer& data, bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  void encode100ContinueHeaders() override;
  Stream* getStream() override { return this; }

  void addCallbacks(StreamCallbacks& callbacks) override { callbacks_.push_back(&callbacks); }
  void removeCallbacks(StreamCallbacks& callbacks) override;
  void resetStream(StreamResetReason reason) override;
  void readDisable(bool disable) override;

  // HTTP/2 stream id (-1 on the client until the headers are encoded).
  int32_t id() const { return id_; }
  // Encoded body bytes still waiting for the peer's flow-control window.
  size_t pendingSendBytes() const { return pending_send_.length(); }
  // Received body bytes delivered but not yet acknowledged (read-disabled).
  size_t unconsumedBytes() const { return unconsumed_; }

 private:
  friend class Connection;

  void notifyReset(StreamResetReason reason, std::string_view details);
  void checkLowWatermark();
  bool live() const { return !closed_ && !reset_notified_; }

  Connection& conn_;
  ResponseDecoder* response_decoder_;  // client side; 1xx headers go here
  StreamDecoder* decoder_;
  int32_t id_ = -1;
  absl::InlinedVector<StreamCallbacks*, 2> callbacks_;
  std::list<std::unique_ptr<CodecStream>>::iterator self_;

  // Decode state.
  HeaderMapPtr headers_;
  std::string cookie_;  // RFC 9113 8.2.3: crumbs are joined with "; " for HTTP/1 peers
  size_t header_bytes_ = 0;
  bool final_headers_received_ = false;
  bool remote_end_ = false;
  buffer::Buffer recv_body_;
  size_t frame_data_bytes_ = 0;
  uint32_t read_disable_count_ = 0;
  size_t unconsumed_ = 0;

  // Encode state.
  bool headers_encoded_ = false;
  bool local_end_ = false;  // END_STREAM was queued to nghttp2
  bool send_end_ = false;   // the owner finished the body
  bool data_deferred_ = false;
  bool above_high_watermark_ = false;
  buffer::Buffer pending_send_;
  HeaderMapPtr trailers_;

  // Termination.
  std::chrono::steady_clock::time_point opened_;  // server side: for premature resets
  bool closed_ = false;
  bool reset_notified_ = false;
  bool remote_reset_ = false;
  uint32_t remote_reset_code_ = 0;
  bool overflow_ = false;
  bool protocol_error_ = false;
};

class Connection {
 public:
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Output contract: only the codec appends to the output buffer and the
  // owner drains it from the front as the socket takes bytes; frames still in
  // it count toward max_outbound_frames / max_outbound_control_frames. An
  // outbound flood found while the owner encodes shows in error() and in the
  // next dispatch().
  //
  // Feeds input to nghttp2 and drains what it consumed; then writes the
  // frames it produced into the output buffer. Returns a CodecError once the
  // connection is dead (malformed frames, a flood, a GOAWAY we sent for a
  // protocol error); afterwards every call returns the same error. The owner
  // then flushes the output (for GOAWAY) and closes.
  DispatchResult dispatch(buffer::Buffer& input);

  // Graceful shutdown: GOAWAY(NO_ERROR) naming the last stream the peer
  // opened that we processed; streams up to it finish, later ones are refused.
  void goAway();
  // The connection's socket closed: every live stream sees
  // onResetStream(ConnectionTermination); later calls read and write nothing.
  void onConnectionClosed();

  // nghttp2 neither wants to read nor write (GOAWAY exchanged and all
  // streams done, or a fatal error): the owner may close.
  bool wantsToClose() const;
  size_t activeStreams() const { return streams_.size(); }
  const std::optional<CodecError>& error() const { return error_; }
  const Http2Stats& stats() const { return stats_; }
  // Frames written to the output buffer that the owner has not drained yet.
  size_t outboundFramesQueued();

 protected:
  Connection(buffer::Buffer& output, const Http2Settings& settings, bool server);
  // Creates the session, sends our SETTINGS (and the client magic).
  void start(ServerConnectionCallbacks* server_callbacks);
  CodecStream& addStream(ResponseDecoder* response_decoder);
  void freeClosedStreams() { closed_streams_.clear(); }
  void flushOutput() { flush(); }

  nghttp2_session* session_ = nullptr;
  const Http2Settings settings_;
  const bool server_;
  bool goaway_received_ = false;
  // The peer's first SETTINGS frame arrived (its limits are known).
  bool remote_settings_received_ = false;
  uint32_t goaway_last_stream_id_ = 0;
  uint32_t goaway_error_code_ = 0;
  // Client side: called when a GOAWAY arrives, before the unprocessed streams
  // are reset; unprocessed are the streams above last_stream_id.
  virtual void onGoAway(uint32_t /*last_stream_id*/, uint32_t /*error_code*/,
                        const std::vector<CodecStream*>& /*unprocessed*/) {}

 private:
  friend class CodecStream;
  struct Callbacks;  // nghttp2 callback trampolines

  void flush();
  void stampFrames();
  void releaseDrainedFrames();
  bool checkOutboundLimits();
  bool tooManyPrematureResets() const;
  void fail(std::string_view details, std::string message);
  bool flood(std::string_view details, uint64_t& stat);
  CodecStream* streamFor(int32_t stream_id);
  void closeStream(CodecStream& stream);
  void consume(CodecStream& stream, size_t n);
  void resumeData(CodecStream& stream);
  // nghttp2_nv arrays built from a header map; strips connection-specific
  // headers (RFC 9113 8.2.2) and pseudo-headers when trailers.
  using NvArray = absl::InlinedVector<nghttp2_nv, 16>;
  NvArray buildHeaders(const HeaderMap& headers, bool trailers, bool request);

  int onBeginFrame(const nghttp2_frame_hd& hd);
  int onBeginHeaders(const nghttp2_frame& frame);
  int onHeader(const nghttp2_frame& frame, std::string_view name, std::string_view value);
  int onFrameRecv(const nghttp2_frame& frame);
  int onHeadersComplete(CodecStream& stream, const nghttp2_frame& frame);
  int onDataChunk(int32_t stream_id, const uint8_t* data, size_t len);
  int onStreamClose(int32_t stream_id, uint32_t error_code);
  int onFrameSend(const nghttp2_frame& frame);
  int onFrameNotSend(const nghttp2_frame& frame, int lib_error);
  ssize_t onDataSourceRead(CodecStream& stream, uint8_t* buf, size_t length, uint32_t* flags);
  int onSendData(CodecStream& stream, const uint8_t* framehd, size_t length);

  buffer::Buffer& output_;
  ServerConnectionCallbacks* server_callbacks_ = nullptr;
  std::list<std::unique_ptr<CodecStream>> streams_;
  std::list<std::unique_ptr<CodecStream>> closed_streams_;
  std::optional<CodecError> error_;
  std::string last_error_message_;
  Http2Stats stats_;
  bool dispatching_ = false;
  bool flushing_ = false;
  bool flooded_ = false;  // stop writing: the peer is not reading
  bool goaway_error_sent_ = false;
  bool io_closed_ = false;  // onConnectionClosed(): the session is frozen

  // Outbound frame accounting: frames sit in output_ until the owner drains
  // them (the socket took them). Each entry is the byte offset (in total bytes
  // ever written) where the frame ends, and whether it is a control frame.
  struct OutboundFrame {
    uint64_t end;
    bool control;
  };
  std::deque<OutboundFrame> outbound_;
  uint64_t written_total_ = 0;
  uint64_t unstamped_ = 0;
  bool no_copy_frame_written_ = false;  // entries at the back still waiting for their end offset
  uint32_t outbound_frames_ = 0;
  uint32_t outbound_control_frames_ = 0;
  uint32_t queued_acks_ = 0;  // PING/SETTINGS ACKs nghttp2 owes but has not written

  // Inbound flood accounting.
  size_t frame_payload_ = 0;
  uint32_t consecutive_empty_frames_ = 0;
  uint64_t inbound_priority_frames_ = 0;
  uint64_t inbound_window_update_frames_ = 0;
  uint64_t inbound_streams_ = 0;
  uint64_t outbound_data_frames_ = 0;
  uint64_t premature_resets_ = 0;
};

}  // namespace courier::http::http2
