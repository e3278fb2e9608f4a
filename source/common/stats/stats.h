// Envoy-named statistics: counters, gauges and histograms that workers update
// on the hot path with relaxed atomics (no lock, no allocation), and that the
// main thread reads, merges and renders for the admin endpoints and sinks.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace courier::stats {

// A tag pulled out of a stat name by Envoy's default tag extractors, e.g.
// {"envoy.cluster_name", "backend"} from "cluster.backend.upstream_cx_total".
struct Tag {
  std::string name;
  std::string value;
  bool operator==(const Tag& other) const { return name == other.name && value == other.value; }
};

// What every stat carries: its name. Tags and the tag-extracted name that the
// Prometheus output needs are computed from the name when asked (admin and
// sinks), not stored: a mesh has ~30 stats per cluster and 10k+ clusters, so
// a stat is kept to a few words.
//
// The name is a prefix shared by the stats of one scope ("cluster.backend.")
// followed by a suffix with static storage (a string literal such as
// "upstream_cx_total"), or, for names built at run time, a string of its own
// held as the prefix with an empty suffix.
class Metric {
 public:
  // A stat that owns a copy of its whole name (tests, standalone stats).
  explicit Metric(std::string_view name);
  // A stat named by a prefix it borrows and a suffix with static storage:
  // whoever creates it (the Store) keeps the prefix alive as long as the stat.
  Metric(const std::string* prefix, const char* static_suffix);
  ~Metric();
  Metric(const Metric&) = delete;
  Metric& operator=(const Metric&) = delete;

  std::string name() const;
  // The two parts, for hashing and comparing without building the name.
  std::string_view namePrefix() const { return *prefix_; }
  std::string_view nameSuffix() const { return suffix(suffix_id_); }
  bool nameEquals(std::string_view prefix, std::string_view suffix) const;
  // A hash of the name's characters, the same whatever the split; computed
  // once at creation, so the store's table grows without reading names.
  uint32_t nameHash() const { return name_hash_; }
  static uint32_t hashName(std::string_view prefix, std::string_view suffix);

  // Envoy's default tag extraction applied to name(): "cluster.upstream_cx_total"
  // and {envoy.cluster_name=backend} for "cluster.backend.upstream_cx_total".
  std::string tagExtractedName() const;
  std::vector<Tag> tags() const;
  std::string tagExtractedName(std::vector<Tag>& tags) const;

  // Whether the stat was ever written since start (admin's `usedonly`).
  bool used() const { return used_.load(std::memory_order_relaxed); }

  // A member of a block of stats (Store::block()), which destroys it.
  bool inBlock() const { return (flags_ & kInBlock) != 0; }
  void setInBlock() { flags_ |= kInBlock; }

 protected:
  // Check before store: after the first write the cache line stays shared
  // instead of being dirtied by every increment from every worker.
  void markUsed() {
    if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  }

 private:
  static constexpr uint8_t kOwnsPrefix = 1;
  static constexpr uint8_t kInBlock = 2;
  // Static suffixes are kept as a 16-bit number into a process-wide table
  // (one entry per literal, a few hundred in all) rather than a pointer: a
  // stat is then 16 bytes plus its value. 0 is "".
  static uint16_t internSuffix(const char* static_suffix);
  static const char* suffix(uint16_t id);

  // A raw pointer rather than a shared_ptr: 8 bytes less per stat and no
  // reference count traffic when a scope creates ~35 stats for a cluster.
  const std::string* prefix_;
  uint32_t name_hash_;
  uint16_t suffix_id_ = 0;
  std::atomic<bool> used_{false};
  uint8_t flags_ = 0;  // set before the stat is shared
};

// Monotonic count of events (Envoy Counter). Only /reset_counters goes back.
class Counter : public Metric {
 public:
  using Metric::Metric;

