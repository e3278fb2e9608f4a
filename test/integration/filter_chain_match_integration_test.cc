// filter_chain_match and listener filters end to end: the real courier
// binary, one listener with several chains, each answering with its own
// body, driven by curl and raw sockets on loopback.
#include <chrono>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/http_test_util.h"
#include "test/integration/test_pki.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

// A chain whose HCM answers every request with `body`; TLS (certificate for
// the test names, ALPN h2 and http/1.1) when `tls`.
std::string chain(const std::string& match, const std::string& body, bool tls, const std::string& key = "- ") {
  std::string out = "    " + key + "name: " + body + "\n";
  if (!match.empty()) out += "      filter_chain_match: " + match + "\n";
  if (tls) {
    out += R"(      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: )" + pki().path("server.pem") + R"(}
              private_key: {filename: )" + pki().path("server.key") + R"(}
)";
  }
  out += R"(      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: )" + body + R"(
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: ")" + body + R"("}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
  return out;
}

// A bootstrap with listener "l" on 127.0.0.1:`port` (0: ephemeral).
std::string listener(const std::string& listener_extra, const std::vector<std::string>& chains,
                     const std::string& default_chain = "", uint16_t port = 0) {
  std::string out = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: )" + std::to_string(port) + "}}\n" + listener_extra;
  out += "    filter_chains:\n";
  for (const auto& c : chains) out += c;
  if (!default_chain.empty()) out += default_chain;
  return out;
}

constexpr char kTlsInspector[] = R"(    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
)";

class FilterChainMatchTest : public ::testing::Test {
 protected:
  void start(const std::string& config) {
    ASSERT_TRUE(pki().ok) << pki().log;
    ASSERT_TRUE(courier_.start(config)) << courier_.log() << config;
    port_ = courier_.listenerPort("l");
    ASSERT_NE(port_, 0);
  }
  // The body courier answers https://<host>:PORT/ with (curl's error on failure).
  std::string https(const std::string& host, const std::string& flags = "") {
    const std::string p = std::to_string(port_);
    return runCommand("curl -sS --max-time 10 --cacert " + pki().path("ca.pem") + " --resolve " + host + ":" + p +
                      ":127.0.0.1 " + flags + " https://" + host + ":" + p + "/ 2>&1");
  }
  std::string http(const std::string& flags = "", const std::string& ip = "127.0.0.1") {
    return runCommand("curl -sS --max-time 10 " + flags + " http://" + ip + ":" + std::to_string(port_) + "/ 2>&1");
  }
  // listener.127.0.0.1_<configured port>.<name>
  std::string stat(const std::string& name, uint16_t configured_port = 0) const {
    return "listener.127.0.0.1_" + std::to_string(configured_port) + "." + name;
  }

  CourierProcess courier_;
  uint16_t port_ = 0;
};

TEST_F(FilterChainMatchTest, SniPicksExactThenWildcardThenCatchAll) {
  start(listener(kTlsInspector, {chain("{server_names: [a.test]}", "chain-a", true),
                                 chain("{server_names: [b.test]}", "chain-b", true),
                                 chain("{server_names: ['*.wild.test']}", "chain-wild", true),
                                 chain("{transport_protocol: tls}", "chain-any-tls", true)}));
  EXPECT_EQ(https("a.test"), "chain-a");
  EXPECT_EQ(https("b.test"), "chain-b");
  EXPECT_EQ(https("x.wild.test"), "chain-wild");
  EXPECT_EQ(https("courier.test"), "chain-any-tls");
  EXPECT_EQ(courier_.stat("tls_inspector.sni_found"), 4u);
  EXPECT_EQ(courier_.stat("tls_inspector.tls_found"), 4u);
}

TEST_F(FilterChainMatchTest, PlaintextAndTlsShareAPortByTransportProtocol) {
  start(listener(kTlsInspector, {chain("{transport_protocol: tls}", "secure", true),
                                 chain("{transport_protocol: raw_buffer}", "plain", false)}));
  EXPECT_EQ(https("courier.test"), "secure");
  EXPECT_EQ(http(), "plain");
  EXPECT_EQ(https("courier.test", "--http1.1"), "secure");
  EXPECT_EQ(courier_.stat("tls_inspector.tls_not_found"), 1u);
}

TEST_F(FilterChainMatchTest, AlpnChoosesTheChain) {
  start(listener(kTlsInspector,
                 {chain("{server_names: [alpn.test], application_protocols: [h2]}", "alpn-h2", true),
                  chain("{server_names: [alpn.test], application_protocols: ['http/1.1']}", "alpn-h1", true)}));
  EXPECT_EQ(https("alpn.test", "--http2"), "alpn-h2");
  EXPECT_EQ(https("alpn.test", "--http1.1"), "alpn-h1");
  EXPECT_EQ(courier_.stat("tls_inspector.alpn_found"), 2u);
}

