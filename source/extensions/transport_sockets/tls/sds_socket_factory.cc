#include "source/extensions/transport_sockets/tls/sds_socket_factory.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "source/extensions/transport_sockets/tls/ssl_socket.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::CommonTlsContext;
using envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
using envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;

// What a connection gets while its TLS context has no secret yet: the
// handshake fails at once, and says why.
class NoSecretSocket : public network::TransportSocket {
 public:
  void setFd(int) override {}
  network::TransportIoResult doRead(buffer::Buffer&, size_t) override { return failed(); }
  network::TransportIoResult doWrite(buffer::Buffer&) override { return failed(); }
  void shutdownWrite() override {}
  bool handshakeComplete() const override { return false; }
  std::string_view nextProtocol() const override { return {}; }
  std::string_view serverName() const override { return {}; }
  std::string failureReason() const override { return "the TLS context's SDS secrets have not arrived"; }

 private:
  static network::TransportIoResult failed() {
    network::TransportIoResult result;
    result.close = true;
    return result;
  }
};

using Builder = std::function<absl::StatusOr<std::shared_ptr<const TlsContext>>(const CommonTlsContext& common)>;

// A TLS context's SDS references, the context they fill in, and how to
// build an SSL_CTX from the result. Owned by its factory.
struct SdsBinding {
  CommonTlsContext common;  // as configured, SDS references included
  std::string common_path;
  std::vector<std::shared_ptr<SecretProvider>> certificates;
  std::shared_ptr<SecretProvider> validation;
  bool combined = false;
  Builder build;
};

// Fills `common` in from the secrets, `changed` reading as `next`. False when
// a secret has not arrived yet.
absl::StatusOr<bool> inlineSecrets(const SdsBinding& binding, CommonTlsContext& common,
                                   const SecretProvider* changed, const Secret* next) {
  auto current = [&](const SecretProvider& p) -> const Secret* {
    return &p == changed ? next : p.secret().get();
  };
  for (size_t i = 0; i < binding.certificates.size(); ++i) {
    const Secret* secret = current(*binding.certificates[i]);
    if (secret == nullptr) return false;
    if (!secret->has_tls_certificate()) {
      return fieldError(absl::StrCat(binding.common_path, ".tls_certificate_sds_secret_configs[", i, "]"),
                        absl::StrCat("secret \"", secret->name(), "\" is not a tls_certificate"));
    }
    *common.add_tls_certificates() = secret->tls_certificate();
  }
  common.clear_tls_certificate_sds_secret_configs();
  if (binding.validation != nullptr) {
    const Secret* secret = current(*binding.validation);
    if (secret == nullptr) return false;
    const std::string field = binding.combined
                                  ? binding.common_path + ".combined_validation_context.validation_context_sds_secret_config"
                                  : binding.common_path + ".validation_context_sds_secret_config";
    if (!secret->has_validation_context()) {
      return fieldError(field, absl::StrCat("secret \"", secret->name(), "\" is not a validation_context"));
    }
    // Combined: the static default, with the secret's fields over it.
    envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext merged;
    if (binding.combined) merged = common.combined_validation_context().default_validation_context();
    merged.MergeFrom(secret->validation_context());
    common.clear_combined_validation_context();
    common.clear_validation_context_sds_secret_config();
    *common.mutable_validation_context() = std::move(merged);
  }
  return true;
}

