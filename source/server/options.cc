#include "source/server/options.h"

#include <sched.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace courier::server {
namespace {

using Apply = std::function<absl::Status(Options&, const std::string& flag, const std::string& value)>;

struct Flag {
  const char* name;        // long form, without "--"
  char short_name;         // 0 if none
  const char* value_name;  // nullptr for a switch
  const char* help;
  Apply apply;
  bool repeatable = false;
};

std::string quoted(absl::string_view s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

absl::Status badValue(const std::string& flag, absl::string_view expected, const std::string& value) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": expected ", expected, ", got ", quoted(value)));
}

// Digits only: TCLAP rejects signs and spaces, and "-1" must not wrap around.
absl::Status parseUnsigned(const std::string& flag, const std::string& value, uint64_t min, uint64_t max,
                           uint64_t* out) {
  const char* expected = min > 0 ? "a positive integer" : "a non-negative integer";
  if (value.empty() || !std::all_of(value.begin(), value.end(), absl::ascii_isdigit)) {
    return badValue(flag, expected, value);
  }
  uint64_t v;
  if (!absl::SimpleAtoi(value, &v) || v > max) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", quoted(value), " is out of range (at most ", max, ")"));
  }
  if (v < min) return badValue(flag, expected, value);
  *out = v;
  return absl::OkStatus();
}

template <typename T>
Apply unsignedFlag(T Options::*field, uint64_t min = 0) {
  return [field, min](Options& o, const std::string& flag, const std::string& value) {
    uint64_t v;
    if (auto s = parseUnsigned(flag, value, min, std::numeric_limits<T>::max(), &v); !s.ok()) return s;
    o.*field = static_cast<T>(v);
    return absl::OkStatus();
  };
}

Apply stringFlag(std::string Options::*field) {
  return [field](Options& o, const std::string&, const std::string& value) {
    o.*field = value;
    return absl::OkStatus();
  };
}

Apply switchFlag(bool Options::*field) {
  return [field](Options& o, const std::string&, const std::string&) {
    o.*field = true;
    return absl::OkStatus();
  };
}

template <typename T>
Apply choiceFlag(T Options::*field, std::vector<std::pair<std::string, T>> choices) {
  return [field, choices](Options& o, const std::string& flag, const std::string& value) {
    std::vector<std::string> names;
    for (const auto& [name, v] : choices) {
      if (name == value) {
        o.*field = v;
        return absl::OkStatus();
      }
      names.push_back(name);
    }
    return badValue(flag, absl::StrCat("one of ", absl::StrJoin(names, ", ")), value);
  };
}

// spdlog's level names, plus Envoy's "warn".
const std::vector<std::string>& logLevels() {
  static const auto* levels =
      new std::vector<std::string>{"trace", "debug", "info", "warning", "warn", "error", "critical", "off"};
  return *levels;
}

bool isLogLevel(const std::string& s) {
  return std::find(logLevels().begin(), logLevels().end(), s) != logLevels().end();
}

absl::Status applyLogLevel(Options& o, const std::string& flag, const std::string& value) {
  if (!isLogLevel(value)) return badValue(flag, absl::StrCat("one of ", absl::StrJoin(logLevels(), ", ")), value);
  o.log_level = value;
  return absl::OkStatus();
}

absl::Status applyComponentLogLevel(Options& o, const std::string& flag, const std::string& value) {
  for (absl::string_view entry : absl::StrSplit(value, ',')) {
    const std::vector<std::string> parts = absl::StrSplit(entry, ':');
    if (parts.size() != 2 || parts[0].empty() || !isLogLevel(parts[1])) {
      return badValue(flag, "<component>:<level>[,<component>:<level>...] (e.g. upstream:debug,config:trace)", value);
    }
    o.component_log_levels.emplace_back(parts[0], parts[1]);
  }
  return absl::OkStatus();
}

