// Opening a pooled upstream connection, the same for the HTTP/1 and HTTP/2
// pools: the cluster's buffer limit and byte counters, the connection counted
// in the cluster's stats and in the max_connections breaker of the pool's
// routing priority, and reads forwarded to the pool's own connection object.
#pragma once

#include <memory>

#include "source/common/event/dispatcher.h"
#include "source/common/network/connection.h"
#include "source/common/upstream/cluster.h"

namespace courier::http::pool {

// The pool undoes the counts when the connection goes. resources: the
// cluster's thresholds for the pool's priority.
inline std::unique_ptr<network::Connection> connectUpstream(event::Dispatcher& dispatcher,
                                                            const upstream::Cluster& cluster,
                                                            upstream::ResourceManager& resources,
                                                            const network::Address& address) {
  auto conn = network::Connection::connect(dispatcher, address,
                                           cluster.transport_socket_factory != nullptr
                                               ? cluster.transport_socket_factory->createTransportSocket()
                                               : nullptr);
  conn->setBufferLimits(cluster.per_connection_buffer_limit_bytes);
  conn->setConnectionStats({&cluster.stats->upstream_cx_rx_bytes_total, &cluster.stats->upstream_cx_tx_bytes_total});
  cluster.stats->upstream_cx_total.inc();
  cluster.stats->upstream_cx_active.inc();
  resources.connections.inc();
  return conn;
}

// The connection owns its read filters while the pool owns target, so the
// filter only forwards every read to target.onData().
template <class Target>
void forwardReads(network::Connection& connection, Target& target) {
  struct Shim : network::ReadFilter {
    explicit Shim(Target& t) : t(t) {}
    void initializeReadFilterCallbacks(network::ReadFilterCallbacks&) override {}
    network::FilterStatus onData(buffer::Buffer& data, bool) override {
      t.onData(data);
      return network::FilterStatus::StopIteration;
    }
    Target& t;
  };
  connection.addReadFilter(std::make_unique<Shim>(target));
}

}  // namespace courier::http::pool
