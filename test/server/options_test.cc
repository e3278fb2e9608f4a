#include "source/server/options.h"

#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace courier::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

absl::StatusOr<Options> parse(std::initializer_list<const char*> flags) {
  std::vector<const char*> argv = {"courier"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return parseOptions(static_cast<int>(argv.size()), argv.data());
}

Options parseOk(std::initializer_list<const char*> flags) {
  auto options = parse(flags);
  EXPECT_TRUE(options.ok()) << options.status();
  return options.ok() ? *options : Options{};
}

std::string parseError(std::initializer_list<const char*> flags) {
  auto options = parse(flags);
  EXPECT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(options.status().message());
}

TEST(OptionsTest, DefaultsMatchEnvoy) {
  const Options o = parseOk({});
  EXPECT_EQ(o.mode, Mode::Serve);
  EXPECT_EQ(o.log_level, "info");
  EXPECT_EQ(o.log_format, "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v");
  EXPECT_EQ(o.drain_time_s, 600u);
  EXPECT_EQ(o.parent_shutdown_time_s, 900u);
  EXPECT_EQ(o.drain_strategy, DrainStrategy::Gradual);
  EXPECT_EQ(o.local_address_ip_version, IpVersion::V4);
  EXPECT_EQ(o.file_flush_interval_msec, 10000u);
  EXPECT_EQ(o.base_id, 0u);
  EXPECT_EQ(o.restart_epoch, 0u);
  EXPECT_FALSE(o.hot_restart_disabled);
  EXPECT_TRUE(o.config_path.empty());
}

TEST(OptionsTest, ConcurrencyDefaultsToHardwareThreads) {
  EXPECT_EQ(parseOk({}).concurrency, std::max(1u, std::thread::hardware_concurrency()));
}

TEST(OptionsTest, KeepsTheOriginalCommandLine) {
  EXPECT_THAT(parseOk({"-c", "a.yaml", "--concurrency=2"}).command_line,
              ElementsAre("courier", "-c", "a.yaml", "--concurrency=2"));
}

TEST(OptionsTest, ValueAsNextArgument) {
  const Options o = parseOk({"--config-path", "/etc/courier.yaml", "--concurrency", "4"});
  EXPECT_EQ(o.config_path, "/etc/courier.yaml");
  EXPECT_EQ(o.concurrency, 4u);
}

TEST(OptionsTest, ValueAfterEqualsSign) {
  const Options o = parseOk({"--config-path=/etc/courier.yaml", "--drain-time-s=5"});
  EXPECT_EQ(o.config_path, "/etc/courier.yaml");
  EXPECT_EQ(o.drain_time_s, 5u);
}

TEST(OptionsTest, EmptyValueAfterEqualsSign) { EXPECT_EQ(parseOk({"--service-zone="}).service_zone, ""); }

TEST(OptionsTest, ShortFlags) {
  const Options o = parseOk({"-c", "x.yaml", "-l", "debug"});
  EXPECT_EQ(o.config_path, "x.yaml");
  EXPECT_EQ(o.log_level, "debug");
}

TEST(OptionsTest, ConfigYamlMayStartWithDash) {
  EXPECT_EQ(parseOk({"--config-yaml", "- not: a flag"}).config_yaml, "- not: a flag");
}

TEST(OptionsTest, EveryStringFlag) {
  const Options o = parseOk({"--service-node", "n", "--service-cluster", "c", "--service-zone", "z",
                             "--admin-address-path", "/tmp/admin", "--log-path", "/tmp/log", "--log-format", "%v",
                             "--base-id-path", "/tmp/id", "--socket-path", "/tmp/sock"});
  EXPECT_EQ(o.service_node, "n");
  EXPECT_EQ(o.service_cluster, "c");
  EXPECT_EQ(o.service_zone, "z");
  EXPECT_EQ(o.admin_address_path, "/tmp/admin");
  EXPECT_EQ(o.log_path, "/tmp/log");
  EXPECT_EQ(o.log_format, "%v");
  EXPECT_EQ(o.base_id_path, "/tmp/id");
  EXPECT_EQ(o.socket_path, "/tmp/sock");
}

TEST(OptionsTest, EveryNumericFlag) {
  const Options o =
      parseOk({"--base-id", "7", "--restart-epoch", "2", "--drain-time-s", "0", "--parent-shutdown-time-s", "30",
               "--file-flush-interval-msec", "1000", "--file-flush-min-size-kb", "8"});
  EXPECT_EQ(o.base_id, 7u);
  EXPECT_EQ(o.restart_epoch, 2u);
  EXPECT_EQ(o.drain_time_s, 0u);
  EXPECT_EQ(o.parent_shutdown_time_s, 30u);
  EXPECT_EQ(o.file_flush_interval_msec, 1000u);
  EXPECT_EQ(o.file_flush_min_size_kb, 8u);
}

TEST(OptionsTest, EverySwitch) {
  const Options o =
      parseOk({"--disable-hot-restart", "--allow-unknown-static-fields", "--reject-unknown-dynamic-fields",
               "--skip-deprecated-logs", "--log-format-escaped", "--enable-fine-grain-logging", "--cpuset-threads",
               "--enable-mutex-tracing", "--enable-core-dump", "--hot-restart-version"});
  EXPECT_TRUE(o.hot_restart_disabled);
  EXPECT_TRUE(o.allow_unknown_static_fields);
  EXPECT_TRUE(o.reject_unknown_dynamic_fields);
  EXPECT_TRUE(o.skip_deprecated_logs);
  EXPECT_TRUE(o.log_format_escaped);
  EXPECT_TRUE(o.enable_fine_grain_logging);
  EXPECT_TRUE(o.cpuset_threads);
  EXPECT_TRUE(o.enable_mutex_tracing);
  EXPECT_TRUE(o.enable_core_dump);
  EXPECT_TRUE(o.hot_restart_version);
}

TEST(OptionsTest, DynamicBaseId) { EXPECT_TRUE(parseOk({"--use-dynamic-base-id"}).use_dynamic_base_id); }

TEST(OptionsTest, Modes) {
  EXPECT_EQ(parseOk({"--mode", "serve"}).mode, Mode::Serve);
  EXPECT_EQ(parseOk({"--mode", "validate"}).mode, Mode::Validate);
  EXPECT_EQ(parseOk({"--mode=init_only"}).mode, Mode::InitOnly);
}

TEST(OptionsTest, DrainStrategies) {
  EXPECT_EQ(parseOk({"--drain-strategy", "immediate"}).drain_strategy, DrainStrategy::Immediate);
  EXPECT_EQ(parseOk({"--drain-strategy", "gradual"}).drain_strategy, DrainStrategy::Gradual);
}

TEST(OptionsTest, LocalAddressIpVersion) {
  EXPECT_EQ(parseOk({"--local-address-ip-version", "v6"}).local_address_ip_version, IpVersion::V6);
}

TEST(OptionsTest, EveryLogLevelIsAccepted) {
  for (const char* level : {"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}) {
    EXPECT_EQ(parseOk({"--log-level", level}).log_level, level);
  }
}

TEST(OptionsTest, ComponentLogLevels) {
  EXPECT_THAT(parseOk({"--component-log-level", "upstream:debug,config:trace"}).component_log_levels,
              ElementsAre(Pair("upstream", "debug"), Pair("config", "trace")));
}

TEST(OptionsTest, StatsTagsMayRepeat) {
  EXPECT_THAT(parseOk({"--stats-tag", "zone:a", "--stats-tag=pod:b-1"}).stats_tags,
              ElementsAre(Pair("zone", "a"), Pair("pod", "b-1")));
}

TEST(OptionsTest, SocketModeIsOctal) { EXPECT_EQ(parseOk({"--socket-mode", "644"}).socket_mode, 0644u); }

TEST(OptionsTest, DisableExtensionsIsACommaList) {
  EXPECT_THAT(parseOk({"--disable-extensions", "envoy.filters.http.fault,envoy.filters.http.cors"}).disabled_extensions,
              ElementsAre("envoy.filters.http.fault", "envoy.filters.http.cors"));
}

TEST(OptionsTest, HelpIsReportedEvenWithBadFlags) {
  EXPECT_TRUE(parseOk({"--bogus", "--help"}).help);
  EXPECT_TRUE(parseOk({"-h"}).help);
}

TEST(OptionsTest, VersionIsReported) { EXPECT_TRUE(parseOk({"--version"}).version); }

TEST(OptionsTest, DoubleDashEndsTheFlags) { EXPECT_EQ(parseOk({"-c", "a", "--", "--bogus", "x"}).config_path, "a"); }

TEST(OptionsTest, UsageListsEveryFlag) {
  const std::string text = usage();
  for (const char* flag : {"-c,  --config-path <string>",
                           "--config-yaml",
                           "--mode",
                           "--concurrency",
                           "-l,  --log-level",
                           "--base-id",
                           "--drain-time-s",
                           "--parent-shutdown-time-s",
                           "--drain-strategy",
                           "--service-node",
                           "--service-cluster",
                           "--service-zone",
                           "--admin-address-path",
                           "--local-address-ip-version",
                           "--log-path",
                           "--log-format",
                           "--component-log-level",
                           "--disable-hot-restart",
                           "--use-dynamic-base-id",
                           "--restart-epoch",
                           "--file-flush-interval-msec",
                           "--version",
                           "--help"}) {
    EXPECT_THAT(text, HasSubstr(flag));
  }
}

// --- Errors -----------------------------------------------------------------

TEST(OptionsErrorTest, NonNumericConcurrency) {
  EXPECT_EQ(parseError({"--concurrency", "x"}), "--concurrency: expected a positive integer, got \"x\"");
}

TEST(OptionsErrorTest, ZeroConcurrency) {
  EXPECT_EQ(parseError({"--concurrency=0"}), "--concurrency: expected a positive integer, got \"0\"");
}

TEST(OptionsErrorTest, NegativeNumber) {
  EXPECT_EQ(parseError({"--drain-time-s", "-1"}), "--drain-time-s: expected a non-negative integer, got \"-1\"");
}

TEST(OptionsErrorTest, NumberOutOfRange) {
  EXPECT_EQ(parseError({"--restart-epoch", "4294967296"}),
            "--restart-epoch: \"4294967296\" is out of range (at most 4294967295)");
}

TEST(OptionsErrorTest, UnknownFlagSuggestsTheClosest) {
  EXPECT_EQ(parseError({"--config-pth", "x"}), "unknown flag \"--config-pth\" (did you mean \"--config-path\"?)");
}

TEST(OptionsErrorTest, UnknownFlagWithoutCloseMatch) {
  EXPECT_EQ(parseError({"--frobnicate"}), "unknown flag \"--frobnicate\"");
}

TEST(OptionsErrorTest, UnknownShortFlag) { EXPECT_EQ(parseError({"-z"}), "unknown flag \"-z\""); }

TEST(OptionsErrorTest, PositionalArgument) {
  EXPECT_EQ(parseError({"config.yaml"}), "unexpected argument \"config.yaml\" (all arguments are flags)");
}

TEST(OptionsErrorTest, MissingValue) { EXPECT_EQ(parseError({"--config-path"}), "--config-path: expected a value"); }

TEST(OptionsErrorTest, ValueForASwitch) {
  EXPECT_EQ(parseError({"--disable-hot-restart=true"}), "--disable-hot-restart: takes no value");
}

TEST(OptionsErrorTest, SingleValuedFlagGivenTwice) {
  EXPECT_EQ(parseError({"-c", "a", "--config-path", "b"}), "--config-path: given more than once");
}

TEST(OptionsErrorTest, BadMode) {
  EXPECT_EQ(parseError({"--mode", "check"}), "--mode: expected one of serve, validate, init_only, got \"check\"");
}

TEST(OptionsErrorTest, BadLogLevel) {
  EXPECT_EQ(parseError({"-l", "verbose"}),
            "--log-level: expected one of trace, debug, info, warning, warn, error, critical, off, got \"verbose\"");
}

TEST(OptionsErrorTest, BadDrainStrategy) {
  EXPECT_EQ(parseError({"--drain-strategy", "fast"}),
            "--drain-strategy: expected one of gradual, immediate, got \"fast\"");
}

TEST(OptionsErrorTest, BadIpVersion) {
  EXPECT_EQ(parseError({"--local-address-ip-version", "v5"}),
            "--local-address-ip-version: expected one of v4, v6, got \"v5\"");
}

TEST(OptionsErrorTest, BadComponentLogLevel) {
  EXPECT_EQ(parseError({"--component-log-level", "upstream=debug"}),
            "--component-log-level: expected <component>:<level>[,<component>:<level>...] "
            "(e.g. upstream:debug,config:trace), got \"upstream=debug\"");
}

TEST(OptionsErrorTest, ComponentLogLevelWithUnknownLevel) {
  EXPECT_THAT(parseError({"--component-log-level", "upstream:loud"}), HasSubstr("got \"upstream:loud\""));
}

TEST(OptionsErrorTest, BadStatsTag) {
  EXPECT_EQ(parseError({"--stats-tag", "zone:a.b"}),
            "--stats-tag: expected <name>:<value> (alphanumeric name, value without '.'), got \"zone:a.b\"");
}

TEST(OptionsErrorTest, RepeatedStatsTagName) {
  EXPECT_EQ(parseError({"--stats-tag", "zone:a", "--stats-tag", "zone:b"}), "--stats-tag: tag \"zone\" given twice");
}

TEST(OptionsErrorTest, BadSocketMode) {
  EXPECT_EQ(parseError({"--socket-mode", "999"}), "--socket-mode: expected an octal file mode (e.g. 600), got \"999\"");
}

TEST(OptionsErrorTest, RestartEpochWithDynamicBaseId) {
  EXPECT_EQ(parseError({"--use-dynamic-base-id", "--restart-epoch", "1"}),
            "cannot use --restart-epoch=1 with --use-dynamic-base-id");
}

TEST(OptionsErrorTest, RejectAndIgnoreUnknownDynamicFields) {
  EXPECT_EQ(parseError({"--reject-unknown-dynamic-fields", "--ignore-unknown-dynamic-fields"}),
            "cannot set both --reject-unknown-dynamic-fields and --ignore-unknown-dynamic-fields");
}

}  // namespace
}  // namespace courier::server
