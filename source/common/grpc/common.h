// gRPC-over-HTTP/2 helpers the data plane needs without linking gRPC itself:
// recognising a gRPC request, Envoy's HTTP-to-gRPC status mapping, the
// grpc-message percent-encoding and the grpc-timeout header format.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "source/common/http/header_map.h"

namespace courier::grpc {

// The gRPC status codes we produce or match on (values fixed by the gRPC spec).
enum class Status : uint32_t {
  Ok = 0,
  Canceled = 1,
  Unknown = 2,
  DeadlineExceeded = 4,
  NotFound = 5,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  Unauthenticated = 16,
};

// True for "application/grpc", "application/grpc+<codec>" and
// "application/grpc;<params>", as Envoy's Grpc::Common::hasGrpcContentType.
// grpc-web is a different wire format and does not count.
bool hasGrpcContentType(const http::HeaderMap& headers);

// Envoy's Grpc::Utility::httpToGrpcStatus table.
Status httpToGrpcStatus(int http_status);

// grpc-message is percent-encoded: every byte outside 0x20..0x7E, and '%'
// itself, becomes %XX (gRPC PROTOCOL-HTTP2 spec).
std::string percentEncode(std::string_view message);

// Parses a grpc-timeout value ("<1-8 digits><H|M|S|m|u|n>"); nullopt when it is
// malformed, so the caller ignores it as Envoy does.
std::optional<std::chrono::milliseconds> parseTimeout(std::string_view value);

// The grpc-status of a response's headers (trailers-only) or trailers, if any.
std::optional<uint32_t> grpcStatus(const http::HeaderMap& headers);

}  // namespace courier::grpc
