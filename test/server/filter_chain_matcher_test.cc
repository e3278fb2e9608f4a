// Envoy's filter_chain_match precedence, level by level, and the config
// errors the matcher reports.
#include "source/server/filter_chain_matcher.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/server/listener_config.h"

namespace courier::server {
namespace {

using envoy::config::listener::v3::FilterChainMatch;
using ::testing::HasSubstr;

class MatcherTest : public ::testing::Test {
 protected:
  // One chain per YAML filter_chain_match ("" = no filter_chain_match), named "0", "1"...
  absl::Status build(const std::vector<std::string>& yamls) {
    protos_.clear();
    chains_.clear();
    std::vector<const FilterChainMatch*> matches;
    std::vector<const FilterChain*> chains;
    for (size_t i = 0; i < yamls.size(); ++i) {
      auto m = std::make_unique<FilterChainMatch>();
      if (!yamls[i].empty()) {
        auto s = protobuf::loadFromYamlString(yamls[i], *m);
        if (!s.ok()) return s;
      }
      auto c = std::make_unique<FilterChain>();
      c->name = std::to_string(i);
      matches.push_back(yamls[i].empty() ? nullptr : m.get());
      chains.push_back(c.get());
      protos_.push_back(std::move(m));
      chains_.push_back(std::move(c));
    }
    auto matcher = FilterChainMatcher::create(matches, chains, "filter_chains");
    if (!matcher.ok()) return matcher.status();
    matcher_ = std::move(*matcher);
    return absl::OkStatus();
  }

  struct Conn {
    std::string local = "127.0.0.1:443";
    std::string remote = "127.0.0.1:40000";
    std::string sni;
    std::string transport = "raw_buffer";
    std::vector<std::string> alpn;
  };
  static network::Address addr(const std::string& hostport) {
    const auto colon = hostport.rfind(':');
    std::string host = hostport.substr(0, colon);
    if (host.front() == '[') host = host.substr(1, host.size() - 2);
    auto a = network::Address::fromIpPort(host, std::stoi(hostport.substr(colon + 1)));
    EXPECT_TRUE(a.ok()) << hostport;
    return *a;
  }
  // The chosen chain's name, or "none".
  std::string match(const Conn& c) {
    network::Address local = addr(c.local);
    network::Address remote = addr(c.remote);
    ConnectionMatchInfo info;
    info.local = &local;
    info.remote = &remote;
    info.server_name = c.sni;
    info.transport_protocol = c.transport;
    info.application_protocols = &c.alpn;
    const FilterChain* chain = matcher_.match(info);
    return chain == nullptr ? "none" : chain->name;
  }

