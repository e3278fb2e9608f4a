// Counts gRPC length-prefixed messages (1 flag byte, 4-byte big-endian
// length, payload) in a body that arrives in arbitrary chunks. Only the
// 5 header bytes of each message are looked at; payloads are skipped by
// arithmetic, so the cost does not grow with message size.
#pragma once

#include <algorithm>
#include <cstdint>

#include "source/common/buffer/buffer.h"

namespace courier::extensions::grpc_stats {

class MessageCounter {
 public:
  // Returns how many messages started in data.
  uint64_t feed(const buffer::Buffer& data) {
    uint64_t started = 0;
    const size_t len = data.length();
    size_t pos = 0;
    while (pos < len) {
      if (payload_left_ > 0) {
        const size_t skip = static_cast<size_t>(std::min<uint64_t>(payload_left_, len - pos));
        pos += skip;
        payload_left_ -= skip;
        continue;
      }
      const size_t take = std::min<size_t>(kHeader - header_have_, len - pos);
      data.copyOut(pos, take, header_ + header_have_);
      header_have_ += take;
      pos += take;
      if (header_have_ == kHeader) {
        ++started;
        payload_left_ = (uint64_t{header_[1]} << 24) | (uint64_t{header_[2]} << 16) | (uint64_t{header_[3]} << 8) |
                        uint64_t{header_[4]};
        header_have_ = 0;
      }
    }
    count_ += started;
    return started;
  }
  uint64_t count() const { return count_; }

 private:
  static constexpr size_t kHeader = 5;
  uint8_t header_[kHeader] = {};
  size_t header_have_ = 0;
  uint64_t payload_left_ = 0;
  uint64_t count_ = 0;
};

}  // namespace courier::extensions::grpc_stats
