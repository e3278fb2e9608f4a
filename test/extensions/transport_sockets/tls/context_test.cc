#include "source/extensions/transport_sockets/tls/context.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/extensions/transport_sockets/tls/session_tickets.h"

namespace courier::tls {
namespace {

using ::testing::HasSubstr;

TEST(LazyCountersTest, SameNameSameCounterAndNamedUnderThePrefix) {
  stats::Store store;
  LazyCounters ciphers(store, "listener.x.ssl.ciphers");
  static const char kAes[] = "TLS_AES_128_GCM_SHA256";
  static const char kChacha[] = "TLS_CHACHA20_POLY1305_SHA256";
  stats::Counter& a = ciphers.get(kAes);
  EXPECT_EQ(&ciphers.get(kAes), &a);
  EXPECT_NE(&ciphers.get(kChacha), &a);
  a.inc();
  EXPECT_EQ(store.counter("listener.x.ssl.ciphers.TLS_AES_128_GCM_SHA256").value(), 1u);
}

TEST(LazyCountersTest, MoreNamesThanSlotsStillCount) {
  stats::Store store;
  LazyCounters many(store, "p");
  static std::vector<std::string> names;
  for (int i = 0; i < 100; ++i) names.push_back("n" + std::to_string(i));
  for (const auto& n : names) many.get(n.c_str()).inc();
  for (const auto& n : names) many.get(n.c_str()).inc();
  EXPECT_EQ(store.counter("p.n99").value(), 2u);
  EXPECT_EQ(store.counter("p.n0").value(), 2u);
}

TEST(SessionTicketKeysTest, KeysMustBe80Bytes) {
  envoy::extensions::transport_sockets::tls::v3::TlsSessionTicketKeys config;
  EXPECT_THAT(SessionTicketKeys::create(config, "stk").status().message(), HasSubstr("stk.keys: needs at least one"));
  config.add_keys()->set_inline_bytes(std::string(80, 'k'));
  EXPECT_TRUE(SessionTicketKeys::create(config, "stk").ok());
  config.add_keys()->set_inline_bytes(std::string(48, 'k'));
  EXPECT_THAT(SessionTicketKeys::create(config, "stk").status().message(),
              HasSubstr("stk.keys[1]: a session ticket key must be 80 bytes, this one is 48"));
}

}  // namespace
}  // namespace courier::tls
