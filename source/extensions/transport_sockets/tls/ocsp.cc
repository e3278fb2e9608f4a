#include "source/extensions/transport_sockets/tls/ocsp.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "source/extensions/transport_sockets/tls/context.h"
#include "spdlog/spdlog.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;

time_t asTimeT(const ASN1_GENERALIZEDTIME* t) {
  struct tm tm;
  std::memset(&tm, 0, sizeof(tm));
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

const char* policyName(OcspStaples::Policy p) {
  switch (p) {
    case DownstreamTlsContext::STRICT_STAPLING:
      return "STRICT_STAPLING";
    case DownstreamTlsContext::MUST_STAPLE:
      return "MUST_STAPLE";
    default:
      return "LENIENT_STAPLING";
  }
}

}  // namespace

OcspStaples::~OcspStaples() {
  for (Staple& s : staples_) X509_free(s.cert);
}

absl::StatusOr<std::unique_ptr<OcspStaples>> OcspStaples::create(
    const envoy::extensions::transport_sockets::tls::v3::CommonTlsContext& common, Policy policy,
    const std::string& cpath) {
  std::unique_ptr<OcspStaples> out(new OcspStaples());
  out->policy_ = policy;
  bool any = false;
  for (int i = 0; i < common.tls_certificates_size(); ++i) {
    const auto& cert_config = common.tls_certificates(i);
    const std::string opath = absl::StrCat(cpath, ".tls_certificates[", i, "].ocsp_staple");
    if (!cert_config.has_ocsp_staple()) {
      if (policy == DownstreamTlsContext::MUST_STAPLE) {
        return fieldError(opath, "is required by ocsp_staple_policy MUST_STAPLE");
      }
      continue;
    }
    // The certificate was loaded already, so its PEM is known to be good.
    auto chain = readDataSource(cert_config.certificate_chain(),
                                absl::StrCat(cpath, ".tls_certificates[", i, "].certificate_chain"));
    if (!chain.ok()) return chain.status();
    BIO* bio = BIO_new_mem_buf(chain->data(), static_cast<int>(chain->size()));
    X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    ERR_clear_error();
    if (leaf == nullptr) return fieldError(opath, "its certificate_chain has no certificate");
    Staple staple;
    staple.cert = leaf;
    out->staples_.push_back(staple);  // owns leaf from here on

    auto der = readDataSource(cert_config.ocsp_staple(), opath);
    if (!der.ok()) return der.status();
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
    OCSP_RESPONSE* response = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der->size()));
    if (response == nullptr) {
      ERR_clear_error();
      return fieldError(opath, "is not a DER-encoded OCSP response");
    }
    const int status = OCSP_response_status(response);
    OCSP_BASICRESP* basic = status == OCSP_RESPONSE_STATUS_SUCCESSFUL ? OCSP_response_get1_basic(response) : nullptr;
    OCSP_RESPONSE_free(response);
    if (basic == nullptr) {
      ERR_clear_error();
      return fieldError(opath, absl::StrCat("OCSP response was unsuccessful (", OCSP_response_status_str(status), ")"));
    }
    const ASN1_INTEGER* serial = X509_get0_serialNumber(leaf);
    bool matched = false;
    ASN1_GENERALIZEDTIME* this_update = nullptr;
    ASN1_GENERALIZEDTIME* next_update = nullptr;
    for (int j = 0; j < OCSP_resp_count(basic); ++j) {
      OCSP_SINGLERESP* single = OCSP_resp_get0(basic, j);
      ASN1_INTEGER* single_serial = nullptr;
      if (OCSP_id_get0_info(nullptr, nullptr, nullptr, &single_serial, const_cast<OCSP_CERTID*>(OCSP_SINGLERESP_get0_id(single))) != 1) {
        continue;
      }
      if (ASN1_INTEGER_cmp(single_serial, serial) == 0) {
        int reason = 0;
        ASN1_GENERALIZEDTIME* revoked_at = nullptr;
        OCSP_single_get0_status(single, &reason, &revoked_at, &this_update, &next_update);
        matched = true;
        break;
      }
    }
    const time_t this_t = asTimeT(this_update);
    const time_t next_t = asTimeT(next_update);
    OCSP_BASICRESP_free(basic);
    if (!matched) return fieldError(opath, "OCSP response does not match its TLS certificate");
    const time_t now = time(nullptr);
    const bool expired = (next_t != 0 && next_t <= now) || this_t > now;
    if (expired) {
      if (policy != DownstreamTlsContext::LENIENT_STAPLING) {
        return fieldError(opath, absl::StrCat("OCSP response is expired or not yet valid, refused under ",
                                              policyName(policy)));
      }
      spdlog::warn("{}: OCSP response is expired or not yet valid; the certificate is served without it", opath);
      any = true;
      continue;
    }
    out->staples_.back().der = std::move(*der);
    out->staples_.back().next_update = next_t;
    any = true;
  }
  if (!any && policy != DownstreamTlsContext::MUST_STAPLE) return std::unique_ptr<OcspStaples>();
  return out;
}

void OcspStaples::install(SSL_CTX* ctx, const TlsContext* owner) {
  owner_ = owner;
  SSL_CTX_set_tlsext_status_cb(ctx, &OcspStaples::statusCallback);
  SSL_CTX_set_tlsext_status_arg(ctx, this);
}

int OcspStaples::statusCallback(SSL* ssl, void* arg) {
  return static_cast<const OcspStaples*>(arg)->onStatusRequest(ssl);
}

int OcspStaples::onStatusRequest(SSL* ssl) const {
  SslStats& stats = owner_->stats();
  stats.ocsp_staple_requests.inc();
  X509* cert = SSL_get_certificate(ssl);
  const Staple* staple = nullptr;
  for (const Staple& s : staples_) {
    if (cert != nullptr && X509_cmp(cert, s.cert) == 0) {
      staple = &s;
      break;
    }
  }
  if (staple == nullptr || staple->der.empty()) {
    stats.ocsp_staple_omitted.inc();
    return SSL_TLSEXT_ERR_NOACK;
  }
  if (staple->next_update != 0 && staple->next_update <= time(nullptr)) {
    // It expired while we were serving: lenient serves the certificate bare,
    // the strict policies refuse the handshake rather than staple stale news.
    if (policy_ == envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext::LENIENT_STAPLING) {
      stats.ocsp_staple_omitted.inc();
      return SSL_TLSEXT_ERR_NOACK;
    }
    stats.ocsp_staple_failed.inc();
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  unsigned char* copy = static_cast<unsigned char*>(OPENSSL_malloc(staple->der.size()));
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, staple->der.data(), staple->der.size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(staple->der.size()));
  stats.ocsp_staple_responses.inc();
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace courier::tls
