#include "source/extensions/filters/network/http_connection_manager/connection_manager.h"
#include "source/common/common/random.h"

#include <random>

#include "absl/strings/numbers.h"

#include "absl/strings/str_cat.h"
#include "source/common/grpc/common.h"
#include "source/common/http/filter_manager.h"
#include "source/common/stream_info/stream_info.h"
#include "spdlog/spdlog.h"

namespace courier::extensions::http_connection_manager {
namespace {

// Envoy's notion of an internal client: loopback or RFC 1918 / ULA.
bool isInternal(std::string_view ip) {
  if (ip.find(':') == std::string_view::npos) {
    auto starts = [&](std::string_view p) { return ip.substr(0, p.size()) == p; };
    if (starts("127.") || starts("10.") || starts("192.168.")) return true;
    if (!starts("172.")) return false;
    const int second = std::atoi(std::string(ip.substr(4, 3)).c_str());
    return second >= 16 && second <= 31;
  }
  return ip == "::1" || ip.substr(0, 2) == "fd" || ip.substr(0, 2) == "fc";
}

// The address Envoy trusts as the client's: the n-th entry from the right of
// x-forwarded-for, or empty when the header has fewer.
std::string xffFromRight(std::string_view xff, uint32_t n) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= xff.size()) {
    size_t comma = xff.find(',', start);
    if (comma == std::string_view::npos) comma = xff.size();
    std::string_view part = xff.substr(start, comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    parts.push_back(part);
    start = comma + 1;
  }
  if (xff.empty() || n == 0 || parts.size() < n) return "";
  return std::string(parts[parts.size() - n]);
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// RFC 9113 3.4: what an HTTP/2 client with prior knowledge sends first.
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string requestId() {
  // A v4 UUID, as Envoy's x-request-id; formatted by hand (snprintf costs
  // more than the rest of the request's header work).
  uint64_t a = threadRandom()(), b = threadRandom()();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t pos = 0;
  auto put = [&](uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i) out[pos++] = kHex[(v >> (4 * i)) & 0xf];
  };
  put(a >> 32, 8);
  ++pos;
  put((a >> 16) & 0xffff, 4);
  ++pos;
  put(a & 0xffff, 4);
  ++pos;
  put(b >> 48, 4);
  ++pos;
  put(b & 0xffffffffffffULL, 12);
  return out;
}

}  // namespace

HcmStats::HcmStats(stats::Store& store, const std::string& prefix)
#define COURIER_HCM_COUNTER(n) n(store.counter(absl::StrCat("http.", prefix, "." #n)))
#define COURIER_HCM_GAUGE(n) n(store.gauge(absl::StrCat("http.", prefix, "." #n)))
    : COURIER_HCM_COUNTER(downstream_cx_total),
      COURIER_HCM_GAUGE(downstream_cx_active),
      COURIER_HCM_COUNTER(downstream_cx_protocol_error),
      COURIER_HCM_COUNTER(downstream_rq_total),
      COURIER_HCM_GAUGE(downstream_rq_active),
      COURIER_HCM_COUNTER(downstream_rq_1xx),
      COURIER_HCM_COUNTER(downstream_rq_2xx),
      COURIER_HCM_COUNTER(downstream_rq_3xx),
      COURIER_HCM_COUNTER(downstream_rq_4xx),
      COURIER_HCM_COUNTER(downstream_rq_5xx),
      COURIER_HCM_COUNTER(downstream_rq_timeout),
      COURIER_HCM_COUNTER(downstream_rq_too_large),
      COURIER_HCM_COUNTER(rs_too_large),
      downstream_rq_time(store.histogram(absl::StrCat("http.", prefix, ".downstream_rq_time"))),
      http2(store) {
}

