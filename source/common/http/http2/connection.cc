#include "source/common/http/http2/connection.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace courier::http::http2 {

namespace {

std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// RFC 9113 8.2.2: connection-specific fields must not appear in HTTP/2.
bool isConnectionSpecific(std::string_view key) {
  return key == "connection" || key == "keep-alive" || key == "proxy-connection" ||
         key == "transfer-encoding" || key == "upgrade";
}

nghttp2_nv makeNv(std::string_view key, std::string_view value) {
  // nghttp2 copies names and values at submit time (no NO_COPY flags), so the
  // header map may go away as soon as the encode call returns.
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(key.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), key.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

uint32_t resetCode(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::LocalRefusedStreamReset:
      return NGHTTP2_REFUSED_STREAM;
    case StreamResetReason::ProtocolError:
      return NGHTTP2_PROTOCOL_ERROR;
    case StreamResetReason::Overflow:
      return NGHTTP2_FLOW_CONTROL_ERROR;
    default:
      return NGHTTP2_CANCEL;  // "the stream is no longer needed" (RFC 9113 7)
  }
}

bool isControlFrame(uint8_t type) {
  return type != NGHTTP2_DATA && type != NGHTTP2_HEADERS && type != NGHTTP2_CONTINUATION &&
         type != NGHTTP2_PUSH_PROMISE;
}

constexpr uint64_t kUnstamped = UINT64_MAX;

}  // namespace

// ---------------------------------------------------------------------------
// nghttp2 callback trampolines.

struct Connection::Callbacks {
  static Connection& self(void* p) { return *static_cast<Connection*>(p); }

  static int onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* u) {
    return self(u).onBeginFrame(*hd);
  }
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* u) {
    return self(u).onBeginHeaders(*f);
  }
  static int onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t, void* u) {
    return self(u).onHeader(*f, view(name, namelen), view(value, valuelen));
  }
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* u) {
    return self(u).onFrameRecv(*f);
  }
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* u) {
    return self(u).onDataChunk(id, data, len);
  }
  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t code, void* u) {
    return self(u).onStreamClose(id, code);
  }
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* f, void* u) {
    return self(u).onFrameSend(*f);
  }
  static int onFrameNotSend(nghttp2_session*, const nghttp2_frame* f, int err, void* u) {
    return self(u).onFrameNotSend(*f, err);
  }
  static int onInvalidFrameRecv(nghttp2_session*, const nghttp2_frame* f, int err, void* u) {
    Connection& c = self(u);
    c.last_error_message_ = nghttp2_strerror(err);
    if (f->hd.type == NGHTTP2_HEADERS) ++c.stats_.rx_messaging_error;
    if (CodecStream* s = c.streamFor(f->hd.stream_id)) s->protocol_error_ = true;
    return 0;
  }
  static int onError(nghttp2_session*, int, const char* msg, size_t len, void* u) {
    self(u).last_error_message_.assign(msg, len);
    return 0;
  }
  static ssize_t onDataSourceRead(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                  uint32_t* flags, nghttp2_data_source* source, void* u) {
    return self(u).onDataSourceRead(*static_cast<CodecStream*>(source->ptr), buf, length, flags);
  }

  static int onSendData(nghttp2_session*, nghttp2_frame*, const uint8_t* framehd, size_t length,
                        nghttp2_data_source* source, void* u) {
    return self(u).onSendData(*static_cast<CodecStream*>(source->ptr), framehd, length);
  }

  static nghttp2_session_callbacks* make() {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, onBeginFrame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cb, onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, onStreamClose);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, onFrameSend);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, onFrameNotSend);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, onInvalidFrameRecv);
    nghttp2_session_callbacks_set_error_callback2(cb, onError);
    nghttp2_session_callbacks_set_send_data_callback(cb, onSendData);
    return cb;
  }
};

// ---------------------------------------------------------------------------
// CodecStream

CodecStream::~CodecStream() = default;

