#include "source/common/stats/store.h"

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

template <class T, class... Args>
T& Store::findOrCreate(std::map<std::string, std::unique_ptr<T>, std::less<>>& map,
                       std::string_view name, Args... args) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = map.find(name);
  if (it != map.end()) return *it->second;
  std::vector<Tag> tags;
  std::string extracted = tag_producer_.produceTags(name, tags);
  auto stat =
      std::make_unique<T>(std::string(name), std::move(extracted), std::move(tags), args...);
  T& ref = *stat;
  map.emplace(std::string(name), std::move(stat));
  return ref;
}

Counter& Store::counter(std::string_view name) { return findOrCreate(counters_, name); }

Gauge& Store::gauge(std::string_view name) { return findOrCreate(gauges_, name); }

Histogram& Store::histogram(std::string_view name, Histogram::Unit unit) {
  return findOrCreate(histograms_, name, unit);
}

namespace {
template <class T>
std::vector<T*> snapshot(const std::map<std::string, std::unique_ptr<T>, std::less<>>& map) {
  std::vector<T*> out;
  out.reserve(map.size());
  for (const auto& [name, stat] : map) out.push_back(stat.get());
  return out;
}
}  // namespace

std::vector<Counter*> Store::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot(counters_);
}

std::vector<Gauge*> Store::gauges() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot(gauges_);
}

std::vector<Histogram*> Store::histograms() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot(histograms_);
}

void Store::mergeHistograms() {
  for (Histogram* h : histograms()) h->merge();
}

void Store::resetCounters() {
  for (Counter* c : counters()) c->reset();
}

Scope::Scope(Store& store, std::string_view prefix)
    : store_(store), prefix_(sanitizeStatName(prefix)) {
  if (!prefix_.empty()) prefix_ += '.';
}

std::string Scope::statName(std::string_view name) const {
  return prefix_ + sanitizeStatName(name);
}

}  // namespace courier::stats
