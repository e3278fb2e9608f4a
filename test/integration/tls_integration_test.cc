// TLS termination end to end: the real courier binary with a TLS listener
// (envoy.transport_sockets.tls), driven by curl and openssl s_client, against
// a test PKI that the test makes at run time with the openssl CLI.
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

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

// require_client_certificate with trusted_ca and further validation_context
// lines (each indented 14 spaces).
std::string mtlsConfig(const std::string& validation_extra = "") {
  return tlsConfig("          require_client_certificate: true\n",
                   "            validation_context:\n              trusted_ca: {filename: " + pki().path("ca.pem") +
                       "}\n" + validation_extra);
}

// A DER OCSP response from the test CA saying "good" for a certificate,
// thisUpdate/nextUpdate relative to now in seconds. `openssl ocsp` cannot
// make an expired one, hence the API.
std::string ocspResponse(const std::string& cert_name, long this_update, long next_update) {
  auto readCert = [](const std::string& file) {
    FILE* f = fopen(file.c_str(), "r");
    X509* x = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f) fclose(f);
    return x;
  };
  X509* cert = readCert(pki().path(cert_name));
  X509* ca = readCert(pki().path("ca.pem"));
  FILE* kf = fopen(pki().path("ca.key").c_str(), "r");
  EVP_PKEY* key = kf ? PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr) : nullptr;
  if (kf) fclose(kf);
  std::string out;
  if (cert != nullptr && ca != nullptr && key != nullptr) {
    OCSP_CERTID* id = OCSP_cert_to_id(EVP_sha1(), cert, ca);
    OCSP_BASICRESP* basic = OCSP_BASICRESP_new();
    ASN1_TIME* thisupd = X509_gmtime_adj(nullptr, this_update);
    ASN1_TIME* nextupd = X509_gmtime_adj(nullptr, next_update);
    OCSP_basic_add1_status(basic, id, V_OCSP_CERTSTATUS_GOOD, 0, nullptr, thisupd, nextupd);
    OCSP_basic_sign(basic, ca, key, EVP_sha256(), nullptr, 0);
    OCSP_RESPONSE* resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
    unsigned char* der = nullptr;
    const int len = i2d_OCSP_RESPONSE(resp, &der);
    if (len > 0) out.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    OCSP_BASICRESP_free(basic);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    OCSP_CERTID_free(id);
  }
  X509_free(cert);
  X509_free(ca);
  EVP_PKEY_free(key);
  return out;
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

// Client certificate validation beyond the chain: each case is a listener
// with one validation setting and a client presenting one certificate.
class TlsValidationTest : public TlsIntegrationTest {
 protected:
  // Starts a listener with mtlsConfig(validation) and has curl present
  // <cert>.pem; true when the request was served.
  bool accepts(const std::string& validation, const std::string& cert) {
    CourierProcess courier;
    EXPECT_TRUE(courier.start(mtlsConfig(validation))) << courier.log();
    port_ = courier.listenerPort("https");
    int rc = 0;
    const std::string out = curl("--http1.1 --cert " + pki().path(cert + ".pem") + " --key " + pki().path(cert + ".key"), &rc);
    last_stats_ = courier.admin("/stats").body;
    return rc == 0 && out == "hello 1.1";
  }
  // A listener stat of the last accepts() call.
  uint64_t lastStat(const std::string& name) const {
    const std::string key = prefix() + name + ": ";
    const size_t at = last_stats_.find(key);
    return at == std::string::npos ? 0 : std::stoull(last_stats_.substr(at + key.size()));
  }
  static std::string san(const std::string& type, const std::string& matcher) {
    return "              match_typed_subject_alt_names: [{san_type: " + type + ", matcher: " + matcher + "}]\n";
  }
  std::string last_stats_;
};

TEST_F(TlsValidationTest, DnsSanMatchers) {
  EXPECT_TRUE(accepts(san("DNS", "{exact: client.courier.test}"), "client"));
  EXPECT_TRUE(accepts(san("DNS", "{suffix: .courier.test}"), "client"));
  EXPECT_TRUE(accepts(san("DNS", "{prefix: CLIENT., ignore_case: true}"), "client"));
  EXPECT_FALSE(accepts(san("DNS", "{exact: other.courier.test}"), "client"));
  EXPECT_EQ(lastStat("fail_verify_san"), 1u);
  EXPECT_EQ(lastStat("fail_verify_error"), 0u);
  EXPECT_FALSE(accepts(san("DNS", "{prefix: CLIENT.}"), "client"));
  EXPECT_EQ(lastStat("fail_verify_san"), 1u);
}

