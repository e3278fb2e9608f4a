// Jittered exponential back-off between attempts to reach a control plane,
// with Envoy's shape: each wait is drawn uniformly below a ceiling that
// doubles from the base up to the maximum, so many proxies do not reconnect in step.
#pragma once

#include <chrono>
#include <algorithm>
#include <cstdint>
#include <random>

namespace courier::config {

class JitteredBackOff {
 public:
  JitteredBackOff(std::chrono::milliseconds base, std::chrono::milliseconds max)
      : base_(base.count() > 0 ? static_cast<uint64_t>(base.count()) : 1),
        max_(std::max<uint64_t>(base_, max.count() > 0 ? static_cast<uint64_t>(max.count()) : 0)),
        random_(std::random_device{}()) {}

  std::chrono::milliseconds next() {
    uint64_t ceiling = base_;
    for (uint32_t i = 0; i < attempt_ && ceiling < max_; ++i) ceiling *= 2;
    if (ceiling >= max_) {
      ceiling = max_;
    } else {
      ++attempt_;
    }
    std::uniform_int_distribution<uint64_t> pick(0, ceiling - 1);
    return std::chrono::milliseconds(pick(random_));
  }

  // After the stream worked again, the next failure starts from the base.
  void reset() { attempt_ = 0; }

 private:
  const uint64_t base_;
  const uint64_t max_;
  uint32_t attempt_ = 0;
  std::mt19937_64 random_;
};

}  // namespace courier::config
