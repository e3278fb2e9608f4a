#include "source/common/upstream/load_balancer.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using testing::countPicks;
using testing::indexOf;
using testing::makeCluster;

TEST(RoundRobinLoadBalancerTest, EqualWeightsRotateExactly) {
  auto cluster = makeCluster(3);
  RoundRobinLoadBalancer lb(*cluster);
  EXPECT_EQ(countPicks(lb, *cluster, 300), (std::vector<uint64_t>{100, 100, 100}));
}

TEST(RoundRobinLoadBalancerTest, WeightsGiveExactProportions) {
  auto cluster = makeCluster({1, 2, 3});
  RoundRobinLoadBalancer lb(*cluster);
  EXPECT_EQ(countPicks(lb, *cluster, 600), (std::vector<uint64_t>{100, 100 * 2, 100 * 3}));
}

// The picks of `lb` as host indices.
std::vector<size_t> pickSequence(LoadBalancer& lb, const Cluster& cluster, size_t picks) {
  std::vector<size_t> out;
  for (size_t i = 0; i < picks; ++i) out.push_back(indexOf(cluster, lb.chooseHost(nullptr)));
  return out;
}

// Weighted picks two ways: through the balancer (whose short cycles are read
// from a table) and from the EDF heap directly.
using Picker = std::vector<size_t> (*)(const std::vector<uint32_t>& weights, uint32_t offset, size_t picks);
std::vector<size_t> balancerPicks(const std::vector<uint32_t>& weights, uint32_t offset, size_t picks) {
  auto cluster = makeCluster(weights);
  RoundRobinLoadBalancer lb(*cluster, offset);
  return pickSequence(lb, *cluster, picks);
}
std::vector<size_t> heapPicks(const std::vector<uint32_t>& weights, uint32_t offset, size_t picks) {
  WeightedRoundRobinSchedule schedule(
      static_cast<uint32_t>(weights.size()), [&](uint32_t i) { return weights[i]; }, offset);
  std::vector<size_t> out;
  for (size_t i = 0; i < picks; ++i) out.push_back(schedule.pick());
  return out;
}
const std::pair<const char*, Picker> kPickers[] = {{"balancer", &balancerPicks}, {"heap", &heapPicks}};

// Exact, not statistical: every window of W = sum(weights) consecutive picks
// (so every k * W as well), from any starting offset, holds each host exactly
// its weight's number of times.
TEST(RoundRobinLoadBalancerTest, EveryCycleOfPicksHoldsExactlyTheWeights) {
  const std::vector<std::vector<uint32_t>> cases = {
      {1, 2, 3}, {5, 1, 3, 7, 2}, {1, 1, 1, 1, 4}, {2, 4, 8, 16}, {1, 9}, {1000, 999, 1, 2}, {3, 3, 3, 1, 0},
  };
  FastRandom random(11);
  for (const auto& [how, picker] : kPickers) {
    for (const auto& weights : cases) {
      size_t total = 0;
      for (uint32_t w : weights) total += w == 0 ? 1 : w;  // weight 0 counts as 1
      for (uint32_t offset : {0u, 1u, 0x80000000u, 0xffffffffu, uint32_t(random.next()), uint32_t(random.next())}) {
        const auto picks = picker(weights, offset, 3 * total);
        std::vector<uint64_t> window(weights.size(), 0);
        for (size_t i = 0; i < picks.size(); ++i) {
          ++window[picks[i]];
          if (i >= total) --window[picks[i - total]];
          if (i + 1 < total) continue;
          for (size_t h = 0; h < weights.size(); ++h) {
            ASSERT_EQ(window[h], weights[h] == 0 ? 1 : weights[h])
                << how << ": host " << h << " in the " << total << " picks ending at " << i << ", offset " << offset;
          }
        }
      }
    }
  }
}

