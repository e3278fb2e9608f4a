// The 64-bit hashes that consistent-hash load balancing and route hash
// policies share: xxHash64 (Envoy's default everywhere) and MurmurHash2-64
// (ring_hash_lb_config.hash_function MURMUR_HASH_2).
#pragma once

#include <cstdint>
#include <string_view>

namespace courier::upstream {

uint64_t xxHash64(std::string_view data, uint64_t seed = 0);

// Envoy seeds MurmurHash2 as libstdc++'s std::hash does, so rings built by
// either agree on placement for the same keys.
inline constexpr uint64_t kMurmurHash2Seed = 0xc70f6907UL;
// MurmurHash64A (Austin Appleby's 64-bit MurmurHash2).
uint64_t murmurHash2_64(std::string_view data, uint64_t seed = kMurmurHash2Seed);

}  // namespace courier::upstream
