// Per-worker HTTP/2 connection pool to one upstream host: many requests
// multiplexed as streams on one connection, up to the server's
// SETTINGS_MAX_CONCURRENT_STREAMS; more connections (within the cluster's
// max_connections breaker) when every one is full, so requests wait only when
// the breaker is; a connection that got GOAWAY or reached
// max_requests_per_connection takes no new streams and closes once its last
// one ends.
#pragma once

#include <list>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/http2/client_codec.h"
#include "source/common/http/pool/pool.h"
#include "source/common/http/pool/wait_queue.h"
#include "source/common/network/connection.h"
#include "source/common/upstream/cluster.h"

namespace courier::http::pool {

class Http2Pool;
class Http2PoolStream;

// One upstream connection with its HTTP/2 client codec.
class Http2PoolConnection : public network::ConnectionCallbacks, public http2::ClientConnectionCallbacks {
 public:
  Http2PoolConnection(Http2Pool& pool, std::unique_ptr<network::Connection> connection);
  ~Http2PoolConnection() override;

  void flush();
  // The server's SETTINGS arrived: its stream limit is known, streams may go.
  bool ready() const { return settings_seen_; }
  // New streams fit: ready, no GOAWAY, below the peer's stream limit and
  // max_requests_per_connection.
  bool hasCapacity() const;

  // ConnectionCallbacks
  void onEvent(network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  // ClientConnectionCallbacks
  void onGoAway(uint32_t last_stream_id, uint32_t error_code,
                const std::vector<RequestEncoder*>& unprocessed) override;
  void onData(buffer::Buffer& data);

 private:
  friend class Http2Pool;
  friend class Http2PoolStream;
  Http2Pool& pool_;
  std::unique_ptr<network::Connection> connection_;
  buffer::Buffer output_;
  std::unique_ptr<http2::ClientConnection> codec_;
  // Runs from connect until the server's SETTINGS: a server that accepts but
  // never speaks HTTP/2 is a connect timeout.
  std::unique_ptr<event::Timer> connect_timer_;
  bool connected_ = false;  // TCP connected: our preface may go
  bool settings_seen_ = false;
  bool goaway_ = false;
  bool erased_ = false;
  uint32_t active_ = 0;    // streams handed out and not yet released
  uint32_t requests_ = 0;  // streams ever handed out
  std::list<std::unique_ptr<Http2PoolConnection>>::iterator self_;
};

// One request's stream on a pooled connection.
class Http2PoolStream : public UpstreamStream, public StreamCallbacks {
 public:
  Http2PoolStream(Http2PoolConnection& connection, PoolCallbacks& callbacks)
      : connection_(connection), callbacks_(callbacks), request_number_(connection.requests_) {}

  // UpstreamStream
  RequestEncoder& newStream(ResponseDecoder& decoder) override;
  void flush() override { connection_.flush(); }
  uint32_t requestCount() const override { return request_number_; }
  DispatchResult dispatch(buffer::Buffer& data) override;
  DispatchResult onConnectionClosed() override;
  bool shouldClose() const override { return false; }
  bool tunneling() const override { return false; }
  void closeUpstream() override {}
  void readDisable(bool disable) override;
  bool refused() const override { return refused_; }

  // StreamCallbacks
  void onResetStream(StreamResetReason reason, std::string_view details) override;
  void onAboveWriteBufferHighWatermark() override { callbacks_.onUpstreamWatermark(true); }
  void onBelowWriteBufferLowWatermark() override { callbacks_.onUpstreamWatermark(false); }

 private:
  friend class Http2Pool;
  // Stop listening to the codec stream (it may outlive us until it ends).
  void detach();

  Http2PoolConnection& connection_;
  PoolCallbacks& callbacks_;
  const uint32_t request_number_;
  Stream* stream_ = nullptr;  // while the codec stream lives
  bool reset_ = false;
  bool refused_ = false;
};

class Http2Pool : public Pool {
 public:
  // high_priority: connections and waiters count against the cluster's HIGH
  // thresholds (else DEFAULT's).
  Http2Pool(event::Dispatcher& dispatcher, upstream::ClusterConstSharedPtr cluster, const upstream::Host& host,
            bool high_priority = false);
  ~Http2Pool() override;

  void newStream(PoolCallbacks& callbacks) override;
  void cancel(PoolCallbacks& callbacks) override;
  void release(UpstreamStream& stream, bool reusable) override;
  void drain(std::function<void()> on_drained) override;
  const upstream::ClusterConstSharedPtr& cluster() const override { return cluster_; }
  // Takes a connection already open (from connectUpstream, its TLS handshake
  // done): the preface goes now, streams once the server's SETTINGS arrive.
  void adopt(std::unique_ptr<network::Connection> connection);
  // Set (auto_config): each new connection's ALPN result is checked when its
  // handshake completes; a connection it refuses fails like a connect failure.
  void setAlpnCheck(std::function<bool(std::string_view)> check) { alpn_check_ = std::move(check); }

 private:
  friend class Http2PoolConnection;
  friend class Http2PoolStream;
  void attach(Http2PoolConnection& c, PoolCallbacks& callbacks);
  void detach(Http2PoolStream& stream);
  void onConnected(Http2PoolConnection& c);
  void onReady(Http2PoolConnection& c);
  // Streams a connection still connecting is counted on for.
  uint32_t expectedStreamsPerConnection() const;
  void onClosed(Http2PoolConnection& c);
  void onStreamReset(Http2PoolStream& stream);
  void onWatermark(Http2PoolConnection& c, bool above);
  // Hands waiting requests to connections with room, and connects more
  // connections while the waiters outnumber the streams on their way.
  void serveWaiters();
  void createConnection();
  Http2PoolConnection& addConnection(std::unique_ptr<network::Connection> connection);
  // A connection that takes no new streams closes with its last one.
  void maybeRetire(Http2PoolConnection& c);
  void erase(Http2PoolConnection& c);
  void checkDrained();
  // The circuit breakers of this pool's routing priority.
  upstream::ResourceManager& resources() const { return cluster_->resourcesFor(high_priority_); }

  event::Dispatcher& dispatcher_;
  upstream::ClusterConstSharedPtr cluster_;
  const network::Address address_;
  std::list<std::unique_ptr<Http2PoolConnection>> connections_;
  WaitQueue waiting_;
  absl::flat_hash_map<PoolCallbacks*, std::unique_ptr<Http2PoolStream>> streams_;
  // The stream limit the host's last ready connection advertised; the
  // estimate for connections still connecting (nghttp2's 100 before any).
  uint32_t peer_stream_limit_;
  bool draining_ = false;
  const bool high_priority_;  // in what would be padding
  std::function<void()> on_drained_;
  std::function<bool(std::string_view)> alpn_check_;
};

}  // namespace courier::http::pool
