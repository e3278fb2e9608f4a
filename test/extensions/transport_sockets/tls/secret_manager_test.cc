// The secret manager without a network: a fake subscription factory records
// the callbacks, and the tests deliver secrets through them as ADS or a file
// would, checking sharing, refusal, the two-phase rebuild and the dumps.
#include "source/extensions/transport_sockets/tls/secret_manager.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/extensions/transport_sockets/tls/sds_socket_factory.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig;
using ::testing::HasSubstr;

// A self-signed P-256 certificate and its key, as PEM.
struct KeyPair {
  std::string cert;
  std::string key;
};

KeyPair makeKeyPair(const std::string& cn) {
  KeyPair out;
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x509 = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
  X509_gmtime_adj(X509_getm_notBefore(x509), 0);
  X509_gmtime_adj(X509_getm_notAfter(x509), 3600);
  X509_set_pubkey(x509, pkey);
  X509_NAME* name = X509_get_subject_name(x509);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x509, name);
  X509_sign(x509, pkey, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x509);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  out.cert.assign(data, static_cast<size_t>(len));
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  len = BIO_get_mem_data(bio, &data);
  out.key.assign(data, static_cast<size_t>(len));
  BIO_free(bio);
  X509_free(x509);
  EVP_PKEY_free(pkey);
  return out;
}

const KeyPair& one() {
  static const KeyPair* k = new KeyPair(makeKeyPair("one"));
  return *k;
}
const KeyPair& two() {
  static const KeyPair* k = new KeyPair(makeKeyPair("two"));
  return *k;
}

Secret certSecret(const std::string& name, const std::string& cert, const std::string& key) {
  Secret s;
  s.set_name(name);
  s.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string(cert);
  s.mutable_tls_certificate()->mutable_private_key()->set_inline_string(key);
  return s;
}

config::DecodedResource decoded(const Secret& secret) {
  config::DecodedResource r;
  r.name = secret.name();
  r.resource = std::make_unique<Secret>(secret);
  return r;
}

std::vector<config::DecodedResource> one_of(const Secret& secret) {
  std::vector<config::DecodedResource> v;
  v.push_back(decoded(secret));
  return v;
}

class FakeSubscription : public config::Subscription {
 public:
  void start(const absl::flat_hash_set<std::string>& names) override { started_names = names; }
  void updateResourceInterest(const absl::flat_hash_set<std::string>&) override {}
  absl::flat_hash_set<std::string> started_names;
};

SdsSecretConfig adsRef(const std::string& name) {
  SdsSecretConfig c;
  c.set_name(name);
  c.mutable_sds_config()->mutable_ads();
  return c;
}

class SecretManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(manager_
                    .setSubscriptionFactory([this](const envoy::config::core::v3::ConfigSource&, const std::string& path,
                                                   const std::string& type_url, config::SubscriptionCallbacks& cb)
                                                -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
                      EXPECT_EQ(type_url, config::type_url::kSecret);
                      paths_.push_back(path);
                      callbacks_.push_back(&cb);
                      return std::unique_ptr<config::Subscription>(std::make_unique<FakeSubscription>());
                    })
                    .ok());
  }
  uint64_t counter(const std::string& name) { return stats_.counter(name).value(); }

  stats::Store stats_;
  SecretManager manager_{stats_};
  std::vector<std::string> paths_;
  std::vector<config::SubscriptionCallbacks*> callbacks_;
};

TEST_F(SecretManagerTest, OneSubscriptionPerNameAndSourceSharedByItsUsers) {
  auto a = manager_.provider(adsRef("cert"), "x");
  auto b = manager_.provider(adsRef("cert"), "y");
  auto c = manager_.provider(adsRef("other"), "z");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), c->get());
  EXPECT_EQ(callbacks_.size(), 2u);
  EXPECT_EQ(paths_[0], "x.sds_config");
  EXPECT_EQ(manager_.subscriptionCount(), 2u);
}

TEST_F(SecretManagerTest, UnusedSubscriptionsAreDroppedOnTheNextLookup) {
  { ASSERT_TRUE(manager_.provider(adsRef("gone"), "x").ok()); }
  auto kept = manager_.provider(adsRef("kept"), "y");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(manager_.subscriptionCount(), 1u);
}

