// Publishes immutable snapshots from the main thread to every worker. Each
// worker swaps its own pointer when the posted update runs on its loop, so the
// request path reads it without a lock; a reader that copied the shared_ptr
// keeps the old snapshot alive until it lets go.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "source/common/event/dispatcher.h"

namespace courier::thread_local_ {

template <class T>
class SnapshotSlot {
 public:
  // Runs on worker i's thread right after it swapped, so per-worker state
  // derived from the snapshot (load-balancer state, say) follows it.
  using OnSwap = std::function<void(size_t worker, const std::shared_ptr<const T>& snapshot)>;

  // workers[i] is the dispatcher of worker i; main runs the completion callbacks.
  SnapshotSlot(event::Dispatcher& main, std::vector<event::Dispatcher*> workers, OnSwap on_swap = nullptr)
      : main_(main), workers_(std::move(workers)), per_worker_(workers_.size()), on_swap_(std::move(on_swap)) {}

  // Main thread. After every worker has swapped, on_applied runs on main.
  void publish(std::shared_ptr<const T> snapshot, std::function<void()> on_applied = nullptr) {
    latest_ = snapshot;
    auto remaining = std::make_shared<std::atomic<size_t>>(workers_.size());
    auto done = std::make_shared<std::function<void()>>(std::move(on_applied));
    if (workers_.empty() && *done) (*done)();
    for (size_t i = 0; i < workers_.size(); ++i) {
      workers_[i]->post([this, i, snapshot, remaining, done] {
        per_worker_[i].current = snapshot;
        if (on_swap_) on_swap_(i, snapshot);
        if (remaining->fetch_sub(1) == 1 && *done) main_.post([done] { (*done)(); });
      });
    }
  }

  // Worker i's thread only: the snapshot it is serving with.
  const std::shared_ptr<const T>& get(size_t worker) const { return per_worker_[worker].current; }
  // The thread publishing runs on (timers of publishers that update later).
  event::Dispatcher& mainDispatcher() const { return main_; }
  // Main thread: the last published snapshot.
  const std::shared_ptr<const T>& latest() const { return latest_; }

 private:
  // One cache line per worker so that swaps on one core never bounce another's line.
  struct alignas(64) PerWorker {
    std::shared_ptr<const T> current;
  };

  event::Dispatcher& main_;
  std::vector<event::Dispatcher*> workers_;
  std::vector<PerWorker> per_worker_;
  std::shared_ptr<const T> latest_;
  OnSwap on_swap_;
};

}  // namespace courier::thread_local_
