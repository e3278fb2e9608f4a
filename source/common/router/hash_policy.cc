#include "source/common/router/hash_policy.h"

#include <algorithm>
#include <string>

#include "source/common/upstream/hash.h"

namespace courier::router {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> headerHash(const HashPolicy& policy, const http::HeaderMap& headers) {
  auto values = headers.getAll(policy.name);
  if (values.empty()) return std::nullopt;
  auto rewrite = [&policy](std::string_view v) {
    std::string s(v);
    if (policy.regex != nullptr) re2::RE2::GlobalReplace(&s, *policy.regex, policy.substitution);
    return s;
  };
  if (values.size() == 1) {
    // The common case hashes the header in place, without a copy.
    if (policy.regex == nullptr) return upstream::xxHash64(values[0]);
    return upstream::xxHash64(rewrite(values[0]));
  }
  // Several values: order-independent, as Envoy sorts them before hashing.
  std::vector<std::string> all;
  all.reserve(values.size());
  for (auto v : values) all.push_back(rewrite(v));
  std::sort(all.begin(), all.end());
  std::string joined;
  for (const auto& v : all) joined.append(v).push_back('\0');
  return upstream::xxHash64(joined);
}

}  // namespace

std::optional<std::string_view> findCookie(const http::HeaderMap& headers, std::string_view name) {
  for (std::string_view header : headers.getAll("cookie")) {
    while (!header.empty()) {
      size_t end = header.find(';');
      std::string_view pair = trim(header.substr(0, end));
      header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim(pair.substr(eq + 1));
      // RFC 6265 allows a DQUOTE-wrapped value; the quotes are not part of it.
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      return value;
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> findQueryParameter(std::string_view path, std::string_view name) {
  size_t q = path.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = path.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    size_t end = query.find('&');
    std::string_view pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

std::optional<uint64_t> computeOneHash(const HashPolicy& policy, const http::HeaderMap& headers,
                                       const network::Address* downstream) {
  switch (policy.kind) {
    case HashPolicy::Kind::Header:
      return headerHash(policy, headers);
    case HashPolicy::Kind::Cookie: {
      // Envoy would also mint the cookie (Set-Cookie) when ttl is set and it
      // is absent; here an absent cookie simply gives no hash.
      auto value = findCookie(headers, policy.name);
      if (!value.has_value()) return std::nullopt;
      return upstream::xxHash64(*value);
    }
    case HashPolicy::Kind::SourceIp:
      if (downstream == nullptr || !downstream->valid()) return std::nullopt;
      return upstream::xxHash64(downstream->ip());
    case HashPolicy::Kind::QueryParameter: {
      auto value = findQueryParameter(headers.path(), policy.name);
      if (!value.has_value()) return std::nullopt;
      return upstream::xxHash64(*value);
    }
    case HashPolicy::Kind::FilterState:
      // No filter writes hashable filter state yet.
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<uint64_t> computeHash(const std::vector<HashPolicy>& policies, const http::HeaderMap& headers,
                                    const network::Address* downstream) {
  std::optional<uint64_t> hash;
  for (const auto& policy : policies) {
    std::optional<uint64_t> next = computeOneHash(policy, headers, downstream);
    if (next.has_value()) {
      hash = hash.has_value() ? (((*hash << 1) | (*hash >> 63)) ^ *next) : *next;
    }
    if (policy.terminal && hash.has_value()) break;
  }
  return hash;
}

}  // namespace courier::router
