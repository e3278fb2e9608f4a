#include "source/common/config/path_subscription.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gtest/gtest.h"
#include "source/common/event/dispatcher.h"
#include "source/common/protobuf/yaml_loader.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"
#include "test/common/config/file_test_util.h"

namespace courier::config {
namespace {

using testing::makeTempDir;
using testing::runUntil;
using testing::writeAtomically;
using testing::writeInPlace;

// Records every call, and answers onConfigUpdate with `reply`.
class RecordingCallbacks : public SubscriptionCallbacks {
 public:
  struct Update {
    std::vector<std::string> names;
    // Per resource.
    std::vector<std::string> versions;
    std::string version;
  };

  absl::Status onConfigUpdate(const std::vector<DecodedResource>& resources, const std::string& version_info) override {
    Update u;
    u.version = version_info;
    for (const DecodedResource& r : resources) {
      u.names.push_back(r.name);
      u.versions.push_back(r.version);
      // Every resource arrives decoded.
      EXPECT_NE(r.resource, nullptr);
    }
    updates.push_back(std::move(u));
    return reply;
  }
  absl::Status onConfigUpdate(const std::vector<DecodedResource>&, const std::vector<std::string>&,
                              const std::string&) override {
    ADD_FAILURE() << "a file source delivers state of the world only";
    return absl::OkStatus();
  }
  void onConfigUpdateFailed(UpdateFailureReason reason, const absl::Status& error) override {
    failures.emplace_back(reason, error);
  }

  std::vector<Update> updates;
  std::vector<std::pair<UpdateFailureReason, absl::Status>> failures;
  absl::Status reply = absl::OkStatus();
};

std::string clusters(const std::string& version, const std::vector<std::string>& names) {
  std::string out = absl::StrCat("version_info: \"", version, "\"\nresources:\n");
  for (const std::string& n : names) {
    absl::StrAppend(&out, "- \"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n  name: ", n, "\n");
  }
  return out;
}

class PathSubscriptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir();
    path_ = dir_ + "/cds.yaml";
  }

  std::unique_ptr<PathSubscription> subscribe(const std::string& path, const std::string& watched_directory = "",
                                              const std::string& type = type_url::kCluster) {
    auto sub = PathSubscription::create(dispatcher_, path, watched_directory, type, callbacks_);
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? std::move(*sub) : nullptr;
  }

  // Starts on a good two-cluster file, then replaces it with `bad` and waits
  // for the rejection.
  absl::Status rejectAfterGoodStart(const std::string& bad) {
    writeAtomically(path_, clusters("1", {"a", "b"}));
    sub_ = subscribe(path_);
    sub_->start({});
    EXPECT_EQ(callbacks_.updates.size(), 1u);
    writeAtomically(path_, bad);
    EXPECT_TRUE(runUntil(dispatcher_, [&] { return !callbacks_.failures.empty(); }));
    // Nothing from the bad file reached the subscriber.
    EXPECT_EQ(callbacks_.updates.size(), 1u);
    EXPECT_EQ(sub_->stats().update_rejected, 1u);
    if (callbacks_.failures.empty()) return absl::OkStatus();
    EXPECT_EQ(callbacks_.failures[0].first, UpdateFailureReason::UpdateRejected);
    return callbacks_.failures[0].second;
  }

  // After a rejection, a good file still gets through: the watch survived.
  void expectRecovers() {
    writeAtomically(path_, clusters("3", {"c"}));
    ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 2; }));
    EXPECT_EQ(callbacks_.updates[1].version, "3");
    EXPECT_EQ(callbacks_.updates[1].names, std::vector<std::string>{"c"});
  }

  event::Dispatcher dispatcher_{"test"};
  RecordingCallbacks callbacks_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<PathSubscription> sub_;
};

