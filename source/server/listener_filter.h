// Listener filters (envoy.filters.listener.*): they run on an accepted socket
// before its filter chain is chosen, look at the first bytes the peer sent
// without consuming them (MSG_PEEK), and record what they found (TLS, SNI,
// ALPN, HTTP version) for filter_chain_match.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "source/server/filter_config.h"

namespace courier::server {

// What the listener filters found about a connection.
struct ListenerFilterState {
  std::string server_name;
  // Empty until a filter detects one ("tls"); chain matching then uses "raw_buffer".
  std::string transport_protocol;
  std::vector<std::string> application_protocols;
};

enum class ListenerFilterStatus {
  Continue,      // done with this socket: the next filter runs
  NeedMoreData,  // call again once more bytes arrived
  Close,         // close the socket (counted by the filter)
};

// Shared by every worker: keeps no per-connection state, everything a call
// needs is in its arguments, so one object serves all sockets.
class ListenerFilter {
 public:
  virtual ~ListenerFilter() = default;
  // The most bytes it ever looks at.
  virtual size_t maxReadBytes() const = 0;
  // `data` is everything the peer sent so far (at most maxReadBytes()).
  // With data.size() == maxReadBytes() it must not ask for more.
  virtual ListenerFilterStatus onData(std::string_view data, ListenerFilterState& state) const = 0;
};
using ListenerFilterConstSharedPtr = std::shared_ptr<const ListenerFilter>;

// A listener filter's filter_disabled (ListenerFilterChainMatchPredicate):
// when it matches a connection, that filter is skipped for it.
struct ListenerFilterPredicate {
  enum class Kind { Any, Or, And, Not, DestinationPortRange };
  Kind kind = Kind::Any;
  std::vector<ListenerFilterPredicate> rules;  // Or, And: 2 or more; Not: 1
  int32_t start = 0;                            // DestinationPortRange: [start, end)
  int32_t end = 0;

  bool matches(uint16_t destination_port) const {
    switch (kind) {
      case Kind::Any:
        return true;
      case Kind::Or:
        for (const auto& r : rules) {
          if (r.matches(destination_port)) return true;
        }
        return false;
      case Kind::And:
        for (const auto& r : rules) {
          if (!r.matches(destination_port)) return false;
        }
        return true;
      case Kind::Not:
        return !rules.front().matches(destination_port);
      case Kind::DestinationPortRange:
        return destination_port >= start && destination_port < end;
    }
    return false;
  }
};

// A listener filter as configured on one listener.
struct ListenerFilterEntry {
  ListenerFilterConstSharedPtr filter;
  // Null: never disabled.
  std::shared_ptr<const ListenerFilterPredicate> disabled;
};

class ListenerFilterConfigFactory {
 public:
  virtual ~ListenerFilterConfigFactory() = default;
  // "envoy.filters.listener.tls_inspector".
  virtual std::string name() const = 0;
  // "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector".
  virtual std::string configType() const = 0;
  // typed_config may be empty (a listener filter given by name only).
  virtual absl::StatusOr<ListenerFilterConstSharedPtr> createFilter(const google::protobuf::Any& typed_config,
                                                                    FactoryContext& context,
                                                                    const std::string& field_path) = 0;
};

}  // namespace courier::server
