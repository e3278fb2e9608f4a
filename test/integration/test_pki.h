// The test PKI the TLS integration tests share, made at run time with the
// openssl CLI (fresh keys for every test binary run).
#pragma once

#include <string>

#include "test/test_common/courier_process.h"

namespace courier::test {

// A CA, a server certificate for DNS:courier.test (and the names the
// filter-chain tests pick chains by: a.test, b.test, *.wild.test, alpn.test), a client certificate with
// one SAN of each type, all signed by the CA; fresh keys for every test
// binary run. Client certificates with odd validity or revoked are issued by
// `openssl ca` (which can set dates and keeps the index a CRL is made from):
// revoked.pem (in crl.pem), expired.pem, future.pem. wild.pem is a server
// certificate for DNS:*.wild.test.
struct Pki {
  std::string dir;
  bool ok = false;
  std::string log;

  Pki() : dir(tempDir()) {
    writeFile(dir + "/server.ext",
              "subjectAltName=DNS:courier.test,DNS:a.test,DNS:b.test,DNS:*.wild.test,DNS:alpn.test\n");
    writeFile(dir + "/wild.ext", "subjectAltName=DNS:*.wild.test\n");
    writeFile(dir + "/client.ext",
              "subjectAltName=DNS:client.courier.test,URI:spiffe://courier.test/ns/default/sa/client,"
              "email:client@courier.test,IP:10.1.2.3,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:upn@courier.test\n"
              "extendedKeyUsage=clientAuth,serverAuth\n");
    writeFile(dir + "/ca.cnf", "[ca]\ndefault_ca = ca_default\n[ca_default]\ndir = " + dir +
                                   "\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\nserial = $dir/serial\n"
                                   "certificate = $dir/ca.pem\nprivate_key = $dir/ca.key\ndefault_md = sha256\n"
                                   "default_days = 2\ndefault_crl_days = 2\npolicy = any\nunique_subject = no\n"
                                   "[any]\ncommonName = supplied\n");
    writeFile(dir + "/index.txt", "");
    writeFile(dir + "/serial", "1000\n");
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto caIssue = [&](const std::string& name, const std::string& dates) {
      return "openssl req " + ec + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + name +
             " && openssl ca -batch -config ca.cnf -notext -extfile client.ext " + dates + " -in " + name +
             ".csr -out " + name + ".pem && ";
    };
    const std::string script = "cd " + dir + " && set -e && " + "openssl req -x509 " + ec +
                               " -keyout ca.key -out ca.pem -days 2 -subj /CN=courier-test-ca && " + "openssl req " +
                               ec + " -keyout server.key -out server.csr -subj /CN=courier.test && " +
                               "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 " +
                               "-extfile server.ext -out server.pem && " + "openssl req " + ec +
                               " -keyout wild.key -out wild.csr -subj /CN=wild && " +
                               "openssl x509 -req -in wild.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 " +
                               "-extfile wild.ext -out wild.pem && " + "openssl req " + ec +
                               " -keyout client.key -out client.csr -subj /CN=client && " +
                               "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 " +
                               "-extfile client.ext -out client.pem && " + caIssue("revoked", "") +
                               caIssue("expired", "-startdate 20200101000000Z -enddate 20200102000000Z") +
                               caIssue("future", "-startdate 20990101000000Z -enddate 20990102000000Z") +
                               "openssl ca -batch -config ca.cnf -revoke revoked.pem && "
                               "openssl ca -batch -config ca.cnf -gencrl -out crl.pem";
    int rc = -1;
    log = runCommand("(" + script + ") 2>&1", &rc);
    ok = rc == 0;
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
  // verify_certificate_hash of a certificate, colon-separated as openssl prints it.
  std::string certHash(const std::string& name) const {
    std::string out = runCommand("openssl x509 -noout -fingerprint -sha256 -in " + path(name));
    out = out.substr(out.find('=') + 1);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }
  // verify_certificate_spki: base64 SHA-256 of the SubjectPublicKeyInfo.
  std::string spkiHash(const std::string& name) const {
    std::string out = runCommand("openssl x509 -noout -pubkey -in " + path(name) +
                                 " | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64");
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }
};

inline const Pki& pki() {
  static const Pki* p = new Pki();
  return *p;
}

}  // namespace courier::test