void CodecStream::encodeHeaders(const HeaderMap& headers, bool end_stream) {
  if (!live() || headers_encoded_) return;
  headers_encoded_ = true;
  Connection& c = conn_;
  Connection::NvArray nva = c.buildHeaders(headers, /*trailers=*/false, /*request=*/!c.server_);
  nghttp2_data_provider provider;
  provider.source.ptr = this;
  provider.read_callback = Connection::Callbacks::onDataSourceRead;
  const nghttp2_data_provider* prd = end_stream ? nullptr : &provider;
  if (end_stream) local_end_ = send_end_ = true;
  if (c.server_) {
    if (nghttp2_submit_response(c.session_, id_, nva.data(), nva.size(), prd) != 0) {
      resetStream(StreamResetReason::ProtocolError);
      return;
    }
  } else {
    const int32_t id = nghttp2_submit_request(c.session_, nullptr, nva.data(), nva.size(), prd, this);
    if (id < 0) {
      // The session cannot open streams any more (GOAWAY, ids exhausted).
      closed_ = true;
      notifyReset(StreamResetReason::ConnectionTermination, nghttp2_strerror(id));
      c.closeStream(*this);
      return;
    }
    id_ = id;
  }
  c.flush();
}

void CodecStream::encodeData(buffer::Buffer& data, bool end_stream) {
  if (!live() || !headers_encoded_ || send_end_) {
    data.drain(data.length());
    return;
  }
  pending_send_.move(data);
  send_end_ = end_stream;
  if (!above_high_watermark_ && pending_send_.length() > conn_.settings_.stream_buffer_limit) {
    above_high_watermark_ = true;
    for (StreamCallbacks* cb : callbacks_) cb->onAboveWriteBufferHighWatermark();
  }
  conn_.resumeData(*this);
  conn_.flush();
}

void CodecStream::encodeTrailers(const HeaderMap& trailers) {
  if (!live() || !headers_encoded_ || send_end_) return;
  trailers_ = std::make_unique<HeaderMap>(trailers);
  send_end_ = true;
  conn_.resumeData(*this);
  conn_.flush();
}

void CodecStream::encode100ContinueHeaders() {
  if (!live() || !conn_.server_ || headers_encoded_) return;
  nghttp2_nv nv = makeNv(headers::kStatus, "100");
  nghttp2_submit_headers(conn_.session_, NGHTTP2_FLAG_NONE, id_, nullptr, &nv, 1, nullptr);
  conn_.flush();
}

void CodecStream::removeCallbacks(StreamCallbacks& callbacks) {
  auto it = std::find(callbacks_.begin(), callbacks_.end(), &callbacks);
  if (it != callbacks_.end()) callbacks_.erase(it);
}

void CodecStream::resetStream(StreamResetReason reason) {
  if (!live()) return;
  notifyReset(reason, "http2.local_reset");
  if (id_ < 0) {
    closed_ = true;
    conn_.closeStream(*this);
    return;
  }
  nghttp2_submit_rst_stream(conn_.session_, NGHTTP2_FLAG_NONE, id_, resetCode(reason));
  conn_.flush();
}

void CodecStream::readDisable(bool disable) {
  if (disable) {
    ++read_disable_count_;
    return;
  }
  if (read_disable_count_ == 0) return;
  if (--read_disable_count_ == 0 && unconsumed_ > 0 && !closed_) {
    const size_t n = unconsumed_;
    unconsumed_ = 0;
    conn_.consume(*this, n);
    conn_.flush();
  }
}

void CodecStream::notifyReset(StreamResetReason reason, std::string_view details) {
  if (reset_notified_) return;
  reset_notified_ = true;
  // Copy: a callback may remove itself.
  absl::InlinedVector<StreamCallbacks*, 2> cbs = callbacks_;
  for (StreamCallbacks* cb : cbs) cb->onResetStream(reason, details);
}

void CodecStream::checkLowWatermark() {
  if (above_high_watermark_ && pending_send_.length() <= conn_.settings_.stream_buffer_limit / 2) {
    above_high_watermark_ = false;
    for (StreamCallbacks* cb : callbacks_) cb->onBelowWriteBufferLowWatermark();
  }
}

