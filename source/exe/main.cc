// courier: Envoy's command line, start-up and exit codes.
#include <cstdio>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "source/common/common/version.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/server/options.h"
#include "source/server/server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace courier {
namespace {

using envoy::config::bootstrap::v3::Bootstrap;

absl::StatusOr<Bootstrap> loadBootstrap(const server::Options& options, uint64_t& deprecated_uses,
                                        std::map<std::string, int>& field_lines) {
  if (options.config_path.empty() && options.config_yaml.empty()) {
    return absl::InvalidArgumentError(
        "At least one of --config-path or --config-yaml or Options::configProto() should be non-empty");
  }
  protobuf::LoadOptions load_options;
  load_options.allow_unknown_fields = options.allow_unknown_static_fields;
  load_options.on_deprecated = [&deprecated_uses](const std::string& path, const std::string& message) {
    ++deprecated_uses;
    spdlog::warn("deprecated field in use: {}: {}", path, message);
  };
  Bootstrap bootstrap;
  if (!options.config_path.empty()) {
    load_options.source_name = options.config_path;
    load_options.field_lines = &field_lines;
    if (auto s = protobuf::loadFromFile(options.config_path, bootstrap, load_options); !s.ok()) return s;
  }
  if (!options.config_yaml.empty()) {
    // Envoy merges --config-yaml over the file, field by field.
    Bootstrap overlay;
    load_options.source_name = "--config-yaml";
    // Merged repeated fields shift indices; lines only describe the file.
    load_options.field_lines = nullptr;
    if (auto s = protobuf::loadFromYamlString(options.config_yaml, overlay, load_options); !s.ok()) return s;
    bootstrap.MergeFrom(overlay);
  }
  if (!options.service_node.empty()) bootstrap.mutable_node()->set_id(options.service_node);
  if (!options.service_cluster.empty()) bootstrap.mutable_node()->set_cluster(options.service_cluster);
  if (!options.service_zone.empty()) bootstrap.mutable_node()->mutable_locality()->set_zone(options.service_zone);
  return bootstrap;
}

// Validation errors start with the field path; point them at the file's line.
std::string withLocation(const server::Options& options, const std::map<std::string, int>& field_lines,
                         const absl::Status& status) {
  std::string message(status.message());
  if (options.config_path.empty()) return message;
  return protobuf::locate(options.config_path, field_lines, message.substr(0, message.find(": "))) + message;
}

int runMain(int argc, char** argv) {
  auto options = server::parseOptions(argc, argv);
  if (!options.ok()) {
    std::cerr << "courier: " << options.status().message() << "\n";
    return 1;
  }
  if (options->version) {
    std::cout << "courier version: " << kCourierVersion << "/courier/RELEASE (Envoy v3 API, v1.32 compatible)\n";
    return 0;
  }
  if (options->help) {
    std::cout << server::usage();
    return 0;
  }
  auto logger = spdlog::stderr_color_mt("courier");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e][%t][%l] %v");
  spdlog::set_level(spdlog::level::from_str(options->log_level == "warning" ? "warn" : options->log_level));

  uint64_t deprecated_uses = 0;
  std::map<std::string, int> field_lines;
  auto bootstrap = loadBootstrap(*options, deprecated_uses, field_lines);
  if (!bootstrap.ok()) {
    std::cerr << "error initializing configuration '" << options->config_path << "': " << bootstrap.status().message()
              << "\n";
    return 1;
  }
  server::Server server(*options, std::move(*bootstrap));
  if (options->mode == server::Mode::Validate) {
    if (auto s = server.validate(); !s.ok()) {
      std::cerr << "error initializing configuration '" << options->config_path
                << "': " << withLocation(*options, field_lines, s) << "\n";
      return 1;
    }
    std::cout << "configuration '" << options->config_path << "' OK\n";
    return 0;
  }
  if (auto s = server.initialize(); !s.ok()) {
    std::cerr << "error initializing configuration '" << options->config_path
              << "': " << withLocation(*options, field_lines, s) << "\n";
    return 1;
  }
  server.stats().counter("runtime.deprecated_feature_use").add(deprecated_uses);
  if (options->mode == server::Mode::InitOnly) return 0;
  return server.run();
}

}  // namespace
}  // namespace courier

int main(int argc, char** argv) { return courier::runMain(argc, argv); }
