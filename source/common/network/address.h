// IPv4/IPv6 socket addresses as parsed from config (`socket_address`) and as
// printed in Envoy's stat names and admin output ("127.0.0.1:80", "[::1]:80").
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace courier::network {

class Address {
 public:
  Address() = default;
  // ip must be a literal IPv4 or IPv6 address.
  static absl::StatusOr<Address> fromIpPort(const std::string& ip, uint32_t port);
  static Address fromSockaddr(const sockaddr_storage& ss, socklen_t len);
  // The local and peer addresses of a connected or bound socket.
  static Address localOf(int fd);
  static Address peerOf(int fd);

  const struct sockaddr* sockAddr() const { return &storage_.sa; }
  socklen_t length() const { return len_; }
  int family() const { return storage_.sa.sa_family; }
  uint16_t port() const;
  std::string ip() const;
  // "1.2.3.4:80" or "[::1]:80".
  std::string asString() const;
  bool valid() const { return len_ != 0; }

 private:
  // IPv4 or IPv6 only: 28 bytes rather than sockaddr_storage's 128, as every
  // upstream host holds one (100k+ in a large mesh).
  union Storage {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  };
  Storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace courier::network
