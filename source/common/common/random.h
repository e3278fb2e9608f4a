// The thread's own random generator for request-path choices (request ids,
// weighted clusters, retry jitter): one per thread, so no lock and no sharing.
#pragma once

#include <random>

namespace courier {

inline std::mt19937_64& threadRandom() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator;
}

}  // namespace courier
