#include "source/common/http/pool/auto_pool.h"

#include "source/common/http/pool/upstream_connection.h"

namespace courier::http::pool {

AutoPool::Probe::~Probe() {
  if (connection != nullptr) {
    connection->removeConnectionCallbacks(*this);
    connection->close(network::CloseType::NoFlush);
  }
}

void AutoPool::Probe::onEvent(network::ConnectionEvent event) {
  // TCP is up; the TLS handshake goes on (onHandshake tells when it is done).
  if (event == network::ConnectionEvent::Connected) return;
  pool.onProbeFailed(false);
}

AutoPool::AutoPool(event::Dispatcher& dispatcher, upstream::ClusterConstSharedPtr cluster, const upstream::Host& host,
                   bool high_priority)
    : dispatcher_(dispatcher),
      cluster_(cluster),
      address_(host.address),
      http1_(dispatcher, cluster, host, high_priority),
      http2_(dispatcher, cluster, host, high_priority),
      waiting_(cluster_->resourcesFor(high_priority).pending_requests),
      high_priority_(high_priority) {
  // Plaintext has no ALPN: HTTP/1.1, as Envoy.
  if (cluster_->transport_socket_factory == nullptr) protocol_ = Protocol::Http1;
  // A later connection that negotiates the other protocol (the server
  // changed) fails, and the next request learns the protocol anew.
  http1_.setAlpnCheck([this](std::string_view alpn) {
    if (alpn != "h2") return true;
    protocol_ = Protocol::Unknown;
    return false;
  });
  http2_.setAlpnCheck([this](std::string_view alpn) {
    if (alpn == "h2") return true;
    protocol_ = Protocol::Unknown;
    return false;
  });
}

AutoPool::~AutoPool() {
  // The cluster's circuit-breaker counts outlive this pool.
  waiting_.clear();
  if (probe_ != nullptr) {
    cluster_->stats->upstream_cx_active.dec();
    resources().connections.dec();
  }
}

void AutoPool::newStream(PoolCallbacks& callbacks) {
  switch (protocol_) {
    case Protocol::Http2:
      http2_.newStream(callbacks);
      return;
    case Protocol::Http1:
      http1_.newStream(callbacks);
      return;
    case Protocol::Unknown:
      break;
  }
  if (!waiting_.push(callbacks, cluster_->stats->upstream_rq_pending_overflow)) return;
  if (probe_ == nullptr) startProbe();
}

void AutoPool::startProbe() {
  probe_ = std::make_unique<Probe>(*this);
  probe_->connection = connectUpstream(dispatcher_, *cluster_, resources(), address_);
  probe_->connection->addConnectionCallbacks(*probe_);
  probe_->connection->setHandshakeCallback([this] { onHandshake(); });
  probe_->timer = dispatcher_.createTimer([this] { onProbeFailed(true); });
  probe_->timer->enable(cluster_->connect_timeout);
}

void AutoPool::onHandshake() {
  // Runs from the connection's read (or write) path, before any bytes read
  // with the handshake reach a filter: the chosen pool's filter gets them.
  std::unique_ptr<Probe> probe = std::move(probe_);
  std::unique_ptr<network::Connection> connection = std::move(probe->connection);
  connection->removeConnectionCallbacks(*probe);
  probe.reset();
  const bool h2 = connection->nextProtocol() == "h2";
  protocol_ = h2 ? Protocol::Http2 : Protocol::Http1;
  if (h2) {
    http2_.adopt(std::move(connection));
  } else {
    http1_.adopt(std::move(connection));
  }
  while (PoolCallbacks* next = waiting_.pop()) newStream(*next);
  if (draining_) drainPools();
}

void AutoPool::onProbeFailed(bool timeout) {
  std::unique_ptr<Probe> probe = std::move(probe_);
  if (timeout) cluster_->stats->upstream_cx_connect_timeout.inc();
  cluster_->stats->upstream_cx_connect_fail.inc();
  cluster_->stats->upstream_cx_active.dec();
  cluster_->stats->upstream_cx_destroy.inc();
  resources().connections.dec();
  probe->timer->disable();
  probe->connection->removeConnectionCallbacks(*probe);
  probe->connection->close(network::CloseType::NoFlush);
  // We may be inside the connection's (or the probe's) own callback.
  dispatcher_.deferredDelete(std::move(probe->connection));
  struct Holder : event::DeferredDeletable {
    std::unique_ptr<Probe> p;
  };
  auto holder = std::make_unique<Holder>();
  holder->p = std::move(probe);
  dispatcher_.deferredDelete(std::move(holder));
  // The protocol stays unknown: the next request tries again.
  while (PoolCallbacks* next = waiting_.pop()) next->onPoolFailure(PoolCallbacks::Failure::ConnectFailure);
  if (draining_) drainPools();
}

void AutoPool::cancel(PoolCallbacks& callbacks) {
  waiting_.remove(callbacks);
  // Either pool forgets callbacks it does not know.
  http1_.cancel(callbacks);
  http2_.cancel(callbacks);
}

void AutoPool::release(UpstreamStream& stream, bool reusable) {
  if (dynamic_cast<PooledConnection*>(&stream) != nullptr) {
    http1_.release(stream, reusable);
  } else {
    http2_.release(stream, reusable);
  }
}

void AutoPool::drain(std::function<void()> on_drained) {
  draining_ = true;
  on_drained_ = std::move(on_drained);
  // A probe still connecting serves its waiters first, then the pools drain.
  if (probe_ == nullptr) drainPools();
}

void AutoPool::drainPools() {
  if (pools_draining_) return;
  pools_draining_ = true;
  pools_left_ = 2;
  auto one_done = [this] {
    // Both pools post their on_drained: this runs outside their stacks.
    if (--pools_left_ == 0 && on_drained_) {
      auto done = std::move(on_drained_);
      on_drained_ = nullptr;
      done();
    }
  };
  http1_.drain(one_done);
  http2_.drain(one_done);
}

}  // namespace courier::http::pool
