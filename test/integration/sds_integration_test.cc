// SDS end to end: the real courier binary whose TLS certificates and
// validation contexts arrive as Secrets over ADS (state of the world and
// delta), from watched files, or from static_resources.secrets; rotated while
// a request is in flight, refused when bad. The PKI is made at run time with
// the openssl CLI; curl and openssl s_client are the clients.
#include <stdio.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "test/integration/xds_test_util.h"

namespace courier::test {
namespace {

using envoy::extensions::transport_sockets::tls::v3::Secret;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// A CA, two server certificates for DNS:courier.test told apart by their
// subjects (CN=courier-one, CN=courier-two), and a second, unrelated CA.
struct Pki {
  std::string dir;
  bool ok = false;
  std::string log;

  Pki() : dir(tempDir()) {
    writeFile(dir + "/server.ext", "subjectAltName=DNS:courier.test\n");
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto leaf = [&](const std::string& name, const std::string& cn) {
      return "openssl req " + ec + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + cn +
             " && openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 " +
             "-extfile server.ext -out " + name + ".pem";
    };
    const std::string script = "cd " + dir + " && set -e && " + "openssl req -x509 " + ec +
                               " -keyout ca.key -out ca.pem -days 2 -subj /CN=courier-sds-ca && " +
                               "openssl req -x509 " + ec + " -keyout other_ca.key -out other_ca.pem -days 2 " +
                               "-subj /CN=unrelated-ca && " + leaf("one", "courier-one") + " && " +
                               leaf("two", "courier-two");
    int rc = -1;
    log = runCommand("(" + script + ") 2>&1", &rc);
    ok = rc == 0;
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string read(const std::string& name) const {
    std::ifstream in(path(name));
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }
};

const Pki& pki() {
  static const Pki* p = new Pki();
  return *p;
}

// A tls_certificate secret, the PEM inline (so /config_dump has a key to redact).
Secret certSecret(const std::string& name, const std::string& cert, const std::string& key) {
  Secret s;
  s.set_name(name);
  s.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string(pki().read(cert));
  s.mutable_tls_certificate()->mutable_private_key()->set_inline_string(pki().read(key));
  return s;
}

// A listener "tls" on `port` whose certificate is the secret "server_cert"
// from `sds_config` (YAML flow); /direct answers itself, the rest goes to
// cluster "slow".
// With `as_list_item`, indented as an entry of static_resources.listeners.
std::string tlsListenerYaml(uint16_t port, const std::string& sds_config, bool as_list_item = false) {
  std::string yaml = R"(name: tls
address: {socket_address: {address: 127.0.0.1, port_value: )" + std::to_string(port) + R"(}}
filter_chains:
- transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
      common_tls_context:
        tls_certificate_sds_secret_configs:
        - name: server_cert
)" + (sds_config.empty() ? "" : "          sds_config: " + sds_config + "\n") + R"(  filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress
      route_config:
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: {path: "/direct"}
            direct_response: {status: 200, body: {inline_string: "hello"}}
          - match: {prefix: "/"}
            route: {cluster: slow, timeout: 30s}
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
  if (!as_list_item) return yaml;
  std::string out;
  std::istringstream lines(yaml);
  for (std::string line; std::getline(lines, line);) out += (out.empty() ? "  - " : "    ") + line + "\n";
  return out;
}

std::string staticCluster(const std::string& name, uint16_t port, const std::string& extra = "") {
  return "  - name: " + name + R"(
    connect_timeout: 1s
    type: STATIC
)" + extra + R"(    load_assignment:
      cluster_name: )" + name + R"(
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(port) + "}}}\n";
}

void respond(int fd, const std::string& body) {
  const std::string r = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ::send(fd, r.data(), r.size(), MSG_NOSIGNAL);
}

// curl https://courier.test:PORT<path> trusting the test CA; body, then the HTTP code.
std::string curl(uint16_t port, const std::string& path = "/direct", int* rc = nullptr, int max_time = 20) {
  const std::string p = std::to_string(port);
  return runCommand("curl -sS --max-time " + std::to_string(max_time) + " --cacert " + pki().path("ca.pem") + " --resolve courier.test:" + p +
                        ":127.0.0.1 -w ' %{http_code}' https://courier.test:" + p + path + " 2>&1",
                    rc);
}

// The subject of the certificate a new handshake is served.
std::string servedSubject(uint16_t port) {
  return runCommand("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                    " -servername courier.test 2>/dev/null | openssl x509 -noout -subject 2>&1");
}

// Upstream that holds each request until `release`.
struct HeldUpstream {
  std::atomic<bool> received{false};
  std::atomic<bool> release{false};
  TcpServer server{[this](int fd) {
    std::string buffered;
    if (!readRequestHead(fd, buffered)) return;
    received = true;
    waitFor([&] { return release.load(); }, 20000ms);
    respond(fd, "held-ok");
  }};
};

class SdsAdsIntegrationTest : public AdsIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki().ok) << pki().log;
    AdsIntegrationTest::SetUp();
  }