TEST_F(PathSubscriptionTest, StartDeliversEveryResourceWithTheFileVersion) {
  writeInPlace(path_, clusters("v1", {"a", "b"}));
  auto sub = subscribe(path_);
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(callbacks_.updates[0].version, "v1");
  EXPECT_EQ(callbacks_.updates[0].names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(callbacks_.updates[0].versions, (std::vector<std::string>{"v1", "v1"}));
  EXPECT_TRUE(callbacks_.failures.empty());
}

TEST_F(PathSubscriptionTest, ResourceWrappersAreUnwrappedWithTheirNameAndVersion) {
  writeInPlace(path_, R"(version_info: w1
resources:
- "@type": type.googleapis.com/envoy.service.discovery.v3.Resource
  name: wrapped-name
  version: r7
  resource:
    "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
    name: inner
- "@type": type.googleapis.com/envoy.service.discovery.v3.Resource
  resource:
    "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
    name: second
)");
  auto sub = subscribe(path_);
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u)
      << (callbacks_.failures.empty() ? "" : callbacks_.failures[0].second.ToString());
  EXPECT_EQ(callbacks_.updates[0].version, "w1");
  EXPECT_EQ(callbacks_.updates[0].names, (std::vector<std::string>{"wrapped-name", "second"}));
  EXPECT_EQ(callbacks_.updates[0].versions, (std::vector<std::string>{"r7", "w1"}));
}

TEST_F(PathSubscriptionTest, WrappedResourceOfAnotherTypeRejectsTheFile) {
  const absl::Status error = rejectAfterGoodStart(R"(resources:
- "@type": type.googleapis.com/envoy.service.discovery.v3.Resource
  resource:
    "@type": type.googleapis.com/envoy.config.listener.v3.Listener
    name: l
)");
  EXPECT_NE(
      error.message().find("resources[0]: resource of type type.googleapis.com/envoy.config.listener.v3.Listener"),
      std::string::npos)
      << error;
  expectRecovers();
}

TEST_F(PathSubscriptionTest, FileWithoutVersionDeliversAnEmptyVersion) {
  writeInPlace(path_, "resources:\n- \"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n  name: a\n");
  auto sub = subscribe(path_);
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(callbacks_.updates[0].version, "");
}

TEST_F(PathSubscriptionTest, JsonFileLoads) {
  const std::string path = dir_ + "/cds.json";
  writeInPlace(path, R"({"version_info": "j1", "resources": [
      {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "a"}]})");
  auto sub = subscribe(path);
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(callbacks_.updates[0].version, "j1");
  EXPECT_EQ(callbacks_.updates[0].names, std::vector<std::string>{"a"});
}

TEST_F(PathSubscriptionTest, ClusterLoadAssignmentsAreNamedByClusterName) {
  const std::string path = dir_ + "/eds.yaml";
  writeInPlace(path, R"(version_info: e1
resources:
- "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
  cluster_name: backend
)");
  auto sub = subscribe(path, "", type_url::kClusterLoadAssignment);
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(callbacks_.updates[0].names, std::vector<std::string>{"backend"});
}

TEST_F(PathSubscriptionTest, AtomicRenameReloadsTheNewContents) {
  writeAtomically(path_, clusters("1", {"a"}));
  auto sub = subscribe(path_);
  sub->start({});
  writeAtomically(path_, clusters("2", {"a", "b"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 2; }));
  EXPECT_EQ(callbacks_.updates[1].version, "2");
  EXPECT_EQ(callbacks_.updates[1].names, (std::vector<std::string>{"a", "b"}));
}

TEST_F(PathSubscriptionTest, InPlaceWriteReloads) {
  writeInPlace(path_, clusters("1", {"a"}));
  auto sub = subscribe(path_);
  sub->start({});
  writeInPlace(path_, clusters("2", {"b"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 2; }));
  EXPECT_EQ(callbacks_.updates[1].version, "2");
  EXPECT_EQ(callbacks_.updates[1].names, std::vector<std::string>{"b"});
}

TEST_F(PathSubscriptionTest, YamlSyntaxErrorRejectsTheWholeFile) {
  const absl::Status error = rejectAfterGoodStart(clusters("2", {"x"}) + "  : [unclosed\n");
  EXPECT_NE(error.message().find("cds.yaml"), std::string::npos) << error;
  expectRecovers();
}

TEST_F(PathSubscriptionTest, UnknownFieldRejectsTheWholeFileNamingTheField) {
  const absl::Status error = rejectAfterGoodStart(clusters("2", {"x"}) + "  no_such_field: 1\n");
  EXPECT_NE(error.message().find("no_such_field"), std::string::npos) << error;
  EXPECT_NE(error.message().find("cds.yaml:5:"), std::string::npos) << error;
  expectRecovers();
}

TEST_F(PathSubscriptionTest, UnknownAtTypeRejectsTheWholeFile) {
  const absl::Status error = rejectAfterGoodStart(
      "version_info: \"2\"\nresources:\n- \"@type\": type.googleapis.com/envoy.config.cluster.v3.Clusterr\n  "
      "name: x\n");
  EXPECT_NE(error.message().find("Clusterr"), std::string::npos) << error;
  expectRecovers();
}

