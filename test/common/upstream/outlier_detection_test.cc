#include "source/common/upstream/outlier_detection.h"

#include <chrono>
#include <memory>

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using std::chrono::milliseconds;
using Proto = envoy::config::cluster::v3::OutlierDetection;

class OutlierDetectionTest : public ::testing::Test {
 protected:
  void build(size_t hosts, OutlierDetectionConfig config) {
    auto cluster = testing::makeCluster(hosts);
    cluster->stats = &ClusterStats::of(store_, "c");
    cluster->outlier = std::make_shared<OutlierSink>(std::move(config));
    cluster_ = cluster;
    detector_ = std::make_unique<OutlierDetector>(
        cluster_, main_, store_, [this] { return now_; }, [this] { return draw_; });
  }
  // Runs what workers posted to the main thread.
  void drainPosts() {
    main_.post([this] { main_.exit(); });
    main_.run();
  }
  const Host& host(size_t i) { return *cluster_->hosts[i]; }
  bool ejected(size_t i) { return (host(i).health_flags.load() & health_flag::kFailedOutlierCheck) != 0; }
  uint64_t counter(const std::string& n) { return store_.counter("cluster.c.outlier_detection." + n).value(); }
  uint64_t gauge(const std::string& n) { return store_.gauge("cluster.c.outlier_detection." + n).value(); }
  void report(size_t i, int code, int times) {
    for (int n = 0; n < times; ++n) cluster_->outlier->reportHttpCode(host(i), code);
  }

  event::Dispatcher main_{"main"};
  stats::Store store_;
  std::chrono::steady_clock::time_point now_{};
  uint32_t draw_ = 0;
  ClusterConstSharedPtr cluster_;
  std::unique_ptr<OutlierDetector> detector_;
};

OutlierDetectionConfig consecutiveOnly() {
  OutlierDetectionConfig c;
  c.consecutive_5xx = 3;
  c.max_ejection_percent = 100;
  c.base_ejection_time = milliseconds(1000);
  c.interval = milliseconds(100000);  // runInterval() is called by hand
  return c;
}

TEST_F(OutlierDetectionTest, ConsecutiveFiveHundredsEjectTheHost) {
  build(3, consecutiveOnly());
  report(0, 500, 2);
  drainPosts();
  EXPECT_FALSE(ejected(0));
  report(0, 503, 1);
  drainPosts();
  EXPECT_TRUE(ejected(0));
  EXPECT_EQ(cluster_->unhealthy_hosts.load(), 1u);
  EXPECT_EQ(counter("ejections_enforced_consecutive_5xx"), 1u);
  EXPECT_EQ(counter("ejections_detected_consecutive_5xx"), 1u);
  EXPECT_EQ(counter("ejections_enforced_total"), 1u);
  EXPECT_EQ(gauge("ejections_active"), 1u);
}

TEST_F(OutlierDetectionTest, ASuccessResetsTheConsecutiveCount) {
  build(3, consecutiveOnly());
  report(0, 500, 2);
  report(0, 200, 1);
  report(0, 500, 2);
  drainPosts();
  EXPECT_FALSE(ejected(0));
}

TEST_F(OutlierDetectionTest, EjectionEndsAfterBaseTimeAndBacksOffWhenRepeated) {
  build(3, consecutiveOnly());
  report(0, 500, 3);
  drainPosts();
  ASSERT_TRUE(ejected(0));
  now_ += milliseconds(999);
  detector_->runInterval();
  EXPECT_TRUE(ejected(0));
  now_ += milliseconds(1);
  detector_->runInterval();
  EXPECT_FALSE(ejected(0));
  EXPECT_EQ(gauge("ejections_active"), 0u);
  // Ejected again at once: twice the base time now.
  report(0, 500, 3);
  drainPosts();
  ASSERT_TRUE(ejected(0));
  now_ += milliseconds(1500);
  detector_->runInterval();
  EXPECT_TRUE(ejected(0));
  now_ += milliseconds(500);
  detector_->runInterval();
  EXPECT_FALSE(ejected(0));
}

