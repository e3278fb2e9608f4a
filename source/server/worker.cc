#include "source/server/worker.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace courier::server {
namespace {
// Accepts per readiness event before yielding to the connections on the loop.
constexpr int kMaxAcceptsPerEvent = 64;
}  // namespace

ActiveListener::ActiveListener(Worker& worker, ListenerConfigConstSharedPtr config, network::SocketFd fd)
    : worker_(worker), config_(std::move(config)), fd_(std::move(fd)) {
  accept_event_ = worker_.dispatcher().createFileEvent(fd_.get(), [this](uint32_t events) {
    if (events & event::kRead) onAccept();
  });
  // Connections may already be queued from before the event existed.
  accept_event_->activate(event::kRead);
}

ActiveListener::~ActiveListener() {
  accept_event_.reset();
  for (auto& p : pending_) {
    p->event.reset();
    p->timer.reset();
    config_->stats->downstream_pre_cx_active.dec();
  }
  pending_.clear();
  // Close what is left without raising events back into this listener.
  for (auto& c : connections_) {
    c->connection->removeConnectionCallbacks(*c);
    c->connection->close(network::CloseType::NoFlush);
    config_->stats->downstream_cx_active.dec();
    config_->stats->downstream_cx_destroy.inc();
    worker_.totalConnections().fetch_sub(1, std::memory_order_relaxed);
  }
  connections_.clear();
}

void ActiveListener::stopAccepting() {
  accept_retry_timer_.reset();
  accept_event_.reset();
  fd_ = network::SocketFd();
}

void ActiveListener::drainConnections() {
  draining_ = true;
  // Pointers first: a connection that closes from its drain callback leaves
  // the list (its Connection object lives on until the loop turn ends).
  std::vector<network::Connection*> connections;
  connections.reserve(connections_.size());
  for (auto& c : connections_) connections.push_back(c->connection.get());
  for (network::Connection* c : connections) c->startDrain();
}

network::SocketFd ActiveListener::releaseSocket() {
  accept_retry_timer_.reset();
  accept_event_.reset();
  return std::move(fd_);
}

void ActiveListener::onAccept() {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    if (!fd_.valid()) return;
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      spdlog::warn("listener '{}': accept failed: {}", config_->name, std::strerror(errno));
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The queued connections stay queued and edge triggering will not
        // report them again: come back once descriptors may have been freed.
        if (!accept_retry_timer_) {
          accept_retry_timer_ = worker_.dispatcher().createTimer([this] {
            if (accept_event_) accept_event_->activate(event::kRead);
          });
        }
        accept_retry_timer_->enable(std::chrono::milliseconds(100));
      }
      return;
    }
    newConnection(network::SocketFd(fd), network::Address::fromSockaddr(ss, len));
  }
  // More may be waiting; edge triggering won't say so again.
  if (accept_event_) accept_event_->activate(event::kRead);
}

void ActiveListener::newConnection(network::SocketFd fd, network::Address remote) {
  network::Address local = network::Address::localOf(fd.get());
  if (config_->listener_filters.empty()) {
    createConnection(std::move(fd), std::move(remote), std::move(local), ListenerFilterState());
    return;
  }
  auto owned = std::make_unique<PendingSocket>();
  PendingSocket& pending = *owned;
  pending.fd = std::move(fd);
  pending.remote = std::move(remote);
  pending.local = std::move(local);
  pending_.push_front(std::move(owned));
  pending.self = pending_.begin();
  config_->stats->downstream_pre_cx_active.inc();
  armPending(pending);
}

void ActiveListener::armPending(PendingSocket& pending) {
  pending.event = worker_.dispatcher().createFileEvent(
      pending.fd.get(), [this, &pending](uint32_t events) { onPendingReadable(pending, events); });
  if (config_->listener_filters_timeout.count() > 0) {
    pending.timer = worker_.dispatcher().createTimer([this, &pending] { onPendingTimeout(pending); });
    pending.timer->enable(config_->listener_filters_timeout);
  } else {
    pending.timer.reset();
  }
  // The first bytes may have arrived with the handshake already.
  pending.event->activate(event::kRead);
}