Http2CodecCounters::Http2CodecCounters(stats::Store& store)
#define COURIER_HTTP2_COUNTER(n) n(store.counter("http2." #n))
    : COURIER_HTTP2_COUNTER(rx_reset),
      COURIER_HTTP2_COUNTER(tx_reset),
      COURIER_HTTP2_COUNTER(goaway_sent),
      COURIER_HTTP2_COUNTER(header_overflow),
      COURIER_HTTP2_COUNTER(rx_messaging_error),
      COURIER_HTTP2_COUNTER(inbound_empty_frames_flood),
      COURIER_HTTP2_COUNTER(inbound_priority_frames_flood),
      COURIER_HTTP2_COUNTER(inbound_window_update_frames_flood),
      COURIER_HTTP2_COUNTER(outbound_flood),
      COURIER_HTTP2_COUNTER(outbound_control_flood) {
}
#undef COURIER_HTTP2_COUNTER

void Http2CodecCounters::add(const http::http2::Http2Stats& s) {
  auto put = [](stats::Counter& c, uint64_t v) {
    if (v != 0) c.add(v);
  };
  put(rx_reset, s.rx_reset);
  put(tx_reset, s.tx_reset);
  put(goaway_sent, s.goaway_sent);
  put(header_overflow, s.header_overflow);
  put(rx_messaging_error, s.rx_messaging_error);
  put(inbound_empty_frames_flood, s.inbound_empty_frames_flood);
  put(inbound_priority_frames_flood, s.inbound_priority_frames_flood);
  put(inbound_window_update_frames_flood, s.inbound_window_update_frames_flood);
  put(outbound_flood, s.outbound_flood);
  put(outbound_control_flood, s.outbound_control_flood);
}
#undef COURIER_HCM_COUNTER
#undef COURIER_HCM_GAUGE