  // LDS over ADS (no CDS); static clusters "xds" and "slow".
  std::string bootstrap() const {
    return R"(node: {id: node-1, cluster: mesh}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: )" + std::string(delta() ? "DELTA_GRPC" : "GRPC") + R"(
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
)" + staticCluster("xds", ads_port_, R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
)") + staticCluster("slow", held_.server.port());
  }

  envoy::config::listener::v3::Listener listener() const {
    envoy::config::listener::v3::Listener l;
    EXPECT_TRUE(protobuf::loadFromYamlString(tlsListenerYaml(port_, "{ads: {}, resource_api_version: V3}"), l).ok());
    return l;
  }

  // Serves the listener, then the first secret; the listener warms between.
  void startWithFirstSecret(size_t& cursor) {
    ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
    ASSERT_TRUE(serve(0, cursor, kListenerType, "l1", std::vector{listener()}));
    ASSERT_TRUE(serve(0, cursor, kSecretType, "s1", std::vector{certSecret("server_cert", "one.pem", "one.key")}));
    ASSERT_TRUE(courier_.waitForStat("sds.server_cert.update_success", 1)) << courier_.log();
    ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_active", 1)) << courier_.log();
  }

  HeldUpstream held_;
};

INSTANTIATE_TEST_SUITE_P(Protocols, SdsAdsIntegrationTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Delta" : "Sotw"; });

// At start-up the listener is active at once (Envoy, before its workers
// start), and the server's initialization waits for its certificate.
TEST_P(SdsAdsIntegrationTest, StartupListenerWaitsForItsCertificateThenServesIt) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l1", std::vector{listener()}));
  // The listener asks for its secret by name and waits for it.
  if (delta()) {
    DeltaDiscoveryRequest request;
    ASSERT_TRUE(nextDelta(0, cursor, kSecretType, &request));
    EXPECT_THAT(request.resource_names_subscribe(), ::testing::ElementsAre("server_cert"));
  } else {
    DiscoveryRequest request;
    ASSERT_TRUE(nextSotw(0, cursor, kSecretType, &request));
    EXPECT_THAT(request.resource_names(), ::testing::ElementsAre("server_cert"));
  }
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 1)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 0u);
  // Its socket is bound, but nothing listens on it yet.
  EXPECT_FALSE(TcpClient(port_).connected()) << "the listener takes no connections before the server initialized";
  EXPECT_EQ(courier_.admin("/ready").status, 503);
  EXPECT_THAT(courier_.admin("/config_dump?resource=dynamic_listeners").body, HasSubstr("active_state"));

  ASSERT_TRUE(push(0, kSecretType, "s1", std::vector{certSecret("server_cert", "one.pem", "one.key")}));
  ASSERT_TRUE(driver().waitAck(0, cursor, kSecretType, "s1"));
  ASSERT_TRUE(courier_.waitForStat("sds.server_cert.update_success", 1)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 0u);
  EXPECT_EQ(curl(port_), "hello 200");
  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-one"));
  EXPECT_EQ(courier_.stat("sds.server_cert.update_success"), 1u);
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; }));

  // /config_dump: the secret with its version, the key redacted.
  const std::string dump = courier_.admin("/config_dump?resource=dynamic_active_secrets").body;
  EXPECT_THAT(dump, HasSubstr("\"name\": \"server_cert\""));
  EXPECT_THAT(dump, HasSubstr("\"version_info\": \"s1\""));
  EXPECT_THAT(dump, HasSubstr("last_updated"));
  EXPECT_THAT(dump, HasSubstr("[redacted]"));
  EXPECT_THAT(dump, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(dump, Not(HasSubstr("PRIVATE KEY")));
}