// Envoy: alphanumeric tag names; any value without a '.'.
absl::Status applyStatsTag(Options& o, const std::string& flag, const std::string& value) {
  const size_t colon = value.find(':');
  const std::string name = value.substr(0, colon == std::string::npos ? value.size() : colon);
  const std::string tag_value = colon == std::string::npos ? "" : value.substr(colon + 1);
  const bool name_ok =
      !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
  if (colon == std::string::npos || !name_ok || tag_value.empty() || absl::StrContains(tag_value, '.')) {
    return badValue(flag, "<name>:<value> (alphanumeric name, value without '.')", value);
  }
  for (const auto& [existing, unused] : o.stats_tags) {
    if (existing == name) return absl::InvalidArgumentError(absl::StrCat(flag, ": tag ", quoted(name), " given twice"));
  }
  o.stats_tags.emplace_back(name, tag_value);
  return absl::OkStatus();
}

absl::Status applySocketMode(Options& o, const std::string& flag, const std::string& value) {
  const bool octal = !value.empty() && value.size() <= 4 &&
                     std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '7'; });
  if (!octal) return badValue(flag, "an octal file mode (e.g. 600)", value);
  uint32_t mode = 0;
  for (const char c : value) mode = mode * 8 + static_cast<uint32_t>(c - '0');
  o.socket_mode = mode;
  return absl::OkStatus();
}

absl::Status applyDisableExtensions(Options& o, const std::string&, const std::string& value) {
  for (absl::string_view name : absl::StrSplit(value, ',', absl::SkipEmpty())) o.disabled_extensions.emplace_back(name);
  return absl::OkStatus();
}

