#include "source/common/http/pool/conn_pool.h"

#include "absl/container/flat_hash_set.h"
#include "source/common/http/pool/upstream_connection.h"

#include "absl/strings/str_cat.h"
#include "source/common/http/pool/auto_pool.h"
#include "source/common/http/pool/http2_pool.h"

namespace courier::http::pool {

PooledConnection::PooledConnection(ConnPool& pool, std::unique_ptr<network::Connection> connection)
    : pool_(pool), connection_(std::move(connection)), codec_(std::make_unique<http1::ClientConnection>(output_)) {
  connection_->addConnectionCallbacks(*this);
}

PooledConnection::~PooledConnection() {
  if (connection_ != nullptr) {
    connection_->removeConnectionCallbacks(*this);
    connection_->close(network::CloseType::NoFlush);
  }
}

void PooledConnection::flush() {
  if (!output_.empty()) connection_->write(output_, false);
}

void PooledConnection::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) {
    pool_.onConnected(*this);
    return;
  }
  pool_.onClosed(*this);
}

void PooledConnection::onAboveWriteBufferHighWatermark() { pool_.onWatermark(*this, true); }

void PooledConnection::onBelowWriteBufferLowWatermark() { pool_.onWatermark(*this, false); }

void PooledConnection::onData(buffer::Buffer& data) { pool_.onData(*this, data); }

ConnPool::ConnPool(event::Dispatcher& dispatcher, upstream::ClusterConstSharedPtr cluster, const upstream::Host& host,
                   bool high_priority)
    : dispatcher_(dispatcher),
      cluster_(std::move(cluster)),
      address_(host.address),
      waiting_(cluster_->resourcesFor(high_priority).pending_requests),
      high_priority_(high_priority) {}

ConnPool::~ConnPool() {
  // The cluster's circuit-breaker counts outlive this pool.
  for (size_t i = 0; i < connections_.size(); ++i) resources().connections.dec();
  waiting_.clear();
  owners_.clear();
  connections_.clear();
}

void ConnPool::newStream(PoolCallbacks& callbacks) {
  for (auto& c : connections_) {
    if (c->connected_ && !c->busy_ && c->codec_->idle()) {
      c->busy_ = true;
      ++c->requests_;
      owners_[c.get()] = &callbacks;
      callbacks.onPoolReady(*c);
      return;
    }
  }
  if (!waiting_.push(callbacks, cluster_->stats->upstream_rq_pending_overflow)) return;
  connectForWaiters();
}

size_t ConnPool::connecting() const {
  size_t n = 0;
  for (const auto& c : connections_) n += c->connected_ ? 0 : 1;
  return n;
}

void ConnPool::connectForWaiters() {
  if (waiting_.size() <= connecting()) return;
  if (!resources().connections.canCreate() && !connections_.empty()) {
    // The waiter stays queued until a connection of this pool frees up.
    cluster_->stats->upstream_cx_overflow.inc();
    return;
  }
  createConnection();
}

void ConnPool::cancel(PoolCallbacks& callbacks) {
  waiting_.remove(callbacks);
  for (auto it = owners_.begin(); it != owners_.end(); ++it) {
    if (it->second == &callbacks) {
      // Mid-request: the connection's state is unknown, so it is not reused.
      PooledConnection* c = it->first;
      owners_.erase(it);
      erase(*c);
      return;
    }
  }
  checkDrained();
}

void ConnPool::release(UpstreamStream& stream, bool reusable) {
  // This pool hands out only its own connections.
  auto& c = static_cast<PooledConnection&>(stream);
  owners_.erase(&c);
  c.busy_ = false;
  if (draining_) reusable = false;
  const uint32_t max = cluster_->max_requests_per_connection;
  if (max != 0 && c.requests_ >= max) {
    cluster_->stats->upstream_cx_max_requests.inc();
    reusable = false;
  }
  if (!reusable) {
    erase(c);
    return;
  }
  // Someone may be waiting for exactly this.
  if (PoolCallbacks* next = waiting_.pop()) {
    c.busy_ = true;
    ++c.requests_;
    owners_[&c] = next;
    next->onPoolReady(c);
  }
}