// Added to a live server, the listener warms on its own: bound, refusing
// connections, until its certificate arrives (Envoy's onListenerWarmed).
TEST_P(SdsAdsIntegrationTest, ListenerAddedToALiveServerWarmsUntilItsCertificateArrives) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l0", std::vector<envoy::config::listener::v3::Listener>{}));
  ASSERT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  ASSERT_TRUE(push(0, kListenerType, "l1", std::vector{listener()}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.lds.update_success", 2)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 1u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 0u);
  EXPECT_FALSE(TcpClient(port_).connected()) << "a warming listener takes no connections";
  EXPECT_THAT(courier_.admin("/config_dump?resource=dynamic_listeners").body, HasSubstr("warming_state"));
  EXPECT_EQ(courier_.admin("/ready").status, 200);

  ASSERT_TRUE(push(0, kSecretType, "s1", std::vector{certSecret("server_cert", "one.pem", "one.key")}));
  ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_warming", 0)) << courier_.log();
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(curl(port_), "hello 200");
  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-one"));
}

TEST_P(SdsAdsIntegrationTest, StaticListenerWithAnAdsSecretWarmsAndTheServerWaitsForIt) {
  const std::string yaml = R"(node: {id: node-1, cluster: mesh}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: )" + std::string(delta() ? "DELTA_GRPC" : "GRPC") + R"(
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds}
static_resources:
  listeners:
)" + tlsListenerYaml(port_, "{ads: {}, resource_api_version: V3}", true) +
                           "  clusters:\n" + staticCluster("xds", ads_port_, R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
)") + staticCluster("slow", held_.server.port());
  ASSERT_TRUE(courier_.start(yaml)) << courier_.log();
  size_t cursor = 0;
  if (delta()) {
    DeltaDiscoveryRequest request;
    ASSERT_TRUE(nextDelta(0, cursor, kSecretType, &request));
  } else {
    DiscoveryRequest request;
    ASSERT_TRUE(nextSotw(0, cursor, kSecretType, &request));
  }
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_warming"), 0u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(courier_.admin("/ready").status, 503);
  EXPECT_FALSE(TcpClient(port_).connected());
  EXPECT_THAT(courier_.admin("/config_dump?resource=dynamic_warming_secrets").body, HasSubstr("server_cert"));
  ASSERT_TRUE(push(0, kSecretType, "s1", std::vector{certSecret("server_cert", "one.pem", "one.key")}));
  ASSERT_TRUE(courier_.waitForStat("sds.server_cert.update_success", 1)) << courier_.log();
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; }));
  EXPECT_EQ(curl(port_), "hello 200");
  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-one"));
}

TEST_P(SdsAdsIntegrationTest, ListenerGoesOnWithoutItsCertificateAfterInitialFetchTimeout) {
  ASSERT_TRUE(courier_.start(bootstrap())) << courier_.log();
  size_t cursor = 0;
  envoy::config::listener::v3::Listener l;
  ASSERT_TRUE(protobuf::loadFromYamlString(
                  tlsListenerYaml(port_, "{ads: {}, resource_api_version: V3, initial_fetch_timeout: 0.5s}"), l)
                  .ok());
  ASSERT_TRUE(serve(0, cursor, kListenerType, "l1", std::vector{l}));
  ASSERT_TRUE(courier_.waitForStat("sds.server_cert.init_fetch_timeout", 1)) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("listener_manager.total_listeners_active", 1)) << courier_.log();
  EXPECT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; }));
  // Active, but without a certificate every handshake fails.
  int rc = 0;
  curl(port_, "/direct", &rc, 5);
  EXPECT_NE(rc, 0);
  // When the secret comes after all, it serves.
  ASSERT_TRUE(push(0, kSecretType, "s1", std::vector{certSecret("server_cert", "one.pem", "one.key")}));
  ASSERT_TRUE(courier_.waitForStat("sds.server_cert.update_success", 1)) << courier_.log();
  EXPECT_EQ(curl(port_), "hello 200");
}

