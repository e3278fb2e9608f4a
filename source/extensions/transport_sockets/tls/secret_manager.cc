#include "source/extensions/transport_sockets/tls/secret_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "source/extensions/transport_sockets/tls/context.h"
#include "spdlog/spdlog.h"

namespace courier::tls {
namespace {

using envoy::config::core::v3::DataSource;

constexpr char kRedacted[] = "[redacted]";

void redact(DataSource* source) {
  if (source->has_inline_string()) {
    source->set_inline_string(kRedacted);
  } else if (source->has_inline_bytes()) {
    source->set_inline_bytes(kRedacted);
  }
}

}  // namespace

SdsStats::SdsStats(stats::Store& store, const std::string& prefix)
    : update_attempt(store.counter(prefix + "update_attempt")),
      update_success(store.counter(prefix + "update_success")),
      update_rejected(store.counter(prefix + "update_rejected")),
      update_failure(store.counter(prefix + "update_failure")),
      init_fetch_timeout(store.counter(prefix + "init_fetch_timeout")),
      version(store.gauge(prefix + "version")) {}

Secret redactSecret(const Secret& secret) {
  Secret out = secret;
  if (out.has_tls_certificate()) {
    auto* cert = out.mutable_tls_certificate();
    if (cert->has_private_key()) redact(cert->mutable_private_key());
    if (cert->has_password()) redact(cert->mutable_password());
    if (cert->has_pkcs12()) redact(cert->mutable_pkcs12());
  }
  if (out.has_session_ticket_keys()) {
    for (auto& key : *out.mutable_session_ticket_keys()->mutable_keys()) redact(&key);
  }
  if (out.has_generic_secret() && out.generic_secret().has_secret()) {
    redact(out.mutable_generic_secret()->mutable_secret());
  }
  return out;
}

absl::Status checkSecret(const Secret& secret) {
  const std::string prefix = absl::StrCat("secret \"", secret.name(), "\": ");
  absl::Status status;
  switch (secret.type_case()) {
    case Secret::kTlsCertificate:
      status = checkTlsCertificate(secret.tls_certificate(), "tls_certificate");
      break;
    case Secret::kValidationContext:
      status = checkValidationContext(secret.validation_context(), "validation_context");
      break;
    case Secret::kSessionTicketKeys:
    case Secret::kGenericSecret:
      // Kept and dumped; no TLS context here uses them yet.
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, "needs tls_certificate, validation_context, session_ticket_keys or generic_secret"));
  }
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
  return absl::OkStatus();
}

void SecretProvider::onWarm(std::function<void()> cb) {
  if (warm_) {
    cb();
  } else {
    on_warm_.push_back(std::move(cb));
  }
}

void SecretProvider::setWarm() {
  if (warm_) return;
  warm_ = true;
  auto callbacks = std::move(on_warm_);
  for (auto& cb : callbacks) cb();
}

void SecretProvider::addUpdateCallback(std::weak_ptr<const void> owner, Prepare prepare) {
  // Listeners replaced by LDS while the secret stayed the same leave theirs here.
  callbacks_.erase(std::remove_if(callbacks_.begin(), callbacks_.end(),
                                  [](const auto& entry) { return entry.first.expired(); }),
                   callbacks_.end());
  callbacks_.emplace_back(std::move(owner), std::move(prepare));
}

absl::Status SecretProvider::update(std::shared_ptr<const Secret> secret) {
  // Users whose listener or cluster is gone leave here.
  callbacks_.erase(std::remove_if(callbacks_.begin(), callbacks_.end(),
                                  [](const auto& entry) { return entry.first.expired(); }),
                   callbacks_.end());
  std::vector<std::shared_ptr<const void>> alive;
  std::vector<std::function<void()>> commits;
  for (auto& [owner, prepare] : callbacks_) {
    auto held = owner.lock();
    if (held == nullptr) continue;
    auto commit = prepare(*secret);
    if (!commit.ok()) return commit.status();
    alive.push_back(std::move(held));
    commits.push_back(std::move(*commit));
  }
  secret_ = std::move(secret);
  for (auto& commit : commits) {
    if (commit) commit();
  }
  return absl::OkStatus();
}

