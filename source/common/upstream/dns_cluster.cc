#include "source/common/upstream/dns_cluster.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.pb.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/field_error.h"
#include "source/common/common/random.h"
#include "spdlog/spdlog.h"

namespace courier::upstream {
namespace {

using ProtoCluster = envoy::config::cluster::v3::Cluster;
using google::protobuf::util::TimeUtil;

absl::StatusOr<network::Address> resolverAddress(const envoy::config::core::v3::Address& proto,
                                                 const std::string& path) {
  if (!proto.has_socket_address()) return fieldError(path, "a socket_address is required");
  const auto& sa = proto.socket_address();
  const uint32_t port = sa.port_value() == 0 ? 53 : sa.port_value();
  auto address = network::Address::fromIpPort(sa.address(), port);
  if (!address.ok()) return fieldError(path + ".socket_address.address", std::string(address.status().message()));
  return *address;
}

absl::Status resolverAddresses(const google::protobuf::RepeatedPtrField<envoy::config::core::v3::Address>& list,
                               const std::string& path, std::vector<network::Address>& out) {
  for (int i = 0; i < list.size(); ++i) {
    auto address = resolverAddress(list[i], absl::StrCat(path, "[", i, "]"));
    if (!address.ok()) return address.status();
    out.push_back(*address);
  }
  return absl::OkStatus();
}

// typed_dns_resolver_config, else the deprecated dns_resolution_config, else
// the deprecated dns_resolvers: the first one set decides, as in Envoy.
absl::Status resolverOptions(const ProtoCluster& config, const std::string& path,
                             network::DnsResolverOptions& options) {
  if (config.has_typed_dns_resolver_config()) {
    const std::string tpath = path + ".typed_dns_resolver_config";
    const auto& typed = config.typed_dns_resolver_config();
    envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig cares;
    if (!typed.typed_config().UnpackTo(&cares)) {
      return fieldError(tpath + ".typed_config",
                        absl::StrCat("only envoy.network.dns_resolver.cares (", cares.GetDescriptor()->full_name(),
                                     ") is supported, got \"", typed.typed_config().type_url(), "\""));
    }
    if (auto s = resolverAddresses(cares.resolvers(), tpath + ".typed_config.resolvers", options.resolvers); !s.ok()) {
      return s;
    }
    options.use_resolvers_as_fallback = cares.use_resolvers_as_fallback();
    options.use_tcp = cares.dns_resolver_options().use_tcp_for_dns_lookups();
    options.no_default_search_domain = cares.dns_resolver_options().no_default_search_domain();
    return absl::OkStatus();
  }
  if (config.has_dns_resolution_config()) {
    const auto& rc = config.dns_resolution_config();
    options.use_tcp = rc.dns_resolver_options().use_tcp_for_dns_lookups();
    options.no_default_search_domain = rc.dns_resolver_options().no_default_search_domain();
    return resolverAddresses(rc.resolvers(), path + ".dns_resolution_config.resolvers", options.resolvers);
  }
  options.use_tcp = config.use_tcp_for_dns_lookups();
  return resolverAddresses(config.dns_resolvers(), path + ".dns_resolvers", options.resolvers);
}

struct DnsStats {
  DnsStats(stats::Store& store, const std::string& name)
      : update_attempt(store.counter(absl::StrCat("cluster.", name, ".update_attempt"))),
        update_success(store.counter(absl::StrCat("cluster.", name, ".update_success"))),
        update_failure(store.counter(absl::StrCat("cluster.", name, ".update_failure"))),
        update_no_rebuild(store.counter(absl::StrCat("cluster.", name, ".update_no_rebuild"))),
        membership_change(store.counter(absl::StrCat("cluster.", name, ".membership_change"))) {}
  stats::Counter& update_attempt;
  stats::Counter& update_success;
  stats::Counter& update_failure;
  stats::Counter& update_no_rebuild;
  stats::Counter& membership_change;
};

bool sameAddress(const network::Address& a, const network::Address& b) {
  return a.length() == b.length() && std::memcmp(a.sockAddr(), b.sockAddr(), a.length()) == 0;
}

class DnsDiscovery : public HostDiscovery {
 public:
  DnsDiscovery(DnsClusterConfig config, ClusterConstSharedPtr cluster, event::Dispatcher& dispatcher,
               stats::Store& stats, std::unique_ptr<network::DnsResolver> resolver, HostsChangedCallback on_change)
      : HostDiscovery(/*warm=*/false),
        config_(std::move(config)),
        base_(std::move(cluster)),
        stats_(stats, base_->name),
        resolver_(std::move(resolver)),
        on_change_(std::move(on_change)) {
    for (const auto& t : config_.targets) {
      auto target = std::make_unique<Target>();
      target->config = t;
      Target* raw = target.get();
      target->timer = dispatcher.createTimer([this, raw] { resolve(*raw); });
      // Never inside the constructor: the manager is still storing us.
      target->timer->enable(std::chrono::milliseconds(0));
      targets_.push_back(std::move(target));
    }
  }

