#include "source/common/network/dns/dns_resolver.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "test/test_common/dns_server.h"

namespace courier::network {
namespace {

using namespace std::chrono_literals;

struct Result {
  bool done = false;
  DnsResolver::Status status = DnsResolver::Status::Failure;
  std::vector<std::string> ips;
  std::vector<std::chrono::seconds> ttls;
};

class DnsResolverTest : public testing::Test {
 protected:
  std::unique_ptr<DnsResolver> makeResolver(DnsResolverOptions options = {}) {
    if (options.resolvers.empty()) options.resolvers.push_back(*Address::fromIpPort("127.0.0.1", server_.port()));
    auto r = DnsResolver::create(dispatcher_, options);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }

  // Runs the loop until the lookup completes or a deadline passes.
  Result resolve(DnsResolver& resolver, const std::string& name, DnsLookupFamily family) {
    Result result;
    auto deadline = dispatcher_.createTimer([this] { dispatcher_.exit(); });
    deadline->enable(10s);
    resolver.resolve(name, family, [&](DnsResolver::Status status, std::vector<DnsResponse>&& responses) {
      result.done = true;
      result.status = status;
      for (const auto& r : responses) {
        result.ips.push_back(r.address.ip());
        result.ttls.push_back(r.ttl);
      }
      std::sort(result.ips.begin(), result.ips.end());
      dispatcher_.exit();
    });
    if (!result.done) dispatcher_.run();
    return result;
  }

  test::DnsServer server_;
  event::Dispatcher dispatcher_{"dns-test"};
};

TEST_F(DnsResolverTest, ResolvesARecordsWithTheirTtl) {
  server_.set("backend.test", {"127.0.0.1", "127.0.0.2"}, 42);
  auto resolver = makeResolver();
  Result r = resolve(*resolver, "backend.test", DnsLookupFamily::V4Only);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, DnsResolver::Status::Success);
  EXPECT_EQ(r.ips, (std::vector<std::string>{"127.0.0.1", "127.0.0.2"}));
  ASSERT_EQ(r.ttls.size(), 2u);
  EXPECT_EQ(r.ttls[0], 42s);
}

TEST_F(DnsResolverTest, V6OnlyAsksForAaaa) {
  server_.set("both.test", {"127.0.0.1", "::1"});
  auto resolver = makeResolver();
  Result r = resolve(*resolver, "both.test", DnsLookupFamily::V6Only);
  EXPECT_EQ(r.status, DnsResolver::Status::Success);
  EXPECT_EQ(r.ips, (std::vector<std::string>{"::1"}));
}

TEST_F(DnsResolverTest, AllReturnsBothFamilies) {
  server_.set("both.test", {"127.0.0.1", "::1"});
  auto resolver = makeResolver();
  Result r = resolve(*resolver, "both.test", DnsLookupFamily::All);
  EXPECT_EQ(r.ips, (std::vector<std::string>{"127.0.0.1", "::1"}));
}

TEST_F(DnsResolverTest, AutoPrefersV6AndFallsBackToV4) {
  server_.set("both.test", {"127.0.0.1", "::1"});
  server_.set("v4.test", {"127.0.0.3"});
  auto resolver = makeResolver();
  EXPECT_EQ(resolve(*resolver, "both.test", DnsLookupFamily::Auto).ips, (std::vector<std::string>{"::1"}));
  EXPECT_EQ(resolve(*resolver, "v4.test", DnsLookupFamily::Auto).ips, (std::vector<std::string>{"127.0.0.3"}));
}

TEST_F(DnsResolverTest, V4PreferredFallsBackToV6) {
  server_.set("both.test", {"127.0.0.1", "::1"});
  server_.set("v6.test", {"::2"});
  auto resolver = makeResolver();
  EXPECT_EQ(resolve(*resolver, "both.test", DnsLookupFamily::V4Preferred).ips,
            (std::vector<std::string>{"127.0.0.1"}));
  EXPECT_EQ(resolve(*resolver, "v6.test", DnsLookupFamily::V4Preferred).ips, (std::vector<std::string>{"::2"}));
}

TEST_F(DnsResolverTest, AnswersChangeBetweenLookups) {
  server_.set("moving.test", {"127.0.0.1"});
  auto resolver = makeResolver();
  EXPECT_EQ(resolve(*resolver, "moving.test", DnsLookupFamily::V4Only).ips, (std::vector<std::string>{"127.0.0.1"}));
  server_.set("moving.test", {"127.0.0.2"});
  EXPECT_EQ(resolve(*resolver, "moving.test", DnsLookupFamily::V4Only).ips, (std::vector<std::string>{"127.0.0.2"}));
}

TEST_F(DnsResolverTest, UnknownNameIsAnEmptySuccess) {
  auto resolver = makeResolver({.resolvers = {*Address::fromIpPort("127.0.0.1", server_.port())},
                                .no_default_search_domain = true});
  Result r = resolve(*resolver, "nowhere.test", DnsLookupFamily::V4Only);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, DnsResolver::Status::Success);
  EXPECT_TRUE(r.ips.empty());
}

TEST_F(DnsResolverTest, ServFailIsAFailure) {
  server_.set("backend.test", {"127.0.0.1"});
  server_.setMode(test::DnsServer::Mode::ServFail);
  auto resolver = makeResolver();
  Result r = resolve(*resolver, "backend.test", DnsLookupFamily::V4Only);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, DnsResolver::Status::Failure);
  EXPECT_TRUE(r.ips.empty());
}

TEST_F(DnsResolverTest, EtcHostsIsHonoured) {
  // "localhost" is in every /etc/hosts; the test server does not know it.
  auto resolver = makeResolver();
  Result r = resolve(*resolver, "localhost", DnsLookupFamily::V4Only);
  EXPECT_EQ(r.status, DnsResolver::Status::Success);
  EXPECT_EQ(r.ips, (std::vector<std::string>{"127.0.0.1"}));
  EXPECT_EQ(server_.queriesFor("localhost"), 0);
}

TEST_F(DnsResolverTest, LiteralAddressNeedsNoServer) {
  auto resolver = makeResolver();
  Result r = resolve(*resolver, "127.0.0.9", DnsLookupFamily::V4Only);
  EXPECT_EQ(r.ips, (std::vector<std::string>{"127.0.0.9"}));
  EXPECT_EQ(server_.queries(), 0);
}

TEST_F(DnsResolverTest, CancelledQueryDoesNotCallBack) {
  server_.set("backend.test", {"127.0.0.1"});
  server_.set("other.test", {"127.0.0.2"});
  auto resolver = makeResolver();
  bool called = false;
  DnsResolver::Query* q = resolver->resolve("backend.test", DnsLookupFamily::V4Only,
                                            [&](DnsResolver::Status, std::vector<DnsResponse>&&) { called = true; });
  ASSERT_NE(q, nullptr);
  q->cancel();
  // A second lookup on the same channel completes after the first's answer.
  EXPECT_EQ(resolve(*resolver, "other.test", DnsLookupFamily::V4Only).ips, (std::vector<std::string>{"127.0.0.2"}));
  EXPECT_FALSE(called);
}

TEST_F(DnsResolverTest, DestroyedWithAQueryInFlight) {
  server_.setMode(test::DnsServer::Mode::Silent);
  auto resolver = makeResolver();
  bool called = false;
  resolver->resolve("backend.test", DnsLookupFamily::V4Only,
                    [&](DnsResolver::Status, std::vector<DnsResponse>&&) { called = true; });
  resolver.reset();
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace courier::network
