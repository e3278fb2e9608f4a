#include "source/common/config/grpc_mux.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "test/common/config/fake_ads_server.h"

namespace courier::config {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using test::FakeAdsServer;

constexpr auto kWait = FakeAdsServer::kWait;

google::protobuf::Any clusterAny(const std::string& name) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name(name);
  google::protobuf::Any any;
  any.PackFrom(cluster);
  return any;
}

google::protobuf::Any assignmentAny(const std::string& name) {
  envoy::config::endpoint::v3::ClusterLoadAssignment assignment;
  assignment.set_cluster_name(name);
  google::protobuf::Any any;
  any.PackFrom(assignment);
  return any;
}

DiscoveryResponse sotwResponse(const std::string& type_url, const std::string& version, const std::string& nonce,
                               std::vector<google::protobuf::Any> resources) {
  DiscoveryResponse response;
  response.set_type_url(type_url);
  response.set_version_info(version);
  response.set_nonce(nonce);
  for (auto& any : resources) *response.add_resources() = std::move(any);
  return response;
}

std::vector<std::string> names(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

// Records what a subscriber is told, from the dispatcher thread, for the test
// thread to wait on. Refuses updates while `reject_with` is set.
class RecordingCallbacks : public SubscriptionCallbacks {
 public:
  struct Update {
    std::vector<std::string> names;
    std::vector<std::string> versions;
    // Each resource's message as delivered ("<none>" if missing).
    std::vector<std::string> bodies;
    std::vector<std::string> removed;
    std::string version;
  };

  explicit RecordingCallbacks(std::thread::id dispatcher_thread) : dispatcher_thread_(dispatcher_thread) {}

  absl::Status onConfigUpdate(const std::vector<DecodedResource>& resources, const std::string& version) override {
    return record(resources, {}, version);
  }
  absl::Status onConfigUpdate(const std::vector<DecodedResource>& added, const std::vector<std::string>& removed,
                              const std::string& version) override {
    return record(added, removed, version);
  }
  void onConfigUpdateFailed(UpdateFailureReason reason, const absl::Status& error) override {
    std::lock_guard<std::mutex> lock(mu_);
    wrong_thread_ |= std::this_thread::get_id() != dispatcher_thread_;
    failures_.emplace_back(reason, std::string(error.message()));
    cv_.notify_all();
  }

  // Runs on the dispatcher thread after each update is recorded.
  void setAfterUpdate(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    after_update_ = std::move(hook);
  }
  void rejectWith(const std::string& message) {
    std::lock_guard<std::mutex> lock(mu_);
    reject_with_ = message;
  }
  bool waitUpdates(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return updates_.size() >= n; });
  }
  bool waitFailures(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return failures_.size() >= n; });
  }
  Update update(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_.at(i);
  }
  size_t updateCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_.size();
  }
  size_t failureCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_.size();
  }
  std::pair<UpdateFailureReason, std::string> failure(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_.at(i);
  }
  bool wrongThread() {
    std::lock_guard<std::mutex> lock(mu_);
    return wrong_thread_;
  }

 private:
  absl::Status record(const std::vector<DecodedResource>& resources, const std::vector<std::string>& removed,
                      const std::string& version) {
    absl::Status result = recordLocked(resources, removed, version);
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hook = after_update_;
    }
    if (hook) hook();
    return result;
  }

  absl::Status recordLocked(const std::vector<DecodedResource>& resources, const std::vector<std::string>& removed,
                            const std::string& version) {
    std::lock_guard<std::mutex> lock(mu_);
    wrong_thread_ |= std::this_thread::get_id() != dispatcher_thread_;
    Update update;
    for (const auto& resource : resources) {
      update.names.push_back(resource.name);
      update.versions.push_back(resource.version);
      update.bodies.push_back(resource.resource == nullptr ? "<none>" : resource.resource->SerializeAsString());
    }
    update.removed = removed;
    update.version = version;
    updates_.push_back(std::move(update));
    cv_.notify_all();
    return reject_with_.empty() ? absl::OkStatus() : absl::InvalidArgumentError(reject_with_);
  }

  const std::thread::id dispatcher_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Update> updates_;
  std::vector<std::pair<UpdateFailureReason, std::string>> failures_;
  std::string reject_with_;
  std::function<void()> after_update_;
  bool wrong_thread_ = false;
};

