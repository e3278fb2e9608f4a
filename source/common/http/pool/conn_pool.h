// Per-worker HTTP/1.1 connection pools to upstream hosts (and the manager
// that picks the HTTP/1.1 or HTTP/2 pool for a cluster, host and routing
// priority): keep-alive reuse of idle connections, a new connection when none
// is idle, and connect timeouts. One request at a time per connection (no
// upstream pipelining).
#pragma once

#include <chrono>
#include <functional>
#include <tuple>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/codec.h"
#include "source/common/http/http1/client_codec.h"
#include "source/common/http/http2/settings.h"
#include "source/common/http/pool/pool.h"
#include "source/common/http/pool/wait_queue.h"
#include "source/common/network/connection.h"
#include "source/common/upstream/cluster.h"

namespace courier::http::pool {

class ConnPool;

// An upstream connection with its codec; handed to one request at a time.
class PooledConnection : public network::ConnectionCallbacks, public UpstreamStream {
 public:
  PooledConnection(ConnPool& pool, std::unique_ptr<network::Connection> connection);
  ~PooledConnection() override;

  http1::ClientConnection& codec() { return *codec_; }
  network::Connection& connection() { return *connection_; }
  // How many requests this connection has been handed (1 for a fresh one).
  uint32_t requestCount() const override { return requests_; }

  // UpstreamStream
  RequestEncoder& newStream(ResponseDecoder& decoder) override { return codec_->newStream(decoder); }
  void flush() override;
  DispatchResult dispatch(buffer::Buffer& data) override { return codec_->dispatch(data); }
  DispatchResult onConnectionClosed() override { return codec_->onConnectionClosed(); }
  bool shouldClose() const override { return codec_->shouldClose(); }
  bool tunneling() const override { return codec_->tunneling(); }
  void closeUpstream() override { connection_->close(network::CloseType::FlushWrite); }
  void readDisable(bool disable) override { connection_->readDisable(disable); }

  // ConnectionCallbacks
  void onEvent(network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  // Bytes read from the upstream (through the connection's read filter).
  void onData(buffer::Buffer& data);

 private:
  friend class ConnPool;
  ConnPool& pool_;
  std::unique_ptr<network::Connection> connection_;
  buffer::Buffer output_;
  std::unique_ptr<http1::ClientConnection> codec_;
  std::unique_ptr<event::Timer> connect_timer_;
  bool connected_ = false;
  bool busy_ = false;
  uint32_t requests_ = 0;
  std::list<std::unique_ptr<PooledConnection>>::iterator self_;
};

class ConnPool : public Pool {
 public:
  // high_priority: the pool serves HIGH routes, and its connections and
  // waiters count against the cluster's HIGH thresholds (else DEFAULT's).
  ConnPool(event::Dispatcher& dispatcher, upstream::ClusterConstSharedPtr cluster, const upstream::Host& host,
           bool high_priority = false);
  ~ConnPool();

  // Ready now (an idle connection) or later (a new one connecting). Returns a
  // handle to cancel while waiting; null if ready already called back.
  void newStream(PoolCallbacks& callbacks) override;
  // The caller no longer waits (downstream gone).
  void cancel(PoolCallbacks& callbacks) override;
  // The request on this connection finished: keep it for reuse or close it.
  void release(UpstreamStream& stream, bool reusable) override;

  // The cluster was removed or replaced: idle connections close now, busy
  // ones when their request ends; on_drained runs (posted) once nothing is
  // left. Waiting requests are still served.
  void drain(std::function<void()> on_drained) override;
  const upstream::ClusterConstSharedPtr& cluster() const override { return cluster_; }
  // Takes a connection already open (from connectUpstream, its TLS handshake
  // done) as an idle one of this pool, or hands it to a waiter.
  void adopt(std::unique_ptr<network::Connection> connection);
  // Set (auto_config): each new connection's ALPN result is checked when its
  // handshake completes; a connection it refuses fails like a connect failure.
  void setAlpnCheck(std::function<bool(std::string_view)> check) { alpn_check_ = std::move(check); }

 private:
  friend class PooledConnection;
  void onConnected(PooledConnection& c);
  void onClosed(PooledConnection& c);
  void onData(PooledConnection& c, buffer::Buffer& data);
  void onWatermark(PooledConnection& c, bool above);
  void createConnection();
  PooledConnection& addConnection(std::unique_ptr<network::Connection> connection);
  void erase(PooledConnection& c);
  // More waiters than connections on their way: connect another, if the
  // cluster's max_connections allows (a pool with none may always have one).
  void connectForWaiters();
  size_t connecting() const;
  void checkDrained();
  // The circuit breakers of this pool's routing priority.
  upstream::ResourceManager& resources() const { return cluster_->resourcesFor(high_priority_); }

  event::Dispatcher& dispatcher_;
  upstream::ClusterConstSharedPtr cluster_;
  const network::Address address_;
  std::list<std::unique_ptr<PooledConnection>> connections_;
  WaitQueue waiting_;
  absl::flat_hash_map<PooledConnection*, PoolCallbacks*> owners_;
  bool draining_ = false;
  const bool high_priority_;  // in what would be padding
  std::function<void()> on_drained_;
  std::function<bool(std::string_view)> alpn_check_;
};

// The pools of one worker, by cluster, host, protocol and routing priority.
// A HIGH route's pools are made the first time one asks for them, so a
// cluster only ever used by DEFAULT routes has no more pools than before.
class ConnPoolManager {
 public:
  explicit ConnPoolManager(event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  // Pools belong to one version of a cluster: a changed cluster gets new
  // pools with its new settings.
  // downstream_http2: the request came over HTTP/2 (for clusters with
  // use_downstream_protocol_config). high_priority: the route's priority is
  // HIGH; such requests get pools of their own whose connections and pending
  // requests count against the cluster's HIGH circuit breakers, as Envoy keys
  // its pools by priority.
  Pool& pool(const upstream::ClusterConstSharedPtr& cluster, const upstream::Host& host, bool downstream_http2 = false,
             bool high_priority = false);
  // After a cluster-set swap: pools whose cluster is no longer in the set
  // (removed, or replaced by a version with other settings) or whose host
  // left it (EDS) drain and are dropped when empty.
  void drainStale(const upstream::ClusterSet& current);
  size_t poolCount() const { return pools_.size() + draining_.size(); }

 private:
  event::Dispatcher& dispatcher_;
  // By cluster settings (versions that differ only in hosts share them),
  // host (a host lives as long as a cluster version holding it), protocol
  // (HTTP/2) and priority (HIGH); the two flags fit where the tuple had padding.
  using PoolKey = std::tuple<uint64_t, const upstream::Host*, bool, bool>;
  absl::flat_hash_map<PoolKey, std::unique_ptr<Pool>> pools_;
  absl::flat_hash_map<Pool*, std::unique_ptr<Pool>> draining_;
};

}  // namespace courier::http::pool
