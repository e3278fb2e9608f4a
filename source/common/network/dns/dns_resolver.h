// Asynchronous DNS lookups on one dispatcher (the main thread) with c-ares:
// c-ares' sockets are watched as FileEvents and its timeouts run on a Timer,
// so a lookup never blocks the loop. /etc/hosts and resolv.conf are read the
// way c-ares reads them; explicit resolvers (typed_dns_resolver_config) win.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/address.h"

struct ares_channeldata;
struct ares_addrinfo;

namespace courier::network {

// Envoy's Cluster.DnsLookupFamily.
enum class DnsLookupFamily { Auto, V4Only, V6Only, V4Preferred, All };

struct DnsResponse {
  Address address;  // port 0
  std::chrono::seconds ttl{0};
};

struct DnsResolverOptions {
  // Name servers to ask instead of resolv.conf's (port included).
  std::vector<Address> resolvers;
  // Use `resolvers` only when resolv.conf names none.
  bool use_resolvers_as_fallback = false;
  bool use_tcp = false;
  bool no_default_search_domain = false;
};

class DnsResolver {
 public:
  enum class Status { Success, Failure };
  // Runs on the resolver's dispatcher; on Failure `responses` is empty.
  // Success with no addresses means the name exists without such records.
  using Callback = std::function<void(Status status, std::vector<DnsResponse>&& responses)>;

  // A lookup in flight; cancel() means the callback will not run.
  class Query {
   public:
    virtual ~Query() = default;
    virtual void cancel() = 0;
  };

  static absl::StatusOr<std::unique_ptr<DnsResolver>> create(event::Dispatcher& dispatcher,
                                                             const DnsResolverOptions& options);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // The callback may run before resolve() returns (e.g. /etc/hosts or a
  // literal address), in which case nullptr is returned.
  Query* resolve(const std::string& name, DnsLookupFamily family, Callback callback);

 private:
  class PendingQuery;
  struct SocketWatch {
    std::unique_ptr<event::FileEvent> event;
    bool read = false;
    bool write = false;
  };

  explicit DnsResolver(event::Dispatcher& dispatcher);
  static void onSocketState(void* data, int fd, int readable, int writable);
  void onSocketReady(int fd, uint32_t events);
  // After anything that may have changed c-ares' timeouts.
  void updateTimer();
  void onTimer();

  event::Dispatcher& dispatcher_;
  ares_channeldata* channel_ = nullptr;
  std::unique_ptr<event::Timer> timer_;
  absl::flat_hash_map<int, SocketWatch> sockets_;
  std::list<std::unique_ptr<PendingQuery>> pending_;
  // Lets completions posted to the dispatcher notice the resolver is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  friend class PendingQuery;
};

}  // namespace courier::network
