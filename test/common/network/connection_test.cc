#include "source/common/network/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/stats/store.h"

namespace courier::network {
namespace {

// Records what a connection reports.
struct Recorder : ConnectionCallbacks, ReadFilter {
  void onEvent(ConnectionEvent e) override { events.push_back(e); }
  void onAboveWriteBufferHighWatermark() override { ++above; }
  void onBelowWriteBufferLowWatermark() override { ++below; }
  void onDrainStarted() override { ++drains; }
  void initializeReadFilterCallbacks(ReadFilterCallbacks&) override {}
  FilterStatus onData(buffer::Buffer& data, bool end_stream) override {
    received += data.toString();
    data.drain(data.length());
    if (end_stream) ++end_streams;
    return FilterStatus::Continue;
  }
  std::vector<ConnectionEvent> events;
  std::string received;
  int above = 0, below = 0, end_streams = 0, drains = 0;
};

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    peer_ = fds[1];
    conn_ = std::make_unique<Connection>(dispatcher_, SocketFd(fds[0]), Address(), Address());
    auto filter = std::make_unique<Recorder>();
    rec_ = filter.get();
    conn_->addConnectionCallbacks(*rec_);
    conn_->addReadFilter(std::move(filter));
  }
  void TearDown() override {
    if (peer_ >= 0) ::close(peer_);
  }
  // Runs the loop until cond holds (bounded).
  bool runUntil(const std::function<bool()>& cond, int max_turns = 2000) {
    for (int i = 0; i < max_turns && !cond(); ++i) {
      auto t = dispatcher_.createTimer([this] { dispatcher_.exit(); });
      t->enable(std::chrono::milliseconds(1));
      dispatcher_.run();
    }
    return cond();
  }
  std::string drainPeer() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(peer_, buf, sizeof(buf), MSG_DONTWAIT)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  event::Dispatcher dispatcher_{"test"};
  std::unique_ptr<Connection> conn_;
  Recorder* rec_ = nullptr;
  int peer_ = -1;
};

TEST_F(ConnectionTest, BytesFromThePeerReachTheFilter) {
  ASSERT_EQ(::send(peer_, "hello", 5, 0), 5);
  EXPECT_TRUE(runUntil([&] { return rec_->received == "hello"; }));
}

TEST_F(ConnectionTest, WrittenBytesReachThePeer) {
  buffer::Buffer b;
  b.add("world");
  conn_->write(b, false);
  EXPECT_TRUE(b.empty());
  std::string got;
  EXPECT_TRUE(runUntil([&] { return (got += drainPeer()) == "world"; }));
}

TEST_F(ConnectionTest, PeerFinWithoutHalfCloseClosesTheConnection) {
  ::shutdown(peer_, SHUT_WR);
  EXPECT_TRUE(runUntil([&] { return !rec_->events.empty(); }));
  EXPECT_EQ(rec_->events.front(), ConnectionEvent::RemoteClose);
  EXPECT_EQ(conn_->state(), Connection::State::Closed);
}

TEST_F(ConnectionTest, PeerFinWithHalfCloseIsEndStreamAndWritesStillFlow) {
  conn_->enableHalfClose(true);
  ::send(peer_, "q", 1, 0);
  ::shutdown(peer_, SHUT_WR);
  EXPECT_TRUE(runUntil([&] { return rec_->end_streams == 1; }));
  EXPECT_EQ(rec_->received, "q");
  EXPECT_TRUE(rec_->events.empty());
  buffer::Buffer b;
  b.add("answer");
  conn_->write(b, true);
  std::string got;
  EXPECT_TRUE(runUntil([&] { return (got += drainPeer()) == "answer"; }));
  // Both directions done: the connection closes itself.
  EXPECT_TRUE(runUntil([&] { return conn_->state() == Connection::State::Closed; }));
}