TEST_F(OutlierDetectionTest, MaxEjectionTimeCapsTheBackOff) {
  auto config = consecutiveOnly();
  config.max_ejection_time = milliseconds(1500);
  build(3, config);
  for (int round = 0; round < 3; ++round) {
    report(0, 500, 3);
    drainPosts();
    ASSERT_TRUE(ejected(0));
    now_ += milliseconds(1500);
    detector_->runInterval();
    EXPECT_FALSE(ejected(0)) << "round " << round;
  }
}

TEST_F(OutlierDetectionTest, MaxEjectionPercentStopsFurtherEjections) {
  auto config = consecutiveOnly();
  config.max_ejection_percent = 30;
  build(4, config);
  report(0, 500, 3);
  report(1, 500, 3);
  drainPosts();
  EXPECT_TRUE(ejected(0));
  EXPECT_TRUE(ejected(1));  // 25% ejected < 30%
  report(2, 500, 3);
  drainPosts();
  EXPECT_FALSE(ejected(2));  // 50% would be too many
  EXPECT_EQ(counter("ejections_overflow"), 1u);
}

TEST_F(OutlierDetectionTest, EnforcingPercentageDecidesWhetherADetectionEjects) {
  auto config = consecutiveOnly();
  config.enforcing_consecutive_5xx = 50;
  build(3, config);
  draw_ = 60;  // above the odds: detected, not enforced
  report(0, 500, 3);
  drainPosts();
  EXPECT_FALSE(ejected(0));
  EXPECT_EQ(counter("ejections_detected_consecutive_5xx"), 1u);
  EXPECT_EQ(counter("ejections_enforced_consecutive_5xx"), 0u);
  draw_ = 10;
  report(0, 500, 3);
  drainPosts();
  EXPECT_TRUE(ejected(0));
}

TEST_F(OutlierDetectionTest, GatewayFailuresCountOnlyGatewayCodes) {
  auto config = consecutiveOnly();
  config.consecutive_5xx = 100;
  config.consecutive_gateway_failure = 2;
  config.enforcing_consecutive_gateway_failure = 100;
  build(3, config);
  report(0, 500, 1);
  report(0, 502, 1);
  report(0, 500, 1);  // breaks the gateway run
  report(0, 504, 1);
  drainPosts();
  EXPECT_FALSE(ejected(0));
  report(0, 503, 1);
  drainPosts();
  EXPECT_TRUE(ejected(0));
  EXPECT_EQ(counter("ejections_enforced_consecutive_gateway_failure"), 1u);
}

TEST_F(OutlierDetectionTest, SplitModeCountsConnectFailuresAsLocalOrigin) {
  auto config = consecutiveOnly();
  config.split_external_local_origin_errors = true;
  config.consecutive_local_origin_failure = 2;
  build(3, config);
  cluster_->outlier->reportLocalOrigin(host(0), LocalOriginEvent::ConnectFailed);
  cluster_->outlier->reportLocalOrigin(host(0), LocalOriginEvent::ConnectSuccess);
  cluster_->outlier->reportLocalOrigin(host(0), LocalOriginEvent::ConnectFailed);
  drainPosts();
  EXPECT_FALSE(ejected(0));
  cluster_->outlier->reportLocalOrigin(host(0), LocalOriginEvent::Timeout);
  drainPosts();
  EXPECT_TRUE(ejected(0));
  EXPECT_EQ(counter("ejections_enforced_consecutive_local_origin_failure"), 1u);
  EXPECT_EQ(host(0).outlier.consecutive_5xx.load(), 0u);
}

TEST_F(OutlierDetectionTest, UnsplitConnectFailuresCountAsGatewayErrors) {
  build(3, consecutiveOnly());
  for (int i = 0; i < 3; ++i) cluster_->outlier->reportLocalOrigin(host(1), LocalOriginEvent::ConnectFailed);
  drainPosts();
  EXPECT_TRUE(ejected(1));
}

