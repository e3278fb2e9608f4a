// Thin helpers over BSD sockets: listening sockets with SO_REUSEPORT (one per
// worker), non-blocking client sockets, and socket options from config.
#pragma once

#include "absl/status/statusor.h"
#include "source/common/network/address.h"

namespace courier::network {

// Owns a file descriptor; closes it on destruction.
class SocketFd {
 public:
  SocketFd() = default;
  explicit SocketFd(int fd) : fd_(fd) {}
  ~SocketFd();
  SocketFd(SocketFd&& o) noexcept : fd_(o.release()) {}
  SocketFd& operator=(SocketFd&& o) noexcept;
  SocketFd(const SocketFd&) = delete;
  SocketFd& operator=(const SocketFd&) = delete;

  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// A bound, listening, non-blocking socket. With `listen` false it is only
// bound (connections are refused) until the owner calls ::listen() itself.
absl::StatusOr<SocketFd> listenOn(const Address& address, bool reuse_port, int backlog, bool listen = true);
// A non-blocking socket with connect() started; EINPROGRESS is success.
absl::StatusOr<SocketFd> connectTo(const Address& address);
void setNoDelay(int fd);

}  // namespace courier::network
