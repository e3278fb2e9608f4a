// AccessLog.filter: decides per request whether a logger writes a line
// (status code, duration, response flags, and/or combinations), as Envoy.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/accesslog/v3/accesslog.pb.h"
#include "source/common/stream_info/stream_info.h"

namespace courier::access_log {

class Filter {
 public:
  virtual ~Filter() = default;
  virtual bool evaluate(const stream_info::StreamInfo& info) const = 0;
};

// path is the config path of the filter message, used in errors.
absl::StatusOr<std::unique_ptr<Filter>> createFilter(const envoy::config::accesslog::v3::AccessLogFilter& config,
                                                     const std::string& path);

}  // namespace courier::access_log
