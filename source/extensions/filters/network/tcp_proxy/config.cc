// Builds the tcp_proxy filter from envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.
#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "google/protobuf/util/time_util.h"
#include "source/extensions/filters/network/tcp_proxy/tcp_proxy.h"

namespace courier::extensions::tcp_proxy {
namespace {

using ProtoTcpProxy = envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

class TcpProxyConfigFactory : public server::NetworkFilterConfigFactory {
 public:
  std::string name() const override { return "envoy.filters.network.tcp_proxy"; }
  std::string configType() const override { return ProtoTcpProxy::descriptor()->full_name(); }

  absl::StatusOr<server::NetworkFilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                                     server::FactoryContext& context,
                                                                     const std::string& path) override {
    ProtoTcpProxy proto;
    if (!typed_config.UnpackTo(&proto)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode ", configType()));
    }
    auto config = std::make_shared<TcpProxyConfig>();
    if (proto.stat_prefix().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".stat_prefix: must not be empty"));
    }
    config->stat_prefix = proto.stat_prefix();
    switch (proto.cluster_specifier_case()) {
      case ProtoTcpProxy::kCluster:
        config->cluster = proto.cluster();
        break;
      case ProtoTcpProxy::kWeightedClusters:
        for (int i = 0; i < proto.weighted_clusters().clusters_size(); ++i) {
          const auto& wc = proto.weighted_clusters().clusters(i);
          if (wc.weight() == 0) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ".weighted_clusters.clusters[", i, "].weight: must be at least 1"));
          }
          config->weighted_clusters.push_back({wc.name(), wc.weight()});
          config->total_weight += wc.weight();
        }
        if (config->weighted_clusters.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(path, ".weighted_clusters.clusters: must not be empty"));
        }
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": one of 'cluster' or 'weighted_clusters' is required"));
    }
    if (proto.has_idle_timeout()) {
      config->idle_timeout =
          std::chrono::milliseconds(google::protobuf::util::TimeUtil::DurationToMilliseconds(proto.idle_timeout()));
    }
    if (proto.has_max_connect_attempts()) {
      if (proto.max_connect_attempts().value() < 1) {
        return absl::InvalidArgumentError(absl::StrCat(path, ".max_connect_attempts: must be at least 1"));
      }
      config->max_connect_attempts = proto.max_connect_attempts().value();
    }
    // Envoy allows one hash policy here.
    if (proto.hash_policy_size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".hash_policy: at most one policy is allowed"));
    }
    for (int i = 0; i < proto.hash_policy_size(); ++i) {
      const auto& hp = proto.hash_policy(i);
      if (hp.has_source_ip()) {
        config->hash_source_ip = true;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".hash_policy[", i, "]: only source_ip is supported (filter_state is not)"));
      }
    }
    for (int i = 0; i < proto.access_log_size(); ++i) {
      if (context.access_logs == nullptr) break;
      auto log = access_log::createAccessLog(proto.access_log(i), absl::StrCat(path, ".access_log[", i, "]"),
                                             *context.access_logs);
      if (!log.ok()) return log.status();
      config->access_logs.push_back(std::move(*log));
    }
    config->stats = std::make_unique<TcpProxyStats>(context.stats, config->stat_prefix);
    std::shared_ptr<const TcpProxyConfig> shared = std::move(config);
    return server::NetworkFilterFactoryCb(
        [shared](network::Connection& connection, server::WorkerContext& worker) {
          connection.addReadFilter(std::make_unique<TcpProxy>(shared, worker));
        });
  }
};

}  // namespace

std::unique_ptr<server::NetworkFilterConfigFactory> createTcpProxyConfigFactory() {
  return std::make_unique<TcpProxyConfigFactory>();
}

}  // namespace courier::extensions::tcp_proxy
