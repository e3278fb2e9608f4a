#include "source/common/buffer/buffer.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace courier::buffer {
namespace {

TEST(BufferTest, AddAndToStringKeepBytesInOrder) {
  Buffer b;
  b.add("hello ");
  b.add("world");
  EXPECT_EQ(b.length(), 11u);
  EXPECT_EQ(b.toString(), "hello world");
}

TEST(BufferTest, LargeAddSpansSeveralSlices) {
  Buffer b;
  std::string big(3 * Slice::kDefaultSize + 17, 'x');
  big[Slice::kDefaultSize] = 'y';
  b.add(big);
  EXPECT_EQ(b.length(), big.size());
  EXPECT_GE(b.sliceCount(), 4u);
  EXPECT_EQ(b.toString(), big);
}

TEST(BufferTest, MoveHandsOverAllBytesAndEmptiesSource) {
  Buffer a, b;
  a.add(std::string(40000, 'a'));
  b.add("head");
  b.move(a);
  EXPECT_EQ(a.length(), 0u);
  EXPECT_EQ(b.length(), 40004u);
  EXPECT_EQ(b.toString().substr(0, 5), "heada");
}

TEST(BufferTest, PartialMoveSplitsASlice) {
  Buffer a, b;
  a.add("0123456789");
  b.move(a, 4);
  EXPECT_EQ(b.toString(), "0123");
  EXPECT_EQ(a.toString(), "456789");
}

TEST(BufferTest, DrainAcrossSlices) {
  Buffer b;
  std::string big(2 * Slice::kDefaultSize, 'q');
  big += "tail";
  b.add(big);
  b.drain(2 * Slice::kDefaultSize + 1);
  EXPECT_EQ(b.toString(), "ail");
  b.drain(100);
  EXPECT_TRUE(b.empty());
}

TEST(BufferTest, SearchFindsNeedleStraddlingSlices) {
  Buffer a, b;
  a.add(std::string(Slice::kDefaultSize - 2, '.') + "\r\n");
  Buffer c;
  c.add("\r\nbody");
  // Force two separate slices.
  b.move(a);
  Buffer big;
  big.add(std::string(Slice::kDefaultSize, '-'));
  b.move(c);
  EXPECT_EQ(b.search("\r\n\r\n"), static_cast<ssize_t>(Slice::kDefaultSize - 2));
  EXPECT_EQ(b.search("missing"), -1);
  EXPECT_EQ(b.search("body", 10), static_cast<ssize_t>(Slice::kDefaultSize + 2));
}

TEST(BufferTest, CopyOutReadsARange) {
  Buffer b;
  b.add("abcdefgh");
  char out[3];
  b.copyOut(2, 3, out);
  EXPECT_EQ(std::string(out, 3), "cde");
}

TEST(BufferTest, WriteThenReadThroughASocketPair) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  Buffer out;
  std::string payload(50000, 'z');
  payload[12345] = '!';
  out.add(payload);
  std::string received;
  Buffer in;
  while (!out.empty() || received.size() < payload.size()) {
    if (!out.empty()) {
      IoResult w = out.writeToFd(fds[0]);
      ASSERT_TRUE(w.bytes >= 0 || w.wouldBlock());
    }
    IoResult r = in.readFromFd(fds[1], 1 << 20);
    ASSERT_TRUE(r.bytes > 0 || r.wouldBlock());
    received += in.toString();
    in.drain(in.length());
  }
  EXPECT_EQ(received, payload);
  close(fds[0]);
  close(fds[1]);
}

TEST(BufferTest, ReadReportsEndOfStreamAsZero) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  close(fds[0]);
  Buffer in;
  IoResult r = in.readFromFd(fds[1], 1024);
  EXPECT_EQ(r.bytes, 0);
  EXPECT_TRUE(in.empty());
  close(fds[1]);
}

}  // namespace
}  // namespace courier::buffer
