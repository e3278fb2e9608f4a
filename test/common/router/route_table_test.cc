#include "source/common/router/route_table.h"

#include <string>

#include "google/protobuf/text_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace courier::router {
namespace {

using envoy::config::route::v3::RouteConfiguration;
using testing::HasSubstr;

RouteConfiguration parse(const std::string& text) {
  RouteConfiguration config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return config;
}

std::shared_ptr<const RouteTable> build(const std::string& text, const ClusterNameChecker* checker = nullptr) {
  auto table = RouteTable::create(parse(text), "route_config", checker);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : nullptr;
}

std::string buildError(const std::string& text, const ClusterNameChecker* checker = nullptr) {
  auto table = RouteTable::create(parse(text), "route_config", checker);
  EXPECT_FALSE(table.ok());
  return table.ok() ? "" : std::string(table.status().message());
}

http::HeaderMap request(std::string_view host, std::string_view path) {
  return http::HeaderMap{{":method", "GET"}, {":authority", host}, {":path", path}, {":scheme", "http"}};
}

// Name of the cluster the request routes to, or "" for no route.
std::string clusterFor(const RouteTable& table, const http::HeaderMap& headers, uint64_t random = 0) {
  const RouteEntry* r = table.route(headers, random);
  return r == nullptr ? "" : r->cluster;
}

std::string vhostFor(const RouteTable& table, std::string_view host) {
  const VirtualHost* v = table.virtualHost(request(host, "/"));
  return v == nullptr ? "" : v->name();
}

// One vhost "v" for "*" with one route whose match is `match` to cluster "c".
std::string oneRoute(const std::string& match, const std::string& extra_vhost = "") {
  return R"(virtual_hosts { name: "v" domains: "*" )" + extra_vhost + R"( routes { match { )" + match +
         R"( } route { cluster: "c" } } })";
}

const char* kDomains = R"(
  virtual_hosts { name: "exact" domains: "www.foo.com" routes { match { prefix: "/" } route { cluster: "exact" } } }
  virtual_hosts { name: "suffix" domains: "*.foo.com" routes { match { prefix: "/" } route { cluster: "suffix" } } }
  virtual_hosts { name: "longsuffix" domains: "*-bar.foo.com" routes { match { prefix: "/" } route { cluster: "ls" } } }
  virtual_hosts { name: "prefix" domains: "foo.*" routes { match { prefix: "/" } route { cluster: "prefix" } } }
  virtual_hosts { name: "longprefix" domains: "foo.bar.*" routes { match { prefix: "/" } route { cluster: "lp" } } }
  virtual_hosts { name: "default" domains: "*" routes { match { prefix: "/" } route { cluster: "default" } } }
)";

TEST(RouteTableVirtualHostTest, ExactDomainWinsOverWildcards) {
  auto t = build(kDomains);
  EXPECT_EQ(vhostFor(*t, "www.foo.com"), "exact");
}

TEST(RouteTableVirtualHostTest, SuffixWildcardMatches) {
  auto t = build(kDomains);
  EXPECT_EQ(vhostFor(*t, "api.foo.com"), "suffix");
}

TEST(RouteTableVirtualHostTest, LongestSuffixWildcardWins) {
  auto t = build(kDomains);
  EXPECT_EQ(vhostFor(*t, "baz-bar.foo.com"), "longsuffix");
}

TEST(RouteTableVirtualHostTest, SuffixWildcardNeedsAtLeastOneCharacter) {
  auto t = build(kDomains);
  EXPECT_EQ(vhostFor(*t, ".foo.com"), "default");
}

TEST(RouteTableVirtualHostTest, PrefixWildcardMatches) {
  auto t = build(kDomains);
  EXPECT_EQ(vhostFor(*t, "foo.org"), "prefix");
}

TEST(RouteTableVirtualHostTest, LongestPrefixWildcardWins) {
  auto t = build(kDomains);
  EXPECT_EQ(vhostFor(*t, "foo.bar.org"), "longprefix");
}

TEST(RouteTableVirtualHostTest, SuffixWildcardWinsOverPrefixWildcard) {
  auto t = build(R"(
    virtual_hosts { name: "prefix" domains: "foo.*" }
    virtual_hosts { name: "suffix" domains: "*.com" })");
  EXPECT_EQ(vhostFor(*t, "foo.com"), "suffix");
}

