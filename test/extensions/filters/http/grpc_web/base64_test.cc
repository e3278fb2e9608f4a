#include "source/extensions/filters/http/grpc_web/base64.h"

#include <string>

#include "gtest/gtest.h"

namespace courier::extensions::grpc_web {
namespace {

std::string encodeAll(std::string in) {
  std::string out;
  base64EncodeGroups(in, out, true);
  return out;
}

TEST(Base64Test, EncodesWithPaddingAtTheEnd) {
  EXPECT_EQ(encodeAll(""), "");
  EXPECT_EQ(encodeAll("f"), "Zg==");
  EXPECT_EQ(encodeAll("fo"), "Zm8=");
  EXPECT_EQ(encodeAll("foo"), "Zm9v");
  EXPECT_EQ(encodeAll(std::string("\x00\xff\x80", 3)), "AP+A");
}

TEST(Base64Test, StreamingEncodeKeepsTheRemainderUntilTheEnd) {
  std::string pending = "foob", out;
  base64EncodeGroups(pending, out, false);
  EXPECT_EQ(out, "Zm9v");
  EXPECT_EQ(pending, "b");
  pending += "ar";
  base64EncodeGroups(pending, out, true);
  EXPECT_EQ(out, "Zm9vYmFy");
  EXPECT_TRUE(pending.empty());
}

TEST(Base64Test, DecodesWholeGroupsAndConcatenatedPaddedSegments) {
  std::string in = "Zg==Zm8=Zm9vYm", out;
  ASSERT_TRUE(base64DecodeGroups(in, out));
  EXPECT_EQ(out, "ffofoo");
  EXPECT_EQ(in, "Ym");
  in += "Fy";
  ASSERT_TRUE(base64DecodeGroups(in, out));
  EXPECT_EQ(out, "ffofoobar");
}

TEST(Base64Test, RejectsBadCharactersAndMisplacedPadding) {
  for (std::string bad : {"Zm9!", "=m9v", "Z=9v", "Zg=a"}) {
    std::string out;
    EXPECT_FALSE(base64DecodeGroups(bad, out)) << bad;
  }
}

}  // namespace
}  // namespace courier::extensions::grpc_web