class GrpcMuxTest : public ::testing::Test {
 protected:
  GrpcMuxTest() : dispatcher_("main") {
    thread_ = std::thread([this] { dispatcher_.run(); });
    dispatcher_thread_ = thread_.get_id();
  }

  ~GrpcMuxTest() override {
    // The mux must shut down promptly even with a live stream.
    onDispatcher([this] {
      subscriptions_.clear();
      mux_.reset();
    });
    for (auto& callbacks : callbacks_) EXPECT_FALSE(callbacks->wrongThread());
    dispatcher_.exit();
    thread_.join();
  }

  // Runs fn on the dispatcher thread and waits (bounded) for it to finish.
  void onDispatcher(std::function<void()> fn) {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    dispatcher_.post([fn = std::move(fn), done] {
      fn();
      done->set_value();
    });
    ASSERT_EQ(future.wait_for(kWait), std::future_status::ready);
  }

  void createMux(AdsProtocol protocol, bool node_first_only = false, std::string target = "",
                 std::vector<std::pair<std::string, std::string>> metadata = {}) {
    GrpcMuxOptions options;
    options.initial_metadata = std::move(metadata);
    options.target_uri = target.empty() ? server_.address() : target;
    options.protocol = protocol;
    options.node.set_id("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local");
    options.node.set_cluster("reviews");
    options.set_node_on_first_message_only = node_first_only;
    // Short, so reconnect tests finish quickly; still jittered.
    options.backoff_base = std::chrono::milliseconds(10);
    options.backoff_max = std::chrono::milliseconds(50);
    onDispatcher([&] { mux_ = std::make_unique<GrpcMux>(dispatcher_, options); });
  }

  RecordingCallbacks& subscribe(const std::string& type_url, absl::flat_hash_set<std::string> names) {
    callbacks_.push_back(std::make_unique<RecordingCallbacks>(dispatcher_thread_));
    RecordingCallbacks& callbacks = *callbacks_.back();
    onDispatcher([&] { subscriptions_.push_back(mux_->subscribe(type_url, names, callbacks)); });
    return callbacks;
  }

  void start() {
    onDispatcher([this] { mux_->start(); });
  }

  FakeAdsServer server_;
  event::Dispatcher dispatcher_;
  std::thread thread_;
  std::thread::id dispatcher_thread_;
  std::vector<std::unique_ptr<RecordingCallbacks>> callbacks_;
  std::unique_ptr<GrpcMux> mux_;
  std::vector<std::unique_ptr<Subscription>> subscriptions_;
};

TEST_F(GrpcMuxTest, FirstRequestCarriesNodeTypeAndNames) {
  createMux(AdsProtocol::kStateOfTheWorld);
  subscribe(type_url::kClusterLoadAssignment, {"reviews", "details"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(names(request.resource_names()), (std::vector<std::string>{"details", "reviews"}));
  EXPECT_EQ(request.version_info(), "");
  EXPECT_EQ(request.response_nonce(), "");
  EXPECT_FALSE(request.has_error_detail());
  EXPECT_EQ(request.node().id(), "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local");
  EXPECT_EQ(request.node().cluster(), "reviews");
  EXPECT_EQ(request.node().user_agent_name(), "envoy");
  EXPECT_TRUE(request.node().has_user_agent_build_version());
  EXPECT_EQ(request.node().user_agent_build_version().version().minor_number(), 1u);
}

TEST_F(GrpcMuxTest, StreamCarriesTheConfiguredInitialMetadata) {
  createMux(AdsProtocol::kStateOfTheWorld, false, "", {{"x-tenant", "blue"}});
  subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  EXPECT_EQ(server_.clientMetadata(0, "x-tenant"), "blue");
}

TEST_F(GrpcMuxTest, WildcardSubscriptionAsksForNoNamesAndGetsEverything) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  EXPECT_EQ(request.resource_names_size(), 0);
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "1", "n1", {clusterAny("a"), clusterAny("b")})));
  ASSERT_TRUE(callbacks.waitUpdates(1));
  EXPECT_EQ(callbacks.update(0).names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(callbacks.update(0).version, "1");
}

TEST_F(GrpcMuxTest, AckCarriesVersionAndNonce) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "nonce-1", {clusterAny("a")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_EQ(callbacks.updateCount(), 1u);
  EXPECT_EQ(request.type_url(), type_url::kCluster);
  EXPECT_EQ(request.version_info(), "v1");
  EXPECT_EQ(request.response_nonce(), "nonce-1");
  EXPECT_FALSE(request.has_error_detail());
  // Without set_node_on_first_message_only every request names the node.
  EXPECT_EQ(request.node().id(), "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local");
}