TEST(RouteTableVirtualHostTest, DefaultCatchesTheRest) {
  auto t = build(kDomains);
  EXPECT_EQ(vhostFor(*t, "example.org"), "default");
}

TEST(RouteTableVirtualHostTest, NoMatchWithoutDefaultIsNoRoute) {
  auto t = build(R"(virtual_hosts { name: "a" domains: "a.com" routes { match { prefix: "/" } route { cluster: "c" } } })");
  EXPECT_EQ(t->virtualHost(request("b.com", "/")), nullptr);
  EXPECT_EQ(t->route(request("b.com", "/"), 0), nullptr);
}

TEST(RouteTableVirtualHostTest, DomainMatchingIgnoresCase) {
  auto t = build(R"(virtual_hosts { name: "a" domains: "WWW.Foo.com" }
                    virtual_hosts { name: "b" domains: "*.Bar.com" })");
  EXPECT_EQ(vhostFor(*t, "www.FOO.COM"), "a");
  EXPECT_EQ(vhostFor(*t, "X.BAR.com"), "b");
}

TEST(RouteTableVirtualHostTest, PortIsStrippedWhenNoDomainHasAPort) {
  auto t = build(R"(virtual_hosts { name: "a" domains: "a.com" })");
  EXPECT_EQ(vhostFor(*t, "a.com:8080"), "a");
}

TEST(RouteTableVirtualHostTest, PortIsKeptWhenADomainHasAPort) {
  auto t = build(R"(virtual_hosts { name: "a" domains: "a.com" }
                    virtual_hosts { name: "p" domains: "a.com:8080" })");
  EXPECT_EQ(vhostFor(*t, "a.com:8080"), "p");
  EXPECT_EQ(vhostFor(*t, "a.com:9090"), "");
}

TEST(RouteTableVirtualHostTest, IgnorePortInHostMatchingAlwaysStrips) {
  auto t = build(R"(ignore_port_in_host_matching: true
                    virtual_hosts { name: "a" domains: "a.com" }
                    virtual_hosts { name: "p" domains: "b.com:8080" })");
  EXPECT_EQ(vhostFor(*t, "a.com:9090"), "a");
}

TEST(RouteTableVirtualHostTest, Ipv6HostKeepsItsBrackets) {
  auto t = build(R"(virtual_hosts { name: "a" domains: "[::1]" })");
  EXPECT_EQ(vhostFor(*t, "[::1]:80"), "a");
  EXPECT_EQ(vhostFor(*t, "[::1]"), "a");
}

TEST(RouteTableVirtualHostTest, DuplicateDomainAcrossVirtualHostsIsAnError) {
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "a" domains: "x.com" }
                          virtual_hosts { name: "b" domains: "X.com" })"),
            "route_config.virtual_hosts[1].domains[0]: domain \"x.com\" of virtual host \"b\" is already used by "
            "virtual host \"a\" (virtual_hosts[0])");
}

TEST(RouteTableVirtualHostTest, MatchedRouteKnowsItsVirtualHost) {
  auto t = build(kDomains);
  const RouteEntry* r = t->route(request("api.foo.com", "/x"), 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->virtual_host->name(), "suffix");
}

TEST(RouteTableMatchTest, PrefixMatches) {
  auto t = build(oneRoute(R"(prefix: "/api")"));
  EXPECT_EQ(clusterFor(*t, request("h", "/api/v1")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/apix")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/ap")), "");
}

