// Shared pieces of the HTTP integration tests: upstream servers that answer
// in known ways, raw-socket clients that read one response at a time, and the
// start of an HTTP connection manager listener config.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {

// Reads one request (headers + content-length body) from fd; false on EOF.
inline bool readRequest(int fd, std::string& buffered, std::string& request) {
  char buf[8192];
  while (true) {
    size_t end = buffered.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t body = 0;
      size_t cl = buffered.find("content-length: ");
      if (cl == std::string::npos) cl = buffered.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) body = std::stoul(buffered.substr(cl + 16));
      if (buffered.size() >= end + 4 + body) {
        request = buffered.substr(0, end + 4 + body);
        buffered.erase(0, end + 4 + body);
        return true;
      }
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffered.append(buf, static_cast<size_t>(n));
  }
}

inline void sendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// An upstream answering every request with "<name> <request line>" plus the
// request body length, keep-alive.
inline TcpServer::Handler namedUpstream(std::string name) {
  return [name](int fd) {
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) {
      std::string line = request.substr(0, request.find("\r\n"));
      size_t head = request.find("\r\n\r\n") + 4;
      std::string body = name + " " + line + " body=" + std::to_string(request.size() - head);
      if (request.find("x-request-id: ") != std::string::npos) body += " rid";
      if (request.find("expect: ") != std::string::npos) body += " expect";
      if (request.find("host: backend.internal\r\n") != std::string::npos) body += " hostname";
      if (request.find("x-envoy-internal: true\r\n") != std::string::npos) body += " internal";
      if (request.find("x-forwarded-for: 127.0.0.1\r\n") != std::string::npos) body += " xff";
      sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  };
}

// An upstream answering every request with the request's head as the body,
// so tests can see exactly which headers arrived.
inline TcpServer::Handler echoHeadersUpstream() {
  return [](int fd) {
    std::string buffered, request;
    while (readRequest(fd, buffered, request)) {
      std::string head = request.substr(0, request.find("\r\n\r\n") + 4);
      sendAll(fd, "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(head.size()) + "\r\n\r\n" + head);
    }
  };
}

// Reads a request and never answers, holding the connection until stop.
inline TcpServer::Handler silentUpstream(std::atomic<bool>& stop) {
  return [&stop](int fd) {
    std::string buffered, request;
    readRequest(fd, buffered, request);
    pollfd p{fd, POLLIN, 0};
    while (!stop && ::poll(&p, 1, 50) == 0) {
    }
  };
}

// A static_resources.clusters entry: one STATIC endpoint on 127.0.0.1.
inline std::string staticCluster(const std::string& name, uint16_t port) {
  return "  - name: " + name + R"(
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: )" + name + R"(
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(port) + "}}}\n";
}

// Admin and an HTTP connection manager listener "http" up to its stat_prefix;
// callers append HCM fields (hcm_extra first) and the route config.
inline std::string hcmListener(const std::string& hcm_extra) {
  return R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
)" + hcm_extra;
}

struct Raw {
  explicit Raw(uint16_t port) : client(port) {}
  // Sends request bytes and reads one response (headers + content-length body).
  std::string roundTrip(const std::string& request) {
    client.write(request);
    return readResponse();
  }
  std::string readResponse() {
    std::string got;
    while (true) {
      size_t end = got.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = got.find("content-length: ");
        size_t body = (cl != std::string::npos && cl < end) ? std::stoul(got.substr(cl + 16)) : 0;
        if (got.size() >= end + 4 + body) return got;
      }
      std::string more = client.readExactly(1);
      if (more.empty()) return got;
      got += more;
    }
  }
  TcpClient client;
};

// The first answer of a listener whose server is still initializing: its port
// refuses connections until then, so this retries (bounded) and sends the
// request on the first connection accepted. Status 0 when none came.
inline HttpResponse firstAnswer(uint16_t port, const std::string& path = "/") {
  HttpResponse r;
  waitFor([&] {
    r = httpRequest(port, "GET", path);
    return r.status != 0;
  });
  return r;
}

inline std::string get(const std::string& host, const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nhost: " + host + "\r\n" + extra + "\r\n";
}

}  // namespace courier::test