TEST_F(GrpcMuxTest, NodeOnlyOnFirstMessageWhenAsked) {
  createMux(AdsProtocol::kStateOfTheWorld, /*node_first_only=*/true);
  subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  EXPECT_TRUE(request.has_node());
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "nonce-1", {clusterAny("a")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_FALSE(request.has_node());
}

TEST_F(GrpcMuxTest, NodeIsSentAgainOnTheFirstMessageOfANewStream) {
  createMux(AdsProtocol::kStateOfTheWorld, /*node_first_only=*/true);
  auto& callbacks = subscribe(type_url::kCluster, {});
  subscribe(type_url::kListener, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_FALSE(request.has_node());
  server_.closeStream(0);
  ASSERT_TRUE(callbacks.waitFailures(1));
  ASSERT_TRUE(server_.waitSotwRequest(1, 0, &request));
  EXPECT_TRUE(request.has_node());
  ASSERT_TRUE(server_.waitSotwRequest(1, 1, &request));
  EXPECT_FALSE(request.has_node());
}

TEST_F(GrpcMuxTest, DroppingTheLastNamedSubscriptionAsksForNothing) {
  createMux(AdsProtocol::kStateOfTheWorld);
  subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  onDispatcher([this] { subscriptions_.clear(); });
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(request.resource_names_size(), 0);
}

TEST_F(GrpcMuxTest, NackCarriesPreviousVersionAndTheSubscribersReason) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "nonce-1", {clusterAny("a")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));

  callbacks.rejectWith("clusters[0].lb_policy: unknown policy");
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v2", "nonce-2", {clusterAny("b")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 2, &request));
  EXPECT_EQ(request.version_info(), "v1");
  EXPECT_EQ(request.response_nonce(), "nonce-2");
  ASSERT_TRUE(request.has_error_detail());
  EXPECT_EQ(request.error_detail().code(), 13);
  EXPECT_EQ(request.error_detail().message(), "clusters[0].lb_policy: unknown policy");

  // The next good update is ACKed again, without the old error.
  callbacks.rejectWith("");
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v3", "nonce-3", {clusterAny("c")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 3, &request));
  EXPECT_EQ(request.version_info(), "v3");
  EXPECT_FALSE(request.has_error_detail());
  // The refusal was the subscriber's own answer: it is not told it again.
  EXPECT_EQ(callbacks.failureCount(), 0u);
}

TEST_F(GrpcMuxTest, ResourceOfTheWrongTypeIsNackedWithoutReachingTheSubscriber) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  ASSERT_TRUE(
      server_.send(0, sotwResponse(type_url::kCluster, "v1", "nonce-1", {clusterAny("a"), assignmentAny("a")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_EQ(request.version_info(), "");
  EXPECT_EQ(request.response_nonce(), "nonce-1");
  ASSERT_TRUE(request.has_error_detail());
  EXPECT_EQ(request.error_detail().code(), 13);
  EXPECT_NE(request.error_detail().message().find("resources[1]"), std::string::npos)
      << request.error_detail().message();
  EXPECT_NE(request.error_detail().message().find("ClusterLoadAssignment"), std::string::npos);
  EXPECT_EQ(callbacks.updateCount(), 0u);
  ASSERT_TRUE(callbacks.waitFailures(1));
  EXPECT_EQ(callbacks.failure(0).first, UpdateFailureReason::UpdateRejected);
}

TEST_F(GrpcMuxTest, UndecodableResourceIsNacked) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  google::protobuf::Any garbage;
  garbage.set_type_url(type_url::kCluster);
  garbage.set_value("\xff\xff\xff");
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "nonce-1", {garbage})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  ASSERT_TRUE(request.has_error_detail());
  EXPECT_NE(request.error_detail().message().find("resources[0]"), std::string::npos);
  EXPECT_EQ(callbacks.updateCount(), 0u);
}

TEST_F(GrpcMuxTest, EachSubscriptionGetsOnlyTheNamesItAskedFor) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& reviews = subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  auto& details = subscribe(type_url::kClusterLoadAssignment, {"details"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  EXPECT_EQ(names(request.resource_names()), (std::vector<std::string>{"details", "reviews"}));
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kClusterLoadAssignment, "1", "n1",
                                           {assignmentAny("reviews"), assignmentAny("details")})));
  ASSERT_TRUE(reviews.waitUpdates(1));
  ASSERT_TRUE(details.waitUpdates(1));
  EXPECT_EQ(reviews.update(0).names, (std::vector<std::string>{"reviews"}));
  EXPECT_EQ(details.update(0).names, (std::vector<std::string>{"details"}));
}

