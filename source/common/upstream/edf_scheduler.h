// Earliest-deadline-first (EDF) schedules for weighted picks. Every entry has
// a deadline; a pick takes the entry due first and moves its deadline on by
// 1 / weight, so over time each entry is picked in proportion to its weight
// and a heavy entry's turns are spread out rather than bunched. A pick costs
// O(log n) in the number of entries.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace courier::upstream {

// The queue both weighted balancers share: a 4-ary min-heap on `Earlier` (a
// stateless strict total order, so equal deadlines resolve the same way every
// time). A pick reads top(), moves its deadline later and calls
// topMovedLater(), which restores the order in one pass (the hole goes to the
// bottom along the earliest children, then the entry rises to its place: a
// moved entry usually belongs near the bottom). Four children per node halve
// a binary heap's depth, and so its cache misses on large host sets.
template <class Entry, class Earlier>
class EdfQueue {
 public:
  static constexpr size_t kArity = 4;

  // Takes entries in any order; O(n).
  void assign(std::vector<Entry> entries) {
    heap_ = std::move(entries);
    if (heap_.size() < 2) return;
    for (size_t i = (heap_.size() - 2) / kArity + 1; i-- > 0;) siftDown(i);
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  void clear() { heap_ = {}; }
  // The entry due first; the queue must not be empty.
  Entry& top() { return heap_.front(); }
  const Entry& top() const { return heap_.front(); }
  // After top()'s deadline moved later (never earlier).
  void topMovedLater() {
    const size_t n = heap_.size();
    if (n < 2) return;
    const Entry moved = heap_[0];
    size_t hole = 0;
    for (;;) {
      const size_t first = hole * kArity + 1;
      if (first >= n) break;
      size_t best = first;
      const size_t last = first + kArity < n ? first + kArity : n;
      for (size_t c = first + 1; c < last; ++c) {
        if (Earlier{}(heap_[c], heap_[best])) best = c;
      }
      heap_[hole] = heap_[best];
      hole = best;
    }
    while (hole > 0) {
      const size_t parent = (hole - 1) / kArity;
      if (!Earlier{}(moved, heap_[parent])) break;
      heap_[hole] = heap_[parent];
      hole = parent;
    }
    heap_[hole] = moved;
  }
  // In heap order (tests).
  const std::vector<Entry>& entries() const { return heap_; }

 private:
  void siftDown(size_t i) {
    const size_t n = heap_.size();
    const Entry moving = heap_[i];
    for (;;) {
      const size_t first = i * kArity + 1;
      if (first >= n) break;
      size_t best = first;
      const size_t last = first + kArity < n ? first + kArity : n;
      for (size_t c = first + 1; c < last; ++c) {
        if (Earlier{}(heap_[c], heap_[best])) best = c;
      }
      if (!Earlier{}(heap_[best], moving)) break;
      heap_[i] = heap_[best];
      i = best;
    }
    heap_[i] = moving;
  }

  std::vector<Entry> heap_;
};

// Weighted round robin over fixed integer weights (>= 1; 0 counts as 1).
// Entry i's turns fall every 1 / w_i, at (k + phase_i) / w_i for k = 0, 1,
// ... with phase_i a fixed fraction spread over [0, 1) by the index (the
// golden-ratio sequence), so light entries do not all fall due together and
// a heavy entry's turns land between theirs. Times are kept as integers (in
// units of 1 / (w_i * 2^16)) and compared by cross-multiplying, so no
// rounding can reorder two turns; turns due at the same instant go to the
// lower index. The order of turns repeats every W = sum(w_i) picks: any W
// picks in a row give entry i exactly w_i turns.
//
// `offset` (any 32-bit value, e.g. random per worker) starts the schedule at
// the instant offset / 2^32 of a cycle, as if every turn due by then had been
// taken: workers seeded differently start on different entries, at no cost
// beyond building the heap. An entry's count runs out after 2^48 turns (years
// at millions of picks a second).
class WeightedRoundRobinSchedule {
 public:
  // weight_of(i) gives entry i's weight, for i in [0, n).
  template <class WeightOf>
  WeightedRoundRobinSchedule(uint32_t n, WeightOf weight_of, uint32_t offset) {
    std::vector<Entry> entries;
    entries.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t given = weight_of(i);
      const uint64_t w = given == 0 ? 1 : given;
      const uint64_t phase = phaseOf(i);
      // Turns k with (k * 2^16 + phase) / (w * 2^16) <= offset / 2^32, i.e.
      // k * 2^16 + phase <= floor(offset * w / 2^16), are taken already.
      const uint64_t now = (uint64_t{offset} * w) >> 16;
      const uint64_t taken = now >= phase ? ((now - phase) >> kPhaseBits) + 1 : 0;
      entries.push_back({(taken << kPhaseBits) + phase, static_cast<uint32_t>(w), i});
    }
    queue_.assign(std::move(entries));
  }