TEST_F(PathSubscriptionTest, ResourceOfAnotherTypeRejectsTheFileNamingIndexAndType) {
  const absl::Status error = rejectAfterGoodStart(clusters("2", {"x"}) +
                                                  "- \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n"
                                                  "  name: l\n");
  EXPECT_NE(error.message().find("resources[1]"), std::string::npos) << error;
  EXPECT_NE(error.message().find("envoy.config.listener.v3.Listener"), std::string::npos) << error;
  EXPECT_NE(error.message().find("cds.yaml:5:"), std::string::npos) << error;
  expectRecovers();
}

TEST_F(PathSubscriptionTest, DuplicateResourceNameRejectsTheFile) {
  const absl::Status error = rejectAfterGoodStart(clusters("2", {"x", "y", "x"}));
  EXPECT_NE(error.message().find("resources[2]: duplicate resource name 'x' (also resources[0])"), std::string::npos)
      << error;
  expectRecovers();
}

TEST_F(PathSubscriptionTest, ResourceWithoutNameRejectsTheFile) {
  const absl::Status error = rejectAfterGoodStart(
      "resources:\n- \"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n  connect_timeout: 1s\n");
  EXPECT_NE(error.message().find("resources[0]: resource has no name"), std::string::npos) << error;
  expectRecovers();
}

TEST_F(PathSubscriptionTest, RejectionIsLoggedAsAWarningNamingFileAndReason) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  spdlog::default_logger()->sinks().push_back(sink);
  const absl::Status error = rejectAfterGoodStart(clusters("2", {"x"}) + "  no_such_field: 1\n");
  spdlog::default_logger()->sinks().pop_back();
  bool logged = false;
  for (const spdlog::details::log_msg_buffer& m : sink->last_raw()) {
    const std::string text(m.payload.data(), m.payload.size());
    if (m.level == spdlog::level::warn && text.find(path_ + ":5:") != std::string::npos &&
        text.find("no_such_field") != std::string::npos) {
      logged = true;
    }
  }
  EXPECT_TRUE(logged);
}

TEST_F(PathSubscriptionTest, TextProtoFileLoads) {
  const std::string path = dir_ + "/cds.pb_text";
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name("t");
  envoy::service::discovery::v3::DiscoveryResponse response;
  response.set_version_info("t1");
  response.add_resources()->PackFrom(cluster);
  writeInPlace(path, response.DebugString());
  auto sub = subscribe(path);
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(callbacks_.updates[0].version, "t1");
  EXPECT_EQ(callbacks_.updates[0].names, std::vector<std::string>{"t"});
}

TEST_F(PathSubscriptionTest, CallbackRefusalIsLoggedAndLaterFilesStillLoad) {
  writeAtomically(path_, clusters("1", {"a"}));
  auto sub = subscribe(path_);
  callbacks_.reply = absl::InvalidArgumentError("cluster a: bad");
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(sub->stats().update_rejected, 1u);
  callbacks_.reply = absl::OkStatus();
  writeAtomically(path_, clusters("2", {"b"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 2; }));
  EXPECT_EQ(callbacks_.updates[1].version, "2");
  EXPECT_EQ(sub->stats().update_success, 1u);
  // The refusal is the subscriber's own answer, not a source failure.
  EXPECT_TRUE(callbacks_.failures.empty());
}

TEST_F(PathSubscriptionTest, UnchangedContentsAreNotDeliveredAgain) {
  writeAtomically(path_, clusters("1", {"a"}));
  auto sub = subscribe(path_);
  sub->start({});
  writeInPlace(path_, clusters("1", {"a"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return sub->stats().update_attempt == 2; }));
  EXPECT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(sub->stats().update_success, 2u);
}

TEST_F(PathSubscriptionTest, NamedInterestDeliversOnlyThoseResources) {
  writeInPlace(path_, clusters("1", {"a", "b", "c"}));
  auto sub = subscribe(path_);
  sub->start({"c", "a", "absent"});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(callbacks_.updates[0].names, (std::vector<std::string>{"a", "c"}));
}

