#include "source/common/access_log/access_log.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"

// FileAccessLog.format/json_format/typed_json_format are deprecated in Envoy
// but still accepted there, so we read them too.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace courier::access_log {
namespace {

using FileConfig = envoy::extensions::access_loggers::file::v3::FileAccessLog;
using StdoutConfig = envoy::extensions::access_loggers::stream::v3::StdoutAccessLog;
using StderrConfig = envoy::extensions::access_loggers::stream::v3::StderrAccessLog;

constexpr std::string_view kFileName = "envoy.access_loggers.file";
constexpr std::string_view kStdoutName = "envoy.access_loggers.stdout";
constexpr std::string_view kStderrName = "envoy.access_loggers.stderr";

absl::Status prefixed(const std::string& path, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(path, ".", status.message()));
}

absl::StatusOr<Formatter> fileFormatter(const FileConfig& config, const std::string& path) {
  switch (config.access_log_format_case()) {
    case FileConfig::kFormat: {
      auto f = Formatter::fromText(config.format());
      if (!f.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ".format: ", f.status().message()));
      return f;
    }
    case FileConfig::kJsonFormat:
    case FileConfig::kTypedJsonFormat: {
      const bool typed = config.access_log_format_case() == FileConfig::kTypedJsonFormat;
      auto f = Formatter::fromJson(typed ? config.typed_json_format() : config.json_format());
      if (!f.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, typed ? ".typed_json_format." : ".json_format.", f.status().message()));
      }
      return f;
    }
    case FileConfig::kLogFormat: {
      auto f = Formatter::fromProto(config.log_format());
      if (!f.ok()) return prefixed(path + ".log_format", f.status());
      return f;
    }
    default:
      return Formatter::fromText("");
  }
}

template <class StreamConfig>
absl::StatusOr<Formatter> streamFormatter(const StreamConfig& config, const std::string& path) {
  if (!config.has_log_format()) return Formatter::fromText("");
  auto f = Formatter::fromProto(config.log_format());
  if (!f.ok()) return prefixed(path + ".log_format", f.status());
  return f;
}

}  // namespace

void StreamAccessLog::log(const stream_info::StreamInfo& info) {
  if (filter_ != nullptr && !filter_->evaluate(info)) return;
  // One scratch string per worker thread: formatting allocates only while a
  // line is longer than any before it on this thread.
  thread_local std::string line;
  line.clear();
  formatter_.format(info, line);
  file_.write(line);
}

absl::StatusOr<std::unique_ptr<AccessLog>> createAccessLog(const envoy::config::accesslog::v3::AccessLog& config,
                                                           const std::string& path, AccessLogManager& manager) {
  std::unique_ptr<Filter> filter;
  if (config.has_filter()) {
    auto f = createFilter(config.filter(), path + ".filter");
    if (!f.ok()) return f.status();
    filter = std::move(*f);
  }

  const std::string typed_path = path + ".typed_config";
  const google::protobuf::Any& any = config.typed_config();
  const std::string& url = any.type_url();
  auto is = [&](const google::protobuf::Descriptor* d, std::string_view name) {
    if (config.has_typed_config()) return absl::EndsWith(url, "/" + d->full_name());
    return config.name() == name;
  };

  std::string file_path;
  absl::StatusOr<Formatter> formatter = absl::InvalidArgumentError("unset");
  if (is(FileConfig::descriptor(), kFileName)) {
    FileConfig file;
    if (!any.UnpackTo(&file)) return absl::InvalidArgumentError(absl::StrCat(typed_path, ": cannot decode FileAccessLog"));
    if (file.path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(typed_path, ".path: the file access logger needs a path"));
    }
    file_path = file.path();
    formatter = fileFormatter(file, typed_path);
  } else if (is(StdoutConfig::descriptor(), kStdoutName)) {
    StdoutConfig out;
    if (config.has_typed_config() && !any.UnpackTo(&out)) {
      return absl::InvalidArgumentError(absl::StrCat(typed_path, ": cannot decode StdoutAccessLog"));
    }
    file_path = "/dev/stdout";
    formatter = streamFormatter(out, typed_path);
  } else if (is(StderrConfig::descriptor(), kStderrName)) {
    StderrConfig err;
    if (config.has_typed_config() && !any.UnpackTo(&err)) {
      return absl::InvalidArgumentError(absl::StrCat(typed_path, ": cannot decode StderrAccessLog"));
    }
    file_path = "/dev/stderr";
    formatter = streamFormatter(err, typed_path);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        config.has_typed_config() ? typed_path : path + ".name", ": unsupported access logger \"", config.name(),
        "\"", config.has_typed_config() ? absl::StrCat(" (", url, ")") : "",
        "; supported: envoy.access_loggers.file, envoy.access_loggers.stdout, envoy.access_loggers.stderr"));
  }
  if (!formatter.ok()) return formatter.status();

  auto file = manager.file(file_path);
  if (!file.ok()) return absl::InvalidArgumentError(absl::StrCat(typed_path, ".path: ", file.status().message()));
  return std::make_unique<StreamAccessLog>(std::move(*formatter), std::move(filter), **file);
}

}  // namespace courier::access_log
