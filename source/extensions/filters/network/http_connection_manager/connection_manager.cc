#include "source/extensions/filters/network/http_connection_manager/connection_manager.h"

#include <random>

#include "absl/strings/numbers.h"

#include "absl/strings/str_cat.h"
#include "source/common/stream_info/stream_info.h"
#include "spdlog/spdlog.h"

namespace courier::extensions::http_connection_manager {
namespace {

std::mt19937_64& rng() {
  static thread_local std::mt19937_64 r{std::random_device{}()};
  return r;
}

// Envoy's notion of an internal client: loopback or RFC 1918 / ULA.
bool isInternal(const network::Address& a) {
  const std::string ip = a.ip();
  if (a.family() == AF_INET) {
    return ip.rfind("127.", 0) == 0 || ip.rfind("10.", 0) == 0 || ip.rfind("192.168.", 0) == 0 ||
           (ip.rfind("172.", 0) == 0 && [&] {
             int second = std::atoi(ip.c_str() + 4);
             return second >= 16 && second <= 31;
           }());
  }
  return ip == "::1" || ip.rfind("fd", 0) == 0 || ip.rfind("fc", 0) == 0;
}

std::string requestId() {
  // A v4 UUID, as Envoy's x-request-id.
  uint64_t a = rng()(), b = rng()();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char out[37];
  snprintf(out, sizeof(out), "%08x-%04x-%04x-%04x-%012llx", static_cast<uint32_t>(a >> 32),
           static_cast<uint32_t>((a >> 16) & 0xffff), static_cast<uint32_t>(a & 0xffff),
           static_cast<uint32_t>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
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
      COURIER_HCM_COUNTER(no_route),
      COURIER_HCM_COUNTER(no_cluster),
      COURIER_HCM_COUNTER(rq_direct_response),
      COURIER_HCM_COUNTER(rq_redirect),
      downstream_rq_time(store.histogram(absl::StrCat("http.", prefix, ".downstream_rq_time"))) {
}
#undef COURIER_HCM_COUNTER
#undef COURIER_HCM_GAUGE

// One request/response exchange: decodes the request, routes it, and relays
// the upstream response, retrying per the route's retry policy (the router
// filter's job, inline until the HTTP filter chain exists).
class ActiveStream : public http::RequestDecoder, public http::pool::PoolCallbacks {
 public:
  ActiveStream(ConnectionManager& parent, http::ResponseEncoder& encoder) : parent_(parent), encoder_(encoder) {
    info_.start_time = std::chrono::system_clock::now();
    info_.start_mono = std::chrono::steady_clock::now();
    info_.protocol = "HTTP/1.1";
    info_.downstream_remote_address = parent.connection().remoteAddress();
    info_.downstream_local_address = parent.connection().localAddress();
    stats().downstream_rq_total.inc();
    stats().downstream_rq_active.inc();
    if (parent.config().max_stream_duration.count() > 0) {
      duration_timer_ = parent.worker().dispatcher.createTimer([this] {
        abandonUpstream();
        failStream(408, "downstream duration timeout", stream_info::kDurationTimeout, "max_duration_timeout");
      });
      duration_timer_->enable(parent.config().max_stream_duration);
    }
    if (parent.config().stream_idle_timeout.count() > 0) {
      idle_timer_ = parent.worker().dispatcher.createTimer([this] { onStreamIdleTimeout(); });
      idle_timer_->enable(parent.config().stream_idle_timeout);
    }
  }
  ~ActiveStream() override {
    pauseDownstream(false);
    if (pool_ != nullptr) pool_->cancel(*this);
    endUpstreamAttempt();
    stats().downstream_rq_active.dec();
    // Ended without a complete response: the client went away.
    if (!response_complete_) info_.setResponseFlag(stream_info::kDownstreamConnectionTermination);
    for (const auto& log : parent_.config().access_logs) log->log(info_);
  }

  // RequestDecoder (downstream request).
  void decodeHeaders(http::HeaderMapPtr headers, bool end_stream) override;
  void decodeData(buffer::Buffer& data, bool end_stream) override;
  void decodeTrailers(http::HeaderMapPtr trailers) override;

  // PoolCallbacks
  void onPoolReady(http::pool::PooledConnection& connection) override;
  void onPoolFailure(Failure reason) override;
  void onUpstreamClosed() override;
  void onUpstreamData(buffer::Buffer& data) override;
  // Upstream can't take the request body as fast as the client sends it.
  void onUpstreamWatermark(bool above) override { pauseDownstream(above); }
  // Downstream can't take the response as fast as the upstream sends it.
  void onDownstreamWatermark(bool above) {
    if (upstream_ == nullptr || above == upstream_paused_) return;
    upstream_paused_ = above;
    upstream_->connection().readDisable(above);
  }

  bool complete() const { return response_complete_; }
  bool requestComplete() const { return request_complete_; }
  const stream_info::StreamInfo& info() const { return info_; }

 private:
  // Upstream response callbacks; ignored once their attempt was abandoned.
  struct UpstreamDecoder : http::ResponseDecoder {
    explicit UpstreamDecoder(ActiveStream& s) : s(s) {}
    void decodeHeaders(http::HeaderMapPtr headers, bool end_stream) override {
      if (s.upstream_ != nullptr) s.onUpstreamHeaders(std::move(headers), end_stream);
    }
    void decodeData(buffer::Buffer& data, bool end_stream) override {
      if (s.upstream_ != nullptr) s.onUpstreamBody(data, end_stream);
    }
    void decodeTrailers(http::HeaderMapPtr trailers) override {
      if (s.upstream_ != nullptr) s.onUpstreamTrailers(std::move(trailers));
    }
    void decode1xxHeaders(http::HeaderMapPtr) override {}
    ActiveStream& s;
  };

  // Request bodies up to this size are kept for retries; larger ones are not retried.
  static constexpr size_t kMaxRetainedBody = 1 << 20;

  HcmStats& stats() { return *parent_.config().stats; }
  void pauseDownstream(bool pause) {
    if (pause == downstream_paused_) return;
    downstream_paused_ = pause;
    parent_.connection().readDisable(pause);
  }
  void route();
  void startUpstreamAttempt();
  void endUpstreamAttempt();
  bool retryOn(uint32_t conditions);
  bool maybeRetry(uint32_t conditions);
  void sendLocalReply(int status, std::string body, stream_info::ResponseFlag flag, std::string_view details);
  void onUpstreamHeaders(http::HeaderMapPtr headers, bool end_stream);
  void onUpstreamBody(buffer::Buffer& data, bool end_stream);
  void onUpstreamTrailers(http::HeaderMapPtr trailers);
  void onUpstreamComplete();
  void onResponseTimeout();
  void onPerTryTimeout();
  void onStreamIdleTimeout();
  // Lets go of the current upstream attempt, whatever stage it is in.
  void abandonUpstream();
  // Ends the stream with a local reply, or by resetting once the response started.
  void failStream(int status, std::string body, stream_info::ResponseFlag flag, std::string_view details);
  // Any bytes in either direction count as activity for stream_idle_timeout.
  void touch() {
    if (idle_timer_) idle_timer_->enable(parent_.config().stream_idle_timeout);
  }
  void countResponse(int status);
  void finishResponse();
  void releaseUpstream(bool reusable);
  std::chrono::nanoseconds sinceStart() const { return std::chrono::steady_clock::now() - info_.start_mono; }

  ConnectionManager& parent_;
  http::ResponseEncoder& encoder_;
  stream_info::StreamInfo info_;
  http::HeaderMapPtr request_headers_;
  http::HeaderMapPtr response_headers_;
  buffer::Buffer request_body_;  // arrived before the upstream was ready
  std::string retained_body_;    // the whole body, for retries
  bool body_retained_ = true;
  http::HeaderMapPtr request_trailers_;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  const router::RouteEntry* route_ = nullptr;
  upstream::ClusterConstSharedPtr cluster_;
  upstream::ThreadLocalCluster* tl_cluster_ = nullptr;
  http::pool::ConnPool* pool_ = nullptr;
  http::pool::PooledConnection* upstream_ = nullptr;
  http::RequestEncoder* upstream_encoder_ = nullptr;
  UpstreamDecoder upstream_decoder_{*this};
  std::unique_ptr<event::Timer> response_timer_;
  std::unique_ptr<event::Timer> retry_timer_;
  std::unique_ptr<event::Timer> request_timer_;
  std::unique_ptr<event::Timer> per_try_timer_;
  std::unique_ptr<event::Timer> idle_timer_;
  std::unique_ptr<event::Timer> duration_timer_;
  std::chrono::steady_clock::time_point upstream_start_;
  bool upstream_request_complete_ = false;
  bool attempt_active_ = false;
  uint32_t retries_left_ = 0;
  uint32_t retries_done_ = 0;
  bool downstream_paused_ = false;
  bool upstream_paused_ = false;
  bool on_reused_connection_ = false;
  bool replayed_on_fresh_ = false;
};

void ActiveStream::decodeHeaders(http::HeaderMapPtr headers, bool end_stream) {
  request_headers_ = std::move(headers);
  info_.request_headers = request_headers_.get();
  request_complete_ = end_stream;
  const auto& config = parent_.config();
  if (config.generate_request_id && !request_headers_->has("x-request-id")) {
    request_headers_->add("x-request-id", requestId());
  }
  if (config.use_remote_address) {
    const std::string remote = parent_.connection().remoteAddress().ip();
    const std::string_view existing = request_headers_->getValue("x-forwarded-for");
    request_headers_->set("x-forwarded-for", existing.empty() ? remote : absl::StrCat(std::string(existing), ",", remote));
  }
  if (!request_headers_->has("x-forwarded-proto")) request_headers_->add("x-forwarded-proto", "http");
  // x-envoy-* request headers steer retries and timeouts; as Envoy, they are
  // taken only from internal clients when Courier sits at the edge.
  if (config.use_remote_address) {
    const network::Address& remote = parent_.connection().remoteAddress();
    if (isInternal(remote)) {
      request_headers_->set("x-envoy-internal", "true");
    } else {
      std::vector<std::string> doomed;
      for (const auto& e : *request_headers_) {
        if (e.key().substr(0, 8) == "x-envoy-") doomed.emplace_back(e.key());
      }
      for (const auto& key : doomed) request_headers_->remove(key);
      request_headers_->set("x-envoy-external-address", remote.ip());
    }
  }
  // Envoy answers "100 Continue" itself (proxy_100_continue off) and does not
  // pass the expectation on.
  if (parent_.codec().expect100Continue()) {
    encoder_.encode100ContinueHeaders();
    parent_.flushOutput();
    request_headers_->remove("expect");
  }
  if (!request_complete_ && parent_.config().request_timeout.count() > 0) {
    request_timer_ = parent_.worker().dispatcher.createTimer([this] {
      if (response_started_) return;
      stats().downstream_rq_timeout.inc();
      abandonUpstream();
      sendLocalReply(408, "request timeout", static_cast<stream_info::ResponseFlag>(0), "request_overall_timeout");
    });
    request_timer_->enable(parent_.config().request_timeout);
  }
  route();
}

void ActiveStream::route() {
  const uint64_t random = rng()();
  route_ = parent_.config().route_table->route(*request_headers_, random);
  if (route_ == nullptr) {
    stats().no_route.inc();
    sendLocalReply(404, "", stream_info::kNoRouteFound, "route_not_found");
    return;
  }
  info_.route_name = route_->name;
  if (route_->action == router::RouteEntry::ActionKind::DirectResponse) {
    stats().rq_direct_response.inc();
    sendLocalReply(static_cast<int>(route_->direct_response.status), route_->direct_response.body,
                   static_cast<stream_info::ResponseFlag>(0), "direct_response");
    return;
  }
  if (route_->action == router::RouteEntry::ActionKind::Redirect) {
    stats().rq_redirect.inc();
    const auto& r = route_->redirect;
    std::string path(request_headers_->path());
    if (!r.path.empty()) path = r.path;
    if (r.strip_query) path = path.substr(0, path.find('?'));
    std::string host = r.host.empty() ? std::string(request_headers_->host()) : r.host;
    if (r.port != 0) host = absl::StrCat(host.substr(0, host.rfind(':')), ":", r.port);
    http::ResponseHeaderMap reply;
    reply.setStatus(static_cast<int>(r.response_code));
    reply.add("location", absl::StrCat(r.scheme.empty() ? "http" : r.scheme, "://", host, path));
    reply.add("server", parent_.config().server_name);
    countResponse(static_cast<int>(r.response_code));
    info_.response_code_details = "direct_response";
    encoder_.encodeHeaders(reply, true);
    finishResponse();
    return;
  }
  std::string cluster_name = route_->cluster;
  if (!route_->weighted_clusters.empty()) {
    if (const auto* wc = route_->pickWeightedCluster(random)) cluster_name = wc->name;
  } else if (!route_->cluster_header.empty()) {
    cluster_name = std::string(request_headers_->getValue(route_->cluster_header));
  }
  info_.upstream_cluster = cluster_name;
  tl_cluster_ = parent_.worker().cluster_manager.get(cluster_name);
  if (tl_cluster_ == nullptr) {
    stats().no_cluster.inc();
    sendLocalReply(503, "", stream_info::kNoClusterFound, "cluster_not_found");
    return;
  }
  cluster_ = tl_cluster_->shared();
  // Rewrites and headers the upstream sees.
  if (!route_->prefix_rewrite.empty() || route_->regex_rewrite != nullptr) {
    request_headers_->set(":path", router::rewritePath(*route_, request_headers_->path()));
  }
  if (!route_->host_rewrite_literal.empty()) request_headers_->set(":authority", route_->host_rewrite_literal);
  for (const auto& name : route_->header_mutations.request_headers_to_remove) request_headers_->remove(name);
  for (const auto& h : route_->header_mutations.request_headers_to_add) {
    if (h.action == router::AppendAction::AddIfAbsent && request_headers_->has(h.key)) continue;
    if (h.action == router::AppendAction::OverwriteIfExists && !request_headers_->has(h.key)) continue;
    if (h.action == router::AppendAction::AppendIfExistsOrAdd) {
      request_headers_->add(h.key, h.value);
    } else {
      request_headers_->set(h.key, h.value);
    }
  }
  if (route_->retry_policy.has_value()) {
    retries_left_ = route_->retry_policy->num_retries;
    uint32_t max_retries;
    if (absl::SimpleAtoi(absl::string_view(std::string(request_headers_->getValue("x-envoy-max-retries"))), &max_retries)) {
      retries_left_ = max_retries;
    }
  }
  std::chrono::milliseconds timeout = route_->timeout;
  uint64_t header_timeout;
  if (absl::SimpleAtoi(absl::string_view(std::string(request_headers_->getValue("x-envoy-upstream-rq-timeout-ms"))),
                       &header_timeout)) {
    timeout = std::chrono::milliseconds(header_timeout);
  }
  request_headers_->remove("x-envoy-upstream-rq-timeout-ms");
  request_headers_->remove("x-envoy-max-retries");
  if (timeout.count() > 0) {
    request_headers_->set("x-envoy-expected-rq-timeout-ms", std::to_string(timeout.count()));
    // The route timeout covers every attempt, as Envoy's global timeout does.
    response_timer_ = parent_.worker().dispatcher.createTimer([this] { onResponseTimeout(); });
    response_timer_->enable(timeout);
  }
  startUpstreamAttempt();
}

void ActiveStream::startUpstreamAttempt() {
  const upstream::Host* host = tl_cluster_->loadBalancer().chooseHost();
  if (host == nullptr) {
    cluster_->stats->upstream_cx_none_healthy.inc();
    sendLocalReply(503, "no healthy upstream", stream_info::kNoHealthyUpstream, "no_healthy_upstream");
    return;
  }
  info_.upstream_host = host->address;
  if (route_->auto_host_rewrite && !host->hostname.empty()) request_headers_->set(":authority", host->hostname);
  cluster_->stats->upstream_rq_total.inc();
  cluster_->stats->upstream_rq_active.inc();
  attempt_active_ = true;
  upstream_start_ = std::chrono::steady_clock::now();
  upstream_request_complete_ = false;
  pool_ = &parent_.worker().http_pools.pool(cluster_, *host);
  if (route_->retry_policy.has_value() && route_->retry_policy->per_try_timeout.has_value()) {
    per_try_timer_ = parent_.worker().dispatcher.createTimer([this] { onPerTryTimeout(); });
    per_try_timer_->enable(*route_->retry_policy->per_try_timeout);
  }
  pool_->newStream(*this);
}

void ActiveStream::onStreamIdleTimeout() {
  abandonUpstream();
  failStream(408, "stream timeout", stream_info::kStreamIdleTimeout, "stream_idle_timeout");
}

void ActiveStream::abandonUpstream() {
  if (retry_timer_) retry_timer_->disable();
  if (pool_ != nullptr) {
    if (upstream_ != nullptr) {
      releaseUpstream(false);
    } else {
      pool_->cancel(*this);
      pool_ = nullptr;
    }
  }
  endUpstreamAttempt();
}

void ActiveStream::failStream(int status, std::string body, stream_info::ResponseFlag flag, std::string_view details) {
  if (!response_started_) {
    sendLocalReply(status, std::move(body), flag, details);
    return;
  }
  // Part of the response is out: all that is left is to cut the connection.
  info_.setResponseFlag(flag);
  parent_.connection().close(network::CloseType::NoFlush);
}

void ActiveStream::onPerTryTimeout() {
  if (response_started_) return;
  cluster_->stats->upstream_rq_per_try_timeout.inc();
  if (pool_ != nullptr && upstream_ == nullptr) {
    pool_->cancel(*this);
    pool_ = nullptr;
  }
  if (maybeRetry(router::retry_on::k5xx | router::retry_on::kGatewayError | router::retry_on::kReset)) return;
  releaseUpstream(false);
  endUpstreamAttempt();
  sendLocalReply(504, "upstream request timeout", stream_info::kUpstreamRequestTimeout, "upstream_per_try_timeout");
}

void ActiveStream::endUpstreamAttempt() {
  if (per_try_timer_) per_try_timer_->disable();
  if (!attempt_active_) return;
  attempt_active_ = false;
  cluster_->stats->upstream_rq_active.dec();
}

void ActiveStream::onPoolReady(http::pool::PooledConnection& connection) {
  upstream_ = &connection;
  on_reused_connection_ = connection.requestCount() > 1;
  upstream_encoder_ = &connection.codec().newStream(upstream_decoder_);
  if (retries_done_ > 0) {
    // A retry replays the whole request, which is complete by now.
    buffer::Buffer body;
    body.add(retained_body_);
    const bool has_body = !body.empty();
    upstream_encoder_->encodeHeaders(*request_headers_, !has_body && !request_trailers_);
    if (has_body) upstream_encoder_->encodeData(body, !request_trailers_);
  } else {
    const bool has_body = !request_body_.empty();
    upstream_encoder_->encodeHeaders(*request_headers_, request_complete_ && !has_body && !request_trailers_);
    if (has_body) upstream_encoder_->encodeData(request_body_, request_complete_ && !request_trailers_);
  }
  if (request_trailers_) upstream_encoder_->encodeTrailers(*request_trailers_);
  upstream_request_complete_ = request_complete_;
  info_.first_upstream_tx_byte_sent = sinceStart();
  connection.flush();
}

void ActiveStream::decodeData(buffer::Buffer& data, bool end_stream) {
  touch();
  request_complete_ = end_stream;
  if (end_stream && request_timer_) request_timer_->disable();
  info_.bytes_received += data.length();
  if (body_retained_ && retries_left_ > 0) {
    if (retained_body_.size() + data.length() > kMaxRetainedBody) {
      body_retained_ = false;
      retained_body_.clear();
    } else {
      retained_body_ += data.toString();
    }
  }
  if (end_stream) info_.last_downstream_rx_byte_received = sinceStart();
  if (upstream_encoder_ != nullptr) {
    upstream_encoder_->encodeData(data, end_stream);
    upstream_request_complete_ = end_stream;
    upstream_->flush();
  } else {
    request_body_.move(data);
  }
}

void ActiveStream::decodeTrailers(http::HeaderMapPtr trailers) {
  request_complete_ = true;
  if (request_timer_) request_timer_->disable();
  info_.last_downstream_rx_byte_received = sinceStart();
  if (upstream_encoder_ != nullptr) {
    upstream_encoder_->encodeTrailers(*trailers);
    upstream_request_complete_ = true;
    upstream_->flush();
  }
  request_trailers_ = std::move(trailers);
}

bool ActiveStream::retryOn(uint32_t conditions) {
  return route_ != nullptr && route_->retry_policy.has_value() && (route_->retry_policy->retry_on & conditions) != 0;
}

bool ActiveStream::maybeRetry(uint32_t conditions) {
  if (!retryOn(conditions)) return false;
  if (retries_left_ == 0) {
    cluster_->stats->upstream_rq_retry_limit_exceeded.inc();
    info_.setResponseFlag(stream_info::kUpstreamRetryLimitExceeded);
    return false;
  }
  // Only a request known in full can be replayed, and only before the client
  // has seen anything of a response.
  if (!request_complete_ || !body_retained_ || response_started_) return false;
  --retries_left_;
  ++retries_done_;
  cluster_->stats->upstream_rq_retry.inc();
  releaseUpstream(false);
  endUpstreamAttempt();
  // Fully jittered exponential back-off, as Envoy's.
  const auto& policy = *route_->retry_policy;
  uint64_t ceiling = static_cast<uint64_t>(policy.base_interval.count()) << std::min<uint32_t>(retries_done_ - 1, 10);
  ceiling = std::min<uint64_t>(ceiling, static_cast<uint64_t>(policy.max_interval.count()));
  const auto delay = std::chrono::milliseconds(ceiling == 0 ? 0 : rng()() % (ceiling + 1));
  retry_timer_ = parent_.worker().dispatcher.createTimer([this] { startUpstreamAttempt(); });
  retry_timer_->enable(delay);
  return true;
}

void ActiveStream::onPoolFailure(Failure) {
  pool_ = nullptr;
  endUpstreamAttempt();
  if (maybeRetry(router::retry_on::kConnectFailure | router::retry_on::k5xx | router::retry_on::kGatewayError |
                 router::retry_on::kReset)) {
    return;
  }
  info_.upstream_transport_failure_reason = "connection failure";
  sendLocalReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                 stream_info::kUpstreamConnectionFailure, "upstream_reset_before_response_started{connection_failure}");
}

void ActiveStream::onUpstreamData(buffer::Buffer& data) {
  http::pool::PooledConnection* conn = upstream_;
  auto err = conn->codec().dispatch(data);
  if (err.has_value() && !response_complete_ && upstream_ == conn) {
    releaseUpstream(false);
    endUpstreamAttempt();
    if (!response_started_) {
      sendLocalReply(503, "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
                     stream_info::kUpstreamProtocolError, "upstream_reset_before_response_started{protocol_error}");
    } else {
      info_.setResponseFlag(stream_info::kUpstreamProtocolError);
      parent_.connection().close(network::CloseType::NoFlush);
    }
  }
}

void ActiveStream::onUpstreamClosed() {
  // The pool has dropped the connection; a close-delimited body ends here.
  http::pool::PooledConnection* conn = upstream_;
  upstream_ = nullptr;
  upstream_encoder_ = nullptr;
  pool_ = nullptr;
  if (response_complete_) return;
  if (conn != nullptr && response_started_) {
    upstream_ = conn;  // let the decoder callbacks through for the final bytes
    auto err = conn->codec().onConnectionClosed();
    upstream_ = nullptr;
    if (!err.has_value() && response_complete_) return;
  }
  endUpstreamAttempt();
  if (!response_started_) {
    // A kept-alive connection the upstream closed as we reused it: the
    // request never reached it. Replay a complete, bodyless, idempotent
    // request once on a fresh connection, whatever the retry policy.
    const std::string_view method = request_headers_->method();
    const bool idempotent = method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
                            method == "DELETE" || method == "TRACE";
    if (on_reused_connection_ && !replayed_on_fresh_ && idempotent && request_complete_ && info_.bytes_received == 0) {
      replayed_on_fresh_ = true;
      startUpstreamAttempt();
      return;
    }
    if (maybeRetry(router::retry_on::kReset | router::retry_on::k5xx | router::retry_on::kGatewayError)) return;
    sendLocalReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
                   stream_info::kUpstreamConnectionTermination,
                   "upstream_reset_before_response_started{connection_termination}");
  } else {
    // Mid-body: the client must see the response was cut short.
    info_.setResponseFlag(stream_info::kUpstreamConnectionTermination);
    parent_.connection().close(network::CloseType::NoFlush);
  }
}

void ActiveStream::onUpstreamHeaders(http::HeaderMapPtr headers, bool end_stream) {
  const int status = headers->status();
  switch (status / 100) {
    case 1: cluster_->stats->upstream_rq_1xx.inc(); break;
    case 2: cluster_->stats->upstream_rq_2xx.inc(); break;
    case 3: cluster_->stats->upstream_rq_3xx.inc(); break;
    case 4: cluster_->stats->upstream_rq_4xx.inc(); break;
    default: cluster_->stats->upstream_rq_5xx.inc(); break;
  }
  if (route_->retry_policy.has_value()) {
    uint32_t conditions = 0;
    if (status >= 500) conditions |= router::retry_on::k5xx;
    if (status == 502 || status == 503 || status == 504) conditions |= router::retry_on::kGatewayError;
    if (status == 409) conditions |= router::retry_on::kRetriable4xx;
    for (uint32_t code : route_->retry_policy->retriable_status_codes) {
      if (code == static_cast<uint32_t>(status)) conditions |= router::retry_on::kRetriableStatusCodes;
    }
    if (conditions != 0 && maybeRetry(conditions)) return;
  }
  if (per_try_timer_) per_try_timer_->disable();
  touch();
  if (retries_done_ > 0 && status < 500) cluster_->stats->upstream_rq_retry_success.inc();
  if (response_timer_ && end_stream) response_timer_->disable();
  response_started_ = true;
  headers->set("x-envoy-upstream-service-time",
               std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - upstream_start_)
                                  .count()));
  headers->set("server", parent_.config().server_name);
  for (const auto& name : route_->header_mutations.response_headers_to_remove) headers->remove(name);
  for (const auto& h : route_->header_mutations.response_headers_to_add) {
    if (h.action == router::AppendAction::AppendIfExistsOrAdd) {
      headers->add(h.key, h.value);
    } else if (!(h.action == router::AppendAction::AddIfAbsent && headers->has(h.key))) {
      headers->set(h.key, h.value);
    }
  }
  // Hop-by-hop headers are the codec's business on each side.
  headers->remove("connection");
  headers->remove("transfer-encoding");
  headers->remove("keep-alive");
  countResponse(status);
  info_.response_code_details = "via_upstream";
  info_.first_downstream_tx_byte_sent = sinceStart();
  response_headers_ = std::move(headers);
  info_.response_headers = response_headers_.get();
  encoder_.encodeHeaders(*response_headers_, end_stream);
  if (end_stream) onUpstreamComplete();
  parent_.flushOutput();
}