TEST_F(SecretManagerTest, GoodSecretIsAppliedCountedAndWarms) {
  auto p = manager_.provider(adsRef("cert"), "x");
  ASSERT_TRUE(p.ok());
  bool warmed = false;
  (*p)->onWarm([&] { warmed = true; });
  EXPECT_FALSE(warmed);
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate(one_of(certSecret("cert", one().cert, one().key)), "v1").ok());
  EXPECT_TRUE(warmed);
  ASSERT_NE((*p)->secret(), nullptr);
  EXPECT_EQ(counter("sds.cert.update_success"), 1u);
  auto dumps = manager_.dynamicDumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_EQ(dumps[0].version_info, "v1");
  EXPECT_EQ(dumps[0].secret.tls_certificate().private_key().inline_string(), "[redacted]");
  EXPECT_EQ(dumps[0].secret.tls_certificate().certificate_chain().inline_string(), one().cert);
}

TEST_F(SecretManagerTest, MismatchedKeyIsRefusedNamingSecretAndFieldAndTheOldOneStays) {
  auto p = manager_.provider(adsRef("cert"), "x");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate(one_of(certSecret("cert", one().cert, one().key)), "v1").ok());
  auto status = callbacks_[0]->onConfigUpdate(one_of(certSecret("cert", one().cert, two().key)), "v2");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("secret \"cert\": tls_certificate.private_key"));
  EXPECT_EQ((*p)->secret()->tls_certificate().private_key().inline_string(), one().key);
  EXPECT_EQ(counter("sds.cert.update_rejected"), 1u);
  EXPECT_EQ(manager_.dynamicDumps()[0].version_info, "v1");
}

TEST_F(SecretManagerTest, UnparsablePemIsRefused) {
  ASSERT_TRUE(manager_.provider(adsRef("cert"), "x").ok());
  auto status = callbacks_[0]->onConfigUpdate(one_of(certSecret("cert", "garbage", one().key)), "v1");
  EXPECT_THAT(std::string(status.message()), HasSubstr("tls_certificate.certificate_chain"));
  Secret ca;
  ca.set_name("cert");
  ca.mutable_validation_context()->mutable_trusted_ca()->set_inline_string("garbage");
  status = callbacks_[0]->onConfigUpdate(one_of(ca), "v2");
  EXPECT_THAT(std::string(status.message()), HasSubstr("validation_context.trusted_ca"));
}

TEST_F(SecretManagerTest, AUsersRefusalRejectsTheUpdateAndNobodyPublishes) {
  auto p = manager_.provider(adsRef("cert"), "x");
  ASSERT_TRUE(p.ok());
  auto owner_a = std::make_shared<int>(0);
  auto owner_b = std::make_shared<int>(0);
  int published = 0;
  bool refuse = true;
  (*p)->addUpdateCallback(owner_a, [&](const Secret&) -> absl::StatusOr<std::function<void()>> {
    return std::function<void()>([&] { ++published; });
  });
  (*p)->addUpdateCallback(owner_b, [&](const Secret&) -> absl::StatusOr<std::function<void()>> {
    if (refuse) return absl::InvalidArgumentError("cannot use it");
    return std::function<void()>([&] { ++published; });
  });
  auto status = callbacks_[0]->onConfigUpdate(one_of(certSecret("cert", one().cert, one().key)), "v1");
  EXPECT_THAT(std::string(status.message()), HasSubstr("cannot use it"));
  EXPECT_EQ(published, 0);
  EXPECT_EQ((*p)->secret(), nullptr);
  // A user that is gone is not asked.
  owner_b.reset();
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate(one_of(certSecret("cert", one().cert, one().key)), "v2").ok());
  EXPECT_EQ(published, 1);
}

TEST_F(SecretManagerTest, OtherSecretsInAResponseAreNoUpdateOfThisOne) {
  ASSERT_TRUE(manager_.provider(adsRef("cert"), "x").ok());
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate(one_of(certSecret("someone_else", "x", "y")), "v1").ok());
  EXPECT_EQ(counter("sds.cert.update_attempt"), 0u);
}

TEST_F(SecretManagerTest, FetchTimeoutWarmsWithoutASecret) {
  auto p = manager_.provider(adsRef("cert"), "x");
  ASSERT_TRUE(p.ok());
  callbacks_[0]->onConfigUpdateFailed(config::UpdateFailureReason::FetchTimedOut, absl::DeadlineExceededError("t"));
  EXPECT_TRUE((*p)->warm());
  EXPECT_EQ((*p)->secret(), nullptr);
  EXPECT_EQ(counter("sds.cert.init_fetch_timeout"), 1u);
}

