// See common.h.
#include "source/common/grpc/common.h"

#include <cstdio>

namespace courier::grpc {

bool hasGrpcContentType(const http::HeaderMap& headers) {
  std::string_view ct = headers.getValue("content-type");
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct.size() < kGrpc.size()) return false;
  for (size_t i = 0; i < kGrpc.size(); ++i) {
    // Media types are case-insensitive.
    char c = ct[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kGrpc[i]) return false;
  }
  return ct.size() == kGrpc.size() || ct[kGrpc.size()] == '+' || ct[kGrpc.size()] == ';';
}

Status httpToGrpcStatus(int http_status) {
  switch (http_status) {
    case 400:
      return Status::Internal;
    case 401:
      return Status::Unauthenticated;
    case 403:
      return Status::PermissionDenied;
    case 404:
      return Status::Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status::Unavailable;
    default:
      return Status::Unknown;
  }
}

std::string percentEncode(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c < 0x20 || c > 0x7e || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out.append(buf, 3);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::optional<std::chrono::milliseconds> parseTimeout(std::string_view value) {
  // The spec allows at most 8 digits, which also keeps the arithmetic below
  // far from overflow.
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  uint64_t n = 0;
  for (size_t i = 0; i + 1 < value.size(); ++i) {
    char c = value[i];
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  using namespace std::chrono;
  switch (value.back()) {
    case 'H':
      return duration_cast<milliseconds>(hours(n));
    case 'M':
      return duration_cast<milliseconds>(minutes(n));
    case 'S':
      return duration_cast<milliseconds>(seconds(n));
    case 'm':
      return milliseconds(n);
    case 'u':
      // Round up: a sub-millisecond deadline must not become "no timeout".
      return milliseconds((n + 999) / 1000);
    case 'n':
      return milliseconds((n + 999999) / 1000000);
    default:
      return std::nullopt;
  }
}

std::optional<uint32_t> grpcStatus(const http::HeaderMap& headers) {
  const http::HeaderEntry* e = headers.get("grpc-status");
  if (e == nullptr) return std::nullopt;
  std::string_view v = e->value();
  if (v.empty() || v.size() > 9) return std::nullopt;
  uint32_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n;
}

}  // namespace courier::grpc