TEST_F(PathSubscriptionTest, NewInterestRedeliversTheCurrentFile) {
  writeInPlace(path_, clusters("1", {"a", "b"}));
  auto sub = subscribe(path_);
  sub->start({"a"});
  sub->updateResourceInterest({"b"});
  ASSERT_EQ(callbacks_.updates.size(), 2u);
  EXPECT_EQ(callbacks_.updates[1].names, std::vector<std::string>{"b"});
  EXPECT_EQ(callbacks_.updates[1].version, "1");
}

TEST_F(PathSubscriptionTest, MissingFileAtStartFailsThenLoadsWhenItAppears) {
  auto sub = subscribe(path_);
  sub->start({});
  ASSERT_EQ(callbacks_.failures.size(), 1u);
  EXPECT_EQ(callbacks_.failures[0].first, UpdateFailureReason::ConnectionFailure);
  EXPECT_NE(callbacks_.failures[0].second.message().find(path_), std::string::npos) << callbacks_.failures[0].second;
  EXPECT_TRUE(callbacks_.updates.empty());
  writeAtomically(path_, clusters("1", {"a"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 1; }));
  EXPECT_EQ(callbacks_.updates[0].names, std::vector<std::string>{"a"});
}

envoy::config::core::v3::ConfigSource configSource(const std::string& yaml);

TEST_F(PathSubscriptionTest, WithInitialFetchTimeoutAMissingFileIsWaitedForUntilItAppears) {
  auto made = PathSubscription::create(dispatcher_, path_, "", type_url::kCluster, callbacks_,
                                       std::chrono::milliseconds(10000));
  ASSERT_TRUE(made.ok()) << made.status();
  (*made)->start({});
  // Warming: neither an update nor a failure yet.
  EXPECT_TRUE(callbacks_.failures.empty());
  EXPECT_TRUE(callbacks_.updates.empty());
  writeAtomically(path_, clusters("1", {"a"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 1; }));
  EXPECT_EQ(callbacks_.updates[0].names, std::vector<std::string>{"a"});
  EXPECT_TRUE(callbacks_.failures.empty());
}

TEST_F(PathSubscriptionTest, WithInitialFetchTimeoutAMissingFileTimesOutThenStillLoadsLater) {
  auto made = PathSubscription::create(dispatcher_, path_, "", type_url::kCluster, callbacks_,
                                       std::chrono::milliseconds(50));
  ASSERT_TRUE(made.ok()) << made.status();
  (*made)->start({});
  EXPECT_TRUE(callbacks_.failures.empty());
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return !callbacks_.failures.empty(); }));
  ASSERT_EQ(callbacks_.failures.size(), 1u);
  EXPECT_EQ(callbacks_.failures[0].first, UpdateFailureReason::FetchTimedOut);
  EXPECT_NE(callbacks_.failures[0].second.message().find("initial_fetch_timeout"), std::string::npos)
      << callbacks_.failures[0].second;
  EXPECT_TRUE(callbacks_.updates.empty());
  writeAtomically(path_, clusters("1", {"a"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 1; }));
  EXPECT_EQ(callbacks_.failures.size(), 1u);
}

TEST_F(PathSubscriptionTest, WithInitialFetchTimeoutAPresentFileLoadsAtOnceAndTheTimerNeverFires) {
  writeAtomically(path_, clusters("1", {"a"}));
  auto made = PathSubscription::create(dispatcher_, path_, "", type_url::kCluster, callbacks_,
                                       std::chrono::milliseconds(20));
  ASSERT_TRUE(made.ok()) << made.status();
  (*made)->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  // Long past the timeout: no FetchTimedOut after a delivered first fetch.
  int ticks = 0;
  auto tick = dispatcher_.createTimer([&] { ++ticks; });
  tick->enable(std::chrono::milliseconds(100));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return ticks > 0; }));
  EXPECT_TRUE(callbacks_.failures.empty());
}

TEST_F(PathSubscriptionTest, WithInitialFetchTimeoutABadFileIsRejectedAtOnce) {
  writeInPlace(path_, "resources: 3\n");
  auto made = PathSubscription::create(dispatcher_, path_, "", type_url::kCluster, callbacks_,
                                       std::chrono::milliseconds(10000));
  ASSERT_TRUE(made.ok()) << made.status();
  (*made)->start({});
  ASSERT_EQ(callbacks_.failures.size(), 1u);
  EXPECT_EQ(callbacks_.failures[0].first, UpdateFailureReason::UpdateRejected);
}