void ActiveStream::onUpstreamBody(buffer::Buffer& data, bool end_stream) {
  touch();
  info_.bytes_sent += data.length();
  encoder_.encodeData(data, end_stream);
  if (end_stream) onUpstreamComplete();
  parent_.flushOutput();
}

void ActiveStream::onUpstreamTrailers(http::HeaderMapPtr trailers) {
  encoder_.encodeTrailers(*trailers);
  onUpstreamComplete();
  parent_.flushOutput();
}

void ActiveStream::onUpstreamComplete() {
  if (response_timer_) response_timer_->disable();
  info_.last_upstream_rx_byte_received = sinceStart();
  cluster_->stats->upstream_rq_time.recordValue(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - upstream_start_).count()));
  // Reusable only if the whole request went out and the upstream keeps it open.
  const bool reusable = upstream_request_complete_ && upstream_ != nullptr && !upstream_->codec().shouldClose();
  releaseUpstream(reusable);
  endUpstreamAttempt();
  finishResponse();
}

void ActiveStream::releaseUpstream(bool reusable) {
  pauseDownstream(false);
  if (upstream_paused_ && upstream_ != nullptr) upstream_->connection().readDisable(false);
  upstream_paused_ = false;
  if (pool_ != nullptr && upstream_ != nullptr) pool_->release(*upstream_, reusable);
  upstream_ = nullptr;
  upstream_encoder_ = nullptr;
  pool_ = nullptr;
}