void ActiveListener::onPendingReadable(PendingSocket& pending, uint32_t events) {
  // The peer closed its side: what was peeked is all there will be.
  const bool end_stream = (events & event::kClosed) != 0;
  const auto& filters = config_->listener_filters;
  const uint16_t port = pending.local.port();
  auto skipped = [&](size_t i) { return filters[i].disabled != nullptr && filters[i].disabled->matches(port); };
  size_t want = 0;
  for (size_t i = pending.next_filter; i < filters.size(); ++i) {
    if (!skipped(i)) want = std::max(want, filters[i].filter->maxReadBytes());
  }
  if (want == 0) {
    // Every filter left is disabled for this connection.
    finishPending(pending, /*close=*/false);
    return;
  }
  // One peek buffer per worker thread, reused by every socket it inspects.
  thread_local std::vector<char> peeked;
  if (peeked.size() < std::max<size_t>(want, 1)) peeked.resize(std::max<size_t>(want, 1));
  ssize_t n;
  do {
    n = ::recv(pending.fd.get(), peeked.data(), std::max<size_t>(want, 1), MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    config_->stats->downstream_listener_filter_error.inc();  // reset by the peer
    finishPending(pending, /*close=*/true);
    return;
  }
  if (n == 0) {
    // The peer closed before the listener filters could decide.
    config_->stats->downstream_listener_filter_remote_close.inc();
    finishPending(pending, /*close=*/true);
    return;
  }
  const std::string_view data(peeked.data(), static_cast<size_t>(n));
  while (pending.next_filter < filters.size()) {
    if (skipped(pending.next_filter)) {
      ++pending.next_filter;
      continue;
    }
    const ListenerFilter& filter = *filters[pending.next_filter].filter;
    const std::string_view view = data.substr(0, std::min(data.size(), filter.maxReadBytes()));
    switch (filter.onData(view, pending.state)) {
      case ListenerFilterStatus::NeedMoreData:
        // The next bytes raise another read event, unless none will come
        // or the filter saw all it may see and still cannot decide.
        if (!end_stream && view.size() < filter.maxReadBytes()) return;
        if (end_stream) config_->stats->downstream_listener_filter_remote_close.inc();
        finishPending(pending, /*close=*/true);
        return;
      case ListenerFilterStatus::Close:
        finishPending(pending, /*close=*/true);
        return;
      case ListenerFilterStatus::Continue:
        ++pending.next_filter;
        break;
    }
  }
  finishPending(pending, /*close=*/false);
}

void ActiveListener::onPendingTimeout(PendingSocket& pending) {
  config_->stats->downstream_pre_cx_timeout.inc();
  // Envoy's continue_on_listener_filters_timeout: choose a chain with what
  // the filters found so far.
  finishPending(pending, /*close=*/!config_->continue_on_listener_filters_timeout);
}

void ActiveListener::finishPending(PendingSocket& pending, bool close) {
  // Called from the socket's own event or timer: nothing of `pending` is
  // used by the caller after this.
  pending.event.reset();
  pending.timer.reset();
  config_->stats->downstream_pre_cx_active.dec();
  std::unique_ptr<PendingSocket> owned = std::move(*pending.self);
  pending_.erase(pending.self);
  if (!close) {
    createConnection(std::move(owned->fd), std::move(owned->remote), std::move(owned->local), owned->state);
  }
  owned.reset();  // closes the socket when it did not become a connection
  maybeEmpty();
}

void ActiveListener::createConnection(network::SocketFd fd, network::Address remote, network::Address local,
                                      const ListenerFilterState& state) {
  ConnectionMatchInfo info;
  info.local = &local;
  info.remote = &remote;
  info.server_name = state.server_name;
  if (!state.transport_protocol.empty()) info.transport_protocol = state.transport_protocol;
  info.application_protocols = &state.application_protocols;
  const FilterChain* chain = config_->selectFilterChain(info);
  if (chain == nullptr) {
    config_->stats->no_filter_chain_match.inc();
    return;  // fd closes here
  }
  network::setNoDelay(fd.get());
  auto conn = std::make_unique<network::Connection>(worker_.dispatcher(), std::move(fd), std::move(remote),
                                                    std::move(local));
  conn->setBufferLimits(config_->per_connection_buffer_limit_bytes);
  if (chain->transport_socket_factory != nullptr) {
    conn->setTransportSocket(chain->transport_socket_factory->createTransportSocket());
  }
  config_->stats->downstream_cx_total.inc();
  config_->stats->downstream_cx_active.inc();
  worker_.totalConnections().fetch_add(1, std::memory_order_relaxed);
  auto active = std::make_unique<ActiveConnection>(*this, std::move(conn), chain);
  ActiveConnection& ref = *active;
  connections_.push_front(std::move(active));
  ref.self = connections_.begin();
  for (const auto& factory : chain->filter_factories) factory(*ref.connection, worker_.context());
  if (!ref.connection->initializeReadFilters()) return;  // the close event already removed it
  // A socket that finished its listener filters after this listener began
  // draining drains too.
  if (draining_) ref.connection->startDrain();
  // Filters that did not pause reading get whatever arrived with the handshake.
}

void ActiveListener::handOverTo(ActiveListener& successor) {
  // Each old chain's counterpart, looked up once per chain rather than once
  // per connection (a gateway may have thousands of both).
  absl::flat_hash_map<const FilterChain*, const FilterChain*> counterpart;
  for (const auto& c : config_->filter_chains) counterpart[c.get()] = successor.config_->sameChainAs(*c);
  if (config_->default_filter_chain != nullptr) {
    counterpart[config_->default_filter_chain.get()] = successor.config_->sameChainAs(*config_->default_filter_chain);
  }
  for (auto it = connections_.begin(); it != connections_.end();) {
    auto next = std::next(it);
    ActiveConnection& conn = **it;
    auto found = counterpart.find(conn.chain);
    if (const FilterChain* same = found != counterpart.end() ? found->second : nullptr; same != nullptr) {
      conn.listener = &successor;
      conn.chain = same;
      successor.connections_.splice(successor.connections_.begin(), connections_, it);
      conn.self = successor.connections_.begin();
    }
    it = next;
  }
  // Sockets still in their listener filters choose a chain of the new config.
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto next = std::next(it);
    PendingSocket& pending = **it;
    pending.event.reset();
    pending.timer.reset();
    config_->stats->downstream_pre_cx_active.dec();
    successor.pending_.splice(successor.pending_.begin(), pending_, it);
    pending.self = successor.pending_.begin();
    pending.next_filter = 0;
    pending.state = ListenerFilterState();
    successor.config_->stats->downstream_pre_cx_active.inc();
    successor.armPending(pending);
    it = next;
  }
}

