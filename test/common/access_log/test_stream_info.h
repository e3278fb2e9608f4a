// A StreamInfo with every field the formatter reads filled in, and an empty
// one, shared by the access log tests.
#pragma once

#include <chrono>

#include "source/common/http/header_map.h"
#include "source/common/stream_info/stream_info.h"

namespace courier::access_log::test {

struct TestStream {
  http::RequestHeaderMap request{{":method", "GET"},
                                 {":path", "/api/v1/items?x=1"},
                                 {":authority", "example.com"},
                                 {"user-agent", "curl/8.0"},
                                 {"x-request-id", "req-1"},
                                 {"x-forwarded-for", "192.0.2.1"}};
  http::ResponseHeaderMap response{{":status", "200"}, {"x-envoy-upstream-service-time", "12"}};
  http::TrailerMap trailers{{"grpc-status", "0"}};
  stream_info::StreamInfo info;

  TestStream() {
    using namespace std::chrono;
    // 2024-01-01T00:00:00.123456789Z
    info.start_time = system_clock::time_point(duration_cast<system_clock::duration>(
        seconds(1704067200) + nanoseconds(123456789)));
    info.last_downstream_rx_byte_received = milliseconds(5);
    info.first_upstream_tx_byte_sent = milliseconds(6);
    info.last_upstream_rx_byte_received = milliseconds(30);
    info.first_upstream_rx_byte_received = milliseconds(18);
    info.first_downstream_tx_byte_sent = milliseconds(20);
    info.last_downstream_tx_byte_sent = milliseconds(42);
    info.protocol = "HTTP/1.1";
    info.response_code = 200;
    info.response_code_details = "via_upstream";
    info.bytes_received = 10;
    info.bytes_sent = 20;
    info.downstream_remote_address = *network::Address::fromIpPort("10.0.0.1", 5000);
    info.downstream_local_address = *network::Address::fromIpPort("10.0.0.2", 80);
    info.upstream_host = *network::Address::fromIpPort("10.0.0.3", 8080);
    info.upstream_cluster = "backend";
    info.route_name = "route1";
    info.upstream_transport_failure_reason = "connection refused";
    info.request_headers = &request;
    info.response_headers = &response;
    info.response_trailers = &trailers;
  }
};

}  // namespace courier::access_log::test
