// TLS termination end to end: the real courier binary with a TLS listener
// (envoy.transport_sockets.tls), driven by curl and openssl s_client, against
// a test PKI that the test makes at run time with the openssl CLI.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/configs.h"
#include "test/integration/http_test_util.h"
#include "test/integration/test_pki.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A TLS listener "https" with an HCM (codec AUTO) answering /direct itself.
std::string tlsConfig(const std::string& tls_extra = "", const std::string& common_extra = "") {
  return R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: https
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
)" + tls_extra + R"(          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: )" + pki().path("server.pem") + R"(}
              private_key: {filename: )" + pki().path("server.key") + R"(}
)" + common_extra + R"(      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: "/direct"}
                direct_response: {status: 200, body: {inline_string: "hello"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
}

std::string mtlsConfig() {
  return tlsConfig("          require_client_certificate: true\n",
                   "            validation_context:\n              trusted_ca: {filename: " + pki().path("ca.pem") + "}\n");
}

class TlsIntegrationTest : public ::testing::Test {
 protected:
  void start(const std::string& config) {
    ASSERT_TRUE(pki().ok) << pki().log;
    ASSERT_TRUE(courier_.start(config)) << courier_.log();
    port_ = courier_.listenerPort("https");
    ASSERT_NE(port_, 0);
  }
  // curl to https://courier.test:PORT/direct; prints the body, then the HTTP version
  // (unless flags bring their own -w).
  std::string curl(const std::string& flags, int* rc = nullptr) {
    const std::string p = std::to_string(port_);
    return runCommand("curl -sS --max-time 10 --cacert " + pki().path("ca.pem") + " --resolve courier.test:" + p +
                   ":127.0.0.1 -w ' %{http_version}' " + flags + " https://courier.test:" + p + "/direct 2>&1",
               rc);
  }
  // Listener stats are named after the configured address (port 0 here).
  std::string prefix() const { return "listener.127.0.0.1_0.ssl."; }

  CourierProcess courier_;
  uint16_t port_ = 0;
};

TEST_F(TlsIntegrationTest, CurlOverHttp1) {
  start(tlsConfig());
  EXPECT_EQ(curl("--http1.1"), "hello 1.1");
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 1));
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_2xx"), 1u);
}

TEST_F(TlsIntegrationTest, CurlOverHttp2ChosenByAlpn) {
  start(tlsConfig());
  EXPECT_EQ(curl("--http2"), "hello 2");
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 1));
}