TEST_F(FilterChainMatchTest, ChainsThatMatchOnSniGetATlsInspectorWithoutAskingForIt) {
  start(listener("", {chain("{server_names: [a.test]}", "chain-a", true),
                      chain("{server_names: [b.test]}", "chain-b", true)}));
  EXPECT_EQ(https("b.test"), "chain-b");
  EXPECT_EQ(https("a.test"), "chain-a");
}

TEST_F(FilterChainMatchTest, DestinationPortAndSourcePrefix) {
  const uint16_t port = unusedPort();
  const std::string p = std::to_string(port);
  start(listener("", {chain("{destination_port: " + p + "}", "on-port", false),
                      chain("{destination_port: " + p +
                                ", source_prefix_ranges: [{address_prefix: 127.0.0.2, prefix_len: 32}]}",
                            "from-127-0-0-2", false),
                      chain("{destination_port: 1}", "other-port", false)},
                 "", port));
  EXPECT_EQ(port_, port);
  EXPECT_EQ(http(), "on-port");
  EXPECT_EQ(http("--interface 127.0.0.2"), "from-127-0-0-2");
  EXPECT_EQ(http("--interface 127.0.0.3"), "on-port");
}

TEST_F(FilterChainMatchTest, DefaultChainWhenNothingMatches) {
  start(listener(kTlsInspector, {chain("{server_names: [a.test]}", "chain-a", true)},
                 chain("", "fallback", false, "default_filter_chain:\n      ")));
  EXPECT_EQ(http(), "fallback");
  EXPECT_EQ(https("a.test"), "chain-a");
  EXPECT_EQ(courier_.stat(stat("no_filter_chain_match")), 0u);
}

TEST_F(FilterChainMatchTest, NoMatchClosesAndCounts) {
  start(listener("", {chain("{source_prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}", "ten", false)}));
  TcpClient client(port_);
  ASSERT_TRUE(client.connected());
  client.write(get("x", "/"));
  EXPECT_TRUE(client.waitForClose());
  EXPECT_TRUE(courier_.waitForStat(stat("no_filter_chain_match"), 1));
  EXPECT_EQ(courier_.stat(stat("downstream_cx_total")), 0u);
}

TEST_F(FilterChainMatchTest, SilentPeerIsClosedAtListenerFiltersTimeout) {
  start(listener(std::string(kTlsInspector) + "    listener_filters_timeout: 0.3s\n",
                 {chain("", "any", false)}));
  const auto began = std::chrono::steady_clock::now();
  TcpClient silent(port_);
  ASSERT_TRUE(silent.connected());
  EXPECT_TRUE(silent.waitForClose());
  EXPECT_GE(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(250));
  EXPECT_TRUE(courier_.waitForStat(stat("downstream_pre_cx_timeout"), 1));
  EXPECT_TRUE(courier_.waitForStat(stat("downstream_pre_cx_active"), 0));
  EXPECT_EQ(courier_.stat(stat("downstream_cx_total")), 0u);
}

TEST_F(FilterChainMatchTest, FilterDisabledSkipsTheListenerFilterOnMatchingPorts) {
  const uint16_t port = unusedPort();
  start(listener(R"(    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      filter_disabled:
        or_match:
          rules:
          - destination_port_range: {start: )" + std::to_string(port) + ", end: " + std::to_string(port + 1) + R"(}
          - not_match: {any_match: true}
    listener_filters_timeout: 0.2s
)",
                 {chain("{transport_protocol: raw_buffer}", "plain", false)}, "", port));
  // The inspector would wait for a first byte and close the silent peer at
  // the timeout; disabled, the connection reaches its chain without a byte.
  TcpClient silent(port_);
  ASSERT_TRUE(silent.connected());
  ASSERT_TRUE(courier_.waitForStat(stat("downstream_cx_total", port), 1));
  silent.write(get("x", "/", "connection: close\r\n"));
  EXPECT_THAT(silent.readToEof(), HasSubstr("plain"));
  EXPECT_EQ(courier_.stat(stat("downstream_pre_cx_timeout", port)), 0u);
  EXPECT_EQ(courier_.stat("tls_inspector.tls_not_found").value_or(0), 0u);
}

TEST_F(FilterChainMatchTest, ContinueOnListenerFiltersTimeoutServesWithWhatWasFound) {
  start(listener(std::string(kTlsInspector) +
                     "    listener_filters_timeout: 0.2s\n    continue_on_listener_filters_timeout: true\n",
                 {chain("{transport_protocol: raw_buffer}", "plain", false)}));
  TcpClient slow(port_);
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(courier_.waitForStat(stat("downstream_pre_cx_timeout"), 1));
  ASSERT_TRUE(courier_.waitForStat(stat("downstream_cx_total"), 1));
  slow.write(get("x", "/", "connection: close\r\n"));
  EXPECT_THAT(slow.readToEof(), HasSubstr("plain"));
}

