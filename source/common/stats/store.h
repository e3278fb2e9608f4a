// The process-wide registry of stats. Lookup/creation takes a mutex and is
// done at configuration time; the returned references stay valid for the
// store's life, so the hot path keeps them and never looks anything up.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
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

  // A block of stats under one prefix: one object whose members are the
  // stats themselves, instead of stats allocated one by one and a struct of
  // references to them (8 bytes a stat, ~300 B for a cluster's). `prefix` is
  // sanitized and ends with '.'. Made the first time a prefix asks for a
  // Block type and kept for the store's life; later calls return the same.
  // Block needs: a constructor from the prefix (which it keeps and its
  // stats borrow), prefix(), and forEachStat(f) calling f on each member.
  // A member whose name some stat already has is not listed (the first one
  // made stays the one shown).
  template <class Block>
  Block& block(std::string_view prefix);

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
  // Lists a block's member under its name unless the name is taken (under mutex_).
  void list(Counter& stat);
  void list(Gauge& stat);
  void list(Histogram& stat);

  // Blocks by (prefix, Block type); the prefix is the block's own copy.
  struct BlockKey {
    std::string_view prefix;
    const void* type;
    bool operator==(const BlockKey& o) const { return type == o.type && prefix == o.prefix; }
    template <typename H>
    friend H AbslHashValue(H h, const BlockKey& k) {
      return H::combine(std::move(h), k.prefix, k.type);
    }
  };
  struct BlockEntry {
    void* block;
    void (*destroy)(void*);
  };

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
  absl::flat_hash_map<BlockKey, BlockEntry> blocks_by_prefix_;
};

// Helpers for Block types, whose stats are listed once in an X-macro
// LIST(COUNTER, GAUGE, HISTOGRAM): LIST(COURIER_STAT_MEMBER_COUNTER, ...)
// declares the members (after a `const std::string prefix_` member), and
// LIST(COURIER_STAT_VISIT, ...) inside forEachStat(F&& f) visits them.
#define COURIER_STAT_MEMBER_COUNTER(n) ::courier::stats::Counter n{&prefix_, #n};
#define COURIER_STAT_MEMBER_GAUGE(n) ::courier::stats::Gauge n{&prefix_, #n};
#define COURIER_STAT_MEMBER_HISTOGRAM(n) \
  ::courier::stats::Histogram n{&prefix_, #n, ::courier::stats::Histogram::Unit::Milliseconds};
#define COURIER_STAT_VISIT(n) f(n);

template <class Block>
Block& Store::block(std::string_view prefix) {
  static_assert(alignof(Block) <= alignof(std::max_align_t));
  static const char type = 0;  // one address per Block type
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_by_prefix_.find(BlockKey{prefix, &type});
  if (it != blocks_by_prefix_.end()) return *static_cast<Block*>(it->second.block);
  Block* made = new (allocate(sizeof(Block))) Block(prefix);
  made->forEachStat([this](auto& stat) {
    stat.setInBlock();
    list(stat);
  });
  blocks_by_prefix_.emplace(BlockKey{made->prefix(), &type},
                            BlockEntry{made, [](void* b) { static_cast<Block*>(b)->~Block(); }});
  return *made;
}

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