TEST_F(TlsValidationTest, UriSanMatchers) {
  EXPECT_TRUE(accepts(san("URI", "{prefix: \"spiffe://courier.test/\"}"), "client"));
  EXPECT_TRUE(accepts(san("URI", "{safe_regex: {regex: \"spiffe://courier\\\\.test/ns/[a-z]+/sa/client\"}}"), "client"));
  EXPECT_TRUE(accepts(san("URI", "{contains: /sa/client}"), "client"));
  EXPECT_FALSE(accepts(san("URI", "{exact: \"spiffe://courier.test/ns/default/sa/other\"}"), "client"));
  EXPECT_EQ(lastStat("fail_verify_san"), 1u);
  // A DNS name is not a URI even when the text would match.
  EXPECT_FALSE(accepts(san("URI", "{exact: client.courier.test}"), "client"));
}

TEST_F(TlsValidationTest, EmailIpAndOtherNameSanMatchers) {
  EXPECT_TRUE(accepts(san("EMAIL", "{exact: client@courier.test}"), "client"));
  EXPECT_FALSE(accepts(san("EMAIL", "{contains: nobody}"), "client"));
  EXPECT_EQ(lastStat("fail_verify_san"), 1u);
  EXPECT_TRUE(accepts(san("IP_ADDRESS", "{exact: 10.1.2.3}"), "client"));
  EXPECT_FALSE(accepts(san("IP_ADDRESS", "{exact: 10.1.2.4}"), "client"));
  EXPECT_EQ(lastStat("fail_verify_san"), 1u);
  EXPECT_TRUE(accepts("              match_typed_subject_alt_names: [{san_type: OTHER_NAME, oid: "
                      "\"1.3.6.1.4.1.311.20.2.3\", matcher: {exact: upn@courier.test}}]\n",
                      "client"));
  EXPECT_FALSE(accepts("              match_typed_subject_alt_names: [{san_type: OTHER_NAME, oid: \"1.2.3.4\", "
                       "matcher: {exact: upn@courier.test}}]\n",
                       "client"));
}

TEST_F(TlsValidationTest, DeprecatedMatchSubjectAltNamesLooksAtEveryType) {
  EXPECT_TRUE(accepts("              match_subject_alt_names: [{exact: \"spiffe://courier.test/ns/default/sa/client\"}]\n",
                      "client"));
  EXPECT_FALSE(accepts("              match_subject_alt_names: [{exact: nothing.test}]\n", "client"));
  EXPECT_EQ(lastStat("fail_verify_san"), 1u);
}

TEST_F(TlsValidationTest, CertificateHashPins) {
  EXPECT_TRUE(accepts("              verify_certificate_hash: [\"" + pki().certHash("client.pem") + "\"]\n", "client"));
  // Without colons, lower case, and among others.
  std::string bare = pki().certHash("client.pem");
  bare.erase(std::remove(bare.begin(), bare.end(), ':'), bare.end());
  for (char& c : bare) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_TRUE(accepts("              verify_certificate_hash: [\"" + pki().certHash("server.pem") + "\", \"" + bare +
                          "\"]\n",
                      "client"));
  EXPECT_FALSE(accepts("              verify_certificate_hash: [\"" + pki().certHash("server.pem") + "\"]\n", "client"));
  EXPECT_EQ(lastStat("fail_verify_cert_hash"), 1u);
  EXPECT_EQ(lastStat("fail_verify_error"), 0u);
}

TEST_F(TlsValidationTest, SpkiPins) {
  EXPECT_TRUE(accepts("              verify_certificate_spki: [\"" + pki().spkiHash("client.pem") + "\"]\n", "client"));
  EXPECT_FALSE(accepts("              verify_certificate_spki: [\"" + pki().spkiHash("server.pem") + "\"]\n", "client"));
  EXPECT_EQ(lastStat("fail_verify_cert_hash"), 1u);
  // A hash pin or an SPKI pin is enough.
  EXPECT_TRUE(accepts("              verify_certificate_spki: [\"" + pki().spkiHash("server.pem") +
                          "\"]\n              verify_certificate_hash: [\"" + pki().certHash("client.pem") + "\"]\n",
                      "client"));
}

TEST_F(TlsValidationTest, RevokedClientIsRejectedByCrl) {
  const std::string crl = "              crl: {filename: " + pki().path("crl.pem") + "}\n";
  EXPECT_TRUE(accepts(crl, "client"));
  EXPECT_FALSE(accepts(crl, "revoked"));
  EXPECT_EQ(lastStat("fail_verify_error"), 1u);
  EXPECT_TRUE(accepts(crl + "              only_verify_leaf_cert_crl: true\n", "client"));
  EXPECT_FALSE(accepts(crl + "              only_verify_leaf_cert_crl: true\n", "revoked"));
  // Without the CRL the revoked certificate is just a CA-signed one.
  EXPECT_TRUE(accepts("", "revoked"));
}