TEST_F(GrpcMuxTest, AResponseCarryingOnlyOthersResourcesIsNotDeliveredToANamedSubscription) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& reviews = subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  auto& details = subscribe(type_url::kClusterLoadAssignment, {"details"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  // RDS/EDS responses need not repeat every resource: details is not told
  // anything (it would take an empty update for "no endpoints").
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kClusterLoadAssignment, "1", "n1", {assignmentAny("reviews")})));
  ASSERT_TRUE(reviews.waitUpdates(1));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));  // the ACK: the response was handled
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kClusterLoadAssignment, "2", "n2", {assignmentAny("details")})));
  ASSERT_TRUE(details.waitUpdates(1));
  EXPECT_EQ(details.update(0).version, "2");
  EXPECT_EQ(reviews.update(0).version, "1");
  EXPECT_EQ(reviews.updateCount(), 1u);
}

TEST_F(GrpcMuxTest, ChangedInterestIsRequestedWithTheFullList) {
  createMux(AdsProtocol::kStateOfTheWorld);
  subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  onDispatcher([this] { subscriptions_[0]->updateResourceInterest({"reviews", "ratings"}); });
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_EQ(names(request.resource_names()), (std::vector<std::string>{"ratings", "reviews"}));
}

TEST_F(GrpcMuxTest, ReconnectsAfterTheServerClosesTheStreamAndAsksAgain) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& callbacks = subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  ASSERT_TRUE(
      server_.send(0, sotwResponse(type_url::kClusterLoadAssignment, "v1", "nonce-1", {assignmentAny("reviews")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));

  server_.closeStream(0);
  ASSERT_TRUE(callbacks.waitFailures(1));
  EXPECT_EQ(callbacks.failure(0).first, UpdateFailureReason::ConnectionFailure);
  ASSERT_TRUE(server_.waitSotwRequest(1, 0, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(names(request.resource_names()), (std::vector<std::string>{"reviews"}));
  EXPECT_EQ(request.version_info(), "v1");
  // A nonce belongs to the stream that carried it.
  EXPECT_EQ(request.response_nonce(), "");
  EXPECT_TRUE(request.has_node());
  // The subscriber kept what it had: no update was synthesised.
  EXPECT_EQ(callbacks.updateCount(), 1u);
}

TEST_F(GrpcMuxTest, UnreachableServerIsRetriedAndShutdownDoesNotHang) {
  // A port nothing listens on: take one from a server that is then gone.
  std::string target;
  {
    FakeAdsServer gone;
    target = gone.address();
  }
  createMux(AdsProtocol::kStateOfTheWorld, false, target);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  // Two failures: the first attempt and at least one retry after back-off.
  ASSERT_TRUE(callbacks.waitFailures(2));
  EXPECT_EQ(callbacks.failure(0).first, UpdateFailureReason::ConnectionFailure);
  EXPECT_EQ(callbacks.updateCount(), 0u);
}

TEST_F(GrpcMuxTest, PausedTypeIsRequestedOnlyAfterResume) {
  createMux(AdsProtocol::kStateOfTheWorld);
  onDispatcher([this] { mux_->pause(type_url::kClusterLoadAssignment); });
  subscribe(type_url::kCluster, {});
  subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  EXPECT_EQ(request.type_url(), type_url::kCluster);
  // The stream is ordered: had EDS gone out, it would precede this ACK.
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "nonce-1", {clusterAny("reviews")})));
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_EQ(request.type_url(), type_url::kCluster);
  EXPECT_EQ(server_.requestCount(0), 2u);

  onDispatcher([this] { mux_->resume(type_url::kClusterLoadAssignment); });
  ASSERT_TRUE(server_.waitSotwRequest(0, 2, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(names(request.resource_names()), (std::vector<std::string>{"reviews"}));
}

TEST_F(GrpcMuxTest, AckOfAPausedTypeWaitsForResume) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& clusters = subscribe(type_url::kCluster, {});
  auto& endpoints = subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  onDispatcher([this] { mux_->pause(type_url::kClusterLoadAssignment); });
  ASSERT_TRUE(
      server_.send(0, sotwResponse(type_url::kClusterLoadAssignment, "e1", "n-e1", {assignmentAny("reviews")})));
  ASSERT_TRUE(endpoints.waitUpdates(1));
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "c1", "n-c1", {clusterAny("reviews")})));
  ASSERT_TRUE(clusters.waitUpdates(1));
  ASSERT_TRUE(server_.waitSotwRequest(0, 2, &request));
  EXPECT_EQ(request.type_url(), type_url::kCluster);
  onDispatcher([this] { mux_->resume(type_url::kClusterLoadAssignment); });
  ASSERT_TRUE(server_.waitSotwRequest(0, 3, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(request.version_info(), "e1");
  EXPECT_EQ(request.response_nonce(), "n-e1");
}

TEST_F(GrpcMuxTest, SubscriptionOutlivingTheMuxGoesInert) {
  createMux(AdsProtocol::kStateOfTheWorld);
  subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  onDispatcher([this] {
    mux_.reset();
    subscriptions_[0]->updateResourceInterest({"a"});
    subscriptions_.clear();
  });
  // The stream was cancelled with the mux, not left open.
  EXPECT_TRUE(server_.waitStreamClosed(0));
}

TEST_F(GrpcMuxTest, SubscriberMayDropItselfAndOthersDuringAnUpdate) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& first = subscribe(type_url::kCluster, {});
  auto& second = subscribe(type_url::kCluster, {});
  // The first subscriber's update ends both subscriptions, as a cluster
  // manager tearing down might.
  first.setAfterUpdate([this] { subscriptions_.clear(); });
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "nonce-1", {clusterAny("a")})));
  ASSERT_TRUE(first.waitUpdates(1));
  // Still ACKed, and the dropped second subscriber was not called.
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_EQ(request.version_info(), "v1");
  EXPECT_EQ(second.updateCount(), 0u);
}