TEST_F(PathSubscriptionTest, ConfigSourceInitialFetchTimeoutIsHonouredAndANegativeOneNamesTheField) {
  auto sub = subscriptionFromConfigSource(
      configSource("{path_config_source: {path: " + path_ + "}, initial_fetch_timeout: 0.05s}"),
      "dynamic_resources.cds_config", dispatcher_, type_url::kCluster, callbacks_);
  ASSERT_TRUE(sub.ok()) << sub.status();
  (*sub)->start({});
  EXPECT_TRUE(callbacks_.failures.empty());
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return !callbacks_.failures.empty(); }));
  EXPECT_EQ(callbacks_.failures[0].first, UpdateFailureReason::FetchTimedOut);

  auto negative = subscriptionFromConfigSource(
      configSource("{path_config_source: {path: " + path_ + "}, initial_fetch_timeout: -1s}"),
      "dynamic_resources.cds_config", dispatcher_, type_url::kCluster, callbacks_);
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("dynamic_resources.cds_config.initial_fetch_timeout"), std::string::npos)
      << negative.status();
}

TEST_F(PathSubscriptionTest, BadFileAtStartIsRejected) {
  writeInPlace(path_, "resources: 3\n");
  auto sub = subscribe(path_);
  sub->start({});
  ASSERT_EQ(callbacks_.failures.size(), 1u);
  EXPECT_EQ(callbacks_.failures[0].first, UpdateFailureReason::UpdateRejected);
  EXPECT_TRUE(callbacks_.updates.empty());
}

TEST_F(PathSubscriptionTest, ChangesBeforeStartAreNotDelivered) {
  writeAtomically(path_, clusters("1", {"a"}));
  auto sub = subscribe(path_);
  writeAtomically(path_, clusters("2", {"a"}));
  // Let the watcher see the rename; the subscriber has not asked yet.
  int marker = 0;
  auto watcher = FileWatcher::create(dispatcher_);
  ASSERT_TRUE(watcher.ok());
  ASSERT_TRUE((*watcher)->watchFile(dir_ + "/marker", [&] { ++marker; }).ok());
  writeInPlace(dir_ + "/marker", "x");
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return marker > 0; }));
  EXPECT_TRUE(callbacks_.updates.empty());
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  EXPECT_EQ(callbacks_.updates[0].version, "2");
}

// A Kubernetes ConfigMap mount: the file is a symlink through `..data`, which
// the kubelet swaps with a rename; the file's own path never sees an event.
TEST_F(PathSubscriptionTest, WatchedDirectoryReloadsOnARenameIntoIt) {
  ASSERT_EQ(mkdir((dir_ + "/..v1").c_str(), 0755), 0);
  writeInPlace(dir_ + "/..v1/cds.yaml", clusters("1", {"a"}));
  ASSERT_EQ(symlink("..v1", (dir_ + "/..data").c_str()), 0);
  ASSERT_EQ(symlink("..data/cds.yaml", path_.c_str()), 0);
  auto sub = subscribe(path_, dir_);
  sub->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);

  ASSERT_EQ(mkdir((dir_ + "/..v2").c_str(), 0755), 0);
  writeInPlace(dir_ + "/..v2/cds.yaml", clusters("2", {"b"}));
  ASSERT_EQ(symlink("..v2", (dir_ + "/..data_tmp").c_str()), 0);
  ASSERT_EQ(std::rename((dir_ + "/..data_tmp").c_str(), (dir_ + "/..data").c_str()), 0);
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 2; }));
  EXPECT_EQ(callbacks_.updates[1].version, "2");
  EXPECT_EQ(callbacks_.updates[1].names, std::vector<std::string>{"b"});
}

TEST_F(PathSubscriptionTest, MissingDirectoryFailsCreation) {
  auto sub = PathSubscription::create(dispatcher_, dir_ + "/nope/cds.yaml", "", type_url::kCluster, callbacks_);
  EXPECT_FALSE(sub.ok());
}

TEST_F(PathSubscriptionTest, UnknownTypeUrlFailsCreation) {
  writeInPlace(path_, clusters("1", {"a"}));
  auto sub = PathSubscription::create(dispatcher_, path_, "", "type.googleapis.com/no.such.Type", callbacks_);
  ASSERT_FALSE(sub.ok());
  EXPECT_NE(sub.status().message().find("no.such.Type"), std::string::npos) << sub.status();
}

// ConfigSource -> subscription.

