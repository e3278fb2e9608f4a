// Envoy's filter_chain_match, compiled once on the main thread into nested
// lookup tables, one level per criterion in Envoy's order of precedence:
//   destination_port, prefix_ranges (destination IP), server_names,
//   transport_protocol, application_protocols, direct_source_prefix_ranges,
//   source_type, source_prefix_ranges, source_ports.
// At each level the most specific entry that matches the connection wins
// (exact port over none, longest prefix, exact server name over the longest
// wildcard suffix over none...), and as in Envoy a chosen level is not left
// again: if nothing below it matches, no chain matches.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/listener/v3/listener_components.pb.h"
#include "source/common/network/address.h"

namespace courier::server {

struct FilterChain;

// What is known of a connection when its chain is chosen: its addresses and
// what the listener filters found (tls_inspector, http_inspector).
struct ConnectionMatchInfo {
  const network::Address* local = nullptr;
  const network::Address* remote = nullptr;
  // The peer the socket is connected to; differs from `remote` only when a
  // listener filter restored another source (PROXY protocol). Null: remote.
  const network::Address* direct_remote = nullptr;
  std::string_view server_name;
  // "raw_buffer" unless a listener filter detected otherwise ("tls").
  std::string_view transport_protocol = "raw_buffer";
  const std::vector<std::string>* application_protocols = nullptr;
};

// An IP prefix as raw address bytes (4 or 16) and a length, masked.
struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t length = 0;
  std::array<uint8_t, 16> bytes{};
  // "10.0.0.0/8": the table key (family, length, masked bytes).
  std::string key() const;
  static absl::StatusOr<Cidr> parse(const std::string& address_prefix, uint32_t prefix_len, bool has_prefix_len);
  // The address's IP bytes masked to `length` bits, in the address's family.
  static Cidr ofAddress(const network::Address& address, uint8_t length);
};

// Longest-prefix lookup over a handful of prefixes: one hash probe per
// prefix length present, longest first.
template <class T>
class CidrTable {
 public:
  // An empty list means any address: 0.0.0.0/0 and ::/0.
  T& insert(const Cidr& cidr) {
    (cidr.family == AF_INET ? v4_lengths_ : v6_lengths_).insert(cidr.length);
    return entries_[cidr.key()];
  }
  const T* lookup(const network::Address& address) const {
    const auto& lengths = address.family() == AF_INET ? v4_lengths_ : v6_lengths_;
    for (uint8_t length : lengths) {
      auto it = entries_.find(Cidr::ofAddress(address, length).key());
      if (it != entries_.end()) return &it->second;
    }
    return nullptr;
  }
  template <class Fn>
  void forEach(Fn fn) {
    for (auto& [key, value] : entries_) fn(value);
  }

 private:
  absl::node_hash_map<std::string, T> entries_;
  std::set<uint8_t, std::greater<uint8_t>> v4_lengths_;
  std::set<uint8_t, std::greater<uint8_t>> v6_lengths_;
};

class FilterChainMatcher {
 public:
  FilterChainMatcher();
  ~FilterChainMatcher();
  FilterChainMatcher(FilterChainMatcher&&) noexcept;
  FilterChainMatcher& operator=(FilterChainMatcher&&) noexcept;

  // `chains[i]` is served for `matches[i]`. Errors name the field under
  // `path` (".filter_chains[2].filter_chain_match.prefix_ranges[0]").
  static absl::StatusOr<FilterChainMatcher> create(
      const std::vector<const envoy::config::listener::v3::FilterChainMatch*>& matches,
      const std::vector<const FilterChain*>& chains, const std::string& path);

  // The matching chain, or null (the caller falls back to default_filter_chain).
  const FilterChain* match(const ConnectionMatchInfo& info) const;

  // Whether any chain matches on what only the tls_inspector finds
  // (transport_protocol "tls", or server_names / application_protocols with
  // no transport_protocol): Envoy then adds one when the listener has none.
  bool needsTlsInspector() const { return needs_tls_inspector_; }

  struct DestinationPorts;

 private:
  std::unique_ptr<DestinationPorts> root_;
  // The common case of one chain without filter_chain_match: no lookups.
  const FilterChain* only_chain_ = nullptr;
  bool needs_tls_inspector_ = false;
};

}  // namespace courier::server
