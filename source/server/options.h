// The `courier` command line: Envoy v1.32's flags, defaults and checks,
// parsed into a plain struct that start-up and /server_info read.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace courier::server {

enum class Mode { Serve, Validate, InitOnly };
enum class DrainStrategy { Gradual, Immediate };
enum class IpVersion { V4, V6 };

// Envoy's default --log-format.
inline constexpr char kDefaultLogFormat[] = "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v";

struct Options {
  // argv as given (argv[0] included), for /server_info.
  std::vector<std::string> command_line;

  // Configuration.
  std::string config_path;  // -c, --config-path
  std::string config_yaml;  // --config-yaml, merged over the file
  Mode mode = Mode::Serve;
  bool allow_unknown_static_fields = false;
  bool reject_unknown_dynamic_fields = false;
  bool ignore_unknown_dynamic_fields = false;
  bool skip_deprecated_logs = false;
  std::vector<std::string> disabled_extensions;

  // Threads.
  uint32_t concurrency = 1;  // parseOptions defaults it to the hardware's threads
  bool cpuset_threads = false;

  // Logging.
  std::string log_level = "info";  // as given: "warn" and "warning" both stay as written
  std::vector<std::pair<std::string, std::string>> component_log_levels;  // (component, level)
  std::string log_format = kDefaultLogFormat;
  bool log_format_escaped = false;
  bool enable_fine_grain_logging = false;
  std::string log_path;
  uint32_t file_flush_interval_msec = 10000;
  uint32_t file_flush_min_size_kb = 64;

  // Hot restart (accepted for Envoy compatibility).
  uint64_t base_id = 0;
  bool use_dynamic_base_id = false;
  std::string base_id_path;
  uint32_t restart_epoch = 0;
  bool hot_restart_disabled = false;
  std::string socket_path = "@envoy_domain_socket";
  uint32_t socket_mode = 0600;

  // Draining.
  uint32_t drain_time_s = 600;
  uint32_t parent_shutdown_time_s = 900;
  DrainStrategy drain_strategy = DrainStrategy::Gradual;

  // Node identity; each overrides the bootstrap's node field when non-empty.
  std::string service_cluster;
  std::string service_node;
  std::string service_zone;

  std::string admin_address_path;
  IpVersion local_address_ip_version = IpVersion::V4;
  std::vector<std::pair<std::string, std::string>> stats_tags;  // --stats-tag name:value
  bool enable_mutex_tracing = false;
  bool enable_core_dump = false;

  // Print-and-exit requests; when set, no other flag has been checked.
  bool help = false;
  bool version = false;
  bool hot_restart_version = false;
};

// Both "--flag value" and "--flag=value"; "-c" and "-l" as Envoy. Unknown
// flags, repeated single-valued flags and bad values are InvalidArgument
// errors that name the flag and what it expects:
//   --concurrency: expected a positive integer, got "x"
// "--" ends the flags and whatever follows is ignored, as TCLAP does.
absl::StatusOr<Options> parseOptions(int argc, const char* const* argv);

// The --help text.
std::string usage();

}  // namespace courier::server
