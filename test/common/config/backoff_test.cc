#include "source/common/config/backoff.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace courier::config {
namespace {

using std::chrono::milliseconds;

// The largest of many draws approaches the ceiling for that attempt.
milliseconds maxOfDraws(JitteredBackOff& backoff, int attempt, int draws) {
  milliseconds most{0};
  for (int i = 0; i < draws; ++i) {
    backoff.reset();
    milliseconds value{0};
    for (int a = 0; a <= attempt; ++a) value = backoff.next();
    most = std::max(most, value);
  }
  return most;
}

TEST(JitteredBackOffTest, CeilingDoublesFromTheBaseUpToTheMaximum) {
  JitteredBackOff backoff(milliseconds(500), milliseconds(30000));
  EXPECT_LT(maxOfDraws(backoff, 0, 200), milliseconds(500));
  EXPECT_GE(maxOfDraws(backoff, 0, 200), milliseconds(400));
  EXPECT_LT(maxOfDraws(backoff, 1, 200), milliseconds(1000));
  EXPECT_GE(maxOfDraws(backoff, 1, 200), milliseconds(800));
  EXPECT_LT(maxOfDraws(backoff, 20, 200), milliseconds(30000));
  EXPECT_GE(maxOfDraws(backoff, 20, 200), milliseconds(24000));
}

TEST(JitteredBackOffTest, ResetStartsFromTheBaseAgain) {
  JitteredBackOff backoff(milliseconds(500), milliseconds(30000));
  for (int i = 0; i < 10; ++i) backoff.next();
  backoff.reset();
  EXPECT_LT(backoff.next(), milliseconds(500));
}

TEST(JitteredBackOffTest, WaitsAreJittered) {
  JitteredBackOff backoff(milliseconds(500), milliseconds(30000));
  milliseconds first = backoff.next();
  bool differs = false;
  for (int i = 0; i < 50 && !differs; ++i) {
    backoff.reset();
    differs = backoff.next() != first;
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace courier::config
