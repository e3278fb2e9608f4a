// Http2Pool against a real HTTP/2 server on loopback (our server codec on a
// thread): how many connections the pool opens for the server's advertised
// SETTINGS_MAX_CONCURRENT_STREAMS, and when requests wait instead.
#include "source/common/http/pool/http2_pool.h"

#include <poll.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/http/http2/codec.h"
#include "source/common/stats/store.h"
#include "test/test_common/net.h"

namespace courier::http::pool {
namespace {

using namespace std::chrono_literals;

// Answers every request with 200 once `release` is set; until then requests
// are held, and `held` counts them across connections.
struct HoldingServer {
  std::atomic<bool> release{false};
  std::atomic<int> held{0};
  // Closes each connection at once without a byte of HTTP/2.
  bool close_at_once = false;
  http2::Http2Settings settings;

  test::TcpServer::Handler handler() {
    return [this](int fd) {
      if (close_at_once) return;
      struct Conn : ServerConnectionCallbacks {
        struct Request : RequestDecoder {
          explicit Request(ResponseEncoder& e) : encoder(e) {}
          void decodeHeaders(HeaderMapPtr, bool end) override { complete = end; }
          void decodeData(buffer::Buffer& d, bool end) override {
            d.drain(d.length());
            complete = end;
          }
          void decodeTrailers(HeaderMapPtr) override { complete = true; }
          ResponseEncoder& encoder;
          bool complete = false;
          bool answered = false;
        };
        RequestDecoder& newStream(ResponseEncoder& e) override {
          requests.push_back(std::make_unique<Request>(e));
          return *requests.back();
        }
        std::vector<std::unique_ptr<Request>> requests;
      } conn;
      buffer::Buffer out;
      http2::ServerConnection codec(conn, out, settings);
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      size_t counted = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        while (!out.empty() && out.writeToFd(fd).bytes > 0) {
        }
        for (; counted < conn.requests.size() && conn.requests[counted]->complete; ++counted) ++held;
        if (release) {
          for (auto& r : conn.requests) {
            if (!r->complete || r->answered) continue;
            r->answered = true;
            HeaderMap h;
            h.setStatus(200);
            r->encoder.encodeHeaders(h, true);
          }
          while (!out.empty() && out.writeToFd(fd).bytes > 0) {
          }
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) continue;
        buffer::Buffer in;
        if (in.readFromFd(fd, 65536).bytes <= 0) break;
        if (codec.dispatch(in)) break;
      }
      codec.onConnectionClosed();
    };
  }
};

// One request through the pool: GET, response recorded; like the router it
// gives the stream back as the response ends.
struct Request : PoolCallbacks, ResponseDecoder {
  explicit Request(Pool& p) : pool(p) {}
  void onPoolReady(UpstreamStream& s) override {
    stream = &s;
    RequestEncoder& encoder = s.newStream(*this);
    HeaderMap h;
    h.set(headers::kMethod, "GET");
    h.set(headers::kPath, "/");
    h.set(headers::kScheme, "http");
    h.set(headers::kAuthority, "example.com");
    encoder.encodeHeaders(h, true);
    s.flush();
  }
  void onPoolFailure(Failure reason) override { failure = reason; }
  void onUpstreamClosed() override { closed = true; }
  void onUpstreamData(buffer::Buffer& data) override { data.drain(data.length()); }
  void decode1xxHeaders(HeaderMapPtr) override {}
  void decodeHeaders(HeaderMapPtr h, bool end) override {
    status = h->status();
    if (end) complete();
  }
  void decodeData(buffer::Buffer& d, bool end) override {
    d.drain(d.length());
    if (end) complete();
  }
  void decodeTrailers(HeaderMapPtr) override { complete(); }
  void complete() {
    done = true;
    pool.release(*stream, true);
    stream = nullptr;
  }

  Pool& pool;
  UpstreamStream* stream = nullptr;
  std::optional<Failure> failure;
  bool closed = false;
  bool done = false;
  int status = 0;
};

class Http2PoolTest : public ::testing::Test {
 protected:
  // high_priority: the pool serves HIGH routes; the HIGH thresholds get
  // max_connections and DEFAULT's stay at Envoy's defaults.
  void start(uint32_t server_limit, uint64_t max_connections = 1024, bool high_priority = false) {
    server_.settings.max_concurrent_streams = server_limit;
    upstream_ = std::make_unique<test::TcpServer>(server_.handler());
    auto cluster = std::make_shared<upstream::Cluster>();
    cluster->name = "h2";
    cluster->connect_timeout = 2000ms;
    cluster->http2_settings = http2::Http2Settings{};
    cluster->stats = &upstream::ClusterStats::of(store_, "h2");
    (high_priority ? cluster->high_resources : cluster->resources) =
        std::make_shared<upstream::ResourceManager>(max_connections);
    cluster_ = cluster;
    host_.address = *network::Address::fromIpPort("127.0.0.1", upstream_->port());
    pool_ = std::make_unique<Http2Pool>(dispatcher_, cluster_, host_, high_priority);
  }

  void TearDown() override {
    server_.release = true;
    pool_.reset();
    runFor(20ms);
  }

  // Runs the loop until cond holds (bounded).
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

  uint64_t counter(const std::string& name) { return store_.counter("cluster.h2." + name).value(); }

  std::vector<std::unique_ptr<Request>> send(size_t n) {
    std::vector<std::unique_ptr<Request>> out;
    for (size_t i = 0; i < n; ++i) {
      out.push_back(std::make_unique<Request>(*pool_));
      pool_->newStream(*out.back());
    }
    return out;
  }