// One request/response exchange: the connection's side of it (headers the
// HCM owns, timeouts, local replies, stats, access log) around the stream's
// HTTP filter chain, whose last filter (the router) talks to the upstream.
// On HTTP/2 it also listens to its codec stream (StreamCallbacks): a reset
// ends it alone, and the codec's flow control is per stream.
class ActiveStream : public http::RequestDecoder,
                     public http::FilterManagerCallbacks,
                     public http::StreamCallbacks {
 public:
  ActiveStream(ConnectionManager& parent, http::ResponseEncoder& encoder)
      : parent_(parent),
        config_(parent.sharedConfig()),
        // An RDS table is taken when the stream starts and kept to its end,
        // whatever updates arrive meanwhile.
        rds_table_(config_->rds != nullptr ? config_->rds->current(parent.worker().index) : nullptr),
        encoder_(encoder),
        filters_(*this) {
    info_.start_time = std::chrono::system_clock::now();
    info_.start_mono = std::chrono::steady_clock::now();
    info_.protocol = parent.http2() ? "HTTP/2" : "HTTP/1.1";
    if (parent.http2()) {
      h2_stream_ = encoder.getStream();
      h2_stream_->addCallbacks(*this);
    }
    info_.downstream_remote_address = parent.connection().remoteAddress();
    info_.downstream_local_address = parent.connection().localAddress();
    stats().downstream_rq_total.inc();
    stats().downstream_rq_active.inc();
    if (config_->max_stream_duration.count() > 0) {
      duration_timer_ = dispatcher().createTimer([this] {
        failStream(408, "downstream duration timeout", stream_info::kDurationTimeout, "max_duration_timeout");
      });
      duration_timer_->enable(config_->max_stream_duration);
    }
    if (config_->stream_idle_timeout.count() > 0) {
      idle_timer_ = dispatcher().createTimer(
          [this] { failStream(408, "stream timeout", stream_info::kStreamIdleTimeout, "stream_idle_timeout"); });
      idle_timer_->enable(config_->stream_idle_timeout);
    }
    for (const auto& factory : config_->filter_factories) factory(filters_);
  }
  // Runs after the connection may be gone: touches only what the stream owns.
  ~ActiveStream() override {
    filters_.destroyFilters();
    stats().downstream_rq_active.dec();
    // Ended without a complete response: the client went away.
    if (!response_complete_) info_.setResponseFlag(stream_info::kDownstreamConnectionTermination);
    for (const auto& log : config_->access_logs) log->log(info_);
  }

  // RequestDecoder (downstream request).
  void decodeHeaders(http::HeaderMapPtr headers, bool end_stream) override;
  void decodeData(buffer::Buffer& data, bool end_stream) override;
  void decodeTrailers(http::HeaderMapPtr trailers) override;

  // FilterManagerCallbacks
  void encodeHeadersToCodec(http::HeaderMap& headers, bool end_stream) override;
  void encodeDataToCodec(buffer::Buffer& data, bool end_stream) override;
  void encodeTrailersToCodec(http::HeaderMap& trailers) override;
  void onDecoderBufferOverflow() override {
    stats().downstream_rq_too_large.inc();
    sendLocalReply(413, "Payload Too Large", static_cast<stream_info::ResponseFlag>(0), "request_payload_too_large");
  }
  void onEncoderBufferOverflow() override {
    stats().rs_too_large.inc();
    failStream(500, "Internal Server Error", static_cast<stream_info::ResponseFlag>(0), "response_payload_too_large");
  }
  network::Connection& connection() override { return parent_.connection(); }
  event::Dispatcher& dispatcher() override { return parent_.worker().dispatcher; }
  stream_info::StreamInfo& streamInfo() override { return info_; }
  const courier::router::RouteEntry* route() override {
    if (!route_cached_) {
      route_cached_ = true;
      const courier::router::RouteTable* table =
          config_->route_table != nullptr ? config_->route_table.get() : rds_table_.get();
      // No table yet (RDS has not answered): no route, 404 as Envoy.
      route_ = filters_.requestHeaders() == nullptr || table == nullptr
                   ? nullptr
                   : table->route(*filters_.requestHeaders(), threadRandom()());
    }
    return route_;
  }
  void clearRouteCache() override { route_cached_ = false; }
  void resetStream() override {
    if (gone_) return;
    if (h2_stream_ != nullptr) {
      // RST_STREAM for this stream only; onResetStream() follows at once.
      h2_stream_->resetStream(http::StreamResetReason::LocalReset);
      return;
    }
    // HTTP/1 has no per-stream reset: the connection goes, after what the
    // client was already given (a batched write may still be pending).
    parent_.flushOutput();
    parent_.connection().close(network::CloseType::NoFlush);
  }
  uint32_t bufferLimit() const override { return config_->buffer_limit; }
  void sendLocalReply(int status, std::string_view body, stream_info::ResponseFlag flag,
                      std::string_view details) override;
  void onUpstreamWatermark(bool above) override {
    if (gone_ || above == downstream_paused_) return;
    downstream_paused_ = above;
    // HTTP/2: hold back this stream's window only, its siblings keep flowing.
    if (h2_stream_ != nullptr) {
      h2_stream_->readDisable(above);
    } else if (!parent_.http2()) {
      parent_.connection().readDisable(above);
    }
  }
  server::WorkerContext& worker() override { return parent_.worker(); }

  // The downstream connection can't take more (or can again).
  void onDownstreamWatermark(bool above) { filters_.onDownstreamWatermark(above); }
  // The connection closed: filters let go now; the stream is deleted later.
  void onConnectionGone() {
    gone_ = true;
    detachFromCodec();
    disableTimers();
    filters_.destroyFilters();
  }

  // StreamCallbacks (HTTP/2 only): the codec stream is gone.
  void onResetStream(http::StreamResetReason reason, std::string_view details) override {
    h2_stream_ = nullptr;
    if (gone_) return;
    spdlog::debug("[C{}] stream reset: {} ({})", parent_.connection().id(), http::resetReasonToString(reason), details);
    gone_ = true;
    disableTimers();
    filters_.destroyFilters();
    parent_.onStreamReset(*this);
  }
  void onAboveWriteBufferHighWatermark() override { filters_.onDownstreamWatermark(true); }
  void onBelowWriteBufferLowWatermark() override { filters_.onDownstreamWatermark(false); }

  bool complete() const { return response_complete_; }
  // HTTP/2: the response is out but the client is still sending; the stream
  // stays (draining what arrives) until the request ends or is reset.
  bool awaitingRequestEnd() const { return response_complete_ && !request_complete_ && h2_stream_ != nullptr; }
  bool requestComplete() const { return request_complete_; }

 private:
  HcmStats& stats() { return *config_->stats; }
  // Ends the stream with a local reply, or by a reset once the response started.
  void failStream(int status, std::string_view body, stream_info::ResponseFlag flag, std::string_view details);
  // Any bytes in either direction count as activity for stream_idle_timeout.
  void touch() {
    if (idle_timer_) idle_timer_->enable(config_->stream_idle_timeout);
  }
  void disableTimers() {
    if (idle_timer_) idle_timer_->disable();
    if (duration_timer_) duration_timer_->disable();
    if (request_timer_) request_timer_->disable();
  }
  void countResponse(int status);
  void finishResponse();
  // Both directions are done on HTTP/2: the codec frees its stream, so stop
  // listening to it.
  void detachFromCodec() {
    if (h2_stream_ == nullptr) return;
    h2_stream_->removeCallbacks(*this);
    h2_stream_ = nullptr;
  }
  void onLateRequestEnd() {
    request_complete_ = true;
    detachFromCodec();
    parent_.onStreamComplete(*this);
  }
  std::chrono::nanoseconds sinceStart() const { return std::chrono::steady_clock::now() - info_.start_mono; }

  ConnectionManager& parent_;
  std::shared_ptr<const HcmConfig> config_;
  std::shared_ptr<const courier::router::RouteTable> rds_table_;
  http::ResponseEncoder& encoder_;
  http::Stream* h2_stream_ = nullptr;  // HTTP/2: the codec stream while it lives
  stream_info::StreamInfo info_;
  http::FilterManager filters_;
  const courier::router::RouteEntry* route_ = nullptr;
  bool route_cached_ = false;
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool downstream_paused_ = false;
  bool gone_ = false;
  std::unique_ptr<event::Timer> request_timer_;
  std::unique_ptr<event::Timer> idle_timer_;
  std::unique_ptr<event::Timer> duration_timer_;
};