TEST_P(SdsAdsIntegrationTest, RotationReachesNewHandshakesWhileTheRequestInFlightFinishes) {
  size_t cursor = 0;
  startWithFirstSecret(cursor);
  std::string slow_result;
  std::thread slow([&] { slow_result = curl(port_, "/slow"); });
  ASSERT_TRUE(waitFor([&] { return held_.received.load(); })) << courier_.log();

  ASSERT_TRUE(push(0, kSecretType, "s2", std::vector{certSecret("server_cert", "two.pem", "two.key")}));
  ASSERT_TRUE(driver().waitAck(0, cursor, kSecretType, "s2"));
  ASSERT_TRUE(courier_.waitForStat("sds.server_cert.update_success", 2));
  // The very next handshake meets the new certificate...
  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-two"));
  EXPECT_EQ(curl(port_), "hello 200");
  // ...while the connection opened before finishes on the old one, untouched.
  held_.release = true;
  slow.join();
  EXPECT_EQ(slow_result, "held-ok 200");
  // No listener was replaced or drained for it.
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 0u);
  EXPECT_EQ(courier_.stat("listener_manager.total_listeners_draining"), 0u);
}

TEST_P(SdsAdsIntegrationTest, BadSecretIsNackedAndTheOldCertificateKeepsServing) {
  size_t cursor = 0;
  startWithFirstSecret(cursor);
  // two's certificate with one's key: they do not match.
  Secret mismatched = certSecret("server_cert", "two.pem", "one.key");
  ASSERT_TRUE(push(0, kSecretType, "bad1", std::vector{mismatched}));
  const std::string nack = nextNack(0, cursor, kSecretType);
  EXPECT_THAT(nack, HasSubstr("secret \"server_cert\""));
  EXPECT_THAT(nack, HasSubstr("tls_certificate.private_key"));
  EXPECT_TRUE(courier_.waitForStat("sds.server_cert.update_rejected", 1));

  Secret garbage = certSecret("server_cert", "one.pem", "one.key");
  garbage.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string("not a certificate");
  ASSERT_TRUE(push(0, kSecretType, "bad2", std::vector{garbage}));
  EXPECT_THAT(nextNack(0, cursor, kSecretType), HasSubstr("tls_certificate.certificate_chain"));
  EXPECT_TRUE(courier_.waitForStat("sds.server_cert.update_rejected", 2));

  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-one"));
  EXPECT_EQ(curl(port_), "hello 200");
  EXPECT_EQ(courier_.stat("sds.server_cert.update_success"), 1u);
  const std::string dump = courier_.admin("/config_dump?resource=dynamic_active_secrets").body;
  EXPECT_THAT(dump, HasSubstr("\"version_info\": \"s1\""));
}

// File-based SDS and static secrets need no control plane.
class SdsFileIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki().ok) << pki().log;
    dir_ = tempDir();
    port_ = unusedPort();
  }

  // Replaces `path` the way config management does: write beside, rename over.
  void replace(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp";
    writeFile(tmp, content);
    ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
  }

  static std::string certFile(const std::string& version, const std::string& leaf) {
    return "version_info: \"" + version + R"("
resources:
- "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
  name: server_cert
  tls_certificate:
    certificate_chain: {filename: )" + pki().path(leaf + ".pem") + R"(}
    private_key: {filename: )" + pki().path(leaf + ".key") + "}\n";
  }

  static std::string caFile(const std::string& version, const std::string& ca) {
    return "version_info: \"" + version + R"("
resources:
- "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
  name: upstream_ca
  validation_context:
    trusted_ca: {filename: )" + pki().path(ca) + "}\n";
  }

  std::string dir_;
  uint16_t port_ = 0;
  CourierProcess courier_;
  HeldUpstream held_;
};

