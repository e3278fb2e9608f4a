#include "source/common/stats/stats.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>

#include "gtest/gtest.h"

namespace courier::stats {
namespace {

TEST(CounterTest, IncAndAddAccumulate) {
  Counter c("a.b");
  c.inc();
  c.add(41);
  EXPECT_EQ(c.value(), 42u);
  EXPECT_EQ(c.name(), "a.b");
}

TEST(CounterTest, UsedOnlyAfterFirstWrite) {
  Counter c("c");
  EXPECT_FALSE(c.used());
  c.add(0);  // as Envoy: any write marks it used, even of zero
  EXPECT_TRUE(c.used());
}

TEST(CounterTest, ResetGoesBackToZeroButStaysUsed) {
  Counter c("c");
  c.add(5);
  c.reset();
  EXPECT_EQ(c.value(), 0u);
  EXPECT_TRUE(c.used());
}

TEST(CounterTest, ConcurrentIncrementsAreNotLost) {
  Counter c("c");
  constexpr int kPerThread = 100000;
  std::thread a([&] {
    for (int i = 0; i < kPerThread; ++i) c.inc();
  });
  std::thread b([&] {
    for (int i = 0; i < kPerThread; ++i) c.inc();
  });
  a.join();
  b.join();
  EXPECT_EQ(c.value(), 2u * kPerThread);
}

TEST(GaugeTest, SetAddSubIncDec) {
  Gauge g("g");
  EXPECT_FALSE(g.used());
  g.set(10);
  g.add(5);
  g.sub(3);
  g.inc();
  g.dec();
  g.dec();
  EXPECT_EQ(g.value(), 11u);
  EXPECT_TRUE(g.used());
}

TEST(HistogramTest, BucketsKeepTwoSignificantDigits) {
  struct Case {
    uint64_t value;
    double lower;
    double width;
  } cases[] = {
      {0, 0, 0},   {1, 1, 0.1},    {7, 7, 0.1},    {10, 10, 1},    {15, 15, 1},
      {99, 99, 1}, {100, 100, 10}, {123, 120, 10}, {999, 990, 10}, {1234567, 1200000, 100000}};
  for (const Case& c : cases) {
    const uint32_t index = Histogram::bucketIndex(c.value);
    EXPECT_DOUBLE_EQ(Histogram::bucketLower(index), c.lower) << c.value;
    EXPECT_DOUBLE_EQ(Histogram::bucketWidth(index), c.width) << c.value;
  }
  // The largest value still lands in a bucket that contains it.
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const uint32_t top = Histogram::bucketIndex(max);
  EXPECT_LE(Histogram::bucketLower(top), static_cast<double>(max));
  EXPECT_GE(Histogram::bucketLower(top) + Histogram::bucketWidth(top), static_cast<double>(max));
}

TEST(HistogramTest, BucketIndexGrowsWithValue) {
  uint32_t previous = 0;
  for (uint64_t v = 1; v < 100000; v = v * 3 / 2 + 1) {
    const uint32_t index = Histogram::bucketIndex(v);
    EXPECT_GE(index, previous) << v;
    previous = index;
  }
}

TEST(HistogramTest, NoSamplesSaysNoRecordedValues) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  EXPECT_EQ(h.quantileSummary(), "No recorded values");
  h.merge();
  EXPECT_EQ(h.quantileSummary(), "No recorded values");
  EXPECT_FALSE(h.usedSinceMerge());
  EXPECT_TRUE(std::isnan(h.cumulativeStatistics().quantiles[0]));
}

TEST(HistogramTest, SamplesShowOnlyAfterMerge) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  h.recordValue(1);
  EXPECT_TRUE(h.used());
  EXPECT_FALSE(h.usedSinceMerge());
  EXPECT_EQ(h.quantileSummary(), "No recorded values");
  h.merge();
  EXPECT_TRUE(h.usedSinceMerge());
}

// The same numbers Envoy (libcircllhist) prints for one sample of 1.
TEST(HistogramTest, SingleValueQuantilesMatchEnvoy) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  h.recordValue(1);
  h.merge();
  EXPECT_EQ(h.quantileSummary(),
            "P0(1,1) P25(1.025,1.025) P50(1.05,1.05) P75(1.075,1.075) P90(1.09,1.09) "
            "P95(1.095,1.095) P99(1.099,1.099) P99.5(1.0995,1.0995) P99.9(1.0999,1.0999) "
            "P100(1.1,1.1)");
}

TEST(HistogramTest, IntervalCoversOnlySamplesSinceLastMerge) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  h.recordValue(1);
  h.merge();
  h.merge();
  const std::string summary = h.quantileSummary();
  EXPECT_EQ(summary.substr(0, 25), "P0(nan,1) P25(nan,1.025) ");
  h.recordValue(200);
  h.merge();
  EXPECT_EQ(h.intervalStatistics().sample_count, 1u);
  EXPECT_EQ(h.cumulativeStatistics().sample_count, 2u);
  EXPECT_DOUBLE_EQ(h.intervalStatistics().quantiles[0], 200);
  EXPECT_DOUBLE_EQ(h.cumulativeStatistics().quantiles[0], 1);
  EXPECT_DOUBLE_EQ(h.cumulativeStatistics().quantiles[9], 210);
}