void ActiveStream::decodeHeaders(http::HeaderMapPtr headers, bool end_stream) {
  request_complete_ = end_stream;
  http::HeaderMap& h = *headers;
  info_.request_headers = &h;
  const auto& config = *config_;
  // With use_remote_address the peer is the client, unless trusted proxies
  // in front of us (xff_num_trusted_hops) said who their client was. Without
  // it, the nearest proxy's x-forwarded-for entry names the client. Only
  // use_remote_address needs the address as text.
  const std::string peer = config.use_remote_address ? parent_.connection().remoteAddress().ip() : std::string();
  std::string client = peer;
  const uint32_t hops = config.use_remote_address ? config.xff_num_trusted_hops : 0;
  if (hops > 0) {
    std::string from_xff = xffFromRight(h.getValue("x-forwarded-for"), hops);
    if (!from_xff.empty()) client = std::move(from_xff);
  }
  const bool external = config.use_remote_address && !isInternal(client);
  if (config.generate_request_id && (!h.has("x-request-id") || (external && !config.preserve_external_request_id))) {
    h.set("x-request-id", requestId());
  }
  if (config.use_remote_address && !config.skip_xff_append) {
    const std::string_view existing = h.getValue("x-forwarded-for");
    h.set("x-forwarded-for", existing.empty() ? peer : absl::StrCat(std::string(existing), ",", peer));
  }
  if (!h.has("x-forwarded-proto")) h.add("x-forwarded-proto", "http");
  // x-envoy-* request headers steer retries and timeouts; as Envoy, they are
  // taken only from internal clients when Courier sits at the edge.
  if (config.use_remote_address) {
    if (!external) {
      h.set("x-envoy-internal", "true");
    } else {
      std::vector<std::string> doomed;
      for (const auto& e : h) {
        if (e.key().substr(0, 8) == "x-envoy-") doomed.emplace_back(e.key());
      }
      for (const auto& key : doomed) h.remove(key);
      h.set("x-envoy-external-address", client);
    }
  }
  // Envoy answers "100 Continue" itself (proxy_100_continue off) and does not
  // pass the expectation on.
  const bool expects_continue = parent_.http2() ? equalsIgnoreCase(h.getValue("expect"), "100-continue")
                                                : parent_.codec().expect100Continue();
  if (expects_continue) {
    encoder_.encode100ContinueHeaders();
    parent_.flushOutput();
    h.remove("expect");
  }
  if (!request_complete_ && config.request_timeout.count() > 0) {
    request_timer_ = dispatcher().createTimer([this] {
      if (filters_.responseHeadersSent()) return;
      stats().downstream_rq_timeout.inc();
      sendLocalReply(408, "request timeout", static_cast<stream_info::ResponseFlag>(0), "request_overall_timeout");
    });
    request_timer_->enable(config.request_timeout);
  }
  filters_.decodeHeaders(std::move(headers), end_stream);
}