TEST(RouteTableMatchTest, PathMatchesExactlyIgnoringQuery) {
  auto t = build(oneRoute(R"(path: "/exact")"));
  EXPECT_EQ(clusterFor(*t, request("h", "/exact?a=b")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/exact/")), "");
}

TEST(RouteTableMatchTest, SafeRegexFullMatchesPathWithoutQuery) {
  auto t = build(oneRoute(R"(safe_regex { regex: "/users/[0-9]+" })"));
  EXPECT_EQ(clusterFor(*t, request("h", "/users/42?x=1")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/users/42/more")), "");
}

TEST(RouteTableMatchTest, PathSeparatedPrefixMatchesWholeSegments) {
  auto t = build(oneRoute(R"(path_separated_prefix: "/api")"));
  EXPECT_EQ(clusterFor(*t, request("h", "/api")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/api/x")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/api?q")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/apix")), "");
}

TEST(RouteTableMatchTest, PathSeparatedPrefixWithTrailingSlashIsAnError) {
  EXPECT_THAT(buildError(oneRoute(R"(path_separated_prefix: "/api/")")),
              HasSubstr("route_config.virtual_hosts[0].routes[0].match.path_separated_prefix:"));
}

TEST(RouteTableMatchTest, CaseInsensitivePrefixAndPath) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { path: "/Exact" case_sensitive { value: false } } route { cluster: "p" } }
    routes { match { prefix: "/API" case_sensitive { value: false } } route { cluster: "c" } } })");
  EXPECT_EQ(clusterFor(*t, request("h", "/eXACT")), "p");
  EXPECT_EQ(clusterFor(*t, request("h", "/api/x")), "c");
}

TEST(RouteTableMatchTest, CaseSensitiveByDefault) {
  auto t = build(oneRoute(R"(prefix: "/API")"));
  EXPECT_EQ(clusterFor(*t, request("h", "/api")), "");
}

TEST(RouteTableMatchTest, FirstMatchingRouteWins) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/a" } route { cluster: "first" } }
    routes { match { prefix: "/a/b" } route { cluster: "second" } }
    routes { match { prefix: "/" } route { cluster: "last" } } })");
  EXPECT_EQ(clusterFor(*t, request("h", "/a/b")), "first");
  EXPECT_EQ(clusterFor(*t, request("h", "/z")), "last");
}

TEST(RouteTableMatchTest, MissingPathIsNoRoute) {
  auto t = build(oneRoute(R"(prefix: "/")"));
  http::HeaderMap h{{":authority", "h"}};
  EXPECT_EQ(t->route(h, 0), nullptr);
}

TEST(RouteTableMatchTest, BadRegexErrorNamesTheField) {
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/" } route { cluster: "c" } }
    routes { match { prefix: "/" } route { cluster: "c" } }
    routes { match { safe_regex { regex: "(" } } route { cluster: "c" } } })"),
            "route_config.virtual_hosts[0].routes[2].match.safe_regex.regex: invalid RE2 \"(\": missing ): (");
}

// Header matchers.
bool headerMatch(const std::string& matcher, const http::HeaderMap& headers) {
  auto t = build(oneRoute(R"(prefix: "/" headers { name: "x-h" )" + matcher + " }"));
  return t->route(headers, 0) != nullptr;
}

http::HeaderMap withHeader(std::string_view value) {
  http::HeaderMap h = request("h", "/");
  h.add("x-h", value);
  return h;
}