// Delta xDS.

DeltaDiscoveryResponse deltaResponse(const std::string& type_url, const std::string& nonce,
                                     std::vector<std::pair<google::protobuf::Any, std::string>> resources,
                                     std::vector<std::string> removed = {}) {
  DeltaDiscoveryResponse response;
  response.set_type_url(type_url);
  response.set_nonce(nonce);
  response.set_system_version_info("sys-" + nonce);
  for (auto& [any, version] : resources) {
    auto* resource = response.add_resources();
    envoy::config::cluster::v3::Cluster cluster;
    envoy::config::endpoint::v3::ClusterLoadAssignment assignment;
    if (any.UnpackTo(&cluster)) {
      resource->set_name(cluster.name());
    } else if (any.UnpackTo(&assignment)) {
      resource->set_name(assignment.cluster_name());
    }
    resource->set_version(version);
    *resource->mutable_resource() = any;
  }
  for (auto& name : removed) response.add_removed_resources(name);
  return response;
}

// One decoded message serves the last watch that wants it and the others get
// copies: every watch must see the whole resource, whatever the order.
class GrpcMuxSharingTest : public GrpcMuxTest {
 protected:
  void deliverToThreeWatches(AdsProtocol protocol) {
    createMux(protocol);
    auto& named = subscribe(type_url::kClusterLoadAssignment, {"reviews"});
    auto& wildcard = subscribe(type_url::kClusterLoadAssignment, {});
    auto& named_again = subscribe(type_url::kClusterLoadAssignment, {"reviews"});
    start();
    const google::protobuf::Any reviews = assignmentAny("reviews");
    const google::protobuf::Any details = assignmentAny("details");
    if (protocol == AdsProtocol::kDelta) {
      DeltaDiscoveryRequest request;
      ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
      ASSERT_TRUE(
          server_.send(0, deltaResponse(type_url::kClusterLoadAssignment, "n1", {{reviews, "1"}, {details, "1"}})));
    } else {
      DiscoveryRequest request;
      ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
      ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kClusterLoadAssignment, "1", "n1", {reviews, details})));
    }
    ASSERT_TRUE(named.waitUpdates(1));
    ASSERT_TRUE(wildcard.waitUpdates(1));
    ASSERT_TRUE(named_again.waitUpdates(1));
    EXPECT_EQ(named.update(0).bodies, (std::vector<std::string>{reviews.value()}));
    EXPECT_EQ(named_again.update(0).bodies, (std::vector<std::string>{reviews.value()}));
    EXPECT_EQ(wildcard.update(0).bodies, (std::vector<std::string>{reviews.value(), details.value()}));
  }
};