void ActiveStream::decodeData(buffer::Buffer& data, bool end_stream) {
  if (response_complete_ || gone_) {
    data.drain(data.length());
    if (end_stream && awaitingRequestEnd()) onLateRequestEnd();
    return;
  }
  touch();
  request_complete_ = end_stream;
  if (end_stream && request_timer_) request_timer_->disable();
  info_.bytes_received += data.length();
  if (end_stream) info_.last_downstream_rx_byte_received = sinceStart();
  filters_.decodeData(data, end_stream);
}

void ActiveStream::decodeTrailers(http::HeaderMapPtr trailers) {
  if (awaitingRequestEnd()) onLateRequestEnd();
  if (response_complete_ || gone_) return;
  request_complete_ = true;
  if (request_timer_) request_timer_->disable();
  info_.last_downstream_rx_byte_received = sinceStart();
  filters_.decodeTrailers(std::move(trailers));
}

void ActiveStream::encodeHeadersToCodec(http::HeaderMap& headers, bool end_stream) {
  if (gone_) return;
  touch();
  headers.set("server", config_->server_name);
  // A draining listener's connections end after this response (not a tunnel's).
  // (HTTP/2 drains with GOAWAY instead.)
  if (!parent_.http2() && parent_.connection().draining() && headers.status() != 101) {
    headers.set("connection", "close");
  }
  countResponse(headers.status());
  info_.first_downstream_tx_byte_sent = sinceStart();
  info_.response_headers = &headers;
  encoder_.encodeHeaders(headers, end_stream);
  if (end_stream) {
    finishResponse();
  } else {
    // The body often follows in the same upstream read: one write for both.
    parent_.scheduleFlush();
  }
}

void ActiveStream::encodeDataToCodec(buffer::Buffer& data, bool end_stream) {
  if (gone_) return;
  touch();
  info_.bytes_sent += data.length();
  encoder_.encodeData(data, end_stream);
  if (end_stream) {
    finishResponse();
  } else {
    parent_.scheduleFlush();
  }
}

void ActiveStream::encodeTrailersToCodec(http::HeaderMap& trailers) {
  if (gone_) return;
  info_.response_trailers = &trailers;
  encoder_.encodeTrailers(trailers);
  finishResponse();
}

void ActiveStream::failStream(int status, std::string_view body, stream_info::ResponseFlag flag,
                              std::string_view details) {
  if (!filters_.responseHeadersSent()) {
    sendLocalReply(status, body, flag, details);
    return;
  }
  // Part of the response is out: all that is left is to cut the connection.
  info_.setResponseFlag(flag);
  resetStream();
}

void ActiveStream::sendLocalReply(int status, std::string_view body, stream_info::ResponseFlag flag,
                                  std::string_view details) {
  if (response_complete_ || gone_) return;
  if (filters_.responseHeadersSent()) {
    // Too late for a reply of our own.
    info_.setResponseFlag(flag);
    resetStream();
    return;
  }
  // Whatever response was on its way through the encoder filters is replaced,
  // and the rest of the request no longer matters.
  filters_.discardUnsentResponse();
  filters_.stopDecoding();
  if (flag != 0) info_.setResponseFlag(flag);
  info_.response_code_details = std::string(details);
  auto reply = std::make_unique<http::HeaderMap>();
  if (info_.request_headers != nullptr && grpc::hasGrpcContentType(*info_.request_headers)) {
    // A gRPC client reads the outcome from grpc-status, not from :status, so
    // the reply is gRPC's trailers-only form (as Envoy): 200, the status
    // mapped to its gRPC code, the body as grpc-message, and nothing after.
    reply->setStatus(200);
    reply->add("content-type", "application/grpc");
    reply->add("grpc-status", std::to_string(static_cast<uint32_t>(grpc::httpToGrpcStatus(status))));
    if (!body.empty()) reply->add("grpc-message", grpc::percentEncode(body));
    filters_.encodeHeaders(std::move(reply), true);
    return;
  }
  reply->setStatus(status);
  if (!body.empty()) {
    reply->add("content-length", std::to_string(body.size()));
    reply->add("content-type", "text/plain");
  }
  filters_.encodeHeaders(std::move(reply), body.empty());
  if (!body.empty()) {
    buffer::Buffer b;
    b.add(body);
    filters_.encodeData(b, true);
  }
}