  // The index of the entry whose turn it is; there must be one.
  uint32_t pick() {
    Entry& e = queue_.top();
    const uint32_t index = e.index;
    e.due += uint64_t{1} << kPhaseBits;
    queue_.topMovedLater();
    return index;
  }
  size_t size() const { return queue_.size(); }

 private:
  static constexpr unsigned kPhaseBits = 16;
  // The top 16 bits of i times 2^32 / golden ratio: any run of indices
  // spreads over [0, 2^16).
  static uint64_t phaseOf(uint32_t i) { return (i * 0x9e3779b9u) >> (32 - kPhaseBits); }

  struct Entry {
    uint64_t due;  // the next turn is due at due / (weight * 2^16)
    uint32_t weight;
    uint32_t index;
  };
  struct Earlier {
    bool operator()(const Entry& a, const Entry& b) const {
      // a.due / a.weight < b.due / b.weight, exactly: dues stay below 2^64
      // and weights below 2^32, so the products fit in 96 bits.
      const unsigned __int128 lhs = static_cast<unsigned __int128>(a.due) * b.weight;
      const unsigned __int128 rhs = static_cast<unsigned __int128>(b.due) * a.weight;
      return lhs < rhs || (lhs == rhs && a.index < b.index);
    }
  };

  EdfQueue<Entry, Earlier> queue_;
};

// The schedule above as a balancer keeps it: when a whole cycle is short
// (sum of weights at most 1024 and at most 16 per entry, so the table is at
// most twice the heap's bytes and takes some tens of microseconds to list),
// its turns are listed once and a pick is a table read; otherwise the heap.
// Both give the same turns in the same order; the table starts at position
// offset * W / 2^32.
class WeightedRoundRobin {
 public:
  static constexpr uint64_t kMaxTableTurns = 1024;
  static constexpr uint64_t kMaxTableTurnsPerEntry = 16;

  template <class WeightOf>
  WeightedRoundRobin(uint32_t n, WeightOf weight_of, uint32_t offset) {
    const uint64_t limit = std::min(kMaxTableTurns, kMaxTableTurnsPerEntry * n);
    uint64_t total = 0;
    // Stops at the limit: a large host set is not walked twice.
    for (uint32_t i = 0; i < n && total <= limit; ++i) total += weight_of(i) == 0 ? 1 : weight_of(i);
    if (total > limit) {
      schedule_.emplace(n, weight_of, offset);
      return;
    }
    WeightedRoundRobinSchedule cycle(n, weight_of, 0);
    table_.reserve(total);
    for (uint64_t i = 0; i < total; ++i) table_.push_back(static_cast<uint16_t>(cycle.pick()));
    next_ = static_cast<uint32_t>((uint64_t{offset} * total) >> 32);
  }

  // The index of the entry whose turn it is; there must be one.
  uint32_t pick() {
    if (schedule_.has_value()) return schedule_->pick();
    const uint32_t index = table_[next_];
    if (++next_ == table_.size()) next_ = 0;
    return index;
  }
  bool tabled() const { return !schedule_.has_value(); }

 private:
  std::vector<uint16_t> table_;
  uint32_t next_ = 0;
  std::optional<WeightedRoundRobinSchedule> schedule_;
};

}  // namespace courier::upstream
