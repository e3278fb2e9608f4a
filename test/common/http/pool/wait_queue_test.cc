// WaitQueue: the waiters of a pool, each holding a max_pending_requests place
// from push until it leaves the queue, whichever way it leaves.
#include "source/common/http/pool/wait_queue.h"

#include <memory>
#include <optional>

#include "gtest/gtest.h"
#include "source/common/stats/store.h"

namespace courier::http::pool {
namespace {

struct Waiter : PoolCallbacks {
  void onPoolReady(UpstreamStream&) override {}
  void onPoolFailure(Failure reason) override { failure = reason; }
  void onUpstreamClosed() override {}
  void onUpstreamData(buffer::Buffer&) override {}
  std::optional<Failure> failure;
};

class WaitQueueTest : public ::testing::Test {
 protected:
  WaitQueueTest() {
    cluster_.stats = &upstream::ClusterStats::of(store_, "c");
    cluster_.resources = std::make_shared<upstream::ResourceManager>(1024, /*max_pending_requests=*/2);
  }
  upstream::ResourceLimit& pending() { return cluster_.resources->pending_requests; }
  stats::Counter& overflow() { return cluster_.stats->upstream_rq_pending_overflow; }
  uint64_t overflows() { return overflow().value(); }

  stats::Store store_;
  upstream::Cluster cluster_;
  Waiter a_, b_, c_;
};

TEST_F(WaitQueueTest, PushTakesAPlaceAndPopGivesItBackInArrivalOrder) {
  WaitQueue q(pending());
  ASSERT_TRUE(q.push(a_, overflow()));
  ASSERT_TRUE(q.push(b_, overflow()));
  EXPECT_EQ(pending().count(), 2u);
  EXPECT_EQ(q.pop(), &a_);
  EXPECT_EQ(pending().count(), 1u);
  EXPECT_EQ(q.pop(), &b_);
  EXPECT_EQ(pending().count(), 0u);
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_EQ(pending().count(), 0u);
}

TEST_F(WaitQueueTest, AFullBreakerFailsThePushWithOverflowAndCountsIt) {
  WaitQueue q(pending());
  ASSERT_TRUE(q.push(a_, overflow()));
  ASSERT_TRUE(q.push(b_, overflow()));
  EXPECT_FALSE(q.push(c_, overflow()));
  ASSERT_TRUE(c_.failure.has_value());
  EXPECT_EQ(*c_.failure, PoolCallbacks::Failure::Overflow);
  EXPECT_FALSE(a_.failure.has_value());
  EXPECT_EQ(overflows(), 1u);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(pending().count(), 2u);
}

TEST_F(WaitQueueTest, RemoveGivesBackOnlyAQueuedWaitersPlace) {
  WaitQueue q(pending());
  ASSERT_TRUE(q.push(a_, overflow()));
  ASSERT_TRUE(q.push(b_, overflow()));
  EXPECT_TRUE(q.remove(a_));
  EXPECT_EQ(pending().count(), 1u);
  EXPECT_FALSE(q.remove(a_));
  EXPECT_FALSE(q.remove(c_));
  EXPECT_EQ(pending().count(), 1u);
  EXPECT_EQ(q.pop(), &b_);
}

TEST_F(WaitQueueTest, PopBackTakesTheNewest) {
  WaitQueue q(pending());
  ASSERT_TRUE(q.push(a_, overflow()));
  ASSERT_TRUE(q.push(b_, overflow()));
  EXPECT_EQ(q.popBack(), &b_);
  EXPECT_EQ(pending().count(), 1u);
  EXPECT_EQ(q.popBack(), &a_);
  EXPECT_EQ(q.popBack(), nullptr);
  EXPECT_EQ(pending().count(), 0u);
}

TEST_F(WaitQueueTest, ClearAndDestructionGiveBackEveryPlaceWithoutTellingTheWaiters) {
  {
    WaitQueue q(pending());
    ASSERT_TRUE(q.push(a_, overflow()));
    ASSERT_TRUE(q.push(b_, overflow()));
    q.clear();
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(pending().count(), 0u);
    ASSERT_TRUE(q.push(c_, overflow()));
  }
  EXPECT_EQ(pending().count(), 0u);
  EXPECT_FALSE(a_.failure || b_.failure || c_.failure);
}

TEST_F(WaitQueueTest, QueuesOfDifferentBreakersCountApart) {
  WaitQueue dflt(pending());
  WaitQueue high(cluster_.high_resources->pending_requests);
  ASSERT_TRUE(dflt.push(a_, overflow()));
  ASSERT_TRUE(dflt.push(b_, overflow()));
  ASSERT_TRUE(high.push(c_, overflow()));
  EXPECT_EQ(pending().count(), 2u);
  EXPECT_EQ(cluster_.high_resources->pending_requests.count(), 1u);
}

}  // namespace
}  // namespace courier::http::pool
