#include "source/common/router/hash_policy.h"

#include "gtest/gtest.h"
#include "source/common/upstream/hash.h"

namespace courier::router {
namespace {

HashPolicy header(std::string name, bool terminal = false) {
  HashPolicy p;
  p.kind = HashPolicy::Kind::Header;
  p.name = std::move(name);
  p.terminal = terminal;
  return p;
}

HashPolicy of(HashPolicy::Kind kind, std::string name = "") {
  HashPolicy p;
  p.kind = kind;
  p.name = std::move(name);
  return p;
}

http::HeaderMap request(std::string path = "/") {
  return http::HeaderMap{{":method", "GET"}, {":path", path}, {":authority", "a"}};
}

uint64_t rotl1(uint64_t h) { return (h << 1) | (h >> 63); }

TEST(HashPolicyTest, HeaderValueIsHashed) {
  auto headers = request();
  headers.add("x-user", "alice");
  EXPECT_EQ(computeHash({header("x-user")}, headers, nullptr), upstream::xxHash64("alice"));
}

TEST(HashPolicyTest, MissingHeaderGivesNoHash) {
  EXPECT_EQ(computeHash({header("x-user")}, request(), nullptr), std::nullopt);
}

TEST(HashPolicyTest, HeaderRegexRewriteAppliesBeforeHashing) {
  auto p = header("x-user");
  p.regex = std::make_shared<re2::RE2>("-[0-9]+$");
  p.substitution = "";
  auto headers = request();
  headers.add("x-user", "alice-42");
  EXPECT_EQ(computeHash({p}, headers, nullptr), upstream::xxHash64("alice"));
}

TEST(HashPolicyTest, RepeatedHeaderHashIgnoresOrder) {
  auto a = request();
  a.add("x-k", "1");
  a.add("x-k", "2");
  auto b = request();
  b.add("x-k", "2");
  b.add("x-k", "1");
  EXPECT_EQ(computeHash({header("x-k")}, a, nullptr), computeHash({header("x-k")}, b, nullptr));
}

TEST(HashPolicyTest, CookieValueIsHashed) {
  auto headers = request();
  headers.add("cookie", "theme=dark; session=\"abc123\"");
  EXPECT_EQ(computeHash({of(HashPolicy::Kind::Cookie, "session")}, headers, nullptr), upstream::xxHash64("abc123"));
}

TEST(HashPolicyTest, CookieInASecondCookieHeaderIsFound) {
  auto headers = request();
  headers.add("cookie", "a=1");
  headers.add("cookie", "session=xyz");
  EXPECT_EQ(findCookie(headers, "session"), "xyz");
  EXPECT_EQ(findCookie(headers, "sess"), std::nullopt);
}

TEST(HashPolicyTest, AbsentCookieGivesNoHash) {
  auto p = of(HashPolicy::Kind::Cookie, "session");
  p.cookie_ttl = std::chrono::milliseconds(1000);  // Envoy would mint one; we only read
  EXPECT_EQ(computeHash({p}, request(), nullptr), std::nullopt);
}

TEST(HashPolicyTest, QueryParameterIsHashed) {
  EXPECT_EQ(computeHash({of(HashPolicy::Kind::QueryParameter, "user")}, request("/p?x=1&user=bob&user=eve"), nullptr),
            upstream::xxHash64("bob"));
  EXPECT_EQ(computeHash({of(HashPolicy::Kind::QueryParameter, "user")}, request("/p?users=bob"), nullptr),
            std::nullopt);
  EXPECT_EQ(findQueryParameter("/p?flag&x=2", "flag"), "");
}

TEST(HashPolicyTest, SourceIpIsHashed) {
  auto addr = *network::Address::fromIpPort("192.0.2.7", 5555);
  EXPECT_EQ(computeHash({of(HashPolicy::Kind::SourceIp)}, request(), &addr), upstream::xxHash64("192.0.2.7"));
  EXPECT_EQ(computeHash({of(HashPolicy::Kind::SourceIp)}, request(), nullptr), std::nullopt);
}

TEST(HashPolicyTest, PoliciesCombineByRotateAndXor) {
  auto headers = request();
  headers.add("x-a", "1");
  headers.add("x-b", "2");
  const uint64_t a = upstream::xxHash64("1"), b = upstream::xxHash64("2");
  EXPECT_EQ(computeHash({header("x-a"), header("x-b")}, headers, nullptr), rotl1(a) ^ b);
  // A policy without a value is skipped, not mixed in.
  EXPECT_EQ(computeHash({header("x-a"), header("x-missing"), header("x-b")}, headers, nullptr), rotl1(a) ^ b);
}

TEST(HashPolicyTest, TerminalStopsAtTheFirstHash) {
  auto headers = request();
  headers.add("x-a", "1");
  headers.add("x-b", "2");
  EXPECT_EQ(computeHash({header("x-a", true), header("x-b")}, headers, nullptr), upstream::xxHash64("1"));
  // A terminal policy that produced nothing lets the next one run.
  EXPECT_EQ(computeHash({header("x-missing", true), header("x-b")}, headers, nullptr), upstream::xxHash64("2"));
}

}  // namespace
}  // namespace courier::router
