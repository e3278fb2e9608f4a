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

// The name a resource is served under: `name`, or a ClusterLoadAssignment's cluster_name.
template <class Resource>
std::string xdsName(const Resource& r) {
  return r.name();
}
inline std::string xdsName(const envoy::config::endpoint::v3::ClusterLoadAssignment& r) { return r.cluster_name(); }

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

  // The next request of `type_url` on `stream` from request `cursor` on;
  // advances the cursor past it. Requests of other types are skipped.
  bool nextSotw(size_t stream, size_t& cursor, const std::string& type_url, DiscoveryRequest* out) {
    for (;; ++cursor) {
      if (!ads_->waitSotwRequest(stream, cursor, out)) return false;
      if (out->type_url() == type_url) {
        ++cursor;
        return true;
      }
    }
  }
  bool nextDelta(size_t stream, size_t& cursor, const std::string& type_url, DeltaDiscoveryRequest* out) {
    for (;; ++cursor) {
      if (!ads_->waitDeltaRequest(stream, cursor, out)) return false;
      if (out->type_url() == type_url) {
        ++cursor;
        return true;
      }
    }
  }

  // Waits for the client's next request of the type, then answers it with
  // `resources` as version `version`. For delta every resource is an
  // add/update (the set is small); SotW sends the whole set.
  template <class Resource>
  bool serve(size_t stream, size_t& cursor, const std::string& type_url, const std::string& version,
             const std::vector<Resource>& resources) {
    const std::string nonce = type_url.substr(type_url.rfind('.') + 1) + "-" + version;
    if (delta()) {
      DeltaDiscoveryRequest request;
      if (!nextDelta(stream, cursor, type_url, &request)) return false;
      DeltaDiscoveryResponse response;
      response.set_type_url(type_url);
      response.set_system_version_info(version);
      response.set_nonce(nonce);
      for (const auto& r : resources) {
        auto* added = response.add_resources();
        added->set_name(xdsName(r));
        added->set_version(version);
        added->mutable_resource()->PackFrom(r);
      }
      return ads_->send(stream, response);
    }
    DiscoveryRequest request;
    if (!nextSotw(stream, cursor, type_url, &request)) return false;
    DiscoveryResponse response;
    response.set_type_url(type_url);
    response.set_version_info(version);
    response.set_nonce(nonce);
    for (const auto& r : resources) response.add_resources()->PackFrom(r);
    return ads_->send(stream, response);
  }

  // Pushes without waiting for a request (the client already ACKed).
  template <class Resource>
  bool push(size_t stream, const std::string& type_url, const std::string& version,
            const std::vector<Resource>& resources) {
    const std::string nonce = "push-" + version;
    if (delta()) {
      DeltaDiscoveryResponse response;
      response.set_type_url(type_url);
      response.set_system_version_info(version);
      response.set_nonce(nonce);
      for (const auto& r : resources) {
        auto* added = response.add_resources();
        added->set_name(xdsName(r));
        added->set_version(version);
        added->mutable_resource()->PackFrom(r);
      }
      return ads_->send(stream, response);
    }
    DiscoveryResponse response;
    response.set_type_url(type_url);
    response.set_version_info(version);
    response.set_nonce(nonce);
    for (const auto& r : resources) response.add_resources()->PackFrom(r);
    return ads_->send(stream, response);
  }

  // The error_detail of the next request of `type_url` that carries one.
  std::string nextNack(size_t stream, size_t& cursor, const std::string& type_url) {
    for (;;) {
      if (delta()) {
        DeltaDiscoveryRequest r;
        if (!nextDelta(stream, cursor, type_url, &r)) return "";
        if (r.has_error_detail()) return r.error_detail().message();
      } else {
        DiscoveryRequest r;
        if (!nextSotw(stream, cursor, type_url, &r)) return "";
        if (r.has_error_detail()) return r.error_detail().message();
      }
    }
  }

  std::unique_ptr<FakeAdsServer> ads_;
  uint16_t ads_port_ = 0;
  uint16_t port_ = 0;
  CourierProcess courier_;
};

}  // namespace courier::test
