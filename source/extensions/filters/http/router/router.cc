#include "source/extensions/filters/http/router/router.h"
#include "source/common/common/random.h"

#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "source/common/grpc/common.h"
#include "source/common/router/hash_policy.h"
#include "source/common/upstream/health_checker.h"
#include "source/common/upstream/outlier_detection.h"
#include "source/extensions/filters/http/router/shadow_request.h"

namespace courier::extensions::router {
namespace {

namespace rt = courier::router;

bool headerNumber(const http::HeaderMap& headers, std::string_view key, uint64_t& out) {
  const std::string_view v = headers.getValue(key);
  return !v.empty() && absl::SimpleAtoi(absl::string_view(v.data(), v.size()), &out);
}

}  // namespace

RouterStats::RouterStats(stats::Store& store, const std::string& prefix)
#define COURIER_ROUTER_COUNTER(n) n(store.counter(absl::StrCat("http.", prefix, "." #n)))
    : COURIER_ROUTER_COUNTER(no_route),
      COURIER_ROUTER_COUNTER(no_cluster),
      COURIER_ROUTER_COUNTER(rq_direct_response),
      COURIER_ROUTER_COUNTER(rq_redirect),
      COURIER_ROUTER_COUNTER(rq_total),
      COURIER_ROUTER_COUNTER(rq_reset_after_downstream_response_started) {
}
#undef COURIER_ROUTER_COUNTER

RouterFilter::~RouterFilter() { onDestroy(); }

void RouterFilter::setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) {
  callbacks_ = &callbacks;
  callbacks.addDownstreamWatermarkCallbacks(*this);
}

void RouterFilter::onDestroy() {
  if (destroyed_) return;
  destroyed_ = true;
  if (response_timer_) response_timer_->disable();
  abandonUpstream();
}

std::chrono::nanoseconds RouterFilter::sinceStart() {
  return std::chrono::steady_clock::now() - callbacks_->streamInfo().start_mono;
}

