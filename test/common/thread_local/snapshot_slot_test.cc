#include "source/common/thread_local/snapshot_slot.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace courier::thread_local_ {
namespace {

// A snapshot whose fields must always agree; a torn read would break that.
struct Pair {
  Pair(uint64_t v, std::atomic<int>& live) : a(v), b(v * 2), live(live) { live.fetch_add(1); }
  ~Pair() { live.fetch_sub(1); }
  uint64_t a;
  uint64_t b;
  std::atomic<int>& live;
};

class Workers {
 public:
  explicit Workers(size_t n) {
    for (size_t i = 0; i < n; ++i) dispatchers_.push_back(std::make_unique<event::Dispatcher>("w"));
  }
  ~Workers() { stop(); }
  std::vector<event::Dispatcher*> pointers() {
    std::vector<event::Dispatcher*> out;
    for (auto& d : dispatchers_) out.push_back(d.get());
    return out;
  }
  void start() {
    for (auto& d : dispatchers_) threads_.emplace_back([&d] { d->run(); });
  }
  void stop() {
    for (auto& d : dispatchers_) d->exit();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  event::Dispatcher& at(size_t i) { return *dispatchers_[i]; }

 private:
  std::vector<std::unique_ptr<event::Dispatcher>> dispatchers_;
  std::vector<std::thread> threads_;
};

TEST(SnapshotSlotTest, EveryWorkerSeesThePublishedSnapshotAndMainIsToldOnce) {
  event::Dispatcher main("main");
  Workers workers(3);
  std::atomic<int> live{0};
  SnapshotSlot<Pair> slot(main, workers.pointers());
  workers.start();
  int applied = 0;
  slot.publish(std::make_shared<const Pair>(7, live), [&] {
    ++applied;
    main.exit();
  });
  main.run();
  EXPECT_EQ(applied, 1);
  for (size_t i = 0; i < 3; ++i) {
    std::atomic<uint64_t> seen{0};
    std::atomic<bool> done{false};
    workers.at(i).post([&, i] {
      seen = slot.get(i)->a;
      done = true;
    });
    while (!done) std::this_thread::yield();
    EXPECT_EQ(seen.load(), 7u);
  }
  workers.stop();
}

TEST(SnapshotSlotTest, SwapHookRunsOnEachWorkerWithTheNewSnapshot) {
  event::Dispatcher main("main");
  Workers workers(2);
  std::atomic<int> live{0};
  std::atomic<int> hooked{0};
  std::vector<std::thread::id> hook_threads(2);
  std::vector<std::thread::id> worker_threads(2);
  SnapshotSlot<Pair> slot(main, workers.pointers(), [&](size_t w, const std::shared_ptr<const Pair>& snap) {
    if (snap->a == 3) hooked.fetch_add(1);
    hook_threads[w] = std::this_thread::get_id();
  });
  workers.start();
  for (size_t i = 0; i < 2; ++i) workers.at(i).post([&, i] { worker_threads[i] = std::this_thread::get_id(); });
  slot.publish(std::make_shared<const Pair>(3, live), [&] { main.exit(); });
  main.run();
  workers.stop();
  EXPECT_EQ(hooked.load(), 2);
  EXPECT_EQ(hook_threads, worker_threads);
}

TEST(SnapshotSlotTest, ReadersUnderConcurrentSwapsNeverSeeATornSnapshotAndOldOnesAreFreed) {
  event::Dispatcher main("main");
  Workers workers(2);
  std::atomic<int> live{0};
  SnapshotSlot<Pair> slot(main, workers.pointers());
  workers.start();
  // Each worker keeps reading its current snapshot, as requests would, while
  // main publishes a stream of new ones.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> torn{0}, reads{0};
  std::function<void(size_t)> reader = [&](size_t w) {
    const auto& snap = slot.get(w);
    if (snap) {
      if (snap->b != snap->a * 2) torn.fetch_add(1);
      reads.fetch_add(1);
    }
    if (!stop) workers.at(w).post([&, w] { reader(w); });
  };
  workers.at(0).post([&] { reader(0); });
  workers.at(1).post([&] { reader(1); });

  // A request in flight holds the first snapshot across all the swaps.
  std::shared_ptr<const Pair> held;
  constexpr int kUpdates = 500;
  int published = 0;
  std::function<void()> next = [&] {
    if (published == kUpdates) {
      main.exit();
      return;
    }
    ++published;
    slot.publish(std::make_shared<const Pair>(published, live), next);
    if (published == 1) held = slot.latest();
  };
  next();
  main.run();
  stop = true;
  workers.stop();

  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->a, 1u);
  // Alive now: the held first one and the latest (in the slot).
  EXPECT_EQ(live.load(), 2);
  held.reset();
  EXPECT_EQ(live.load(), 1);
}

}  // namespace
}  // namespace courier::thread_local_
