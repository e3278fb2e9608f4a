// Builds the HTTP connection manager from
// envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.
#include "absl/strings/ascii.h"
#include "source/common/common/field_error.h"
#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/http/http2/protocol_options.h"
#include "source/extensions/filters/network/http_connection_manager/connection_manager.h"
#include "spdlog/spdlog.h"

namespace courier::extensions::http_connection_manager {
namespace {

using ProtoHcm = envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using google::protobuf::util::TimeUtil;

std::chrono::milliseconds ms(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(TimeUtil::DurationToMilliseconds(d));
}

class HttpConnectionManagerConfigFactory : public server::NetworkFilterConfigFactory {
 public:
  explicit HttpConnectionManagerConfigFactory(HttpFilterLookup lookup) : lookup_(std::move(lookup)) {}

  std::string name() const override { return "envoy.filters.network.http_connection_manager"; }
  std::string configType() const override { return ProtoHcm::descriptor()->full_name(); }

  absl::StatusOr<server::NetworkFilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                                     server::FactoryContext& context,
                                                                     const std::string& path) override {
    ProtoHcm proto;
    if (!typed_config.UnpackTo(&proto)) return fieldError(path, absl::StrCat("cannot decode ", configType()));
    auto config = std::make_shared<HcmConfig>();
    if (proto.stat_prefix().empty()) return fieldError(path + ".stat_prefix", "must not be empty");
    config->stat_prefix = proto.stat_prefix();
    switch (proto.codec_type()) {
      case ProtoHcm::AUTO:
        config->codec_type = CodecType::Auto;
        break;
      case ProtoHcm::HTTP1:
        config->codec_type = CodecType::Http1;
        break;
      case ProtoHcm::HTTP2:
        config->codec_type = CodecType::Http2;
        break;
      default:
        return fieldError(path + ".codec_type",
                          absl::StrCat("codec type ", ProtoHcm::CodecType_Name(proto.codec_type()),
                                       " is not supported yet (AUTO, HTTP1 and HTTP2 are)"));
    }
    auto h2 = http::http2::settingsFromProto(proto.http2_protocol_options(), path + ".http2_protocol_options");
    if (!h2.ok()) return h2.status();
    config->http2 = *h2;
    if (proto.route_specifier_case() == ProtoHcm::kRds) {
      if (context.rds == nullptr) return fieldError(path + ".rds", "RDS is not available for this listener");
      auto provider = context.rds->provider(proto.rds().config_source(), proto.rds().route_config_name(),
                                            proto.stat_prefix(), path + ".rds");
      if (!provider.ok()) return provider.status();
      if (context.rds_providers != nullptr) context.rds_providers->push_back(*provider);
      config->rds = std::move(*provider);
    } else if (proto.route_specifier_case() != ProtoHcm::kRouteConfig) {
      return fieldError(path, "an inline route_config or rds is required (scoped_routes is not supported)");
    } else {
      std::unique_ptr<courier::router::ClusterNameChecker> checker;
      // Envoy validates cluster names of inline route tables by default.
      const bool validate =
          !proto.route_config().has_validate_clusters() || proto.route_config().validate_clusters().value();
      if (validate && context.clusters != nullptr) {
        const upstream::ClusterSet* clusters = context.clusters;
        checker = std::make_unique<courier::router::ClusterNameChecker>(
            [clusters](std::string_view name) { return clusters->find(std::string(name)) != nullptr; });
      }
      auto table = courier::router::RouteTable::create(proto.route_config(), path + ".route_config", checker.get());
      if (!table.ok()) return table.status();
      config->route_table = *table;
    }
    auto filters = buildFilterChain(proto, path, context);
    if (!filters.ok()) return filters.status();
    config->filter_factories = std::move(*filters);
    if (proto.has_max_request_headers_kb()) {
      config->http1.max_request_headers_kb = proto.max_request_headers_kb().value();
      config->http2.max_headers_kb = proto.max_request_headers_kb().value();
    }
    const auto& common = proto.common_http_protocol_options();
    if (common.has_max_headers_count()) {
      config->http1.max_headers_count = common.max_headers_count().value();
      config->http2.max_headers_count = common.max_headers_count().value();
    }
    if (common.has_idle_timeout()) config->idle_timeout = ms(common.idle_timeout());
    if (common.has_max_stream_duration()) config->max_stream_duration = ms(common.max_stream_duration());
    if (proto.has_stream_idle_timeout()) config->stream_idle_timeout = ms(proto.stream_idle_timeout());
    if (proto.has_request_timeout()) config->request_timeout = ms(proto.request_timeout());
    if (proto.has_request_headers_timeout()) config->request_headers_timeout = ms(proto.request_headers_timeout());
    for (int i = 0; i < proto.upgrade_configs_size(); ++i) {
      const auto& u = proto.upgrade_configs(i);
      const std::string upath = absl::StrCat(path, ".upgrade_configs[", i, "]");
      if (u.filters_size() > 0) return fieldError(upath + ".filters", "per-upgrade filter chains are not supported yet");
      if (u.upgrade_type().empty()) return fieldError(upath + ".upgrade_type", "must not be empty");
      if (absl::AsciiStrToLower(u.upgrade_type()) == "connect") {
        return fieldError(upath + ".upgrade_type", "CONNECT is not supported yet");
      }
      if (u.has_enabled() && !u.enabled().value()) continue;
      config->http1.upgrade_types.push_back(absl::AsciiStrToLower(u.upgrade_type()));
    }
    if (proto.http_protocol_options().accept_http_10()) config->http1.accept_http_10 = true;
    config->http1.allow_chunked_length = proto.http_protocol_options().allow_chunked_length();
    if (!proto.server_name().empty()) config->server_name = proto.server_name();
    if (proto.has_generate_request_id()) config->generate_request_id = proto.generate_request_id().value();
    if (proto.has_use_remote_address()) config->use_remote_address = proto.use_remote_address().value();
    config->xff_num_trusted_hops = proto.xff_num_trusted_hops();
    config->skip_xff_append = proto.skip_xff_append();
    config->preserve_external_request_id = proto.preserve_external_request_id();
    for (int i = 0; i < proto.access_log_size(); ++i) {
      if (context.access_logs == nullptr) break;
      auto log = access_log::createAccessLog(proto.access_log(i), absl::StrCat(path, ".access_log[", i, "]"),
                                             *context.access_logs);
      if (!log.ok()) return log.status();
      config->access_logs.push_back(std::move(*log));
    }
    config->stats = std::make_unique<HcmStats>(context.stats, config->stat_prefix);
    std::shared_ptr<const HcmConfig> shared = std::move(config);
    return server::NetworkFilterFactoryCb([shared](network::Connection& connection, server::WorkerContext& worker) {
      connection.addReadFilter(std::make_unique<ConnectionManager>(shared, worker));
    });
  }