TEST(RoundRobinLoadBalancerTest, ManyCyclesAtScaleStayExact) {
  std::vector<uint32_t> weights;
  uint64_t total = 0;
  for (uint32_t i = 0; i < 1000; ++i) total += weights.emplace_back(1 + (i * 7) % 13);
  auto cluster = makeCluster(weights);
  RoundRobinLoadBalancer lb(*cluster, 0x12345678);
  std::unordered_map<const Host*, uint64_t> counts;
  for (uint64_t i = 0; i < 5 * total; ++i) ++counts[lb.chooseHost(nullptr)];
  for (uint32_t i = 0; i < weights.size(); ++i) ASSERT_EQ(counts[cluster->hosts[i].get()], 5u * weights[i]) << i;
}

// A heavy host's turns are interleaved with the others': no host runs more
// than ceil(w / (W - w)) + 1 picks in a row. (Deadlines without the per-host
// phase would give {1, 1, 1, 1, 4} the run 4, 4, 4 at the start of a cycle.)
TEST(RoundRobinLoadBalancerTest, HeavyHostsTurnsAreSpreadOut) {
  for (const auto& [how, picker] : kPickers) {
    for (const auto& weights : std::vector<std::vector<uint32_t>>{
             {1, 1, 1, 1, 4}, {5, 1, 3, 7, 2}, {1, 2, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 9}}) {
      uint64_t total = 0;
      for (uint32_t w : weights) total += w;
      for (uint32_t offset : {0u, 0x40000000u, 0x9abcdef0u}) {
        const auto picks = picker(weights, offset, 4 * total);
        size_t run = 0;
        for (size_t i = 0; i < picks.size(); ++i) {
          run = i > 0 && picks[i] == picks[i - 1] ? run + 1 : 1;
          const uint64_t w = weights[picks[i]];
          const uint64_t bound = (w + (total - w) - 1) / (total - w) + 1;
          ASSERT_LE(run, bound) << how << ": host " << picks[i] << " at pick " << i << ", offset " << offset;
        }
      }
    }
  }
  // The light hosts of {1, 1, 1, 1, 4} each sit between two heavy turns.
  auto cluster = makeCluster({1, 1, 1, 1, 4});
  RoundRobinLoadBalancer lb(*cluster, 0);
  const auto picks = pickSequence(lb, *cluster, 16);
  for (size_t i = 0; i + 1 < picks.size(); ++i) EXPECT_TRUE(picks[i] == 4 || picks[i + 1] == 4) << i;
}

// Balancers seeded differently (workers) enter the same cycle of turns at
// different points: each one's picks are a stretch of the offset-0 sequence,
// so the exact proportions hold for every worker, and the starts cover the
// whole cycle.
TEST(RoundRobinLoadBalancerTest, OffsetsEnterTheSameCycleAtDifferentPoints) {
  const std::vector<uint32_t> weights{1, 2, 3, 4, 5, 6, 7, 8};
  const size_t total = 36;
  auto cluster = makeCluster(weights);
  // The table and the heap list the same cycle.
  const auto canonical = heapPicks(weights, 0, 2 * total);
  EXPECT_EQ(balancerPicks(weights, 0, 2 * total), canonical);
  for (const auto& [how, picker] : kPickers) {
    std::set<size_t> starts;
    for (uint32_t i = 0; i < 360; ++i) {
      const auto picks = picker(weights, uint32_t(i * (uint64_t{1} << 32) / 360), total);
      size_t at = 0;
      while (at < total && !std::equal(picks.begin(), picks.end(), canonical.begin() + at)) ++at;
      ASSERT_LT(at, total) << how << ": offset step " << i << " is not a rotation of the cycle";
      starts.insert(at);
    }
    EXPECT_EQ(starts.size(), total) << how;
  }
  // The default constructor draws its offset.
  std::set<size_t> first;
  for (int i = 0; i < 32; ++i) {
    RoundRobinLoadBalancer lb(*cluster);
    first.insert(indexOf(*cluster, lb.chooseHost(nullptr)));
  }
  EXPECT_GE(first.size(), 3u);
}

