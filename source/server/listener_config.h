// The immutable form of a Listener that workers accept with: its address,
// its filter chains (as factories that install filters on a connection) and
// its listener.<address>.* stats.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "source/common/network/address.h"
#include "source/common/stats/store.h"
#include "source/server/filter_chain_matcher.h"
#include "source/server/filter_config.h"
#include "source/server/listener_filter.h"

namespace courier::server {

struct ListenerStats {
  ListenerStats(stats::Store& store, const std::string& prefix);
  stats::Counter& downstream_cx_total;
  stats::Counter& downstream_cx_destroy;
  stats::Gauge& downstream_cx_active;
  stats::Counter& no_filter_chain_match;
  // Sockets closed (or let through) when listener filters ran out of time.
  stats::Counter& downstream_pre_cx_timeout;
  // Sockets still in their listener filters.
  stats::Gauge& downstream_pre_cx_active;
  // The peer closed, or the socket failed, while listener filters waited.
  stats::Counter& downstream_listener_filter_remote_close;
  stats::Counter& downstream_listener_filter_error;
};

struct FilterChain {
  std::string name;
  std::vector<NetworkFilterFactoryCb> filter_factories;
  // TLS for the chain's connections; null is plaintext (raw_buffer).
  network::TransportSocketFactoryConstSharedPtr transport_socket_factory;
  // The chain's config (deterministic bytes): a listener update that keeps
  // the same bytes keeps this chain's connections (filter-chain-only update).
  std::string config_key;
};

struct ListenerConfig {
  std::string name;
  network::Address address;
  bool reuse_port = true;
  int backlog = 1024;
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  std::vector<std::shared_ptr<const FilterChain>> filter_chains;
  std::shared_ptr<const FilterChain> default_filter_chain;
  // filter_chains compiled by their filter_chain_match.
  FilterChainMatcher matcher;
  std::vector<ListenerFilterEntry> listener_filters;
  // 0: no limit.
  std::chrono::milliseconds listener_filters_timeout{15000};
  bool continue_on_listener_filters_timeout = false;
  std::shared_ptr<ListenerStats> stats;

  // The chain for a connection: the most specific filter_chain_match, else
  // default_filter_chain, else null (the connection is closed).
  const FilterChain* selectFilterChain(const ConnectionMatchInfo& info) const {
    const FilterChain* chain = matcher.match(info);
    return chain != nullptr ? chain : default_filter_chain.get();
  }
  // This listener's chain built from the same config as `chain`, or null.
  const FilterChain* sameChainAs(const FilterChain& chain) const {
    if (default_filter_chain != nullptr && default_filter_chain->config_key == chain.config_key) {
      return default_filter_chain.get();
    }
    auto it = chains_by_key.find(absl::string_view(chain.config_key));
    return it == chains_by_key.end() ? nullptr : it->second;
  }
  // filter_chains by config_key (viewing the chain's own string), for
  // filter-chain-only updates.
  absl::flat_hash_map<absl::string_view, const FilterChain*> chains_by_key;
};
using ListenerConfigConstSharedPtr = std::shared_ptr<const ListenerConfig>;

// "listener.127.0.0.1_8080" as Envoy names a listener's stat scope, or
// "listener.<stat_prefix>" when the listener sets one.
std::string listenerStatPrefix(const network::Address& address, const std::string& stat_prefix);

}  // namespace courier::server