void ActiveListener::maybeEmpty() {
  if (connections_.empty() && pending_.empty() && !fd_.valid() && on_empty_) on_empty_();
}

ActiveListener::ActiveConnection::ActiveConnection(ActiveListener& listener,
                                                   std::unique_ptr<network::Connection> conn,
                                                   const FilterChain* chain)
    : listener(&listener), connection(std::move(conn)), chain(chain) {
  connection->addConnectionCallbacks(*this);
}

void ActiveListener::ActiveConnection::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) return;
  listener->removeConnection(*this);
}

void ActiveListener::removeConnection(ActiveConnection& conn) {
  config_->stats->downstream_cx_active.dec();
  config_->stats->downstream_cx_destroy.inc();
  worker_.totalConnections().fetch_sub(1, std::memory_order_relaxed);
  // We are inside the connection's own event: delete it after the loop iteration.
  worker_.dispatcher().deferredDelete(std::move(conn.connection));
  connections_.erase(conn.self);
  maybeEmpty();
}

Worker::Worker(size_t index, std::atomic<int64_t>& total_connections)
    : index_(index),
      total_connections_(total_connections),
      dispatcher_(absl::StrCat("worker_", index)),
      context_{dispatcher_, cluster_manager_, http_pools_, index} {}

Worker::~Worker() { stop(); }

void Worker::start() {
  thread_ = std::thread([this] { dispatcher_.run(); });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  dispatcher_.post([this] {
    listeners_.clear();
    draining_.clear();
  });
  dispatcher_.exit();
  thread_.join();
}

void Worker::addListener(ListenerConfigConstSharedPtr config, network::SocketFd fd) {
  std::string name = config->name;
  listeners_[name] = std::make_unique<ActiveListener>(*this, std::move(config), std::move(fd));
}

void Worker::replaceListener(ListenerConfigConstSharedPtr config, network::SocketFd fd, uint64_t drain_tag) {
  auto it = listeners_.find(config->name);
  if (it == listeners_.end()) {
    if (fd.valid()) addListener(std::move(config), std::move(fd));
    return;
  }
  std::unique_ptr<ActiveListener> old = std::move(it->second);
  if (fd.valid()) {
    old->stopAccepting();
  } else {
    fd = old->releaseSocket();
  }
  it->second = std::make_unique<ActiveListener>(*this, std::move(config), std::move(fd));
  startDraining(std::move(old), drain_tag);
}

void Worker::updateListenerInPlace(ListenerConfigConstSharedPtr config, uint64_t drain_tag) {
  auto it = listeners_.find(config->name);
  if (it == listeners_.end()) return;
  std::unique_ptr<ActiveListener> old = std::move(it->second);
  network::SocketFd fd = old->releaseSocket();
  it->second = std::make_unique<ActiveListener>(*this, std::move(config), std::move(fd));
  old->handOverTo(*it->second);
  startDraining(std::move(old), drain_tag);
}

void Worker::drainListener(const std::string& name, uint64_t drain_tag) {
  auto it = listeners_.find(name);
  if (it == listeners_.end()) return;
  std::unique_ptr<ActiveListener> old = std::move(it->second);
  listeners_.erase(it);
  old->stopAccepting();
  startDraining(std::move(old), drain_tag);
}

void Worker::startDraining(std::unique_ptr<ActiveListener> listener, uint64_t drain_tag) {
  listener->drainConnections();
  if (listener->connectionCount() == 0) return;  // nothing (left) to wait for
  // The last connection leaves from inside its own close event: delete the
  // listener on a later turn of the loop.
  listener->setOnEmpty([this, drain_tag] { dispatcher_.post([this, drain_tag] { draining_.erase(drain_tag); }); });
  draining_[drain_tag] = std::move(listener);
}

void Worker::removeDrainingListener(uint64_t drain_tag) { draining_.erase(drain_tag); }

void Worker::stopAcceptingAll() {
  for (auto& [name, listener] : listeners_) {
    listener->stopAccepting();
    listener->drainConnections();
  }
}

}  // namespace courier::server