TEST_F(GrpcMuxSharingTest, StateOfTheWorldWatchesSharingAResourceEachGetTheWholeMessage) {
  deliverToThreeWatches(AdsProtocol::kStateOfTheWorld);
}

TEST_F(GrpcMuxSharingTest, DeltaWatchesSharingAResourceEachGetTheWholeMessage) {
  deliverToThreeWatches(AdsProtocol::kDelta);
}

TEST_F(GrpcMuxTest, DeltaFirstRequestSubscribesNames) {
  createMux(AdsProtocol::kDelta);
  subscribe(type_url::kClusterLoadAssignment, {"reviews", "details"});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(names(request.resource_names_subscribe()), (std::vector<std::string>{"details", "reviews"}));
  EXPECT_EQ(request.resource_names_unsubscribe_size(), 0);
  EXPECT_EQ(request.initial_resource_versions_size(), 0);
  EXPECT_EQ(request.response_nonce(), "");
  EXPECT_EQ(request.node().id(), "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local");
  EXPECT_EQ(request.node().user_agent_name(), "envoy");
}

TEST_F(GrpcMuxTest, DeltaWildcardSubscribesNothingExplicitly) {
  createMux(AdsProtocol::kDelta);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  EXPECT_EQ(request.resource_names_subscribe_size(), 0);
  ASSERT_TRUE(
      server_.send(0, deltaResponse(type_url::kCluster, "n1", {{clusterAny("a"), "1"}, {clusterAny("b"), "2"}})));
  ASSERT_TRUE(callbacks.waitUpdates(1));
  EXPECT_EQ(callbacks.update(0).names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(callbacks.update(0).versions, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(callbacks.update(0).version, "sys-n1");
}

TEST_F(GrpcMuxTest, DeltaAckCarriesNonceAndRemovalsReachTheSubscriber) {
  createMux(AdsProtocol::kDelta);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kCluster, "n1", {{clusterAny("a"), "1"}})));
  ASSERT_TRUE(server_.waitDeltaRequest(0, 1, &request));
  EXPECT_EQ(request.response_nonce(), "n1");
  EXPECT_FALSE(request.has_error_detail());
  EXPECT_EQ(request.resource_names_subscribe_size(), 0);

  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kCluster, "n2", {}, {"a"})));
  ASSERT_TRUE(callbacks.waitUpdates(2));
  EXPECT_TRUE(callbacks.update(1).names.empty());
  EXPECT_EQ(callbacks.update(1).removed, (std::vector<std::string>{"a"}));
  ASSERT_TRUE(server_.waitDeltaRequest(0, 2, &request));
  EXPECT_EQ(request.response_nonce(), "n2");
}

TEST_F(GrpcMuxTest, DeltaNackCarriesErrorDetail) {
  createMux(AdsProtocol::kDelta);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  callbacks.rejectWith("cluster a: no endpoints");
  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kCluster, "n1", {{clusterAny("a"), "1"}})));
  ASSERT_TRUE(server_.waitDeltaRequest(0, 1, &request));
  EXPECT_EQ(request.response_nonce(), "n1");
  ASSERT_TRUE(request.has_error_detail());
  EXPECT_EQ(request.error_detail().code(), 13);
  EXPECT_EQ(request.error_detail().message(), "cluster a: no endpoints");

  // A refused resource is not one we hold: a reconnect must not claim it.
  server_.closeStream(0);
  ASSERT_TRUE(server_.waitDeltaRequest(1, 0, &request));
  EXPECT_EQ(request.initial_resource_versions_size(), 0);
}

TEST_F(GrpcMuxTest, DeltaWrongTypeIsNackedNamingTheResource) {
  createMux(AdsProtocol::kDelta);
  auto& callbacks = subscribe(type_url::kCluster, {});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kCluster, "n1", {{assignmentAny("odd"), "1"}})));
  ASSERT_TRUE(server_.waitDeltaRequest(0, 1, &request));
  ASSERT_TRUE(request.has_error_detail());
  EXPECT_NE(request.error_detail().message().find("'odd'"), std::string::npos) << request.error_detail().message();
  EXPECT_EQ(callbacks.updateCount(), 0u);
}

