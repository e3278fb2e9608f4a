// Hand-built HTTP/2 frames for tests that play a misbehaving peer: a frame
// builder, a parser for what comes back, and an HPACK encoder whose dynamic
// table carries across header blocks as a real client's would.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace courier::http::http2::test {

inline constexpr std::string_view kMagic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// 9-byte frame header + payload (RFC 9113 4.1). length overrides the
// header's length field (to lie about it).
inline std::string frame(uint8_t type, uint8_t flags, uint32_t stream_id, std::string_view payload = {},
                         int64_t length = -1) {
  std::string f;
  const uint32_t len = length >= 0 ? static_cast<uint32_t>(length) : static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(len >> 16));
  f.push_back(static_cast<char>(len >> 8));
  f.push_back(static_cast<char>(len));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>((stream_id >> 24) & 0x7f));
  f.push_back(static_cast<char>(stream_id >> 16));
  f.push_back(static_cast<char>(stream_id >> 8));
  f.push_back(static_cast<char>(stream_id));
  f.append(payload);
  return f;
}

inline std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// One SETTINGS parameter (RFC 9113 6.5.1).
inline std::string setting(uint16_t id, uint32_t value) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + u32(value);
}

struct ParsedFrame {
  uint8_t type;
  uint8_t flags;
  uint32_t stream_id;
  std::string payload;
};

// Whole frames at the front of bytes; a trailing partial frame is left out.
inline std::vector<ParsedFrame> parseFrames(const std::string& bytes, size_t* consumed = nullptr) {
  std::vector<ParsedFrame> out;
  size_t pos = 0;
  while (pos + 9 <= bytes.size()) {
    auto b = [&](size_t i) { return static_cast<uint8_t>(bytes[pos + i]); };
    const uint32_t len = (b(0) << 16) | (b(1) << 8) | b(2);
    ParsedFrame f{b(3), b(4), ((b(5) & 0x7fu) << 24) | (b(6) << 16) | (b(7) << 8) | b(8), {}};
    if (pos + 9 + len > bytes.size()) break;
    f.payload = bytes.substr(pos + 9, len);
    out.push_back(std::move(f));
    pos += 9 + len;
  }
  if (consumed != nullptr) *consumed = pos;
  return out;
}

inline uint32_t readU32(const std::string& s, size_t at) {
  return (static_cast<uint8_t>(s[at]) << 24) | (static_cast<uint8_t>(s[at + 1]) << 16) |
         (static_cast<uint8_t>(s[at + 2]) << 8) | static_cast<uint8_t>(s[at + 3]);
}

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// nghttp2's HPACK deflater, so the headers are encoded exactly as given (any
// case, any name) and the dynamic table state carries across blocks.
class HpackEncoder {
 public:
  HpackEncoder() { nghttp2_hd_deflate_new(&deflater_, 4096); }
  ~HpackEncoder() { nghttp2_hd_deflate_del(deflater_); }
  HpackEncoder(const HpackEncoder&) = delete;
  HpackEncoder& operator=(const HpackEncoder&) = delete;

  std::string block(const HeaderList& headers) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [k, v] : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    std::string buf(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(buf.data()), buf.size(),
                                            nva.data(), nva.size());
    buf.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return buf;
  }

 private:
  nghttp2_hd_deflater* deflater_ = nullptr;
};

inline HeaderList getRequest(std::string path = "/", std::string authority = "x") {
  return {{":method", "GET"}, {":path", std::move(path)}, {":scheme", "http"}, {":authority", std::move(authority)}};
}

}  // namespace courier::http::http2::test