  void inc() { add(1); }
  void add(uint64_t amount) {
    value_.fetch_add(amount, std::memory_order_relaxed);
    markUsed();
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  void reset() { value_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A current level, e.g. active connections (Envoy Gauge, unsigned like Envoy's).
class Gauge : public Metric {
 public:
  using Metric::Metric;

  void set(uint64_t value) {
    value_.store(value, std::memory_order_relaxed);
    markUsed();
  }
  void add(uint64_t amount) {
    value_.fetch_add(amount, std::memory_order_relaxed);
    markUsed();
  }
  void sub(uint64_t amount) {
    value_.fetch_sub(amount, std::memory_order_relaxed);
    markUsed();
  }
  void inc() { add(1); }
  void dec() { sub(1); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Quantiles, bucket counts, count and sum of one histogram over one period,
// computed as Envoy's libcircllhist-based HistogramStatisticsImpl does, so the
// admin output carries the same numbers for the same samples.
struct HistogramStatistics {
  static constexpr size_t kNumQuantiles = 10;
  static constexpr size_t kNumBuckets = 19;
  // Fractions: P0 P25 P50 P75 P90 P95 P99 P99.5 P99.9 P100.
  static const std::array<double, kNumQuantiles>& supportedQuantiles();
  // Envoy's default Prometheus bucket bounds (ms).
  static const std::array<double, kNumBuckets>& supportedBuckets();

  // NaN when there were no samples, as Envoy.
  std::array<double, kNumQuantiles> quantiles;
  // Samples in log-linear buckets that lie entirely at or below each bound.
  std::array<uint64_t, kNumBuckets> bucket_counts{};
  uint64_t sample_count = 0;
  // Approximate, as Envoy: each sample counts as its bucket's midpoint.
  double sample_sum = 0;

  HistogramStatistics();
};

// Distribution of values (Envoy Histogram). recordValue() is a handful of
// relaxed atomic adds into fixed log-linear buckets (two significant decimal
// digits, as circllhist); merge() runs on the main thread at each stats flush
// and turns the counts into interval (since the last merge) and cumulative
// statistics, which is what /stats shows as P50(interval,cumulative).
class Histogram : public Metric {
 public:
  enum class Unit { Unspecified, Bytes, Microseconds, Milliseconds, Percent };
  // Percent values are recorded scaled by this factor (Envoy's PercentScale).
  static constexpr uint64_t kPercentScale = 1000000;

  Histogram(std::string_view name, Unit unit);
  Histogram(const std::string* prefix, const char* static_suffix, Unit unit);
  ~Histogram();

  void recordValue(uint64_t value);
  Unit unit() const { return unit_; }

  // Folds the samples recorded since the previous merge into the statistics.
  void merge();
  // As Envoy's ParentHistogram: used once a merge saw samples.
  bool usedSinceMerge() const;
  HistogramStatistics intervalStatistics() const;
  HistogramStatistics cumulativeStatistics() const;

  // "P0(1,1) P25(1.025,1.025) ..." or "No recorded values" (text /stats).
  std::string quantileSummary() const;
  // "B0.5(0,0) B1(1,1) ..." cumulative or disjoint bucket counts
  // (text /stats?histogram_buckets=cumulative|disjoint).
  std::string bucketSummary(bool disjoint) const;

  // Sparse (bucket index, count) list in ascending value order; public for
  // tests and for sinks that want raw buckets.
  using BucketCounts = std::vector<std::pair<uint32_t, uint64_t>>;
  BucketCounts liveBucketCounts() const;
  // Lower bound and width of a bucket index, as circllhist computes them.
  static double bucketLower(uint32_t index);
  static double bucketWidth(uint32_t index);
  static uint32_t bucketIndex(uint64_t value);
  static HistogramStatistics computeStatistics(const BucketCounts& counts, Unit unit);

 private:
  static constexpr uint32_t kMantissas = 90;  // 10..99
  static constexpr uint32_t kDecades = 20;    // enough for any uint64_t
  struct Decade {
    std::array<std::atomic<uint64_t>, kMantissas> counts{};
  };

  using DecadeTable = std::array<std::atomic<Decade*>, kDecades>;

  // A decade's counters are allocated the first time a value lands in it, so
  // a histogram costs a few KB rather than ~14 KB for all 20 decades; the
  // table of decades itself comes with the first sample, as most histograms
  // of a large mesh (one per cluster) never get one.
  Decade& decade(uint32_t exp);
  DecadeTable& table();

  const Unit unit_;
  std::atomic<uint64_t> zero_count_{0};
  std::atomic<DecadeTable*> decades_{nullptr};

  // What merges computed. Allocated by the first merge that sees a sample:
  // most histograms of a large mesh never get one, and this is ~0.5 KB.
  struct Merged {
    BucketCounts last_merged;
    HistogramStatistics interval;
    HistogramStatistics cumulative;
  };
  std::unique_ptr<Merged> merged_;
};

// "1", "1.025", "nan": the shortest text that reads back as the same double,
// as fmt's "{}" (which Envoy uses for these numbers) prints it.
std::string formatDouble(double value);

}  // namespace courier::stats
