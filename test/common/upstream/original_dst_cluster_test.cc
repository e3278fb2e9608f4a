#include "source/common/upstream/original_dst_cluster.h"

#include "gtest/gtest.h"

namespace courier::upstream {
namespace {

network::Address addr(const std::string& ip, uint32_t port) { return *network::Address::fromIpPort(ip, port); }

class OriginalDstLbTest : public testing::Test {
 protected:
  void build(OriginalDstSettings settings, std::vector<OriginalDstLbFactory::Known> known = {}) {
    sink_->add = [this](HostConstSharedPtr h) { reported_.push_back(std::move(h)); };
    factory_ = std::make_shared<OriginalDstLbFactory>(std::move(settings), sink_, std::move(known));
    lb_ = factory_->create(cluster_);
  }

  Cluster cluster_;
  std::shared_ptr<OriginalDstHostSink> sink_ = std::make_shared<OriginalDstHostSink>();
  std::vector<HostConstSharedPtr> reported_;
  std::shared_ptr<OriginalDstLbFactory> factory_;
  std::unique_ptr<LoadBalancer> lb_;
};

TEST_F(OriginalDstLbTest, TheLocalAddressIsTheHostAndIsReportedOnce) {
  build({});
  const network::Address local = addr("127.0.0.5", 8080);
  FixedLoadBalancerContext ctx;
  ctx.setDownstreamLocalAddress(&local);
  const Host* first = lb_->chooseHost(&ctx);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->address.asString(), "127.0.0.5:8080");
  EXPECT_EQ(lb_->chooseHost(&ctx), first);
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_EQ(reported_[0].get(), first);
}

TEST_F(OriginalDstLbTest, HeaderWinsOverTheConnectionAndBadHeadersPickNothing) {
  build({.header = "x-envoy-original-dst-host"});
  const network::Address local = addr("127.0.0.5", 8080);
  FixedLoadBalancerContext ctx;
  ctx.setDownstreamLocalAddress(&local);
  ctx.setOriginalDstHost("[::1]:9000");
  const Host* h = lb_->chooseHost(&ctx);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->address.asString(), "[::1]:9000");
  for (const char* bad : {"backend:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "[::1]9000", ""}) {
    ctx.setOriginalDstHost(std::string(bad));
    EXPECT_EQ(lb_->chooseHost(&ctx), nullptr) << bad;
  }
  // Without the header, the connection's destination.
  ctx.setOriginalDstHost(std::nullopt);
  ASSERT_NE(lb_->chooseHost(&ctx), nullptr);
  EXPECT_EQ(lb_->chooseHost(&ctx)->address.asString(), "127.0.0.5:8080");
}

TEST_F(OriginalDstLbTest, PortOverrideReplacesThePort) {
  build({.port_override = 7000});
  const network::Address local = addr("127.0.0.5", 8080);
  FixedLoadBalancerContext ctx;
  ctx.setDownstreamLocalAddress(&local);
  EXPECT_EQ(lb_->chooseHost(&ctx)->address.asString(), "127.0.0.5:7000");
}

TEST_F(OriginalDstLbTest, KnownHostsAreReusedAndMarkedUsed) {
  auto host = std::make_shared<Host>();
  host->address = addr("127.0.0.5", 8080);
  auto used = std::make_shared<std::atomic<bool>>(false);
  build({}, {{host, used}});
  const network::Address local = addr("127.0.0.5", 8080);
  FixedLoadBalancerContext ctx;
  ctx.setDownstreamLocalAddress(&local);
  EXPECT_EQ(lb_->chooseHost(&ctx), host.get());
  EXPECT_TRUE(used->load());
  EXPECT_TRUE(reported_.empty());
}

TEST_F(OriginalDstLbTest, NoContextOrNoDestinationPicksNothing) {
  build({});
  EXPECT_EQ(lb_->chooseHost(nullptr), nullptr);
  FixedLoadBalancerContext ctx;
  EXPECT_EQ(lb_->chooseHost(&ctx), nullptr);
}

}  // namespace
}  // namespace courier::upstream
