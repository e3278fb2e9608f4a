#include "source/server/worker.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

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
  const FilterChain* chain = config_->selectFilterChain();
  if (chain == nullptr) {
    config_->stats->no_filter_chain_match.inc();
    return;  // fd closes here
  }
  network::setNoDelay(fd.get());
  network::Address local = network::Address::localOf(fd.get());
  auto conn = std::make_unique<network::Connection>(worker_.dispatcher(), std::move(fd), std::move(remote),
                                                    std::move(local));
  conn->setBufferLimits(config_->per_connection_buffer_limit_bytes);
  if (chain->transport_socket_factory != nullptr) {
    conn->setTransportSocket(chain->transport_socket_factory->createTransportSocket());
  }
  config_->stats->downstream_cx_total.inc();
  config_->stats->downstream_cx_active.inc();
  worker_.totalConnections().fetch_add(1, std::memory_order_relaxed);
  auto active = std::make_unique<ActiveConnection>(*this, std::move(conn));
  ActiveConnection& ref = *active;
  connections_.push_front(std::move(active));
  ref.self = connections_.begin();
  for (const auto& factory : chain->filter_factories) factory(*ref.connection, worker_.context());
  if (!ref.connection->initializeReadFilters()) return;  // the close event already removed it
  // Filters that did not pause reading get whatever arrived with the handshake.
}

ActiveListener::ActiveConnection::ActiveConnection(ActiveListener& listener,
                                                   std::unique_ptr<network::Connection> conn)
    : listener(listener), connection(std::move(conn)) {
  connection->addConnectionCallbacks(*this);
}

void ActiveListener::ActiveConnection::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) return;
  listener.removeConnection(*this);
}

void ActiveListener::removeConnection(ActiveConnection& conn) {
  config_->stats->downstream_cx_active.dec();
  config_->stats->downstream_cx_destroy.inc();
  worker_.totalConnections().fetch_sub(1, std::memory_order_relaxed);
  // We are inside the connection's own event: delete it after the loop iteration.
  worker_.dispatcher().deferredDelete(std::move(conn.connection));
  connections_.erase(conn.self);
  if (connections_.empty() && !fd_.valid() && on_empty_) on_empty_();
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