TEST_F(TlsIntegrationTest, OpensslClientNegotiatesAlpnAndVerifiesChain) {
  start(tlsConfig());
  const std::string out = runCommand("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                              " -servername courier.test -verify_hostname courier.test -alpn h2 -CAfile " +
                              pki().path("ca.pem") + " 2>&1");
  EXPECT_THAT(out, HasSubstr("ALPN protocol: h2"));
  EXPECT_THAT(out, HasSubstr("Verify return code: 0 (ok)"));
  const std::string http1 = runCommand("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                                " -alpn http/1.1 -CAfile " + pki().path("ca.pem") + " 2>&1");
  EXPECT_THAT(http1, HasSubstr("ALPN protocol: http/1.1"));
}

// s_client with extra flags, sending input after the handshake.
std::string sClient(uint16_t port, const std::string& flags, const std::string& input = "") {
  return runCommand("printf '" + input + "' | openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(port) + " " +
             flags + " 2>&1");
}

TEST_F(TlsIntegrationTest, AlpnHttp11IsServedAsHttp1) {
  start(tlsConfig());
  const std::string out =
      sClient(port_, "-ign_eof -alpn http/1.1", "GET /direct HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n");
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(out, HasSubstr("hello"));
}

TEST_F(TlsIntegrationTest, AlpnH2IsServedAsHttp2EvenForHttp1Bytes) {
  start(tlsConfig());
  // ALPN chose h2, so HTTP/1 text is a broken HTTP/2 preface, not a request.
  const std::string out =
      sClient(port_, "-ign_eof -alpn h2", "GET /direct HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n");
  EXPECT_THAT(out, Not(HasSubstr("HTTP/1.1 200")));
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_total").value_or(0), 0u);
}

TEST_F(TlsIntegrationTest, ProtocolVersionRangeIsEnforced) {
  start(tlsConfig("", "            tls_params: {tls_minimum_protocol_version: TLSv1_3}\n"));
  const std::string ca = " -CAfile " + pki().path("ca.pem");
  EXPECT_THAT(runCommand("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port_) + ca + " 2>&1"),
              HasSubstr("New, TLSv1.3"));
  const std::string old = runCommand("echo | openssl s_client -tls1_2 -connect 127.0.0.1:" + std::to_string(port_) + ca + " 2>&1");
  EXPECT_THAT(old, HasSubstr("alert protocol version"));
  EXPECT_THAT(old, HasSubstr("Cipher is (NONE)"));
  EXPECT_TRUE(courier_.waitForStat(prefix() + "connection_error", 1)) << old;
}

TEST_F(TlsIntegrationTest, MaximumVersionTls12WithCipherSuite) {
  start(tlsConfig("", "            tls_params: {tls_maximum_protocol_version: TLSv1_2, "
                      "cipher_suites: [ECDHE-ECDSA-CHACHA20-POLY1305]}\n"));
  const std::string out = runCommand("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                              " -CAfile " + pki().path("ca.pem") + " 2>&1");
  EXPECT_THAT(out, HasSubstr("Protocol  : TLSv1.2"));
  EXPECT_THAT(out, HasSubstr("Cipher    : ECDHE-ECDSA-CHACHA20-POLY1305"));
}

TEST_F(TlsIntegrationTest, InlineCertificateAndKey) {
  ASSERT_TRUE(pki().ok) << pki().log;
  std::string config = tlsConfig();
  auto inlined = [](const std::string& file) {
    std::string pem = runCommand("cat " + file);
    std::string escaped;
    for (char c : pem) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
    return "inline_string: \"" + escaped + "\"";
  };
  for (const char* name : {"server.pem", "server.key"}) {
    const std::string from = "filename: " + pki().path(name);
    config.replace(config.find(from), from.size(), inlined(pki().path(name)));
  }
  start(config);
  EXPECT_EQ(curl("--http1.1"), "hello 1.1");
}

TEST_F(TlsIntegrationTest, DefaultTls12CiphersAreEnvoys) {
  start(tlsConfig());
  const std::string base = "echo | openssl s_client -tls1_2 -connect 127.0.0.1:" + std::to_string(port_) + " -cipher ";
  EXPECT_THAT(runCommand(base + "ECDHE-ECDSA-AES128-GCM-SHA256 2>&1"), HasSubstr("Cipher    : ECDHE-ECDSA-AES128-GCM-SHA256"));
  // CBC with SHA-384 is not in Envoy's default server list.
  EXPECT_THAT(runCommand(base + "ECDHE-ECDSA-AES256-SHA384 2>&1"), HasSubstr("Cipher is (NONE)"));
}

TEST_F(TlsIntegrationTest, MutualTlsAcceptsClientCertificate) {
  start(mtlsConfig());
  EXPECT_EQ(curl("--cert " + pki().path("client.pem") + " --key " + pki().path("client.key")), "hello 2");
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 1));
  EXPECT_EQ(courier_.stat(prefix() + "no_certificate"), 0u);
}

TEST_F(TlsIntegrationTest, MutualTlsRejectsClientWithoutCertificate) {
  start(mtlsConfig());
  int rc = 0;
  const std::string out = curl("", &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_THAT(out, Not(HasSubstr("hello")));
  EXPECT_TRUE(courier_.waitForStat(prefix() + "fail_verify_no_cert", 1)) << out;
  EXPECT_TRUE(courier_.waitForStat(prefix() + "connection_error", 1));
  EXPECT_EQ(courier_.stat("http.ingress.downstream_rq_total").value_or(0), 0u);
}

TEST_F(TlsIntegrationTest, MutualTlsRejectsCertificateFromAnotherCa) {
  start(mtlsConfig());
  // The server's own CA-signed cert is fine; a self-signed one is not.
  const std::string dir = tempDir();
  runCommand("cd " + dir + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout rogue.key -out rogue.pem -days 1 -subj /CN=rogue 2>&1");
  int rc = 0;
  const std::string out = curl("--cert " + dir + "/rogue.pem --key " + dir + "/rogue.key", &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_TRUE(courier_.waitForStat(prefix() + "fail_verify_error", 1)) << out;
}

TEST_F(TlsIntegrationTest, PlaintextClientIsClosedAndServerKeepsServing) {
  start(tlsConfig());
  TcpClient plain(port_);
  ASSERT_TRUE(plain.connected());
  plain.write(get("courier.test", "/direct"));
  EXPECT_TRUE(plain.waitForClose());
  EXPECT_TRUE(courier_.waitForStat(prefix() + "connection_error", 1));
  EXPECT_EQ(curl("--http1.1"), "hello 1.1");
}

TEST_F(TlsIntegrationTest, ClientStalledMidHandshakeDoesNotBlockOthers) {
  start(tlsConfig());
  TcpClient stalled(port_);
  ASSERT_TRUE(stalled.connected());
  // The first bytes of a TLS record header, then nothing.
  stalled.write(std::string("\x16\x03\x01\x02", 4));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(curl("--http2"), "hello 2");
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 3));
  EXPECT_EQ(courier_.stat(prefix() + "connection_error"), 0u);
}

TEST_F(TlsIntegrationTest, LargeBodyCrossesManyRecords) {
  // 1 MiB from a plaintext upstream, out through many TLS records.
  const std::string body(1 << 20, 'x');
  const std::string response = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  TcpServer upstream([&response](int fd) {
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) sendAll(fd, response);
  });
  std::string config = tlsConfig();
  const std::string from = R"(direct_response: {status: 200, body: {inline_string: "hello"}})";
  config.replace(config.find(from), from.size(), "route: {cluster: big}");
  config += "  clusters:\n" + staticCluster("big", upstream.port());
  start(config);
  for (const char* flags : {"--http1.1", "--http2"}) {
    const std::string out = curl(std::string(flags) + " -o /dev/null -w '%{size_download}'");
    EXPECT_THAT(out, HasSubstr("1048576")) << flags;
  }
}

// A plaintext front courier whose cluster "tls_up" speaks TLS to a second
// courier's TLS listener (the upstream), with the given UpstreamTlsContext body.
class UpstreamTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki().ok) << pki().log;
    ASSERT_TRUE(upstream_.start(tlsConfig())) << upstream_.log();
    upstream_port_ = upstream_.listenerPort("https");
  }
  static std::string frontConfig(uint16_t upstream_port, const std::string& tls_body) {
    return hcmListener("") + R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: tls_up}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + staticCluster("tls_up", upstream_port) + R"(    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
)" + tls_body;
  }
  std::string validation(const std::string& san) const {
    return "          validation_context:\n            trusted_ca: {filename: " + pki().path("ca.pem") +
           "}\n            match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: " + san + "}}]\n";
  }
  void startFront(const std::string& tls_body) {
    ASSERT_TRUE(front_.start(frontConfig(upstream_port_, tls_body))) << front_.log();
    front_port_ = front_.listenerPort("http");
  }

  CourierProcess upstream_;
  CourierProcess front_;
  uint16_t upstream_port_ = 0;
  uint16_t front_port_ = 0;
};