void ActiveStream::onResponseTimeout() {
  stats().downstream_rq_timeout.inc();
  if (cluster_ != nullptr) cluster_->stats->upstream_rq_timeout.inc();
  abandonUpstream();
  failStream(504, "upstream request timeout", stream_info::kUpstreamRequestTimeout, "upstream_response_timeout");
}

void ActiveStream::sendLocalReply(int status, std::string body, stream_info::ResponseFlag flag,
                                  std::string_view details) {
  if (response_timer_) response_timer_->disable();
  if (flag != 0) info_.setResponseFlag(flag);
  info_.response_code_details = std::string(details);
  auto reply = std::make_unique<http::ResponseHeaderMap>();
  reply->setStatus(status);
  if (!body.empty()) {
    reply->add("content-length", std::to_string(body.size()));
    reply->add("content-type", "text/plain");
  }
  reply->add("server", parent_.config().server_name);
  countResponse(status);
  response_started_ = true;
  info_.first_downstream_tx_byte_sent = sinceStart();
  response_headers_ = std::move(reply);
  info_.response_headers = response_headers_.get();
  encoder_.encodeHeaders(*response_headers_, body.empty());
  if (!body.empty()) {
    info_.bytes_sent += body.size();
    buffer::Buffer b;
    b.add(body);
    encoder_.encodeData(b, true);
  }
  finishResponse();
  parent_.flushOutput();
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
  if (idle_timer_) idle_timer_->disable();
  if (duration_timer_) duration_timer_->disable();
  info_.last_downstream_tx_byte_sent = sinceStart();
  stats().downstream_rq_time.recordValue(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(*info_.last_downstream_tx_byte_sent).count()));
  parent_.onStreamComplete(*this);
}

