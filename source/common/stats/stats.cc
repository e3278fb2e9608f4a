#include "source/common/stats/stats.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "source/common/stats/tag_producer.h"

namespace courier::stats {

namespace {

constexpr std::array<double, 20> kPowerOfTen = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                                1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};

constexpr std::array<uint64_t, 20> kIntPowerOfTen = {1ULL,
                                                     10ULL,
                                                     100ULL,
                                                     1000ULL,
                                                     10000ULL,
                                                     100000ULL,
                                                     1000000ULL,
                                                     10000000ULL,
                                                     100000000ULL,
                                                     1000000000ULL,
                                                     10000000000ULL,
                                                     100000000000ULL,
                                                     1000000000000ULL,
                                                     10000000000000ULL,
                                                     100000000000000ULL,
                                                     1000000000000000ULL,
                                                     10000000000000000ULL,
                                                     100000000000000000ULL,
                                                     1000000000000000000ULL,
                                                     10000000000000000000ULL};

constexpr const char* kQuantileLabels[] = {"0", "25", "50", "75", "90", "95", "99", "99.5", "99.9", "100"};

}  // namespace

std::string formatDouble(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

const std::array<double, HistogramStatistics::kNumQuantiles>& HistogramStatistics::supportedQuantiles() {
  static const std::array<double, kNumQuantiles> kQuantiles = {0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 1};
  return kQuantiles;
}

const std::array<double, HistogramStatistics::kNumBuckets>& HistogramStatistics::supportedBuckets() {
  static const std::array<double, kNumBuckets> kBuckets = {
      0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};
  return kBuckets;
}

HistogramStatistics::HistogramStatistics() { quantiles.fill(std::numeric_limits<double>::quiet_NaN()); }

namespace {
// The suffix table: written under its mutex when a new literal is first
// seen; read without it, since a stat is shared (by the store's mutex or a
// snapshot) only after its suffix was entered.
constexpr uint32_t kMaxSuffixes = 65536;
std::atomic<const char*> g_suffixes[kMaxSuffixes];
std::mutex g_suffix_mutex;
uint32_t g_suffix_count = 1;  // 0 is ""

absl::flat_hash_map<const char*, uint16_t>& suffixIds() {
  static auto* ids = new absl::flat_hash_map<const char*, uint16_t>();
  return *ids;
}
}  // namespace

// By address: the same literal in two places takes two entries, which is
// fine for a table of literals. kMaxSuffixes is far above what the code has;
// should it fill, the stat keeps its whole name instead (0 returned).
uint16_t Metric::internSuffix(const char* static_suffix) {
  if (static_suffix[0] == '\0') return 0;
  std::lock_guard<std::mutex> lock(g_suffix_mutex);
  auto [it, added] = suffixIds().try_emplace(static_suffix, 0);
  if (!added) return it->second;
  if (g_suffix_count == kMaxSuffixes) {
    suffixIds().erase(it);
    return 0;
  }
  const uint16_t id = static_cast<uint16_t>(g_suffix_count++);
  g_suffixes[id].store(static_suffix, std::memory_order_release);
  it->second = id;
  return id;
}

const char* Metric::suffix(uint16_t id) {
  if (id == 0) return "";
  return g_suffixes[id].load(std::memory_order_acquire);
}

static_assert(sizeof(Metric) == 16, "a stat's name costs two words");

Metric::Metric(std::string_view name)
    : prefix_(new std::string(name)), name_hash_(hashName(name, {})), flags_(kOwnsPrefix) {}

Metric::Metric(const std::string* prefix, const char* static_suffix)
    : prefix_(prefix), name_hash_(hashName(*prefix, static_suffix)), suffix_id_(internSuffix(static_suffix)) {
  if (suffix_id_ == 0 && static_suffix[0] != '\0') {
    // The table is full: own the whole name.
    prefix_ = new std::string(*prefix + static_suffix);
    flags_ = kOwnsPrefix;
  }
}

uint32_t Metric::hashName(std::string_view prefix, std::string_view suffix) {
  // Byte-wise FNV-1a over both parts hashes the name the same whatever its
  // split; a final avalanche (MurmurHash3's fmix64) spreads it over the bits
  // a table uses. Names are short and this runs once per stat and lookup.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (std::string_view part : {prefix, suffix}) {
    for (unsigned char c : part) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

Metric::~Metric() {
  if ((flags_ & kOwnsPrefix) != 0) delete prefix_;
}

std::string Metric::name() const {
  const char* suffix_chars = suffix(suffix_id_);
  std::string out;
  out.reserve(prefix_->size() + std::strlen(suffix_chars));
  out += *prefix_;
  out += suffix_chars;
  return out;
}

bool Metric::nameEquals(std::string_view prefix, std::string_view suffix) const {
  const std::string_view mine_prefix = *prefix_;
  const std::string_view mine_suffix = Metric::suffix(suffix_id_);
  if (mine_prefix.size() + mine_suffix.size() != prefix.size() + suffix.size()) return false;
  // Compare the concatenations piecewise: the split points may differ.
  auto part = [](std::string_view a, std::string_view b, size_t i) { return i < a.size() ? a[i] : b[i - a.size()]; };
  if (mine_prefix.size() == prefix.size()) return mine_prefix == prefix && mine_suffix == suffix;
  const size_t n = prefix.size() + suffix.size();
  for (size_t i = 0; i < n; ++i) {
    if (part(mine_prefix, mine_suffix, i) != part(prefix, suffix, i)) return false;
  }
  return true;
}

std::string Metric::tagExtractedName(std::vector<Tag>& tags) const {
  return defaultTagProducer().produceTags(name(), tags);
}

std::string Metric::tagExtractedName() const {
  std::vector<Tag> ignored;
  return tagExtractedName(ignored);
}

std::vector<Tag> Metric::tags() const {
  std::vector<Tag> tags;
  tagExtractedName(tags);
  return tags;
}

namespace {
// merge() against readers of the merged statistics, for every histogram:
// both run on the main thread (stats flush, admin), so one lock is enough and
// saves each histogram a mutex of its own.
std::mutex& mergeMutex() {
  static std::mutex* mutex = new std::mutex();
  return *mutex;
}
}  // namespace

Histogram::Histogram(std::string_view name, Unit unit) : Metric(name), unit_(unit) {}

Histogram::Histogram(const std::string* prefix, const char* static_suffix, Unit unit)
    : Metric(prefix, static_suffix), unit_(unit) {}

Histogram::~Histogram() {
  DecadeTable* t = decades_.load(std::memory_order_relaxed);
  if (t == nullptr) return;
  for (auto& d : *t) delete d.load(std::memory_order_relaxed);
  delete t;
}

uint32_t Histogram::bucketIndex(uint64_t value) {
  if (value == 0) return 0;
  uint32_t exp;
  uint64_t mantissa;
  if (value < 10) {
    // circllhist keeps two significant digits: 7 -> 7.0 (mantissa 70, exp 0).
    exp = 0;
    mantissa = value * 10;
  } else {
    uint32_t digits = 2;
    while (digits < 20 && value >= kIntPowerOfTen[digits]) ++digits;
    exp = digits - 1;
    mantissa = value / kIntPowerOfTen[digits - 2];
  }
  return 1 + exp * kMantissas + static_cast<uint32_t>(mantissa - 10);
}

double Histogram::bucketLower(uint32_t index) {
  if (index == 0) return 0;
  const uint32_t exp = (index - 1) / kMantissas;
  const uint32_t mantissa = (index - 1) % kMantissas + 10;
  // Same expression as circllhist's hist_bucket_to_double, so that quantiles
  // round to the same doubles Envoy prints.
  return (static_cast<double>(mantissa) / 10.0) * kPowerOfTen[exp];
}

double Histogram::bucketWidth(uint32_t index) {
  if (index == 0) return 0;
  return kPowerOfTen[(index - 1) / kMantissas] / 10.0;
}

Histogram::DecadeTable& Histogram::table() {
  DecadeTable* t = decades_.load(std::memory_order_acquire);
  if (t != nullptr) return *t;
  auto* fresh = new DecadeTable{};
  if (decades_.compare_exchange_strong(t, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *t;
}

Histogram::Decade& Histogram::decade(uint32_t exp) {
  DecadeTable& t = table();
  Decade* d = t[exp].load(std::memory_order_acquire);
  if (d != nullptr) return *d;
  // At most once per decade per histogram; the loser of a race frees its copy.
  auto* fresh = new Decade();
  if (t[exp].compare_exchange_strong(d, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *d;
}

void Histogram::recordValue(uint64_t value) {
  const uint32_t index = bucketIndex(value);
  if (index == 0) {
    zero_count_.fetch_add(1, std::memory_order_relaxed);
  } else {
    decade((index - 1) / kMantissas).counts[(index - 1) % kMantissas].fetch_add(1, std::memory_order_relaxed);
  }
  markUsed();
}

Histogram::BucketCounts Histogram::liveBucketCounts() const {
  BucketCounts counts;
  const uint64_t zeros = zero_count_.load(std::memory_order_relaxed);
  if (zeros != 0) counts.emplace_back(0, zeros);
  const DecadeTable* t = decades_.load(std::memory_order_acquire);
  for (uint32_t exp = 0; t != nullptr && exp < kDecades; ++exp) {
    const Decade* d = (*t)[exp].load(std::memory_order_acquire);
    if (d == nullptr) continue;
    for (uint32_t m = 0; m < kMantissas; ++m) {
      const uint64_t c = d->counts[m].load(std::memory_order_relaxed);
      if (c != 0) counts.emplace_back(1 + exp * kMantissas + m, c);
    }
  }
  return counts;
}

HistogramStatistics Histogram::computeStatistics(const BucketCounts& counts, Unit unit) {
  HistogramStatistics stats;
  double total = 0;
  for (const auto& [index, count] : counts) {
    stats.sample_count += count;
    total += static_cast<double>(count);
    const double width = bucketWidth(index);
    stats.sample_sum += (bucketLower(index) + width / 2.0) * static_cast<double>(count);
  }

  const double scale = unit == Histogram::Unit::Percent ? double(kPercentScale) : 1.0;
  const auto& bounds = HistogramStatistics::supportedBuckets();
  for (size_t b = 0; b < bounds.size(); ++b) {
    uint64_t below = 0;
    for (const auto& [index, count] : counts) {
      if (bucketLower(index) + bucketWidth(index) > bounds[b] * scale) break;
      below += count;
    }
    stats.bucket_counts[b] = below;
  }

  if (total > 0) {
    // circllhist's hist_approx_quantile: walk buckets and quantiles together,
    // interpolating linearly inside the bucket where the rank falls.
    const auto& q_in = HistogramStatistics::supportedQuantiles();
    size_t i_b = 0;
    double lower_cnt = 0, upper_cnt = static_cast<double>(counts[0].second);
    double left = bucketLower(counts[0].first), width = bucketWidth(counts[0].first);
    for (size_t i_q = 0; i_q < q_in.size(); ++i_q) {
      const double rank = total * q_in[i_q];
      while (i_b < counts.size() - 1 && upper_cnt < rank) {
        ++i_b;
        left = bucketLower(counts[i_b].first);
        width = bucketWidth(counts[i_b].first);
        lower_cnt = upper_cnt;
        upper_cnt = lower_cnt + static_cast<double>(counts[i_b].second);
      }
      double q;
      if (lower_cnt == rank) {
        q = left;
      } else if (upper_cnt == rank) {
        q = left + width;
      } else if (width == 0) {
        q = left;
      } else {
        q = left + (rank - lower_cnt) / (upper_cnt - lower_cnt) * width;
      }
      stats.quantiles[i_q] = q;
    }
  }

  if (unit == Histogram::Unit::Percent) {
    for (double& q : stats.quantiles) q /= scale;
    stats.sample_sum /= scale;
  }
  return stats;
}

void Histogram::merge() {
  // The whole merge holds the lock so that two merging threads cannot compute
  // intervals from the same previous snapshot; recordValue() never takes it.
  std::lock_guard<std::mutex> lock(mergeMutex());
  BucketCounts current = liveBucketCounts();
  if (merged_ == nullptr) {
    if (!used()) return;  // never recorded: nothing to keep
    merged_ = std::make_unique<Merged>();
  }
  const BucketCounts& last = merged_->last_merged;
  // Interval = current minus what the previous merge saw (both sorted).
  BucketCounts interval;
  size_t j = 0;
  for (const auto& [index, count] : current) {
    while (j < last.size() && last[j].first < index) ++j;
    const uint64_t before = (j < last.size() && last[j].first == index) ? last[j].second : 0;
    if (count > before) interval.emplace_back(index, count - before);
  }
  merged_->interval = computeStatistics(interval, unit_);
  merged_->cumulative = computeStatistics(current, unit_);
  merged_->last_merged = std::move(current);
}

bool Histogram::usedSinceMerge() const {
  std::lock_guard<std::mutex> lock(mergeMutex());
  return merged_ != nullptr;
}

HistogramStatistics Histogram::intervalStatistics() const {
  std::lock_guard<std::mutex> lock(mergeMutex());
  return merged_ ? merged_->interval : HistogramStatistics();
}

HistogramStatistics Histogram::cumulativeStatistics() const {
  std::lock_guard<std::mutex> lock(mergeMutex());
  return merged_ ? merged_->cumulative : HistogramStatistics();
}

std::string Histogram::quantileSummary() const {
  std::lock_guard<std::mutex> lock(mergeMutex());
  if (merged_ == nullptr) return "No recorded values";
  const HistogramStatistics& interval_stats = merged_->interval;
  const HistogramStatistics& cumulative_stats = merged_->cumulative;
  std::string out;
  for (size_t i = 0; i < HistogramStatistics::kNumQuantiles; ++i) {
    if (i != 0) out += ' ';
    out += 'P';
    out += kQuantileLabels[i];
    out += '(';
    out += formatDouble(interval_stats.quantiles[i]);
    out += ',';
    out += formatDouble(cumulative_stats.quantiles[i]);
    out += ')';
  }
  return out;
}

std::string Histogram::bucketSummary(bool disjoint) const {
  std::lock_guard<std::mutex> lock(mergeMutex());
  if (merged_ == nullptr) return "No recorded values";
  const HistogramStatistics& interval_stats = merged_->interval;
  const HistogramStatistics& cumulative_stats = merged_->cumulative;
  std::string out;
  const auto& bounds = HistogramStatistics::supportedBuckets();
  uint64_t prev_interval = 0, prev_cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    uint64_t interval = interval_stats.bucket_counts[i];
    uint64_t cumulative = cumulative_stats.bucket_counts[i];
    if (disjoint) {
      interval -= prev_interval;
      cumulative -= prev_cumulative;
      prev_interval = interval_stats.bucket_counts[i];
      prev_cumulative = cumulative_stats.bucket_counts[i];
    }
    if (i != 0) out += ' ';
    // Envoy prints bounds with fmt's "{:g}": 1800000 -> 1.8e+06.
    char bound[32];
    snprintf(bound, sizeof(bound), "%g", bounds[i]);
    out += 'B';
    out += bound;
    out += '(' + std::to_string(interval) + ',' + std::to_string(cumulative) + ')';
  }
  return out;
}

}  // namespace courier::stats
