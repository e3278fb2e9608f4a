#include "source/common/network/dns/dns_resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/ioctl.h>

#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace courier::network {
namespace {

std::once_flag ares_library_once;

}  // namespace

// One getaddrinfo (or two, when a family falls back to the other one).
class DnsResolver::PendingQuery : public DnsResolver::Query {
 public:
  PendingQuery(DnsResolver& parent, std::string name, DnsLookupFamily family, Callback cb)
      : parent_(parent), name_(std::move(name)), family_(family), callback_(std::move(cb)) {}

  void cancel() override { cancelled_ = true; }

  void start() {
    int af = AF_UNSPEC;
    switch (family_) {
      case DnsLookupFamily::V4Only:
        af = AF_INET;
        break;
      case DnsLookupFamily::V6Only:
        af = AF_INET6;
        break;
      case DnsLookupFamily::Auto:  // IPv6 first, IPv4 when there is none
        af = fallback_ ? AF_INET : AF_INET6;
        break;
      case DnsLookupFamily::V4Preferred:
        af = fallback_ ? AF_INET6 : AF_INET;
        break;
      case DnsLookupFamily::All:
        af = AF_UNSPEC;
        break;
    }
    ares_addrinfo_hints hints{};
    hints.ai_family = af;
    // No sorting: it would connect() a UDP socket per address to rank routes.
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(parent_.channel_, name_.c_str(), nullptr, &hints, &PendingQuery::onResult, this);
  }

  bool done() const { return done_; }
  bool cancelled() const { return cancelled_; }

 private:
  static void onResult(void* arg, int status, int, ares_addrinfo* result) {
    static_cast<PendingQuery*>(arg)->handle(status, result);
  }

  void handle(int status, ares_addrinfo* result) {
    std::vector<DnsResponse> responses;
    if (status == ARES_SUCCESS && result != nullptr) {
      for (ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
        sockaddr_storage ss{};
        std::memcpy(&ss, n->ai_addr, std::min<size_t>(n->ai_addrlen, sizeof(ss)));
        Address address = Address::fromSockaddr(ss, n->ai_addrlen);
        if (!address.valid()) continue;
        responses.push_back({address, std::chrono::seconds(std::max(0, n->ai_ttl))});
      }
    }
    if (result != nullptr) ares_freeaddrinfo(result);
    if (status == ARES_EDESTRUCTION) {
      done_ = true;
      return;
    }
    // As Envoy: "no such name" and "no such records" are answers, not failures.
    const bool answered = status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND;
    const bool may_fall_back = family_ == DnsLookupFamily::Auto || family_ == DnsLookupFamily::V4Preferred;
    if (answered && responses.empty() && may_fall_back && !fallback_ && !cancelled_) {
      fallback_ = true;
      start();
      return;
    }
    done_ = true;
    if (!cancelled_) {
      callback_(answered ? Status::Success : Status::Failure, std::move(responses));
    }
    parent_.dispatcher_.post([&parent = parent_, alive = parent_.alive_, this] {
      if (!*alive) return;
      parent.pending_.remove_if([this](const auto& q) { return q.get() == this; });
    });
  }

  DnsResolver& parent_;
  const std::string name_;
  const DnsLookupFamily family_;
  Callback callback_;
  bool cancelled_ = false;
  bool fallback_ = false;
  bool done_ = false;
};

DnsResolver::DnsResolver(event::Dispatcher& dispatcher)
    : dispatcher_(dispatcher), timer_(dispatcher.createTimer([this] { onTimer(); })) {}

DnsResolver::~DnsResolver() {
  *alive_ = false;
  for (auto& q : pending_) q->cancel();
  timer_->disable();
  // Runs the outstanding callbacks with ARES_EDESTRUCTION; they only mark done.
  if (channel_ != nullptr) ares_destroy(channel_);
  sockets_.clear();
}