  ~DnsDiscovery() override {
    for (auto& t : targets_) {
      if (t->query != nullptr) t->query->cancel();
    }
  }

 private:
  struct Target {
    DnsClusterConfig::Target config;
    std::vector<HostConstSharedPtr> hosts;
    std::unique_ptr<event::Timer> timer;
    network::DnsResolver::Query* query = nullptr;
    uint32_t failures = 0;
  };

  void resolve(Target& target) {
    stats_.update_attempt.inc();
    target.query = nullptr;
    target.query = resolver_->resolve(
        target.config.name, config_.family,
        [this, &target](network::DnsResolver::Status status, std::vector<network::DnsResponse>&& responses) {
          target.query = nullptr;
          onResolved(target, status, std::move(responses));
          // Envoy's DNS clusters initialize when a first lookup completes,
          // answered or not (with several names, the first of them): after
          // its hosts were handed over, so the cluster goes live with them.
          setWarm();
        });
  }

  void onResolved(Target& target, network::DnsResolver::Status status, std::vector<network::DnsResponse> responses) {
    if (status != network::DnsResolver::Status::Success) {
      // The last good hosts keep serving.
      stats_.update_failure.inc();
      ++target.failures;
      spdlog::debug("cluster '{}': DNS lookup of '{}' failed", base_->name, target.config.name);
      target.timer->enable(failureDelay(target.failures));
      return;
    }
    stats_.update_success.inc();
    target.failures = 0;
    std::chrono::milliseconds next = config_.refresh_rate;
    if (config_.respect_dns_ttl && !responses.empty()) {
      auto ttl = std::min_element(responses.begin(), responses.end(),
                                  [](const auto& a, const auto& b) { return a.ttl < b.ttl; })->ttl;
      if (ttl.count() > 0) next = std::chrono::duration_cast<std::chrono::milliseconds>(ttl);
    }
    target.timer->enable(next);

    if (config_.logical && responses.empty()) {
      // A logical host is not dropped for an empty answer (as Envoy).
      stats_.update_no_rebuild.inc();
      return;
    }
    if (config_.logical) responses.resize(1);
    std::vector<HostConstSharedPtr> hosts;
    bool changed = false;
    for (const auto& r : responses) {
      network::Address address = r.address;
      setPort(address, target.config.port);
      HostConstSharedPtr host;
      for (const auto& old : target.hosts) {
        if (sameAddress(old->address, address)) host = old;
      }
      if (host == nullptr) {
        auto fresh = std::make_shared<Host>();
        fresh->address = address;
        fresh->weight = target.config.weight;
        fresh->hostname = target.config.name;
        host = std::move(fresh);
        changed = true;
      }
      if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) hosts.push_back(std::move(host));
    }
    if (hosts.size() != target.hosts.size()) changed = true;
    if (!changed) {
      stats_.update_no_rebuild.inc();
      return;
    }
    target.hosts = std::move(hosts);
    stats_.membership_change.inc();
    std::vector<HostConstSharedPtr> all;
    for (const auto& t : targets_) all.insert(all.end(), t->hosts.begin(), t->hosts.end());
    on_change_(withHosts(*base_, std::move(all)));
  }

  std::chrono::milliseconds failureDelay(uint32_t failures) {
    if (!config_.failure_base.has_value()) return config_.refresh_rate;
    // Jittered exponential back-off between base and max.
    int64_t ceiling = config_.failure_base->count();
    for (uint32_t i = 1; i < failures && ceiling < config_.failure_max.count(); ++i) ceiling *= 2;
    ceiling = std::min<int64_t>(ceiling, config_.failure_max.count());
    const int64_t floor = std::max<int64_t>(1, ceiling / 2);
    return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(floor, std::max(floor, ceiling))(threadRandom()));
  }

  static void setPort(network::Address& address, uint32_t port) {
    auto with_port = network::Address::fromIpPort(address.ip(), port);
    if (with_port.ok()) address = *with_port;
  }