  std::vector<std::unique_ptr<FilterChainMatch>> protos_;
  std::vector<std::unique_ptr<FilterChain>> chains_;
  FilterChainMatcher matcher_;
};

TEST_F(MatcherTest, NoMatchConfigMatchesEverything) {
  ASSERT_TRUE(build({""}).ok());
  EXPECT_EQ(match({}), "0");
  EXPECT_EQ(match({.local = "[::1]:80", .remote = "[::1]:5"}), "0");
}

TEST_F(MatcherTest, DestinationPortExactBeatsNoPortAndIsNotLeftAgain) {
  ASSERT_TRUE(build({"{}", "{destination_port: 443, server_names: [a.test]}"}).ok());
  EXPECT_EQ(match({.sni = "a.test"}), "1");
  EXPECT_EQ(match({.local = "127.0.0.1:80", .sni = "a.test"}), "0");
  // Port 443 has its own entry: a connection to it that fails deeper does
  // not fall back to the port-less chain (Envoy does not backtrack).
  EXPECT_EQ(match({.sni = "b.test"}), "none");
}

TEST_F(MatcherTest, DestinationIpLongestPrefixWins) {
  ASSERT_TRUE(build({"{prefix_ranges: [{address_prefix: 127.0.0.0, prefix_len: 8}]}",
                     "{prefix_ranges: [{address_prefix: 127.0.0.2, prefix_len: 32}]}", "{}"})
                  .ok());
  EXPECT_EQ(match({.local = "127.0.0.2:443"}), "1");
  EXPECT_EQ(match({.local = "127.0.0.1:443"}), "0");
  EXPECT_EQ(match({.local = "10.0.0.1:443"}), "2");
  EXPECT_EQ(match({.local = "[::1]:443"}), "2");
}

TEST_F(MatcherTest, Ipv6PrefixesAndMaskedHostBits) {
  ASSERT_TRUE(build({"{prefix_ranges: [{address_prefix: '2001:db8::1', prefix_len: 32}]}"}).ok());
  EXPECT_EQ(match({.local = "[2001:db8:ffff::9]:443"}), "0");
  EXPECT_EQ(match({.local = "[2001:db9::1]:443"}), "none");
  EXPECT_EQ(match({.local = "127.0.0.1:443"}), "none");
}

TEST_F(MatcherTest, ServerNamesExactThenLongestWildcardThenNone) {
  ASSERT_TRUE(build({"{server_names: [www.example.com]}", "{server_names: ['*.example.com']}",
                     "{server_names: ['*.com']}", "{}", "{server_names: ['*.b.example.com']}"})
                  .ok());
  EXPECT_EQ(match({.sni = "www.example.com"}), "0");
  EXPECT_EQ(match({.sni = "WWW.Example.COM"}), "0");
  EXPECT_EQ(match({.sni = "api.example.com"}), "1");
  EXPECT_EQ(match({.sni = "a.b.example.com"}), "4");
  EXPECT_EQ(match({.sni = "x.c.example.com"}), "1");
  EXPECT_EQ(match({.sni = "other.com"}), "2");
  // A wildcard never matches the bare domain.
  EXPECT_EQ(match({.sni = "example.com"}), "2");
  EXPECT_EQ(match({.sni = "example.org"}), "3");
  EXPECT_EQ(match({}), "3");
}

TEST_F(MatcherTest, ServerNameBeatsTransportProtocol) {
  ASSERT_TRUE(build({"{server_names: [a.test]}", "{transport_protocol: tls}"}).ok());
  EXPECT_EQ(match({.sni = "a.test", .transport = "tls"}), "0");
  EXPECT_EQ(match({.sni = "b.test", .transport = "tls"}), "1");
  EXPECT_EQ(match({.transport = "raw_buffer"}), "none");
}

TEST_F(MatcherTest, TransportProtocolExactThenAny) {
  ASSERT_TRUE(build({"{transport_protocol: tls}", "{}"}).ok());
  EXPECT_EQ(match({.transport = "tls"}), "0");
  EXPECT_EQ(match({.transport = "raw_buffer"}), "1");
}

TEST_F(MatcherTest, ApplicationProtocolsFirstOfTheClientsListThatMatches) {
  ASSERT_TRUE(build({"{application_protocols: [h2]}", "{application_protocols: ['http/1.1', 'http/1.0']}", "{}"}).ok());
  EXPECT_EQ(match({.alpn = {"h2", "http/1.1"}}), "0");
  EXPECT_EQ(match({.alpn = {"http/1.1", "h2"}}), "1");
  EXPECT_EQ(match({.alpn = {"http/1.0"}}), "1");
  EXPECT_EQ(match({.alpn = {"spdy/3"}}), "2");
  EXPECT_EQ(match({}), "2");
}

TEST_F(MatcherTest, TransportProtocolBeatsApplicationProtocols) {
  ASSERT_TRUE(build({"{transport_protocol: tls}", "{application_protocols: [h2]}"}).ok());
  EXPECT_EQ(match({.transport = "tls", .alpn = {"h2"}}), "0");
  EXPECT_EQ(match({.transport = "raw_buffer", .alpn = {"h2"}}), "1");
}

TEST_F(MatcherTest, SourceTypeLocalVersusExternal) {
  ASSERT_TRUE(build({"{source_type: SAME_IP_OR_LOOPBACK}", "{source_type: EXTERNAL}"}).ok());
  EXPECT_EQ(match({.remote = "127.0.0.5:1"}), "0");
  EXPECT_EQ(match({.local = "10.1.1.1:443", .remote = "10.1.1.1:1"}), "0");
  EXPECT_EQ(match({.local = "10.1.1.1:443", .remote = "10.1.1.2:1"}), "1");
  EXPECT_EQ(match({.local = "[::1]:443", .remote = "[::1]:1"}), "0");
}

TEST_F(MatcherTest, SourceTypeFallsBackToAnyOnlyWhenItsTypeHasNoChain) {
  ASSERT_TRUE(build({"{source_type: SAME_IP_OR_LOOPBACK}", "{}"}).ok());
  EXPECT_EQ(match({.remote = "127.0.0.1:1"}), "0");
  EXPECT_EQ(match({.local = "10.1.1.1:443", .remote = "10.9.9.9:1"}), "1");
}

TEST_F(MatcherTest, DirectSourceBeatsSourceType) {
  ASSERT_TRUE(build({"{direct_source_prefix_ranges: [{address_prefix: 127.0.0.1, prefix_len: 32}]}",
                     "{source_type: SAME_IP_OR_LOOPBACK}"})
                  .ok());
  EXPECT_EQ(match({.remote = "127.0.0.1:1"}), "0");
  EXPECT_EQ(match({.remote = "127.0.0.2:1"}), "1");
}

TEST_F(MatcherTest, SourcePrefixLongestThenSourcePorts) {
  ASSERT_TRUE(build({"{source_prefix_ranges: [{address_prefix: 127.0.0.0, prefix_len: 8}]}",
                     "{source_prefix_ranges: [{address_prefix: 127.0.0.7, prefix_len: 32}], source_ports: [7000]}",
                     "{source_prefix_ranges: [{address_prefix: 127.0.0.7, prefix_len: 32}]}", "{source_ports: [9]}"})
                  .ok());
  EXPECT_EQ(match({.remote = "127.0.0.7:7000"}), "1");
  EXPECT_EQ(match({.remote = "127.0.0.7:7001"}), "2");
  EXPECT_EQ(match({.remote = "127.0.0.8:7000"}), "0");
  EXPECT_EQ(match({.remote = "10.0.0.1:9"}), "3");
  EXPECT_EQ(match({.remote = "10.0.0.1:10"}), "none");
}

TEST_F(MatcherTest, DestinationPortBeatsEverythingBelowIt) {
  // Each chain is more specific on a lower level than the one above it.
  ASSERT_TRUE(build({"{destination_port: 443}",
                     "{prefix_ranges: [{address_prefix: 127.0.0.1, prefix_len: 32}], server_names: [a.test], "
                     "transport_protocol: tls, application_protocols: [h2], source_type: SAME_IP_OR_LOOPBACK, "
                     "source_ports: [5]}"})
                  .ok());
  EXPECT_EQ(match({.remote = "127.0.0.1:5", .sni = "a.test", .transport = "tls", .alpn = {"h2"}}), "0");
  EXPECT_EQ(match({.local = "127.0.0.1:80", .remote = "127.0.0.1:5", .sni = "a.test", .transport = "tls",
                   .alpn = {"h2"}}),
            "1");
}

TEST_F(MatcherTest, IdenticalMatchersAreRejected) {
  auto s = build({"{server_names: [a.test]}", "{server_names: [a.test]}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("filter_chains[1].filter_chain_match"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("multiple filter chains with the same matching rules are defined"));
  s = build({"", "{}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("same matching rules"));
}

TEST_F(MatcherTest, OverlappingMatchersAreRejected) {
  auto s = build({"{server_names: [a.test, b.test]}", "{server_names: [b.test]}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("filter_chains[1].filter_chain_match: multiple filter chains with "
                                                  "overlapping matching rules are defined"));
  // An empty prefix list is 0.0.0.0/0 and ::/0.
  s = build({"{}", "{prefix_ranges: [{address_prefix: 0.0.0.0, prefix_len: 0}]}"});
  ASSERT_FALSE(s.ok());
}

TEST_F(MatcherTest, BadFieldsAreNamed) {
  auto s = build({"{prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}, {address_prefix: nope, prefix_len: 8}]}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("filter_chains[0].filter_chain_match.prefix_ranges[1]"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"nope\" is not an IPv4 or IPv6 address"));
  s = build({"{source_prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 33}]}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("source_prefix_ranges[0]: prefix_len 33"));
  s = build({"{direct_source_prefix_ranges: [{address_prefix: '::', prefix_len: 129}]}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("direct_source_prefix_ranges[0]"));
  s = build({"{server_names: ['a*.example.com']}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("server_names[0]: partial wildcards are not supported"));
  s = build({"{destination_port: 70000}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("destination_port"));
  s = build({"{source_ports: [1, 0]}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("source_ports[1]"));
}

TEST_F(MatcherTest, NeedsTlsInspectorForSniAlpnAndTls) {
  ASSERT_TRUE(build({"{destination_port: 1}"}).ok());
  EXPECT_FALSE(matcher_.needsTlsInspector());
  ASSERT_TRUE(build({"{server_names: [a]}"}).ok());
  EXPECT_TRUE(matcher_.needsTlsInspector());
  ASSERT_TRUE(build({"{transport_protocol: tls}"}).ok());
  EXPECT_TRUE(matcher_.needsTlsInspector());
  ASSERT_TRUE(build({"{transport_protocol: raw_buffer, application_protocols: [h2c]}"}).ok());
  EXPECT_FALSE(matcher_.needsTlsInspector());
}

}  // namespace
}  // namespace courier::server