ConnectionManager::ConnectionManager(std::shared_ptr<const HcmConfig> config, server::WorkerContext& worker)
    : config_(std::move(config)), worker_(worker) {}

ConnectionManager::~ConnectionManager() {
  // The stream may hold a pooled upstream connection; release it first.
  stream_.reset();
  config_->stats->downstream_cx_active.dec();
}

void ConnectionManager::initializeReadFilterCallbacks(network::ReadFilterCallbacks& callbacks) {
  callbacks_ = &callbacks;
  callbacks.connection().addConnectionCallbacks(*this);
}

network::FilterStatus ConnectionManager::onNewConnection() {
  config_->stats->downstream_cx_total.inc();
  config_->stats->downstream_cx_active.inc();
  codec_ = std::make_unique<http::http1::ServerConnection>(*this, output_, config_->http1);
  if (config_->request_headers_timeout.count() > 0) {
    // A client that never finishes its headers (slowloris) is cut off with 408.
    headers_timer_ = worker_.dispatcher.createTimer([this] {
      if (stream_ != nullptr) return;
      config_->stats->downstream_rq_timeout.inc();
      // Armed only once request bytes arrived, so there is a client to answer.
      codec_->sendErrorResponse({http::CodecError::Kind::Protocol, 408, "request_header_timeout", "request headers timed out"});
      closing_ = true;
      flushOutput();
      connection().close(network::CloseType::FlushWrite);
    });
  }
  if (config_->idle_timeout.count() > 0) {
    idle_timer_ = worker_.dispatcher.createTimer([this] { connection().close(network::CloseType::FlushWrite); });
    idle_timer_->enable(config_->idle_timeout);
  }
  return network::FilterStatus::Continue;
}

