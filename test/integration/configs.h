// Bootstrap YAML shared by the integration tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace courier::test {

// One TCP proxy listener "tcp" (port 0) in front of cluster "backend" with
// the given upstream ports.
inline std::string tcpProxyConfig(const std::vector<uint16_t>& upstream_ports, const std::string& extra_tcp_proxy = "",
                                  const std::string& connect_timeout = "1s") {
  std::string endpoints;
  for (uint16_t p : upstream_ports) {
    endpoints += "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " +
                 std::to_string(p) + "}}}\n";
  }
  return R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: tcp
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: backend
)" + extra_tcp_proxy +
         R"(  clusters:
  - name: backend
    connect_timeout: )" +
         connect_timeout + R"(
    type: STATIC
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
)" + endpoints;
}

}  // namespace courier::test
