// Shared by the xDS integration tests: the real courier binary against the
// fake ADS server, with helpers to serve and push resources in either
// protocol (the test parameter: true is delta) and to read NACKs.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "gtest/gtest.h"
#include "test/common/config/fake_ads_server.h"
#include "test/integration/ads_driver.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {

using config::test::FakeAdsServer;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

inline constexpr char kClusterType[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr char kRouteType[] = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr char kEndpointType[] = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr char kSecretType[] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

// Reads one request head (no bodies here); false on EOF or timeout.
inline bool readRequestHead(int fd, std::string& buffered) {
  char buf[4096];
  while (buffered.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffered.append(buf, static_cast<size_t>(n));
  }
  buffered.erase(0, buffered.find("\r\n\r\n") + 4);
  return true;
}

// Answers every request with its own name, keep-alive.
inline TcpServer::Handler named(std::string name) {
  return [name](int fd) {
    std::string buffered;
    while (readRequestHead(fd, buffered)) {
      std::string r = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(name.size()) + "\r\n\r\n" + name;
      ::send(fd, r.data(), r.size(), MSG_NOSIGNAL);
    }
  };
}

// The fixture: a fake ADS server (stream 0 is the first the client opens),
// a free port for the listener under test, and the courier process.
class AdsIntegrationTest : public ::testing::TestWithParam<bool> {
 protected:
  bool delta() const { return GetParam(); }

  void SetUp() override {
    ads_ = std::make_unique<FakeAdsServer>();
    ads_port_ = static_cast<uint16_t>(std::stoi(ads_->address().substr(ads_->address().rfind(':') + 1)));
    port_ = unusedPort();
    courier_.setWaitForReady(false);
  }

  // The protocol framing is AdsDriver's; a fresh one per call, as a test
  // may replace ads_ (a control plane that goes away and comes back).
  AdsDriver driver() { return AdsDriver(*ads_, delta()); }

  bool nextSotw(size_t stream, size_t& cursor, const std::string& type_url, DiscoveryRequest* out) {
    return driver().nextSotw(stream, cursor, type_url, out);
  }
  bool nextDelta(size_t stream, size_t& cursor, const std::string& type_url, DeltaDiscoveryRequest* out) {
    return driver().nextDelta(stream, cursor, type_url, out);
  }
  template <class Resource>
  bool serve(size_t stream, size_t& cursor, const std::string& type_url, const std::string& version,
             const std::vector<Resource>& resources) {
    return driver().serve(stream, cursor, type_url, version, resources);
  }
  template <class Resource>
  bool push(size_t stream, const std::string& type_url, const std::string& version,
            const std::vector<Resource>& resources) {
    return driver().push(stream, type_url, version, resources);
  }
  std::string nextNack(size_t stream, size_t& cursor, const std::string& type_url) {
    return driver().nextNack(stream, cursor, type_url);
  }

  std::unique_ptr<FakeAdsServer> ads_;
  uint16_t ads_port_ = 0;
  uint16_t port_ = 0;
  CourierProcess courier_;
};

}  // namespace courier::test
