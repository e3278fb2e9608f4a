// Access loggers built from envoy.config.accesslog.v3.AccessLog: the file,
// stdout and stderr loggers (envoy.access_loggers.{file,stdout,stderr}), each
// a Formatter plus an optional Filter writing into a shared LogFile.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/accesslog/v3/accesslog.pb.h"
#include "source/common/access_log/filter.h"
#include "source/common/access_log/formatter.h"
#include "source/common/access_log/log_file.h"
#include "source/common/stream_info/stream_info.h"

namespace courier::access_log {

class AccessLog {
 public:
  virtual ~AccessLog() = default;
  // Called on a worker when a stream ends; never blocks on I/O.
  virtual void log(const stream_info::StreamInfo& info) = 0;
};

// Formats matching streams and appends the line to a LogFile (a file, or
// fd 1/2 for the stdout/stderr loggers).
class StreamAccessLog : public AccessLog {
 public:
  StreamAccessLog(Formatter formatter, std::unique_ptr<Filter> filter, LogFile& file)
      : formatter_(std::move(formatter)), filter_(std::move(filter)), file_(file) {}
  void log(const stream_info::StreamInfo& info) override;

 private:
  const Formatter formatter_;
  const std::unique_ptr<Filter> filter_;  // null: log everything
  LogFile& file_;
};

// path is the config path of the AccessLog message, used in errors
// ("static_resources.listeners[0]...access_log[1].typed_config.path: ...").
absl::StatusOr<std::unique_ptr<AccessLog>> createAccessLog(const envoy::config::accesslog::v3::AccessLog& config,
                                                           const std::string& path, AccessLogManager& manager);

}  // namespace courier::access_log
