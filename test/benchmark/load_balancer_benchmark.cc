// Cost of one host pick for each load balancer at 10, 1000 and 100000 hosts,
// and the memory each costs per host (Host + its pointer + the balancer's own
// per-host state, ring or table, divided by the host count).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "source/common/upstream/least_request_lb.h"
#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/maglev_lb.h"
#include "source/common/upstream/priority_lb.h"
#include "source/common/upstream/random_lb.h"
#include "source/common/upstream/ring_hash_lb.h"

namespace courier::upstream {
namespace {

// `weighted`: 0 = all weights 1; 1 = weights 1 to 4 in turn; 2 = skewed, one
// host in 16 of weight 100 and the rest 1. `place` may set a host's priority
// and locality.
std::shared_ptr<Cluster> makeCluster(size_t n, int weighted, void (*place)(size_t, size_t, Host&) = nullptr) {
  auto cluster = std::make_shared<Cluster>();
  for (size_t i = 0; i < n; ++i) {
    auto host = std::make_shared<Host>();
    host->address = *network::Address::fromIpPort(absl::StrCat("10.", (i >> 16) & 255, ".", (i >> 8) & 255, ".", i & 255), 80);
    host->weight = weighted == 1 ? 1 + i % 4 : weighted == 2 ? (i % 16 == 0 ? 100 : 1) : 1;
    if (place != nullptr) place(i, n, *host);
    cluster->hosts.push_back(std::move(host));
  }
  return cluster;
}

// What every host costs whatever the policy: the Host and the cluster's pointer
// to it (plus make_shared's control block, two counters).
constexpr size_t kHostBytes = sizeof(Host) + sizeof(HostConstSharedPtr) + 2 * sizeof(long);

void report(benchmark::State& state, size_t hosts, size_t lb_bytes) {
  state.counters["bytes_per_host"] = double(kHostBytes) + double(lb_bytes) / hosts;
  state.counters["lb_bytes_per_host"] = double(lb_bytes) / hosts;
}

// Runs picks with a fresh hash per pick, as requests from many users would.
void pickLoop(benchmark::State& state, LoadBalancer& lb) {
  uint64_t hash = 0;
  for (auto _ : state) {
    hash += 0x9e3779b97f4a7c15ULL;
    FixedLoadBalancerContext context(hash, nullptr);
    benchmark::DoNotOptimize(lb.chooseHost(&context));
  }
}

void BM_RoundRobin(benchmark::State& state) {
  const size_t n = state.range(0);
  const int weighted = state.range(1);
  auto cluster = makeCluster(n, weighted);
  RoundRobinLoadBalancer lb(*cluster);
  pickLoop(state, lb);
  // A short cycle's table (a 16-bit host index per turn), else the EDF
  // heap's entry per host: next turn, weight, host index.
  uint64_t turns = 0;
  for (const auto& h : cluster->hosts) turns += h->weight;
  const bool tabled = turns <= std::min<uint64_t>(WeightedRoundRobin::kMaxTableTurns,
                                                  WeightedRoundRobin::kMaxTableTurnsPerEntry * n);
  const size_t schedule_bytes = tabled ? turns * sizeof(uint16_t) : n * (sizeof(uint64_t) + 2 * sizeof(uint32_t));
  report(state, n, weighted ? schedule_bytes : 0);
  state.counters["lb_object_bytes"] = sizeof(RoundRobinLoadBalancer);
}

// What a worker pays for its round-robin balancer of a cluster version and
// the first pick from it (every cluster on every worker at every update
// builds one; the per-host work waits for the first pick): the weights
// compared, and when they differ the schedule built.
void BM_RoundRobinCreate(benchmark::State& state) {
  const size_t n = state.range(0);
  auto cluster = makeCluster(n, state.range(1));
  for (auto _ : state) {
    RoundRobinLoadBalancer lb(*cluster);
    benchmark::DoNotOptimize(lb.chooseHost(nullptr));
  }
}

void BM_Random(benchmark::State& state) {
  const size_t n = state.range(0);
  const bool weighted = state.range(1);
  auto cluster = makeCluster(n, weighted);
  RandomLoadBalancer lb(*cluster);
  pickLoop(state, lb);
  report(state, n, weighted ? n * sizeof(uint64_t) : 0);
}

void BM_LeastRequest(benchmark::State& state) {
  const size_t n = state.range(0);
  const bool weighted = state.range(1);
  auto cluster = makeCluster(n, weighted);
  // Some load so the choices differ.
  for (size_t i = 0; i < n; i += 3) cluster->hosts[i]->active_requests = i % 7;
  LeastRequestLoadBalancer lb(*cluster, {});
  pickLoop(state, lb);
  // The EDF queue entry: deadline, order, host index (padded).
  report(state, n, weighted ? n * (sizeof(double) + sizeof(uint64_t) + sizeof(uint64_t)) : 0);
}

void BM_RingHash(benchmark::State& state) {
  const size_t n = state.range(0);
  auto cluster = makeCluster(n, state.range(1));
  RingHashLoadBalancerFactory factory(*cluster, {});
  auto lb = factory.create(*cluster);
  pickLoop(state, *lb);
  report(state, n, factory.ring().bytes());
  state.counters["ring_entries"] = factory.ring().size();
}

void BM_Maglev(benchmark::State& state) {
  const size_t n = state.range(0);
  auto cluster = makeCluster(n, state.range(1));
  MaglevLoadBalancerFactory factory(*cluster, kDefaultMaglevTableSize);
  auto lb = factory.create(*cluster);
  pickLoop(state, *lb);
  report(state, n, factory.table().bytes());
}

// The same picks through the health filter every worker uses
// (createLoadBalancer): args {hosts, policy 0-4 = RR, random, least request,
// ring hash, maglev, unhealthy percent}. With 0% unhealthy this is the
// filter's fixed cost; with 10% the redraws of unhealthy picks.
void BM_HealthFiltered(benchmark::State& state) {
  const size_t n = state.range(0);
  auto cluster = makeCluster(n, false);
  stats::Store store;
  cluster->stats = &ClusterStats::of(store, "bench");
  std::unique_ptr<LoadBalancer> inner;
  std::shared_ptr<const LoadBalancerFactory> keep;
  switch (state.range(1)) {
    case 0: inner = std::make_unique<RoundRobinLoadBalancer>(*cluster); break;
    case 1: inner = std::make_unique<RandomLoadBalancer>(*cluster); break;
    case 2: inner = std::make_unique<LeastRequestLoadBalancer>(*cluster, LeastRequestConfig{}); break;
    case 3: keep = std::make_shared<RingHashLoadBalancerFactory>(*cluster, RingHashConfig{}); inner = keep->create(*cluster); break;
    default: keep = std::make_shared<MaglevLoadBalancerFactory>(*cluster, kDefaultMaglevTableSize); inner = keep->create(*cluster); break;
  }
  const size_t unhealthy = n * state.range(2) / 100;
  for (size_t i = 0; i < unhealthy; ++i) {
    setHealthFlag(*cluster, *cluster->hosts[(i * 7919) % n], health_flag::kFailedActiveHc, true);
  }
  HealthFilteringLoadBalancer lb(*cluster, std::move(inner));
  pickLoop(state, lb);
}

// The worker's balancer for a whole cluster (createLoadBalancer) with round
// robin: args {hosts, shape}: 0 = one priority level, all healthy (the fast
// path every plain cluster takes); 1 = two levels, all healthy; 2 = two
// levels with 40% of level 0 unhealthy (58% stays, 42% spills); 3 = one
// level, four weighted localities (locality_weighted_lb_config); 4 = one
// level with 40% of its hosts degraded (84% of picks healthy, 16% degraded).
void BM_ClusterPick(benchmark::State& state) {
  const size_t n = state.range(0);
  const int shape = state.range(1);
  auto two_levels = [](size_t i, size_t n, Host& h) { h.priority = i < n / 2 ? 0 : 1; };
  auto four_localities = [](size_t i, size_t, Host& h) { h.locality = i % 4; };
  auto cluster = makeCluster(n, false, shape == 1 || shape == 2 ? +two_levels : shape == 3 ? +four_localities : nullptr);
  stats::Store store;
  cluster->stats = &ClusterStats::of(store, "bench");
  if (shape == 3) {
    cluster->locality_weighted = true;
    for (uint32_t l = 0; l < 4; ++l) cluster->localities.push_back({"r", absl::StrCat("z", l), "", l + 1});
  }
  buildPriorityLayout(*cluster);
  if (shape == 2) {
    for (size_t i = 0; i < n / 2; i += 5) {
      setHealthFlag(*cluster, *cluster->hosts[i], health_flag::kFailedActiveHc, true);
      setHealthFlag(*cluster, *cluster->hosts[i + 1], health_flag::kFailedActiveHc, true);
    }
  }
  if (shape == 4) {
    for (size_t i = 0; i < n; i += 5) {
      setHealthFlag(*cluster, *cluster->hosts[i], health_flag::kDegradedEdsHealth, true);
      setHealthFlag(*cluster, *cluster->hosts[i + 1], health_flag::kDegradedEdsHealth, true);
    }
  }
  auto lb = createLoadBalancer(*cluster);
  pickLoop(state, *lb);
}

// Building the shared state happens once per cluster version on the main thread.
void BM_RingHashBuild(benchmark::State& state) {
  auto cluster = makeCluster(state.range(0), false);
  for (auto _ : state) benchmark::DoNotOptimize(HashRing(*cluster, {}));
}

void BM_MaglevBuild(benchmark::State& state) {
  auto cluster = makeCluster(state.range(0), false);
  for (auto _ : state) benchmark::DoNotOptimize(MaglevTable(*cluster, kDefaultMaglevTableSize));
}

// Args: {hosts, weighted}.
#define HOST_COUNTS(b) \
  b->ArgNames({"hosts", "weighted"})->Args({10, 0})->Args({1000, 0})->Args({100000, 0})->Args({10, 1})->Args({1000, 1})->Args({100000, 1})
HOST_COUNTS(BENCHMARK(BM_RoundRobin))->Args({10, 2})->Args({1000, 2})->Args({100000, 2});
BENCHMARK(BM_RoundRobinCreate)->ArgNames({"hosts", "weighted"})->ArgsProduct({{10, 1000, 100000}, {0, 1}});
HOST_COUNTS(BENCHMARK(BM_Random));
HOST_COUNTS(BENCHMARK(BM_LeastRequest));
HOST_COUNTS(BENCHMARK(BM_RingHash));
HOST_COUNTS(BENCHMARK(BM_Maglev));
BENCHMARK(BM_HealthFiltered)->ArgNames({"hosts", "policy", "unhealthy_pct"})->ArgsProduct({{10, 1000, 100000}, {0, 1, 2, 3, 4}, {0, 10}});
BENCHMARK(BM_ClusterPick)->ArgNames({"hosts", "shape"})->ArgsProduct({{10, 1000, 100000}, {0, 1, 2, 3, 4}});
BENCHMARK(BM_RingHashBuild)->Arg(10)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MaglevBuild)->Arg(10)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace courier::upstream

BENCHMARK_MAIN();