// ---------------------------------------------------------------------------
// Connection

Connection::Connection(buffer::Buffer& output, const Http2Settings& settings, bool server)
    : settings_(settings), server_(server), output_(output) {}

Connection::~Connection() {
  // Streams die with the session; their owners are told only through
  // onConnectionClosed(), which the owner calls before destroying us.
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void Connection::start(ServerConnectionCallbacks* server_callbacks) {
  server_callbacks_ = server_callbacks;
  nghttp2_session_callbacks* cb = Callbacks::make();
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  // Window updates follow what the owner consumed, not what nghttp2 parsed.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // nghttp2's own guard against ACKs piling up inside one mem_recv call.
  nghttp2_option_set_max_outbound_ack(opt, std::max<uint32_t>(1, settings_.max_outbound_control_frames));
  // We keep no RFC 7540 priority tree, so closed streams need not linger:
  // with a large max_concurrent_streams nghttp2 would otherwise retain every
  // closed stream of a long-lived connection.
  nghttp2_option_set_no_closed_streams(opt, 1);
  if (!server_) nghttp2_option_set_max_reserved_remote_streams(opt, 0);
  if (server_) {
    nghttp2_session_server_new2(&session_, cb, this, opt);
  } else {
    nghttp2_session_client_new2(&session_, cb, this, opt);
  }
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);

  std::vector<nghttp2_settings_entry> iv = {
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings_.hpack_table_size},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       std::clamp<uint32_t>(settings_.initial_stream_window_size, 65535, 2147483647)},
  };
  if (!server_) iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  if (server_ && settings_.allow_connect) iv.push_back({NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1});
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  const int32_t conn_window =
      std::clamp<uint32_t>(settings_.initial_connection_window_size, 65535, 2147483647);
  if (conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, conn_window);
  }
  flush();
}

CodecStream& Connection::addStream(ResponseDecoder* response_decoder) {
  streams_.push_back(std::make_unique<CodecStream>(*this, response_decoder));
  CodecStream& s = *streams_.back();
  s.self_ = std::prev(streams_.end());
  return s;
}

void Connection::closeStream(CodecStream& stream) {
  closed_streams_.splice(closed_streams_.end(), streams_, stream.self_);
}

CodecStream* Connection::streamFor(int32_t stream_id) {
  if (stream_id <= 0) return nullptr;
  return static_cast<CodecStream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
}

DispatchResult Connection::dispatch(buffer::Buffer& input) {
  if (error_) return error_;
  if (io_closed_) {
    input.drain(input.length());
    return std::nullopt;
  }
  freeClosedStreams();
  releaseDrainedFrames();

  dispatching_ = true;
  size_t consumed = 0;
  ssize_t rv = 0;
  // One window over every slice: a fixed 16-iovec window always starts at the
  // first slice, so input longer than 16 slices (a multi-MiB gRPC message read
  // in one go) stopped at the window's end and the loop spun forever.
  struct iovec small[16];
  std::vector<struct iovec> large;
  struct iovec* iov = small;
  if (input.sliceCount() > 16) {
    large.resize(input.sliceCount());
    iov = large.data();
  }
  // The iovecs point into input; nothing drains it until the loop ends.
  const int n = input.fillIovecs(iov, input.sliceCount() > 16 ? static_cast<int>(large.size()) : 16);
  for (int i = 0; i < n && rv >= 0; ++i) {
    rv = nghttp2_session_mem_recv(session_, static_cast<const uint8_t*>(iov[i].iov_base), iov[i].iov_len);
    if (rv >= 0) consumed += iov[i].iov_len;
  }
  dispatching_ = false;
  input.drain(std::min(consumed, input.length()));
  if (io_closed_) {
    // The owner closed the connection from inside a callback.
    input.drain(input.length());
    freeClosedStreams();
    return error_;
  }

  if (rv < 0) {
    if (!error_) {
      // nghttp2 declared the connection broken (bad preface, its own flood
      // limits, ...): tell the peer why, then fail.
      std::string msg = last_error_message_.empty() ? nghttp2_strerror(static_cast<int>(rv))
                                                    : last_error_message_;
      nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
      flush();
      fail(codec_details::kCodecError, std::move(msg));
    } else if (!flooded_) {
      // One of our inbound flood checks stopped parsing; the peer still reads.
      nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
      flush();
    }
  }
  flush();
  if (goaway_error_sent_ && !error_) {
    fail(codec_details::kCodecError,
         last_error_message_.empty() ? "protocol error: GOAWAY sent" : last_error_message_);
  }
  freeClosedStreams();
  return error_;
}