TEST(RouteTableHeaderMatchTest, StringMatchExact) {
  EXPECT_TRUE(headerMatch(R"(string_match { exact: "abc" })", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(string_match { exact: "abc" })", withHeader("ABC")));
}

TEST(RouteTableHeaderMatchTest, StringMatchExactIgnoreCase) {
  EXPECT_TRUE(headerMatch(R"(string_match { exact: "abc" ignore_case: true })", withHeader("ABC")));
}

TEST(RouteTableHeaderMatchTest, StringMatchPrefix) {
  EXPECT_TRUE(headerMatch(R"(string_match { prefix: "ab" })", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(string_match { prefix: "bc" })", withHeader("abc")));
}

TEST(RouteTableHeaderMatchTest, StringMatchSuffixIgnoreCase) {
  EXPECT_TRUE(headerMatch(R"(string_match { suffix: "BC" ignore_case: true })", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(string_match { suffix: "BC" })", withHeader("abc")));
}

TEST(RouteTableHeaderMatchTest, StringMatchContains) {
  EXPECT_TRUE(headerMatch(R"(string_match { contains: "b" })", withHeader("abc")));
  EXPECT_TRUE(headerMatch(R"(string_match { contains: "B" ignore_case: true })", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(string_match { contains: "x" })", withHeader("abc")));
}

TEST(RouteTableHeaderMatchTest, StringMatchSafeRegexIsAFullMatch) {
  EXPECT_TRUE(headerMatch(R"(string_match { safe_regex { regex: "a.c" } })", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(string_match { safe_regex { regex: "b" } })", withHeader("abc")));
}

TEST(RouteTableHeaderMatchTest, DeprecatedExactMatch) {
  EXPECT_TRUE(headerMatch(R"(exact_match: "abc")", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(exact_match: "abd")", withHeader("abc")));
}

TEST(RouteTableHeaderMatchTest, DeprecatedEmptyExactMatchMatchesAnyValue) {
  EXPECT_TRUE(headerMatch(R"(exact_match: "")", withHeader("anything")));
}

TEST(RouteTableHeaderMatchTest, DeprecatedPrefixSuffixContainsMatch) {
  EXPECT_TRUE(headerMatch(R"(prefix_match: "ab")", withHeader("abc")));
  EXPECT_TRUE(headerMatch(R"(suffix_match: "bc")", withHeader("abc")));
  EXPECT_TRUE(headerMatch(R"(contains_match: "b")", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(contains_match: "z")", withHeader("abc")));
}

TEST(RouteTableHeaderMatchTest, DeprecatedSafeRegexMatch) {
  EXPECT_TRUE(headerMatch(R"(safe_regex_match { regex: "[a-c]+" })", withHeader("abc")));
  EXPECT_FALSE(headerMatch(R"(safe_regex_match { regex: "[a-b]+" })", withHeader("abc")));
}

TEST(RouteTableHeaderMatchTest, PresentMatch) {
  EXPECT_TRUE(headerMatch("present_match: true", withHeader("")));
  EXPECT_FALSE(headerMatch("present_match: true", request("h", "/")));
}

TEST(RouteTableHeaderMatchTest, PresentMatchFalseMatchesAbsence) {
  EXPECT_TRUE(headerMatch("present_match: false", request("h", "/")));
  EXPECT_FALSE(headerMatch("present_match: false", withHeader("x")));
}

TEST(RouteTableHeaderMatchTest, NameOnlyMeansPresent) {
  EXPECT_TRUE(headerMatch("", withHeader("x")));
  EXPECT_FALSE(headerMatch("", request("h", "/")));
}

TEST(RouteTableHeaderMatchTest, RangeMatchIsHalfOpen) {
  const std::string m = "range_match { start: 10 end: 20 }";
  EXPECT_TRUE(headerMatch(m, withHeader("10")));
  EXPECT_TRUE(headerMatch(m, withHeader("19")));
  EXPECT_FALSE(headerMatch(m, withHeader("20")));
  EXPECT_FALSE(headerMatch(m, withHeader("1x")));
}

TEST(RouteTableHeaderMatchTest, InvertMatch) {
  EXPECT_FALSE(headerMatch(R"(string_match { exact: "abc" } invert_match: true)", withHeader("abc")));
  EXPECT_TRUE(headerMatch(R"(string_match { exact: "abc" } invert_match: true)", withHeader("abd")));
}

TEST(RouteTableHeaderMatchTest, InvertedValueMatchMatchesMissingHeader) {
  EXPECT_TRUE(headerMatch(R"(string_match { exact: "abc" } invert_match: true)", request("h", "/")));
}

TEST(RouteTableHeaderMatchTest, InvertedPresentMatchRejectsMissingHeader) {
  EXPECT_FALSE(headerMatch("present_match: true invert_match: true", request("h", "/")));
}

TEST(RouteTableHeaderMatchTest, MissingHeaderDoesNotMatchValue) {
  EXPECT_FALSE(headerMatch(R"(string_match { exact: "" })", request("h", "/")));
}

TEST(RouteTableHeaderMatchTest, TreatMissingHeaderAsEmpty) {
  EXPECT_TRUE(headerMatch(R"(string_match { exact: "" } treat_missing_header_as_empty: true)", request("h", "/")));
  EXPECT_FALSE(headerMatch(R"(string_match { exact: "x" } treat_missing_header_as_empty: true)", request("h", "/")));
}

TEST(RouteTableHeaderMatchTest, RepeatedHeadersAreJoinedWithComma) {
  http::HeaderMap h = request("h", "/");
  h.add("x-h", "a");
  h.add("x-h", "b");
  EXPECT_TRUE(headerMatch(R"(string_match { exact: "a,b" })", h));
  EXPECT_FALSE(headerMatch(R"(string_match { exact: "a" })", h));
}

TEST(RouteTableHeaderMatchTest, AllHeaderMatchersMustMatch) {
  auto t = build(oneRoute(R"(prefix: "/" headers { name: "a" present_match: true } headers { name: "b" present_match: true })"));
  http::HeaderMap h = request("h", "/");
  h.add("a", "1");
  EXPECT_EQ(t->route(h, 0), nullptr);
  h.add("b", "1");
  EXPECT_NE(t->route(h, 0), nullptr);
}

TEST(RouteTableQueryMatchTest, StringMatchOnValue) {
  auto t = build(oneRoute(R"(prefix: "/" query_parameters { name: "debug" string_match { exact: "1" } })"));
  EXPECT_EQ(clusterFor(*t, request("h", "/x?a=b&debug=1")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/x?debug=2")), "");
  EXPECT_EQ(clusterFor(*t, request("h", "/x")), "");
}

TEST(RouteTableQueryMatchTest, ValueIsPercentDecoded) {
  auto t = build(oneRoute(R"(prefix: "/" query_parameters { name: "q" string_match { exact: "a b" } })"));
  EXPECT_EQ(clusterFor(*t, request("h", "/x?q=a%20b")), "c");
}

TEST(RouteTableQueryMatchTest, PresentMatch) {
  auto t = build(oneRoute(R"(prefix: "/" query_parameters { name: "debug" present_match: true })"));
  EXPECT_EQ(clusterFor(*t, request("h", "/x?debug")), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/x?other=1")), "");
}

TEST(RouteTableRuntimeFractionTest, ZeroPercentNeverMatches) {
  auto t = build(oneRoute(R"(prefix: "/" runtime_fraction { default_value { numerator: 0 } runtime_key: "k" })"));
  for (uint64_t r = 0; r < 200; ++r) EXPECT_EQ(clusterFor(*t, request("h", "/"), r), "");
}

TEST(RouteTableRuntimeFractionTest, HundredPercentAlwaysMatches) {
  auto t = build(oneRoute(R"(prefix: "/" runtime_fraction { default_value { numerator: 100 } runtime_key: "k" })"));
  for (uint64_t r = 0; r < 200; ++r) EXPECT_EQ(clusterFor(*t, request("h", "/"), r), "c");
}

TEST(RouteTableRuntimeFractionTest, UsesRandomModuloDenominator) {
  auto t = build(oneRoute(
      R"(prefix: "/" runtime_fraction { default_value { numerator: 30 denominator: TEN_THOUSAND } })"));
  EXPECT_EQ(clusterFor(*t, request("h", "/"), 10029), "c");
  EXPECT_EQ(clusterFor(*t, request("h", "/"), 10030), "");
}

const char* kWeighted = R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" } route {
  weighted_clusters {
    clusters { name: "a" weight { value: 1 } request_headers_to_add { header { key: "x-a" value: "1" } } }
    clusters { name: "b" weight { value: 3 } } } } } })";

TEST(RouteTableActionTest, WeightedClusterPickedByRandomModuloTotal) {
  auto t = build(kWeighted);
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->total_cluster_weight, 4u);
  EXPECT_EQ(r->pickWeightedCluster(0)->name, "a");
  EXPECT_EQ(r->pickWeightedCluster(1)->name, "b");
  EXPECT_EQ(r->pickWeightedCluster(3)->name, "b");
  EXPECT_EQ(r->pickWeightedCluster(4)->name, "a");
}

TEST(RouteTableActionTest, WeightedClusterDistributionFollowsWeights) {
  auto t = build(kWeighted);
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_NE(r, nullptr);
  int a = 0;
  for (uint64_t i = 0; i < 4000; ++i) a += r->pickWeightedCluster(i * 7919)->name == "a";
  EXPECT_EQ(a, 1000);
}

TEST(RouteTableActionTest, WeightedClusterKeepsItsHeaders) {
  auto t = build(kWeighted);
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->weighted_clusters[0].headers.request_headers_to_add.size(), 1u);
  EXPECT_EQ(r->weighted_clusters[0].headers.request_headers_to_add[0].key, "x-a");
}

TEST(RouteTableActionTest, ZeroTotalWeightIsAnError) {
  EXPECT_THAT(buildError(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" } route {
      weighted_clusters { clusters { name: "a" weight { value: 0 } } } } } })"),
              HasSubstr("route_config.virtual_hosts[0].routes[0].route.weighted_clusters:"));
}

TEST(RouteTableActionTest, PrefixRewriteReplacesMatchedPrefixKeepingQuery) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/old" }
      route { cluster: "c" prefix_rewrite: "/new" } } })");
  const RouteEntry* r = t->route(request("h", "/old/x?q=1"), 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(rewritePath(*r, "/old/x?q=1"), "/new/x?q=1");
}

TEST(RouteTableActionTest, RegexRewriteSubstitutesAndKeepsQuery) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" }
      route { cluster: "c" regex_rewrite { pattern { regex: "^/service/([^/]+)(/.*)$" } substitution: "\\2/instance/\\1" } } } })");
  const RouteEntry* r = t->route(request("h", "/service/foo/v1/api?x=1"), 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(rewritePath(*r, "/service/foo/v1/api?x=1"), "/v1/api/instance/foo?x=1");
}

TEST(RouteTableActionTest, RegexRewriteReplacesEveryOccurrence) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" }
      route { cluster: "c" regex_rewrite { pattern { regex: "a" } substitution: "b" } } } })");
  EXPECT_EQ(rewritePath(*t->route(request("h", "/aaa"), 0), "/aaa"), "/bbb");
}