 private:
  // http_filters in order, each built by its extension; the router (a
  // terminal filter) must be last, as Envoy requires.
  absl::StatusOr<std::vector<http::FilterFactoryCb>> buildFilterChain(const ProtoHcm& proto, const std::string& path,
                                                                      server::FactoryContext& context) {
    std::vector<http::FilterFactoryCb> chain;
    if (proto.http_filters_size() == 0) {
      // Envoy would route but never forward; the seed example relies on the router being there.
      spdlog::info("{}: no http_filters given; using the router filter", path);
      server::HttpFilterConfigFactory* router = lookup_("", "envoy.filters.http.router");
      auto cb = router->createFilterFactory(google::protobuf::Any(), proto.stat_prefix(), context, path);
      if (!cb.ok()) return cb.status();
      chain.push_back(std::move(*cb));
      return chain;
    }
    for (int i = 0; i < proto.http_filters_size(); ++i) {
      const auto& f = proto.http_filters(i);
      const std::string fpath = absl::StrCat(path, ".http_filters[", i, "]");
      if (f.disabled()) continue;
      if (f.config_type_case() == envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter::kConfigDiscovery) {
        return fieldError(fpath + ".config_discovery", "filter config discovery (ECDS) is not supported yet");
      }
      std::string type;
      if (f.has_typed_config()) {
        type = f.typed_config().type_url().substr(f.typed_config().type_url().rfind('/') + 1);
        // A TypedStruct names the real type inside; such configs are not decoded here.
        if (type == "xds.type.v3.TypedStruct" || type == "udpa.type.v1.TypedStruct") {
          return fieldError(fpath + ".typed_config", absl::StrCat("TypedStruct filter configs are not supported"));
        }
      }
      server::HttpFilterConfigFactory* factory = lookup_(type, f.name());
      if (factory == nullptr) {
        if (f.is_optional()) {
          spdlog::warn("{}: optional HTTP filter \"{}\" is not supported; skipped", fpath, f.name());
          continue;
        }
        return fieldError(fpath, absl::StrCat("HTTP filter \"", f.name(), "\"",
                                              type.empty() ? "" : absl::StrCat(" (", type, ")"),
                                              " is not supported"));
      }
      const bool last = i == proto.http_filters_size() - 1;
      if (factory->isTerminal() && !last) {
        return fieldError(fpath, absl::StrCat("terminal filter \"", f.name(), "\" must be the last filter in the chain"));
      }
      if (!factory->isTerminal() && last) {
        return fieldError(fpath, absl::StrCat("non-terminal filter \"", f.name(),
                                              "\" is the last filter in the chain; add the router after it"));
      }
      auto cb = factory->createFilterFactory(f.typed_config(), proto.stat_prefix(), context, fpath + ".typed_config");
      if (!cb.ok()) return cb.status();
      chain.push_back(std::move(*cb));
    }
    if (chain.empty()) return fieldError(path + ".http_filters", "every filter is disabled; the router must be enabled");
    return chain;
  }

  HttpFilterLookup lookup_;
};

}  // namespace

std::unique_ptr<server::NetworkFilterConfigFactory> createHttpConnectionManagerConfigFactory(
    HttpFilterLookup http_filters) {
  return std::make_unique<HttpConnectionManagerConfigFactory>(std::move(http_filters));
}

}  // namespace courier::extensions::http_connection_manager
