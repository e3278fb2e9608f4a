#include "source/extensions/filters/http/router/shadow_request.h"

namespace courier::extensions::router {

void ShadowRequest::send(server::WorkerContext& worker, upstream::ThreadLocalCluster& cluster,
                         http::HeaderMapPtr headers, std::string body, http::HeaderMapPtr trailers,
                         std::chrono::milliseconds timeout) {
  const upstream::Host* host = cluster.loadBalancer().chooseHost(nullptr);
  if (host == nullptr) {
    cluster.info().stats->upstream_cx_none_healthy.inc();
    return;
  }
  if (!cluster.info().resources->requests.canCreate()) {
    cluster.info().stats->upstream_rq_pending_overflow.inc();
    return;
  }
  auto* shadow = new ShadowRequest(worker, cluster.shared(), std::move(headers), std::move(body), std::move(trailers));
  if (timeout.count() > 0) {
    shadow->timeout_timer_ = worker.dispatcher.createTimer([shadow] {
      shadow->cluster_->stats->upstream_rq_timeout.inc();
      shadow->finish(false);
    });
    shadow->timeout_timer_->enable(timeout);
  }
  shadow->host_ = host;
  host->active_requests.fetch_add(1, std::memory_order_relaxed);
  shadow->pool_ = &worker.http_pools.pool(shadow->cluster_, *host);
  shadow->pool_->newStream(*shadow);
}

ShadowRequest::ShadowRequest(server::WorkerContext& worker, upstream::ClusterConstSharedPtr cluster,
                             http::HeaderMapPtr headers, std::string body, http::HeaderMapPtr trailers)
    : worker_(worker),
      cluster_(std::move(cluster)),
      headers_(std::move(headers)),
      body_(std::move(body)),
      trailers_(std::move(trailers)) {
  cluster_->stats->upstream_rq_total.inc();
  cluster_->stats->upstream_rq_active.inc();
  cluster_->resources->requests.inc();
}

void ShadowRequest::onPoolReady(http::pool::UpstreamStream& connection) {
  upstream_ = &connection;
  http::RequestEncoder& encoder = connection.newStream(*this);
  const bool has_body = !body_.empty();
  encoder.encodeHeaders(*headers_, !has_body && trailers_ == nullptr);
  if (has_body) {
    buffer::Buffer b;
    b.add(body_);
    encoder.encodeData(b, trailers_ == nullptr);
  }
  if (trailers_ != nullptr) encoder.encodeTrailers(*trailers_);
  connection.flush();
}

void ShadowRequest::onPoolFailure(Failure) {
  pool_ = nullptr;
  finish(false);
}

void ShadowRequest::onUpstreamClosed() {
  // The pool already dropped the connection.
  upstream_ = nullptr;
  pool_ = nullptr;
  finish(false);
}

void ShadowRequest::onUpstreamData(buffer::Buffer& data) {
  if (done_ || upstream_ == nullptr) {
    data.drain(data.length());
    return;
  }
  if (upstream_->dispatch(data).has_value()) finish(false);
}

void ShadowRequest::decodeHeaders(http::HeaderMapPtr headers, bool end_stream) {
  switch (headers->status() / 100) {
    case 1: cluster_->stats->upstream_rq_1xx.inc(); break;
    case 2: cluster_->stats->upstream_rq_2xx.inc(); break;
    case 3: cluster_->stats->upstream_rq_3xx.inc(); break;
    case 4: cluster_->stats->upstream_rq_4xx.inc(); break;
    default: cluster_->stats->upstream_rq_5xx.inc(); break;
  }
  if (end_stream) finish(upstream_ != nullptr && !upstream_->shouldClose());
}

void ShadowRequest::decodeData(buffer::Buffer& data, bool end_stream) {
  data.drain(data.length());
  if (end_stream) finish(upstream_ != nullptr && !upstream_->shouldClose());
}

void ShadowRequest::decodeTrailers(http::HeaderMapPtr) {
  finish(upstream_ != nullptr && !upstream_->shouldClose());
}

void ShadowRequest::finish(bool reusable) {
  if (done_) return;
  done_ = true;
  if (timeout_timer_) timeout_timer_->disable();
  if (pool_ != nullptr) {
    if (upstream_ != nullptr) {
      pool_->release(*upstream_, reusable);
    } else {
      pool_->cancel(*this);
    }
  }
  pool_ = nullptr;
  upstream_ = nullptr;
  cluster_->stats->upstream_rq_active.dec();
  cluster_->resources->requests.dec();
  if (host_ != nullptr) host_->active_requests.fetch_sub(1, std::memory_order_relaxed);
  // We may be inside the pool's or codec's call stack.
  struct Holder : event::DeferredDeletable {
    std::unique_ptr<ShadowRequest> s;
  };
  auto holder = std::make_unique<Holder>();
  holder->s.reset(this);
  worker_.dispatcher.deferredDelete(std::move(holder));
}

}  // namespace courier::extensions::router