TEST_F(SdsFileIntegrationTest, ListenerCertificateFromAFileRotatesOnRename) {
  const std::string path = dir_ + "/server_cert.yaml";
  writeFile(path, certFile("1", "one"));
  const std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
)" + tlsListenerYaml(port_, "{path_config_source: {path: \"" + path + "\"}}", true) +
                           "  clusters:\n" + staticCluster("slow", held_.server.port());
  ASSERT_TRUE(courier_.start(yaml)) << courier_.log();
  EXPECT_EQ(curl(port_), "hello 200");
  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-one"));

  replace(path, certFile("2", "two"));
  ASSERT_TRUE(courier_.waitForStat("sds.server_cert.update_success", 2)) << courier_.log();
  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-two"));
  EXPECT_EQ(curl(port_), "hello 200");

  // A file naming a key that is not the certificate's is refused; two stays.
  const std::string bad = "version_info: \"3\"\nresources:\n- \"@type\": " + std::string(kSecretType) +
                          "\n  name: server_cert\n  tls_certificate:\n    certificate_chain: {filename: " +
                          pki().path("one.pem") + "}\n    private_key: {filename: " + pki().path("two.key") + "}\n";
  replace(path, bad);
  ASSERT_TRUE(courier_.waitForStat("sds.server_cert.update_rejected", 1)) << courier_.log();
  EXPECT_THAT(servedSubject(port_), HasSubstr("courier-two"));
  EXPECT_EQ(courier_.stat("listener_manager.listener_modified"), 0u);
}

// A TLS upstream (another courier) whose server certificate is one.pem.
class TlsUpstream {
 public:
  bool start() {
    const std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  secrets:
  - name: upstream_server
    tls_certificate:
      certificate_chain: {filename: )" + pki().path("one.pem") + R"(}
      private_key: {filename: )" + pki().path("one.key") + R"(}
  listeners:
  - name: https
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificate_sds_secret_configs: [{name: upstream_server}]
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: upstream
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "upstream-tls"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
    if (!process.start(yaml)) return false;
    port = process.listenerPort("https");
    return port != 0;
  }
  CourierProcess process;
  uint16_t port = 0;
};

// A plaintext listener on `port` proxying to cluster "tls_upstream", which
// verifies the upstream with the validation context `validation` (YAML lines
// under common_tls_context).
std::string upstreamTlsConfig(uint16_t port, uint16_t upstream_port, const std::string& validation,
                              const std::string& secrets = "") {
  return R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
)" + secrets + R"(  listeners:
  - name: plain
    address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(port) + R"(}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: plain
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: tls_upstream}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + staticCluster("tls_upstream", upstream_port, R"(    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: courier.test
        common_tls_context:
)" + validation);
}

TEST_F(SdsFileIntegrationTest, ClusterValidationContextFromAStaticSecret) {
  TlsUpstream upstream;
  ASSERT_TRUE(upstream.start()) << upstream.process.log();
  const std::string secrets = R"(  secrets:
  - name: upstream_ca
    validation_context:
      trusted_ca: {filename: )" + pki().path("ca.pem") + "}\n";
  ASSERT_TRUE(courier_.start(upstreamTlsConfig(port_, upstream.port,
                                               "          validation_context_sds_secret_config: {name: upstream_ca}\n",
                                               secrets)))
      << courier_.log();
  HttpResponse r = httpRequest(port_, "GET", "/");
  EXPECT_EQ(r.status, 200) << courier_.log();
  EXPECT_EQ(r.body, "upstream-tls");
  const std::string dump = courier_.admin("/config_dump?resource=static_secrets").body;
  EXPECT_THAT(dump, HasSubstr("\"name\": \"upstream_ca\""));
}

