#include "source/common/stats/store.h"

#include <algorithm>
#include <cstddef>
#include <new>
#include <utility>

namespace courier::stats {

std::string sanitizeStatName(std::string_view name) {
  while (!name.empty() && name.front() == '.') name.remove_prefix(1);
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c == ':' || c == '\0') c = '_';
  }
  return out;
}

Store::Store() = default;

Store::~Store() {
  // Block members go with their block.
  for (Counter* c : counters_) {
    if (!c->inBlock()) c->~Counter();
  }
  for (Gauge* g : gauges_) {
    if (!g->inBlock()) g->~Gauge();
  }
  for (Histogram* h : histograms_) {
    if (!h->inBlock()) h->~Histogram();
  }
  for (auto& [key, entry] : blocks_by_prefix_) entry.destroy(entry.block);
}

void Store::list(Counter& stat) { counters_.insert(&stat); }
void Store::list(Gauge& stat) { gauges_.insert(&stat); }
void Store::list(Histogram& stat) { histograms_.insert(&stat); }

void* Store::allocate(size_t size) {
  constexpr size_t kAlign = alignof(std::max_align_t);
  constexpr size_t kBlock = 64 * 1024;
  size = (size + kAlign - 1) & ~(kAlign - 1);
  if (size > block_left_) {
    // The rest of the old block is wasted: at most one stat's worth.
    const size_t bytes = std::max(kBlock, size);
    blocks_.push_back(std::make_unique<char[]>(bytes));
    block_next_ = blocks_.back().get();
    block_left_ = bytes;
  }
  void* out = block_next_;
  block_next_ += size;
  block_left_ -= size;
  return out;
}

const std::string* Store::retain(const std::shared_ptr<const std::string>& prefix) {
  // A scope creates its stats one after another: one comparison, usually.
  if (prefix.get() != last_prefix_) {
    prefixes_.insert(prefix);
    last_prefix_ = prefix.get();
  }
  return prefix.get();
}

size_t Store::NameHash::operator()(const NameKey& key) const { return Metric::hashName(key.prefix, key.suffix); }

template <class T, class Make>
T& Store::findOrCreate(Set<T>& set, const NameKey& key, Make make) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = set.find(key);
  if (it != set.end()) return **it;
  T* stat = make(allocate(sizeof(T)));
  set.insert(stat);
  return *stat;
}

// A stat named at run time owns a copy of its name. One named by a scope and
// a literal borrows the scope's prefix, which the store keeps from then on
// (only when a stat is created: a lookup that finds one keeps nothing).
Counter& Store::counter(std::string_view name) {
  return findOrCreate(counters_, NameKey{name, {}}, [&](void* at) { return new (at) Counter(name); });
}

Gauge& Store::gauge(std::string_view name) {
  return findOrCreate(gauges_, NameKey{name, {}}, [&](void* at) { return new (at) Gauge(name); });
}

Histogram& Store::histogram(std::string_view name, Histogram::Unit unit) {
  return findOrCreate(histograms_, NameKey{name, {}}, [&](void* at) { return new (at) Histogram(name, unit); });
}

Counter& Store::counter(const std::shared_ptr<const std::string>& prefix, const char* static_suffix) {
  return findOrCreate(counters_, NameKey{*prefix, static_suffix},
                      [&](void* at) { return new (at) Counter(retain(prefix), static_suffix); });
}

Gauge& Store::gauge(const std::shared_ptr<const std::string>& prefix, const char* static_suffix) {
  return findOrCreate(gauges_, NameKey{*prefix, static_suffix},
                      [&](void* at) { return new (at) Gauge(retain(prefix), static_suffix); });
}

Histogram& Store::histogram(const std::shared_ptr<const std::string>& prefix, const char* static_suffix,
                            Histogram::Unit unit) {
  return findOrCreate(histograms_, NameKey{*prefix, static_suffix},
                      [&](void* at) { return new (at) Histogram(retain(prefix), static_suffix, unit); });
}

namespace {
// Sorted by name, as the admin output lists them.
template <class T, class S>
std::vector<T*> snapshot(const S& set) {
  std::vector<std::pair<std::string, T*>> named;
  named.reserve(set.size());
  for (T* stat : set) named.emplace_back(stat->name(), stat);
  std::sort(named.begin(), named.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<T*> out;
  out.reserve(named.size());
  for (const auto& entry : named) out.push_back(entry.second);
  return out;
}
}  // namespace

std::vector<Counter*> Store::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot<Counter>(counters_);
}

std::vector<Gauge*> Store::gauges() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot<Gauge>(gauges_);
}

std::vector<Histogram*> Store::histograms() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot<Histogram>(histograms_);
}

void Store::mergeHistograms() {
  for (Histogram* h : histograms()) h->merge();
}

void Store::resetCounters() {
  for (Counter* c : counters()) c->reset();
}

Scope::Scope(Store& store, std::string_view prefix) : store_(store) {
  std::string sanitized = sanitizeStatName(prefix);
  if (!sanitized.empty()) sanitized += '.';
  prefix_ = std::make_shared<const std::string>(std::move(sanitized));
}

std::string Scope::statName(std::string_view name) const { return *prefix_ + sanitizeStatName(name); }

}  // namespace courier::stats