  static bool allDone(const std::vector<std::unique_ptr<Request>>& rs) {
    for (const auto& r : rs) {
      if (!r->done) return false;
    }
    return true;
  }

  event::Dispatcher dispatcher_{"test"};
  stats::Store store_;
  HoldingServer server_;
  std::unique_ptr<test::TcpServer> upstream_;
  upstream::ClusterConstSharedPtr cluster_;
  upstream::Host host_;
  std::unique_ptr<Http2Pool> pool_;
};

TEST_F(Http2PoolTest, ServerLimitOfOneOpensAConnectionPerConcurrentRequest) {
  start(/*server_limit=*/1);
  auto requests = send(4);
  // All four are held upstream at once: only possible on four connections.
  ASSERT_TRUE(runUntil([&] { return server_.held == 4; })) << server_.held;
  EXPECT_EQ(upstream_->acceptedCount(), 4);
  EXPECT_EQ(counter("upstream_cx_total"), 4u);
  EXPECT_EQ(counter("upstream_cx_http2_total"), 4u);
  EXPECT_EQ(cluster_->resources->pending_requests.count(), 0u);
  server_.release = true;
  ASSERT_TRUE(runUntil([&] { return allDone(requests); }));
  for (auto& r : requests) EXPECT_EQ(r->status, 200);
}

TEST_F(Http2PoolTest, ALaterRequestOpensANewConnectionWhenTheOthersAreFull) {
  start(/*server_limit=*/2);
  auto first = send(2);
  ASSERT_TRUE(runUntil([&] { return server_.held == 2; }));
  EXPECT_EQ(upstream_->acceptedCount(), 1);
  auto third = send(1);
  ASSERT_TRUE(runUntil([&] { return server_.held == 3; }));
  EXPECT_EQ(upstream_->acceptedCount(), 2);
  server_.release = true;
  ASSERT_TRUE(runUntil([&] { return allDone(first) && allDone(third); }));
  // Room again on the open connections: no third connection.
  auto more = send(4);
  ASSERT_TRUE(runUntil([&] { return allDone(more); }));
  EXPECT_EQ(counter("upstream_cx_total"), 2u);
}

TEST_F(Http2PoolTest, RequestsWaitOnlyWhenTheConnectionBreakerIsFull) {
  start(/*server_limit=*/1, /*max_connections=*/2);
  auto requests = send(3);
  ASSERT_TRUE(runUntil([&] { return server_.held == 2; }));
  EXPECT_EQ(counter("upstream_cx_total"), 2u);
  EXPECT_GE(counter("upstream_cx_overflow"), 1u);
  EXPECT_EQ(cluster_->resources->pending_requests.count(), 1u);
  EXPECT_EQ(requests[2]->stream, nullptr);
  EXPECT_FALSE(requests[2]->failure);
  server_.release = true;
  // The waiter takes the first stream slot that frees up.
  ASSERT_TRUE(runUntil([&] { return allDone(requests); }));
  EXPECT_EQ(counter("upstream_cx_total"), 2u);
  EXPECT_EQ(cluster_->resources->pending_requests.count(), 0u);
}

TEST_F(Http2PoolTest, AHighPoolCountsConnectionsAndWaitersAgainstTheHighThresholds) {
  start(/*server_limit=*/1, /*max_connections=*/2, /*high_priority=*/true);
  auto requests = send(3);
  ASSERT_TRUE(runUntil([&] { return server_.held == 2; }));
  EXPECT_EQ(cluster_->high_resources->connections.count(), 2u);
  EXPECT_EQ(cluster_->high_resources->pending_requests.count(), 1u);
  EXPECT_EQ(cluster_->resources->connections.count(), 0u);
  EXPECT_EQ(cluster_->resources->pending_requests.count(), 0u);
  EXPECT_GE(counter("upstream_cx_overflow"), 1u);
  server_.release = true;
  ASSERT_TRUE(runUntil([&] { return allDone(requests); }));
  EXPECT_EQ(cluster_->high_resources->pending_requests.count(), 0u);
  pool_.reset();
  EXPECT_EQ(cluster_->high_resources->connections.count(), 0u);
}

TEST_F(Http2PoolTest, AServerAdvertisingNoStreamsGetsNoMoreConnections) {
  start(/*server_limit=*/0);
  auto requests = send(5);
  ASSERT_TRUE(runUntil([&] { return upstream_->acceptedCount() == 1; }));
  runFor(100ms);
  EXPECT_EQ(upstream_->acceptedCount(), 1);
  EXPECT_EQ(counter("upstream_cx_total"), 1u);
  EXPECT_EQ(cluster_->resources->pending_requests.count(), 5u);
  for (auto& r : requests) pool_->cancel(*r);
  EXPECT_EQ(cluster_->resources->pending_requests.count(), 0u);
}

TEST_F(Http2PoolTest, AServerThatClosesBeforeSettingsFailsTheWaitersWithoutReconnecting) {
  server_.close_at_once = true;
  start(/*server_limit=*/1);
  auto requests = send(3);
  ASSERT_TRUE(runUntil([&] {
    for (auto& r : requests) {
      if (!r->failure) return false;
    }
    return true;
  }));
  for (auto& r : requests) EXPECT_EQ(*r->failure, PoolCallbacks::Failure::ConnectFailure);
  runFor(50ms);
  EXPECT_EQ(counter("upstream_cx_total"), 1u);
  EXPECT_EQ(counter("upstream_cx_connect_fail"), 1u);
  EXPECT_EQ(cluster_->resources->connections.count(), 0u);
  EXPECT_EQ(cluster_->resources->pending_requests.count(), 0u);
}

}  // namespace
}  // namespace courier::http::pool