// One secret name from one source: the subscription and the provider its
// users share.
class SecretManager::Subscription : public config::SubscriptionCallbacks {
 public:
  Subscription(SecretManager& parent, std::string name, envoy::config::core::v3::ConfigSource source)
      : name_(std::move(name)),
        source_(std::move(source)),
        stats_(parent.stats_, absl::StrCat("sds.", name_, ".")),
        provider_(std::make_shared<SecretProvider>(name_)) {}

  const std::string& name() const { return name_; }
  const envoy::config::core::v3::ConfigSource& source() const { return source_; }
  const std::shared_ptr<SecretProvider>& provider() const { return provider_; }
  // Only the manager holds the provider: no TLS context uses it.
  bool unused() const { return provider_.use_count() == 1; }
  void setSubscription(std::unique_ptr<config::Subscription> s) { subscription_ = std::move(s); }
  config::Subscription* subscription() { return subscription_.get(); }
  bool hasSecret() const { return provider_->secret() != nullptr; }
  Dump dump() const { return Dump{name_, version_info_, last_updated_, redactSecret(*provider_->secret())}; }

  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                              const std::string& version_info) override {
    // A response naming other secrets only is no update of this one, as
    // Envoy delivers SDS watches only what they named.
    const config::DecodedResource* mine = nullptr;
    for (const auto& r : resources) {
      if (r.name == name_) mine = &r;
    }
    if (mine == nullptr) return absl::OkStatus();
    absl::Status status = apply(*mine, version_info);
    provider_->setWarm();
    return status;
  }

  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& added,
                              const std::vector<std::string>& removed, const std::string& system_version_info) override {
    for (const auto& r : added) {
      if (r.name == name_) return onConfigUpdate(added, r.version.empty() ? system_version_info : r.version);
    }
    if (std::find(removed.begin(), removed.end(), name_) != removed.end()) {
      // Envoy keeps serving the last secret of a removed resource.
      spdlog::warn("sds: secret '{}' was removed by the server; keeping the last one", name_);
    }
    return absl::OkStatus();
  }

  void onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) override {
    if (reason == config::UpdateFailureReason::FetchTimedOut) {
      stats_.init_fetch_timeout.inc();
      spdlog::warn("sds: secret '{}' did not arrive within initial_fetch_timeout; its users go on without it", name_);
    } else {
      stats_.update_attempt.inc();
      (reason == config::UpdateFailureReason::UpdateRejected ? stats_.update_rejected : stats_.update_failure).inc();
      spdlog::warn("sds: secret '{}': update failed, keeping the current one: {}", name_,
                   std::string(error.message()));
    }
    provider_->setWarm();
  }

 private:
  absl::Status reject(absl::Status status) {
    stats_.update_rejected.inc();
    spdlog::warn("sds: update rejected, the previous secret keeps serving: {}", std::string(status.message()));
    return status;
  }

  absl::Status apply(const config::DecodedResource& resource, const std::string& version_info) {
    stats_.update_attempt.inc();
    const auto* proto = dynamic_cast<const Secret*>(resource.resource.get());
    if (proto == nullptr) {
      return reject(absl::InvalidArgumentError(
          absl::StrCat("secret \"", name_, "\": not a ", Secret::descriptor()->full_name())));
    }
    if (auto status = checkSecret(*proto); !status.ok()) return reject(status);
    const auto& current = provider_->secret();
    if (current == nullptr || !google::protobuf::util::MessageDifferencer::Equals(*current, *proto)) {
      if (auto status = provider_->update(std::make_shared<const Secret>(*proto)); !status.ok()) {
        return reject(absl::Status(status.code(), absl::StrCat("secret \"", name_, "\": ", status.message())));
      }
      last_updated_ = google::protobuf::util::TimeUtil::GetCurrentTime();
      spdlog::info("sds: secret '{}' version '{}' applied", name_, version_info);
    }
    version_info_ = version_info;
    stats_.version.set(config::versionHash(version_info));
    stats_.update_success.inc();
    return absl::OkStatus();
  }

  const std::string name_;
  const envoy::config::core::v3::ConfigSource source_;
  SdsStats stats_;
  std::shared_ptr<SecretProvider> provider_;
  std::unique_ptr<config::Subscription> subscription_;
  std::string version_info_;
  google::protobuf::Timestamp last_updated_;
};