TEST_F(TlsValidationTest, ExpiredAndNotYetValidClientsAreRejected) {
  for (const char* cert : {"expired", "future"}) {
    CourierProcess courier;
    ASSERT_TRUE(courier.start(mtlsConfig(), {"--log-level", "debug"})) << courier.log();
    port_ = courier.listenerPort("https");
    int rc = 0;
    const std::string out =
        curl("--cert " + pki().path(std::string(cert) + ".pem") + " --key " + pki().path(std::string(cert) + ".key"), &rc);
    EXPECT_NE(rc, 0) << out;
    EXPECT_TRUE(courier.waitForStat(prefix() + "fail_verify_error", 1)) << cert;
    EXPECT_EQ(courier.stat(prefix() + "handshake"), 0u);
    EXPECT_THAT(courier.log(), HasSubstr(std::string(cert) == "expired" ? "has expired" : "is not yet valid"));
  }
}

TEST_F(TlsValidationTest, AllowExpiredCertificate) {
  EXPECT_TRUE(accepts("              allow_expired_certificate: true\n", "expired"));
  EXPECT_TRUE(accepts("              allow_expired_certificate: true\n", "client"));
  // Still rejected for what is not about dates.
  EXPECT_FALSE(accepts("              allow_expired_certificate: true\n              crl: {filename: " +
                           pki().path("crl.pem") + "}\n",
                       "revoked"));
}

TEST_F(TlsValidationTest, AcceptUntrustedStillChecksSans) {
  const std::string dir = tempDir();
  runCommand("cd " + dir + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout rogue.key -out rogue.pem -days 1 -subj /CN=rogue -addext subjectAltName=DNS:client.courier.test 2>&1");
  auto start = [&](const std::string& extra) {
    CourierProcess courier;
    EXPECT_TRUE(courier.start(mtlsConfig("              trust_chain_verification: ACCEPT_UNTRUSTED\n" + extra)))
        << courier.log();
    port_ = courier.listenerPort("https");
    int rc = 0;
    const std::string out = curl("--http1.1 --cert " + dir + "/rogue.pem --key " + dir + "/rogue.key", &rc);
    EXPECT_TRUE(courier.waitForStat(prefix() + "fail_verify_error", 1));
    return out == "hello 1.1";
  };
  EXPECT_TRUE(start(""));
  EXPECT_TRUE(start(san("DNS", "{exact: client.courier.test}")));
  EXPECT_FALSE(start(san("DNS", "{exact: other.test}")));
}

// What a handshake negotiated, in Envoy's tag-extracted stat names.
TEST_F(TlsIntegrationTest, HandshakeStatsNameVersionCipherCurveAndSigalg) {
  start(mtlsConfig());
  const std::string out = runCommand("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                                     " -ciphersuites TLS_AES_128_GCM_SHA256 -groups X25519 -cert " +
                                     pki().path("client.pem") + " -key " + pki().path("client.key") + " 2>&1");
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 1)) << out;
  EXPECT_EQ(courier_.stat(prefix() + "versions.TLSv1.3"), 1u);
  EXPECT_EQ(courier_.stat(prefix() + "ciphers.TLS_AES_128_GCM_SHA256"), 1u);
  EXPECT_EQ(courier_.stat(prefix() + "curves.X25519"), 1u);
  EXPECT_EQ(courier_.stat(prefix() + "sigalgs.ecdsa_secp256r1_sha256"), 1u);
  // Created when first seen, like Envoy's: nothing for what was not used.
  EXPECT_EQ(courier_.stat(prefix() + "versions.TLSv1.2"), std::nullopt);
  runCommand("echo | openssl s_client -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -curves P-256 -connect 127.0.0.1:" +
             std::to_string(port_) + " -cert " + pki().path("client.pem") + " -key " + pki().path("client.key") + " 2>&1");
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 2));
  EXPECT_EQ(courier_.stat(prefix() + "versions.TLSv1.2"), 1u);
  EXPECT_EQ(courier_.stat(prefix() + "ciphers.ECDHE-ECDSA-AES128-GCM-SHA256"), 1u);
  EXPECT_EQ(courier_.stat(prefix() + "curves.P-256"), 1u);
  // Prometheus output carries the cipher as a tag, as Envoy's extractor does.
  const std::string prometheus = courier_.admin("/stats/prometheus").body;
  EXPECT_THAT(prometheus, HasSubstr("envoy_listener_ssl_ciphers{envoy_ssl_cipher=\"TLS_AES_128_GCM_SHA256\","
                                    "envoy_listener_address=\"127.0.0.1_0\"} 1"));
  EXPECT_THAT(prometheus, HasSubstr("envoy_listener_ssl_versions{envoy_ssl_version=\"TLSv1.3\""));
}

