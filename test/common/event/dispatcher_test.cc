#include "source/common/event/dispatcher.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace courier::event {
namespace {

TEST(DispatcherTest, PostFromAnotherThreadRunsOnTheLoopInOrder) {
  Dispatcher d("test");
  std::vector<int> seen;
  std::thread::id loop_thread;
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i) d.post([&, i] { seen.push_back(i); });
    d.post([&] {
      loop_thread = std::this_thread::get_id();
      d.exit();
    });
  });
  d.run();
  poster.join();
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_EQ(loop_thread, std::this_thread::get_id());
}

TEST(DispatcherTest, TimerFiresAndCanBeRearmed) {
  Dispatcher d("test");
  int fired = 0;
  std::unique_ptr<Timer> t;
  t = d.createTimer([&] {
    if (++fired < 3) {
      t->enable(std::chrono::milliseconds(1));
    } else {
      d.exit();
    }
  });
  t->enable(std::chrono::milliseconds(1));
  d.run();
  EXPECT_EQ(fired, 3);
  EXPECT_FALSE(t->enabled());
}

TEST(DispatcherTest, DisabledTimerDoesNotFire) {
  Dispatcher d("test");
  bool fired = false;
  auto t = d.createTimer([&] { fired = true; });
  t->enable(std::chrono::milliseconds(1));
  t->disable();
  auto stop = d.createTimer([&] { d.exit(); });
  stop->enable(std::chrono::milliseconds(20));
  d.run();
  EXPECT_FALSE(fired);
}

struct Tracked : DeferredDeletable {
  explicit Tracked(bool& destroyed) : destroyed(destroyed) {}
  ~Tracked() override { destroyed = true; }
  bool& destroyed;
};

TEST(DispatcherTest, DeferredDeleteRunsAfterTheCurrentCallback) {
  Dispatcher d("test");
  bool destroyed = false;
  bool destroyed_inside_callback = true;
  d.post([&] {
    d.deferredDelete(std::make_unique<Tracked>(destroyed));
    destroyed_inside_callback = destroyed;
    d.post([&] { d.exit(); });
  });
  d.run();
  EXPECT_FALSE(destroyed_inside_callback);
  EXPECT_TRUE(destroyed);
}

TEST(DispatcherTest, IsThreadSafeOnlyOnTheLoopThread) {
  Dispatcher d("test");
  std::atomic<bool> other_thread_safe{true};
  bool loop_thread_safe = false;
  d.post([&] {
    loop_thread_safe = d.isThreadSafe();
    std::thread t([&] { other_thread_safe = d.isThreadSafe(); });
    t.join();
    d.exit();
  });
  d.run();
  EXPECT_TRUE(loop_thread_safe);
  EXPECT_FALSE(other_thread_safe);
}

TEST(DispatcherTest, ExitRequestedBeforeRunStillStopsTheLoop) {
  Dispatcher d("test");
  bool ran = false;
  d.post([&] { ran = true; });
  d.exit();
  // Would block forever if the early exit were lost.
  d.run();
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace courier::event
