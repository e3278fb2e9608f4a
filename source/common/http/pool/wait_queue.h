// The requests a pool keeps waiting for a connection (or a stream), in
// arrival order, each holding a place in the cluster's max_pending_requests
// circuit breaker for as long as it is queued. The queue takes the place on
// push and gives it back however the waiter leaves (served, cancelled,
// failed, or the pool destroyed), so the pools never count it themselves.
#pragma once

#include <cstddef>
#include <list>

#include "source/common/http/pool/pool.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/resource_manager.h"

namespace courier::http::pool {

class WaitQueue {
 public:
  // pending: the max_pending_requests breaker of the pool's routing
  // priority; it outlives the queue (the pool holds the cluster). One
  // reference only: a pool per host per worker is kept small.
  explicit WaitQueue(upstream::ResourceLimit& pending) : pending_(pending) {}
  ~WaitQueue() { clear(); }
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // Queues callbacks behind the others. When the breaker is full nothing is
  // queued: `overflow` (the cluster's upstream_rq_pending_overflow) counts
  // it, callbacks fail with Overflow, and the answer is false.
  bool push(PoolCallbacks& callbacks, stats::Counter& overflow) {
    if (!pending_.canCreate()) {
      overflow.inc();
      callbacks.onPoolFailure(PoolCallbacks::Failure::Overflow);
      return false;
    }
    pending_.inc();
    waiters_.push_back(&callbacks);
    return true;
  }
  // The longest waiting (or the newest, popBack), out of the queue; null
  // when none waits.
  PoolCallbacks* pop() {
    if (waiters_.empty()) return nullptr;
    PoolCallbacks* next = waiters_.front();
    waiters_.pop_front();
    pending_.dec();
    return next;
  }
  PoolCallbacks* popBack() {
    if (waiters_.empty()) return nullptr;
    PoolCallbacks* last = waiters_.back();
    waiters_.pop_back();
    pending_.dec();
    return last;
  }
  // The caller gave up waiting; false when it was not queued here.
  bool remove(PoolCallbacks& callbacks) {
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (*it == &callbacks) {
        waiters_.erase(it);
        pending_.dec();
        return true;
      }
    }
    return false;
  }
  // Forgets every waiter without telling it (the pool is going away).
  void clear() {
    for (size_t i = 0; i < waiters_.size(); ++i) pending_.dec();
    waiters_.clear();
  }
  size_t size() const { return waiters_.size(); }
  bool empty() const { return waiters_.empty(); }

 private:
  std::list<PoolCallbacks*> waiters_;
  upstream::ResourceLimit& pending_;
};

}  // namespace courier::http::pool
