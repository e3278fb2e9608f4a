// Blocking loopback sockets for tests: every call is bounded by a deadline,
// so a broken proxy fails a test instead of hanging it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace courier::test {

using namespace std::chrono_literals;

class TcpClient {
 public:
  // Connects to 127.0.0.1:port; fd() < 0 when refused.
  explicit TcpClient(uint16_t port, std::chrono::milliseconds timeout = 5000ms);
  ~TcpClient();
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool write(const std::string& data);
  void shutdownWrite();
  // Reads exactly n bytes or until EOF/error/timeout; returns what arrived.
  std::string readExactly(size_t n);
  // Reads until the peer closes (or the timeout passes).
  std::string readToEof();
  // True when the peer closed (EOF or reset) within the timeout.
  bool waitForClose();
  void close();

 private:
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
};

// An upstream TCP server on 127.0.0.1:0 that runs `handler` for each accepted
// connection on its own thread. Stops (and joins) on destruction.
class TcpServer {
 public:
  using Handler = std::function<void(int fd)>;
  explicit TcpServer(Handler handler);
  // On another loopback address (127.0.0.2, ...) and port; 0 picks one.
  TcpServer(Handler handler, const std::string& ip, uint16_t port);
  ~TcpServer();

  uint16_t port() const { return port_; }
  int acceptedCount() const { return accepted_.load(); }

  // Handlers the tests use.
  static Handler echo();
  // Sends `data` then closes.
  static Handler sendAndClose(std::string data);

 private:
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> handlers_;
  Handler handler_;
  std::mutex fds_mu_;
  std::set<int> open_fds_;
};

// A port on 127.0.0.1 that nothing listens on (bound then closed).
uint16_t unusedPort();

// Polls cond until true or the deadline; returns cond's last value.
bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10000ms);

}  // namespace courier::test
