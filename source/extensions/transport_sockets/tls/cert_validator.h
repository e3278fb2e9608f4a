// The peer-certificate checks of a CertificateValidationContext, done in one
// OpenSSL verify callback for both sides: the chain (with CRLs, expiry
// tolerance, ACCEPT_UNTRUSTED), then SAN matchers, then SPKI/hash pins, each
// failure counted in the context's ssl.fail_verify_* stat as Envoy does.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"
#include "re2/re2.h"

namespace courier::tls {

class TlsContext;

// A compiled type.matcher.v3.StringMatcher, as SAN matchers use it.
struct SanStringMatcher {
  enum class Kind { Exact, Prefix, Suffix, Contains, Regex };
  Kind kind = Kind::Exact;
  std::string value;  // lowercased when ignore_case
  bool ignore_case = false;
  std::unique_ptr<re2::RE2> regex;
  bool match(std::string_view input) const;
};

// One match_typed_subject_alt_names entry (or a deprecated
// match_subject_alt_names one, which looks at every SAN type).
struct SanMatcher {
  int gen_type = -1;  // GEN_DNS, GEN_URI, GEN_EMAIL, GEN_IPADD, GEN_OTHERNAME; -1: any
  SanStringMatcher matcher;
  std::string oid;  // OTHER_NAME: the type-id, dotted
  bool matches(const GENERAL_NAME* name) const;
};

// Envoy's DNS SAN rule: a certificate's "*.example.com" covers exactly one
// label ("a.example.com", not "a.b.example.com"); otherwise equal, ignoring
// case.
bool dnsNameMatch(std::string_view dns_name, std::string_view pattern);

class CertValidator {
 public:
  // vpath names the CertificateValidationContext. trusted_ca has been loaded
  // into ctx's store by the caller when present. owner gives the stats.
  static absl::StatusOr<std::unique_ptr<CertValidator>> create(
      SSL_CTX* ctx, const envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext& config,
      const std::string& vpath, const TlsContext* owner);

  // Whether anything is to be checked at all (a CA, matchers or pins).
  bool active() const { return has_trusted_ca_ || accept_untrusted_ || !san_matchers_.empty() || !pins_.empty(); }

 private:
  CertValidator() = default;
  static int verifyCallback(X509_STORE_CTX* store_ctx, void* arg);
  int verify(X509_STORE_CTX* store_ctx) const;
  bool matchesSan(X509* leaf) const;
  bool matchesPin(X509* leaf) const;

  const TlsContext* owner_ = nullptr;
  bool has_trusted_ca_ = false;
  bool accept_untrusted_ = false;
  bool allow_expired_ = false;
  std::vector<SanMatcher> san_matchers_;
  // SHA-256 of the DER certificate (verify_certificate_hash) or of its
  // SubjectPublicKeyInfo (verify_certificate_spki).
  struct Pin {
    bool spki = false;
    std::array<unsigned char, 32> digest{};
  };
  std::vector<Pin> pins_;
};

}  // namespace courier::tls