TEST(RouteTableActionTest, RouteActionDefaults) {
  auto t = build(oneRoute(R"(prefix: "/")"));
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->action, RouteEntry::ActionKind::Route);
  EXPECT_EQ(r->timeout, std::chrono::seconds(15));
  EXPECT_FALSE(r->idle_timeout.has_value());
  EXPECT_FALSE(r->retry_policy.has_value());
}

TEST(RouteTableActionTest, TimeoutsHostRewriteAndClusterHeaderStored) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/a" } route { cluster_header: "X-Cluster" timeout { } idle_timeout { seconds: 5 }
                                             host_rewrite_literal: "up.example" } }
    routes { match { prefix: "/" } route { cluster: "c" auto_host_rewrite { value: true } } } })");
  const RouteEntry* a = t->route(request("h", "/a"), 0);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->cluster_header, "x-cluster");
  EXPECT_EQ(a->timeout.count(), 0);
  EXPECT_EQ(a->idle_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(a->host_rewrite_literal, "up.example");
  EXPECT_TRUE(t->route(request("h", "/b"), 0)->auto_host_rewrite);
}

TEST(RouteTableActionTest, RetryPolicyParsed) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" } route { cluster: "c"
      retry_policy { retry_on: "5xx, gateway-error,reset,connect-failure,retriable-4xx,refused-stream,retriable-status-codes,bogus"
                     retriable_status_codes: 409 per_try_timeout { nanos: 500000000 } } } } })");
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_TRUE(r->retry_policy.has_value());
  const RetryPolicy& p = *r->retry_policy;
  EXPECT_EQ(p.retry_on, retry_on::k5xx | retry_on::kGatewayError | retry_on::kReset | retry_on::kConnectFailure |
                            retry_on::kRetriable4xx | retry_on::kRefusedStream | retry_on::kRetriableStatusCodes);
  EXPECT_EQ(p.retriable_status_codes, std::vector<uint32_t>{409});
  EXPECT_EQ(p.num_retries, 1u);
  EXPECT_EQ(p.per_try_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(p.base_interval, std::chrono::milliseconds(25));
  EXPECT_EQ(p.max_interval, std::chrono::milliseconds(250));
}

