// A worker thread: its own event loop, its own SO_REUSEPORT listen sockets,
// the connections it accepted, and its thread-local view of the clusters.
// The main thread talks to it only by posting to its dispatcher.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/connection.h"
#include "source/common/network/socket.h"
#include "source/common/upstream/thread_local_cluster_manager.h"
#include "source/server/filter_config.h"
#include "source/server/listener_config.h"
#include "source/server/listener_filter.h"

namespace courier::server {

class Worker;

// One listener on one worker: accepts and owns the connections it accepted.
class ActiveListener {
 public:
  ActiveListener(Worker& worker, ListenerConfigConstSharedPtr config, network::SocketFd fd);
  ~ActiveListener();

  // Stop accepting; existing connections go on.
  void stopAccepting();
  // Tells every connection its listener drains (Connection::startDrain).
  void drainConnections();
  // Stop accepting and hand the listen socket over (to the listener that
  // replaces this one at the same address), so connections queued in the
  // kernel are accepted by the successor instead of being reset.
  network::SocketFd releaseSocket();
  // Filter-chain-only update: `successor` (same address and listener-level
  // settings) takes over this listener's socket and the connections of the
  // chains it kept unchanged; this listener keeps and drains the rest.
  void handOverTo(ActiveListener& successor);
  // Once stopped and without connections, tells the worker (drain finished early).
  void setOnEmpty(std::function<void()> cb) { on_empty_ = std::move(cb); }
  // Connections, and sockets still in their listener filters.
  size_t connectionCount() const { return connections_.size() + pending_.size(); }
  const ListenerConfig& config() const { return *config_; }

 private:
  class ActiveConnection : public network::ConnectionCallbacks {
   public:
    ActiveConnection(ActiveListener& listener, std::unique_ptr<network::Connection> conn, const FilterChain* chain);
    void onEvent(network::ConnectionEvent event) override;
    ActiveListener* listener;
    std::unique_ptr<network::Connection> connection;
    // The chain it was accepted on (owned by listener->config_).
    const FilterChain* chain;
    std::list<std::unique_ptr<ActiveConnection>>::iterator self;
  };
  // An accepted socket in its listener filters: waits for the bytes they
  // peek at, bounded by listener_filters_timeout.
  struct PendingSocket {
    network::SocketFd fd;
    network::Address remote;
    network::Address local;
    ListenerFilterState state;
    size_t next_filter = 0;
    std::unique_ptr<event::FileEvent> event;
    std::unique_ptr<event::Timer> timer;
    std::list<std::unique_ptr<PendingSocket>>::iterator self;
  };

  void onAccept();
  void newConnection(network::SocketFd fd, network::Address remote);
  // Watches the socket (and its timeout) on this listener's behalf.
  void armPending(PendingSocket& pending);
  void onPendingReadable(PendingSocket& pending, uint32_t events);
  void onPendingTimeout(PendingSocket& pending);
  // Leaves the listener-filter stage: closes the socket or makes it a connection.
  void finishPending(PendingSocket& pending, bool close);
  void createConnection(network::SocketFd fd, network::Address remote, network::Address local,
                        const ListenerFilterState& state);
  void removeConnection(ActiveConnection& conn);
  // Tells on_empty_ once stopped with nothing left.
  void maybeEmpty();

  Worker& worker_;
  ListenerConfigConstSharedPtr config_;
  network::SocketFd fd_;
  std::unique_ptr<event::FileEvent> accept_event_;
  std::unique_ptr<event::Timer> accept_retry_timer_;
  std::list<std::unique_ptr<ActiveConnection>> connections_;
  std::list<std::unique_ptr<PendingSocket>> pending_;
  std::function<void()> on_empty_;
  bool draining_ = false;
};

class Worker {
 public:
  // total_connections counts downstream connections across all workers.
  Worker(size_t index, std::atomic<int64_t>& total_connections);
  ~Worker();

  size_t index() const { return index_; }
  event::Dispatcher& dispatcher() { return dispatcher_; }
  WorkerContext& context() { return context_; }
  upstream::ThreadLocalClusterManager& clusterManager() { return cluster_manager_; }
  http::pool::ConnPoolManager& httpPools() { return http_pools_; }
  std::atomic<int64_t>& totalConnections() { return total_connections_; }

  void start();
  // Stops the loop and joins; connections still open are closed.
  void stop();

  // Worker thread (post these from main).
  void addListener(ListenerConfigConstSharedPtr config, network::SocketFd fd);
  // A changed listener: the new one starts accepting, the old one (same
  // name) stops and drains under `drain_tag`. An invalid `fd` means the
  // address did not change: the new listener takes over the old socket.
  void replaceListener(ListenerConfigConstSharedPtr config, network::SocketFd fd, uint64_t drain_tag);
  // A filter-chain-only update: the new listener takes over the old one's
  // socket and the connections of unchanged chains; only the connections of
  // removed or changed chains drain under `drain_tag`.
  void updateListenerInPlace(ListenerConfigConstSharedPtr config, uint64_t drain_tag);
  // A removed listener stops accepting and drains under `drain_tag`.
  void drainListener(const std::string& name, uint64_t drain_tag);
  // The drain time is over: close what is left of a draining listener.
  void removeDrainingListener(uint64_t drain_tag);
  void stopAcceptingAll();
  size_t activeListenerCount() const { return listeners_.size(); }
  size_t drainingListenerCount() const { return draining_.size(); }

 private:
  void startDraining(std::unique_ptr<ActiveListener> listener, uint64_t drain_tag);

  const size_t index_;
  std::atomic<int64_t>& total_connections_;
  event::Dispatcher dispatcher_;
  upstream::ThreadLocalClusterManager cluster_manager_;
  http::pool::ConnPoolManager http_pools_{dispatcher_};
  WorkerContext context_;
  absl::flat_hash_map<std::string, std::unique_ptr<ActiveListener>> listeners_;
  // Listeners that stopped accepting and wait for their connections to end
  // (or the drain time to pass), by the drain tag the main thread gave them.
  absl::flat_hash_map<uint64_t, std::unique_ptr<ActiveListener>> draining_;
  std::thread thread_;
};

}  // namespace courier::server