envoy::config::core::v3::ConfigSource configSource(const std::string& yaml) {
  envoy::config::core::v3::ConfigSource source;
  const absl::Status loaded = protobuf::loadFromYamlString(yaml, source);
  EXPECT_TRUE(loaded.ok()) << loaded;
  return source;
}

TEST_F(PathSubscriptionTest, ConfigSourcePathConfigSourceWatchesThePath) {
  writeAtomically(path_, clusters("1", {"a"}));
  auto sub = subscriptionFromConfigSource(configSource("path_config_source: {path: " + path_ + "}"),
                                          "dynamic_resources.cds_config", dispatcher_, type_url::kCluster, callbacks_);
  ASSERT_TRUE(sub.ok()) << sub.status();
  (*sub)->start({});
  writeAtomically(path_, clusters("2", {"a"}));
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 2; }));
}

TEST_F(PathSubscriptionTest, ConfigSourceWatchedDirectoryWatchesTheDirectory) {
  writeAtomically(path_, clusters("1", {"a"}));
  const std::string watched = dir_ + "/watched";
  ASSERT_EQ(mkdir(watched.c_str(), 0755), 0);
  auto sub = subscriptionFromConfigSource(
      configSource("path_config_source: {path: " + path_ + ", watched_directory: {path: " + watched + "}}"),
      "dynamic_resources.cds_config", dispatcher_, type_url::kCluster, callbacks_);
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto* path_sub = dynamic_cast<PathSubscription*>(sub->get());
  ASSERT_NE(path_sub, nullptr);
  EXPECT_EQ(path_sub->watchedDirectory(), watched);
  (*sub)->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  // The new file is read when something is renamed into the watched directory.
  writeAtomically(path_, clusters("2", {"b"}));
  writeAtomically(watched + "/trigger", "x");
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return callbacks_.updates.size() == 2; }));
  EXPECT_EQ(callbacks_.updates[1].version, "2");
}

TEST_F(PathSubscriptionTest, ConfigSourceDeprecatedPathStillWorks) {
  writeAtomically(path_, clusters("1", {"a"}));
  auto sub = subscriptionFromConfigSource(configSource("path: " + path_), "dynamic_resources.cds_config", dispatcher_,
                                          type_url::kCluster, callbacks_);
  ASSERT_TRUE(sub.ok()) << sub.status();
  (*sub)->start({});
  ASSERT_EQ(callbacks_.updates.size(), 1u);
}

TEST_F(PathSubscriptionTest, ConfigSourceOtherSpecifiersAreRejectedNamingTheField) {
  auto ads = subscriptionFromConfigSource(configSource("ads: {}"), "dynamic_resources.lds_config", dispatcher_,
                                          type_url::kListener, callbacks_);
  ASSERT_FALSE(ads.ok());
  EXPECT_EQ(ads.status().message(), "dynamic_resources.lds_config.ads: only path_config_source is supported here");
  auto api = subscriptionFromConfigSource(configSource("api_config_source: {api_type: GRPC}"),
                                          "dynamic_resources.lds_config", dispatcher_, type_url::kListener, callbacks_);
  ASSERT_FALSE(api.ok());
  EXPECT_EQ(api.status().message(),
            "dynamic_resources.lds_config.api_config_source: only path_config_source is supported here");
  auto none = subscriptionFromConfigSource(configSource("{}"), "dynamic_resources.lds_config", dispatcher_,
                                           type_url::kListener, callbacks_);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("dynamic_resources.lds_config: no config source"), std::string::npos);
}

TEST_F(PathSubscriptionTest, ConfigSourceEmptyPathIsRejected) {
  auto sub = subscriptionFromConfigSource(configSource("path_config_source: {}"), "x.cds_config", dispatcher_,
                                          type_url::kCluster, callbacks_);
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.status().message(), "x.cds_config.path_config_source.path: must not be empty");
}

TEST_F(PathSubscriptionTest, ConfigSourceMissingDirectoryNamesTheField) {
  auto sub = subscriptionFromConfigSource(configSource("path_config_source: {path: " + dir_ + "/nope/cds.yaml}"),
                                          "x.cds_config", dispatcher_, type_url::kCluster, callbacks_);
  ASSERT_FALSE(sub.ok());
  EXPECT_NE(sub.status().message().find("x.cds_config: cannot watch directory"), std::string::npos) << sub.status();
}

}  // namespace
}  // namespace courier::config
