// Small pieces of the HTTP/1.1 wire format shared by the server and client
// codecs: token lists in header values and header/number serialisation.
#pragma once

#include <cstdint>
#include <string_view>

#include "source/common/buffer/buffer.h"
#include "source/common/http/header_map.h"

namespace courier::http::http1 {

// Strips optional whitespace (spaces and tabs) at both ends.
std::string_view trimOws(std::string_view s);
// True if the comma-separated list value contains token (case-insensitive).
bool hasToken(std::string_view value, std::string_view token);
// True if any header named key (lowercase) lists token.
bool headersHaveToken(const HeaderMap& h, std::string_view key, std::string_view token);
void appendHex(buffer::Buffer& out, uint64_t v);
// A header name is an RFC 9110 token; a value holds no CR, LF or NUL (llhttp
// lets obs-fold through as "a\r\n b"). Table lookups: this runs for every
// header of every message.
bool validHeaderName(std::string_view name);
bool validHeaderValue(std::string_view value);
// "key: value\r\n" for every regular header; pseudo-headers are skipped, and
// so are transfer-encoding (when the codec frames the body) and host (when
// :authority supplies it).
void appendHeaders(buffer::Buffer& out, const HeaderMap& headers, bool skip_framing, bool skip_host = false);

}  // namespace courier::http::http1