TEST(SecretManagerStaticTest, StaticSecretsByNameAndErrorsNameTheField) {
  stats::Store stats;
  SecretManager manager(stats);
  google::protobuf::RepeatedPtrField<Secret> secrets;
  *secrets.Add() = certSecret("cert", one().cert, one().key);
  ASSERT_TRUE(manager.addStaticSecrets(secrets).ok());
  SdsSecretConfig ref;
  ref.set_name("cert");
  auto p = manager.provider(ref, "f");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p)->warm());
  EXPECT_NE((*p)->secret(), nullptr);
  ref.set_name("missing");
  EXPECT_THAT(std::string(manager.provider(ref, "f").status().message()), HasSubstr("f.name: no static_resources.secrets"));
  EXPECT_EQ(manager.staticDumps()[0].secret.tls_certificate().private_key().inline_string(), "[redacted]");

  *secrets.Add() = certSecret("bad", one().cert, two().key);
  SecretManager other(stats);
  auto status = other.addStaticSecrets(secrets);
  EXPECT_THAT(std::string(status.message()), HasSubstr("static_resources.secrets[1]: secret \"bad\": tls_certificate.private_key"));
}

TEST(SecretManagerDeferredTest, SubscriptionsAskedForEarlyAreMadeWhenTheFactoryArrives) {
  stats::Store stats;
  SecretManager manager(stats);
  auto p = manager.provider(adsRef("cert"), "early");
  ASSERT_TRUE(p.ok());
  std::vector<std::string> made;
  auto* sub = new FakeSubscription();
  ASSERT_TRUE(manager
                  .setSubscriptionFactory([&](const envoy::config::core::v3::ConfigSource&, const std::string& path,
                                              const std::string&, config::SubscriptionCallbacks&)
                                              -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
                    made.push_back(path);
                    return std::unique_ptr<config::Subscription>(sub);
                  })
                  .ok());
  EXPECT_THAT(made, ::testing::ElementsAre("early.sds_config"));
  EXPECT_TRUE(sub->started_names.contains("cert"));
}

TEST(SdsSocketFactoryTest, ServerContextIsBuiltWhenTheSecretArrivesAndSwappedOnChange) {
  stats::Store stats;
  SecretManager manager(stats);
  std::vector<config::SubscriptionCallbacks*> callbacks;
  ASSERT_TRUE(manager
                  .setSubscriptionFactory([&](const envoy::config::core::v3::ConfigSource&, const std::string&,
                                              const std::string&, config::SubscriptionCallbacks& cb)
                                              -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
                    callbacks.push_back(&cb);
                    return std::unique_ptr<config::Subscription>(std::make_unique<FakeSubscription>());
                  })
                  .ok());
  envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext config;
  *config.mutable_common_tls_context()->add_tls_certificate_sds_secret_configs() = adsRef("cert");
  std::vector<std::shared_ptr<SecretProvider>> warm_on;
  auto factory = createSdsServerFactory(config, "tc", &manager, &warm_on, stats, "listener.x.");
  ASSERT_TRUE(factory.ok()) << factory.status();
  ASSERT_EQ(warm_on.size(), 1u);
  auto* swappable = dynamic_cast<const SwappableSslSocketFactory*>(factory->get());
  ASSERT_NE(swappable, nullptr);
  EXPECT_EQ(swappable->context(), nullptr);
  EXPECT_NE((*factory)->createTransportSocket(), nullptr);

  ASSERT_TRUE(callbacks[0]->onConfigUpdate(one_of(certSecret("cert", one().cert, one().key)), "v1").ok());
  auto first = swappable->context();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(callbacks[0]->onConfigUpdate(one_of(certSecret("cert", two().cert, two().key)), "v2").ok());
  auto second = swappable->context();
  ASSERT_NE(second, nullptr);
  EXPECT_NE(first, second);
  // A secret of the wrong kind is refused by the context that uses it.
  Secret ca;
  ca.set_name("cert");
  ca.mutable_validation_context()->mutable_trusted_ca()->set_inline_string(one().cert);
  auto status = callbacks[0]->onConfigUpdate(one_of(ca), "v3");
  EXPECT_THAT(std::string(status.message()), HasSubstr("is not a tls_certificate"));
  EXPECT_EQ(swappable->context(), second);
}

TEST(SdsSocketFactoryTest, WithoutASecretManagerSdsIsAConfigError) {
  stats::Store stats;
  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext config;
  *config.mutable_common_tls_context()->mutable_validation_context_sds_secret_config() = adsRef("ca");
  auto factory = createSdsClientFactory(config, "c", nullptr, stats, "cluster.c.");
  EXPECT_THAT(std::string(factory.status().message()), HasSubstr("c.common_tls_context: SDS is not available"));
}

}  // namespace
}  // namespace courier::tls
