// TLS socket factories whose certificates or validation context come from
// SDS secrets. The SSL_CTX is built on the main thread whenever a secret it
// uses changes and swapped in atomically: new handshakes use the new one at
// once, connections already open keep the SSL_CTX they started with.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "source/common/network/transport_socket.h"
#include "source/common/stats/store.h"
#include "source/extensions/transport_sockets/tls/context.h"
#include "source/extensions/transport_sockets/tls/secret_manager.h"

namespace courier::tls {

// Whether a CommonTlsContext names any secret by SDS.
bool usesSds(const envoy::extensions::transport_sockets::tls::v3::CommonTlsContext& common);

// A socket factory over the current context; until the secrets arrived
// (listener past initial_fetch_timeout, or a cluster) each socket fails its
// handshake with a reason saying so.
class SwappableSslSocketFactory : public network::TransportSocketFactory {
 public:
  std::unique_ptr<network::TransportSocket> createTransportSocket() const override;
  // Any thread.
  std::shared_ptr<const TlsContext> context() const { return std::atomic_load(&context_); }
  // Main thread.
  void setContext(std::shared_ptr<const TlsContext> context) { std::atomic_store(&context_, std::move(context)); }
  // What its update callbacks need, held for as long as the factory lives.
  void keep(std::shared_ptr<const void> state) { state_ = std::move(state); }

 private:
  std::shared_ptr<const TlsContext> context_;
  std::shared_ptr<const void> state_;
};

// A listener's DownstreamTlsContext with SDS references. `secrets` resolves
// them; the providers are appended to `warm_on` (when set), so the listener
// warms until each had its first fetch. Errors name `path`.
absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createSdsServerFactory(
    const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config, const std::string& path,
    SecretManager* secrets, std::vector<std::shared_ptr<SecretProvider>>* warm_on, stats::Store& store,
    const std::string& stat_prefix);

// A cluster's UpstreamTlsContext with SDS references; `warm_on` as above,
// for the cluster's warming.
absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createSdsClientFactory(
    const envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext& config, const std::string& path,
    SecretManager* secrets, stats::Store& store, const std::string& stat_prefix,
    std::vector<std::shared_ptr<SecretProvider>>* warm_on = nullptr);

}  // namespace courier::tls
