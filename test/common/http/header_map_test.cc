#include "source/common/http/header_map.h"

#include <string>

#include "gtest/gtest.h"

namespace courier::http {
namespace {

TEST(HeaderMapTest, AddLowercasesKeyAndKeepsValue) {
  HeaderMap h;
  h.add("Content-Type", "Text/HTML");
  ASSERT_NE(h.get("content-type"), nullptr);
  EXPECT_EQ(h.get("content-type")->key(), "content-type");
  EXPECT_EQ(h.get("CONTENT-TYPE")->value(), "Text/HTML");
}

TEST(HeaderMapTest, AddKeepsDuplicatesInOrder) {
  HeaderMap h;
  h.add("x-a", "1");
  h.add("x-b", "2");
  h.add("x-a", "3");
  EXPECT_EQ(h.size(), 3u);
  auto all = h.getAll("x-a");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], "1");
  EXPECT_EQ(all[1], "3");
  EXPECT_EQ(h.get("x-a")->value(), "1");
}

TEST(HeaderMapTest, JoinedValueUsesComma) {
  HeaderMap h;
  h.add("accept", "a");
  h.add("accept", "b");
  EXPECT_EQ(h.getJoined("accept"), "a,b");
  EXPECT_EQ(h.getJoined("missing"), "");
}

TEST(HeaderMapTest, SetReplacesAllDuplicates) {
  HeaderMap h;
  h.add("x-a", "1");
  h.add("x-b", "2");
  h.add("x-a", "3");
  h.set("X-A", "9");
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.toString(), "x-a: 9\nx-b: 2\n");
}

TEST(HeaderMapTest, SetAddsWhenAbsent) {
  HeaderMap h;
  h.set("x-a", "1");
  EXPECT_EQ(h.getValue("x-a"), "1");
}

TEST(HeaderMapTest, RemoveDropsAllAndReturnsCount) {
  HeaderMap h{{"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}};
  EXPECT_EQ(h.remove("x-a"), 2u);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.get("x-a"), nullptr);
  EXPECT_EQ(h.remove("x-a"), 0u);
}

TEST(HeaderMapTest, ByteSizeTracksKeysAndValues) {
  HeaderMap h;
  h.add("ab", "cde");
  h.add("f", "");
  EXPECT_EQ(h.byteSize(), 6u);
  h.set("ab", "x");
  EXPECT_EQ(h.byteSize(), 4u);
  h.remove("ab");
  EXPECT_EQ(h.byteSize(), 1u);
}

TEST(HeaderMapTest, IteratesInInsertionOrder) {
  HeaderMap h{{"b", "1"}, {"a", "2"}, {"c", "3"}};
  std::string keys;
  for (const auto& e : h) keys += std::string(e.key());
  EXPECT_EQ(keys, "bac");
  std::string stopped;
  h.iterate([&](const HeaderEntry& e) {
    stopped += std::string(e.key());
    return e.key() != "a";
  });
  EXPECT_EQ(stopped, "ba");
}

TEST(HeaderMapTest, PseudoHeadersGoFirstWithFastAccessors) {
  HeaderMap h;
  h.add("user-agent", "x");
  h.add(":method", "GET");
  h.add(":path", "/p");
  h.add(":authority", "host");
  h.add(":scheme", "https");
  h.add(":protocol", "websocket");
  EXPECT_EQ(h.method(), "GET");
  EXPECT_EQ(h.path(), "/p");
  EXPECT_EQ(h.host(), "host");
  EXPECT_EQ(h.scheme(), "https");
  EXPECT_EQ(h.protocol(), "websocket");
  EXPECT_EQ(h.begin()->key(), ":method");
  EXPECT_EQ((h.end() - 1)->key(), "user-agent");
}

TEST(HeaderMapTest, StatusAccessorParsesThreeDigits) {
  ResponseHeaderMap h;
  EXPECT_EQ(h.status(), 0);
  h.setStatus(204);
  EXPECT_EQ(h.status(), 204);
  EXPECT_EQ(h.statusString(), "204");
  h.set(":status", "2x4");
  EXPECT_EQ(h.status(), 0);
}

TEST(HeaderMapTest, LargeHeadersSpillToOverflowAndStayValid) {
  HeaderMap h;
  std::string big(3000, 'v');
  for (int i = 0; i < 20; ++i) h.add("k" + std::to_string(i), big + std::to_string(i));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(h.getValue("k" + std::to_string(i)), big + std::to_string(i));
  }
}

TEST(HeaderMapTest, CopyIsDeepAndEqual) {
  auto a = std::make_unique<HeaderMap>(HeaderMap{{":status", "200"}, {"x", "y"}});
  HeaderMap b(*a);
  a.reset();
  EXPECT_EQ(b.status(), 200);
  EXPECT_EQ(b.getValue("x"), "y");
  HeaderMap c;
  c = b;
  EXPECT_EQ(c, b);
}

}  // namespace
}  // namespace courier::http
