#include "source/common/network/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace courier::network {

absl::StatusOr<Address> Address::fromIpPort(const std::string& ip, uint32_t port) {
  if (port > 65535) return absl::InvalidArgumentError(absl::StrCat("port ", port, " is out of range (0..65535)"));
  Address a;
  auto* v4 = &a.storage_.v4;
  auto* v6 = &a.storage_.v6;
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    a.len_ = sizeof(sockaddr_in);
    return a;
  }
  std::memset(&a.storage_, 0, sizeof(a.storage_));
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    a.len_ = sizeof(sockaddr_in6);
    return a;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", ip, "\" is not an IPv4 or IPv6 address"));
}

Address Address::fromSockaddr(const sockaddr_storage& ss, socklen_t len) {
  Address a;
  // Anything but IPv4/IPv6 (a unix socket peer) is left invalid.
  if ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6) || len > sizeof(a.storage_)) return a;
  std::memcpy(&a.storage_, &ss, len);
  a.len_ = len;
  return a;
}

Address Address::localOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) return {};
  return fromSockaddr(ss, len);
}

Address Address::peerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) return {};
  return fromSockaddr(ss, len);
}

uint16_t Address::port() const {
  if (family() == AF_INET) return ntohs(storage_.v4.sin_port);
  if (family() == AF_INET6) return ntohs(storage_.v6.sin6_port);
  return 0;
}

std::string Address::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &storage_.v4.sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &storage_.v6.sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

std::string Address::asString() const {
  if (family() == AF_INET6) return absl::StrCat("[", ip(), "]:", port());
  return absl::StrCat(ip(), ":", port());
}

}  // namespace courier::network