// Envoy's flags, in the order --help lists them.
const std::vector<Flag>& flags() {
  static const auto* table = new std::vector<Flag>{
      {"config-path", 'c', "string", "Path to configuration file", stringFlag(&Options::config_path)},
      {"config-yaml", 0, "string", "YAML string for a v3 bootstrap proto (merged over --config-path)",
       stringFlag(&Options::config_yaml)},
      {"mode", 0, "string",
       "One of 'serve' (default; validate configs and then serve traffic normally), 'validate' (validate configs "
       "and exit) or 'init_only' (initialize the server and exit)",
       choiceFlag(&Options::mode,
                  {{"serve", Mode::Serve}, {"validate", Mode::Validate}, {"init_only", Mode::InitOnly}})},
      {"allow-unknown-static-fields", 0, nullptr, "Allow unknown fields in static configuration",
       switchFlag(&Options::allow_unknown_static_fields)},
      {"reject-unknown-dynamic-fields", 0, nullptr, "Reject unknown fields in dynamic configuration",
       switchFlag(&Options::reject_unknown_dynamic_fields)},
      {"ignore-unknown-dynamic-fields", 0, nullptr, "Ignore unknown fields in dynamic configuration",
       switchFlag(&Options::ignore_unknown_dynamic_fields)},
      {"skip-deprecated-logs", 0, nullptr, "Skip deprecated feature log lines",
       switchFlag(&Options::skip_deprecated_logs)},
      {"disable-extensions", 0, "string", "Comma-separated list of extensions to disable", applyDisableExtensions},
      {"concurrency", 0, "uint32_t", "# of worker threads to run (default: the hardware's threads)",
       unsignedFlag(&Options::concurrency, /*min=*/1)},
      {"cpuset-threads", 0, nullptr, "Get the default # of worker threads from cpuset size",
       switchFlag(&Options::cpuset_threads)},
      {"log-level", 'l', "string",
       "Log levels: [trace][debug][info][warning|warn][error][critical][off] (default info)", applyLogLevel},
      {"component-log-level", 0, "string",
       "Comma-separated list of component log levels. For example upstream:debug,config:trace", applyComponentLogLevel},
      {"log-format", 0, "string", "Log message format in spdlog syntax", stringFlag(&Options::log_format)},
      {"log-format-escaped", 0, nullptr, "Escape c-style escape sequences in the application logs",
       switchFlag(&Options::log_format_escaped)},
      {"enable-fine-grain-logging", 0, nullptr, "Enable file level log control (Fine-Grain Logger)",
       switchFlag(&Options::enable_fine_grain_logging)},
      {"log-path", 0, "string", "Path to logfile", stringFlag(&Options::log_path)},
      {"file-flush-interval-msec", 0, "uint32_t", "Interval for log flushing in msec (default 10000)",
       unsignedFlag(&Options::file_flush_interval_msec)},
      {"file-flush-min-size-kb", 0, "uint32_t", "Minimum size of the log buffer before flushing, in KiB (default 64)",
       unsignedFlag(&Options::file_flush_min_size_kb)},
      {"base-id", 0, "uint64_t", "Base ID so that multiple instances can run on the same host if needed",
       unsignedFlag(&Options::base_id)},
      {"use-dynamic-base-id", 0, nullptr,
       "The server chooses a base ID dynamically. May not be used when the restart epoch is non-zero",
       switchFlag(&Options::use_dynamic_base_id)},
      {"base-id-path", 0, "string", "Path to which the base ID is written", stringFlag(&Options::base_id_path)},
      {"restart-epoch", 0, "uint32_t", "Hot restart epoch #", unsignedFlag(&Options::restart_epoch)},
      {"hot-restart-version", 0, nullptr, "Print the hot restart compatibility version and exit",
       switchFlag(&Options::hot_restart_version)},
      {"disable-hot-restart", 0, nullptr, "Disable hot restart functionality",
       switchFlag(&Options::hot_restart_disabled)},
      {"socket-path", 0, "string", "Path to the hot restart socket file", stringFlag(&Options::socket_path)},
      {"socket-mode", 0, "string", "Socket file permission, in octal (default 600)", applySocketMode},
      {"drain-time-s", 0, "uint32_t", "Hot restart and LDS removal drain time in seconds (default 600)",
       unsignedFlag(&Options::drain_time_s)},
      {"drain-strategy", 0, "string", "Drain sequence behaviour, one of 'gradual' (default) or 'immediate'",
       choiceFlag(&Options::drain_strategy,
                  {{"gradual", DrainStrategy::Gradual}, {"immediate", DrainStrategy::Immediate}})},
      {"parent-shutdown-time-s", 0, "uint32_t", "Hot restart parent shutdown time in seconds (default 900)",
       unsignedFlag(&Options::parent_shutdown_time_s)},
      {"service-cluster", 0, "string", "Cluster name", stringFlag(&Options::service_cluster)},
      {"service-node", 0, "string", "Node name", stringFlag(&Options::service_node)},
      {"service-zone", 0, "string", "Zone name", stringFlag(&Options::service_zone)},
      {"admin-address-path", 0, "string", "Admin address path", stringFlag(&Options::admin_address_path)},
      {"local-address-ip-version", 0, "string", "The local IP address version (v4 or v6)",
       choiceFlag(&Options::local_address_ip_version, {{"v4", IpVersion::V4}, {"v6", IpVersion::V6}})},
      {"stats-tag", 0, "string", "A universal tag name:value for all stats; may be repeated", applyStatsTag,
       /*repeatable=*/true},
      {"enable-mutex-tracing", 0, nullptr, "Enable mutex contention tracing functionality",
       switchFlag(&Options::enable_mutex_tracing)},
      {"enable-core-dump", 0, nullptr, "Enable core dumps", switchFlag(&Options::enable_core_dump)},
      {"version", 0, nullptr, "Displays version information and exits", switchFlag(&Options::version)},
      {"help", 'h', nullptr, "Displays usage information and exits", switchFlag(&Options::help)},
  };
  return *table;
}

