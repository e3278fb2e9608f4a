// Per-worker HTTP/1.1 connection pools to upstream hosts: keep-alive reuse of
// idle connections, a new connection when none is idle, and connect
// timeouts. One request at a time per connection (no upstream pipelining).
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/codec.h"
#include "source/common/http/http1/client_codec.h"
#include "source/common/network/connection.h"
#include "source/common/upstream/cluster.h"

namespace courier::http::pool {

class ConnPool;

// An upstream connection with its codec; handed to one request at a time.
class PooledConnection : public network::ConnectionCallbacks {
 public:
  PooledConnection(ConnPool& pool, std::unique_ptr<network::Connection> connection);
  ~PooledConnection() override;

  http1::ClientConnection& codec() { return *codec_; }
  // Writes what the codec encoded so far.
  void flush();
  network::Connection& connection() { return *connection_; }
  // How many requests this connection has been handed (1 for a fresh one).
  uint32_t requestCount() const { return requests_; }

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

// What a request waiting for a connection is told.
class PoolCallbacks {
 public:
  virtual ~PoolCallbacks() = default;
  virtual void onPoolReady(PooledConnection& connection) = 0;
  // Overflow: the cluster's max_pending_requests circuit breaker is open.
  enum class Failure { ConnectFailure, Timeout, Overflow };
  virtual void onPoolFailure(Failure reason) = 0;
  // The connection handed out was closed by the peer or failed while in use.
  virtual void onUpstreamClosed() = 0;
  // Bytes arrived for the request (the codec is fed; decoders are called).
  virtual void onUpstreamData(buffer::Buffer& data) = 0;
  // The upstream connection's write buffer crossed its high (true) or low
  // (false) watermark: pause or resume whatever feeds it.
  virtual void onUpstreamWatermark(bool above) { (void)above; }
};

class ConnPool {
 public:
  ConnPool(event::Dispatcher& dispatcher, upstream::ClusterConstSharedPtr cluster, const upstream::Host& host);
  ~ConnPool();

  // Ready now (an idle connection) or later (a new one connecting). Returns a
  // handle to cancel while waiting; null if ready already called back.
  void newStream(PoolCallbacks& callbacks);
  // The caller no longer waits (downstream gone).
  void cancel(PoolCallbacks& callbacks);
  // The request on this connection finished: keep it for reuse or close it.
  void release(PooledConnection& connection, bool reusable);

  // The cluster was removed or replaced: idle connections close now, busy
  // ones when their request ends; on_drained runs (posted) once nothing is
  // left. Waiting requests are still served.
  void drain(std::function<void()> on_drained);
  const upstream::ClusterConstSharedPtr& cluster() const { return cluster_; }

 private:
  friend class PooledConnection;
  void onConnected(PooledConnection& c);
  void onClosed(PooledConnection& c);
  void onData(PooledConnection& c, buffer::Buffer& data);
  void onWatermark(PooledConnection& c, bool above);
  void createConnection();
  void erase(PooledConnection& c);
  // Waiting requests, counted against the cluster's max_pending_requests.
  void pushWaiter(PoolCallbacks& callbacks);
  PoolCallbacks* popWaiter();
  // More waiters than connections on their way: connect another, if the
  // cluster's max_connections allows (a pool with none may always have one).
  void connectForWaiters();
  size_t connecting() const;
  void checkDrained();

  event::Dispatcher& dispatcher_;
  upstream::ClusterConstSharedPtr cluster_;
  const network::Address address_;
  std::list<std::unique_ptr<PooledConnection>> connections_;
  std::list<PoolCallbacks*> waiting_;
  absl::flat_hash_map<PooledConnection*, PoolCallbacks*> owners_;
  bool draining_ = false;
  std::function<void()> on_drained_;
};

// The pools of one worker, by cluster and host address.
class ConnPoolManager {
 public:
  explicit ConnPoolManager(event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  // Pools belong to one version of a cluster: a changed cluster gets new
  // pools with its new settings.
  ConnPool& pool(const upstream::ClusterConstSharedPtr& cluster, const upstream::Host& host);
  // After a cluster-set swap: pools whose cluster is no longer in the set
  // (removed, or replaced by a new version) drain and are dropped when empty.
  void drainStale(const upstream::ClusterSet& current);
  size_t poolCount() const { return pools_.size() + draining_.size(); }

 private:
  event::Dispatcher& dispatcher_;
  // By cluster version and host (a host lives as long as its cluster).
  absl::flat_hash_map<std::pair<const upstream::Cluster*, const upstream::Host*>, std::unique_ptr<ConnPool>> pools_;
  absl::flat_hash_map<ConnPool*, std::unique_ptr<ConnPool>> draining_;
};

}  // namespace courier::http::pool