void Connection::fail(std::string_view details, std::string message) {
  if (error_) return;
  CodecError e;
  e.kind = CodecError::Kind::Protocol;
  e.http_status = server_ ? 400 : 503;
  e.details = std::string(details);
  e.message = std::move(message);
  error_ = std::move(e);
}

bool Connection::flood(std::string_view details, uint64_t& stat) {
  ++stat;
  // Outbound floods mean the peer is not reading: write nothing more.
  flooded_ = details == codec_details::kOutboundFlood || details == codec_details::kOutboundControlFlood;
  fail(details, std::string("flood detected: ") + std::string(details));
  return false;
}

void Connection::goAway() {
  if (error_) return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  flush();
}

void Connection::onConnectionClosed() {
  // Nothing goes in or out any more: nghttp2 still holds data providers that
  // point at the streams freed below.
  io_closed_ = true;
  // Copy the list: callbacks may reset other streams.
  std::vector<CodecStream*> live;
  for (auto& s : streams_) live.push_back(s.get());
  for (CodecStream* s : live) {
    if (s->closed_) continue;
    s->closed_ = true;
    s->notifyReset(StreamResetReason::ConnectionTermination, "http2.connection_closed");
    if (s->id_ > 0) nghttp2_session_set_stream_user_data(session_, s->id_, nullptr);
    closeStream(*s);
  }
}

bool Connection::wantsToClose() const {
  return error_.has_value() ||
         (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0);
}

void Connection::flush() {
  if (dispatching_ || flushing_ || flooded_ || io_closed_) return;
  flushing_ = true;
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      fail(codec_details::kCodecError, nghttp2_strerror(static_cast<int>(n)));
      break;
    }
    if (n == 0) break;
    output_.add(data, static_cast<size_t>(n));
    written_total_ += static_cast<uint64_t>(n);
    stampFrames();
    if (!checkOutboundLimits()) break;
  }
  stampFrames();
  flushing_ = false;
}

void Connection::stampFrames() {
  // on_frame_send fires inside mem_send for the frame whose bytes that call
  // returns, so a frame's end is known once those bytes are appended.
  for (auto it = outbound_.rbegin(); unstamped_ > 0 && it != outbound_.rend(); ++it) {
    if (it->end != kUnstamped) break;
    it->end = written_total_;
    --unstamped_;
  }
}

void Connection::releaseDrainedFrames() {
  // The owner drains output_ from the front as the socket takes bytes, so
  // everything before written_total_ - length() has left.
  const uint64_t drained = written_total_ - std::min<uint64_t>(written_total_, output_.length());
  while (!outbound_.empty() && outbound_.front().end != kUnstamped && outbound_.front().end <= drained) {
    if (outbound_.front().control) --outbound_control_frames_;
    --outbound_frames_;
    outbound_.pop_front();
  }
}

bool Connection::tooManyPrematureResets() const {
  return inbound_streams_ >= settings_.premature_reset_total_stream_count &&
         premature_resets_ * 2 > inbound_streams_;
}

size_t Connection::outboundFramesQueued() {
  releaseDrainedFrames();
  return outbound_frames_;
}