TEST_F(UpstreamTlsTest, VerifiedUpstreamWithMatchingSan) {
  startFront("        sni: courier.test\n        common_tls_context:\n" + validation("courier.test"));
  HttpResponse r = httpRequest(front_port_, "GET", "/direct");
  EXPECT_EQ(r.status, 200) << r.headers;
  EXPECT_EQ(r.body, "hello");
  EXPECT_TRUE(front_.waitForStat("cluster.tls_up.ssl.handshake", 1));
  EXPECT_TRUE(upstream_.waitForStat("listener.127.0.0.1_0.ssl.handshake", 1));
}

TEST_F(UpstreamTlsTest, SanMismatchFailsTheUpstreamConnection) {
  startFront("        sni: courier.test\n        common_tls_context:\n" + validation("other.test"));
  HttpResponse r = httpRequest(front_port_, "GET", "/direct");
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(front_.waitForStat("cluster.tls_up.ssl.fail_verify_san", 1));
  EXPECT_EQ(front_.stat("cluster.tls_up.ssl.handshake"), 0u);
}

TEST_F(UpstreamTlsTest, UntrustedUpstreamCertificateIsRejected) {
  const std::string dir = tempDir();
  runCommand("cd " + dir + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout other.key -out other-ca.pem -days 1 -subj /CN=other-ca 2>&1");
  startFront("        common_tls_context:\n          validation_context:\n            trusted_ca: {filename: " + dir +
             "/other-ca.pem}\n");
  HttpResponse r = httpRequest(front_port_, "GET", "/direct");
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(front_.waitForStat("cluster.tls_up.ssl.fail_verify_error", 1));
}

TEST_F(UpstreamTlsTest, UpstreamClientCertificateSatisfiesMutualTls) {
  // A second upstream that requires client certificates.
  CourierProcess mtls;
  ASSERT_TRUE(mtls.start(mtlsConfig())) << mtls.log();
  const std::string cert = "          tls_certificates:\n          - certificate_chain: {filename: " +
                           pki().path("client.pem") + "}\n            private_key: {filename: " +
                           pki().path("client.key") + "}\n";
  ASSERT_TRUE(front_.start(frontConfig(mtls.listenerPort("https"),
                                       "        common_tls_context:\n" + cert + validation("courier.test"))))
      << front_.log();
  HttpResponse r = httpRequest(front_.listenerPort("http"), "GET", "/direct");
  EXPECT_EQ(r.status, 200) << r.headers;
  EXPECT_TRUE(mtls.waitForStat("listener.127.0.0.1_0.ssl.handshake", 1));
}

TEST_F(UpstreamTlsTest, TcpProxyOriginatesTls) {
  const std::string config = tcpProxyConfig({upstream_port_}) + R"(    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
)" + validation("courier.test");
  ASSERT_TRUE(front_.start(config)) << front_.log();
  // Plaintext HTTP in, TLS to the upstream courier, plaintext back.
  Raw client(front_.listenerPort("tcp"));
  const std::string response = client.roundTrip(get("x", "/direct"));
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(response, HasSubstr("hello"));
  EXPECT_TRUE(front_.waitForStat("cluster.backend.ssl.handshake", 1));
}

