// ConnPoolManager and ConnPool per routing priority: a HIGH route's requests
// get pools of their own, made on first use, whose connections and waiters
// count against the cluster's HIGH circuit breakers and not DEFAULT's.
#include "source/common/http/pool/conn_pool.h"

#include <poll.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/stats/store.h"
#include "test/test_common/net.h"

namespace courier::http::pool {
namespace {

using namespace std::chrono_literals;

// Records what the pool told it; holds the connection it is handed.
struct Waiter : PoolCallbacks {
  void onPoolReady(UpstreamStream& s) override { stream = &s; }
  void onPoolFailure(Failure reason) override { failure = reason; }
  void onUpstreamClosed() override { closed = true; }
  void onUpstreamData(buffer::Buffer& data) override { data.drain(data.length()); }
  UpstreamStream* stream = nullptr;
  std::optional<Failure> failure;
  bool closed = false;
};

class ConnPoolPriorityTest : public ::testing::Test {
 protected:
  ConnPoolPriorityTest()
      : upstream_([this](int fd) {
          // Accepts and keeps the connection, silent, until the test ends.
          pollfd p{fd, POLLIN, 0};
          const auto deadline = std::chrono::steady_clock::now() + 10s;
          while (!stop_ && std::chrono::steady_clock::now() < deadline) {
            if (::poll(&p, 1, 10) > 0) {
              char c;
              if (::recv(fd, &c, 1, 0) <= 0) return;
            }
          }
        }) {
    auto cluster = std::make_shared<upstream::Cluster>();
    cluster->name = "c";
    cluster->connect_timeout = 2000ms;
    cluster->stats = &upstream::ClusterStats::of(store_, "c");
    // DEFAULT: one connection, one waiter; HIGH: two of each.
    cluster->resources = std::make_shared<upstream::ResourceManager>(1, 1);
    cluster->high_resources = std::make_shared<upstream::ResourceManager>(2, 2);
    cluster_ = cluster;
    host_.address = *network::Address::fromIpPort("127.0.0.1", upstream_.port());
  }
  ~ConnPoolPriorityTest() override { stop_ = true; }

  bool runUntil(const std::function<bool()>& cond, std::chrono::milliseconds limit = 10000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond() && std::chrono::steady_clock::now() < deadline) runFor(2ms);
    return cond();
  }
  void runFor(std::chrono::milliseconds d) {
    auto t = dispatcher_.createTimer([this] { dispatcher_.exit(); });
    t->enable(d);
    dispatcher_.run();
  }
  uint64_t counter(const std::string& name) { return store_.counter("cluster.c." + name).value(); }
  upstream::ResourceManager& dflt() { return *cluster_->resources; }
  upstream::ResourceManager& high() { return *cluster_->high_resources; }

  std::atomic<bool> stop_{false};
  event::Dispatcher dispatcher_{"test"};
  stats::Store store_;
  test::TcpServer upstream_;
  upstream::ClusterConstSharedPtr cluster_;
  upstream::Host host_;
};

TEST_F(ConnPoolPriorityTest, AHighRouteGetsItsOwnPoolMadeOnFirstUse) {
  ConnPoolManager manager(dispatcher_);
  Pool& d = manager.pool(cluster_, host_);
  EXPECT_EQ(&manager.pool(cluster_, host_), &d);
  // DEFAULT alone costs one pool per host, as before priorities were kept apart.
  EXPECT_EQ(manager.poolCount(), 1u);
  Pool& h = manager.pool(cluster_, host_, false, /*high_priority=*/true);
  EXPECT_NE(&h, &d);
  EXPECT_EQ(&manager.pool(cluster_, host_, false, true), &h);
  EXPECT_EQ(manager.poolCount(), 2u);
}

TEST_F(ConnPoolPriorityTest, HighConnectionsAndWaitersCountAgainstTheHighThresholds) {
  ConnPool pool(dispatcher_, cluster_, host_, /*high_priority=*/true);
  Waiter a, b, c, d, e;
  pool.newStream(a);
  pool.newStream(b);
  ASSERT_TRUE(runUntil([&] { return a.stream != nullptr && b.stream != nullptr; }));
  EXPECT_EQ(high().connections.count(), 2u);
  EXPECT_EQ(dflt().connections.count(), 0u);
  // HIGH's two connections are busy: the next two wait, the fifth overflows.
  pool.newStream(c);
  pool.newStream(d);
  EXPECT_EQ(counter("upstream_cx_overflow"), 2u);
  EXPECT_EQ(high().pending_requests.count(), 2u);
  EXPECT_EQ(dflt().pending_requests.count(), 0u);
  pool.newStream(e);
  ASSERT_TRUE(e.failure.has_value());
  EXPECT_EQ(*e.failure, PoolCallbacks::Failure::Overflow);
  EXPECT_EQ(counter("upstream_rq_pending_overflow"), 1u);
  // A connection given back goes to the longest waiter.
  pool.release(*a.stream, true);
  EXPECT_NE(c.stream, nullptr);
  EXPECT_EQ(high().pending_requests.count(), 1u);
  pool.cancel(d);
  EXPECT_EQ(high().pending_requests.count(), 0u);
  EXPECT_FALSE(c.failure || d.failure);
}

TEST_F(ConnPoolPriorityTest, ASaturatedDefaultPoolLeavesTheHighPoolItsConnections) {
  ConnPoolManager manager(dispatcher_);
  Pool& d = manager.pool(cluster_, host_);
  Pool& h = manager.pool(cluster_, host_, false, true);
  Waiter d1, d2, d3, h1, h2;
  d.newStream(d1);
  ASSERT_TRUE(runUntil([&] { return d1.stream != nullptr; }));
  d.newStream(d2);  // waits: DEFAULT allows one connection
  d.newStream(d3);  // DEFAULT allows one waiter
  ASSERT_TRUE(d3.failure.has_value());
  EXPECT_EQ(*d3.failure, PoolCallbacks::Failure::Overflow);
  h.newStream(h1);
  h.newStream(h2);
  ASSERT_TRUE(runUntil([&] { return h1.stream != nullptr && h2.stream != nullptr; }));
  EXPECT_EQ(dflt().connections.count(), 1u);
  EXPECT_EQ(high().connections.count(), 2u);
  EXPECT_EQ(counter("upstream_cx_total"), 3u);
  EXPECT_EQ(d2.stream, nullptr);
  EXPECT_FALSE(d2.failure.has_value());
}

TEST_F(ConnPoolPriorityTest, ADestroyedHighPoolGivesBackItsHighCounts) {
  {
    ConnPool pool(dispatcher_, cluster_, host_, true);
    Waiter a, b, c;
    pool.newStream(a);
    pool.newStream(b);
    ASSERT_TRUE(runUntil([&] { return a.stream != nullptr && b.stream != nullptr; }));
    pool.newStream(c);
    EXPECT_EQ(high().connections.count(), 2u);
    EXPECT_EQ(high().pending_requests.count(), 1u);
  }
  EXPECT_EQ(high().connections.count(), 0u);
  EXPECT_EQ(high().pending_requests.count(), 0u);
  EXPECT_EQ(dflt().connections.count(), 0u);
  runFor(10ms);
}

}  // namespace
}  // namespace courier::http::pool