// Resolves the references of `common` and builds the factory; the first
// context is built now when every secret is there.
absl::StatusOr<std::shared_ptr<SwappableSslSocketFactory>> bindSecrets(
    const CommonTlsContext& common, const std::string& common_path, SecretManager* secrets, Builder build,
    std::vector<std::shared_ptr<SecretProvider>>* warm_on) {
  if (secrets == nullptr) return fieldError(common_path, "SDS is not available here");
  auto binding = std::make_shared<SdsBinding>();
  binding->common = common;
  binding->common_path = common_path;
  binding->build = std::move(build);
  if (common.tls_certificates_size() > 0 && common.tls_certificate_sds_secret_configs_size() > 0) {
    return fieldError(common_path + ".tls_certificate_sds_secret_configs",
                      "cannot be combined with inline tls_certificates");
  }
  for (int i = 0; i < common.tls_certificate_sds_secret_configs_size(); ++i) {
    auto provider = secrets->provider(common.tls_certificate_sds_secret_configs(i),
                                      absl::StrCat(common_path, ".tls_certificate_sds_secret_configs[", i, "]"));
    if (!provider.ok()) return provider.status();
    binding->certificates.push_back(std::move(*provider));
  }
  if (common.has_validation_context_sds_secret_config()) {
    auto provider = secrets->provider(common.validation_context_sds_secret_config(),
                                      common_path + ".validation_context_sds_secret_config");
    if (!provider.ok()) return provider.status();
    binding->validation = std::move(*provider);
  } else if (common.has_combined_validation_context()) {
    const auto& combined = common.combined_validation_context();
    const std::string cpath = common_path + ".combined_validation_context";
    if (!combined.has_validation_context_sds_secret_config()) {
      return fieldError(cpath + ".validation_context_sds_secret_config", "is required");
    }
    auto provider = secrets->provider(combined.validation_context_sds_secret_config(),
                                      cpath + ".validation_context_sds_secret_config");
    if (!provider.ok()) return provider.status();
    binding->validation = std::move(*provider);
    binding->combined = true;
  }

  auto factory = std::make_shared<SwappableSslSocketFactory>();
  CommonTlsContext resolved = binding->common;
  auto ready = inlineSecrets(*binding, resolved, nullptr, nullptr);
  if (!ready.ok()) return ready.status();
  if (*ready) {
    auto context = binding->build(resolved);
    if (!context.ok()) return context.status();
    factory->setContext(std::move(*context));
  }

  std::vector<SecretProvider*> distinct;
  auto all = binding->certificates;
  if (binding->validation != nullptr) all.push_back(binding->validation);
  for (const auto& provider : all) {
    if (std::find(distinct.begin(), distinct.end(), provider.get()) != distinct.end()) continue;
    distinct.push_back(provider.get());
    if (warm_on != nullptr) warm_on->push_back(provider);
    std::weak_ptr<SwappableSslSocketFactory> weak = factory;
    SdsBinding* raw = binding.get();
    SecretProvider* changed = provider.get();
    provider->addUpdateCallback(
        weak, [weak, raw, changed](const Secret& next) -> absl::StatusOr<std::function<void()>> {
          auto held = weak.lock();
          if (held == nullptr) return std::function<void()>();
          CommonTlsContext common = raw->common;
          auto ready = inlineSecrets(*raw, common, changed, &next);
          if (!ready.ok()) return ready.status();
          if (!*ready) return std::function<void()>();  // the others have not arrived yet
          auto context = raw->build(common);
          if (!context.ok()) return context.status();
          return std::function<void()>([held, context = std::move(*context)] { held->setContext(context); });
        });
  }
  // The binding lives as long as the factory; its callbacks find it through the factory.
  factory->keep(std::move(binding));
  return factory;
}

}  // namespace

bool usesSds(const CommonTlsContext& common) {
  return common.tls_certificate_sds_secret_configs_size() > 0 || common.has_validation_context_sds_secret_config() ||
         (common.has_combined_validation_context() &&
          common.combined_validation_context().has_validation_context_sds_secret_config());
}

std::unique_ptr<network::TransportSocket> SwappableSslSocketFactory::createTransportSocket() const {
  auto current = context();
  if (current == nullptr) return std::make_unique<NoSecretSocket>();
  return std::make_unique<SslSocket>(std::move(current));
}

absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createSdsServerFactory(
    const DownstreamTlsContext& config, const std::string& path, SecretManager* secrets,
    std::vector<std::shared_ptr<SecretProvider>>* warm_on, stats::Store& store, const std::string& stat_prefix) {
  Builder build = [config, path, &store, stat_prefix](
                      const CommonTlsContext& common) -> absl::StatusOr<std::shared_ptr<const TlsContext>> {
    DownstreamTlsContext resolved = config;
    *resolved.mutable_common_tls_context() = common;
    auto context = ServerContext::create(resolved, path, store, stat_prefix);
    if (!context.ok()) return context.status();
    return std::shared_ptr<const TlsContext>(std::move(*context));
  };
  auto factory = bindSecrets(config.common_tls_context(), path + ".common_tls_context", secrets, std::move(build), warm_on);
  if (!factory.ok()) return factory.status();
  return network::TransportSocketFactoryConstSharedPtr(std::move(*factory));
}

absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createSdsClientFactory(
    const UpstreamTlsContext& config, const std::string& path, SecretManager* secrets, stats::Store& store,
    const std::string& stat_prefix, std::vector<std::shared_ptr<SecretProvider>>* warm_on) {
  Builder build = [config, path, &store, stat_prefix](
                      const CommonTlsContext& common) -> absl::StatusOr<std::shared_ptr<const TlsContext>> {
    UpstreamTlsContext resolved = config;
    *resolved.mutable_common_tls_context() = common;
    auto context = ClientContext::create(resolved, path, store, stat_prefix);
    if (!context.ok()) return context.status();
    return std::shared_ptr<const TlsContext>(std::move(*context));
  };
  auto factory = bindSecrets(config.common_tls_context(), path + ".common_tls_context", secrets, std::move(build), warm_on);
  if (!factory.ok()) return factory.status();
  return network::TransportSocketFactoryConstSharedPtr(std::move(*factory));
}

}  // namespace courier::tls
