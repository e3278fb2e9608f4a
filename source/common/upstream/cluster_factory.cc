#include "source/common/upstream/cluster_factory.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/field_error.h"
#include "source/common/http/http2/protocol_options.h"
#include "source/common/upstream/dns_cluster.h"
#include "source/common/upstream/eds.h"
#include "source/common/upstream/health_checker.h"
#include "source/common/upstream/load_assignment.h"
#include "source/common/upstream/load_balancer_factory.h"
#include "source/common/upstream/original_dst_cluster.h"
#include "source/common/upstream/outlier_detection.h"
#include "source/common/upstream/priority_lb.h"
#include "source/extensions/transport_sockets/tls/ssl_socket.h"

namespace courier::upstream {
namespace {

using ProtoCluster = envoy::config::cluster::v3::Cluster;

// One routing priority's circuit-breaker thresholds, Envoy's defaults.
struct Thresholds {
  uint64_t max_connections = 1024;
  uint64_t max_pending_requests = 1024;
  uint64_t max_requests = 1024;
  uint64_t max_retries = 3;
  std::optional<RetryBudget> retry_budget;
};

// The DEFAULT and HIGH circuit breakers of a cluster, allocated together.
struct ResourcePair {
  ResourcePair(const Thresholds& d, const Thresholds& h)
      : normal(d.max_connections, d.max_pending_requests, d.max_requests, d.max_retries),
        high(h.max_connections, h.max_pending_requests, h.max_requests, h.max_retries) {
    normal.retry_budget = d.retry_budget;
    high.retry_budget = h.retry_budget;
  }
  ResourceManager normal;
  ResourceManager high;
};

absl::StatusOr<LbPolicy> lbPolicy(const ProtoCluster& config, const std::string& path) {
  switch (config.lb_policy()) {
    case ProtoCluster::ROUND_ROBIN:
      return LbPolicy::RoundRobin;
    case ProtoCluster::LEAST_REQUEST:
      return LbPolicy::LeastRequest;
    case ProtoCluster::RANDOM:
      return LbPolicy::Random;
    case ProtoCluster::RING_HASH:
      return LbPolicy::RingHash;
    case ProtoCluster::MAGLEV:
      return LbPolicy::Maglev;
    default:
      return fieldError(path + ".lb_policy", absl::StrCat("unsupported load balancing policy ",
                                                          ProtoCluster::LbPolicy_Name(config.lb_policy())));
  }
}

}  // namespace

absl::StatusOr<ClusterConstSharedPtr> createCluster(const ProtoCluster& config, const std::string& path,
                                                    stats::Store& stats, tls::SecretManager* secrets,
                                                    std::vector<std::shared_ptr<tls::SecretProvider>>* secret_providers,
                                                    bool zone_routing) {
  if (config.name().empty()) return fieldError(path + ".name", "a cluster needs a non-empty name");
  auto cluster = std::make_shared<Cluster>();
  cluster->name = config.name();

  const bool dns = config.type() == ProtoCluster::STRICT_DNS || config.type() == ProtoCluster::LOGICAL_DNS;
  if (config.has_cluster_type()) {
    return fieldError(path + ".cluster_type",
                      absl::StrCat("custom cluster type \"", config.cluster_type().name(), "\" is not supported"));
  }
  if (config.type() == ProtoCluster::EDS && !config.eds_cluster_config().has_eds_config()) {
    return fieldError(path + ".eds_cluster_config.eds_config", "an EDS cluster needs an eds_config");
  }
  const bool original_dst = config.type() == ProtoCluster::ORIGINAL_DST;
  std::optional<OriginalDstSettings> original_dst_settings;
  if (original_dst) {
    auto settings = parseOriginalDstConfig(config, path);
    if (!settings.ok()) return settings.status();
    original_dst_settings = std::move(*settings);
    cluster->original_dst_host_header = original_dst_settings->header;
  }
  if (config.type() != ProtoCluster::STATIC && config.type() != ProtoCluster::EDS && !dns && !original_dst) {
    return fieldError(path + ".type", absl::StrCat("cluster type ", ProtoCluster::DiscoveryType_Name(config.type()),
                                                   " is not supported yet"));
  }
  // A DNS cluster starts without hosts; its HostDiscovery adds them.
  if (dns) {
    if (auto d = parseDnsClusterConfig(config, path); !d.ok()) return d.status();
  }

  if (config.transport_socket_matches_size() > 0) {
    return fieldError(path + ".transport_socket_matches", "is not supported yet");
  }

  if (config.has_connect_timeout()) {
    int64_t ms = google::protobuf::util::TimeUtil::DurationToMilliseconds(config.connect_timeout());
    if (ms <= 0) return fieldError(path + ".connect_timeout", "must be greater than 0s");
    cluster->connect_timeout = std::chrono::milliseconds(ms);
  }
  // ORIGINAL_DST's CLUSTER_PROVIDED balancer is set below.
  auto policy = original_dst ? LbPolicy::RoundRobin : lbPolicy(config, path);
  if (!policy.ok()) return policy.status();
  cluster->lb_policy = *policy;
  if (config.has_per_connection_buffer_limit_bytes()) {
    cluster->per_connection_buffer_limit_bytes = config.per_connection_buffer_limit_bytes().value();
  }

  // The deprecated cluster field, then the HttpProtocolOptions extension
  // option that control planes (Istio) send.
  if (config.has_max_requests_per_connection()) {
    cluster->max_requests_per_connection = config.max_requests_per_connection().value();
  }
  if (config.has_http2_protocol_options()) {
    auto settings = http::http2::settingsFromProto(config.http2_protocol_options(), path + ".http2_protocol_options");
    if (!settings.ok()) return settings.status();
    cluster->http2_settings = *settings;
  }
  for (const auto& [name, any] : config.typed_extension_protocol_options()) {
    const std::string opath = absl::StrCat(path, ".typed_extension_protocol_options[\"", name, "\"]");
    if (name != "envoy.extensions.upstreams.http.v3.HttpProtocolOptions") {
      return fieldError(
          opath,
          "unknown protocol options extension (envoy.extensions.upstreams.http.v3.HttpProtocolOptions is known)");
    }
    envoy::extensions::upstreams::http::v3::HttpProtocolOptions options;
    if (!any.UnpackTo(&options)) {
      return fieldError(opath,
                        absl::StrCat("expected ", options.GetDescriptor()->full_name(), ", got ", any.type_url()));
    }
    if (options.has_explicit_http_config() && options.explicit_http_config().has_http2_protocol_options()) {
      auto settings = http::http2::settingsFromProto(options.explicit_http_config().http2_protocol_options(),
                                                     opath + ".explicit_http_config.http2_protocol_options");
      if (!settings.ok()) return settings.status();
      cluster->http2_settings = *settings;
    } else if (options.has_use_downstream_protocol_config()) {
      auto settings = http::http2::settingsFromProto(options.use_downstream_protocol_config().http2_protocol_options(),
                                                     opath + ".use_downstream_protocol_config.http2_protocol_options");
      if (!settings.ok()) return settings.status();
      cluster->http2_settings = *settings;
      cluster->use_downstream_protocol = true;
    } else if (options.has_auto_config()) {
      const auto& autoc = options.auto_config();
      if (autoc.has_http3_protocol_options()) {
        return fieldError(opath + ".auto_config.http3_protocol_options", "HTTP/3 upstreams are not supported");
      }
      if (autoc.has_alternate_protocols_cache_options()) {
        return fieldError(opath + ".auto_config.alternate_protocols_cache_options",
                          "is only used with HTTP/3, which is not supported");
      }
      auto settings =
          http::http2::settingsFromProto(autoc.http2_protocol_options(), opath + ".auto_config.http2_protocol_options");
      if (!settings.ok()) return settings.status();
      cluster->http2_settings = *settings;
      // As Envoy: the protocol comes from ALPN, so the cluster must have a
      // transport socket that negotiates it.
      if (!config.has_transport_socket() || config.transport_socket().name() != "envoy.transport_sockets.tls") {
        return fieldError(opath + ".auto_config",
                          "needs a transport socket that negotiates ALPN (envoy.transport_sockets.tls)");
      }
      cluster->auto_http = true;
    }
    if (options.common_http_protocol_options().has_max_requests_per_connection()) {
      cluster->max_requests_per_connection =
          options.common_http_protocol_options().max_requests_per_connection().value();
    }
  }

  // After the protocol options: auto_config makes the TLS client offer ALPN.
  if (config.has_transport_socket()) {
    auto factory = tls::createUpstreamTransportSocketFactory(
        config.transport_socket().name(),
        config.transport_socket().has_typed_config() ? &config.transport_socket().typed_config() : nullptr,
        path + ".transport_socket", stats, absl::StrCat("cluster.", config.name(), "."), secrets, secret_providers,
        cluster->auto_http);
    if (!factory.ok()) return factory.status();
    cluster->transport_socket_factory = std::move(*factory);
  }
  cluster->settings_id = nextClusterSettingsId();
  // EDS clusters get their hosts from their ClusterLoadAssignment (eds.h),
  // DNS clusters from their HostDiscovery (dns_cluster.h).
  const auto& cla = config.type() == ProtoCluster::EDS || dns
                        ? envoy::config::endpoint::v3::ClusterLoadAssignment::default_instance()
                        : config.load_assignment();
  const std::string cla_path = path + ".load_assignment";
  auto factor = overprovisioningFactor(cla, cla_path);
  if (!factor.ok()) return factor.status();
  cluster->overprovisioning_factor = *factor;
  // Exactly sized: a vector grown by push_back carries ~30% unused slots.
  size_t endpoint_count = 0;
  for (const auto& locality : cla.endpoints()) endpoint_count += locality.lb_endpoints_size();
  cluster->hosts.reserve(endpoint_count);
  for (int i = 0; i < cla.endpoints_size(); ++i) {
    const auto& locality = cla.endpoints(i);
    const std::string lpath = absl::StrCat(cla_path, ".endpoints[", i, "]");
    auto place = placeLocality(locality, lpath, cluster->localities);
    if (!place.ok()) return place.status();
    for (int j = 0; j < locality.lb_endpoints_size(); ++j) {
      const auto& lb = locality.lb_endpoints(j);
      const std::string epath = absl::StrCat(lpath, ".lb_endpoints[", j, "]");
      auto spec = parseLbEndpoint(lb, epath, " (use STRICT_DNS or LOGICAL_DNS for names)");
      if (!spec.ok()) return spec.status();
      auto host = std::make_shared<Host>();
      host->address = spec->address;
      host->weight = spec->weight;
      host->hostname = lb.endpoint().hostname();
      host->priority = place->priority;
      host->locality = place->locality;
      // As Envoy, an endpoint's health_status counts for any cluster type.
      host->health_flags.store(edsHealthFlag(lb.health_status()), std::memory_order_relaxed);
      cluster->hosts.push_back(std::move(host));
    }
  }
  const auto& common = config.common_lb_config();
  cluster->locality_weighted = common.has_locality_weighted_lb_config();
  // Envoy routes by zone with these policies only, and not alongside
  // locality weighting.
  const bool zone_policy = cluster->lb_policy == LbPolicy::RoundRobin || cluster->lb_policy == LbPolicy::LeastRequest ||
                           cluster->lb_policy == LbPolicy::Random;
  if (zone_routing && zone_policy && !cluster->locality_weighted && !original_dst) {
    ZoneAwareConfig zone;
    const auto& za = common.zone_aware_lb_config();
    if (za.has_routing_enabled()) {
      const double value = za.routing_enabled().value();
      if (!(value >= 0 && value <= 100)) {
        return fieldError(path + ".common_lb_config.zone_aware_lb_config.routing_enabled.value",
                          "must be within [0, 100]");
      }
      zone.routing_enabled = static_cast<uint32_t>(value + 0.5);
    }
    if (za.has_min_cluster_size()) zone.min_cluster_size = za.min_cluster_size().value();
    zone.fail_traffic_on_panic = za.fail_traffic_on_panic();
    cluster->zone_aware = zone;
  }
  // Circuit breakers: one set of thresholds per routing priority (a route's
  // `priority` picks which); a priority listed twice keeps the last.
  Thresholds thresholds[2];
  for (int i = 0; i < config.circuit_breakers().thresholds_size(); ++i) {
    const auto& t = config.circuit_breakers().thresholds(i);
    const std::string tpath = absl::StrCat(path, ".circuit_breakers.thresholds[", i, "]");
    if (t.priority() != envoy::config::core::v3::DEFAULT && t.priority() != envoy::config::core::v3::HIGH) {
      return fieldError(tpath + ".priority", "must be DEFAULT or HIGH");
    }
    Thresholds& out = thresholds[t.priority() == envoy::config::core::v3::HIGH ? 1 : 0];
    out = Thresholds{};
    if (t.has_max_connections()) out.max_connections = t.max_connections().value();
    if (t.has_max_pending_requests()) out.max_pending_requests = t.max_pending_requests().value();
    if (t.has_max_requests()) out.max_requests = t.max_requests().value();
    if (t.has_max_retries()) out.max_retries = t.max_retries().value();
    if (t.has_retry_budget()) {
      RetryBudget budget;
      const auto& rb = t.retry_budget();
      if (rb.has_budget_percent()) {
        const double percent = rb.budget_percent().value();
        if (!(percent >= 0 && percent <= 100)) {
          return fieldError(tpath + ".retry_budget.budget_percent.value", "must be within [0, 100]");
        }
        budget.budget_percent = percent;
      }
      if (rb.has_min_retry_concurrency()) budget.min_retry_concurrency = rb.min_retry_concurrency().value();
      out.retry_budget = budget;
    }
  }
  // Both priorities' counts in one allocation (two were ~100 B more per cluster).
  auto resources = std::make_shared<ResourcePair>(thresholds[0], thresholds[1]);
  cluster->resources = std::shared_ptr<ResourceManager>(resources, &resources->normal);
  cluster->high_resources = std::shared_ptr<ResourceManager>(resources, &resources->high);
  // Health: parsed here so that a bad health check or outlier setting
  // rejects the cluster; the cluster manager runs them on the main thread.
  auto health_check = parseHealthChecks(config.health_checks(), path);
  if (!health_check.ok()) return health_check.status();
  cluster->health_check = std::move(*health_check);
  // tls_options.alpn_protocols: that entry's TLS connections offer its list
  // instead of the cluster's (a plaintext cluster has nothing to offer it on).
  for (size_t i = 0; cluster->health_check != nullptr && cluster->transport_socket_factory != nullptr &&
                     i < cluster->health_check->configs().size();
       ++i) {
    const auto& alpn = cluster->health_check->configs()[i].alpn_protocols;
    if (alpn.empty()) continue;
    envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
    if (!config.transport_socket().typed_config().UnpackTo(&tls)) continue;
    tls.mutable_common_tls_context()->clear_alpn_protocols();
    for (const auto& p : alpn) tls.mutable_common_tls_context()->add_alpn_protocols(p);
    google::protobuf::Any any;
    any.PackFrom(tls);
    auto factory = tls::createUpstreamTransportSocketFactory(
        config.transport_socket().name(), &any, absl::StrCat(path, ".health_checks[", i, "].tls_options"), stats,
        absl::StrCat("cluster.", config.name(), "."), secrets, secret_providers);
    if (!factory.ok()) return factory.status();
    cluster->health_check->setTransportSocketFactory(i, std::move(*factory));
  }
  if (config.has_outlier_detection()) {
    auto outlier = parseOutlierDetection(config.outlier_detection(), path + ".outlier_detection");
    if (!outlier.ok()) return outlier.status();
    cluster->outlier = std::make_shared<OutlierSink>(std::move(*outlier));
  }
  if (config.common_lb_config().has_healthy_panic_threshold()) {
    const double value = config.common_lb_config().healthy_panic_threshold().value();
    if (value < 0 || value > 100) {
      return fieldError(path + ".common_lb_config.healthy_panic_threshold.value", "must be within [0, 100]");
    }
    cluster->healthy_panic_threshold = value;
  }
  // Load-balancer state (ring, table) is built here, once per cluster version.
  using FactoryOr = absl::StatusOr<std::shared_ptr<const LoadBalancerFactory>>;
  FactoryOr lb_factory = original_dst ? FactoryOr(std::make_shared<OriginalDstLbFactory>(
                                            *original_dst_settings, std::make_shared<OriginalDstHostSink>(),
                                            std::vector<OriginalDstLbFactory::Known>{}))
                                      : createLoadBalancerFactory(config, path, *cluster);
  if (!lb_factory.ok()) return lb_factory.status();
  cluster->lb_factory = std::move(*lb_factory);
  cluster->stats = &ClusterStats::of(stats, cluster->name, cluster->zone_aware.has_value());
  // Group views copy the settings above, stats included.
  buildPriorityLayout(*cluster);
  cluster->stats->membership_total.set(cluster->hosts.size());
  recountHealth(*cluster);
  return ClusterConstSharedPtr(std::move(cluster));
}

}  // namespace courier::upstream
