// Http2ProtocolOptions (config.core.v3) onto the codec's Http2Settings, with
// Envoy's bounds; shared by the HCM (downstream) and clusters (upstream).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/core/v3/protocol.pb.h"
#include "source/common/http/http2/settings.h"

namespace courier::http::http2 {

// path names the options message in errors ("...http2_protocol_options").
absl::StatusOr<Http2Settings> settingsFromProto(const envoy::config::core::v3::Http2ProtocolOptions& options,
                                                const std::string& path, Http2Settings base = {});

}  // namespace courier::http::http2