TEST(RouteTableActionTest, RetryBackOffMaxDefaultsToTenTimesBase) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" } route { cluster: "c"
      retry_policy { num_retries { value: 3 } retry_back_off { base_interval { nanos: 100000000 } } } } } })");
  const RetryPolicy& p = *t->route(request("h", "/"), 0)->retry_policy;
  EXPECT_EQ(p.num_retries, 3u);
  EXPECT_EQ(p.max_interval, std::chrono::milliseconds(1000));
}

TEST(RouteTableActionTest, VirtualHostRetryPolicyIsInherited) {
  auto t = build(oneRoute(R"(prefix: "/")", R"(retry_policy { retry_on: "5xx" })"));
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_TRUE(r->retry_policy.has_value());
  EXPECT_EQ(r->retry_policy->retry_on, retry_on::k5xx);
}

TEST(RouteTableActionTest, HashAndMirrorPoliciesStored) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" } route { cluster: "c"
      hash_policy { header { header_name: "X-User" } terminal: true }
      hash_policy { cookie { name: "sid" ttl { seconds: 60 } path: "/" } }
      hash_policy { connection_properties { source_ip: true } }
      request_mirror_policies { cluster: "shadow" runtime_fraction { default_value { numerator: 5 } } } } } })");
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_EQ(r->hash_policy.size(), 3u);
  EXPECT_EQ(r->hash_policy[0].kind, HashPolicy::Kind::Header);
  EXPECT_EQ(r->hash_policy[0].name, "x-user");
  EXPECT_TRUE(r->hash_policy[0].terminal);
  EXPECT_EQ(r->hash_policy[1].kind, HashPolicy::Kind::Cookie);
  EXPECT_EQ(r->hash_policy[1].cookie_ttl, std::chrono::milliseconds(60000));
  EXPECT_EQ(r->hash_policy[2].kind, HashPolicy::Kind::SourceIp);
  ASSERT_EQ(r->request_mirror_policies.size(), 1u);
  EXPECT_EQ(r->request_mirror_policies[0].cluster, "shadow");
  EXPECT_EQ(r->request_mirror_policies[0].fraction.numerator, 5u);
}

