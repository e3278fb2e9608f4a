// A tiny authoritative DNS responder for tests, on 127.0.0.1 (UDP, ephemeral
// port, its own thread): answers A and AAAA queries from a name -> addresses
// map with a TTL, and can be switched to answer SERVFAIL or nothing at all,
// or to hold its answers back until switched to another mode (a lookup that
// is pending for as long as a test needs).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace courier::test {

class DnsServer {
 public:
  enum class Mode { Answer, ServFail, Silent, Hold };

  DnsServer();
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  uint16_t port() const { return port_; }
  // Replaces the addresses `name` resolves to (IPv4 and IPv6 literals mixed);
  // an empty list makes the name NXDOMAIN.
  void set(const std::string& name, const std::vector<std::string>& addresses, uint32_t ttl = 30);
  void setMode(Mode mode) { mode_ = mode; }
  // Queries held back in Mode::Hold, not yet sent.
  int held() const { return held_count_.load(); }
  // Queries answered or refused so far (any name, any type).
  int queries() const { return queries_.load(); }
  int queriesFor(const std::string& name) const;

 private:
  void serve();
  std::string answer(const std::string& query);

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{Mode::Answer};
  std::atomic<int> queries_{0};
  std::atomic<int> held_count_{0};
  mutable std::mutex mu_;
  struct Entry {
    std::vector<std::string> addresses;
    uint32_t ttl = 30;
  };
  std::map<std::string, Entry> names_;
  std::map<std::string, int> asked_;
  std::thread thread_;
};

}  // namespace courier::test