TEST(RoundRobinLoadBalancerTest, ShortCyclesAreTabledLongOnesUseTheHeap) {
  const auto tabled = [](std::vector<uint32_t> weights) {
    return WeightedRoundRobin(
               static_cast<uint32_t>(weights.size()), [&](uint32_t i) { return weights[i]; }, 0)
        .tabled();
  };
  EXPECT_TRUE(tabled({1, 2, 3}));
  EXPECT_TRUE(tabled({100, 1, 1, 1, 1, 1, 1, 1, 1, 1}));   // 109 turns; 16 per host allows 160
  EXPECT_FALSE(tabled({200, 1, 1, 1, 1, 1, 1, 1, 1, 1}));  // 209 turns over 10 hosts: the heap
  EXPECT_FALSE(tabled(std::vector<uint32_t>(1000, 5)));    // 5000 turns: over 4096
}

// Every plain cluster has one on every worker: the equal-weight balancer is
// four words (its weighted schedule only exists when weights differ).
TEST(RoundRobinLoadBalancerTest, EqualWeightBalancerIsFourWords) {
  EXPECT_LE(sizeof(RoundRobinLoadBalancer), 4 * sizeof(void*));
}

TEST(RoundRobinLoadBalancerTest, SingleWeightedHostAndEqualWeightsRotate) {
  auto one = makeCluster(std::vector<uint32_t>{7});
  RoundRobinLoadBalancer lb(*one);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(lb.chooseHost(nullptr), one->hosts[0].get());
  auto equal = makeCluster({5, 5, 5});
  RoundRobinLoadBalancer rotation(*equal);
  EXPECT_EQ(pickSequence(rotation, *equal, 7), (std::vector<size_t>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(RoundRobinLoadBalancerTest, EmptyClusterGivesNoHost) {
  auto cluster = makeCluster(0);
  RoundRobinLoadBalancer lb(*cluster);
  EXPECT_EQ(lb.chooseHost(nullptr), nullptr);
}

TEST(LoadBalancerTest, ClusterWithoutFactoryIsRoundRobin) {
  auto cluster = makeCluster(2);
  auto lb = createLoadBalancer(*cluster);
  EXPECT_EQ(lb->chooseHost(nullptr), cluster->hosts[0].get());
  EXPECT_EQ(lb->chooseHost(nullptr), cluster->hosts[1].get());
}

// The heap under both weighted balancers against a sorted reference.
TEST(EdfQueueTest, PicksInDeadlineOrderAtEverySize) {
  struct Entry {
    uint64_t deadline;
    uint32_t id;
  };
  struct Earlier {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.deadline < b.deadline || (a.deadline == b.deadline && a.id < b.id);
    }
  };
  FastRandom random(3);
  for (uint32_t n : {1u, 2u, 3u, 4u, 5u, 6u, 17u, 100u, 1000u}) {
    std::vector<Entry> entries;
    std::vector<uint64_t> step(n);
    std::set<std::pair<uint64_t, uint32_t>> reference;
    for (uint32_t i = 0; i < n; ++i) {
      entries.push_back({random.below(50), i});
      step[i] = 1 + random.below(20);
      reference.insert({entries.back().deadline, i});
    }
    EdfQueue<Entry, Earlier> queue;
    queue.assign(entries);
    ASSERT_EQ(queue.size(), n);
    for (int pick = 0; pick < 5000; ++pick) {
      const auto expected = *reference.begin();
      Entry& top = queue.top();
      ASSERT_EQ(std::make_pair(top.deadline, top.id), expected) << "n " << n << " pick " << pick;
      reference.erase(reference.begin());
      top.deadline += step[top.id];
      reference.insert({top.deadline, top.id});
      queue.topMovedLater();
    }
  }
}

TEST(HostTest, ActiveRequestCountAddsNoBytesAndHealthAddsThirtyTwo) {
  struct WithoutCount {
    network::Address address;
    uint32_t weight;
    std::string hostname;
  };
  // The health flag word (4, padded to 8) and the outlier counters (24).
  EXPECT_EQ(sizeof(Host), sizeof(WithoutCount) + 32);
}

TEST(FastRandomTest, BelowStaysInRange) {
  FastRandom random(7);
  for (int i = 0; i < 10000; ++i) EXPECT_LT(random.below(13), 13u);
}

}  // namespace
}  // namespace courier::upstream