// s_client twice: the second offers the session the first saved.
std::string resumeTwice(uint16_t port, const std::string& flags) {
  const std::string sess = tempDir() + "/sess.pem";
  const std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " + flags;
  // An HTTP/1 request whose answer arrives after any TLS 1.3 ticket.
  const std::string req = "printf 'GET /direct HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n' | ";
  const std::string first = runCommand(req + base + " -ign_eof -sess_out " + sess + " 2>&1");
  return first + "\n=== second ===\n" + runCommand(req + base + " -ign_eof -sess_in " + sess + " 2>&1");
}

TEST_F(TlsIntegrationTest, ResumedHandshakesAreCounted) {
  start(tlsConfig());
  for (const char* version : {"-tls1_2", "-tls1_3"}) {
    const std::string out = resumeTwice(port_, std::string(version) + " -alpn http/1.1");
    EXPECT_THAT(out.substr(out.find("=== second ===")), HasSubstr("Reused, TLSv1.")) << version << out;
  }
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 4));
  EXPECT_EQ(courier_.stat(prefix() + "session_reused"), 2u);
}

TEST_F(TlsIntegrationTest, StatefulResumptionWithoutTickets) {
  start(tlsConfig("          disable_stateless_session_resumption: true\n"));
  const std::string out = resumeTwice(port_, "-tls1_2 -alpn http/1.1");
  EXPECT_THAT(out.substr(out.find("=== second ===")), HasSubstr("Reused, TLSv1.2")) << out;
  EXPECT_THAT(out, Not(HasSubstr("TLS session ticket:")));
  EXPECT_TRUE(courier_.waitForStat(prefix() + "session_reused", 1));
}

TEST_F(TlsIntegrationTest, ResumptionCanBeDisabled) {
  start(tlsConfig("          disable_stateless_session_resumption: true\n          disable_stateful_session_resumption: true\n"));
  for (const char* version : {"-tls1_2", "-tls1_3"}) {
    // No session to save, or one the server will not resume.
    const std::string out = resumeTwice(port_, std::string(version) + " -alpn http/1.1");
    EXPECT_THAT(out.substr(out.find("=== second ===")), Not(HasSubstr("Reused, TLSv1."))) << version << out;
  }
  EXPECT_TRUE(courier_.waitForStat(prefix() + "handshake", 2));
  EXPECT_EQ(courier_.stat(prefix() + "session_reused"), 0u);
}

