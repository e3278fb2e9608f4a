#include "source/common/upstream/hash.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace courier::upstream {
namespace {

TEST(HashTest, XxHash64MatchesReferenceVector) {
  // xxHash's published value for the empty input with seed 0.
  EXPECT_EQ(xxHash64(""), 0xEF46DB3751D8E999ULL);
}

TEST(HashTest, MurmurHash2CoversEveryTailLength) {
  const std::string data = "0123456789abcdefXYZ";
  std::set<uint64_t> seen;
  for (size_t len = 0; len <= data.size(); ++len) seen.insert(murmurHash2_64(std::string_view(data).substr(0, len)));
  EXPECT_EQ(seen.size(), data.size() + 1);
}

TEST(HashTest, MurmurHash2IsDeterministicAndSeeded) {
  EXPECT_EQ(murmurHash2_64("10.0.0.1:80_0"), murmurHash2_64("10.0.0.1:80_0"));
  EXPECT_NE(murmurHash2_64("key", 1), murmurHash2_64("key", 2));
  // Empty input with seed 0 hashes to 0 in MurmurHash64A: h = 0, mixing keeps 0.
  EXPECT_EQ(murmurHash2_64("", 0), 0u);
}

}  // namespace
}  // namespace courier::upstream
