#include "source/common/http/http1/wire_format.h"

#include <cstdio>

namespace courier::http::http1 {

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool hasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = trimOws(value.substr(0, comma));
    if (equalsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool headersHaveToken(const HeaderMap& h, std::string_view key, std::string_view token) {
  // Keys are stored lowercased, so a plain comparison finds them.
  for (const auto& e : h) {
    if (e.key() == key && hasToken(e.value(), token)) return true;
  }
  return false;
}

void appendHex(buffer::Buffer& out, uint64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(v));
  out.add(buf, static_cast<size_t>(n));
}

namespace {
struct TokenTable {
  bool token[256] = {};
  constexpr TokenTable() {
    const char* chars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (const char* c = chars; *c != 0; ++c) token[static_cast<unsigned char>(*c)] = true;
  }
};
constexpr TokenTable kTokens;
}  // namespace

bool validHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!kTokens.token[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool validHeaderValue(std::string_view value) {
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

void appendHeaders(buffer::Buffer& out, const HeaderMap& headers, bool skip_framing, bool skip_host) {
  for (const auto& e : headers) {
    std::string_view k = e.key();
    if (!k.empty() && k[0] == ':') continue;
    if (skip_framing && k == "transfer-encoding") continue;
    if (skip_host && k == "host") continue;
    out.add(k);
    out.add(": ", 2);
    out.add(e.value());
    out.add("\r\n", 2);
  }
}

}  // namespace courier::http::http1