TEST_F(TlsIntegrationTest, SessionTicketKeysAreSharedAcrossServers) {
  // Two servers with the same keys (the second also has an older one) accept
  // each other's tickets; a third with another key does not.
  const std::string dir = tempDir();
  writeFile(dir + "/a.key", std::string(80, 'a'));
  writeFile(dir + "/b.key", std::string(80, 'b'));
  auto keys = [&](const std::string& list) {
    return "          session_ticket_keys: {keys: [" + list + "]}\n          disable_stateful_session_resumption: true\n";
  };
  const std::string a = "{filename: " + dir + "/a.key}";
  const std::string b = "{filename: " + dir + "/b.key}";
  CourierProcess one, two, other;
  ASSERT_TRUE(one.start(tlsConfig(keys(a)))) << one.log();
  ASSERT_TRUE(two.start(tlsConfig(keys(b + ", " + a)))) << two.log();
  ASSERT_TRUE(other.start(tlsConfig(keys(b)))) << other.log();
  const std::string sess = tempDir() + "/sess.pem";
  auto connect = [&](const CourierProcess& c, const std::string& flag) {
    return runCommand("echo | openssl s_client -tls1_2 -connect 127.0.0.1:" + std::to_string(c.listenerPort("https")) +
                      " " + flag + " " + sess + " 2>&1");
  };
  connect(one, "-sess_out");
  EXPECT_THAT(connect(two, "-sess_in"), HasSubstr("Reused, TLSv1.2"));
  EXPECT_THAT(connect(other, "-sess_in"), HasSubstr("New, TLSv1.2"));
  EXPECT_TRUE(two.waitForStat(prefix() + "session_reused", 1));
  EXPECT_EQ(other.stat(prefix() + "session_reused"), 0u);
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

TEST_F(UpstreamTlsTest, WildcardCertificateCoversOneLabel) {
  // An upstream serving a certificate for DNS:*.wild.test.
  std::string wild = tlsConfig();
  for (const char* name : {"server.pem", "server.key"}) {
    std::string to = name;
    to.replace(0, 6, "wild");
    wild.replace(wild.find(pki().path(name)), pki().path(name).size(), pki().path(to));
  }
  CourierProcess wild_upstream;
  ASSERT_TRUE(wild_upstream.start(wild)) << wild_upstream.log();
  {
    CourierProcess front;
    ASSERT_TRUE(front.start(frontConfig(wild_upstream.listenerPort("https"),
                                        "        common_tls_context:\n" + validation("a.wild.test"))))
        << front.log();
    EXPECT_EQ(httpRequest(front.listenerPort("http"), "GET", "/direct").status, 200);
  }
  CourierProcess front;
  ASSERT_TRUE(front.start(frontConfig(wild_upstream.listenerPort("https"),
                                      "        common_tls_context:\n" + validation("a.b.wild.test"))))
      << front.log();
  EXPECT_EQ(httpRequest(front.listenerPort("http"), "GET", "/direct").status, 503);
  EXPECT_TRUE(front.waitForStat("cluster.tls_up.ssl.fail_verify_san", 1));
}

TEST_F(UpstreamTlsTest, UriSanAndHashPinOnUpstream) {
  // The upstream presents the client certificate (URI SAN) as its server one.
  std::string up = tlsConfig();
  for (const char* name : {"server.pem", "server.key"}) {
    std::string to = name;
    to.replace(0, 6, "client");
    up.replace(up.find(pki().path(name)), pki().path(name).size(), pki().path(to));
  }
  CourierProcess spiffe;
  ASSERT_TRUE(spiffe.start(up)) << spiffe.log();
  const std::string vc = "          validation_context:\n            trusted_ca: {filename: " + pki().path("ca.pem") + "}\n";
  {
    CourierProcess front;
    ASSERT_TRUE(front.start(frontConfig(
        spiffe.listenerPort("https"),
        "        common_tls_context:\n" + vc +
            "            match_typed_subject_alt_names: [{san_type: URI, matcher: {prefix: \"spiffe://courier.test/\"}}]\n"
            "            verify_certificate_hash: [\"" + pki().certHash("client.pem") + "\"]\n")))
        << front.log();
    EXPECT_EQ(httpRequest(front.listenerPort("http"), "GET", "/direct").status, 200);
  }
  CourierProcess front;
  ASSERT_TRUE(front.start(frontConfig(spiffe.listenerPort("https"), "        common_tls_context:\n" + vc +
                                                                         "            verify_certificate_hash: [\"" +
                                                                         pki().certHash("server.pem") + "\"]\n")))
      << front.log();
  EXPECT_EQ(httpRequest(front.listenerPort("http"), "GET", "/direct").status, 503);
  EXPECT_TRUE(front.waitForStat("cluster.tls_up.ssl.fail_verify_cert_hash", 1));
}

TEST_F(UpstreamTlsTest, UpstreamConnectionsResumeSessions) {
  // One request per upstream connection, so each request handshakes anew.
  std::string config = frontConfig(upstream_port_, "        sni: courier.test\n        common_tls_context:\n" +
                                                       validation("courier.test"));
  const std::string anchor = "  - name: tls_up\n    connect_timeout: 1s\n";
  config.replace(config.find(anchor), anchor.size(), anchor + "    max_requests_per_connection: 1\n");
  ASSERT_TRUE(front_.start(config)) << front_.log();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(httpRequest(front_.listenerPort("http"), "GET", "/direct").status, 200);
  }
  EXPECT_TRUE(front_.waitForStat("cluster.tls_up.ssl.handshake", 3));
  EXPECT_TRUE(front_.waitForStat("cluster.tls_up.ssl.session_reused", 2));
  EXPECT_TRUE(upstream_.waitForStat("listener.127.0.0.1_0.ssl.session_reused", 2));
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

// HttpProtocolOptions auto_config on the upstream cluster: the protocol of
// each upstream connection follows the upstream's ALPN answer.
constexpr char kAutoConfig[] = R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        auto_config: {}
)";

std::string withAutoConfig(std::string config, const std::string& cluster, const std::string& auto_config = kAutoConfig) {
  const std::string anchor = "  - name: " + cluster + "\n    connect_timeout: 1s\n";
  config.replace(config.find(anchor), anchor.size(), anchor + auto_config);
  return config;
}