  const DnsClusterConfig config_;
  const ClusterConstSharedPtr base_;
  DnsStats stats_;
  std::unique_ptr<network::DnsResolver> resolver_;
  HostsChangedCallback on_change_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace

absl::StatusOr<DnsClusterConfig> parseDnsClusterConfig(const ProtoCluster& config, const std::string& path) {
  DnsClusterConfig out;
  out.logical = config.type() == ProtoCluster::LOGICAL_DNS;
  switch (config.dns_lookup_family()) {
    case ProtoCluster::AUTO:
      out.family = network::DnsLookupFamily::Auto;
      break;
    case ProtoCluster::V4_ONLY:
      out.family = network::DnsLookupFamily::V4Only;
      break;
    case ProtoCluster::V6_ONLY:
      out.family = network::DnsLookupFamily::V6Only;
      break;
    case ProtoCluster::V4_PREFERRED:
      out.family = network::DnsLookupFamily::V4Preferred;
      break;
    case ProtoCluster::ALL:
      out.family = network::DnsLookupFamily::All;
      break;
    default:
      return fieldError(path + ".dns_lookup_family",
                        absl::StrCat("unknown DNS lookup family ", static_cast<int>(config.dns_lookup_family())));
  }
  if (config.has_dns_refresh_rate()) {
    int64_t ms = TimeUtil::DurationToMilliseconds(config.dns_refresh_rate());
    if (ms < 1) return fieldError(path + ".dns_refresh_rate", "must be at least 1ms");
    out.refresh_rate = std::chrono::milliseconds(ms);
  }
  out.respect_dns_ttl = config.respect_dns_ttl();
  if (config.has_dns_failure_refresh_rate()) {
    const auto& rate = config.dns_failure_refresh_rate();
    const std::string rpath = path + ".dns_failure_refresh_rate";
    int64_t base = rate.has_base_interval() ? TimeUtil::DurationToMilliseconds(rate.base_interval()) : 0;
    if (base < 1) return fieldError(rpath + ".base_interval", "is required and must be at least 1ms");
    int64_t max = rate.has_max_interval() ? TimeUtil::DurationToMilliseconds(rate.max_interval()) : base * 10;
    if (max < base) return fieldError(rpath + ".max_interval", "must not be less than base_interval");
    out.failure_base = std::chrono::milliseconds(base);
    out.failure_max = std::chrono::milliseconds(max);
  }
  if (auto s = resolverOptions(config, path, out.resolver); !s.ok()) return s;

  const auto& cla = config.load_assignment();
  uint32_t best_priority = UINT32_MAX;
  for (const auto& locality : cla.endpoints()) best_priority = std::min(best_priority, locality.priority());
  size_t endpoints = 0;
  for (int i = 0; i < cla.endpoints_size(); ++i) {
    const auto& locality = cla.endpoints(i);
    for (int j = 0; j < locality.lb_endpoints_size(); ++j) {
      ++endpoints;
      const auto& lb = locality.lb_endpoints(j);
      const std::string epath = absl::StrCat(path, ".load_assignment.endpoints[", i, "].lb_endpoints[", j, "]");
      if (!lb.has_endpoint()) return fieldError(epath, "an lb_endpoint needs an endpoint");
      if (!lb.endpoint().address().has_socket_address()) {
        return fieldError(epath + ".endpoint.address", "a socket_address is required");
      }
      const auto& sa = lb.endpoint().address().socket_address();
      if (sa.address().empty()) return fieldError(epath + ".endpoint.address.socket_address.address", "a name is required");
      if (sa.port_specifier_case() != envoy::config::core::v3::SocketAddress::kPortValue) {
        return fieldError(epath + ".endpoint.address.socket_address", "port_value is required");
      }
      uint32_t weight = lb.has_load_balancing_weight() ? lb.load_balancing_weight().value() : 1;
      if (weight == 0) return fieldError(epath + ".load_balancing_weight", "must be at least 1");
      if (locality.priority() != best_priority) continue;
      out.targets.push_back({sa.address(), sa.port_value(), weight});
    }
  }
  const char* type = out.logical ? "LOGICAL_DNS" : "STRICT_DNS";
  if (endpoints == 0) {
    return fieldError(path + ".load_assignment.endpoints", absl::StrCat("a ", type, " cluster needs at least one endpoint"));
  }
  if (out.logical && (cla.endpoints_size() != 1 || endpoints != 1)) {
    return fieldError(path + ".load_assignment.endpoints",
                      "a LOGICAL_DNS cluster needs exactly one locality with exactly one lb_endpoint");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<HostDiscovery>> createDnsDiscovery(DnsClusterConfig config,
                                                                  ClusterConstSharedPtr cluster,
                                                                  event::Dispatcher& dispatcher,
                                                                  stats::Store& stats,
                                                                  HostsChangedCallback on_change) {
  auto resolver = network::DnsResolver::create(dispatcher, config.resolver);
  if (!resolver.ok()) return resolver.status();
  return std::unique_ptr<HostDiscovery>(new DnsDiscovery(std::move(config), std::move(cluster), dispatcher, stats,
                                                         std::move(*resolver), std::move(on_change)));
}

}  // namespace courier::upstream
