// The immutable form of a Listener that workers accept with: its address,
// its filter chains (as factories that install filters on a connection) and
// its listener.<address>.* stats.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "source/common/network/address.h"
#include "source/common/stats/store.h"
#include "source/server/filter_config.h"

namespace courier::server {

struct ListenerStats {
  ListenerStats(stats::Store& store, const std::string& prefix);
  stats::Counter& downstream_cx_total;
  stats::Counter& downstream_cx_destroy;
  stats::Gauge& downstream_cx_active;
  stats::Counter& no_filter_chain_match;
};

struct FilterChain {
  std::string name;
  std::vector<NetworkFilterFactoryCb> filter_factories;
  // TLS for the chain's connections; null is plaintext (raw_buffer).
  network::TransportSocketFactoryConstSharedPtr transport_socket_factory;
};

struct ListenerConfig {
  std::string name;
  network::Address address;
  bool reuse_port = true;
  int backlog = 1024;
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  std::vector<std::shared_ptr<const FilterChain>> filter_chains;
  std::shared_ptr<const FilterChain> default_filter_chain;
  std::shared_ptr<ListenerStats> stats;

  // Filter-chain matching arrives with TLS/SNI; until then the first chain
  // serves, then the default chain.
  const FilterChain* selectFilterChain() const {
    if (!filter_chains.empty()) return filter_chains.front().get();
    return default_filter_chain.get();
  }
};
using ListenerConfigConstSharedPtr = std::shared_ptr<const ListenerConfig>;

// "listener.127.0.0.1_8080" as Envoy names a listener's stat scope, or
// "listener.<stat_prefix>" when the listener sets one.
std::string listenerStatPrefix(const network::Address& address, const std::string& stat_prefix);

}  // namespace courier::server