TEST_F(FilterChainMatchTest, GarbageClientHellosDoNotHurtTheNextConnection) {
  start(listener(kTlsInspector, {chain("{server_names: [a.test]}", "chain-a", true),
                                 chain("{transport_protocol: raw_buffer}", "plain", false)}));
  {
    // A handshake header promising 16 MiB: refused without waiting for it.
    TcpClient huge(port_);
    huge.write(std::string("\x16\x03\x01\x00\x08\x01\xff\xff\xff", 9) + "abcd");
    EXPECT_TRUE(huge.waitForClose());
    EXPECT_TRUE(courier_.waitForStat("tls_inspector.client_hello_too_large", 1));
  }
  {
    // A complete ClientHello whose lengths are nonsense: not TLS, so the
    // plaintext chain gets it, and its HTTP codec rejects the bytes.
    std::string body = std::string("\x03\x03", 2) + std::string(32, 'r') + std::string("\x50", 1) + "xyz";
    std::string hs = std::string("\x01\x00\x00", 3) + std::string(1, static_cast<char>(body.size())) + body;
    TcpClient broken(port_);
    broken.write(std::string("\x16\x03\x01\x00", 4) + std::string(1, static_cast<char>(hs.size())) + hs);
    EXPECT_TRUE(broken.waitForClose());
    EXPECT_TRUE(courier_.waitForStat("tls_inspector.tls_not_found", 1));
  }
  {
    // A peer that sends half a record header, then leaves.
    TcpClient half(port_);
    half.write(std::string("\x16\x03", 2));
    half.close();
    EXPECT_TRUE(courier_.waitForStat(stat("downstream_listener_filter_remote_close"), 1));
  }
  EXPECT_EQ(https("a.test"), "chain-a");
  EXPECT_EQ(http(), "plain");
  EXPECT_TRUE(courier_.waitForStat(stat("downstream_pre_cx_active"), 0));
}

TEST_F(FilterChainMatchTest, HttpInspectorSplitsHttp1FromH2c) {
  start(listener(R"(    listener_filters:
    - name: envoy.filters.listener.http_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector}
)",
                 {chain("{application_protocols: [h2c]}", "h2c", false),
                  chain("{application_protocols: ['http/1.1', 'http/1.0']}", "http1", false)}));
  EXPECT_EQ(http("--http2-prior-knowledge"), "h2c");
  EXPECT_EQ(http("--http1.1"), "http1");
  // HTTP/1.0 reaches the http1 chain, whose connection manager refuses it
  // as Envoy's does without accept_http_10.
  EXPECT_EQ(http("--http1.0 -o /dev/null -w '%{http_code}'"), "426");
  EXPECT_TRUE(courier_.waitForStat("http.http1.downstream_rq_4xx", 1));
  EXPECT_EQ(courier_.stat("http_inspector.http2_found"), 1u);
  EXPECT_EQ(courier_.stat("http_inspector.http11_found"), 1u);
  EXPECT_EQ(courier_.stat("http_inspector.http10_found"), 1u);
}

TEST_F(FilterChainMatchTest, BadMatchersAreRejectedAtStartupNamingTheField) {
  ASSERT_TRUE(pki().ok);
  std::string out;
  const std::string dir = tempDir();
  auto validate = [&](const std::string& config) {
    writeFile(dir + "/c.yaml", config);
    return CourierProcess::runToExit({"--mode", "validate", "-c", dir + "/c.yaml"}, &out);
  };
  EXPECT_NE(validate(listener("", {chain("{server_names: [a.test]}", "x", false),
                                   chain("{server_names: [a.test]}", "y", false)})),
            0);
  EXPECT_THAT(out, HasSubstr("static_resources.listeners[0].filter_chains[1].filter_chain_match: multiple filter "
                             "chains with the same matching rules are defined"));
  EXPECT_NE(validate(listener("", {chain("{prefix_ranges: [{address_prefix: 10.0.0.300, prefix_len: 8}]}", "x",
                                         false)})),
            0);
  EXPECT_THAT(out, HasSubstr("filter_chains[0].filter_chain_match.prefix_ranges[0]: \"10.0.0.300\" is not an IPv4"));
  EXPECT_NE(validate(listener(R"(    listener_filters:
    - name: envoy.filters.listener.nope
)",
                              {chain("", "x", false)})),
            0);
  EXPECT_THAT(out, HasSubstr("listener_filters[0].name: no listener filter for name \"envoy.filters.listener.nope\""));
  EXPECT_NE(validate(listener(R"(    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      filter_disabled: {and_match: {rules: [{any_match: true}]}}
)",
                              {chain("", "x", false)})),
            0);
  EXPECT_THAT(out, HasSubstr("listener_filters[0].filter_disabled.and_match.rules: needs at least 2 rules"));
}

}  // namespace
}  // namespace courier::test
