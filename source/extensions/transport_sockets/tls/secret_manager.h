// SDS: TLS certificates and validation contexts that arrive by name (Envoy's
// Secret) from the bootstrap's static_resources.secrets, over ADS or from a
// watched file, instead of inline in a TLS context. Every user of one name
// from one source shares one subscription and one SecretProvider; a changed
// secret is checked once, then every TLS context using it is rebuilt on the
// main thread and swapped in, or the update is refused whole (NACK).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "source/common/config/subscription.h"
#include "source/common/stats/store.h"

namespace courier::tls {

using envoy::extensions::transport_sockets::tls::v3::Secret;

// sds.<secret name>.* as Envoy names them.
struct SdsStats {
  SdsStats(stats::Store& store, const std::string& prefix);
  stats::Counter& update_attempt;
  stats::Counter& update_success;
  stats::Counter& update_rejected;
  stats::Counter& update_failure;
  stats::Counter& init_fetch_timeout;
  stats::Gauge& version;
};

// One named secret as its users see it. Main thread only.
class SecretProvider {
 public:
  explicit SecretProvider(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  // nullptr until the first good secret arrived.
  const std::shared_ptr<const Secret>& secret() const { return secret_; }

  // Whether the first fetch ended (a secret arrived, was refused, or the
  // fetch failed or timed out): a listener using it stops warming then.
  bool warm() const { return warm_; }
  // Runs `cb` once warm (at once when already).
  void onWarm(std::function<void()> cb);

  // A user's part of an update: builds what it needs from the new secret
  // without publishing it, and returns the step that publishes it, or an
  // error that refuses the whole update.
  using Prepare = std::function<absl::StatusOr<std::function<void()>>(const Secret& secret)>;
  // `owner` is the user's lifetime: once it expired the callback is dropped.
  void addUpdateCallback(std::weak_ptr<const void> owner, Prepare prepare);

 private:
  friend class SecretManager;
  // Every live user prepares, then all publish; nothing changes on an error.
  absl::Status update(std::shared_ptr<const Secret> secret);
  void setWarm();

  const std::string name_;
  std::shared_ptr<const Secret> secret_;
  bool warm_ = false;
  std::vector<std::function<void()>> on_warm_;
  std::vector<std::pair<std::weak_ptr<const void>, Prepare>> callbacks_;
};

// Main thread. Owns the static secrets and the SDS subscriptions.
class SecretManager {
 public:
  // Returns nullptr when subscriptions are only checked (--mode validate).
  using SubscriptionFactory = config::SubscriptionFactory;

  // A secret for /config_dump (private keys already redacted).
  struct Dump {
    std::string name;
    std::string version_info;
    google::protobuf::Timestamp last_updated;
    Secret secret;
  };

  explicit SecretManager(stats::Store& stats);
  ~SecretManager();

  // Bootstrap static_resources.secrets; errors name static_resources.secrets[i].
  absl::Status addStaticSecrets(const google::protobuf::RepeatedPtrField<Secret>& secrets);

  // Subscriptions asked for before this (static clusters are built before
  // the ADS client exists) are made now, in the order they were asked for.
  absl::Status setSubscriptionFactory(SubscriptionFactory factory);

  // The provider for an SdsSecretConfig: a static secret when it has no
  // sds_config, else the subscription for (name, sds_config), made on first
  // use. `field_path` names the SdsSecretConfig in errors.
  absl::StatusOr<std::shared_ptr<SecretProvider>> provider(
      const envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig& config, const std::string& field_path);

  std::vector<Dump> staticDumps() const;
  // Accepted SDS secrets, by name.
  std::vector<Dump> dynamicDumps() const;
  // Secrets asked for that have not arrived yet, by name (only `name` is set).
  std::vector<std::string> warmingNames() const;
  size_t subscriptionCount() const { return subscriptions_.size(); }

 private:
  class Subscription;
  // Drops subscriptions no TLS context uses any more, except `keep`'s.
  void sweep(const std::string& keep);

  stats::Store& stats_;
  SubscriptionFactory factory_;
  absl::flat_hash_map<std::string, std::shared_ptr<SecretProvider>> static_;
  std::vector<Dump> static_dumps_;
  // Keyed by secret name and the serialized config source.
  absl::flat_hash_map<std::string, std::unique_ptr<Subscription>> subscriptions_;
  // Asked for before the factory was set, in order: key and field path.
  std::vector<std::pair<std::string, std::string>> deferred_;
};

// The secret as /config_dump shows it: private keys, passwords, session
// ticket keys and generic secrets given inline read "[redacted]", as Envoy's.
Secret redactSecret(const Secret& secret);

// Whether a secret would load: errors name `secret "<name>": <field>`.
absl::Status checkSecret(const Secret& secret);

}  // namespace courier::tls
