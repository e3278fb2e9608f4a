#include "test/test_common/net.h"
#include <mutex>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace courier::test {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool waitReadable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

}  // namespace

TcpClient::TcpClient(uint16_t port, std::chrono::milliseconds timeout) : timeout_(timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // Bounds connect() too (Linux applies SO_SNDTIMEO to it), not only sends.
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a = loopback(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

TcpClient::~TcpClient() { close(); }

void TcpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool TcpClient::write(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

void TcpClient::shutdownWrite() { ::shutdown(fd_, SHUT_WR); }

std::string TcpClient::readExactly(size_t n) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  char buf[65536];
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !waitReadable(fd_, left)) break;
    ssize_t got = ::recv(fd_, buf, std::min(sizeof(buf), n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

std::string TcpClient::readToEof() {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !waitReadable(fd_, left)) break;
    ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

bool TcpClient::waitForClose() {
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !waitReadable(fd_, left)) return false;
    ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
    if (got == 0) return true;
    if (got < 0) return errno != EAGAIN && errno != EINTR;
  }
}

TcpServer::TcpServer(Handler handler) : TcpServer(std::move(handler), "127.0.0.1", 0) {}

TcpServer::TcpServer(Handler handler, const std::string& ip, uint16_t port) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = loopback(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::listen(listen_fd_, 128);
  socklen_t len = sizeof(a);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] {
    while (!stop_) {
      if (!waitReadable(listen_fd_, 50ms)) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      accepted_.fetch_add(1);
      {
        std::lock_guard<std::mutex> lock(fds_mu_);
        open_fds_.insert(fd);
      }
      handlers_.emplace_back([this, fd] {
        handler_(fd);
        std::lock_guard<std::mutex> lock(fds_mu_);
        open_fds_.erase(fd);
        ::close(fd);
      });
    }
  });
}

TcpServer::~TcpServer() {
  stop_ = true;
  acceptor_.join();
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  {
    // Handlers blocked reading a peer that keeps its connection (a proxy's
    // pooled keep-alive connection) see EOF now instead of at their timeout.
    std::lock_guard<std::mutex> lock(fds_mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : handlers_) t.join();
}

TcpServer::Handler TcpServer::echo() {
  return [](int fd) {
    char buf[65536];
    while (true) {
      if (!waitReadable(fd, 10000ms)) return;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;  // EOF: returning closes our side too
      size_t off = 0;
      while (off < static_cast<size_t>(n)) {
        ssize_t w = ::send(fd, buf + off, static_cast<size_t>(n) - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += static_cast<size_t>(w);
      }
    }
  };
}

TcpServer::Handler TcpServer::sendAndClose(std::string data) {
  return [data](int fd) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return;
      off += static_cast<size_t>(w);
    }
  };
}

uint16_t unusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

}  // namespace courier::test
