#include "source/common/stats/store.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace courier::stats {
namespace {

TEST(StoreTest, SameNameReturnsSameStat) {
  Store store;
  Counter& a = store.counter("server.a");
  Counter& b = store.counter("server.a");
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&store.gauge("server.g"), &store.gauge("server.g"));
  EXPECT_EQ(&store.histogram("server.h"), &store.histogram("server.h"));
}

TEST(StoreTest, ReferencesStayValidWhileStoreGrows) {
  Store store;
  Counter& first = store.counter("a.first");
  first.inc();
  for (int i = 0; i < 1000; ++i) store.counter("a.n" + std::to_string(i));
  first.inc();
  EXPECT_EQ(store.counter("a.first").value(), 2u);
}

TEST(StoreTest, ScopeLiteralsShareThePrefixAndFindTheSameStatAsAFullName) {
  Store store;
  Scope scope(store, "cluster.backend");
  Counter& by_literal = scope.counter("upstream_cx_total");
  // Whatever way a name is split, it is one stat.
  EXPECT_EQ(&by_literal, &store.counter("cluster.backend.upstream_cx_total"));
  EXPECT_EQ(&by_literal, &scope.counter(std::string("upstream_cx_total")));
  EXPECT_EQ(&scope.gauge("membership_total"), &store.gauge("cluster.backend.membership_total"));
  EXPECT_EQ(&scope.histogram("upstream_rq_time"), &store.histogram("cluster.backend.upstream_rq_time"));
  EXPECT_EQ(by_literal.name(), "cluster.backend.upstream_cx_total");
  EXPECT_EQ(by_literal.namePrefix(), "cluster.backend.");
  EXPECT_EQ(by_literal.nameSuffix(), "upstream_cx_total");
  // A name that is a prefix of another, or differs only where the split is, is another stat.
  EXPECT_NE(&by_literal, &store.counter("cluster.backend.upstream_cx_tota"));
  EXPECT_NE(&by_literal, &store.counter("cluster.backendupstream_cx_total."));
  // A stat found by literal from the full-name side: created with a copy, found by parts.
  Counter& full_first = store.counter("cluster.other.upstream_rq_total");
  EXPECT_EQ(&full_first, &Scope(store, "cluster.other").counter("upstream_rq_total"));
  EXPECT_EQ(store.counters().size(), 4u);
}

TEST(StoreTest, StatsOutliveTheScopeThatNamedThem) {
  Store store;
  Counter* counter;
  Histogram* histogram;
  {
    Scope scope(store, "cluster.gone");
    counter = &scope.counter("upstream_rq_total");
    histogram = &scope.histogram("upstream_rq_time");
    counter->inc();
  }
  // The store kept the prefix the stats borrow; a later scope with an equal
  // prefix (a cluster updated under the same name) finds the same stats.
  EXPECT_EQ(counter->name(), "cluster.gone.upstream_rq_total");
  EXPECT_EQ(histogram->name(), "cluster.gone.upstream_rq_time");
  Scope again(store, "cluster.gone");
  EXPECT_EQ(&again.counter("upstream_rq_total"), counter);
  EXPECT_EQ(counter->value(), 1u);
  // Many stats across many scopes: every one keeps its own name and value.
  std::vector<Counter*> made;
  for (int i = 0; i < 5000; ++i) {
    Scope scope(store, "cluster.c" + std::to_string(i));
    made.push_back(&scope.counter("upstream_cx_total"));
    made.back()->add(static_cast<uint64_t>(i));
  }
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(made[i]->name(), "cluster.c" + std::to_string(i) + ".upstream_cx_total");
    ASSERT_EQ(made[i]->value(), static_cast<uint64_t>(i));
  }
}

TEST(StoreTest, StatsStayThreeWordsOrLess) {
  // ~35 stats per cluster and 10k+ clusters: a word more per stat is ~3 MB.
  EXPECT_LE(sizeof(Counter), 24u);
  EXPECT_LE(sizeof(Gauge), 24u);
  // Whatever the split, a name hashes the same.
  EXPECT_EQ(Metric::hashName("cluster.a.", "upstream_rq_total"), Metric::hashName("cluster.a.upstream_rq_total", ""));
  EXPECT_EQ(Counter("cluster.a.upstream_rq_total").nameHash(), Metric::hashName("cluster.", "a.upstream_rq_total"));
  EXPECT_NE(Metric::hashName("cluster.a.", "upstream_rq_total"), Metric::hashName("cluster.b.", "upstream_rq_total"));
}

TEST(StoreTest, StatsCarryTagsFromCreation) {
  Store store;
  Counter& c = store.counter("cluster.backend.upstream_cx_total");
  EXPECT_EQ(c.tagExtractedName(), "cluster.upstream_cx_total");
  EXPECT_EQ(c.tags(), (std::vector<Tag>{{"envoy.cluster_name", "backend"}}));
}

TEST(StoreTest, SnapshotsAreSortedByName) {
  Store store;
  store.counter("b");
  store.counter("a");
  store.counter("c");
  std::vector<Counter*> counters = store.counters();
  ASSERT_EQ(counters.size(), 3u);
  EXPECT_EQ(counters[0]->name(), "a");
  EXPECT_EQ(counters[1]->name(), "b");
  EXPECT_EQ(counters[2]->name(), "c");
}

TEST(StoreTest, HistogramKeepsItsFirstUnit) {
  Store store;
  EXPECT_EQ(store.histogram("h").unit(), Histogram::Unit::Milliseconds);
  EXPECT_EQ(store.histogram("b", Histogram::Unit::Bytes).unit(), Histogram::Unit::Bytes);
  EXPECT_EQ(store.histogram("b", Histogram::Unit::Percent).unit(), Histogram::Unit::Bytes);
}

