// Per-worker pool to one host of a cluster with HttpProtocolOptions
// auto_config over TLS: the protocol is learnt from ALPN. The first
// connection is opened here and, once its handshake is done, handed to the
// HTTP/2 pool when the server picked "h2", else to the HTTP/1.1 pool; the
// requests that waited for it follow. The answer is remembered for the host,
// so later requests go straight to that pool and its own new connections; one
// of those that negotiates otherwise fails (a connect failure) and the next
// request learns the protocol again.
#pragma once

#include <list>
#include <memory>

#include "source/common/http/pool/conn_pool.h"
#include "source/common/http/pool/http2_pool.h"
#include "source/common/http/pool/pool.h"
#include "source/common/http/pool/wait_queue.h"

namespace courier::http::pool {

class AutoPool : public Pool {
 public:
  // high_priority: the probe, both pools and the waiters count against the
  // cluster's HIGH thresholds (else DEFAULT's).
  AutoPool(event::Dispatcher& dispatcher, upstream::ClusterConstSharedPtr cluster, const upstream::Host& host,
           bool high_priority = false);
  ~AutoPool() override;

  void newStream(PoolCallbacks& callbacks) override;
  void cancel(PoolCallbacks& callbacks) override;
  void release(UpstreamStream& stream, bool reusable) override;
  void drain(std::function<void()> on_drained) override;
  const upstream::ClusterConstSharedPtr& cluster() const override { return cluster_; }

  enum class Protocol { Unknown, Http1, Http2 };
  // What the host's last handshake negotiated.
  Protocol protocol() const { return protocol_; }

 private:
  // The connection whose handshake tells the protocol.
  struct Probe : network::ConnectionCallbacks {
    explicit Probe(AutoPool& pool) : pool(pool) {}
    ~Probe() override;
    void onEvent(network::ConnectionEvent event) override;
    void onAboveWriteBufferHighWatermark() override {}
    void onBelowWriteBufferLowWatermark() override {}
    AutoPool& pool;
    std::unique_ptr<network::Connection> connection;
    std::unique_ptr<event::Timer> timer;
  };

  void startProbe();
  void onHandshake();
  void onProbeFailed(bool timeout);
  void drainPools();
  upstream::ResourceManager& resources() const { return cluster_->resourcesFor(high_priority_); }

  event::Dispatcher& dispatcher_;
  upstream::ClusterConstSharedPtr cluster_;
  const network::Address address_;
  ConnPool http1_;
  Http2Pool http2_;
  Protocol protocol_ = Protocol::Unknown;
  std::unique_ptr<Probe> probe_;
  // Requests waiting for the probe.
  WaitQueue waiting_;
  bool draining_ = false;
  const bool high_priority_;
  bool pools_draining_ = false;
  int pools_left_ = 0;
  std::function<void()> on_drained_;
};

}  // namespace courier::http::pool