http::FilterHeadersStatus RouterFilter::decodeHeaders(http::HeaderMap& headers, bool end_stream) {
  request_headers_ = &headers;
  request_complete_ = end_stream;
  auto& info = callbacks_->streamInfo();
  route_ = callbacks_->route();
  if (route_ == nullptr) {
    config_->stats.no_route.inc();
    callbacks_->sendLocalReply(404, "", stream_info::kNoRouteFound, "route_not_found");
    return http::FilterHeadersStatus::StopIteration;
  }
  info.route_name = route_->name;
  if (route_->action == rt::RouteEntry::ActionKind::DirectResponse) {
    config_->stats.rq_direct_response.inc();
    callbacks_->sendLocalReply(static_cast<int>(route_->direct_response.status), route_->direct_response.body,
                               static_cast<stream_info::ResponseFlag>(0), "direct_response");
    return http::FilterHeadersStatus::StopIteration;
  }
  if (route_->action == rt::RouteEntry::ActionKind::Redirect) {
    sendRedirect();
    return http::FilterHeadersStatus::StopIteration;
  }
  std::string cluster_name = route_->cluster;
  if (!route_->weighted_clusters.empty()) {
    if (const auto* wc = route_->pickWeightedCluster(threadRandom()())) cluster_name = wc->name;
  } else if (!route_->cluster_header.empty()) {
    cluster_name = std::string(headers.getValue(route_->cluster_header));
  }
  info.upstream_cluster = cluster_name;
  tl_cluster_ = callbacks_->worker().cluster_manager.get(cluster_name);
  if (tl_cluster_ == nullptr) {
    config_->stats.no_cluster.inc();
    callbacks_->sendLocalReply(503, "", stream_info::kNoClusterFound, "cluster_not_found");
    return http::FilterHeadersStatus::StopIteration;
  }
  cluster_ = tl_cluster_->shared();
  // The route's priority picks the circuit breakers this request counts against.
  resources_ = &cluster_->resourcesFor(route_->high_priority);
  config_->stats.rq_total.inc();
  // Hashed on the headers as the client sent them, before route mutations,
  // as Envoy picks the host before finalizing the upstream headers.
  {
    const network::Address* remote = &callbacks_->streamInfo().downstream_remote_address;
    if (!remote->valid()) remote = nullptr;
    std::optional<uint64_t> hash;
    if (!route_->hash_policy.empty()) hash = rt::computeHash(route_->hash_policy, headers, remote);
    lb_context_ = upstream::FixedLoadBalancerContext(hash, remote);
    lb_context_.setDownstreamLocalAddress(&callbacks_->streamInfo().downstream_local_address);
    if (!cluster_->original_dst_host_header.empty()) {
      if (const auto* entry = headers.get(cluster_->original_dst_host_header); entry != nullptr) {
        lb_context_.setOriginalDstHost(std::string(headers.getValue(cluster_->original_dst_host_header)));
      }
    }
  }
  // Rewrites and headers the upstream sees.
  if (!route_->prefix_rewrite.empty() || route_->regex_rewrite != nullptr) {
    headers.set(":path", rt::rewritePath(*route_, headers.path()));
  }
  if (!route_->host_rewrite_literal.empty()) headers.set(":authority", route_->host_rewrite_literal);
  for (const auto& name : route_->header_mutations.request_headers_to_remove) headers.remove(name);
  for (const auto& h : route_->header_mutations.request_headers_to_add) {
    if (h.action == rt::AppendAction::AddIfAbsent && headers.has(h.key)) continue;
    if (h.action == rt::AppendAction::OverwriteIfExists && !headers.has(h.key)) continue;
    if (h.action == rt::AppendAction::AppendIfExistsOrAdd) {
      headers.add(h.key, h.value);
    } else {
      headers.set(h.key, h.value);
    }
  }
  // x-envoy-* control headers reach here only from trusted clients: the
  // connection manager strips them from external ones.
  if (route_->retry_policy.has_value()) {
    retries_left_ = route_->retry_policy->num_retries;
    uint64_t max_retries;
    if (headerNumber(headers, "x-envoy-max-retries", max_retries)) retries_left_ = static_cast<uint32_t>(max_retries);
  }
  std::chrono::milliseconds timeout = route_->timeout;
  if (route_->max_grpc_timeout.has_value() && grpc::hasGrpcContentType(headers)) {
    // Envoy's finalTimeout: the client's own deadline governs a gRPC call,
    // capped by the route's maximum; without grpc-timeout the maximum applies
    // (0 on either side meaning none).
    const std::chrono::milliseconds max = *route_->max_grpc_timeout;
    std::chrono::milliseconds grpc_timeout{0};
    if (auto t = grpc::parseTimeout(headers.getValue("grpc-timeout"))) grpc_timeout = *t;
    if (max.count() > 0 && (grpc_timeout.count() == 0 || grpc_timeout > max)) grpc_timeout = max;
    timeout = grpc_timeout;
  }
  uint64_t header_timeout;
  if (headerNumber(headers, "x-envoy-upstream-rq-timeout-ms", header_timeout)) {
    timeout = std::chrono::milliseconds(header_timeout);
  }
  headers.remove("x-envoy-upstream-rq-timeout-ms");
  headers.remove("x-envoy-max-retries");
  timeout_ = timeout;
  for (const auto& mirror : route_->request_mirror_policies) {
    if (!mirror.fraction.enabled(threadRandom()())) continue;
    std::string name = mirror.cluster.empty() ? std::string(headers.getValue(mirror.cluster_header)) : mirror.cluster;
    if (name.empty()) continue;
    shadows_.push_back({std::move(name), mirror.disable_shadow_host_suffix_append});
  }
  if (timeout.count() > 0) {
    if (!config_->suppress_envoy_headers) {
      headers.set("x-envoy-expected-rq-timeout-ms", std::to_string(timeout.count()));
    }
    // The route timeout covers every attempt, as Envoy's global timeout does.
    response_timer_ = callbacks_->dispatcher().createTimer([this] { onResponseTimeout(); });
    response_timer_->enable(timeout);
  }
  if (end_stream) sendShadows();
  startUpstreamAttempt();
  return http::FilterHeadersStatus::StopIteration;
}