void ConnPool::createConnection() {
  PooledConnection& c = addConnection(connectUpstream(dispatcher_, *cluster_, resources(), address_));
  if (!alpn_check_) return;
  PooledConnection* raw = &c;
  c.connection_->setHandshakeCallback([this, raw] {
    if (alpn_check_(raw->connection_->nextProtocol())) return;
    raw->connection_->removeConnectionCallbacks(*raw);
    raw->connection_->close(network::CloseType::NoFlush);
    onClosed(*raw);
  });
}

void ConnPool::adopt(std::unique_ptr<network::Connection> connection) {
  onConnected(addConnection(std::move(connection)));
}

PooledConnection& ConnPool::addConnection(std::unique_ptr<network::Connection> connection) {
  auto pooled = std::make_unique<PooledConnection>(*this, std::move(connection));
  PooledConnection* raw = pooled.get();
  cluster_->stats->upstream_cx_http1_total.inc();
  forwardReads(*raw->connection_, *raw);
  raw->connect_timer_ = dispatcher_.createTimer([this, raw] {
    cluster_->stats->upstream_cx_connect_timeout.inc();
    raw->connection_->removeConnectionCallbacks(*raw);
    raw->connection_->close(network::CloseType::NoFlush);
    onClosed(*raw);
  });
  raw->connect_timer_->enable(cluster_->connect_timeout);
  connections_.push_front(std::move(pooled));
  raw->self_ = connections_.begin();
  return *raw;
}

void ConnPool::onConnected(PooledConnection& c) {
  c.connected_ = true;
  c.connect_timer_->disable();
  PoolCallbacks* next = waiting_.pop();
  if (next == nullptr) {
    // Nobody is left to use it, and a draining pool keeps nothing idle.
    if (draining_) erase(c);
    return;
  }
  c.busy_ = true;
  ++c.requests_;
  owners_[&c] = next;
  next->onPoolReady(c);
}

void ConnPool::onClosed(PooledConnection& c) {
  const bool was_connected = c.connected_;
  if (c.connect_timer_) c.connect_timer_->disable();
  auto owner = owners_.find(&c);
  PoolCallbacks* callbacks = owner == owners_.end() ? nullptr : owner->second;
  if (owner != owners_.end()) owners_.erase(owner);
  if (!was_connected) cluster_->stats->upstream_cx_connect_fail.inc();
  // The connect that was meant for the first waiter failed: that waiter is
  // told, and is no longer owed a connection.
  PoolCallbacks* failed = (callbacks == nullptr && !was_connected) ? waiting_.pop() : nullptr;
  erase(c);
  if (callbacks != nullptr) {
    callbacks->onUpstreamClosed();
  } else if (failed != nullptr) {
    failed->onPoolFailure(PoolCallbacks::Failure::ConnectFailure);
  }
}

void ConnPool::onData(PooledConnection& c, buffer::Buffer& data) {
  auto owner = owners_.find(&c);
  if (owner == owners_.end()) {
    // Bytes on an idle connection: nothing can be waiting for them.
    data.drain(data.length());
    erase(c);
    return;
  }
  owner->second->onUpstreamData(data);
}

void ConnPool::onWatermark(PooledConnection& c, bool above) {
  auto owner = owners_.find(&c);
  if (owner != owners_.end()) owner->second->onUpstreamWatermark(above);
}