const Flag* findLong(absl::string_view name) {
  for (const Flag& f : flags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

const Flag* findShort(char c) {
  for (const Flag& f : flags()) {
    if (f.short_name != 0 && f.short_name == c) return &f;
  }
  return nullptr;
}

size_t editDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

absl::Status unknownFlag(const std::string& arg) {
  const absl::string_view name = absl::StripPrefix(absl::string_view(arg).substr(0, arg.find('=')), "--");
  const Flag* best = nullptr;
  size_t best_distance = 3;  // further than this is not a typo
  for (const Flag& f : flags()) {
    const size_t d = editDistance(name, f.name);
    if (d < best_distance) {
      best_distance = d;
      best = &f;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown flag ", quoted(arg), best ? absl::StrCat(" (did you mean \"--", best->name, "\"?)") : ""));
}

std::string displayName(const Flag& f) { return absl::StrCat("--", f.name); }

uint32_t defaultConcurrency(bool cpuset_threads) {
  if (cpuset_threads) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

absl::StatusOr<Options> parseOptions(int argc, const char* const* argv) {
  Options options;
  options.command_line.assign(argv, argv + argc);
  const std::vector<std::string>& args = options.command_line;

  // --help and --version win over everything else, as TCLAP handles them
  // before any other check; --help must work even with a bad command line.
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i] == "--help" || args[i] == "-h") options.help = true;
    if (args[i] == "--version") options.version = true;
  }
  if (options.help || options.version) return options;

  std::set<const Flag*> seen;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    const Flag* flag = nullptr;
    std::string value;
    bool has_inline_value = false;
    if (absl::StartsWith(arg, "--")) {
      const size_t eq = arg.find('=');
      flag = findLong(absl::string_view(arg).substr(2, eq == std::string::npos ? std::string::npos : eq - 2));
      if (eq != std::string::npos) {
        has_inline_value = true;
        value = arg.substr(eq + 1);
      }
    } else if (arg.size() >= 2 && arg[0] == '-') {
      if (arg.size() == 2 || arg[2] == '=') flag = findShort(arg[1]);
      if (arg.size() > 2) {
        has_inline_value = true;
        value = arg.substr(3);
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument ", quoted(arg), " (all arguments are flags)"));
    }
    if (flag == nullptr) return unknownFlag(arg);
    const std::string name = displayName(*flag);
    if (!seen.insert(flag).second && !flag->repeatable) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": given more than once"));
    }
    if (flag->value_name == nullptr) {
      if (has_inline_value) return absl::InvalidArgumentError(absl::StrCat(name, ": takes no value"));
    } else if (!has_inline_value) {
      // The next word is the value even if it starts with '-': --config-yaml may hold a YAML list.
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(name, ": expected a value"));
      value = args[++i];
    }
    if (auto s = flag->apply(options, name, value); !s.ok()) return s;
  }

  if (seen.count(findLong("concurrency")) == 0) options.concurrency = defaultConcurrency(options.cpuset_threads);
  if (options.use_dynamic_base_id && options.restart_epoch > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot use --restart-epoch=", options.restart_epoch, " with --use-dynamic-base-id"));
  }
  if (options.reject_unknown_dynamic_fields && options.ignore_unknown_dynamic_fields) {
    return absl::InvalidArgumentError(
        "cannot set both --reject-unknown-dynamic-fields and --ignore-unknown-dynamic-fields");
  }
  return options;
}

std::string usage() {
  std::string out = "USAGE: courier [options]\n\nWhere:\n";
  for (const Flag& f : flags()) {
    std::string synopsis = f.short_name != 0 ? absl::StrCat("-", std::string(1, f.short_name), ",  ") : "";
    absl::StrAppend(&synopsis, "--", f.name);
    if (f.value_name != nullptr) absl::StrAppend(&synopsis, " <", f.value_name, ">");
    if (f.repeatable) absl::StrAppend(&synopsis, "  (accepted multiple times)");
    absl::StrAppend(&out, "   ", synopsis, "\n     ", f.help, "\n\n");
  }
  return out;
}

}  // namespace courier::server
