// A mirrored copy of a request (Envoy's request_mirror_policies, "shadowing"):
// sent to another cluster once the original request is complete, its
// response read and thrown away. It owns itself: nothing waits for it, and
// it outlives the stream that started it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "source/common/http/codec.h"
#include "source/common/http/pool/conn_pool.h"
#include "source/common/upstream/thread_local_cluster_manager.h"
#include "source/server/filter_config.h"

namespace courier::extensions::router {

class ShadowRequest : public http::pool::PoolCallbacks, public http::ResponseDecoder {
 public:
  // Starts the copy; a cluster with no host or an open circuit breaker
  // means no copy, as a shadow never affects the original.
  static void send(server::WorkerContext& worker, upstream::ThreadLocalCluster& cluster, http::HeaderMapPtr headers,
                   std::string body, http::HeaderMapPtr trailers, std::chrono::milliseconds timeout);

  // PoolCallbacks
  void onPoolReady(http::pool::UpstreamStream& connection) override;
  void onPoolFailure(Failure reason) override;
  void onUpstreamClosed() override;
  void onUpstreamData(buffer::Buffer& data) override;

  // ResponseDecoder: the answer is counted and dropped.
  void decodeHeaders(http::HeaderMapPtr headers, bool end_stream) override;
  void decodeData(buffer::Buffer& data, bool end_stream) override;
  void decodeTrailers(http::HeaderMapPtr trailers) override;
  void decode1xxHeaders(http::HeaderMapPtr) override {}

 private:
  ShadowRequest(server::WorkerContext& worker, upstream::ClusterConstSharedPtr cluster, http::HeaderMapPtr headers,
                std::string body, http::HeaderMapPtr trailers);
  // Gives the connection back (reusable only after a whole exchange) and
  // deletes this after the current loop turn.
  void finish(bool reusable);

  server::WorkerContext& worker_;
  upstream::ClusterConstSharedPtr cluster_;
  // Counted in its active_requests until finish(), as any upstream request.
  const upstream::Host* host_ = nullptr;
  http::HeaderMapPtr headers_;
  std::string body_;
  http::HeaderMapPtr trailers_;
  http::pool::Pool* pool_ = nullptr;
  http::pool::UpstreamStream* upstream_ = nullptr;
  std::unique_ptr<event::Timer> timeout_timer_;
  bool done_ = false;
};

}  // namespace courier::extensions::router