bool Connection::checkOutboundLimits() {
  if (flooded_) return false;
  if (outbound_frames_ > settings_.max_outbound_frames) {
    releaseDrainedFrames();
    if (outbound_frames_ > settings_.max_outbound_frames) {
      return flood(codec_details::kOutboundFlood, stats_.outbound_flood);
    }
  }
  if (outbound_control_frames_ + queued_acks_ > settings_.max_outbound_control_frames) {
    releaseDrainedFrames();
    if (outbound_control_frames_ + queued_acks_ > settings_.max_outbound_control_frames) {
      return flood(codec_details::kOutboundControlFlood, stats_.outbound_control_flood);
    }
  }
  return true;
}

void Connection::consume(CodecStream& stream, size_t n) {
  if (n == 0) return;
  if (stream.closed_ || stream.id_ <= 0) {
    nghttp2_session_consume_connection(session_, n);
  } else {
    nghttp2_session_consume(session_, stream.id_, n);
  }
}

void Connection::resumeData(CodecStream& stream) {
  if (stream.data_deferred_ && stream.id_ > 0) {
    stream.data_deferred_ = false;
    nghttp2_session_resume_data(session_, stream.id_);
  }
}

Connection::NvArray Connection::buildHeaders(const HeaderMap& headers, bool trailers,
                                                 bool request) {
  NvArray nva;
  bool has_scheme = false;
  bool has_authority = false;
  std::string_view host;
  const bool connect = request && headers.method() == "CONNECT";
  for (const HeaderEntry& e : headers) {
    std::string_view k = e.key();
    if (!k.empty() && k[0] == ':') {
      if (trailers) continue;
      if (k == headers::kScheme) {
        if (connect && headers.protocol().empty()) continue;  // RFC 9113 8.5
        has_scheme = true;
      }
      if (k == headers::kPath && connect && headers.protocol().empty()) continue;
      if (k == headers::kAuthority) has_authority = true;
      nva.push_back(makeNv(k, e.value()));
      continue;
    }
    if (isConnectionSpecific(k)) continue;
    if (k == "te" && !equalsIgnoreCase(e.value(), "trailers")) continue;
    if (k == "host") {
      // HTTP/2 carries the authority as :authority; keep host only if both.
      if (host.empty()) host = e.value();
      continue;
    }
    nva.push_back(makeNv(k, e.value()));
  }
  if (request && !trailers) {
    // Pseudo-headers must precede regular ones (RFC 9113 8.3): insert at the front.
    if (!has_authority && !host.empty()) nva.insert(nva.begin(), makeNv(headers::kAuthority, host));
    if (!has_scheme && !connect) nva.insert(nva.begin(), makeNv(headers::kScheme, "http"));
  }
  return nva;
}

// ---------------------------------------------------------------------------
// Receive side.

