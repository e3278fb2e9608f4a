// envoy.filters.http.grpc_stats: counts gRPC calls per route cluster as
// Envoy's grpc_stats filter does: cluster.<cluster>.grpc.[<service>.<method>.]
// {success,failure,total} from the response's grpc-status,
// request_message_count / response_message_count from the length-prefixed
// messages in the bodies, and optionally upstream_rq_time. grpc-web calls
// count under cluster.<cluster>.grpc-web.*.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "source/common/http/filter.h"
#include "source/common/stats/store.h"
#include "source/extensions/filters/http/grpc_stats/message_counter.h"
#include "source/server/filter_config.h"

namespace courier::extensions::grpc_stats {

struct GrpcStatsConfig {
  explicit GrpcStatsConfig(stats::Store& s) : store(s) {}
  stats::Store& store;
  bool stats_for_all_methods = false;
  bool enable_upstream_stats = false;
  bool replace_dots_in_grpc_service_name = false;
  // individual_method_stats_allowlist: service -> methods.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> allowlist;

  // Whether service/method get stats of their own.
  bool perMethod(std::string_view service, std::string_view method) const;
};

// "/<service>/<method>" -> service and method; false for anything else.
bool splitGrpcPath(std::string_view path, std::string_view& service, std::string_view& method);

class GrpcStatsFilter : public http::StreamFilter {
 public:
  explicit GrpcStatsFilter(std::shared_ptr<const GrpcStatsConfig> config) : config_(std::move(config)) {}

  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(buffer::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap&) override { return http::FilterTrailersStatus::Continue; }
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override { decoder_ = &callbacks; }

  http::FilterHeadersStatus encodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus encodeData(buffer::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus encodeTrailers(http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(http::StreamEncoderFilterCallbacks&) override {}

 private:
  // "cluster.<cluster>.<grpc|grpc-web>.[<service>.<method>.]", built once per
  // call when first needed; empty when the call has no known cluster.
  const std::string& prefix();
  void countOutcome(const http::HeaderMap& headers);

  std::shared_ptr<const GrpcStatsConfig> config_;
  http::StreamDecoderFilterCallbacks* decoder_ = nullptr;
  bool grpc_ = false;
  bool grpc_web_ = false;
  bool counted_ = false;
  bool prefix_built_ = false;
  std::string service_method_;  // "<service>.<method>." or empty
  std::string prefix_;
  MessageCounter requests_;
  MessageCounter responses_;
};

// Registered under "envoy.filters.http.grpc_stats".
std::unique_ptr<server::HttpFilterConfigFactory> createGrpcStatsConfigFactory();

}  // namespace courier::extensions::grpc_stats
