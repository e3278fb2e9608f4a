#include "source/extensions/transport_sockets/tls/cert_validator.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "source/extensions/transport_sockets/tls/context.h"
#include "spdlog/spdlog.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext;
using envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher;
using ProtoStringMatcher = envoy::type::matcher::v3::StringMatcher;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = absl::ascii_tolower(static_cast<unsigned char>(c));
  return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) != absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<SanStringMatcher> compileMatcher(const ProtoStringMatcher& m, const std::string& path) {
  SanStringMatcher out;
  out.ignore_case = m.ignore_case();
  switch (m.match_pattern_case()) {
    case ProtoStringMatcher::kExact:
      out.kind = SanStringMatcher::Kind::Exact;
      out.value = m.exact();
      break;
    case ProtoStringMatcher::kPrefix:
      if (m.prefix().empty()) return fieldError(path + ".prefix", "must not be empty");
      out.kind = SanStringMatcher::Kind::Prefix;
      out.value = m.prefix();
      break;
    case ProtoStringMatcher::kSuffix:
      if (m.suffix().empty()) return fieldError(path + ".suffix", "must not be empty");
      out.kind = SanStringMatcher::Kind::Suffix;
      out.value = m.suffix();
      break;
    case ProtoStringMatcher::kContains:
      if (m.contains().empty()) return fieldError(path + ".contains", "must not be empty");
      out.kind = SanStringMatcher::Kind::Contains;
      out.value = m.contains();
      break;
    case ProtoStringMatcher::kSafeRegex: {
      out.kind = SanStringMatcher::Kind::Regex;
      out.regex = std::make_unique<re2::RE2>(m.safe_regex().regex(), re2::RE2::Quiet);
      if (!out.regex->ok()) {
        return fieldError(path + ".safe_regex.regex",
                          absl::StrCat("invalid RE2 \"", m.safe_regex().regex(), "\": ", out.regex->error()));
      }
      break;
    }
    default:
      return fieldError(path, "needs exact, prefix, suffix, contains or safe_regex");
  }
  if (out.ignore_case) out.value = lower(out.value);
  return out;
}

std::string_view asn1View(const ASN1_STRING* s) {
  if (s == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                          static_cast<size_t>(ASN1_STRING_length(s)));
}

// A SAN as Envoy prints it: the text of DNS/URI/email names, the address of
// an IP, the value of a string-typed otherName.
std::string generalNameText(const GENERAL_NAME* name) {
  switch (name->type) {
    case GEN_DNS:
    case GEN_URI:
    case GEN_EMAIL:
      return std::string(asn1View(name->d.ia5));
    case GEN_IPADD: {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      if (ip->length == 4) {
        inet_ntop(AF_INET, ip->data, buf, sizeof(buf));
      } else if (ip->length == 16) {
        inet_ntop(AF_INET6, ip->data, buf, sizeof(buf));
      }
      return buf;
    }
    case GEN_OTHERNAME: {
      const ASN1_TYPE* value = name->d.otherName->value;
      if (value == nullptr) return {};
      switch (value->type) {
        case V_ASN1_UTF8STRING:
        case V_ASN1_IA5STRING:
        case V_ASN1_PRINTABLESTRING:
        case V_ASN1_VISIBLESTRING:
        case V_ASN1_OCTET_STRING:
          return std::string(asn1View(value->value.asn1_string));
        default:
          return {};
      }
    }
    default:
      return {};
  }
}

absl::StatusOr<std::array<unsigned char, 32>> parseHexHash(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c != ':') hex.push_back(c);
  }
  std::array<unsigned char, 32> out{};
  if (hex.size() != 64) return absl::InvalidArgumentError("");
  for (size_t i = 0; i < 32; ++i) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("");
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return out;
}

int genType(SubjectAltNameMatcher::SanType type) {
  switch (type) {
    case SubjectAltNameMatcher::DNS:
      return GEN_DNS;
    case SubjectAltNameMatcher::URI:
      return GEN_URI;
    case SubjectAltNameMatcher::EMAIL:
      return GEN_EMAIL;
    case SubjectAltNameMatcher::IP_ADDRESS:
      return GEN_IPADD;
    case SubjectAltNameMatcher::OTHER_NAME:
      return GEN_OTHERNAME;
    default:
      return -2;
  }
}

std::string subjectOf(X509* cert) {
  char buf[256] = {};
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  return buf;
}

std::string timeText(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  ASN1_TIME_print(bio, t);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

bool isValidityError(int err) { return err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID; }

// With allow_expired_certificate, a validity-period error is not one.
int allowExpiredCallback(int ok, X509_STORE_CTX* store_ctx) {
  if (ok == 0 && isValidityError(X509_STORE_CTX_get_error(store_ctx))) {
    spdlog::debug("TLS: peer certificate {} is outside its validity period; accepted (allow_expired_certificate)",
                  subjectOf(X509_STORE_CTX_get_current_cert(store_ctx)));
    X509_STORE_CTX_set_error(store_ctx, X509_V_OK);
    return 1;
  }
  return ok;
}

}  // namespace

