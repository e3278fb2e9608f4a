#include "test/test_common/dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace courier::test {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAAAA = 28;

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xffff));
}

uint16_t get16(const std::string& s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) | static_cast<uint8_t>(s[at + 1]));
}

}  // namespace

DnsServer::DnsServer() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

DnsServer::~DnsServer() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
}

void DnsServer::set(const std::string& name, const std::vector<std::string>& addresses, uint32_t ttl) {
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
  std::lock_guard<std::mutex> lock(mu_);
  if (addresses.empty()) {
    names_.erase(key);
  } else {
    names_[key] = Entry{addresses, ttl};
  }
}

int DnsServer::queriesFor(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = asked_.find(name);
  return it == asked_.end() ? 0 : it->second;
}

void DnsServer::serve() {
  char buf[1500];
  struct Held {
    std::string query;
    sockaddr_storage from;
    socklen_t from_len;
  };
  std::vector<Held> held;
  while (!stop_) {
    if (!held.empty() && mode_.load() != Mode::Hold) {
      // Answered as the mode now says, so a release into ServFail fails them.
      for (auto& h : held) {
        const std::string reply = answer(h.query);
        if (reply.empty()) continue;
        ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&h.from), h.from_len);
      }
      held.clear();
      held_count_ = 0;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) continue;
    if (mode_.load() == Mode::Hold) {
      held.push_back(Held{std::string(buf, static_cast<size_t>(n)), from, from_len});
      held_count_ = static_cast<int>(held.size());
      continue;
    }
    std::string reply = answer(std::string(buf, static_cast<size_t>(n)));
    if (reply.empty()) continue;
    ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
  }
}

std::string DnsServer::answer(const std::string& query) {
  if (query.size() < 12 || get16(query, 4) != 1) return "";
  // The question: labels up to the root, then type and class.
  size_t at = 12;
  std::string name;
  while (at < query.size()) {
    const auto len = static_cast<uint8_t>(query[at]);
    if (len == 0 || (len & 0xc0) != 0) break;
    if (at + 1 + len > query.size()) return "";
    if (!name.empty()) name.push_back('.');
    name.append(query, at + 1, len);
    at += 1 + len;
  }
  if (at + 5 > query.size() || query[at] != 0) return "";
  const size_t question_end = at + 5;
  const uint16_t qtype = get16(query, at + 1);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  queries_.fetch_add(1);
  const Mode mode = mode_.load();
  std::vector<std::string> rdatas;
  uint32_t ttl = 0;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++asked_[name];
    auto it = names_.find(name);
    if (it != names_.end()) {
      known = true;
      ttl = it->second.ttl;
      for (const auto& ip : it->second.addresses) {
        in6_addr a6{};
        in_addr a4{};
        if (qtype == kTypeA && inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
          rdatas.emplace_back(reinterpret_cast<const char*>(&a4), 4);
        } else if (qtype == kTypeAAAA && inet_pton(AF_INET6, ip.c_str(), &a6) == 1) {
          rdatas.emplace_back(reinterpret_cast<const char*>(&a6), 16);
        }
      }
    }
  }
  if (mode == Mode::Silent) return "";
  uint16_t rcode = 0;
  if (mode == Mode::ServFail) {
    rcode = 2;
    rdatas.clear();
  } else if (!known) {
    rcode = 3;  // NXDOMAIN
  }
  std::string out;
  put16(out, get16(query, 0));                                  // id
  put16(out, static_cast<uint16_t>(0x8400 | (get16(query, 2) & 0x0100) | 0x0080 | rcode));  // QR AA RD RA
  put16(out, 1);
  put16(out, static_cast<uint16_t>(rdatas.size()));
  put16(out, 0);
  put16(out, 0);
  out.append(query, 12, question_end - 12);
  for (const auto& rdata : rdatas) {
    put16(out, 0xc00c);  // the question's name
    put16(out, qtype);
    put16(out, 1);  // IN
    put32(out, ttl);
    put16(out, static_cast<uint16_t>(rdata.size()));
    out += rdata;
  }
  return out;
}

}  // namespace courier::test
