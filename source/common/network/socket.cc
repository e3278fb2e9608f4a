#include "source/common/network/socket.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace courier::network {

SocketFd::~SocketFd() {
  if (fd_ >= 0) ::close(fd_);
}

SocketFd& SocketFd::operator=(SocketFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

absl::StatusOr<SocketFd> listenOn(const Address& address, bool reuse_port, int backlog, bool listen) {
  SocketFd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (address.family() == AF_INET6) {
    // Envoy binds "::" dual-stack unless ipv4_compat says otherwise; v6-only
    // is the predictable default for an explicit v6 address.
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd.get(), address.sockAddr(), address.length()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", address.asString(), ": ", std::strerror(errno)));
  }
  if (listen && ::listen(fd.get(), backlog) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address.asString(), ": ", std::strerror(errno)));
  }
  return fd;
}

absl::StatusOr<SocketFd> connectTo(const Address& address) {
  SocketFd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
  setNoDelay(fd.get());
  if (::connect(fd.get(), address.sockAddr(), address.length()) != 0 && errno != EINPROGRESS) {
    return absl::UnavailableError(absl::StrCat("connect ", address.asString(), ": ", std::strerror(errno)));
  }
  return fd;
}

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace courier::network