TEST_F(GrpcMuxTest, DeltaReconnectSendsTheVersionsItHolds) {
  createMux(AdsProtocol::kDelta);
  auto& callbacks = subscribe(type_url::kClusterLoadAssignment, {"reviews", "details"});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kClusterLoadAssignment, "n1",
                                            {{assignmentAny("reviews"), "r1"}, {assignmentAny("details"), "d1"}})));
  ASSERT_TRUE(server_.waitDeltaRequest(0, 1, &request));
  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kClusterLoadAssignment, "n2", {}, {"details"})));
  ASSERT_TRUE(server_.waitDeltaRequest(0, 2, &request));

  server_.closeStream(0);
  ASSERT_TRUE(callbacks.waitFailures(1));
  EXPECT_EQ(callbacks.failure(0).first, UpdateFailureReason::ConnectionFailure);
  ASSERT_TRUE(server_.waitDeltaRequest(1, 0, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(names(request.resource_names_subscribe()), (std::vector<std::string>{"details", "reviews"}));
  ASSERT_EQ(request.initial_resource_versions_size(), 1);
  EXPECT_EQ(request.initial_resource_versions().at("reviews"), "r1");
  EXPECT_EQ(request.response_nonce(), "");
  EXPECT_TRUE(request.has_node());
}

TEST_F(GrpcMuxTest, DeltaInterestChangesAreSentAsSubscribeAndUnsubscribe) {
  createMux(AdsProtocol::kDelta);
  subscribe(type_url::kClusterLoadAssignment, {"reviews", "details"});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  onDispatcher([this] { subscriptions_[0]->updateResourceInterest({"reviews", "ratings"}); });
  ASSERT_TRUE(server_.waitDeltaRequest(0, 1, &request));
  EXPECT_EQ(names(request.resource_names_subscribe()), (std::vector<std::string>{"ratings"}));
  EXPECT_EQ(names(request.resource_names_unsubscribe()), (std::vector<std::string>{"details"}));
}

TEST_F(GrpcMuxTest, DeltaNamedInterestBesideALegacyWildcardKeepsTheWildcard) {
  createMux(AdsProtocol::kDelta);
  subscribe(type_url::kCluster, {});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  EXPECT_EQ(request.resource_names_subscribe_size(), 0);
  subscribe(type_url::kCluster, {"reviews"});
  ASSERT_TRUE(server_.waitDeltaRequest(0, 1, &request));
  EXPECT_EQ(names(request.resource_names_subscribe()), (std::vector<std::string>{"*", "reviews"}));
}

TEST_F(GrpcMuxTest, DeltaPausedTypeIsRequestedOnlyAfterResume) {
  createMux(AdsProtocol::kDelta);
  onDispatcher([this] { mux_->pause(type_url::kClusterLoadAssignment); });
  subscribe(type_url::kCluster, {});
  subscribe(type_url::kClusterLoadAssignment, {"reviews"});
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  EXPECT_EQ(request.type_url(), type_url::kCluster);
  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kCluster, "n1", {{clusterAny("reviews"), "1"}})));
  ASSERT_TRUE(server_.waitDeltaRequest(0, 1, &request));
  EXPECT_EQ(request.type_url(), type_url::kCluster);
  onDispatcher([this] { mux_->resume(type_url::kClusterLoadAssignment); });
  ASSERT_TRUE(server_.waitDeltaRequest(0, 2, &request));
  EXPECT_EQ(request.type_url(), type_url::kClusterLoadAssignment);
  EXPECT_EQ(names(request.resource_names_subscribe()), (std::vector<std::string>{"reviews"}));
}

}  // namespace
}  // namespace courier::config

