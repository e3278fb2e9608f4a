// Steady HTTP/1.1 load for the integration tests that change config under
// traffic and require that not a single request fails.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test/test_common/net.h"

namespace courier::test {

// Keep-alive clients, each on its own thread, sending GETs back to back until
// stopped (or a minute passes). A response with `connection: close` makes the
// client open a new connection, as any HTTP/1.1 client does. A request
// succeeds when it gets a 200 whose body starts with one of the letters in
// `upstreams` (the upstreams answer with their names); anything else,
// including a refused connect, is a failure.
class LoadClients {
 public:
  LoadClients(uint16_t port, int threads, std::string upstreams = "ab") : upstreams_(std::move(upstreams)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this, port] { run(port); });
  }
  ~LoadClients() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Waits until `n` more requests succeeded than `from` (bounded).
  bool waitForOk(uint64_t n) {
    const uint64_t target = ok_.load() + n;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (ok_.load() < target && failed_.load() == 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return ok_.load() >= target;
  }

  uint64_t ok() const { return ok_.load(); }
  uint64_t failed() const { return failed_.load(); }
  uint64_t resets() const { return resets_.load(); }
  uint64_t connections() const { return connections_.load(); }
  uint64_t servedBy(char upstream) const { return served_[static_cast<unsigned char>(upstream) % 4].load(); }
  std::string errors() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& e : errors_) out += e + "\n";
    return out;
  }

 private:
  void fail(const std::string& why, bool reset) {
    failed_++;
    if (reset) resets_++;
    std::lock_guard<std::mutex> lock(mu_);
    if (errors_.size() < 20) errors_.push_back(why);
  }

  // One response: false (with `why`) on anything but a complete one.
  static bool readResponse(int fd, std::string& response, bool& reset, std::string& why) {
    response.clear();
    char buf[4096];
    for (;;) {
      const size_t end = response.find("\r\n\r\n");
      if (end != std::string::npos) {
        const size_t cl = response.find("content-length: ");
        if (cl == std::string::npos || cl > end) {
          why = "response without content-length: " + response.substr(0, 200);
          return false;
        }
        const size_t body = std::stoul(response.substr(cl + 16));
        if (response.size() >= end + 4 + body) return true;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) {
        why = "no response within 10 s";
        return false;
      }
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n == 0) {
        why = "connection closed after " + std::to_string(response.size()) + " response bytes";
        return false;
      }
      if (n < 0) {
        reset = errno == ECONNRESET;
        why = std::string("recv: ") + std::strerror(errno);
        return false;
      }
      response.append(buf, static_cast<size_t>(n));
    }
  }

  void run(uint16_t port) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const std::string request = "GET /load HTTP/1.1\r\nhost: svc\r\n\r\n";
    std::unique_ptr<TcpClient> conn;
    std::string response;
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      if (conn == nullptr) {
        conn = std::make_unique<TcpClient>(port);
        if (!conn->connected()) {
          fail("connect refused", false);
          conn.reset();
          continue;
        }
        connections_++;
      }
      if (!conn->write(request)) {
        fail(std::string("send: ") + std::strerror(errno), errno == ECONNRESET || errno == EPIPE);
        conn.reset();
        continue;
      }
      bool reset = false;
      std::string why;
      if (!readResponse(conn->fd(), response, reset, why)) {
        fail(why, reset);
        conn.reset();
        continue;
      }
      const size_t body = response.find("\r\n\r\n") + 4;
      const char upstream = body < response.size() ? response[body] : '?';
      if (response.rfind("HTTP/1.1 200", 0) != 0 || upstreams_.find(upstream) == std::string::npos) {
        fail("unexpected response: " + response.substr(0, 300), false);
      } else {
        ok_++;
        served_[static_cast<unsigned char>(upstream) % 4]++;
      }
      if (response.find("connection: close\r\n") != std::string::npos) conn.reset();
    }
  }

  const std::string upstreams_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0}, failed_{0}, resets_{0}, connections_{0};
  std::atomic<uint64_t> served_[4] = {};
  std::mutex mu_;
  std::vector<std::string> errors_;
};

}  // namespace courier::test