TEST(StoreTest, ResetCountersZeroesCountersOnly) {
  Store store;
  store.counter("c").add(3);
  store.gauge("g").set(4);
  store.resetCounters();
  EXPECT_EQ(store.counter("c").value(), 0u);
  EXPECT_EQ(store.gauge("g").value(), 4u);
}

TEST(StoreTest, MergeHistogramsMergesAll) {
  Store store;
  store.histogram("a").recordValue(5);
  store.histogram("b").recordValue(6);
  store.mergeHistograms();
  EXPECT_TRUE(store.histogram("a").usedSinceMerge());
  EXPECT_TRUE(store.histogram("b").usedSinceMerge());
}

TEST(ScopeTest, BuildsEnvoyStyleNames) {
  Store store;
  Scope cluster(store, "cluster.backend");
  EXPECT_EQ(cluster.prefix(), "cluster.backend.");
  EXPECT_EQ(cluster.counter("upstream_cx_total").name(), "cluster.backend.upstream_cx_total");
  EXPECT_EQ(&cluster.counter("upstream_cx_total"), &store.counter("cluster.backend.upstream_cx_total"));
  EXPECT_EQ(cluster.createScope("circuit_breakers.default").gauge("cx_open").name(),
            "cluster.backend.circuit_breakers.default.cx_open");
}

#define TEST_BLOCK_STATS(COUNTER, GAUGE, HISTOGRAM) \
  COUNTER(requests)                                 \
  GAUGE(active)                                     \
  HISTOGRAM(latency)

// A block as a component declares one.
struct TestBlock {
  explicit TestBlock(std::string_view prefix) : prefix_(prefix) {}
  const std::string& prefix() const { return prefix_; }
  template <class F>
  void forEachStat(F&& f) {
    TEST_BLOCK_STATS(COURIER_STAT_VISIT, COURIER_STAT_VISIT, COURIER_STAT_VISIT)
  }

 private:
  const std::string prefix_;

 public:
  TEST_BLOCK_STATS(COURIER_STAT_MEMBER_COUNTER, COURIER_STAT_MEMBER_GAUGE, COURIER_STAT_MEMBER_HISTOGRAM)
};

struct OtherBlock {
  explicit OtherBlock(std::string_view prefix) : prefix_(prefix) {}
  const std::string& prefix() const { return prefix_; }
  template <class F>
  void forEachStat(F&& f) {
    f(requests);
  }

 private:
  const std::string prefix_;

 public:
  Counter requests{&prefix_, "other_requests"};
};

TEST(StoreBlockTest, OneBlockPerPrefixWhoseMembersAreListedStats) {
  Store store;
  TestBlock& a = store.block<TestBlock>("svc.a.");
  EXPECT_EQ(&store.block<TestBlock>("svc.a."), &a);
  TestBlock& b = store.block<TestBlock>("svc.b.");
  EXPECT_NE(&a, &b);
  a.requests.add(3);
  a.active.set(2);
  a.latency.recordValue(7);
  // Found by name, as any stat.
  EXPECT_EQ(&store.counter("svc.a.requests"), &a.requests);
  EXPECT_EQ(&store.gauge("svc.a.active"), &a.active);
  EXPECT_EQ(&store.histogram("svc.a.latency"), &a.latency);
  EXPECT_EQ(store.counter("svc.a.requests").value(), 3u);
  EXPECT_EQ(store.counter("svc.b.requests").value(), 0u);
  std::vector<std::string> names;
  for (Counter* c : store.counters()) names.push_back(c->name());
  EXPECT_EQ(names, (std::vector<std::string>{"svc.a.requests", "svc.b.requests"}));
  ASSERT_EQ(store.histograms().size(), 2u);
  EXPECT_EQ(store.histograms()[0]->name(), "svc.a.latency");
}

TEST(StoreBlockTest, BlockTypesUnderOnePrefixAreSeparate) {
  Store store;
  TestBlock& a = store.block<TestBlock>("svc.a.");
  OtherBlock& o = store.block<OtherBlock>("svc.a.");
  EXPECT_NE(static_cast<void*>(&a), static_cast<void*>(&o));
  EXPECT_EQ(o.requests.name(), "svc.a.other_requests");
  EXPECT_EQ(&store.counter("svc.a.other_requests"), &o.requests);
}

TEST(StoreBlockTest, AStatMadeFirstKeepsItsName) {
  Store store;
  Counter& first = store.counter("svc.a.requests");
  first.inc();
  TestBlock& a = store.block<TestBlock>("svc.a.");
  // The block's member is not listed twice; the one made first is shown.
  EXPECT_EQ(&store.counter("svc.a.requests"), &first);
  EXPECT_EQ(store.counters().size(), 1u);
  EXPECT_EQ(&store.gauge("svc.a.active"), &a.active);
}

TEST(ScopeTest, TrailingDotIsNotDoubled) {
  Store store;
  EXPECT_EQ(Scope(store, "http.ingress.").statName("downstream_rq_total"), "http.ingress.downstream_rq_total");
  EXPECT_EQ(Scope(store, "").statName("server.live"), "server.live");
}

TEST(ScopeTest, ColonsAreSanitizedAsEnvoy) {
  Store store;
  Scope listener(store, "listener.0.0.0.0:80");
  EXPECT_EQ(listener.counter("downstream_cx_total").name(), "listener.0.0.0.0_80.downstream_cx_total");
  EXPECT_EQ(sanitizeStatName("listener.[::1]:80"), "listener.[__1]_80");
}

}  // namespace
}  // namespace courier::stats