network::FilterStatus ConnectionManager::onData(buffer::Buffer& data, bool end_stream) {
  // Envoy's request_headers_timeout runs from a request's first byte.
  if (headers_timer_ && stream_ == nullptr && !headers_timer_->enabled() && input_.empty() && !data.empty()) {
    headers_timer_->enable(config_->request_headers_timeout);
  }
  input_.move(data);
  dispatch();
  if (end_stream && !closing_ && stream_ == nullptr) connection().close(network::CloseType::FlushWrite);
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
    auto err = codec_->dispatch(input_);
    if (err.has_value()) {
      dispatching_ = false;
      onCodecError(*err);
      return;
    }
  } while (redispatch_ && !closing_ && !input_.empty());
  dispatching_ = false;
  // Pipelined bytes wait while a response is pending; stop reading more of
  // them so a client cannot queue unbounded input.
  if (!closing_ && codec_->waitingForResponse() && !input_.empty() && !input_paused_) {
    input_paused_ = true;
    connection().readDisable(true);
  }
  flushOutput();
}

void ConnectionManager::onCodecError(const http::CodecError& error) {
  config_->stats->downstream_cx_protocol_error.inc();
  spdlog::debug("[C{}] http1 codec error: {} ({})", connection().id(), error.details, error.message);
  if (stream_ == nullptr || !stream_->complete()) {
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
  stream_ = std::make_unique<ActiveStream>(*this, encoder);
  return *stream_;
}

void ConnectionManager::flushOutput() {
  if (!output_.empty()) connection().write(output_, false);
}

void ConnectionManager::onStreamComplete(ActiveStream& stream) {
  flushOutput();
  // The stream may be deep in its own call stack: delete it after this turn.
  if (stream_.get() == &stream) {
    struct Holder : event::DeferredDeletable {
      std::unique_ptr<ActiveStream> s;
    };
    auto holder = std::make_unique<Holder>();
    holder->s = std::move(stream_);
    worker_.dispatcher.deferredDelete(std::move(holder));
  }
  // A response that finished before its request did (a local reply to an
  // upload, say) leaves the rest of the request unread: close, as Envoy does
  // for HTTP/1.
  if (codec_->shouldClose() || !stream.requestComplete()) {
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

void ConnectionManager::onAboveWriteBufferHighWatermark() {
  if (stream_ != nullptr) stream_->onDownstreamWatermark(true);
}

void ConnectionManager::onBelowWriteBufferLowWatermark() {
  if (stream_ != nullptr) stream_->onDownstreamWatermark(false);
}

void ConnectionManager::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) return;
  closing_ = true;
  if (headers_timer_) headers_timer_->disable();
  if (idle_timer_) idle_timer_->disable();
  stream_.reset();
}

}  // namespace courier::extensions::http_connection_manager