TEST_F(ConnectionTest, WatermarksFireWhenThePeerStopsReadingAndWhenItCatchesUp) {
  conn_->setBufferLimits(64 * 1024);
  std::string big(4 << 20, 'w');
  buffer::Buffer b;
  b.add(big);
  conn_->write(b, false);
  EXPECT_EQ(rec_->above, 1);
  EXPECT_EQ(rec_->below, 0);
  size_t got = 0;
  EXPECT_TRUE(runUntil([&] {
    got += drainPeer().size();
    return rec_->below == 1;
  }));
  EXPECT_TRUE(runUntil([&] {
    got += drainPeer().size();
    return got == big.size();
  }));
  EXPECT_EQ(rec_->above, 1);
}

TEST_F(ConnectionTest, ReadDisableHoldsDataUntilReenabled) {
  conn_->readDisable(true);
  ::send(peer_, "held", 4, 0);
  // Give the loop a few turns: nothing may arrive while disabled.
  runUntil([] { return false; }, 20);
  EXPECT_EQ(rec_->received, "");
  conn_->readDisable(false);
  EXPECT_TRUE(runUntil([&] { return rec_->received == "held"; }));
}

TEST_F(ConnectionTest, ByteCountersAdvance) {
  stats::Store store;
  conn_->setConnectionStats({&store.counter("rx"), &store.counter("tx")});
  ::send(peer_, "abc", 3, 0);
  EXPECT_TRUE(runUntil([&] { return rec_->received == "abc"; }));
  buffer::Buffer b;
  b.add("12345");
  conn_->write(b, false);
  EXPECT_EQ(store.counter("rx").value(), 3u);
  EXPECT_EQ(store.counter("tx").value(), 5u);
}

// Runs the loop in 1 ms turns until cond holds (bounded).
void turnUntil(event::Dispatcher& d, const std::function<bool()>& cond) {
  for (int i = 0; i < 1000 && !cond(); ++i) {
    auto t = d.createTimer([&] { d.exit(); });
    t->enable(std::chrono::milliseconds(1));
    d.run();
  }
}

TEST(ClientConnectionTest, ConnectToAClosedPortReportsRemoteClose) {
  event::Dispatcher d("test");
  // Bind then close to get a port with no listener.
  auto probe = listenOn(*Address::fromIpPort("127.0.0.1", 0), false, 1);
  ASSERT_TRUE(probe.ok());
  Address target = Address::localOf(probe->get());
  *probe = SocketFd();
  auto conn = Connection::connect(d, target);
  Recorder rec;
  conn->addConnectionCallbacks(rec);
  turnUntil(d, [&] { return !rec.events.empty(); });
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events.front(), ConnectionEvent::RemoteClose);
}

TEST(ClientConnectionTest, ConnectToAListenerReportsConnected) {
  event::Dispatcher d("test");
  auto listener = listenOn(*Address::fromIpPort("127.0.0.1", 0), false, 8);
  ASSERT_TRUE(listener.ok());
  auto conn = Connection::connect(d, Address::localOf(listener->get()));
  Recorder rec;
  conn->addConnectionCallbacks(rec);
  turnUntil(d, [&] { return !rec.events.empty(); });
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events.front(), ConnectionEvent::Connected);
  EXPECT_EQ(conn->localAddress().ip(), "127.0.0.1");
}

TEST_F(ConnectionTest, StartDrainTellsTheCallbacksOnce) {
  EXPECT_FALSE(conn_->draining());
  conn_->startDrain();
  conn_->startDrain();
  EXPECT_TRUE(conn_->draining());
  EXPECT_EQ(rec_->drains, 1);
}

}  // namespace
}  // namespace courier::network