TEST_F(OutlierDetectionTest, SuccessRateEjectsTheOutlierAtTheInterval) {
  OutlierDetectionConfig config;
  config.consecutive_5xx = 0;
  config.max_ejection_percent = 100;
  build(5, config);
  for (size_t i = 0; i < 5; ++i) report(i, 200, 100);
  report(3, 500, 100);  // host 3: 50% success, the others 100%
  detector_->runInterval();
  EXPECT_TRUE(ejected(3));
  for (size_t i : {0, 1, 2, 4}) EXPECT_FALSE(ejected(i));
  EXPECT_EQ(counter("ejections_enforced_success_rate"), 1u);
  EXPECT_DOUBLE_EQ(detector_->successRate(host(3)), 50.0);
  EXPECT_DOUBLE_EQ(detector_->successRate(host(0)), 100.0);
}

TEST_F(OutlierDetectionTest, SuccessRateNeedsEnoughHostsWithEnoughRequests) {
  OutlierDetectionConfig config;
  config.consecutive_5xx = 0;
  config.max_ejection_percent = 100;
  build(5, config);
  for (size_t i = 0; i < 5; ++i) report(i, 200, 99);  // below request_volume 100
  report(3, 500, 50);
  detector_->runInterval();
  // Host 3 has 149 requests but the other four are below the volume.
  EXPECT_FALSE(ejected(3));
  EXPECT_EQ(detector_->successRate(host(0)), -1);
}

TEST_F(OutlierDetectionTest, FailurePercentageEjectsWhenEnforced) {
  OutlierDetectionConfig config;
  config.consecutive_5xx = 0;
  config.enforcing_success_rate = 0;
  config.enforcing_failure_percentage = 100;
  config.failure_percentage_threshold = 50;
  config.max_ejection_percent = 100;
  build(5, config);
  for (size_t i = 0; i < 5; ++i) report(i, 200, 50);
  report(2, 500, 60);  // 60/110 failed
  detector_->runInterval();
  EXPECT_TRUE(ejected(2));
  EXPECT_EQ(counter("ejections_enforced_failure_percentage"), 1u);
  EXPECT_EQ(counter("ejections_enforced_success_rate"), 0u);
}

TEST_F(OutlierDetectionTest, PassingActiveHealthCheckReturnsTheHost) {
  build(3, consecutiveOnly());
  report(0, 500, 3);
  drainPosts();
  ASSERT_TRUE(ejected(0));
  detector_->onActiveHealthCheckSuccess(host(0));
  EXPECT_FALSE(ejected(0));
}

TEST_F(OutlierDetectionTest, CrossingsPostedAfterTheDetectorWentAreIgnored) {
  build(3, consecutiveOnly());
  report(0, 500, 3);
  detector_.reset();
  drainPosts();
  EXPECT_FALSE(ejected(0));
}

TEST(OutlierDetectionConfigTest, DefaultsAreEnvoys) {
  auto c = parseOutlierDetection(Proto(), "od");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->consecutive_5xx, 5u);
  EXPECT_EQ(c->interval, milliseconds(10000));
  EXPECT_EQ(c->base_ejection_time, milliseconds(30000));
  EXPECT_EQ(c->max_ejection_time, milliseconds(300000));
  EXPECT_EQ(c->max_ejection_percent, 10u);
  EXPECT_EQ(c->enforcing_consecutive_gateway_failure, 0u);
  EXPECT_EQ(c->success_rate_stdev_factor, 1900u);
  EXPECT_EQ(c->failure_percentage_threshold, 85u);
}

TEST(OutlierDetectionConfigTest, BadPercentNamesTheField) {
  Proto p;
  p.mutable_enforcing_consecutive_5xx()->set_value(101);
  auto c = parseOutlierDetection(p, "clusters[0].outlier_detection");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[0].outlier_detection.enforcing_consecutive_5xx"), std::string::npos)
      << c.status();
}

TEST(OutlierDetectionConfigTest, MaxEjectionTimeBelowBaseIsRejected) {
  Proto p;
  p.mutable_base_ejection_time()->set_seconds(10);
  p.mutable_max_ejection_time()->set_seconds(5);
  auto c = parseOutlierDetection(p, "od");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("od.max_ejection_time"), std::string::npos);
}

}  // namespace
}  // namespace courier::upstream
