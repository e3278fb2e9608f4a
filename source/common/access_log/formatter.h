// Envoy's substitution format ("%REQ(:METHOD)% %RESPONSE_CODE%", or a JSON
// object of such strings) compiled once at config time into a list of pieces,
// so formatting a log line on a worker only looks values up and appends them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/core/v3/substitution_format_string.pb.h"
#include "google/protobuf/struct.pb.h"
#include "source/common/stream_info/stream_info.h"

namespace courier::access_log {

// Envoy's default access log format (used when a logger gives none).
inline constexpr std::string_view kDefaultFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% "
    "%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "
    "\"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" "
    "\"%UPSTREAM_HOST%\"\n";

class Formatter {
 public:
  // A text format; an empty string means kDefaultFormat. Errors name the
  // operator and its byte offset in the format string.
  static absl::StatusOr<Formatter> fromText(std::string_view format, bool omit_empty_values = false);
  // One JSON object per line; each string value is a format string; nested
  // structs nest; a value that is exactly one numeric operator stays a number.
  static absl::StatusOr<Formatter> fromJson(const google::protobuf::Struct& json_format,
                                            bool omit_empty_values = false);
  // SubstitutionFormatString (text_format, text_format_source.inline_string,
  // json_format, omit_empty_values, content_type). Errors carry the field
  // path relative to the message ("json_format.a.b: ...").
  static absl::StatusOr<Formatter> fromProto(const envoy::config::core::v3::SubstitutionFormatString& config);

  // Appends the formatted line to out (callers reuse out between calls).
  void format(const stream_info::StreamInfo& info, std::string& out) const;
  std::string format(const stream_info::StreamInfo& info) const;

  // "text/plain" or "application/json" unless configured.
  const std::string& contentType() const { return content_type_; }

  enum class Op : uint8_t {
    kLiteral,
    kStartTime,
    kReq,
    kResp,
    kTrailer,
    kResponseCode,
    kResponseCodeDetails,
    kResponseFlags,
    kBytesReceived,
    kBytesSent,
    kDuration,
    kRequestDuration,
    kResponseDuration,
    kResponseTxDuration,
    kUpstreamHost,
    kUpstreamCluster,
    kUpstreamTransportFailureReason,
    kDownstreamRemoteAddress,
    kDownstreamRemoteAddressWithoutPort,
    kDownstreamLocalAddress,
    kDownstreamLocalAddressWithoutPort,
    kProtocol,
    kRouteName,
    kHostname,
    kRequestedServerName,
  };

  // One part of a START_TIME(...) format: a strftime chunk, fractional
  // seconds with N digits, or seconds since the epoch.
  struct TimeSegment {
    enum class Kind : uint8_t { kStrftime, kFraction, kEpochSeconds } kind = Kind::kStrftime;
    std::string strftime;
    int digits = 0;
  };

  struct Piece {
    Op op = Op::kLiteral;
    std::string text;        // literal text, or the host name for %HOSTNAME%
    std::string header;      // REQ/RESP/TRAILER, lowercased
    std::string alt_header;  // the header after '?', if any
    size_t max_length = std::string::npos;
    std::vector<TimeSegment> time;  // empty: Envoy's default START_TIME format
  };

  struct JsonField {
    enum class Kind : uint8_t { kFormat, kSoleOperator, kLiteral, kObject } kind = Kind::kFormat;
    std::string key;  // already JSON-encoded, with the colon: "\"key\":"
    std::vector<Piece> pieces;
    std::string literal;  // JSON text for numbers, bools, null
    std::vector<JsonField> children;
  };

 private:
  Formatter() = default;
  void formatJsonObject(const std::vector<JsonField>& fields, const stream_info::StreamInfo& info,
                        std::string& out) const;

  bool json_ = false;
  bool omit_empty_values_ = false;
  std::string content_type_;
  std::vector<Piece> pieces_;       // text format
  std::vector<JsonField> fields_;   // json format
};

}  // namespace courier::access_log