absl::StatusOr<std::unique_ptr<DnsResolver>> DnsResolver::create(event::Dispatcher& dispatcher,
                                                                  const DnsResolverOptions& options) {
  std::call_once(ares_library_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  std::unique_ptr<DnsResolver> resolver(new DnsResolver(dispatcher));
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB;
  opts.sock_state_cb = &DnsResolver::onSocketState;
  opts.sock_state_cb_data = resolver.get();
  if (options.use_tcp) {
    opts.flags |= ARES_FLAG_USEVC;
    mask |= ARES_OPT_FLAGS;
  }
  if (options.no_default_search_domain) {
    opts.ndomains = 0;
    opts.domains = nullptr;
    mask |= ARES_OPT_DOMAINS;
  }
  if (int rc = ares_init_options(&resolver->channel_, &opts, mask); rc != ARES_SUCCESS) {
    resolver->channel_ = nullptr;
    return absl::InternalError(absl::StrCat("c-ares initialisation failed: ", ares_strerror(rc)));
  }
  if (!options.resolvers.empty()) {
    bool replace = true;
    if (options.use_resolvers_as_fallback) {
      // c-ares falls back to 127.0.0.1:53 when resolv.conf names no server.
      ares_addr_port_node* current = nullptr;
      ares_get_servers_ports(resolver->channel_, &current);
      replace = current == nullptr ||
                (current->next == nullptr && current->family == AF_INET &&
                 current->addr.addr4.s_addr == htonl(INADDR_LOOPBACK) &&
                 (current->udp_port == 0 || current->udp_port == 53));
      ares_free_data(current);
    }
    if (replace) {
      std::vector<ares_addr_port_node> nodes(options.resolvers.size());
      for (size_t i = 0; i < nodes.size(); ++i) {
        const Address& a = options.resolvers[i];
        auto& n = nodes[i];
        n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
        n.family = a.family();
        if (a.family() == AF_INET) {
          n.addr.addr4 = reinterpret_cast<const sockaddr_in*>(a.sockAddr())->sin_addr;
        } else {
          std::memcpy(&n.addr.addr6, &reinterpret_cast<const sockaddr_in6*>(a.sockAddr())->sin6_addr,
                      sizeof(n.addr.addr6));
        }
        n.udp_port = n.tcp_port = a.port();
      }
      if (int rc = ares_set_servers_ports(resolver->channel_, nodes.data()); rc != ARES_SUCCESS) {
        return absl::InvalidArgumentError(absl::StrCat("c-ares rejected the resolvers: ", ares_strerror(rc)));
      }
    }
  }
  return resolver;
}

DnsResolver::Query* DnsResolver::resolve(const std::string& name, DnsLookupFamily family, Callback callback) {
  auto query = std::make_unique<PendingQuery>(*this, name, family, std::move(callback));
  PendingQuery* raw = query.get();
  pending_.push_back(std::move(query));
  raw->start();
  updateTimer();
  return raw->done() ? nullptr : raw;
}

void DnsResolver::onSocketState(void* data, int fd, int readable, int writable) {
  auto* self = static_cast<DnsResolver*>(data);
  if (!readable && !writable) {
    self->sockets_.erase(fd);
    return;
  }
  auto& watch = self->sockets_[fd];
  watch.read = readable != 0;
  watch.write = writable != 0;
  if (watch.event == nullptr) {
    watch.event = self->dispatcher_.createFileEvent(fd, [self, fd](uint32_t events) { self->onSocketReady(fd, events); });
  }
}

void DnsResolver::onSocketReady(int fd, uint32_t events) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  const bool read = it->second.read && (events & (event::kRead | event::kClosed)) != 0;
  const bool write = it->second.write && (events & event::kWrite) != 0;
  ares_process_fd(channel_, read ? fd : ARES_SOCKET_BAD, write ? fd : ARES_SOCKET_BAD);
  // Edge-triggered: if a datagram is still queued, come back for it.
  it = sockets_.find(fd);
  if (read && it != sockets_.end()) {
    int queued = 0;
    if (ioctl(fd, FIONREAD, &queued) == 0 && queued > 0) it->second.event->activate(event::kRead);
  }
  updateTimer();
}

void DnsResolver::updateTimer() {
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    timer_->disable();
    return;
  }
  timer_->enable(std::chrono::milliseconds(tv.tv_sec * 1000 + tv.tv_usec / 1000));
}

void DnsResolver::onTimer() {
  ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  updateTimer();
}

}  // namespace courier::network
