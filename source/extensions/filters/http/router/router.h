// envoy.filters.http.router: the terminal HTTP filter. It acts on the route
// the connection manager matched: direct responses, redirects, or proxying
// to a host of the route's cluster through the worker's connection pools,
// with Envoy's timeouts, retries and x-envoy-* headers.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "source/common/http/filter.h"
#include "source/common/http/pool/conn_pool.h"
#include "source/common/router/route_table.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/outlier_detection.h"
#include "source/common/upstream/thread_local_cluster_manager.h"
#include "source/server/filter_config.h"

namespace courier::extensions::router {

// The router's stats live under the connection manager's prefix:
// http.<stat_prefix>.no_route etc., as Envoy names them.
struct RouterStats {
  RouterStats(stats::Store& store, const std::string& stat_prefix);
  stats::Counter& no_route;
  stats::Counter& no_cluster;
  stats::Counter& rq_direct_response;
  stats::Counter& rq_redirect;
  stats::Counter& rq_total;
  stats::Counter& rq_reset_after_downstream_response_started;
};

struct RouterConfig {
  RouterConfig(stats::Store& store, const std::string& stat_prefix) : stats(store, stat_prefix) {}
  RouterStats stats;
  // Envoy's suppress_envoy_headers: no x-envoy-upstream-service-time or
  // x-envoy-expected-rq-timeout-ms.
  bool suppress_envoy_headers = false;
};

class RouterFilter : public http::StreamDecoderFilter,
                     public http::pool::PoolCallbacks,
                     public http::DownstreamWatermarkCallbacks {
 public:
  explicit RouterFilter(std::shared_ptr<const RouterConfig> config) : config_(std::move(config)) {}
  ~RouterFilter() override;

  // StreamDecoderFilter
  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(buffer::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override;
  void onDestroy() override;

  // PoolCallbacks
  void onPoolReady(http::pool::UpstreamStream& connection) override;
  void onPoolFailure(Failure reason) override;
  void onUpstreamClosed() override;
  void onUpstreamData(buffer::Buffer& data) override;
  // The upstream can't take the request body as fast as the client sends it.
  void onUpstreamWatermark(bool above) override;

  // DownstreamWatermarkCallbacks: the client can't take the response as fast
  // as the upstream sends it.
  void onAboveWriteBufferHighWatermark() override { pauseUpstream(true); }
  void onBelowWriteBufferLowWatermark() override { pauseUpstream(false); }

 private:
  // Upstream response callbacks; ignored once their attempt was abandoned.
  struct UpstreamDecoder : http::ResponseDecoder {
    explicit UpstreamDecoder(RouterFilter& r) : r(r) {}
    void decodeHeaders(http::HeaderMapPtr headers, bool end_stream) override {
      if (r.upstream_ != nullptr) r.onUpstreamHeaders(std::move(headers), end_stream);
    }
    void decodeData(buffer::Buffer& data, bool end_stream) override {
      if (r.upstream_ != nullptr) r.onUpstreamBody(data, end_stream);
    }
    void decodeTrailers(http::HeaderMapPtr trailers) override {
      if (r.upstream_ != nullptr) r.onUpstreamTrailers(std::move(trailers));
    }
    void decode1xxHeaders(http::HeaderMapPtr) override {}
    RouterFilter& r;
  };

  // Request bodies up to this size are kept for retries; larger ones are not retried.
  static constexpr size_t kMaxRetainedBody = 1 << 20;

  void sendRedirect();
  // Mirrors the complete request to each chosen shadow cluster.
  void sendShadows();
  // 503 UO: a circuit breaker of the cluster is open.
  void sendOverflow();
  void startUpstreamAttempt();
  void endUpstreamAttempt();
  // Tells outlier detection (if configured) about the attempt's host.
  void reportLocalOrigin(upstream::LocalOriginEvent event);
  bool retryOn(uint32_t conditions) const;
  bool maybeRetry(uint32_t conditions);
  void onUpstreamHeaders(http::HeaderMapPtr headers, bool end_stream);
  void onUpstreamBody(buffer::Buffer& data, bool end_stream);
  void onUpstreamTrailers(http::HeaderMapPtr trailers);
  // The upstream response is complete: give the connection back before the
  // last part goes downstream (which may end the stream).
  void onUpstreamComplete();
  void onResponseTimeout();
  void onPerTryTimeout();
  // Lets go of the current upstream attempt, whatever stage it is in.
  void abandonUpstream();
  void releaseUpstream(bool reusable);
  void pauseDownstream(bool pause);
  void pauseUpstream(bool pause);
  // Ends the stream with a local reply, or by a reset once the response started.
  void fail(int status, std::string_view body, stream_info::ResponseFlag flag, std::string_view details);
  std::chrono::nanoseconds sinceStart();

  std::shared_ptr<const RouterConfig> config_;
  http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  http::HeaderMap* request_headers_ = nullptr;
  http::HeaderMap* request_trailers_ = nullptr;
  buffer::Buffer request_body_;  // arrived before the upstream was ready
  std::string retained_body_;    // the whole body, for retries
  bool body_retained_ = true;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool destroyed_ = false;
  const courier::router::RouteEntry* route_ = nullptr;
  upstream::ClusterConstSharedPtr cluster_;
  // cluster_'s circuit breakers for the route's priority (DEFAULT or HIGH).
  upstream::ResourceManager* resources_ = nullptr;
  upstream::ThreadLocalCluster* tl_cluster_ = nullptr;
  // The route's hash_policy result, computed once so retries hash alike.
  upstream::FixedLoadBalancerContext lb_context_;
  // The host of the active attempt, whose active_requests it holds up.
  const upstream::Host* attempt_host_ = nullptr;
  http::pool::Pool* pool_ = nullptr;
  http::pool::UpstreamStream* upstream_ = nullptr;
  http::RequestEncoder* upstream_encoder_ = nullptr;
  UpstreamDecoder upstream_decoder_{*this};
  std::unique_ptr<event::Timer> response_timer_;
  std::unique_ptr<event::Timer> retry_timer_;
  std::unique_ptr<event::Timer> per_try_timer_;
  std::chrono::steady_clock::time_point upstream_start_;
  bool upstream_request_complete_ = false;
  bool attempt_active_ = false;
  struct Shadow {
    std::string cluster;
    bool keep_host;
  };
  std::vector<Shadow> shadows_;
  std::chrono::milliseconds timeout_{0};
  bool retry_open_ = false;
  uint32_t retries_left_ = 0;
  uint32_t retries_done_ = 0;
  bool downstream_paused_ = false;
  bool upstream_paused_ = false;
  bool on_reused_connection_ = false;
  bool replayed_on_fresh_ = false;
};

// Registered under "envoy.filters.http.router".
std::unique_ptr<server::HttpFilterConfigFactory> createRouterConfigFactory();

}  // namespace courier::extensions::router