void RouterFilter::sendShadows() {
  // Once, with the request as the upstream sees it; a body too large to keep
  // is not mirrored.
  if (shadows_.empty() || !body_retained_) return;
  for (const auto& shadow : shadows_) {
    upstream::ThreadLocalCluster* cluster = callbacks_->worker().cluster_manager.get(shadow.cluster);
    if (cluster == nullptr) continue;
    auto headers = std::make_unique<http::HeaderMap>(*request_headers_);
    if (!shadow.keep_host) headers->set(":authority", absl::StrCat(std::string(headers->host()), "-shadow"));
    http::HeaderMapPtr trailers;
    if (request_trailers_ != nullptr) trailers = std::make_unique<http::HeaderMap>(*request_trailers_);
    ShadowRequest::send(callbacks_->worker(), *cluster, std::move(headers), retained_body_, std::move(trailers),
                        timeout_);
  }
  shadows_.clear();
}

void RouterFilter::sendRedirect() {
  config_->stats.rq_redirect.inc();
  const auto& r = route_->redirect;
  std::string path(request_headers_->path());
  if (!r.path.empty()) path = r.path;
  if (r.strip_query) path = path.substr(0, path.find('?'));
  std::string host = r.host.empty() ? std::string(request_headers_->host()) : r.host;
  if (r.port != 0) host = absl::StrCat(host.substr(0, host.rfind(':')), ":", r.port);
  auto reply = std::make_unique<http::HeaderMap>();
  reply->setStatus(static_cast<int>(r.response_code));
  reply->add("location", absl::StrCat(r.scheme.empty() ? "http" : r.scheme, "://", host, path));
  callbacks_->streamInfo().response_code_details = "direct_response";
  response_started_ = true;
  response_complete_ = true;
  callbacks_->encodeHeaders(std::move(reply), true);
}

void RouterFilter::startUpstreamAttempt() {
  const upstream::Host* host = tl_cluster_->loadBalancer().chooseHost(&lb_context_);
  if (host == nullptr) {
    cluster_->stats->upstream_cx_none_healthy.inc();
    callbacks_->sendLocalReply(503, "no healthy upstream", stream_info::kNoHealthyUpstream, "no_healthy_upstream");
    return;
  }
  if (!resources_->requests.canCreate()) {
    cluster_->stats->upstream_rq_pending_overflow.inc();
    sendOverflow();
    return;
  }
  callbacks_->streamInfo().upstream_host = host->address;
  if (route_->auto_host_rewrite && !host->hostname.empty()) request_headers_->set(":authority", host->hostname);
  cluster_->stats->upstream_rq_total.inc();
  cluster_->stats->upstream_rq_active.inc();
  resources_->requests.inc();
  host->active_requests.fetch_add(1, std::memory_order_relaxed);
  attempt_host_ = host;
  attempt_active_ = true;
  upstream_start_ = std::chrono::steady_clock::now();
  upstream_request_complete_ = false;
  pool_ = &callbacks_->worker().http_pools.pool(cluster_, *host, callbacks_->streamInfo().protocol == "HTTP/2",
                                                route_->high_priority);
  if (route_->retry_policy.has_value() && route_->retry_policy->per_try_timeout.has_value()) {
    per_try_timer_ = callbacks_->dispatcher().createTimer([this] { onPerTryTimeout(); });
    per_try_timer_->enable(*route_->retry_policy->per_try_timeout);
  }
  pool_->newStream(*this);
}

void RouterFilter::reportLocalOrigin(upstream::LocalOriginEvent event) {
  if (attempt_active_ && cluster_->outlier != nullptr) cluster_->outlier->reportLocalOrigin(*attempt_host_, event);
}

