#include "source/extensions/filters/http/grpc_web/base64.h"

#include <array>

namespace courier::extensions::grpc_web {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> decodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = decodeTable();

}  // namespace

bool base64DecodeGroups(std::string& in, std::string& out) {
  const size_t whole = in.size() / 4 * 4;
  for (size_t i = 0; i < whole; i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const uint8_t c = static_cast<uint8_t>(in[i + k]);
      if (c == '=' && k >= 2) {
        ++pad;
        v[k] = 0;
        continue;
      }
      // Padding only at the end of a group.
      if (pad > 0 || kDecode[c] < 0) return false;
      v[k] = kDecode[c];
    }
    const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>(n >> 8));
    if (pad < 1) out.push_back(static_cast<char>(n));
  }
  in.erase(0, whole);
  return true;
}

void base64EncodeGroups(std::string& in, std::string& out, bool final) {
  const size_t whole = in.size() / 3 * 3;
  for (size_t i = 0; i < whole; i += 3) {
    const uint32_t n = (static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8) |
                       static_cast<uint32_t>(static_cast<uint8_t>(in[i + 2]));
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  size_t rest = in.size() - whole;
  if (final && rest > 0) {
    uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(in[whole])) << 16;
    if (rest == 2) n |= static_cast<uint32_t>(static_cast<uint8_t>(in[whole + 1])) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
    in.clear();
    return;
  }
  in.erase(0, whole);
}

}  // namespace courier::extensions::grpc_web