namespace courier::network {
namespace {

// A transport whose "handshake" is the peer sending "HELLO\n" ("BAD" fails
// it), and which upper-cases what it reads: enough to see the connection use
// the seam.
class FakeTransport : public TransportSocket {
 public:
  void setFd(int fd) override { fd_ = fd; }
  TransportIoResult doRead(buffer::Buffer& buffer, size_t max_bytes) override {
    TransportIoResult r;
    buffer::Buffer raw;
    while (true) {
      buffer::IoResult io = raw.readFromFd(fd_, max_bytes);
      if (io.bytes > 0) continue;
      if (io.bytes == 0) r.end_stream = true;
      break;
    }
    pending_ += raw.toString();
    if (!done_) {
      if (pending_.find("BAD") != std::string::npos) {
        r.close = true;
        return r;
      }
      const size_t hello = pending_.find("HELLO\n");
      if (hello == std::string::npos) return r;
      done_ = true;
      pending_.erase(0, hello + 6);
    }
    for (char& c : pending_) c = static_cast<char>(::toupper(static_cast<unsigned char>(c)));
    buffer.add(pending_);
    r.bytes = pending_.size();
    pending_.clear();
    return r;
  }
  TransportIoResult doWrite(buffer::Buffer& buffer) override {
    TransportIoResult r;
    if (!done_) return r;
    const size_t before = buffer.length();
    buffer.writeToFd(fd_);
    r.bytes = before - buffer.length();
    return r;
  }
  void shutdownWrite() override { ++shutdowns; }
  bool handshakeComplete() const override { return done_; }
  std::string_view nextProtocol() const override { return done_ ? "fake/1" : ""; }
  std::string_view serverName() const override { return ""; }
  std::string failureReason() const override { return ""; }

  int shutdowns = 0;

 private:
  int fd_ = -1;
  bool done_ = false;
  std::string pending_;
};

class TransportConnectionTest : public ConnectionTest {
 protected:
  void SetUp() override {
    ConnectionTest::SetUp();
    auto t = std::make_unique<FakeTransport>();
    transport_ = t.get();
    conn_->setTransportSocket(std::move(t));
  }
  FakeTransport* transport_ = nullptr;
};

TEST_F(TransportConnectionTest, WritesWaitForTheHandshakeThenFlow) {
  buffer::Buffer b;
  b.add("early");
  conn_->write(b, false);
  EXPECT_FALSE(runUntil([&] { return !drainPeer().empty(); }, 20));
  EXPECT_EQ(conn_->nextProtocol(), "");
  ASSERT_EQ(::send(peer_, "HELLO\n", 6, 0), 6);
  std::string got;
  EXPECT_TRUE(runUntil([&] {
    got += drainPeer();
    return got == "early";
  }));
  EXPECT_EQ(conn_->nextProtocol(), "fake/1");
}

TEST_F(TransportConnectionTest, ReadsGoThroughTheTransport) {
  ASSERT_EQ(::send(peer_, "HELLO\nabc", 9, 0), 9);
  EXPECT_TRUE(runUntil([&] { return rec_->received == "ABC"; }));
  EXPECT_EQ(conn_->bytesRead(), 3u);
}

TEST_F(TransportConnectionTest, TransportFailureClosesTheConnection) {
  ASSERT_EQ(::send(peer_, "BAD", 3, 0), 3);
  EXPECT_TRUE(runUntil([&] { return conn_->state() == Connection::State::Closed; }));
  ASSERT_EQ(rec_->events.size(), 1u);
  EXPECT_EQ(rec_->events[0], ConnectionEvent::RemoteClose);
  EXPECT_TRUE(rec_->received.empty());
}

TEST_F(TransportConnectionTest, HalfCloseEndsTheTransportStreamFirst) {
  conn_->enableHalfClose(true);
  ASSERT_EQ(::send(peer_, "HELLO\n", 6, 0), 6);
  EXPECT_TRUE(runUntil([&] { return transport_->handshakeComplete(); }));
  buffer::Buffer b;
  b.add("bye");
  conn_->write(b, true);
  std::string got;
  EXPECT_TRUE(runUntil([&] {
    got += drainPeer();
    return got == "bye" && transport_->shutdowns == 1;
  }));
  char c;
  EXPECT_EQ(::recv(peer_, &c, 1, MSG_DONTWAIT), 0);  // our FIN followed
}

}  // namespace
}  // namespace courier::network