bool SanStringMatcher::match(std::string_view input) const {
  std::string lowered;
  if (ignore_case && kind != Kind::Regex) {
    lowered = lower(input);
    input = lowered;
  }
  switch (kind) {
    case Kind::Exact:
      return input == value;
    case Kind::Prefix:
      return input.size() >= value.size() && input.compare(0, value.size(), value) == 0;
    case Kind::Suffix:
      return input.size() >= value.size() && input.compare(input.size() - value.size(), value.size(), value) == 0;
    case Kind::Contains:
      return input.find(value) != std::string_view::npos;
    case Kind::Regex:
      return re2::RE2::FullMatch(re2::StringPiece(input.data(), input.size()), *regex);
  }
  return false;
}

bool dnsNameMatch(std::string_view dns_name, std::string_view pattern) {
  if (equalsIgnoreCase(dns_name, pattern)) return true;
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    const size_t dot = dns_name.find('.');
    return dot != std::string_view::npos && dot > 0 && equalsIgnoreCase(dns_name.substr(dot), pattern.substr(1));
  }
  return false;
}

bool SanMatcher::matches(const GENERAL_NAME* name) const {
  if (gen_type >= 0 && name->type != gen_type) return false;
  if (gen_type < 0 && name->type != GEN_DNS && name->type != GEN_URI && name->type != GEN_EMAIL &&
      name->type != GEN_IPADD) {
    return false;
  }
  if (name->type == GEN_OTHERNAME) {
    char oid_text[128] = {};
    OBJ_obj2txt(oid_text, sizeof(oid_text), name->d.otherName->type_id, 1);
    if (oid != oid_text) return false;
  }
  const std::string text = generalNameText(name);
  // An exact DNS matcher follows DNS rules, wildcard certificates included.
  if (name->type == GEN_DNS && matcher.kind == SanStringMatcher::Kind::Exact) return dnsNameMatch(matcher.value, text);
  return matcher.match(text);
}

absl::StatusOr<std::unique_ptr<CertValidator>> CertValidator::create(SSL_CTX* ctx,
                                                                      const CertificateValidationContext& config,
                                                                      const std::string& vpath,
                                                                      const TlsContext* owner) {
  std::unique_ptr<CertValidator> v(new CertValidator());
  v->owner_ = owner;
  v->has_trusted_ca_ = config.has_trusted_ca();
  v->accept_untrusted_ = config.trust_chain_verification() == CertificateValidationContext::ACCEPT_UNTRUSTED;
  v->allow_expired_ = config.allow_expired_certificate();
  if (config.has_custom_validator_config()) {
    return fieldError(vpath + ".custom_validator_config", "is not supported yet");
  }
  if (config.has_crl()) {
    const std::string cpath = vpath + ".crl";
    if (!v->has_trusted_ca_) return fieldError(cpath, "needs trusted_ca (a CRL is checked along a verified chain)");
    auto pem = readDataSource(config.crl(), cpath);
    if (!pem.ok()) return pem.status();
    BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    int count = 0;
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_crl(store, crl);
      X509_CRL_free(crl);
      ++count;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (count == 0) return fieldError(cpath, "no PEM CRL found");
    // Envoy: every certificate of the chain needs its issuer's CRL, unless
    // only the leaf is to be checked.
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
                                    (config.only_verify_leaf_cert_crl() ? 0 : X509_V_FLAG_CRL_CHECK_ALL));
  } else if (config.only_verify_leaf_cert_crl()) {
    return fieldError(vpath + ".only_verify_leaf_cert_crl", "needs a crl");
  }
  if (config.has_max_verify_depth()) {
    X509_STORE_set_depth(SSL_CTX_get_cert_store(ctx), static_cast<int>(config.max_verify_depth().value()));
  }
  for (int i = 0; i < config.match_typed_subject_alt_names_size(); ++i) {
    const auto& m = config.match_typed_subject_alt_names(i);
    const std::string mpath = absl::StrCat(vpath, ".match_typed_subject_alt_names[", i, "]");
    SanMatcher matcher;
    matcher.gen_type = genType(m.san_type());
    if (matcher.gen_type < 0) {
      return fieldError(mpath + ".san_type", "must be EMAIL, DNS, URI, IP_ADDRESS or OTHER_NAME");
    }
    if (m.san_type() == SubjectAltNameMatcher::OTHER_NAME) {
      ASN1_OBJECT* obj = m.oid().empty() ? nullptr : OBJ_txt2obj(m.oid().c_str(), 1);
      if (obj == nullptr) {
        ERR_clear_error();
        return fieldError(mpath + ".oid", "OTHER_NAME needs a dotted OID");
      }
      ASN1_OBJECT_free(obj);
      matcher.oid = m.oid();
    }
    auto compiled = compileMatcher(m.matcher(), mpath + ".matcher");
    if (!compiled.ok()) return compiled.status();
    matcher.matcher = std::move(*compiled);
    v->san_matchers_.push_back(std::move(matcher));
  }
  for (int i = 0; i < config.match_subject_alt_names_size(); ++i) {
    SanMatcher matcher;
    auto compiled =
        compileMatcher(config.match_subject_alt_names(i), absl::StrCat(vpath, ".match_subject_alt_names[", i, "]"));
    if (!compiled.ok()) return compiled.status();
    matcher.matcher = std::move(*compiled);
    v->san_matchers_.push_back(std::move(matcher));
  }
  for (int i = 0; i < config.verify_certificate_hash_size(); ++i) {
    auto digest = parseHexHash(config.verify_certificate_hash(i));
    if (!digest.ok()) {
      return fieldError(absl::StrCat(vpath, ".verify_certificate_hash[", i, "]"),
                        "must be a hex SHA-256 (64 digits, colons allowed)");
    }
    v->pins_.push_back(Pin{false, *digest});
  }
  for (int i = 0; i < config.verify_certificate_spki_size(); ++i) {
    std::string raw;
    if (!absl::Base64Unescape(config.verify_certificate_spki(i), &raw) || raw.size() != 32) {
      return fieldError(absl::StrCat(vpath, ".verify_certificate_spki[", i, "]"),
                        "must be a base64 SHA-256 of a SubjectPublicKeyInfo (32 bytes)");
    }
    Pin pin{true, {}};
    std::memcpy(pin.digest.data(), raw.data(), 32);
    v->pins_.push_back(pin);
  }
  if (v->active()) SSL_CTX_set_cert_verify_callback(ctx, &CertValidator::verifyCallback, v.get());
  return v;
}