TEST_F(SdsFileIntegrationTest, ClusterValidationContextFromAFileRotates) {
  TlsUpstream upstream;
  ASSERT_TRUE(upstream.start()) << upstream.process.log();
  const std::string path = dir_ + "/upstream_ca.yaml";
  // First an unrelated CA: the upstream's certificate does not verify.
  writeFile(path, caFile("1", "other_ca.pem"));
  ASSERT_TRUE(courier_.start(upstreamTlsConfig(
      port_, upstream.port,
      "          combined_validation_context:\n"
      "            default_validation_context:\n"
      "              match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: courier.test}}]\n"
      "            validation_context_sds_secret_config:\n"
      "              name: upstream_ca\n"
      "              sds_config: {path_config_source: {path: \"" + path + "\"}}\n")))
      << courier_.log();
  EXPECT_EQ(httpRequest(port_, "GET", "/").status, 503);
  EXPECT_TRUE(courier_.waitForStat("cluster.tls_upstream.ssl.fail_verify_error", 1) ||
              courier_.stat("cluster.tls_upstream.ssl.connection_error").value_or(0) > 0);

  replace(path, caFile("2", "ca.pem"));
  ASSERT_TRUE(courier_.waitForStat("sds.upstream_ca.update_success", 2)) << courier_.log();
  HttpResponse r = httpRequest(port_, "GET", "/");
  EXPECT_EQ(r.status, 200) << courier_.log();
  EXPECT_EQ(r.body, "upstream-tls");
}

TEST_F(SdsFileIntegrationTest, ReferenceToAMissingStaticSecretIsAConfigError) {
  const std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
)" + tlsListenerYaml(port_, "", true) + "  clusters:\n" + staticCluster("slow", held_.server.port());
  std::string output;
  const std::string config = dir_ + "/bad.yaml";
  writeFile(config, yaml);
  EXPECT_NE(CourierProcess::runToExit({"--mode", "validate", "-c", config}, &output), 0);
  EXPECT_THAT(output, HasSubstr("tls_certificate_sds_secret_configs[0].name"));
  EXPECT_THAT(output, HasSubstr("server_cert"));
}

TEST_P(SdsAdsIntegrationTest, ClusterWarmsUntilItsValidationContextArrives) {
  TlsUpstream upstream;
  ASSERT_TRUE(upstream.start()) << upstream.process.log();
  std::string yaml = upstreamTlsConfig(port_, upstream.port,
                                       "          validation_context_sds_secret_config:\n"
                                       "            name: upstream_ca\n"
                                       "            sds_config: {ads: {}, resource_api_version: V3}\n");
  yaml = R"(node: {id: node-1, cluster: mesh}
dynamic_resources:
  ads_config:
    api_type: )" + std::string(delta() ? "DELTA_GRPC" : "GRPC") + R"(
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds}
)" + yaml + staticCluster("xds", ads_port_, R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
)");
  ASSERT_TRUE(courier_.start(yaml)) << courier_.log();
  size_t cursor = 0;
  if (delta()) {
    DeltaDiscoveryRequest request;
    ASSERT_TRUE(nextDelta(0, cursor, kSecretType, &request));
  } else {
    DiscoveryRequest request;
    ASSERT_TRUE(nextSotw(0, cursor, kSecretType, &request));
  }
  // A static cluster is not in Envoy's warming_clusters gauge (CDS clusters
  // only), but the server's initialization waits for it.
  EXPECT_EQ(courier_.admin("/ready").status, 503);
  EXPECT_EQ(courier_.stat("cluster_manager.warming_clusters"), 0u);

  Secret ca;
  ca.set_name("upstream_ca");
  ca.mutable_validation_context()->mutable_trusted_ca()->set_inline_string(pki().read("ca.pem"));
  ASSERT_TRUE(push(0, kSecretType, "ca1", std::vector{ca}));
  ASSERT_TRUE(waitFor([&] { return courier_.admin("/ready").status == 200; })) << courier_.log();
  HttpResponse r = httpRequest(port_, "GET", "/");
  EXPECT_EQ(r.status, 200) << courier_.log();
  EXPECT_EQ(r.body, "upstream-tls");
}

}  // namespace
}  // namespace courier::test
