#include "source/server/filter_chain_matcher.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "source/common/protobuf/deterministic.h"

namespace courier::server {

using envoy::config::listener::v3::FilterChainMatch;

std::string Cidr::key() const {
  std::string out;
  const size_t n = family == AF_INET ? 4 : 16;
  out.reserve(n + 2);
  out.push_back(static_cast<char>(family == AF_INET ? 4 : 6));
  out.push_back(static_cast<char>(length));
  out.append(reinterpret_cast<const char*>(bytes.data()), n);
  return out;
}

namespace {

void maskTo(std::array<uint8_t, 16>& bytes, size_t n, uint8_t length) {
  for (size_t i = 0; i < n; ++i) {
    const int bits = static_cast<int>(length) - static_cast<int>(i * 8);
    if (bits >= 8) continue;
    bytes[i] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
  }
}

}  // namespace

absl::StatusOr<Cidr> Cidr::parse(const std::string& address_prefix, uint32_t prefix_len, bool has_prefix_len) {
  Cidr c;
  if (inet_pton(AF_INET, address_prefix.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET;
  } else if (inet_pton(AF_INET6, address_prefix.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET6;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("\"", address_prefix, "\" is not an IPv4 or IPv6 address"));
  }
  const uint32_t max = c.family == AF_INET ? 32 : 128;
  if (!has_prefix_len) prefix_len = 0;
  if (prefix_len > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix_len ", prefix_len, " is longer than the ", max, " bits of ", address_prefix));
  }
  c.length = static_cast<uint8_t>(prefix_len);
  maskTo(c.bytes, max / 8, c.length);
  return c;
}

Cidr Cidr::ofAddress(const network::Address& address, uint8_t length) {
  Cidr c;
  c.family = address.family();
  if (c.family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(address.sockAddr());
    std::memcpy(c.bytes.data(), &sin->sin_addr, 4);
    c.length = std::min<uint8_t>(length, 32);
    maskTo(c.bytes, 4, c.length);
  } else {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(address.sockAddr());
    std::memcpy(c.bytes.data(), &sin6->sin6_addr, 16);
    c.length = std::min<uint8_t>(length, 128);
    maskTo(c.bytes, 16, c.length);
  }
  return c;
}

// The levels, innermost first. A key of 0 / "" stands for "not constrained".
struct Leaf {
  const FilterChain* chain = nullptr;
  int index = -1;
};
struct SourcePorts {
  absl::flat_hash_map<uint32_t, Leaf> ports;
};
struct SourceIps {
  CidrTable<SourcePorts> table;
};
struct SourceTypes {
  std::array<std::unique_ptr<SourceIps>, 3> by_type;  // ANY, SAME_IP_OR_LOOPBACK, EXTERNAL
};
struct DirectSources {
  CidrTable<SourceTypes> table;
};
struct AppProtocols {
  absl::node_hash_map<std::string, DirectSources> by_protocol;
};
struct TransportProtocols {
  absl::node_hash_map<std::string, AppProtocols> by_protocol;
};
struct ServerNames {
  absl::node_hash_map<std::string, TransportProtocols> exact;  // "" = none given
  // "*.example.com" stored as ".example.com".
  absl::node_hash_map<std::string, TransportProtocols> wildcard;
};
struct DestinationIps {
  CidrTable<ServerNames> table;
};
struct FilterChainMatcher::DestinationPorts {
  absl::node_hash_map<uint32_t, DestinationIps> ports;
};

namespace {

// Debian's absl::string_view is its own type, not std::string_view.
absl::string_view asAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool sameIpOrLoopback(const network::Address& remote, const network::Address& local) {
  if (remote.family() == AF_INET) {
    const auto* r = reinterpret_cast<const sockaddr_in*>(remote.sockAddr());
    if ((ntohl(r->sin_addr.s_addr) >> 24) == 127) return true;
    if (local.family() == AF_INET) {
      const auto* l = reinterpret_cast<const sockaddr_in*>(local.sockAddr());
      return r->sin_addr.s_addr == l->sin_addr.s_addr;
    }
    return false;
  }
  const auto* r = reinterpret_cast<const sockaddr_in6*>(remote.sockAddr());
  if (IN6_IS_ADDR_LOOPBACK(&r->sin6_addr)) return true;
  if (IN6_IS_ADDR_V4MAPPED(&r->sin6_addr) && r->sin6_addr.s6_addr[12] == 127) return true;
  if (local.family() == AF_INET6) {
    const auto* l = reinterpret_cast<const sockaddr_in6*>(local.sockAddr());
    return std::memcmp(&r->sin6_addr, &l->sin6_addr, 16) == 0;
  }
  return false;
}

// The CIDRs of a repeated CidrRange field, or both "any" prefixes when empty.
using CidrRanges = google::protobuf::RepeatedPtrField<envoy::config::core::v3::CidrRange>;

absl::StatusOr<std::vector<Cidr>> cidrsOf(const CidrRanges& ranges, const std::string& path) {
  std::vector<Cidr> out;
  if (ranges.empty()) {
    out.push_back(*Cidr::parse("0.0.0.0", 0, true));
    out.push_back(*Cidr::parse("::", 0, true));
    return out;
  }
  for (int i = 0; i < ranges.size(); ++i) {
    auto c = Cidr::parse(ranges[i].address_prefix(), ranges[i].prefix_len().value(), ranges[i].has_prefix_len());
    if (!c.ok()) return fieldError(absl::StrCat(path, "[", i, "]"), std::string(c.status().message()));
    out.push_back(*c);
  }
  return out;
}

// One chain's keys per level, every combination of which leads to it.
struct Keys {
  uint32_t destination_port = 0;
  std::vector<Cidr> destination_ips;
  std::vector<std::string> server_names;
  std::string transport_protocol;
  std::vector<std::string> application_protocols;
  std::vector<Cidr> direct_sources;
  int source_type = 0;
  std::vector<Cidr> sources;
  std::vector<uint32_t> source_ports;
};

absl::StatusOr<Keys> keysOf(const FilterChainMatch& m, const std::string& path) {
  Keys k;
  if (m.has_destination_port()) {
    if (m.destination_port().value() == 0 || m.destination_port().value() > 65535) {
      return fieldError(path + ".destination_port", "must be between 1 and 65535");
    }
    k.destination_port = m.destination_port().value();
  }
  auto ips = cidrsOf(m.prefix_ranges(), path + ".prefix_ranges");
  if (!ips.ok()) return ips.status();
  k.destination_ips = std::move(*ips);
  for (int i = 0; i < m.server_names_size(); ++i) {
    std::string name = absl::AsciiStrToLower(m.server_names(i));
    const std::string npath = absl::StrCat(path, ".server_names[", i, "]");
    if (name.empty()) return fieldError(npath, "must not be empty");
    if (name.find('*') != std::string::npos && !(absl::StartsWith(name, "*.") && name.rfind('*') == 0)) {
      return fieldError(npath, absl::StrCat("partial wildcards are not supported in \"server_names\" (\"", name,
                                            "\"; only a leading \"*.\" is)"));
    }
    k.server_names.push_back(std::move(name));
  }
  if (k.server_names.empty()) k.server_names.push_back("");
  k.transport_protocol = m.transport_protocol();
  for (const auto& p : m.application_protocols()) {
    if (p.empty()) return fieldError(path + ".application_protocols", "must not hold an empty protocol");
    k.application_protocols.push_back(p);
  }
  if (k.application_protocols.empty()) k.application_protocols.push_back("");
  auto direct = cidrsOf(m.direct_source_prefix_ranges(), path + ".direct_source_prefix_ranges");
  if (!direct.ok()) return direct.status();
  k.direct_sources = std::move(*direct);
  k.source_type = static_cast<int>(m.source_type());
  if (k.source_type < 0 || k.source_type > 2) return fieldError(path + ".source_type", "unknown source type");
  auto sources = cidrsOf(m.source_prefix_ranges(), path + ".source_prefix_ranges");
  if (!sources.ok()) return sources.status();
  k.sources = std::move(*sources);
  for (int i = 0; i < m.source_ports_size(); ++i) {
    if (m.source_ports(i) == 0 || m.source_ports(i) > 65535) {
      return fieldError(absl::StrCat(path, ".source_ports[", i, "]"), "must be between 1 and 65535");
    }
    k.source_ports.push_back(m.source_ports(i));
  }
  if (k.source_ports.empty()) k.source_ports.push_back(0);
  return k;
}

}  // namespace

FilterChainMatcher::FilterChainMatcher() : root_(std::make_unique<DestinationPorts>()) {}
FilterChainMatcher::~FilterChainMatcher() = default;
FilterChainMatcher::FilterChainMatcher(FilterChainMatcher&&) noexcept = default;
FilterChainMatcher& FilterChainMatcher::operator=(FilterChainMatcher&&) noexcept = default;

absl::StatusOr<FilterChainMatcher> FilterChainMatcher::create(const std::vector<const FilterChainMatch*>& matches,
                                                              const std::vector<const FilterChain*>& chains,
                                                              const std::string& path) {
  FilterChainMatcher matcher;
  const FilterChainMatch empty;
  // Identical matchers by their deterministic bytes: one hash probe per
  // chain, not a comparison with every earlier one (gateways have thousands).
  absl::flat_hash_map<std::string, size_t> seen;
  for (size_t i = 0; i < matches.size(); ++i) {
    const FilterChainMatch& m = matches[i] != nullptr ? *matches[i] : empty;
    const std::string mpath = absl::StrCat(path, "[", i, "].filter_chain_match");
    auto [same, inserted] = seen.emplace(protobuf::deterministicBytes(m), i);
    if (!inserted) {
      return fieldError(mpath, absl::StrCat("multiple filter chains with the same matching rules are defined (", path,
                                            "[", same->second, "] has the same filter_chain_match)"));
    }
    auto keys = keysOf(m, mpath);
    if (!keys.ok()) return keys.status();
    if (m.transport_protocol() == "tls" ||
        (m.transport_protocol().empty() && (!m.server_names().empty() || !m.application_protocols().empty()))) {
      matcher.needs_tls_inspector_ = true;
    }
    // Every combination of the chain's keys leads to it; one already taken
    // by an earlier chain would make the two chains ambiguous.
    DestinationIps& dips = matcher.root_->ports[keys->destination_port];
    for (const Cidr& dip : keys->destination_ips) {
      ServerNames& names = dips.table.insert(dip);
      for (const std::string& name : keys->server_names) {
        TransportProtocols& tps = absl::StartsWith(name, "*.") ? names.wildcard[name.substr(1)] : names.exact[name];
        AppProtocols& aps = tps.by_protocol[keys->transport_protocol];
        for (const std::string& ap : keys->application_protocols) {
          DirectSources& directs = aps.by_protocol[ap];
          for (const Cidr& direct : keys->direct_sources) {
            SourceTypes& types = directs.table.insert(direct);
            auto& sips = types.by_type[keys->source_type];
            if (sips == nullptr) sips = std::make_unique<SourceIps>();
            for (const Cidr& source : keys->sources) {
              SourcePorts& ports = sips->table.insert(source);
              for (uint32_t port : keys->source_ports) {
                Leaf& leaf = ports.ports[port];
                if (leaf.chain != nullptr) {
                  return fieldError(mpath, absl::StrCat("multiple filter chains with overlapping matching rules are "
                                                        "defined (a connection could match both this and ",
                                                        path, "[", leaf.index, "])"));
                }
                leaf.chain = chains[i];
                leaf.index = static_cast<int>(i);
              }
            }
          }
        }
      }
    }
  }
  if (matches.size() == 1 && (matches[0] == nullptr || matches[0]->ByteSizeLong() == 0)) {
    matcher.only_chain_ = chains[0];
  }
  return matcher;
}

namespace {

const FilterChain* matchSourcePort(const SourcePorts& level, const network::Address& remote) {
  auto it = level.ports.find(remote.port());
  if (it == level.ports.end()) it = level.ports.find(0);
  return it == level.ports.end() ? nullptr : it->second.chain;
}

const FilterChain* matchSourceType(const SourceTypes& level, const ConnectionMatchInfo& info) {
  const auto& local = level.by_type[1];
  const auto& external = level.by_type[2];
  // The address comparison only when a chain asks for it.
  if (local != nullptr || external != nullptr) {
    const SourceIps* chosen = sameIpOrLoopback(*info.remote, *info.local) ? local.get() : external.get();
    if (chosen != nullptr) {
      const SourcePorts* ports = chosen->table.lookup(*info.remote);
      return ports == nullptr ? nullptr : matchSourcePort(*ports, *info.remote);
    }
  }
  if (level.by_type[0] == nullptr) return nullptr;
  const SourcePorts* ports = level.by_type[0]->table.lookup(*info.remote);
  return ports == nullptr ? nullptr : matchSourcePort(*ports, *info.remote);
}

const FilterChain* matchApplicationProtocols(const AppProtocols& level, const ConnectionMatchInfo& info) {
  const DirectSources* directs = nullptr;
  if (info.application_protocols != nullptr) {
    for (const std::string& p : *info.application_protocols) {
      auto it = level.by_protocol.find(p);
      if (it != level.by_protocol.end()) {
        directs = &it->second;
        break;
      }
    }
  }
  if (directs == nullptr) {
    auto it = level.by_protocol.find("");
    if (it == level.by_protocol.end()) return nullptr;
    directs = &it->second;
  }
  const network::Address& direct = info.direct_remote != nullptr ? *info.direct_remote : *info.remote;
  const SourceTypes* types = directs->table.lookup(direct);
  return types == nullptr ? nullptr : matchSourceType(*types, info);
}

const FilterChain* matchTransportProtocol(const TransportProtocols& level, const ConnectionMatchInfo& info) {
  auto it = level.by_protocol.find(asAbsl(info.transport_protocol));
  if (it == level.by_protocol.end()) it = level.by_protocol.find("");
  return it == level.by_protocol.end() ? nullptr : matchApplicationProtocols(it->second, info);
}

const FilterChain* matchServerName(const ServerNames& level, const ConnectionMatchInfo& info) {
  std::string lowered;
  std::string_view name = info.server_name;
  if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    lowered = absl::AsciiStrToLower(asAbsl(name));
    name = lowered;
  }
  if (!name.empty()) {
    auto exact = level.exact.find(asAbsl(name));
    if (exact != level.exact.end()) return matchTransportProtocol(exact->second, info);
    // "a.b.example.com": *.b.example.com, then *.example.com, then *.com.
    if (!level.wildcard.empty()) {
      for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
        auto it = level.wildcard.find(asAbsl(name.substr(dot)));
        if (it != level.wildcard.end()) return matchTransportProtocol(it->second, info);
      }
    }
  }
  auto any = level.exact.find("");
  return any == level.exact.end() ? nullptr : matchTransportProtocol(any->second, info);
}

}  // namespace

const FilterChain* FilterChainMatcher::match(const ConnectionMatchInfo& info) const {
  if (only_chain_ != nullptr) return only_chain_;
  auto port = root_->ports.find(info.local->port());
  if (port == root_->ports.end()) port = root_->ports.find(0);
  if (port == root_->ports.end()) return nullptr;
  const ServerNames* names = port->second.table.lookup(*info.local);
  return names == nullptr ? nullptr : matchServerName(*names, info);
}

}  // namespace courier::server
