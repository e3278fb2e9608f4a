// Shared helpers for load-balancer tests: clusters of fake hosts and
// distribution checks over many picks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/common/common/random.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/load_balancer.h"

namespace courier::upstream::testing {

// Balancers seed their generators from the thread's, so distribution tests
// would see fresh numbers each run and fail now and then by chance (a 0.1%
// critical value over hundreds of checks). Each test starts the thread's
// generator from a seed of its own name instead: the same draws every run.
class SeedThreadRandomPerTest : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo& info) override {
    threadRandom().seed(std::hash<std::string>()(std::string(info.test_suite_name()) + "." + info.name()));
  }
};
inline const bool kThreadRandomSeededPerTest = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new SeedThreadRandomPerTest);
  return true;
}();

// Hosts 10.<i/256>.<i%256>.1:80 with the given weights.
inline std::shared_ptr<Cluster> makeCluster(const std::vector<uint32_t>& weights) {
  auto cluster = std::make_shared<Cluster>();
  cluster->name = "c";
  for (size_t i = 0; i < weights.size(); ++i) {
    auto host = std::make_shared<Host>();
    host->address = *network::Address::fromIpPort(absl::StrCat("10.", (i >> 8) & 255, ".", i & 255, ".", i >> 16),
                                                   80);
    host->weight = weights[i];
    cluster->hosts.push_back(std::move(host));
  }
  return cluster;
}

inline std::shared_ptr<Cluster> makeCluster(size_t n) { return makeCluster(std::vector<uint32_t>(n, 1)); }

inline size_t indexOf(const Cluster& cluster, const Host* host) {
  for (size_t i = 0; i < cluster.hosts.size(); ++i) {
    if (cluster.hosts[i].get() == host) return i;
  }
  return SIZE_MAX;
}

// Pick counts per host index.
inline std::vector<uint64_t> countPicks(LoadBalancer& lb, const Cluster& cluster, uint64_t picks,
                                        const LoadBalancerContext* context = nullptr) {
  std::vector<uint64_t> counts(cluster.hosts.size(), 0);
  for (uint64_t i = 0; i < picks; ++i) ++counts[indexOf(cluster, lb.chooseHost(context))];
  return counts;
}

// Pearson's chi-squared statistic of counts against weights.
inline double chiSquared(const std::vector<uint64_t>& counts, const std::vector<uint32_t>& weights) {
  uint64_t total = 0, weight_sum = 0;
  for (auto c : counts) total += c;
  for (auto w : weights) weight_sum += w;
  double chi = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double expected = double(total) * weights[i] / weight_sum;
    chi += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi;
}

// Chi-squared critical values at p = 0.001 by degrees of freedom.
inline double chiSquaredCritical001(size_t df) {
  static const double kTable[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59};
  return df < sizeof(kTable) / sizeof(kTable[0]) ? kTable[df] : 1e18;
}

}  // namespace courier::upstream::testing
