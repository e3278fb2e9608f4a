// The process-wide registry of stats. Lookup/creation takes a mutex and is
// done at configuration time; the returned references stay valid for the
// store's life, so the hot path keeps them and never looks anything up.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "source/common/stats/stats.h"

namespace courier::stats {

// Envoy's Stats::Utility::sanitizeStatsName: ':' and NUL become '_' (so a
// listener on 0.0.0.0:80 gets stats under "listener.0.0.0.0_80."), and
// leading/trailing dots are dropped.
std::string sanitizeStatName(std::string_view name);

class Store {
 public:
  Store();
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name);
  // A histogram keeps the unit it was created with.
  Histogram& histogram(std::string_view name, Histogram::Unit unit = Histogram::Unit::Milliseconds);

  // The same, for a name made of a shared prefix and a suffix with static
  // storage: the stat keeps a pointer to both instead of a copy of its name
  // (Scope uses these for string literals).
  Counter& counter(const std::shared_ptr<const std::string>& prefix, const char* static_suffix);
  Gauge& gauge(const std::shared_ptr<const std::string>& prefix, const char* static_suffix);
  Histogram& histogram(const std::shared_ptr<const std::string>& prefix, const char* static_suffix,
                       Histogram::Unit unit = Histogram::Unit::Milliseconds);

  // Snapshots sorted by name; the pointers stay valid for the store's life.
  std::vector<Counter*> counters() const;
  std::vector<Gauge*> gauges() const;
  std::vector<Histogram*> histograms() const;

  // Interval/cumulative histogram statistics advance here: the server calls
  // it every stats_flush_interval (Envoy: 5 s), or admin on each request when
  // flush_on_admin is set.
  void mergeHistograms();
  // /reset_counters.
  void resetCounters();

 private:
  // A name as two parts, so a lookup never concatenates them.
  struct NameKey {
    std::string_view prefix;
    std::string_view suffix;
  };
  // Hash and equality over the name's characters, whatever its split.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(const Metric* m) const { return m->nameHash(); }
    size_t operator()(const NameKey& key) const;
  };
  struct NameEq {
    using is_transparent = void;
    bool operator()(const Metric* a, const Metric* b) const {
      return a == b || a->nameEquals(b->namePrefix(), b->nameSuffix());
    }
    bool operator()(const Metric* a, const NameKey& b) const { return a->nameEquals(b.prefix, b.suffix); }
    bool operator()(const NameKey& a, const Metric* b) const { return b->nameEquals(a.prefix, a.suffix); }
  };
  template <class T>
  using Set = absl::flat_hash_set<T*, NameHash, NameEq>;

  // make(memory) constructs the stat in memory from allocate().
  template <class T, class Make>
  T& findOrCreate(Set<T>& set, const NameKey& key, Make make);
  // Memory for a new stat (under mutex_): stats live as long as the store,
  // so they are carved from large blocks instead of one malloc each, which
  // saves the allocator's per-chunk overhead and most of the CPU of creating
  // a cluster's ~35 stats.
  void* allocate(size_t size);
  // Keeps a scope's prefix alive for the stats that borrow it.
  const std::string* retain(const std::shared_ptr<const std::string>& prefix);

  mutable std::mutex mutex_;
  // The store owns every stat (destroyed in ~Store).
  Set<Counter> counters_;
  Set<Gauge> gauges_;
  Set<Histogram> histograms_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* block_next_ = nullptr;
  size_t block_left_ = 0;
  absl::flat_hash_set<std::shared_ptr<const std::string>> prefixes_;
  const std::string* last_prefix_ = nullptr;
};

// Stats under one prefix, as Envoy's Scope: Scope(store, "cluster.backend")
// .counter("upstream_cx_total") is "cluster.backend.upstream_cx_total".
// With a string literal the stat shares the scope's prefix (no copy of the
// name); any other string_view is sanitized and copied.
class Scope {
 public:
  // The prefix is sanitized; a trailing '.' is added when missing.
  Scope(Store& store, std::string_view prefix);

  // String literals: must already be sanitized (no ':'), no leading or
  // trailing '.'. The template wins overload resolution for a literal.
  template <size_t N>
  Counter& counter(const char (&literal)[N]) const {
    return store_.counter(prefix_, literal);
  }
  template <size_t N>
  Gauge& gauge(const char (&literal)[N]) const {
    return store_.gauge(prefix_, literal);
  }
  template <size_t N>
  Histogram& histogram(const char (&literal)[N], Histogram::Unit unit = Histogram::Unit::Milliseconds) const {
    return store_.histogram(prefix_, literal, unit);
  }

  Counter& counter(std::string_view name) const { return store_.counter(statName(name)); }
  Gauge& gauge(std::string_view name) const { return store_.gauge(statName(name)); }
  Histogram& histogram(std::string_view name, Histogram::Unit unit = Histogram::Unit::Milliseconds) const {
    return store_.histogram(statName(name), unit);
  }
  Scope createScope(std::string_view name) const { return Scope(store_, statName(name)); }

  const std::string& prefix() const { return *prefix_; }
  std::string statName(std::string_view name) const;
  Store& store() const { return store_; }

 private:
  Store& store_;
  std::shared_ptr<const std::string> prefix_;  // empty or ends with '.'
};

}  // namespace courier::stats
