#include "source/common/http/http2/protocol_options.h"

#include "absl/strings/str_cat.h"

namespace courier::http::http2 {

absl::StatusOr<Http2Settings> settingsFromProto(const envoy::config::core::v3::Http2ProtocolOptions& o,
                                                const std::string& path, Http2Settings out) {
  absl::Status status;
  auto bounded = [&](bool has, const google::protobuf::UInt32Value& v, const char* field, uint32_t lo, uint32_t hi,
                     uint32_t& dst) {
    if (!has || !status.ok()) return;
    if (v.value() < lo || v.value() > hi) {
      status = absl::InvalidArgumentError(absl::StrCat(path, ".", field, ": must be in [", lo, ", ", hi, "]"));
      return;
    }
    dst = v.value();
  };
  constexpr uint32_t kMax31 = 2147483647;
  bounded(o.has_hpack_table_size(), o.hpack_table_size(), "hpack_table_size", 0, UINT32_MAX, out.hpack_table_size);
  bounded(o.has_max_concurrent_streams(), o.max_concurrent_streams(), "max_concurrent_streams", 1, kMax31,
          out.max_concurrent_streams);
  bounded(o.has_initial_stream_window_size(), o.initial_stream_window_size(), "initial_stream_window_size", 65535,
          kMax31, out.initial_stream_window_size);
  bounded(o.has_initial_connection_window_size(), o.initial_connection_window_size(),
          "initial_connection_window_size", 65535, kMax31, out.initial_connection_window_size);
  bounded(o.has_max_outbound_frames(), o.max_outbound_frames(), "max_outbound_frames", 1, UINT32_MAX,
          out.max_outbound_frames);
  bounded(o.has_max_outbound_control_frames(), o.max_outbound_control_frames(), "max_outbound_control_frames", 1,
          UINT32_MAX, out.max_outbound_control_frames);
  bounded(o.has_max_consecutive_inbound_frames_with_empty_payload(),
          o.max_consecutive_inbound_frames_with_empty_payload(), "max_consecutive_inbound_frames_with_empty_payload",
          0, UINT32_MAX, out.max_consecutive_inbound_frames_with_empty_payload);
  bounded(o.has_max_inbound_priority_frames_per_stream(), o.max_inbound_priority_frames_per_stream(),
          "max_inbound_priority_frames_per_stream", 0, UINT32_MAX, out.max_inbound_priority_frames_per_stream);
  bounded(o.has_max_inbound_window_update_frames_per_data_frame_sent(),
          o.max_inbound_window_update_frames_per_data_frame_sent(),
          "max_inbound_window_update_frames_per_data_frame_sent", 1, UINT32_MAX,
          out.max_inbound_window_update_frames_per_data_frame_sent);
  if (!status.ok()) return status;
  out.allow_connect = o.allow_connect();
  return out;
}

}  // namespace courier::http::http2