int Connection::onBeginFrame(const nghttp2_frame_hd& hd) {
  if (io_closed_) return NGHTTP2_ERR_CALLBACK_FAILURE;  // closed from a callback: stop parsing
  frame_payload_ = 0;
  if (CodecStream* s = streamFor(hd.stream_id)) s->frame_data_bytes_ = 0;
  switch (hd.type) {
    case NGHTTP2_PRIORITY:
      // Priority frames cost state but carry nothing we use: bounded per stream.
      if (++inbound_priority_frames_ >
          uint64_t{settings_.max_inbound_priority_frames_per_stream} * (1 + inbound_streams_)) {
        flood(codec_details::kInboundPriorityFramesFlood, stats_.inbound_priority_frames_flood);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    case NGHTTP2_WINDOW_UPDATE:
      // A peer legitimately sends about one WINDOW_UPDATE per DATA frame we
      // send (plus some per stream); far more is a flood.
      if (++inbound_window_update_frames_ >
          5 + 2 * (inbound_streams_ +
                   uint64_t{settings_.max_inbound_window_update_frames_per_data_frame_sent} *
                       outbound_data_frames_)) {
        flood(codec_details::kInboundWindowUpdateFramesFlood,
              stats_.inbound_window_update_frames_flood);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    default:
      break;
  }
  return 0;
}

int Connection::onBeginHeaders(const nghttp2_frame& frame) {
  if (io_closed_) return NGHTTP2_ERR_CALLBACK_FAILURE;  // closed from a callback: stop parsing
  const int32_t id = frame.hd.stream_id;
  if (server_ && frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
    CodecStream& s = addStream(nullptr);
    s.id_ = id;
    s.headers_ = std::make_unique<RequestHeaderMap>();
    nghttp2_session_set_stream_user_data(session_, id, &s);
    s.opened_ = std::chrono::steady_clock::now();
    ++inbound_streams_;
    if (tooManyPrematureResets()) {
      flood(codec_details::kPrematureResets, stats_.rx_premature_reset_flood);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }
  CodecStream* s = streamFor(id);
  if (s == nullptr) return 0;
  s->header_bytes_ = 0;
  s->cookie_.clear();
  if (!server_ && !s->final_headers_received_) {
    s->headers_ = std::make_unique<ResponseHeaderMap>();
  } else {
    s->headers_ = std::make_unique<TrailerMap>();
  }
  return 0;
}

int Connection::onHeader(const nghttp2_frame& frame, std::string_view name, std::string_view value) {
  if (io_closed_) return NGHTTP2_ERR_CALLBACK_FAILURE;  // closed from a callback: stop parsing
  CodecStream* s = streamFor(frame.hd.stream_id);
  if (s == nullptr || s->headers_ == nullptr || !s->live()) return 0;
  s->header_bytes_ += name.size() + value.size();
  if (s->header_bytes_ > size_t{settings_.max_headers_kb} * 1024 ||
      s->headers_->size() >= settings_.max_headers_count) {
    ++stats_.header_overflow;
    s->overflow_ = true;
    // nghttp2 resets the stream (INTERNAL_ERROR) and keeps the connection.
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (name == "cookie") {
    if (!s->cookie_.empty()) s->cookie_.append("; ");
    s->cookie_.append(value);
    return 0;
  }
  s->headers_->add(name, value);
  return 0;
}

int Connection::onFrameRecv(const nghttp2_frame& frame) {
  if (io_closed_) return NGHTTP2_ERR_CALLBACK_FAILURE;  // closed from a callback: stop parsing
  switch (frame.hd.type) {
    case NGHTTP2_DATA: {
      const bool end = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      if (frame_payload_ == 0 && !end) {
        if (++consecutive_empty_frames_ > settings_.max_consecutive_inbound_frames_with_empty_payload) {
          flood(codec_details::kInboundEmptyFramesFlood, stats_.inbound_empty_frames_flood);
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
      } else {
        consecutive_empty_frames_ = 0;
      }
      CodecStream* s = streamFor(frame.hd.stream_id);
      if (s == nullptr) return 0;
      const size_t bytes = s->frame_data_bytes_;
      s->frame_data_bytes_ = 0;
      if (s->live() && s->decoder_ != nullptr) {
        s->remote_end_ = end;
        s->decoder_->decodeData(s->recv_body_, end);
        s->recv_body_.drain(s->recv_body_.length());
      }
      // Acknowledge the bytes only once the owner may take more.
      if (s->read_disable_count_ > 0 && !s->closed_) {
        s->unconsumed_ += bytes;
      } else {
        consume(*s, bytes);
      }
      return 0;
    }
    case NGHTTP2_HEADERS: {
      consecutive_empty_frames_ = 0;
      CodecStream* s = streamFor(frame.hd.stream_id);
      if (s == nullptr || !s->live() || s->headers_ == nullptr) return 0;
      return onHeadersComplete(*s, frame);
    }
    case NGHTTP2_RST_STREAM: {
      ++stats_.rx_reset;
      CodecStream* s = streamFor(frame.hd.stream_id);
      if (s == nullptr) return 0;
      s->remote_reset_ = true;
      s->remote_reset_code_ = frame.rst_stream.error_code;
      // A stream the peer opened and abandoned quickly, before we answered it.
      if (server_ && !s->local_end_ &&
          std::chrono::steady_clock::now() - s->opened_ <
              std::chrono::seconds(settings_.premature_reset_min_stream_lifetime_seconds)) {
        ++premature_resets_;
      }
      if (server_ && tooManyPrematureResets()) {
        flood(codec_details::kPrematureResets, stats_.rx_premature_reset_flood);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      return 0;
    }
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
      if ((frame.hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        if (frame.hd.type == NGHTTP2_SETTINGS) remote_settings_received_ = true;
        // nghttp2 owes an ACK for this; count it now so a peer that floods
        // within one read is caught before the ACKs are even written.
        ++queued_acks_;
        if (!checkOutboundLimits()) return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      return 0;
    case NGHTTP2_GOAWAY: {
      goaway_received_ = true;
      goaway_last_stream_id_ = static_cast<uint32_t>(frame.goaway.last_stream_id);
      goaway_error_code_ = frame.goaway.error_code;
      std::vector<CodecStream*> unprocessed;
      if (!server_) {
        for (auto& s : streams_) {
          if (s->id_ > frame.goaway.last_stream_id && s->live()) unprocessed.push_back(s.get());
        }
      }
      onGoAway(goaway_last_stream_id_, goaway_error_code_, unprocessed);
      return 0;
    }
    default:
      return 0;
  }
}

int Connection::onHeadersComplete(CodecStream& s, const nghttp2_frame& frame) {
  const bool end = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  HeaderMapPtr headers = std::move(s.headers_);
  if (!s.cookie_.empty()) {
    headers->add("cookie", s.cookie_);
    s.cookie_.clear();
  }
  if (server_) {
    if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
      if (headers->method() == "CONNECT" && !settings_.allow_connect) {
        // Not a stream we serve: refuse it before anyone sees it.
        s.protocol_error_ = true;
        s.reset_notified_ = true;
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id_, NGHTTP2_PROTOCOL_ERROR);
        return 0;
      }
      s.final_headers_received_ = true;
      s.remote_end_ = end;
      s.decoder_ = &server_callbacks_->newStream(s);
      if (!s.live()) return 0;  // reset from inside newStream(): the decoder is done
      s.decoder_->decodeHeaders(std::move(headers), end);
      return 0;
    }
    s.remote_end_ = true;
    if (s.decoder_ != nullptr) s.decoder_->decodeTrailers(std::move(headers));
    return 0;
  }
  if (!s.final_headers_received_) {
    const int status = headers->status();
    if (status >= 100 && status < 200) {
      if (s.response_decoder_ != nullptr) s.response_decoder_->decode1xxHeaders(std::move(headers));
      return 0;
    }
    s.final_headers_received_ = true;
    s.remote_end_ = end;
    s.decoder_->decodeHeaders(std::move(headers), end);
    return 0;
  }
  s.remote_end_ = true;
  s.decoder_->decodeTrailers(std::move(headers));
  return 0;
}

int Connection::onDataChunk(int32_t stream_id, const uint8_t* data, size_t len) {
  if (io_closed_) return NGHTTP2_ERR_CALLBACK_FAILURE;  // closed from a callback: stop parsing
  frame_payload_ += len;
  CodecStream* s = streamFor(stream_id);
  if (s == nullptr || !s->live()) {
    // Nobody will consume these: give the window back at once.
    nghttp2_session_consume(session_, stream_id, len);
    return 0;
  }
  s->recv_body_.add(data, len);
  s->frame_data_bytes_ += len;
  return 0;
}

int Connection::onStreamClose(int32_t stream_id, uint32_t error_code) {
  CodecStream* s = streamFor(stream_id);
  if (s == nullptr) return 0;
  nghttp2_session_set_stream_user_data(session_, stream_id, nullptr);
  const bool complete = s->local_end_ && s->remote_end_ && error_code == NGHTTP2_NO_ERROR;
  if (!complete) {
    std::string details = std::string("http2.") + nghttp2_http2_strerror(error_code);
    if (s->remote_reset_) {
      s->notifyReset(error_code == NGHTTP2_REFUSED_STREAM ? StreamResetReason::RemoteRefusedStreamReset
                                                          : StreamResetReason::RemoteReset,
                     details);
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
      // Above the last stream id of a GOAWAY: never processed, safe to retry.
      s->notifyReset(StreamResetReason::RemoteRefusedStreamReset, "http2.goaway_unprocessed");
    } else if (s->overflow_) {
      s->notifyReset(StreamResetReason::Overflow, "http2.header_overflow");
    } else if (s->protocol_error_ || error_code == NGHTTP2_PROTOCOL_ERROR) {
      s->notifyReset(StreamResetReason::ProtocolError, details);
    } else {
      s->notifyReset(StreamResetReason::ConnectionTermination, details);
    }
  }
  s->closed_ = true;
  // Bytes the owner never consumed still hold the connection window.
  if (s->unconsumed_ > 0) {
    nghttp2_session_consume_connection(session_, s->unconsumed_);
    s->unconsumed_ = 0;
  }
  closeStream(*s);
  return 0;
}

// ---------------------------------------------------------------------------
// Send side.

int Connection::onFrameSend(const nghttp2_frame& frame) {
  const uint8_t type = frame.hd.type;
  const bool control = isControlFrame(type);
  if (no_copy_frame_written_) {
    // A NO_COPY DATA frame is already in the output buffer.
    no_copy_frame_written_ = false;
    outbound_.push_back({written_total_, control});
  } else {
    outbound_.push_back({kUnstamped, control});
    ++unstamped_;
  }
  ++outbound_frames_;
  if (control) ++outbound_control_frames_;
  switch (type) {
    case NGHTTP2_DATA:
      ++outbound_data_frames_;
      break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
      if ((frame.hd.flags & NGHTTP2_FLAG_ACK) != 0 && queued_acks_ > 0) --queued_acks_;
      break;
    case NGHTTP2_RST_STREAM:
      ++stats_.tx_reset;
      break;
    case NGHTTP2_GOAWAY:
      ++stats_.goaway_sent;
      if (frame.goaway.error_code != NGHTTP2_NO_ERROR) goaway_error_sent_ = true;
      break;
    default:
      break;
  }
  return 0;
}

int Connection::onFrameNotSend(const nghttp2_frame& frame, int lib_error) {
  // A request HEADERS refused locally (GOAWAY received, stream ids spent):
  // nghttp2 closes the stream next; mark why.
  if (frame.hd.type == NGHTTP2_HEADERS) {
    if (CodecStream* s = streamFor(frame.hd.stream_id)) {
      if (lib_error != NGHTTP2_ERR_START_STREAM_NOT_ALLOWED) s->protocol_error_ = true;
    }
  }
  return 0;
}

ssize_t Connection::onDataSourceRead(CodecStream& s, uint8_t*, size_t length, uint32_t* flags) {
  // NO_COPY: nghttp2 only sizes the frame; onSendData moves the body slices
  // into the output buffer without copying them.
  const size_t n = std::min(length, s.pending_send_.length());
  if (n == s.pending_send_.length()) {
    if (s.send_end_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s.local_end_ = true;
      if (s.trailers_ != nullptr) {
        NvArray nva = buildHeaders(*s.trailers_, /*trailers=*/true, false);
        if (!nva.empty()) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          nghttp2_submit_trailer(session_, s.id_, nva.data(), nva.size());
        }
        s.trailers_.reset();
      }
    } else if (n == 0) {
      s.data_deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  return static_cast<ssize_t>(n);
}

int Connection::onSendData(CodecStream& s, const uint8_t* framehd, size_t length) {
  // mem_send writes NO_COPY frames back to back inside one call: check the
  // limits per frame, not only when mem_send returns.
  if (!checkOutboundLimits()) return NGHTTP2_ERR_CALLBACK_FAILURE;
  // We never ask for padding, so the frame is the header and the body bytes.
  output_.add(framehd, 9);
  output_.move(s.pending_send_, length);
  written_total_ += 9 + length;
  no_copy_frame_written_ = true;
  s.checkLowWatermark();
  return 0;
}

}  // namespace courier::http::http2