void ActiveStream::countResponse(int status) {
  info_.response_code = static_cast<uint32_t>(status);
  auto& s = stats();
  switch (status / 100) {
    case 1:
      s.downstream_rq_1xx.inc();
      break;
    case 2:
      s.downstream_rq_2xx.inc();
      break;
    case 3:
      s.downstream_rq_3xx.inc();
      break;
    case 4:
      s.downstream_rq_4xx.inc();
      break;
    default:
      s.downstream_rq_5xx.inc();
      break;
  }
}

void ActiveStream::finishResponse() {
  response_complete_ = true;
  disableTimers();
  info_.last_downstream_tx_byte_sent = sinceStart();
  stats().downstream_rq_time.recordValue(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(*info_.last_downstream_tx_byte_sent).count()));
  // The filters let go of their upstreams now; the stream object goes later.
  filters_.destroyFilters();
  if (downstream_paused_) onUpstreamWatermark(false);
  if (awaitingRequestEnd()) return;
  detachFromCodec();
  parent_.onStreamComplete(*this);
}

ConnectionManager::ConnectionManager(std::shared_ptr<const HcmConfig> config, server::WorkerContext& worker)
    : config_(std::move(config)), worker_(worker) {}

ConnectionManager::~ConnectionManager() {
  // A stream may hold a pooled upstream connection; release it first.
  for (auto& stream : streams_) stream->onConnectionGone();
  streams_.clear();
  config_->stats->downstream_cx_active.dec();
}

void ConnectionManager::initializeReadFilterCallbacks(network::ReadFilterCallbacks& callbacks) {
  callbacks_ = &callbacks;
  callbacks.connection().addConnectionCallbacks(*this);
}

network::FilterStatus ConnectionManager::onNewConnection() {
  config_->stats->downstream_cx_total.inc();
  config_->stats->downstream_cx_active.inc();
  if (config_->codec_type == CodecType::Http2) {
    h2_codec_ = std::make_unique<http::http2::ServerConnection>(*this, output_, config_->http2);
    codec_chosen_ = true;
  } else {
    // AUTO starts as HTTP/1 and switches if the first bytes are the preface.
    codec_ = std::make_unique<http::http1::ServerConnection>(*this, output_, config_->http1);
    codec_chosen_ = config_->codec_type == CodecType::Http1;
  }
  if (config_->request_headers_timeout.count() > 0) {
    // A client that never finishes its headers (slowloris) is cut off with 408.
    headers_timer_ = worker_.dispatcher.createTimer([this] {
      if (!streams_.empty() || http2()) return;
      config_->stats->downstream_rq_timeout.inc();
      // Armed only once request bytes arrived, so there is a client to answer.
      codec_->sendErrorResponse({http::CodecError::Kind::Protocol, 408, "request_header_timeout", "request headers timed out"});
      closing_ = true;
      flushOutput();
      connection().close(network::CloseType::FlushWrite);
    });
  }
  if (config_->idle_timeout.count() > 0) {
    idle_timer_ = worker_.dispatcher.createTimer([this] {
      if (http2()) {
        // Idle means no stream open on HTTP/2; say goodbye with GOAWAY.
        if (!streams_.empty()) {
          idle_timer_->enable(config_->idle_timeout);
          return;
        }
        h2_codec_->goAway();
        flushOutput();
      }
      closing_ = true;
      connection().close(network::CloseType::FlushWrite);
    });
    idle_timer_->enable(config_->idle_timeout);
  }
  if (h2_codec_ != nullptr) flushOutput();  // our SETTINGS
  return network::FilterStatus::Continue;
}