SecretManager::SecretManager(stats::Store& stats) : stats_(stats) {}

SecretManager::~SecretManager() = default;

absl::Status SecretManager::addStaticSecrets(const google::protobuf::RepeatedPtrField<Secret>& secrets) {
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  for (int i = 0; i < secrets.size(); ++i) {
    const Secret& secret = secrets[i];
    const std::string path = absl::StrCat("static_resources.secrets[", i, "]");
    if (secret.name().empty()) return absl::InvalidArgumentError(path + ".name: a secret needs a name");
    if (static_.contains(secret.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".name: duplicate static secret name \"", secret.name(), "\""));
    }
    if (auto status = checkSecret(secret); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
    }
    auto provider = std::make_shared<SecretProvider>(secret.name());
    provider->secret_ = std::make_shared<const Secret>(secret);
    provider->warm_ = true;
    static_.emplace(secret.name(), std::move(provider));
    static_dumps_.push_back(Dump{secret.name(), "", now, redactSecret(secret)});
  }
  return absl::OkStatus();
}

absl::Status SecretManager::setSubscriptionFactory(SubscriptionFactory factory) {
  factory_ = std::move(factory);
  auto deferred = std::move(deferred_);
  for (const auto& [key, field_path] : deferred) {
    auto it = subscriptions_.find(key);
    if (it == subscriptions_.end()) continue;
    Subscription& s = *it->second;
    auto made = factory_(s.source(), field_path + ".sds_config", config::type_url::kSecret, s);
    if (!made.ok()) return made.status();
    s.setSubscription(std::move(*made));
    if (s.subscription() != nullptr) s.subscription()->start({s.name()});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<SecretProvider>> SecretManager::provider(
    const envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig& config, const std::string& field_path) {
  if (config.name().empty()) return absl::InvalidArgumentError(field_path + ".name: must not be empty");
  if (!config.has_sds_config()) {
    auto it = static_.find(config.name());
    if (it == static_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(field_path, ".name: no static_resources.secrets entry named \"",
                                                     config.name(), "\" (and no sds_config to fetch it)"));
    }
    return it->second;
  }
  std::string key = config.name();
  key.push_back('\0');
  key += config.sds_config().SerializeAsString();
  sweep(key);
  auto it = subscriptions_.find(key);
  if (it != subscriptions_.end()) return it->second->provider();
  auto subscription = std::make_unique<Subscription>(*this, config.name(), config.sds_config());
  Subscription* raw = subscription.get();
  if (!factory_) {
    subscriptions_.emplace(key, std::move(subscription));
    deferred_.emplace_back(std::move(key), field_path);
    return raw->provider();
  }
  auto made = factory_(config.sds_config(), field_path + ".sds_config", config::type_url::kSecret, *raw);
  if (!made.ok()) return made.status();
  raw->setSubscription(std::move(*made));
  subscriptions_.emplace(std::move(key), std::move(subscription));
  // After it is stored: a file subscription delivers from start().
  if (raw->subscription() != nullptr) raw->subscription()->start({config.name()});
  return raw->provider();
}

void SecretManager::sweep(const std::string& keep) {
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    const bool deferred = std::any_of(deferred_.begin(), deferred_.end(),
                                      [&](const auto& d) { return d.first == it->first; });
    if (it->first != keep && !deferred && it->second->unused()) {
      spdlog::debug("sds: no TLS context uses secret '{}' any more; unsubscribing", it->second->name());
      subscriptions_.erase(it++);
    } else {
      ++it;
    }
  }
}

std::vector<SecretManager::Dump> SecretManager::staticDumps() const { return static_dumps_; }

std::vector<SecretManager::Dump> SecretManager::dynamicDumps() const {
  std::vector<Dump> out;
  for (const auto& [key, s] : subscriptions_) {
    if (s->hasSecret()) out.push_back(s->dump());
  }
  std::sort(out.begin(), out.end(), [](const Dump& a, const Dump& b) { return a.name < b.name; });
  return out;
}

std::vector<std::string> SecretManager::warmingNames() const {
  std::vector<std::string> out;
  for (const auto& [key, s] : subscriptions_) {
    if (!s->hasSecret()) out.push_back(s->name());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace courier::tls
