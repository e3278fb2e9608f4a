// HTTP/2 codec settings, shaped like Envoy's config.core.v3.Http2ProtocolOptions
// (same field names and defaults) so config parsing can fill it field by field
// later. A plain struct: no validation here beyond what the codec clamps.
#pragma once

#include <cstdint>

namespace courier::http::http2 {

struct Http2Settings {
  // Advertised in our SETTINGS frame.
  uint32_t hpack_table_size = 4096;
  uint32_t max_concurrent_streams = 2147483647;
  uint32_t initial_stream_window_size = 268435456;      // 64 KiB - 1 .. 2^31 - 1
  uint32_t initial_connection_window_size = 268435456;  // 64 KiB - 1 .. 2^31 - 1
  // Extended CONNECT (RFC 8441) and plain CONNECT requests are accepted only
  // when set; otherwise a CONNECT stream is reset with PROTOCOL_ERROR.
  bool allow_connect = false;

  // Flood protections (Envoy's names and defaults).
  uint32_t max_outbound_frames = 10000;
  uint32_t max_outbound_control_frames = 1000;
  uint32_t max_consecutive_inbound_frames_with_empty_payload = 1;
  uint32_t max_inbound_priority_frames_per_stream = 100;
  uint32_t max_inbound_window_update_frames_per_data_frame_sent = 10;

  // Not in Http2ProtocolOptions: Envoy's runtime knobs
  // overload.premature_reset_total_stream_count and
  // overload.premature_reset_min_stream_lifetime_seconds. Once this many
  // streams were opened by the peer, the connection fails if the peer itself
  // reset more than half of them before they completed and within the
  // lifetime (the "rapid reset" attack, CVE-2023-44487).
  uint32_t premature_reset_total_stream_count = 500;
  uint32_t premature_reset_min_stream_lifetime_seconds = 1;

  // Header limits (the HCM's max_request_headers_kb / common_http_protocol_options
  // max_headers_count); a stream over them is reset.
  uint32_t max_headers_kb = 60;
  uint32_t max_headers_count = 100;

  // Bytes encoded on one stream that the codec buffers while the peer's window
  // is closed before it raises the stream's high watermark (Envoy's
  // per_connection_buffer_limit_bytes default); low watermark is half of it.
  uint32_t stream_buffer_limit = 1024 * 1024;
};

}  // namespace courier::http::http2
