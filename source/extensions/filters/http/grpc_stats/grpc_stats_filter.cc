#include "source/extensions/filters/http/grpc_stats/grpc_stats_filter.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/http/grpc_stats/v3/config.pb.h"
#include "source/common/grpc/common.h"
#include "source/common/router/route_table.h"
#include "source/common/upstream/thread_local_cluster_manager.h"

namespace courier::extensions::grpc_stats {

bool GrpcStatsConfig::perMethod(std::string_view service, std::string_view method) const {
  if (stats_for_all_methods) return true;
  // Debian's absl::string_view is not std::string_view.
  auto it = allowlist.find(absl::string_view(service.data(), service.size()));
  return it != allowlist.end() && it->second.contains(absl::string_view(method.data(), method.size()));
}

bool splitGrpcPath(std::string_view path, std::string_view& service, std::string_view& method) {
  if (path.size() < 4 || path[0] != '/') return false;
  const size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash == 1 || slash + 1 == path.size()) return false;
  if (path.find('/', slash + 1) != std::string_view::npos) return false;
  service = path.substr(1, slash - 1);
  method = path.substr(slash + 1);
  return true;
}

http::FilterHeadersStatus GrpcStatsFilter::decodeHeaders(http::HeaderMap& headers, bool) {
  const std::string_view content_type = headers.getValue("content-type");
  grpc_web_ = content_type.substr(0, 20) == "application/grpc-web";
  grpc_ = grpc_web_ || grpc::hasGrpcContentType(headers);
  if (!grpc_) return http::FilterHeadersStatus::Continue;
  std::string_view service, method;
  if (splitGrpcPath(headers.path(), service, method) && config_->perMethod(service, method)) {
    service_method_.reserve(service.size() + method.size() + 2);
    service_method_.append(service).append(".").append(method).append(".");
    if (config_->replace_dots_in_grpc_service_name) {
      std::replace(service_method_.begin(), service_method_.begin() + static_cast<std::ptrdiff_t>(service.size()), '.',
                   '_');
    }
  }
  return http::FilterHeadersStatus::Continue;
}

http::FilterDataStatus GrpcStatsFilter::decodeData(buffer::Buffer& data, bool) {
  if (grpc_) {
    const uint64_t n = requests_.feed(data);
    if (n > 0 && !prefix().empty()) config_->store.counter(prefix_ + "request_message_count").add(n);
  }
  return http::FilterDataStatus::Continue;
}

http::FilterHeadersStatus GrpcStatsFilter::encodeHeaders(http::HeaderMap& headers, bool end_stream) {
  // Trailers-only: the status is in the headers.
  if (grpc_ && end_stream) countOutcome(headers);
  return http::FilterHeadersStatus::Continue;
}

http::FilterDataStatus GrpcStatsFilter::encodeData(buffer::Buffer& data, bool) {
  if (grpc_) {
    const uint64_t n = responses_.feed(data);
    if (n > 0 && !prefix().empty()) config_->store.counter(prefix_ + "response_message_count").add(n);
  }
  return http::FilterDataStatus::Continue;
}

http::FilterTrailersStatus GrpcStatsFilter::encodeTrailers(http::HeaderMap& trailers) {
  if (grpc_) countOutcome(trailers);
  return http::FilterTrailersStatus::Continue;
}

void GrpcStatsFilter::countOutcome(const http::HeaderMap& headers) {
  if (counted_) return;
  const std::optional<uint32_t> status = grpc::grpcStatus(headers);
  // As Envoy: a response without grpc-status is not counted.
  if (!status || prefix().empty()) return;
  counted_ = true;
  stats::Store& store = config_->store;
  store.counter(prefix_ + (*status == 0 ? "success" : "failure")).inc();
  store.counter(prefix_ + "total").inc();
  if (config_->enable_upstream_stats) {
    const auto& info = decoder_->streamInfo();
    if (info.first_upstream_tx_byte_sent && info.last_upstream_rx_byte_received) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*info.last_upstream_rx_byte_received -
                                                                            *info.first_upstream_tx_byte_sent);
      store.histogram(prefix_ + "upstream_rq_time").recordValue(static_cast<uint64_t>(std::max<int64_t>(0, ms.count())));
    }
  }
}

const std::string& GrpcStatsFilter::prefix() {
  if (prefix_built_) return prefix_;
  prefix_built_ = true;
  if (decoder_ == nullptr) return prefix_;
  // The cluster the router picked; before it ran, the route's.
  std::string cluster = decoder_->streamInfo().upstream_cluster;
  if (cluster.empty()) {
    const router::RouteEntry* route = decoder_->route();
    if (route != nullptr) cluster = route->cluster;
  }
  // Only clusters that exist: a cluster_header value must not mint stats.
  if (cluster.empty() || decoder_->worker().cluster_manager.get(cluster) == nullptr) return prefix_;
  prefix_ = absl::StrCat("cluster.", cluster, grpc_web_ ? ".grpc-web." : ".grpc.", service_method_);
  return prefix_;
}

namespace {

using ProtoConfig = envoy::extensions::filters::http::grpc_stats::v3::FilterConfig;

class GrpcStatsConfigFactory : public server::HttpFilterConfigFactory {
 public:
  std::string name() const override { return "envoy.filters.http.grpc_stats"; }
  std::string configType() const override { return ProtoConfig::descriptor()->full_name(); }

  absl::StatusOr<http::FilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                            const std::string&, server::FactoryContext& context,
                                                            const std::string& path) override {
    ProtoConfig proto;
    if (!typed_config.UnpackTo(&proto)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode ", configType()));
    }
    auto config = std::make_shared<GrpcStatsConfig>(context.stats);
    config->enable_upstream_stats = proto.enable_upstream_stats();
    config->replace_dots_in_grpc_service_name = proto.replace_dots_in_grpc_service_name();
    if (proto.has_stats_for_all_methods()) config->stats_for_all_methods = proto.stats_for_all_methods().value();
    const auto& services = proto.individual_method_stats_allowlist().services();
    for (int i = 0; i < services.size(); ++i) {
      if (services[i].name().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".individual_method_stats_allowlist.services[", i, "].name: must not be empty"));
      }
      auto& methods = config->allowlist[services[i].name()];
      for (const auto& m : services[i].method_names()) methods.insert(m);
    }
    std::shared_ptr<const GrpcStatsConfig> shared = std::move(config);
    return http::FilterFactoryCb([shared](http::FilterChainFactoryCallbacks& callbacks) {
      callbacks.addStreamFilter(std::make_unique<GrpcStatsFilter>(shared));
    });
  }
};

}  // namespace

std::unique_ptr<server::HttpFilterConfigFactory> createGrpcStatsConfigFactory() {
  return std::make_unique<GrpcStatsConfigFactory>();
}

}  // namespace courier::extensions::grpc_stats
