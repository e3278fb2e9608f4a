#include "source/extensions/transport_sockets/tls/cert_validator.h"

#include <openssl/x509v3.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext;
using ::testing::HasSubstr;

TEST(DnsNameMatchTest, ExactIgnoringCase) {
  EXPECT_TRUE(dnsNameMatch("api.example.com", "api.example.com"));
  EXPECT_TRUE(dnsNameMatch("API.example.com", "api.EXAMPLE.com"));
  EXPECT_FALSE(dnsNameMatch("api.example.com", "api.example.org"));
}

TEST(DnsNameMatchTest, WildcardCoversExactlyOneLabel) {
  EXPECT_TRUE(dnsNameMatch("a.example.com", "*.example.com"));
  EXPECT_FALSE(dnsNameMatch("a.b.example.com", "*.example.com"));
  EXPECT_FALSE(dnsNameMatch("example.com", "*.example.com"));
  EXPECT_FALSE(dnsNameMatch(".example.com", "*.example.com"));
  // A wildcard in the configured name is not a pattern.
  EXPECT_FALSE(dnsNameMatch("*.example.com", "a.example.com"));
}

TEST(SanStringMatcherTest, EachKind) {
  SanStringMatcher m;
  m.kind = SanStringMatcher::Kind::Prefix;
  m.value = "spiffe://";
  EXPECT_TRUE(m.match("spiffe://x"));
  EXPECT_FALSE(m.match("SPIFFE://x"));
  m.ignore_case = true;
  EXPECT_TRUE(m.match("SPIFFE://x"));
  m = SanStringMatcher();
  m.kind = SanStringMatcher::Kind::Suffix;
  m.value = ".test";
  EXPECT_TRUE(m.match("a.test"));
  EXPECT_FALSE(m.match("test"));
  m.kind = SanStringMatcher::Kind::Contains;
  m.value = "/sa/";
  EXPECT_TRUE(m.match("spiffe://t/ns/a/sa/b"));
  EXPECT_FALSE(m.match("spiffe://t/ns/a"));
  m.kind = SanStringMatcher::Kind::Regex;
  m.regex = std::make_unique<re2::RE2>("[a-z]+@example\\.com");
  EXPECT_TRUE(m.match("ops@example.com"));
  EXPECT_FALSE(m.match("ops@example.com.evil"));  // a full match, not a search
}

GENERAL_NAME* ipName(const char* text) {
  GENERAL_NAME* name = GENERAL_NAME_new();
  name->type = GEN_IPADD;
  name->d.iPAddress = a2i_IPADDRESS(text);
  return name;
}

TEST(SanMatcherTest, IpAddressesAreComparedAsText) {
  SanMatcher m;
  m.gen_type = GEN_IPADD;
  m.matcher.value = "2001:db8::1";
  GENERAL_NAME* v6 = ipName("2001:db8:0::1");
  GENERAL_NAME* v4 = ipName("10.0.0.1");
  EXPECT_TRUE(m.matches(v6));
  EXPECT_FALSE(m.matches(v4));
  m.matcher.value = "10.0.0.1";
  EXPECT_TRUE(m.matches(v4));
  // A DNS matcher does not look at IP SANs.
  m.gen_type = GEN_DNS;
  EXPECT_FALSE(m.matches(v4));
  GENERAL_NAME_free(v6);
  GENERAL_NAME_free(v4);
}

class CertValidatorConfigTest : public ::testing::Test {
 protected:
  absl::Status create(const CertificateValidationContext& config) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    auto v = CertValidator::create(ctx, config, "vc", nullptr);
    SSL_CTX_free(ctx);
    return v.status();
  }
};

TEST_F(CertValidatorConfigTest, HashPinsAcceptColonsAndEitherCase) {
  CertificateValidationContext config;
  config.add_verify_certificate_hash(std::string(64, 'a'));
  std::string colons;
  for (int i = 0; i < 32; ++i) colons += i == 0 ? "0F" : ":0F";
  config.add_verify_certificate_hash(colons);
  EXPECT_TRUE(create(config).ok());
  config.add_verify_certificate_hash(std::string(62, 'a'));
  EXPECT_THAT(create(config).message(), HasSubstr("vc.verify_certificate_hash[2]: must be a hex SHA-256"));
}

TEST_F(CertValidatorConfigTest, SpkiPinMustBe32BytesOfBase64) {
  CertificateValidationContext config;
  config.add_verify_certificate_spki("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  EXPECT_TRUE(create(config).ok());
  config.add_verify_certificate_spki("%%%");
  EXPECT_THAT(create(config).message(), HasSubstr("vc.verify_certificate_spki[1]"));
}

TEST_F(CertValidatorConfigTest, CrlNeedsTrustedCaAndLeafOnlyNeedsCrl) {
  CertificateValidationContext config;
  config.mutable_crl()->set_inline_string("x");
  EXPECT_THAT(create(config).message(), HasSubstr("vc.crl: needs trusted_ca"));
  CertificateValidationContext leaf_only;
  leaf_only.set_only_verify_leaf_cert_crl(true);
  EXPECT_THAT(create(leaf_only).message(), HasSubstr("vc.only_verify_leaf_cert_crl: needs a crl"));
}

TEST_F(CertValidatorConfigTest, EmptyPrefixIsRefused) {
  CertificateValidationContext config;
  auto* m = config.add_match_typed_subject_alt_names();
  m->set_san_type(envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher::DNS);
  m->mutable_matcher()->set_prefix("");
  EXPECT_THAT(create(config).message(), HasSubstr("vc.match_typed_subject_alt_names[0].matcher.prefix"));
}

}  // namespace
}  // namespace courier::tls