bool ConnectionManager::chooseCodec() {
  if (codec_chosen_) return true;
  // On TLS, ALPN already said which protocol follows (bytes arrive only after
  // the handshake); sniffing the preface is for plaintext and no-ALPN peers.
  const std::string_view alpn = connection().nextProtocol();
  if (alpn == "http/1.1") {
    codec_chosen_ = true;
    return true;
  }
  if (alpn == "h2") {
    codec_.reset();
    h2_codec_ = std::make_unique<http::http2::ServerConnection>(*this, output_, config_->http2);
    codec_chosen_ = true;
    return true;
  }
  const size_t n = std::min(input_.length(), kHttp2Preface.size());
  char head[kHttp2Preface.size()];
  input_.copyOut(0, n, head);
  if (std::string_view(head, n) != kHttp2Preface.substr(0, n)) {
    codec_chosen_ = true;
    return true;
  }
  if (n < kHttp2Preface.size()) return false;
  codec_.reset();
  h2_codec_ = std::make_unique<http::http2::ServerConnection>(*this, output_, config_->http2);
  codec_chosen_ = true;
  return true;
}

network::FilterStatus ConnectionManager::onData(buffer::Buffer& data, bool end_stream) {
  input_.move(data);
  if (!chooseCodec()) {
    if (end_stream) connection().close(network::CloseType::NoFlush);
    return network::FilterStatus::StopIteration;
  }
  // Envoy's request_headers_timeout runs from a request's first byte.
  if (headers_timer_ && !http2() && streams_.empty() && !headers_timer_->enabled() && !input_.empty()) {
    headers_timer_->enable(config_->request_headers_timeout);
  }
  dispatch();
  if (http2()) {
    // A client that half-closes an HTTP/2 connection is done with it.
    if (end_stream && !closing_) {
      closing_ = true;
      flushOutput();
      connection().close(network::CloseType::FlushWrite);
    }
  } else if (end_stream && codec_->tunneling()) {
    // An upgraded stream's client is done sending: its request ends here.
    codec_->endOfInput();
    flushOutput();
  } else if (end_stream && !closing_ && streams_.empty()) {
    connection().close(network::CloseType::FlushWrite);
  }
  return network::FilterStatus::StopIteration;
}

void ConnectionManager::dispatch() {
  if (closing_) return;
  // A stream can finish inside the codec's own callback (a local reply);
  // the codec must not be re-entered then: the outer call goes round again.
  if (dispatching_) {
    redispatch_ = true;
    return;
  }
  if (idle_timer_) idle_timer_->enable(config_->idle_timeout);
  dispatching_ = true;
  do {
    redispatch_ = false;
    auto err = http2() ? h2_codec_->dispatch(input_) : codec_->dispatch(input_);
    if (err.has_value()) {
      dispatching_ = false;
      onCodecError(*err);
      return;
    }
  } while (redispatch_ && !closing_ && !input_.empty());
  dispatching_ = false;
  // HTTP/1: pipelined bytes wait while a response is pending; stop reading
  // more of them so a client cannot queue unbounded input.
  if (!http2() && !closing_ && codec_->waitingForResponse() && !input_.empty() && !input_paused_) {
    input_paused_ = true;
    connection().readDisable(true);
  }
  flushOutput();
}

void ConnectionManager::onCodecError(const http::CodecError& error) {
  config_->stats->downstream_cx_protocol_error.inc();
  spdlog::debug("[C{}] {} codec error: {} ({})", connection().id(), http2() ? "http2" : "http1", error.details,
                error.message);
  // HTTP/2: the codec already queued GOAWAY; the streams end with the close.
  if (!http2() && (streams_.empty() || !streams_.front()->complete())) {
    if (codec_->sendErrorResponse(error)) {
      config_->stats->downstream_rq_total.inc();
      (error.http_status >= 500 ? config_->stats->downstream_rq_5xx : config_->stats->downstream_rq_4xx).inc();
    }
  }
  closing_ = true;
  flushOutput();
  connection().close(network::CloseType::FlushWrite);
}

