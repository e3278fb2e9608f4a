#include "source/server/listener_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace courier::server {

ListenerStats::ListenerStats(stats::Store& store, const std::string& prefix)
    : downstream_cx_total(store.counter(absl::StrCat(prefix, ".downstream_cx_total"))),
      downstream_cx_destroy(store.counter(absl::StrCat(prefix, ".downstream_cx_destroy"))),
      downstream_cx_active(store.gauge(absl::StrCat(prefix, ".downstream_cx_active"))),
      no_filter_chain_match(store.counter(absl::StrCat(prefix, ".no_filter_chain_match"))),
      downstream_pre_cx_timeout(store.counter(absl::StrCat(prefix, ".downstream_pre_cx_timeout"))),
      downstream_pre_cx_active(store.gauge(absl::StrCat(prefix, ".downstream_pre_cx_active"))),
      downstream_listener_filter_remote_close(
          store.counter(absl::StrCat(prefix, ".downstream_listener_filter_remote_close"))),
      downstream_listener_filter_error(store.counter(absl::StrCat(prefix, ".downstream_listener_filter_error"))) {}

std::string listenerStatPrefix(const network::Address& address, const std::string& stat_prefix) {
  if (!stat_prefix.empty()) return absl::StrCat("listener.", stat_prefix);
  // Envoy keeps the address but swaps ':' for '_' so the name stays one token.
  return absl::StrCat("listener.", absl::StrReplaceAll(address.asString(), {{":", "_"}}));
}

}  // namespace courier::server
