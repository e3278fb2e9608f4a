// The test PKI the TLS integration tests share, made at run time with the
// openssl CLI (fresh keys for every test binary run).
#pragma once

#include <string>

#include "test/test_common/courier_process.h"

namespace courier::test {

// A CA, a server certificate for courier.test and the names the filter-chain
// tests pick chains by, and a client certificate, all signed by the CA.
struct Pki {
  std::string dir;
  bool ok = false;
  std::string log;

  Pki() : dir(tempDir()) {
    writeFile(dir + "/server.ext",
              "subjectAltName=DNS:courier.test,DNS:a.test,DNS:b.test,DNS:*.wild.test,DNS:alpn.test\n");
    writeFile(dir + "/client.ext", "subjectAltName=DNS:client.courier.test\nextendedKeyUsage=clientAuth\n");
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script = "cd " + dir + " && set -e && " +
                               "openssl req -x509 " + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=courier-test-ca && " +
                               "openssl req " + ec + " -keyout server.key -out server.csr -subj /CN=courier.test && " +
                               "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 " +
                               "-extfile server.ext -out server.pem && " +
                               "openssl req " + ec + " -keyout client.key -out client.csr -subj /CN=client && " +
                               "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 " +
                               "-extfile client.ext -out client.pem 2>&1";
    int rc = -1;
    log = runCommand("(" + script + ") 2>&1", &rc);
    ok = rc == 0;
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
};

inline const Pki& pki() {
  static const Pki* p = new Pki();
  return *p;
}

}  // namespace courier::test