TEST_F(UpstreamTlsTest, BadUpstreamTlsConfigNamesTheField) {
  const std::string path = tempDir() + "/courier.yaml";
  writeFile(path, frontConfig(upstream_port_, "        common_tls_context:\n          validation_context:\n"
                                              "            trusted_ca: {filename: /nonexistent/ca.pem}\n"));
  std::string out;
  EXPECT_NE(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 0);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].transport_socket.typed_config.common_tls_context."
                             "validation_context.trusted_ca.filename"));
}

// Bad TLS config is refused with the field path of the culprit.
class TlsConfigErrorTest : public ::testing::Test {
 protected:
  std::string validate(const std::string& config) {
    EXPECT_TRUE(pki().ok) << pki().log;
    const std::string path = tempDir() + "/courier.yaml";
    writeFile(path, config);
    std::string out;
    EXPECT_NE(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 0) << out;
    return out;
  }
  static std::string replace(std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  }
};

TEST_F(TlsConfigErrorTest, MissingCertificateFileNamesFieldPath) {
  const std::string out = validate(replace(tlsConfig(), pki().path("server.pem"), "/nonexistent/cert.pem"));
  EXPECT_THAT(out, HasSubstr("static_resources.listeners[0].filter_chains[0].transport_socket.typed_config."
                             "common_tls_context.tls_certificates[0].certificate_chain.filename"));
  EXPECT_THAT(out, HasSubstr("/nonexistent/cert.pem"));
}

TEST_F(TlsConfigErrorTest, KeyNotMatchingCertificateIsRefused) {
  const std::string out = validate(replace(tlsConfig(), pki().path("server.key"), pki().path("client.key")));
  EXPECT_THAT(out, HasSubstr("tls_certificates[0].private_key: does not match"));
}

TEST_F(TlsConfigErrorTest, GarbageCertificateIsRefused) {
  const std::string out = validate(replace(tlsConfig(), "certificate_chain: {filename: " + pki().path("server.pem"),
                                           "certificate_chain: {inline_string: \"not a pem\""));
  EXPECT_THAT(out, HasSubstr("tls_certificates[0].certificate_chain: no PEM certificate"));
}

TEST_F(TlsConfigErrorTest, UnknownCipherSuiteNamesItsIndex) {
  const std::string out = validate(tlsConfig(
      "", "            tls_params: {cipher_suites: [ECDHE-ECDSA-AES128-GCM-SHA256, NOT-A-CIPHER]}\n"));
  EXPECT_THAT(out, HasSubstr("common_tls_context.tls_params.cipher_suites[1]: unknown cipher suite \"NOT-A-CIPHER\""));
}

TEST_F(TlsConfigErrorTest, RequiredClientCertificateNeedsTrustedCa) {
  const std::string out = validate(tlsConfig("          require_client_certificate: true\n"));
  EXPECT_THAT(out, HasSubstr("transport_socket.typed_config.require_client_certificate"));
}

TEST_F(TlsConfigErrorTest, UnsupportedFieldsAreRefusedNotIgnored) {
  EXPECT_THAT(validate(tlsConfig("          require_sni: true\n")),
              HasSubstr("transport_socket.typed_config.require_sni: is not supported yet"));
  EXPECT_THAT(validate(tlsConfig("", "            validation_context: {trusted_ca: {filename: " + pki().path("ca.pem") +
                                         "}, verify_certificate_hash: [\"00\"]}\n")),
              HasSubstr("common_tls_context.validation_context: SAN matchers"));
}

TEST_F(TlsConfigErrorTest, UnknownTransportSocketIsRefused) {
  const std::string out = validate(replace(
      tlsConfig(), "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"));
  EXPECT_THAT(out, HasSubstr("filter_chains[0].transport_socket.typed_config: no transport socket"));
}

}  // namespace
}  // namespace courier::test