void ConnPool::erase(PooledConnection& c) {
  cluster_->stats->upstream_cx_active.dec();
  cluster_->stats->upstream_cx_destroy.inc();
  resources().connections.dec();
  auto it = c.self_;
  std::unique_ptr<PooledConnection> doomed = std::move(*it);
  connections_.erase(it);
  if (doomed->connection_ != nullptr) {
    doomed->connection_->removeConnectionCallbacks(*doomed);
    doomed->connection_->close(network::CloseType::NoFlush);
    // We may be inside this connection's callback: delete later.
    dispatcher_.deferredDelete(std::move(doomed->connection_));
  }
  struct Holder : event::DeferredDeletable {
    std::unique_ptr<PooledConnection> c;
  };
  auto holder = std::make_unique<Holder>();
  holder->c = std::move(doomed);
  dispatcher_.deferredDelete(std::move(holder));
  // A connection slot came free.
  connectForWaiters();
  checkDrained();
}

Pool& ConnPoolManager::pool(const upstream::ClusterConstSharedPtr& cluster, const upstream::Host& host,
                            bool downstream_http2, bool high_priority) {
  // auto_config over TLS: one pool learns the protocol by ALPN.
  const bool by_alpn = cluster->auto_http && cluster->transport_socket_factory != nullptr;
  const bool http2 = !cluster->auto_http && cluster->http2_settings.has_value() &&
                     (!cluster->use_downstream_protocol || downstream_http2);
  // The pool holds the cluster (and so its hosts): neither address can be
  // reused while the key lives. No address formatting per request.
  // A cluster made without a settings_id (tests) shares pools with no other version.
  const uint64_t settings =
      cluster->settings_id != 0 ? cluster->settings_id : reinterpret_cast<uintptr_t>(cluster.get());
  const PoolKey key{settings, &host, http2, high_priority};
  auto it = pools_.find(key);
  if (it == pools_.end()) {
    std::unique_ptr<Pool> pool;
    if (by_alpn) {
      pool = std::make_unique<AutoPool>(dispatcher_, cluster, host, high_priority);
    } else if (http2) {
      pool = std::make_unique<Http2Pool>(dispatcher_, cluster, host, high_priority);
    } else {
      pool = std::make_unique<ConnPool>(dispatcher_, cluster, host, high_priority);
    }
    it = pools_.emplace(key, std::move(pool)).first;
  }
  return *it->second;
}

}  // namespace courier::http::pool

namespace courier::http::pool {

void ConnPool::drain(std::function<void()> on_drained) {
  draining_ = true;
  on_drained_ = std::move(on_drained);
  std::vector<PooledConnection*> idle;
  for (auto& c : connections_) {
    if (c->connected_ && !c->busy_) idle.push_back(c.get());
  }
  for (PooledConnection* c : idle) erase(*c);
  checkDrained();
}

void ConnPool::checkDrained() {
  if (!draining_ || !connections_.empty() || !waiting_.empty() || !on_drained_) return;
  // Posted: we may be inside this pool's own call stack.
  dispatcher_.post(std::move(on_drained_));
  on_drained_ = nullptr;
}

void ConnPoolManager::drainStale(const upstream::ClusterSet& current) {
  // The hosts of each live cluster a pool asks about, gathered once per swap.
  absl::flat_hash_map<const upstream::Cluster*, absl::flat_hash_set<const upstream::Host*>> hosts_of;
  for (auto it = pools_.begin(); it != pools_.end();) {
    const upstream::ClusterConstSharedPtr& cluster = it->second->cluster();
    auto live = current.clusters.find(cluster->name);
    bool keep = false;
    if (live != current.clusters.end() && live->second == cluster) {
      keep = true;
    } else if (live != current.clusters.end() && cluster->settings_id != 0 &&
               live->second->settings_id == cluster->settings_id) {
      auto [hosts, fresh] = hosts_of.try_emplace(live->second.get());
      if (fresh) {
        for (const auto& h : live->second->hosts) hosts->second.insert(h.get());
      }
      keep = hosts->second.contains(std::get<1>(it->first));
    }
    if (keep) {
      ++it;
      continue;
    }
    Pool* raw = it->second.get();
    draining_.emplace(raw, std::move(it->second));
    pools_.erase(it++);
    raw->drain([this, raw] { draining_.erase(raw); });
  }
}

}  // namespace courier::http::pool
