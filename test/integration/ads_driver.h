// Plays a management server's side of ADS over FakeAdsServer in either
// protocol, so a test or benchmark states what it serves (a type, a version,
// a set of resources) and not how each protocol frames it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "test/common/config/fake_ads_server.h"

namespace courier::test {

// The name a resource is served under: `name`, or a ClusterLoadAssignment's cluster_name.
template <class Resource>
std::string xdsName(const Resource& r) {
  return r.name();
}
inline std::string xdsName(const envoy::config::endpoint::v3::ClusterLoadAssignment& r) { return r.cluster_name(); }

// A bootstrap whose CDS and LDS come over ADS (SotW or delta) from the
// static cluster "xds" at 127.0.0.1:`ads_port`; admin on an ephemeral port.
inline std::string adsBootstrap(bool delta, uint16_t ads_port, const std::string& node_id = "node-1") {
  return "node: {id: " + node_id + R"(, cluster: mesh}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: )" + std::string(delta ? "DELTA_GRPC" : "GRPC") + R"(
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds}
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds
    connect_timeout: 1s
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(ads_port) + "}}}\n";
}

class AdsDriver {
 public:
  using DiscoveryRequest = envoy::service::discovery::v3::DiscoveryRequest;
  using DiscoveryResponse = envoy::service::discovery::v3::DiscoveryResponse;
  using DeltaDiscoveryRequest = envoy::service::discovery::v3::DeltaDiscoveryRequest;
  using DeltaDiscoveryResponse = envoy::service::discovery::v3::DeltaDiscoveryResponse;

  AdsDriver(config::test::FakeAdsServer& server, bool delta) : server_(server), delta_(delta) {}

  bool delta() const { return delta_; }
  config::test::FakeAdsServer& server() { return server_; }

  // The next request of `type_url` on `stream` from request `cursor` on;
  // advances the cursor past it. Requests of other types are skipped.
  bool nextSotw(size_t stream, size_t& cursor, const std::string& type_url, DiscoveryRequest* out) {
    for (;; ++cursor) {
      if (!server_.waitSotwRequest(stream, cursor, out)) return false;
      if (out->type_url() == type_url) {
        ++cursor;
        return true;
      }
    }
  }
  bool nextDelta(size_t stream, size_t& cursor, const std::string& type_url, DeltaDiscoveryRequest* out) {
    for (;; ++cursor) {
      if (!server_.waitDeltaRequest(stream, cursor, out)) return false;
      if (out->type_url() == type_url) {
        ++cursor;
        return true;
      }
    }
  }

  // Waits for the client's next request of the type, then answers it with
  // `resources` as version `version`. Delta sends every resource as an
  // add/update; SotW sends the whole set.
  template <class Resource>
  bool serve(size_t stream, size_t& cursor, const std::string& type_url, const std::string& version,
             const std::vector<Resource>& resources) {
    if (delta_) {
      DeltaDiscoveryRequest request;
      if (!nextDelta(stream, cursor, type_url, &request)) return false;
    } else {
      DiscoveryRequest request;
      if (!nextSotw(stream, cursor, type_url, &request)) return false;
    }
    return push(stream, type_url, version, resources);
  }

  // Sends without waiting for a request (the client already asked).
  // `removed` only means something in delta; SotW removes by omission.
  template <class Resource>
  bool push(size_t stream, const std::string& type_url, const std::string& version,
            const std::vector<Resource>& resources, const std::vector<std::string>& removed = {}) {
    const std::string nonce = nonceFor(type_url, version);
    if (delta_) {
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
      for (const auto& name : removed) response.add_removed_resources(name);
      return server_.send(stream, response);
    }
    DiscoveryResponse response;
    response.set_type_url(type_url);
    response.set_version_info(version);
    response.set_nonce(nonce);
    for (const auto& r : resources) response.add_resources()->PackFrom(r);
    return server_.send(stream, response);
  }

  // The error_detail message of the next request of `type_url` that carries
  // one ("" when none came in time).
  std::string nextNack(size_t stream, size_t& cursor, const std::string& type_url) {
    for (;;) {
      if (delta_) {
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

  // Waits for the client to ACK what push/serve sent as `version`: a request
  // echoing its nonce without an error. False on a NACK or timeout.
  bool waitAck(size_t stream, size_t& cursor, const std::string& type_url, const std::string& version) {
    const std::string nonce = nonceFor(type_url, version);
    for (;;) {
      if (delta_) {
        DeltaDiscoveryRequest r;
        if (!nextDelta(stream, cursor, type_url, &r)) return false;
        if (r.response_nonce() == nonce) return !r.has_error_detail();
      } else {
        DiscoveryRequest r;
        if (!nextSotw(stream, cursor, type_url, &r)) return false;
        if (r.response_nonce() == nonce) return !r.has_error_detail();
      }
    }
  }

  static std::string nonceFor(const std::string& type_url, const std::string& version) {
    return type_url.substr(type_url.rfind('.') + 1) + "-" + version;
  }

 private:
  config::test::FakeAdsServer& server_;
  const bool delta_;
};

}  // namespace courier::test
