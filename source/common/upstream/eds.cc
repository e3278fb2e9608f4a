#include "source/common/upstream/eds.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "source/common/upstream/load_assignment.h"
#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/priority_lb.h"

namespace courier::upstream {

using envoy::config::core::v3::HealthStatus;

absl::StatusOr<LbEndpointSpec> parseLbEndpoint(const envoy::config::endpoint::v3::LbEndpoint& lb,
                                               const std::string& path, std::string_view address_hint) {
  if (!lb.has_endpoint()) {
    return fieldError(path, "an lb_endpoint needs an endpoint (named endpoints are not supported)");
  }
  const auto& addr = lb.endpoint().address();
  if (!addr.has_socket_address()) {
    return fieldError(path + ".endpoint.address",
                      "a socket_address is required (pipe and internal addresses are not supported)");
  }
  const auto& sa = addr.socket_address();
  if (sa.port_specifier_case() != envoy::config::core::v3::SocketAddress::kPortValue) {
    return fieldError(path + ".endpoint.address.socket_address", "port_value is required");
  }
  auto address = network::Address::fromIpPort(sa.address(), sa.port_value());
  if (!address.ok()) {
    return fieldError(
        path + ".endpoint.address.socket_address.address",
        absl::StrCat(address.status().message(), absl::string_view(address_hint.data(), address_hint.size())));
  }
  LbEndpointSpec spec;
  spec.address = *address;
  spec.weight = lb.has_load_balancing_weight() ? lb.load_balancing_weight().value() : 1;
  if (spec.weight == 0) return fieldError(path + ".load_balancing_weight", "must be at least 1");
  return spec;
}

absl::StatusOr<EdsHosts> hostsFromAssignment(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
                                             const std::string& path,
                                             const absl::flat_hash_map<std::string, HostConstSharedPtr>& previous,
                                             const std::vector<LocalityEntry>& previous_localities) {
  EdsHosts out;
  auto factor = overprovisioningFactor(cla, path);
  if (!factor.ok()) return factor.status();
  out.overprovisioning_factor = *factor;
  // Exactly sized: the host vector is what the cluster keeps.
  size_t endpoint_count = 0;
  for (const auto& locality : cla.endpoints()) endpoint_count += locality.lb_endpoints_size();
  out.hosts.reserve(endpoint_count);
  out.eds_flags.reserve(endpoint_count);
  for (int i = 0; i < cla.endpoints_size(); ++i) {
    const auto& locality = cla.endpoints(i);
    const std::string lpath = absl::StrCat(path, ".endpoints[", i, "]");
    auto place = placeLocality(locality, lpath, out.localities);
    if (!place.ok()) return place.status();
    for (int j = 0; j < locality.lb_endpoints_size(); ++j) {
      const auto& lb = locality.lb_endpoints(j);
      const std::string epath = absl::StrCat(lpath, ".lb_endpoints[", j, "]");
      auto spec = parseLbEndpoint(lb, epath);
      if (!spec.ok()) return spec.status();
      const network::Address& address = spec->address;
      const uint32_t weight = spec->weight;
      const std::string key = address.asString();
      if (out.all.contains(key)) continue;  // a duplicate endpoint counts once
      HostConstSharedPtr host;
      auto old = previous.find(key);
      // A kept host keeps its place: same priority, and a locality index
      // that names the same locality in the new table.
      const auto same_place = [&](const Host& h) {
        return h.priority == place->priority && h.locality == place->locality &&
               h.locality < previous_localities.size() &&
               previous_localities[h.locality].sameName(out.localities[place->locality]);
      };
      if (old != previous.end() && old->second->weight == weight && old->second->hostname == lb.endpoint().hostname() &&
          same_place(*old->second)) {
        host = old->second;
      } else {
        auto fresh = std::make_shared<Host>();
        fresh->address = address;
        fresh->weight = weight;
        fresh->hostname = lb.endpoint().hostname();
        fresh->priority = place->priority;
        fresh->locality = place->locality;
        host = std::move(fresh);
      }
      out.all.emplace(key, host);
      out.hosts.push_back(host);
      out.eds_flags.push_back(edsHealthFlag(lb.health_status()));
    }
  }
  return out;
}

uint32_t edsHealthFlag(envoy::config::core::v3::HealthStatus status) {
  switch (status) {
    case HealthStatus::UNHEALTHY:
    case HealthStatus::DRAINING:
    case HealthStatus::TIMEOUT:
      return health_flag::kFailedEdsHealth;
    case HealthStatus::DEGRADED:
      return health_flag::kDegradedEdsHealth;
    default:
      return 0;
  }
}

ClusterConstSharedPtr clusterWithAssignment(const Cluster& cluster, const EdsHosts& hosts) {
  auto next = std::make_shared<Cluster>(cluster);
  next->hosts = hosts.hosts;
  next->localities = hosts.localities;
  next->overprovisioning_factor = hosts.overprovisioning_factor;
  if (cluster.lb_factory != nullptr) next->lb_factory = cluster.lb_factory->forHosts(*next);
  buildPriorityLayout(*next);
  // The assignment's health onto its hosts. A kept host is shared with the
  // version still serving, whose counts then lag its flags until workers
  // move to this version: a pick there may still land on a host EDS just
  // failed (as it would have a moment earlier), and a scan for a usable
  // host reads the flags themselves, so nothing breaks meanwhile.
  constexpr uint32_t kEdsFlags = health_flag::kFailedEdsHealth | health_flag::kDegradedEdsHealth;
  for (size_t i = 0; i < next->hosts.size() && i < hosts.eds_flags.size(); ++i) {
    const Host& host = *next->hosts[i];
    const uint32_t flags = host.health_flags.load(std::memory_order_relaxed);
    const uint32_t wanted = (flags & ~kEdsFlags) | hosts.eds_flags[i];
    if (wanted != flags) host.health_flags.store(wanted, std::memory_order_relaxed);
  }
  // This version's counts (and its groups') from the flags, whatever the
  // version it was copied from counted.
  recountHealth(*next);
  if (next->stats != nullptr) next->stats->membership_total.set(next->hosts.size());
  return next;
}

}  // namespace courier::upstream