void RouterFilter::abandonUpstream() {
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

void RouterFilter::fail(int status, std::string_view body, stream_info::ResponseFlag flag, std::string_view details) {
  if (!response_started_) {
    callbacks_->sendLocalReply(status, body, flag, details);
    return;
  }
  // Part of the response is out: all that is left is to cut the stream.
  config_->stats.rq_reset_after_downstream_response_started.inc();
  callbacks_->streamInfo().setResponseFlag(flag);
  callbacks_->resetStream();
}

void RouterFilter::onPerTryTimeout() {
  if (response_started_) return;
  cluster_->stats->upstream_rq_per_try_timeout.inc();
  reportLocalOrigin(upstream::LocalOriginEvent::Timeout);
  if (pool_ != nullptr && upstream_ == nullptr) {
    pool_->cancel(*this);
    pool_ = nullptr;
  }
  if (maybeRetry(rt::retry_on::k5xx | rt::retry_on::kGatewayError | rt::retry_on::kReset)) return;
  releaseUpstream(false);
  endUpstreamAttempt();
  callbacks_->sendLocalReply(504, "upstream request timeout", stream_info::kUpstreamRequestTimeout,
                             "upstream_per_try_timeout");
}

void RouterFilter::endUpstreamAttempt() {
  if (per_try_timer_) per_try_timer_->disable();
  if (retry_open_) {
    retry_open_ = false;
    resources_->retries.dec();
  }
  if (!attempt_active_) return;
  attempt_active_ = false;
  attempt_host_->active_requests.fetch_sub(1, std::memory_order_relaxed);
  attempt_host_ = nullptr;
  cluster_->stats->upstream_rq_active.dec();
  resources_->requests.dec();
}

void RouterFilter::onPoolReady(http::pool::UpstreamStream& connection) {
  reportLocalOrigin(upstream::LocalOriginEvent::ConnectSuccess);
  upstream_ = &connection;
  on_reused_connection_ = connection.requestCount() > 1;
  upstream_encoder_ = &connection.newStream(upstream_decoder_);
  if (retries_done_ > 0) {
    // A retry replays the whole request, which is complete by now.
    buffer::Buffer body;
    body.add(retained_body_);
    const bool has_body = body.length() > 0;
    upstream_encoder_->encodeHeaders(*request_headers_, !has_body && request_trailers_ == nullptr);
    if (has_body) upstream_encoder_->encodeData(body, request_trailers_ == nullptr);
  } else {
    const bool has_body = request_body_.length() > 0;
    upstream_encoder_->encodeHeaders(*request_headers_,
                                     request_complete_ && !has_body && request_trailers_ == nullptr);
    if (has_body) upstream_encoder_->encodeData(request_body_, request_complete_ && request_trailers_ == nullptr);
  }
  if (request_trailers_ != nullptr) upstream_encoder_->encodeTrailers(*request_trailers_);
  upstream_request_complete_ = request_complete_;
  callbacks_->streamInfo().first_upstream_tx_byte_sent = sinceStart();
  connection.flush();
}

http::FilterDataStatus RouterFilter::decodeData(buffer::Buffer& data, bool end_stream) {
  request_complete_ = end_stream;
  if (body_retained_ && (retries_left_ > 0 || !shadows_.empty())) {
    if (retained_body_.size() + data.length() > kMaxRetainedBody) {
      body_retained_ = false;
      retained_body_.clear();
    } else {
      retained_body_ += data.toString();
    }
  }
  if (end_stream) sendShadows();
  if (upstream_encoder_ != nullptr) {
    upstream_encoder_->encodeData(data, end_stream);
    upstream_request_complete_ = end_stream;
    upstream_->flush();
    // A tunnel has no end-of-request marker: the client is done, so the
    // upstream connection goes once what we wrote is out.
    if (end_stream && upstream_->tunneling()) upstream_->closeUpstream();
  } else {
    request_body_.move(data);
  }
  return http::FilterDataStatus::StopIterationNoBuffer;
}

http::FilterTrailersStatus RouterFilter::decodeTrailers(http::HeaderMap& trailers) {
  request_complete_ = true;
  request_trailers_ = &trailers;
  sendShadows();
  if (upstream_encoder_ != nullptr) {
    upstream_encoder_->encodeTrailers(trailers);
    upstream_request_complete_ = true;
    upstream_->flush();
  }
  return http::FilterTrailersStatus::StopIteration;
}

bool RouterFilter::retryOn(uint32_t conditions) const {
  return route_ != nullptr && route_->retry_policy.has_value() && (route_->retry_policy->retry_on & conditions) != 0;
}

bool RouterFilter::maybeRetry(uint32_t conditions) {
  if (destroyed_ || !retryOn(conditions)) return false;
  if (retries_left_ == 0) {
    cluster_->stats->upstream_rq_retry_limit_exceeded.inc();
    callbacks_->streamInfo().setResponseFlag(stream_info::kUpstreamRetryLimitExceeded);
    return false;
  }
  // Only a request known in full can be replayed, and only before the client
  // has seen anything of a response.
  if (!request_complete_ || !body_retained_ || response_started_) return false;
  if (!resources_->canRetry()) {
    cluster_->stats->upstream_rq_retry_overflow.inc();
    callbacks_->streamInfo().setResponseFlag(stream_info::kUpstreamOverflow);
    return false;
  }
  --retries_left_;
  ++retries_done_;
  cluster_->stats->upstream_rq_retry.inc();
  releaseUpstream(false);
  endUpstreamAttempt();
  // Fully jittered exponential back-off, as Envoy's.
  const auto& policy = *route_->retry_policy;
  uint64_t ceiling = static_cast<uint64_t>(policy.base_interval.count()) << std::min<uint32_t>(retries_done_ - 1, 10);
  ceiling = std::min<uint64_t>(ceiling, static_cast<uint64_t>(policy.max_interval.count()));
  const auto delay = std::chrono::milliseconds(ceiling == 0 ? 0 : threadRandom()() % (ceiling + 1));
  // The retry counts against max_retries until its attempt ends.
  resources_->retries.inc();
  retry_open_ = true;
  retry_timer_ = callbacks_->dispatcher().createTimer([this] { startUpstreamAttempt(); });
  retry_timer_->enable(delay);
  return true;
}

void RouterFilter::sendOverflow() {
  endUpstreamAttempt();
  callbacks_->sendLocalReply(503, "upstream connect error or disconnect/reset before headers. reset reason: overflow",
                             stream_info::kUpstreamOverflow, "upstream_reset_before_response_started{overflow}");
}

void RouterFilter::onPoolFailure(Failure reason) {
  pool_ = nullptr;
  if (reason == Failure::Overflow) {
    // A circuit breaker is open: as Envoy, not retried.
    sendOverflow();
    return;
  }
  reportLocalOrigin(reason == Failure::Timeout ? upstream::LocalOriginEvent::Timeout
                                               : upstream::LocalOriginEvent::ConnectFailed);
  endUpstreamAttempt();
  if (maybeRetry(rt::retry_on::kConnectFailure | rt::retry_on::k5xx | rt::retry_on::kGatewayError |
                 rt::retry_on::kReset)) {
    return;
  }
  callbacks_->streamInfo().upstream_transport_failure_reason = "connection failure";
  callbacks_->sendLocalReply(503,
                             "upstream connect error or disconnect/reset before headers. reset reason: connection "
                             "failure",
                             stream_info::kUpstreamConnectionFailure,
                             "upstream_reset_before_response_started{connection_failure}");
}

void RouterFilter::onUpstreamData(buffer::Buffer& data) {
  auto& info = callbacks_->streamInfo();
  if (!info.first_upstream_rx_byte_received.has_value() && data.length() > 0) {
    info.first_upstream_rx_byte_received = sinceStart();
  }
  http::pool::UpstreamStream* conn = upstream_;
  auto err = conn->dispatch(data);
  if (err.has_value() && !response_complete_ && upstream_ == conn && !destroyed_) {
    releaseUpstream(false);
    endUpstreamAttempt();
    if (!response_started_) {
      callbacks_->sendLocalReply(
          503, "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
          stream_info::kUpstreamProtocolError, "upstream_reset_before_response_started{protocol_error}");
    } else {
      fail(502, "", stream_info::kUpstreamProtocolError, "upstream_protocol_error");
    }
  }
}

void RouterFilter::onUpstreamClosed() {
  // The pool has dropped the connection; a close-delimited body ends here.
  http::pool::UpstreamStream* conn = upstream_;
  upstream_ = nullptr;
  upstream_encoder_ = nullptr;
  pool_ = nullptr;
  if (response_complete_ || destroyed_) return;
  if (conn != nullptr && response_started_) {
    upstream_ = conn;  // let the decoder callbacks through for the final bytes
    auto err = conn->onConnectionClosed();
    upstream_ = nullptr;
    if (!err.has_value() && response_complete_) return;
  }
  // Envoy counts a reset as a local-origin failure of the host.
  if (!response_started_) reportLocalOrigin(upstream::LocalOriginEvent::ConnectFailed);
  endUpstreamAttempt();
  if (!response_started_) {
    // A kept-alive connection the upstream closed as we reused it: the
    // request never reached it. Replay a complete, bodyless, idempotent
    // request once on a fresh connection, whatever the retry policy.
    const std::string_view method = request_headers_->method();
    const bool idempotent = method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
                            method == "DELETE" || method == "TRACE";
    // An HTTP/2 stream the upstream refused was never processed: as Envoy,
    // it is sent again once, whatever the method.
    const bool refused = conn != nullptr && conn->refused();
    if ((refused || (on_reused_connection_ && idempotent)) && !replayed_on_fresh_ && request_complete_ &&
        callbacks_->streamInfo().bytes_received == 0) {
      replayed_on_fresh_ = true;
      startUpstreamAttempt();
      return;
    }
    if (maybeRetry(rt::retry_on::kReset | rt::retry_on::k5xx | rt::retry_on::kGatewayError)) return;
    callbacks_->sendLocalReply(
        503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        stream_info::kUpstreamConnectionTermination, "upstream_reset_before_response_started{connection_termination}");
  } else {
    // Mid-body: the client must see the response was cut short.
    fail(503, "", stream_info::kUpstreamConnectionTermination, "upstream_reset_after_response_started");
  }
}

void RouterFilter::onUpstreamHeaders(http::HeaderMapPtr headers, bool end_stream) {
  const int status = headers->status();
  if (attempt_active_) {
    if (cluster_->outlier != nullptr) cluster_->outlier->reportHttpCode(*attempt_host_, status);
    // The upstream asks to be taken out of rotation now (it is failing its
    // own health checks, e.g. another Envoy-compatible proxy draining).
    if (cluster_->health_check != nullptr && headers->has("x-envoy-immediate-health-check-fail")) {
      cluster_->health_check->reportImmediateFailure(*attempt_host_);
    }
  }
  switch (status / 100) {
    case 1: cluster_->stats->upstream_rq_1xx.inc(); break;
    case 2: cluster_->stats->upstream_rq_2xx.inc(); break;
    case 3: cluster_->stats->upstream_rq_3xx.inc(); break;
    case 4: cluster_->stats->upstream_rq_4xx.inc(); break;
    default: cluster_->stats->upstream_rq_5xx.inc(); break;
  }
  if (route_->retry_policy.has_value()) {
    uint32_t conditions = 0;
    if (status >= 500) conditions |= rt::retry_on::k5xx;
    if (status == 502 || status == 503 || status == 504) conditions |= rt::retry_on::kGatewayError;
    if (status == 409) conditions |= rt::retry_on::kRetriable4xx;
    for (uint32_t code : route_->retry_policy->retriable_status_codes) {
      if (code == static_cast<uint32_t>(status)) conditions |= rt::retry_on::kRetriableStatusCodes;
    }
    // A gRPC failure before any message is a trailers-only response: its
    // grpc-status is already in these headers (trailers are not looked at yet).
    if (auto grpc_status = grpc::grpcStatus(*headers)) {
      switch (static_cast<grpc::Status>(*grpc_status)) {
        case grpc::Status::Canceled: conditions |= rt::retry_on::kGrpcCancelled; break;
        case grpc::Status::DeadlineExceeded: conditions |= rt::retry_on::kGrpcDeadlineExceeded; break;
        case grpc::Status::ResourceExhausted: conditions |= rt::retry_on::kGrpcResourceExhausted; break;
        case grpc::Status::Unavailable: conditions |= rt::retry_on::kGrpcUnavailable; break;
        case grpc::Status::Internal: conditions |= rt::retry_on::kGrpcInternal; break;
        default: break;
      }
    }
    if (conditions != 0 && maybeRetry(conditions)) return;
  }
  if (per_try_timer_) per_try_timer_->disable();
  if (retries_done_ > 0 && status < 500) cluster_->stats->upstream_rq_retry_success.inc();
  response_started_ = true;
  if (!config_->suppress_envoy_headers) {
    headers->set("x-envoy-upstream-service-time",
                 std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - upstream_start_)
                                    .count()));
  }
  for (const auto& name : route_->header_mutations.response_headers_to_remove) headers->remove(name);
  for (const auto& h : route_->header_mutations.response_headers_to_add) {
    if (h.action == rt::AppendAction::AppendIfExistsOrAdd) {
      headers->add(h.key, h.value);
    } else if (!(h.action == rt::AppendAction::AddIfAbsent && headers->has(h.key))) {
      headers->set(h.key, h.value);
    }
  }
  if (status == 101) {
    // An upgrade: the route timeout covered the handshake; the tunnel lives
    // on the stream idle timeout. Connection/Upgrade go to the client as sent.
    if (response_timer_) response_timer_->disable();
  } else {
    // Hop-by-hop headers are the codec's business on each side.
    headers->remove("connection");
  }
  headers->remove("transfer-encoding");
  headers->remove("keep-alive");
  callbacks_->streamInfo().response_code_details = "via_upstream";
  if (end_stream) onUpstreamComplete();
  callbacks_->encodeHeaders(std::move(headers), end_stream);
}