TEST(RouteTableActionTest, RedirectStored) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" } redirect {
      https_redirect: true host_redirect: "new.example" port_redirect: 8443 prefix_rewrite: "/n"
      response_code: PERMANENT_REDIRECT strip_query: true } } })");
  const RouteEntry* r = t->route(request("h", "/"), 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->action, RouteEntry::ActionKind::Redirect);
  EXPECT_EQ(r->redirect.scheme, "https");
  EXPECT_EQ(r->redirect.host, "new.example");
  EXPECT_EQ(r->redirect.port, 8443u);
  EXPECT_EQ(r->redirect.prefix_rewrite, "/n");
  EXPECT_EQ(r->redirect.response_code, 308u);
  EXPECT_TRUE(r->redirect.strip_query);
}

TEST(RouteTableActionTest, RedirectDefaultsTo301) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*" routes { match { prefix: "/" } redirect { path_redirect: "/p" } } })");
  const RouteEntry* r = t->route(request("h", "/"), 0);
  EXPECT_EQ(r->redirect.response_code, 301u);
  EXPECT_EQ(r->redirect.path, "/p");
}

TEST(RouteTableActionTest, DirectResponseStored) {
  auto t = build(R"(virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/s" } direct_response { status: 503 body { inline_string: "down" } } }
    routes { match { prefix: "/b" } direct_response { status: 200 body { inline_bytes: "\001\002" } } } })");
  const RouteEntry* s = t->route(request("h", "/s"), 0);
  EXPECT_EQ(s->action, RouteEntry::ActionKind::DirectResponse);
  EXPECT_EQ(s->direct_response.status, 503u);
  EXPECT_EQ(s->direct_response.body, "down");
  EXPECT_EQ(t->route(request("h", "/b"), 0)->direct_response.body, std::string("\x01\x02"));
}

TEST(RouteTableActionTest, DirectResponseBodyOverLimitIsAnError) {
  EXPECT_THAT(buildError(R"(max_direct_response_body_size_bytes { value: 2 } virtual_hosts { name: "v" domains: "*"
    routes { match { prefix: "/" } direct_response { status: 200 body { inline_string: "abc" } } } })"),
              HasSubstr("route_config.virtual_hosts[0].routes[0].direct_response.body: response body size is 3 bytes"));
}

const char* kMutations = R"(
  request_headers_to_add { header { key: "x-global" value: "g" } }
  virtual_hosts { name: "v" domains: "*"
    request_headers_to_add { header { key: "x-vhost" value: "v" } append_action: OVERWRITE_IF_EXISTS_OR_ADD }
    response_headers_to_remove: "server"
    routes { match { prefix: "/" } route { cluster: "c" }
             request_headers_to_add { header { key: "X-Route" value: "r" } append { value: false } }
             request_headers_to_remove: "x-drop" } })";