class AutoConfigUpstreamTest : public UpstreamTlsTest {
 protected:
  // A TLS upstream courier whose listener offers these ALPN protocols.
  void startUpstream(CourierProcess& upstream, const std::string& alpn) {
    std::string config = tlsConfig();
    const std::string from = "alpn_protocols: [h2, http/1.1]";
    config.replace(config.find(from), from.size(), "alpn_protocols: " + alpn);
    ASSERT_TRUE(upstream.start(config)) << upstream.log();
  }
  void startAutoFront(uint16_t upstream_port, const std::string& tls_body = "        common_tls_context:\n",
                      std::vector<std::string> args = {}) {
    ASSERT_TRUE(front_.start(withAutoConfig(frontConfig(upstream_port, tls_body + validation("courier.test")),
                                            "tls_up"),
                             std::move(args)))
        << front_.log();
    front_port_ = front_.listenerPort("http");
  }
  // Every upstream connection (at least one; each worker has its own) spoke
  // HTTP/1.1.
  void expectAllHttp1() {
    const auto h1 = front_.stat("cluster.tls_up.upstream_cx_http1_total");
    EXPECT_GE(h1.value_or(0), 1u);
    EXPECT_EQ(front_.stat("cluster.tls_up.upstream_cx_total"), h1);
    EXPECT_EQ(front_.stat("cluster.tls_up.upstream_cx_http2_total"), 0u);
  }
  // Sequential requests, all answered by the upstream's direct_response.
  void expectServed(int n) {
    for (int i = 0; i < n; ++i) {
      HttpResponse r = httpRequest(front_port_, "GET", "/direct");
      EXPECT_EQ(r.status, 200) << r.headers << front_.log();
      EXPECT_EQ(r.body, "hello");
    }
  }
};

TEST_F(AutoConfigUpstreamTest, UpstreamChoosingH2GetsHttp2) {
  // The upstream (SetUp) offers h2 first; courier offers "h2,http/1.1" itself.
  startAutoFront(upstream_port_);
  expectServed(3);
  // Every upstream connection (one per worker at most) spoke HTTP/2.
  const auto h2 = front_.stat("cluster.tls_up.upstream_cx_http2_total");
  EXPECT_GE(h2.value_or(0), 1u);
  EXPECT_EQ(front_.stat("cluster.tls_up.upstream_cx_total"), h2);
  EXPECT_EQ(front_.stat("cluster.tls_up.upstream_cx_http1_total"), 0u);
  EXPECT_EQ(front_.stat("cluster.tls_up.upstream_rq_total"), 3u);
}

TEST_F(AutoConfigUpstreamTest, UpstreamOfferingOnlyHttp11GetsHttp1) {
  CourierProcess h1_only;
  startUpstream(h1_only, "[http/1.1]");
  startAutoFront(h1_only.listenerPort("https"));
  expectServed(3);
  expectAllHttp1();
}

TEST_F(AutoConfigUpstreamTest, UpstreamWithoutAlpnGetsHttp1) {
  // An upstream that does no ALPN at all (its HCM would speak HTTP/2 only to a
  // client that sends the preface).
  CourierProcess no_alpn;
  std::string config = tlsConfig();
  const std::string from = "            alpn_protocols: [h2, http/1.1]\n";
  config.replace(config.find(from), from.size(), "");
  ASSERT_TRUE(no_alpn.start(config)) << no_alpn.log();
  startAutoFront(no_alpn.listenerPort("https"));
  expectServed(2);
  expectAllHttp1();
}

TEST_F(AutoConfigUpstreamTest, ConfiguredAlpnProtocolsAreOfferedInstead) {
  // The cluster's own alpn_protocols win over the automatic "h2,http/1.1".
  startAutoFront(upstream_port_, "        common_tls_context:\n          alpn_protocols: [http/1.1]\n");
  expectServed(2);
  expectAllHttp1();
}

TEST_F(AutoConfigUpstreamTest, ConcurrentRequestsWaitingForTheHandshakeAllGetServed) {
  startAutoFront(upstream_port_);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      if (httpRequest(front_port_, "GET", "/direct").status == 200) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(front_.stat("cluster.tls_up.upstream_cx_http1_total"), 0u);
  EXPECT_GE(front_.stat("cluster.tls_up.upstream_cx_http2_total").value_or(0), 1u);
}

TEST_F(AutoConfigUpstreamTest, UpstreamDownFailsTheWaitingRequest) {
  const uint16_t dead = upstream_port_;
  upstream_.signal(SIGKILL);
  ASSERT_NE(upstream_.waitForExit(std::chrono::milliseconds(5000)), -1);
  startAutoFront(dead);
  EXPECT_EQ(httpRequest(front_port_, "GET", "/direct").status, 503);
  EXPECT_TRUE(front_.waitForStat("cluster.tls_up.upstream_cx_connect_fail", 1));
  EXPECT_EQ(front_.stat("cluster.tls_up.upstream_cx_active"), 0u);
}