int CertValidator::verifyCallback(X509_STORE_CTX* store_ctx, void* arg) {
  return static_cast<const CertValidator*>(arg)->verify(store_ctx);
}

int CertValidator::verify(X509_STORE_CTX* store_ctx) const {
  SslStats& stats = owner_->stats();
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  if (leaf == nullptr) {
    stats.fail_verify_no_cert.inc();
    return 0;
  }
  if (has_trusted_ca_) {
    if (allow_expired_) X509_STORE_CTX_set_verify_cb(store_ctx, &allowExpiredCallback);
    if (X509_verify_cert(store_ctx) <= 0) {
      const int err = X509_STORE_CTX_get_error(store_ctx);
      stats.fail_verify_error.inc();
      if (isValidityError(err)) {
        X509* bad = X509_STORE_CTX_get_current_cert(store_ctx);
        if (bad == nullptr) bad = leaf;
        spdlog::debug("TLS: peer certificate {} {} (notBefore {}, notAfter {})", subjectOf(bad),
                      err == X509_V_ERR_CERT_HAS_EXPIRED ? "has expired" : "is not yet valid",
                      timeText(X509_get0_notBefore(bad)), timeText(X509_get0_notAfter(bad)));
      } else {
        spdlog::debug("TLS: peer certificate {} failed verification: {}", subjectOf(leaf),
                      X509_verify_cert_error_string(err));
      }
      if (!accept_untrusted_) return 0;
      X509_STORE_CTX_set_error(store_ctx, X509_V_OK);
    }
  }
  if (!san_matchers_.empty() && !matchesSan(leaf)) {
    stats.fail_verify_san.inc();
    spdlog::debug("TLS: peer certificate {} has no subject alt name that matches", subjectOf(leaf));
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  if (!pins_.empty() && !matchesPin(leaf)) {
    stats.fail_verify_cert_hash.inc();
    spdlog::debug("TLS: peer certificate {} matches no verify_certificate_hash/spki", subjectOf(leaf));
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  X509_STORE_CTX_set_error(store_ctx, X509_V_OK);
  return 1;
}

bool CertValidator::matchesSan(X509* leaf) const {
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return false;
  bool found = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && !found; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    for (const SanMatcher& m : san_matchers_) {
      if (m.matches(name)) {
        found = true;
        break;
      }
    }
  }
  GENERAL_NAMES_free(names);
  return found;
}

bool CertValidator::matchesPin(X509* leaf) const {
  std::array<unsigned char, 32> cert_digest{};
  std::array<unsigned char, 32> spki_digest{};
  bool have_cert = false;
  bool have_spki = false;
  for (const Pin& pin : pins_) {
    if (pin.spki) {
      if (!have_spki) {
        unsigned char* der = nullptr;
        const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der);
        if (len <= 0) continue;
        unsigned int out_len = 0;
        EVP_Digest(der, static_cast<size_t>(len), spki_digest.data(), &out_len, EVP_sha256(), nullptr);
        OPENSSL_free(der);
        have_spki = true;
      }
      if (pin.digest == spki_digest) return true;
    } else {
      if (!have_cert) {
        unsigned int out_len = 0;
        X509_digest(leaf, EVP_sha256(), cert_digest.data(), &out_len);
        have_cert = true;
      }
      if (pin.digest == cert_digest) return true;
    }
  }
  return false;
}

}  // namespace courier::tls