TEST(RouteTableHeaderMutationTest, MergedRouteThenVirtualHostThenGlobal) {
  auto t = build(kMutations);
  const RouteEntry* r = t->route(request("h", "/"), 0);
  const auto& add = r->header_mutations.request_headers_to_add;
  ASSERT_EQ(add.size(), 3u);
  EXPECT_EQ(add[0].key, "x-route");
  EXPECT_EQ(add[1].key, "x-vhost");
  EXPECT_EQ(add[2].key, "x-global");
  EXPECT_EQ(r->header_mutations.request_headers_to_remove, std::vector<std::string>{"x-drop"});
  EXPECT_EQ(r->header_mutations.response_headers_to_remove, std::vector<std::string>{"server"});
}

TEST(RouteTableHeaderMutationTest, MostSpecificWinsReversesTheOrder) {
  auto t = build(std::string("most_specific_header_mutations_wins: true ") + kMutations);
  const auto& add = t->route(request("h", "/"), 0)->header_mutations.request_headers_to_add;
  ASSERT_EQ(add.size(), 3u);
  EXPECT_EQ(add[0].key, "x-global");
  EXPECT_EQ(add[2].key, "x-route");
}

TEST(RouteTableHeaderMutationTest, AppendActionAndDeprecatedAppend) {
  auto t = build(kMutations);
  const auto& add = t->route(request("h", "/"), 0)->header_mutations.request_headers_to_add;
  EXPECT_EQ(add[0].action, AppendAction::OverwriteIfExistsOrAdd);  // append: false
  EXPECT_EQ(add[1].action, AppendAction::OverwriteIfExistsOrAdd);
  EXPECT_EQ(add[2].action, AppendAction::AppendIfExistsOrAdd);  // default
}

TEST(RouteTableHeaderMutationTest, AppendAndAppendActionTogetherIsAnError) {
  EXPECT_THAT(buildError(R"(virtual_hosts { name: "v" domains: "*" request_headers_to_add {
      header { key: "x" value: "1" } append { value: true } append_action: ADD_IF_ABSENT } })"),
              HasSubstr("route_config.virtual_hosts[0].request_headers_to_add[0]: append and append_action"));
}

TEST(RouteTableHeaderMutationTest, PseudoHeaderMayNotBeRemoved) {
  EXPECT_THAT(buildError(R"(request_headers_to_remove: ":path")"),
              HasSubstr("route_config.request_headers_to_remove[0]: \":path\" may not be removed"));
}

TEST(RouteTableValidateClustersTest, UnknownClusterIsAnErrorNamingRouteAndCluster) {
  ClusterNameChecker known(absl::flat_hash_set<std::string>{"c"});
  EXPECT_EQ(buildError(R"(virtual_hosts { name: "v" domains: "*"
      routes { match { prefix: "/a" } route { cluster: "c" } }
      routes { name: "r2" match { prefix: "/" } route { cluster: "missing" } } })",
                       &known),
            "route_config.virtual_hosts[0].routes[1].route.cluster: route \"r2\" references unknown cluster "
            "\"missing\"");
}

TEST(RouteTableValidateClustersTest, UnknownWeightedClusterIsAnError) {
  ClusterNameChecker known([](std::string_view name) { return name == "a"; });
  EXPECT_THAT(buildError(kWeighted, &known),
              HasSubstr("route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].name: route \"\" "
                        "references unknown cluster \"b\""));
}

TEST(RouteTableValidateClustersTest, ValidateClustersFalseSkipsTheCheck) {
  ClusterNameChecker known(absl::flat_hash_set<std::string>{});
  EXPECT_NE(build(std::string("validate_clusters { value: false } ") + oneRoute(R"(prefix: "/")"), &known), nullptr);
}

TEST(RouteTableValidateClustersTest, NoCheckerAcceptsAnyCluster) {
  EXPECT_NE(build(oneRoute(R"(prefix: "/")")), nullptr);
}

}  // namespace
}  // namespace courier::router