TEST_F(AutoConfigUpstreamTest, ProtocolIsLearntAgainWhenTheUpstreamChangesItsAlpn) {
  // One worker: the pool that learnt h2 is the one that must relearn.
  startAutoFront(upstream_port_, "        common_tls_context:\n", {"--concurrency", "1"});
  expectServed(1);
  EXPECT_GE(front_.stat("cluster.tls_up.upstream_cx_http2_total").value_or(0), 1u);
  // The same address now answers only http/1.1.
  upstream_.signal(SIGKILL);
  ASSERT_NE(upstream_.waitForExit(std::chrono::milliseconds(5000)), -1);
  std::string config = tlsConfig();
  const std::string alpn = "alpn_protocols: [h2, http/1.1]";
  config.replace(config.find(alpn), alpn.size(), "alpn_protocols: [http/1.1]");
  const std::string listener = "  - name: https\n    address: {socket_address: {address: 127.0.0.1, port_value: 0}}";
  config.replace(config.find(listener), listener.size(),
                 "  - name: https\n    address: {socket_address: {address: 127.0.0.1, port_value: " +
                     std::to_string(upstream_port_) + "}}");
  CourierProcess h1_only;
  ASSERT_TRUE(h1_only.start(config)) << h1_only.log();
  // The new HTTP/2-pool connection that negotiates http/1.1 fails one
  // request; after that requests go over HTTP/1.1.
  bool served = false;
  for (int i = 0; i < 6 && !served; ++i) served = httpRequest(front_port_, "GET", "/direct").status == 200;
  EXPECT_TRUE(served) << front_.log();
  EXPECT_GE(front_.stat("cluster.tls_up.upstream_cx_http1_total").value_or(0), 1u);
}

// Envoy: auto_config "can only be used with transport sockets which support
// ALPN"; a plaintext cluster with it is a configuration failure.
TEST_F(AutoConfigUpstreamTest, PlaintextAutoConfigIsAConfigErrorNamingTheField) {
  const std::string config = hcmListener("") + R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: plain}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + staticCluster("plain", 1);
  const std::string path = tempDir() + "/courier.yaml";
  writeFile(path, withAutoConfig(config, "plain"));
  std::string out;
  EXPECT_NE(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 0);
  EXPECT_THAT(out, HasSubstr("static_resources.clusters[0].typed_extension_protocol_options[\""
                             "envoy.extensions.upstreams.http.v3.HttpProtocolOptions\"].auto_config"));
  EXPECT_THAT(out, HasSubstr("ALPN"));
}

TEST_F(AutoConfigUpstreamTest, Http3InAutoConfigIsAConfigErrorNamingTheField) {
  const std::string prefix = "static_resources.clusters[0].typed_extension_protocol_options[\""
                             "envoy.extensions.upstreams.http.v3.HttpProtocolOptions\"].auto_config.";
  for (const std::string field : {"http3_protocol_options", "alternate_protocols_cache_options"}) {
    std::string options = kAutoConfig;
    options.replace(options.find("auto_config: {}"), 15, "auto_config: {" + field + ": {}}");
    const std::string path = tempDir() + "/courier.yaml";
    writeFile(path, withAutoConfig(frontConfig(upstream_port_, "        common_tls_context:\n"), "tls_up", options));
    std::string out;
    EXPECT_NE(CourierProcess::runToExit({"--mode", "validate", "-c", path}, &out), 0) << field;
    EXPECT_THAT(out, HasSubstr(prefix + field));
  }
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
}

TEST_F(TlsConfigErrorTest, BadValidationSettingsNameTheirField) {
  const std::string vc = "            validation_context: {trusted_ca: {filename: " + pki().path("ca.pem") + "}, ";
  EXPECT_THAT(validate(tlsConfig("", vc + "verify_certificate_hash: [\"00\"]}\n")),
              HasSubstr("validation_context.verify_certificate_hash[0]: must be a hex SHA-256"));
  EXPECT_THAT(validate(tlsConfig("", vc + "verify_certificate_spki: [\"bm90IDMyIGJ5dGVz\"]}\n")),
              HasSubstr("validation_context.verify_certificate_spki[0]: must be a base64 SHA-256"));
  EXPECT_THAT(validate(tlsConfig("", vc + "match_typed_subject_alt_names: [{san_type: URI, matcher: {safe_regex: "
                                          "{regex: \"(\"}}}]}\n")),
              HasSubstr("match_typed_subject_alt_names[0].matcher.safe_regex.regex: invalid RE2"));
  EXPECT_THAT(validate(tlsConfig("", vc + "match_typed_subject_alt_names: [{matcher: {exact: x}}]}\n")),
              HasSubstr("match_typed_subject_alt_names[0].san_type"));
  EXPECT_THAT(validate(tlsConfig("", vc + "match_typed_subject_alt_names: [{san_type: OTHER_NAME, matcher: "
                                          "{exact: x}}]}\n")),
              HasSubstr("match_typed_subject_alt_names[0].oid"));
  EXPECT_THAT(validate(tlsConfig("", vc + "crl: {inline_string: \"not a crl\"}}\n")),
              HasSubstr("validation_context.crl: no PEM CRL found"));
}