TEST(HistogramTest, QuantilesInterpolateAcrossBuckets) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  for (uint64_t v = 1; v <= 100; ++v) h.recordValue(v);
  h.merge();
  const HistogramStatistics s = h.cumulativeStatistics();
  EXPECT_EQ(s.sample_count, 100u);
  EXPECT_DOUBLE_EQ(s.quantiles[0], 1);    // P0: lower edge of the first bucket
  EXPECT_DOUBLE_EQ(s.quantiles[2], 51);   // P50: the 50th sample fills [50,51) exactly
  EXPECT_DOUBLE_EQ(s.quantiles[9], 110);  // P100: upper edge of [100,110)
}

TEST(HistogramTest, ZeroHasItsOwnZeroWidthBucket) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  h.recordValue(0);
  h.recordValue(0);
  h.merge();
  const HistogramStatistics s = h.cumulativeStatistics();
  EXPECT_EQ(s.sample_count, 2u);
  EXPECT_DOUBLE_EQ(s.quantiles[0], 0);
  EXPECT_DOUBLE_EQ(s.quantiles[9], 0);
  EXPECT_DOUBLE_EQ(s.sample_sum, 0);
  EXPECT_EQ(s.bucket_counts[0], 2u);  // le=0.5
}

TEST(HistogramTest, BucketCountsAndApproximateSum) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  h.recordValue(1);     // [1,1.1): not below le=1, below le=5
  h.recordValue(30);    // [30,31): below le=50
  h.recordValue(7000);  // [7000,7100): below le=10000
  h.merge();
  const HistogramStatistics s = h.cumulativeStatistics();
  const auto& bounds = HistogramStatistics::supportedBuckets();
  ASSERT_EQ(bounds[1], 1);
  EXPECT_EQ(s.bucket_counts[0], 0u);   // 0.5
  EXPECT_EQ(s.bucket_counts[1], 0u);   // 1
  EXPECT_EQ(s.bucket_counts[2], 1u);   // 5
  EXPECT_EQ(s.bucket_counts[5], 2u);   // 50
  EXPECT_EQ(s.bucket_counts[11], 2u);  // 5000
  EXPECT_EQ(s.bucket_counts[12], 3u);  // 10000
  EXPECT_EQ(s.sample_count, 3u);
  // Midpoints, as circllhist's hist_approx_sum: 1.05 + 30.5 + 7050.
  EXPECT_DOUBLE_EQ(s.sample_sum, 1.05 + 30.5 + 7050);
}

TEST(HistogramTest, PercentUnitIsScaledBack) {
  Histogram h("h", Histogram::Unit::Percent);
  h.recordValue(Histogram::kPercentScale / 2);  // 50%
  h.merge();
  const HistogramStatistics s = h.cumulativeStatistics();
  EXPECT_DOUBLE_EQ(s.quantiles[0], 0.5);
  EXPECT_EQ(s.bucket_counts[0], 0u);  // 0.5 bucket: [0.5,0.51) is not entirely below 0.5
  EXPECT_EQ(s.bucket_counts[1], 1u);
}

TEST(HistogramTest, CumulativeAndDisjointBucketSummaries) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  h.recordValue(3);
  h.recordValue(20);
  h.merge();
  EXPECT_EQ(h.bucketSummary(false).substr(0, 50),
            "B0.5(0,0) B1(0,0) B5(1,1) B10(1,1) B25(2,2) B50(2,");
  EXPECT_EQ(h.bucketSummary(true).substr(0, 50),
            "B0.5(0,0) B1(0,0) B5(1,1) B10(0,0) B25(1,1) B50(0,");
  // Large bounds print as fmt's {:g} does.
  EXPECT_NE(h.bucketSummary(false).find("B1.8e+06(2,2) B3.6e+06(2,2)"), std::string::npos);
}

TEST(HistogramTest, ConcurrentRecordsAreNotLost) {
  Histogram h("h", Histogram::Unit::Milliseconds);
  constexpr int kPerThread = 50000;
  auto work = [&](uint64_t base) {
    for (int i = 0; i < kPerThread; ++i) h.recordValue(base + static_cast<uint64_t>(i % 1000));
  };
  std::thread a(work, 0);
  std::thread b(work, 1000000);
  a.join();
  b.join();
  h.merge();
  EXPECT_EQ(h.cumulativeStatistics().sample_count, 2u * kPerThread);
}

TEST(FormatDoubleTest, ShortestRoundTrip) {
  EXPECT_EQ(formatDouble(1.0), "1");
  EXPECT_EQ(formatDouble(1.025), "1.025");
  EXPECT_EQ(formatDouble(0.5), "0.5");
  EXPECT_EQ(formatDouble(std::numeric_limits<double>::quiet_NaN()), "nan");
}

}  // namespace
}  // namespace courier::stats