void RouterFilter::onUpstreamBody(buffer::Buffer& data, bool end_stream) {
  if (end_stream) onUpstreamComplete();
  callbacks_->encodeData(data, end_stream);
}

void RouterFilter::onUpstreamTrailers(http::HeaderMapPtr trailers) {
  onUpstreamComplete();
  callbacks_->encodeTrailers(std::move(trailers));
}

void RouterFilter::onUpstreamComplete() {
  response_complete_ = true;
  if (response_timer_) response_timer_->disable();
  callbacks_->streamInfo().last_upstream_rx_byte_received = sinceStart();
  cluster_->stats->upstream_rq_time.recordValue(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - upstream_start_)
          .count()));
  // Reusable only if the whole request went out and the upstream keeps it open.
  const bool reusable = upstream_request_complete_ && upstream_ != nullptr && !upstream_->shouldClose();
  releaseUpstream(reusable);
  endUpstreamAttempt();
}

void RouterFilter::releaseUpstream(bool reusable) {
  pauseDownstream(false);
  if (upstream_paused_ && upstream_ != nullptr) upstream_->readDisable(false);
  upstream_paused_ = false;
  if (pool_ != nullptr && upstream_ != nullptr) pool_->release(*upstream_, reusable);
  upstream_ = nullptr;
  upstream_encoder_ = nullptr;
  pool_ = nullptr;
}