TEST_F(TlsConfigErrorTest, UnknownCurveNamesItsIndex) {
  EXPECT_THAT(validate(tlsConfig("", "            tls_params: {ecdh_curves: [X25519, P-999]}\n")),
              HasSubstr("common_tls_context.tls_params.ecdh_curves[1]: unknown curve \"P-999\""));
}

TEST_F(TlsConfigErrorTest, SessionTicketKeyOfWrongLengthIsRefused) {
  EXPECT_THAT(validate(tlsConfig("          session_ticket_keys: {keys: [{inline_string: \"short\"}]}\n")),
              HasSubstr("transport_socket.typed_config.session_ticket_keys.keys[0]: a session ticket key must be 80 "
                        "bytes, this one is 5"));
}

TEST_F(TlsConfigErrorTest, UnknownTransportSocketIsRefused) {
  const std::string out = validate(replace(
      tlsConfig(), "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"));
  EXPECT_THAT(out, HasSubstr("filter_chains[0].transport_socket.typed_config: no transport socket"));
}

class OcspTest : public TlsConfigErrorTest {
 protected:
  // tlsConfig() with the server certificate's ocsp_staple and a policy.
  static std::string config(const std::string& policy, const std::string& response) {
    const std::string file = tempDir() + "/ocsp.der";
    writeFile(file, response);
    std::string c = tlsConfig("          ocsp_staple_policy: " + policy + "\n");
    const std::string key = "private_key: {filename: " + pki().path("server.key") + "}\n";
    return replace(c, key, key + "              ocsp_staple: {filename: " + file + "}\n");
  }
  static std::string status(uint16_t port) {
    return runCommand("echo | openssl s_client -status -connect 127.0.0.1:" + std::to_string(port) + " 2>&1");
  }
};

TEST_F(OcspTest, StapleIsServedToClientsThatAsk) {
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config("STRICT_STAPLING", ocspResponse("server.pem", -60, 3600)))) << courier.log();
  const std::string out = status(courier.listenerPort("https"));
  EXPECT_THAT(out, HasSubstr("OCSP Response Status: successful"));
  EXPECT_THAT(out, HasSubstr("Cert Status: good"));
  EXPECT_TRUE(courier.waitForStat("listener.127.0.0.1_0.ssl.ocsp_staple_responses", 1));
}

TEST_F(OcspTest, ExpiredStapleIsNotServedUnderLenientPolicy) {
  CourierProcess courier;
  ASSERT_TRUE(courier.start(config("LENIENT_STAPLING", ocspResponse("server.pem", -7200, -3600)))) << courier.log();
  const std::string out = status(courier.listenerPort("https"));
  EXPECT_THAT(out, HasSubstr("OCSP response: no response sent"));
  EXPECT_THAT(out, Not(HasSubstr("OCSP Response Status")));
  EXPECT_TRUE(courier.waitForStat("listener.127.0.0.1_0.ssl.ocsp_staple_omitted", 1));
}

TEST_F(OcspTest, BadStaplesAreConfigErrors) {
  const std::string field = "common_tls_context.tls_certificates[0].ocsp_staple";
  EXPECT_THAT(validate(config("STRICT_STAPLING", ocspResponse("server.pem", -7200, -3600))),
              HasSubstr(field + ": OCSP response is expired or not yet valid, refused under STRICT_STAPLING"));
  EXPECT_THAT(validate(config("MUST_STAPLE", ocspResponse("server.pem", 3600, 7200))),
              HasSubstr(field + ": OCSP response is expired or not yet valid, refused under MUST_STAPLE"));
  EXPECT_THAT(validate(config("LENIENT_STAPLING", ocspResponse("client.pem", -60, 3600))),
              HasSubstr(field + ": OCSP response does not match its TLS certificate"));
  EXPECT_THAT(validate(config("LENIENT_STAPLING", "garbage")), HasSubstr(field + ": is not a DER-encoded OCSP response"));
  EXPECT_THAT(validate(tlsConfig("          ocsp_staple_policy: MUST_STAPLE\n")),
              HasSubstr(field + ": is required by ocsp_staple_policy MUST_STAPLE"));
}

}  // namespace
}  // namespace courier::test