namespace courier::config {
namespace {

bool waitUntil(const std::function<bool()>& cond) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

// Subscriptions made with subscription(): the server's warming path.
class GrpcMuxWarmingTest : public GrpcMuxTest {
 protected:
  RecordingCallbacks& lazy(const std::string& type_url, std::chrono::milliseconds timeout) {
    callbacks_.push_back(std::make_unique<RecordingCallbacks>(dispatcher_thread_));
    RecordingCallbacks& callbacks = *callbacks_.back();
    onDispatcher([&] { subscriptions_.push_back(mux_->subscription(type_url, callbacks, timeout)); });
    return callbacks;
  }
  void startSubscription(size_t i) {
    onDispatcher([this, i] { subscriptions_.at(i)->start({}); });
  }
};

TEST_F(GrpcMuxWarmingTest, LazySubscriptionAsksNothingBeforeStart) {
  createMux(AdsProtocol::kStateOfTheWorld);
  lazy(type_url::kCluster, std::chrono::milliseconds(0));
  lazy(type_url::kListener, std::chrono::milliseconds(0));
  startSubscription(0);
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  EXPECT_EQ(request.type_url(), type_url::kCluster);
  startSubscription(1);
  ASSERT_TRUE(server_.waitSotwRequest(0, 1, &request));
  EXPECT_EQ(request.type_url(), type_url::kListener);
}

TEST_F(GrpcMuxWarmingTest, InitialFetchTimeoutReportsFetchTimedOut) {
  createMux(AdsProtocol::kStateOfTheWorld);
  auto& callbacks = lazy(type_url::kCluster, std::chrono::milliseconds(50));
  startSubscription(0);
  start();
  ASSERT_TRUE(callbacks.waitFailures(1));
  EXPECT_EQ(callbacks.failure(0).first, UpdateFailureReason::FetchTimedOut);
  // Late resources still apply.
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "n1", {clusterAny("a")})));
  EXPECT_TRUE(callbacks.waitUpdates(1));
}

TEST_F(GrpcMuxWarmingTest, AnswerBeforeTheTimeoutCancelsIt) {
  createMux(AdsProtocol::kDelta);
  auto& callbacks = lazy(type_url::kCluster, std::chrono::milliseconds(300));
  startSubscription(0);
  start();
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(server_.waitDeltaRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, deltaResponse(type_url::kCluster, "n1", {{clusterAny("a"), "1"}})));
  ASSERT_TRUE(callbacks.waitUpdates(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // past the timeout, to see it not fire
  EXPECT_EQ(callbacks.failureCount(), 0u);
}

TEST_F(GrpcMuxWarmingTest, StreamFailureDuringInitialFetchIsLeftToTheTimeout) {
  std::string target;
  {
    FakeAdsServer gone;
    target = gone.address();
  }
  createMux(AdsProtocol::kStateOfTheWorld, false, target);
  auto& callbacks = lazy(type_url::kCluster, std::chrono::milliseconds(200));
  startSubscription(0);
  start();
  ASSERT_TRUE(callbacks.waitFailures(1));
  // Several reconnections failed by now (10-50ms back-off); only the timeout reported.
  EXPECT_EQ(callbacks.failure(0).first, UpdateFailureReason::FetchTimedOut);
  // After it, failures are reported as they happen.
  ASSERT_TRUE(callbacks.waitFailures(2));
  EXPECT_EQ(callbacks.failure(1).first, UpdateFailureReason::ConnectionFailure);
}

TEST_F(GrpcMuxTest, ConnectionStateFollowsTheStream) {
  std::atomic<int> state{-1};
  std::atomic<int> downs{0};
  GrpcMuxOptions options;
  options.target_uri = server_.address();
  options.on_connection_state = [&state, &downs](bool up) {
    state = up ? 1 : 0;
    if (!up) ++downs;
  };
  options.backoff_base = std::chrono::milliseconds(10);
  options.backoff_max = std::chrono::milliseconds(50);
  onDispatcher([&] { mux_ = std::make_unique<GrpcMux>(dispatcher_, options); });
  subscribe(type_url::kCluster, {});
  start();
  DiscoveryRequest request;
  ASSERT_TRUE(server_.waitSotwRequest(0, 0, &request));
  ASSERT_TRUE(server_.send(0, sotwResponse(type_url::kCluster, "v1", "n1", {clusterAny("a")})));
  ASSERT_TRUE(waitUntil([&] { return state == 1; }));
  server_.closeStream(0);
  ASSERT_TRUE(waitUntil([&] { return downs == 1; }));
  // Up again on the next stream.
  ASSERT_TRUE(server_.waitSotwRequest(1, 0, &request));
  ASSERT_TRUE(server_.send(1, sotwResponse(type_url::kCluster, "v1", "n2", {clusterAny("a")})));
  ASSERT_TRUE(waitUntil([&] { return state == 1; }));
  onDispatcher([this] { mux_.reset(); });
}

}  // namespace
}  // namespace courier::config