void RouterFilter::pauseDownstream(bool pause) {
  if (pause == downstream_paused_) return;
  downstream_paused_ = pause;
  if (pause) {
    callbacks_->onDecoderFilterAboveWriteBufferHighWatermark();
  } else {
    callbacks_->onDecoderFilterBelowWriteBufferLowWatermark();
  }
}

void RouterFilter::onUpstreamWatermark(bool above) { pauseDownstream(above); }

void RouterFilter::pauseUpstream(bool pause) {
  if (upstream_ == nullptr || pause == upstream_paused_) return;
  upstream_paused_ = pause;
  upstream_->readDisable(pause);
}

void RouterFilter::onResponseTimeout() {
  if (cluster_ != nullptr) cluster_->stats->upstream_rq_timeout.inc();
  if (cluster_ != nullptr) reportLocalOrigin(upstream::LocalOriginEvent::Timeout);
  abandonUpstream();
  fail(504, "upstream request timeout", stream_info::kUpstreamRequestTimeout, "upstream_response_timeout");
}

namespace {

using ProtoRouter = envoy::extensions::filters::http::router::v3::Router;

class RouterConfigFactory : public server::HttpFilterConfigFactory {
 public:
  std::string name() const override { return "envoy.filters.http.router"; }
  std::string configType() const override { return ProtoRouter::descriptor()->full_name(); }
  bool isTerminal() const override { return true; }

  absl::StatusOr<http::FilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                            const std::string& stat_prefix,
                                                            server::FactoryContext& context,
                                                            const std::string& path) override {
    ProtoRouter proto;
    if (!typed_config.type_url().empty() && !typed_config.UnpackTo(&proto)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode ", configType()));
    }
    if (proto.upstream_log_size() > 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".upstream_log: upstream access logs are not supported yet"));
    }
    if (proto.upstream_http_filters_size() > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".upstream_http_filters: upstream HTTP filters are not supported yet"));
    }
    auto config = std::make_shared<RouterConfig>(context.stats, stat_prefix);
    config->suppress_envoy_headers = proto.suppress_envoy_headers();
    std::shared_ptr<const RouterConfig> shared = std::move(config);
    return http::FilterFactoryCb([shared](http::FilterChainFactoryCallbacks& callbacks) {
      callbacks.addStreamDecoderFilter(std::make_unique<RouterFilter>(shared));
    });
  }
};

}  // namespace

std::unique_ptr<server::HttpFilterConfigFactory> createRouterConfigFactory() {
  return std::make_unique<RouterConfigFactory>();
}

}  // namespace courier::extensions::router
