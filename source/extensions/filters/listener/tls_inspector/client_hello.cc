#include "source/extensions/filters/listener/tls_inspector/client_hello.h"

#include <cstdint>

namespace courier::extensions::tls_inspector {
namespace {

constexpr uint8_t kHandshake = 22;
constexpr uint8_t kClientHello = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kHandshakeHeader = 4;
// A TLSPlaintext record carries at most 2^14 bytes.
constexpr size_t kMaxRecord = 16384;
constexpr uint16_t kServerName = 0;
constexpr uint16_t kAlpn = 16;

// Reads big-endian fields from a bounded span; any read past the end marks
// the reader failed and yields zeros, so callers check ok() once per step.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool ok() const { return ok_; }
  size_t left() const { return ok_ ? data_.size() - pos_ : 0; }
  uint32_t u8() { return number(1); }
  uint32_t u16() { return number(2); }
  uint32_t u24() { return number(3); }
  std::string_view bytes(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  uint32_t number(size_t n) {
    std::string_view b = bytes(n);
    uint32_t v = 0;
    for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
    return v;
  }
  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

bool parseServerName(std::string_view ext, ClientHello& out) {
  Reader r(ext);
  Reader list(r.bytes(r.u16()));
  if (!r.ok() || r.left() != 0) return false;
  while (list.ok() && list.left() > 0) {
    const uint32_t type = list.u8();
    std::string_view name = list.bytes(list.u16());
    if (!list.ok()) return false;
    if (type == 0 && out.server_name.empty()) {
      if (name.empty()) return false;
      out.server_name.assign(name);
      for (char& c : out.server_name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
    }
  }
  return list.ok();
}

bool parseAlpn(std::string_view ext, ClientHello& out) {
  Reader r(ext);
  Reader list(r.bytes(r.u16()));
  if (!r.ok() || r.left() != 0) return false;
  while (list.ok() && list.left() > 0) {
    std::string_view proto = list.bytes(list.u8());
    if (!list.ok() || proto.empty()) return false;
    out.alpn.emplace_back(proto);
  }
  return list.ok();
}

// The ClientHello body (after the 4-byte handshake header).
bool parseBody(std::string_view body, ClientHello& out) {
  Reader r(body);
  r.bytes(2);   // legacy_version
  r.bytes(32);  // random
  const uint32_t session_id = r.u8();
  if (session_id > 32) return false;
  r.bytes(session_id);
  const uint32_t ciphers = r.u16();
  if (ciphers == 0 || ciphers % 2 != 0) return false;
  r.bytes(ciphers);
  const uint32_t compression = r.u8();
  if (compression == 0) return false;
  r.bytes(compression);
  if (!r.ok()) return false;
  if (r.left() == 0) return true;  // no extensions at all
  Reader extensions(r.bytes(r.u16()));
  if (!r.ok() || r.left() != 0) return false;
  bool seen_sni = false;
  bool seen_alpn = false;
  while (extensions.ok() && extensions.left() > 0) {
    const uint32_t type = extensions.u16();
    std::string_view ext = extensions.bytes(extensions.u16());
    if (!extensions.ok()) return false;
    if (type == kServerName) {
      if (seen_sni || !parseServerName(ext, out)) return false;
      seen_sni = true;
    } else if (type == kAlpn) {
      if (seen_alpn || !parseAlpn(ext, out)) return false;
      seen_alpn = true;
    }
  }
  return extensions.ok();
}

}  // namespace

ClientHelloResult parseClientHello(std::string_view data, ClientHello& out, size_t max_size) {
  out = ClientHello();
  // The handshake message, gathered from the records seen so far.
  std::string handshake;
  size_t pos = 0;
  for (;;) {
    const size_t left = data.size() - pos;
    if (left == 0) return ClientHelloResult::NeedMoreData;
    const uint8_t type = static_cast<uint8_t>(data[pos]);
    if (type != kHandshake) return pos == 0 ? ClientHelloResult::NotTls : ClientHelloResult::Malformed;
    // SSL 3.0 to TLS 1.3 all say major version 3 in the record header.
    if (left >= 2 && static_cast<uint8_t>(data[pos + 1]) != 3) {
      return pos == 0 ? ClientHelloResult::NotTls : ClientHelloResult::Malformed;
    }
    if (left < kRecordHeader) return ClientHelloResult::NeedMoreData;
    const size_t length =
        (static_cast<size_t>(static_cast<uint8_t>(data[pos + 3])) << 8) | static_cast<uint8_t>(data[pos + 4]);
    if (length == 0 || length > kMaxRecord) return ClientHelloResult::Malformed;
    const size_t available = std::min(length, left - kRecordHeader);
    handshake.append(data.substr(pos + kRecordHeader, available));
    if (handshake.size() >= 1 && static_cast<uint8_t>(handshake[0]) != kClientHello) {
      return pos == 0 ? ClientHelloResult::NotTls : ClientHelloResult::Malformed;
    }
    if (handshake.size() >= kHandshakeHeader) {
      const size_t body = (static_cast<size_t>(static_cast<uint8_t>(handshake[1])) << 16) |
                          (static_cast<size_t>(static_cast<uint8_t>(handshake[2])) << 8) |
                          static_cast<uint8_t>(handshake[3]);
      // Bytes on the wire: at least one record header per 2^14 handshake bytes.
      const size_t total = kHandshakeHeader + body;
      const size_t wire = total + kRecordHeader * ((total + kMaxRecord - 1) / kMaxRecord);
      if (wire > max_size) return ClientHelloResult::TooLarge;
      if (handshake.size() >= total) {
        return parseBody(std::string_view(handshake).substr(kHandshakeHeader, body), out)
                   ? ClientHelloResult::Found
                   : ClientHelloResult::Malformed;
      }
    }
    if (available < length) return ClientHelloResult::NeedMoreData;
    pos += kRecordHeader + length;
  }
}

}  // namespace courier::extensions::tls_inspector
