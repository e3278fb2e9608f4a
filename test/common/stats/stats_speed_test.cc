// Hot-path cost of stats: counter inc and histogram record, single-threaded
// and with 2 threads hitting the same stat (workers share stats, as Envoy).
#include <cstdint>

#include "benchmark/benchmark.h"
#include "source/common/stats/store.h"

namespace courier::stats {
namespace {

Store& sharedStore() {
  static Store* store = new Store();
  return *store;
}

void BM_CounterInc(benchmark::State& state) {
  Counter& c = sharedStore().counter("cluster.backend.upstream_rq_total");
  for (auto _ : state) c.inc();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2)->UseRealTime();

void BM_GaugeIncDec(benchmark::State& state) {
  Gauge& g = sharedStore().gauge("cluster.backend.upstream_rq_active");
  for (auto _ : state) {
    g.inc();
    g.dec();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GaugeIncDec)->Threads(1)->Threads(2)->UseRealTime();

void BM_HistogramRecord(benchmark::State& state) {
  Histogram& h = sharedStore().histogram("cluster.backend.upstream_rq_time");
  uint64_t v = static_cast<uint64_t>(state.thread_index()) * 7 + 1;
  for (auto _ : state) {
    h.recordValue(v);
    // Spread values over a few decades like real latencies (1..~20000 ms).
    v = v * 13 % 20011 + 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord)->Threads(1)->Threads(2)->UseRealTime();

void BM_HistogramMerge(benchmark::State& state) {
  Histogram& h = sharedStore().histogram("cluster.backend.merge_time");
  for (uint64_t v = 1; v < 100000; v = v * 11 / 10 + 1) h.recordValue(v);
  for (auto _ : state) h.merge();
}
BENCHMARK(BM_HistogramMerge);

void BM_CounterLookup(benchmark::State& state) {
  Store store;
  for (int i = 0; i < 1000; ++i)
    store.counter("cluster.c" + std::to_string(i) + ".upstream_cx_total");
  for (auto _ : state) benchmark::DoNotOptimize(&store.counter("cluster.c500.upstream_cx_total"));
}
BENCHMARK(BM_CounterLookup);

}  // namespace
}  // namespace courier::stats

BENCHMARK_MAIN();