http::RequestDecoder& ConnectionManager::newStream(http::ResponseEncoder& encoder) {
  if (headers_timer_) headers_timer_->disable();
  streams_.push_back(std::make_unique<ActiveStream>(*this, encoder));
  return *streams_.back();
}

void ConnectionManager::scheduleFlush() {
  if (flush_cb_ == nullptr) flush_cb_ = worker_.dispatcher.createSchedulableCallback([this] { flushOutput(); });
  flush_cb_->schedule();
}

void ConnectionManager::flushOutput() {
  if (flush_cb_ != nullptr) flush_cb_->cancel();
  if (!output_.empty()) connection().write(output_, false);
}

void ConnectionManager::onStreamComplete(ActiveStream& stream) {
  flushOutput();
  deferDeleteStream(stream);
  if (http2()) {
    closeIfDrainedHttp2();
    return;
  }
  // A response that finished before its request did (a local reply to an
  // upload, say) leaves the rest of the request unread: close, as Envoy does
  // for HTTP/1.
  if (codec_->shouldClose() || !stream.requestComplete() || connection().draining()) {
    closing_ = true;
    connection().close(network::CloseType::FlushWrite);
    return;
  }
  // Pipelined requests waited in input_ until this response finished.
  if (input_paused_) {
    input_paused_ = false;
    connection().readDisable(false);
  }
  if (!input_.empty()) dispatch();
}

void ConnectionManager::onStreamReset(ActiveStream& stream) {
  if (!closing_) flushOutput();  // the RST_STREAM
  deferDeleteStream(stream);
  closeIfDrainedHttp2();
}

void ConnectionManager::closeIfDrainedHttp2() {
  if (closing_ || !goaway_sent_ || !streams_.empty()) return;
  closing_ = true;
  flushOutput();
  connection().close(network::CloseType::FlushWrite);
}

void ConnectionManager::deferDeleteStream(ActiveStream& stream) {
  auto it = std::find_if(streams_.begin(), streams_.end(), [&](const auto& s) { return s.get() == &stream; });
  if (it == streams_.end()) return;
  // The stream may be deep in its own call stack: delete it after this turn.
  struct Holder : event::DeferredDeletable {
    std::unique_ptr<ActiveStream> s;
  };
  auto holder = std::make_unique<Holder>();
  holder->s = std::move(*it);
  streams_.erase(it);
  worker_.dispatcher.deferredDelete(std::move(holder));
}

void ConnectionManager::onDrainStarted() {
  if (closing_) return;
  if (http2()) {
    // Streams in flight finish; the client opens new ones elsewhere.
    goaway_sent_ = true;
    h2_codec_->goAway();
    flushOutput();
    closeIfDrainedHttp2();
    return;
  }
  // HTTP/1, as Envoy: the next response carries `connection: close` and the
  // connection ends after it; one that stays idle lasts until the drain time
  // is over. Closing an idle keep-alive connection now would race with a
  // request the client is already sending, which then meets a reset.
}

void ConnectionManager::onAboveWriteBufferHighWatermark() {
  for (auto& stream : streams_) stream->onDownstreamWatermark(true);
}

void ConnectionManager::onBelowWriteBufferLowWatermark() {
  for (auto& stream : streams_) stream->onDownstreamWatermark(false);
}

void ConnectionManager::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) return;
  closing_ = true;
  if (headers_timer_) headers_timer_->disable();
  if (idle_timer_) idle_timer_->disable();
  // HTTP/2 streams hear it from the codec (onResetStream) and leave the list.
  if (h2_codec_ != nullptr) {
    h2_codec_->onConnectionClosed();
    if (!h2_stats_added_) config_->stats->http2.add(h2_codec_->stats());
    h2_stats_added_ = true;
  }
  while (!streams_.empty()) {
    ActiveStream& stream = *streams_.front();
    stream.onConnectionGone();
    deferDeleteStream(stream);
  }
}

}  // namespace courier::extensions::http_connection_manager
