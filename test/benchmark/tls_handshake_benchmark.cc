// TLS handshakes per second through courier's server context (the SSL_CTX a
// listener's DownstreamTlsContext builds, with its callbacks), in process on
// one thread over a memory BIO pair: full handshakes and resumed ones (TLS 1.3
// tickets, TLS 1.2 tickets and session ids). The time is both ends' CPU; the
// client end is a plain OpenSSL context.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

#include "benchmark/benchmark.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "source/common/stats/store.h"
#include "source/extensions/transport_sockets/tls/context.h"
#include "test/test_common/courier_process.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;

// A P-256 certificate and key made once with the openssl CLI.
struct Credentials {
  std::string cert;
  std::string key;
  Credentials() {
    const std::string dir = test::tempDir();
    test::runCommand("cd " + dir + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                     "-keyout k.pem -out c.pem -days 2 -subj /CN=bench -addext subjectAltName=DNS:bench 2>&1");
    cert = test::runCommand("cat " + dir + "/c.pem");
    key = test::runCommand("cat " + dir + "/k.pem");
  }
};

const Credentials& credentials() {
  static const Credentials* c = new Credentials();
  return *c;
}

std::shared_ptr<const ServerContext> serverContext(stats::Store& store, bool stateless) {
  DownstreamTlsContext config;
  auto* cert = config.mutable_common_tls_context()->add_tls_certificates();
  cert->mutable_certificate_chain()->set_inline_string(credentials().cert);
  cert->mutable_private_key()->set_inline_string(credentials().key);
  if (!stateless) config.set_disable_stateless_session_resumption(true);
  auto context = ServerContext::create(config, "bench", store, "listener.bench.");
  if (!context.ok()) {
    fprintf(stderr, "%s\n", std::string(context.status().message()).c_str());
    abort();
  }
  return *context;
}

// One handshake; the client offers `resume` when set, and the session it ends
// with (after reading any TLS 1.3 ticket) is returned when `keep`.
bool handshake(SSL_CTX* client_ctx, SSL_CTX* server_ctx, SSL_SESSION* resume, SSL_SESSION** keep, bool* reused) {
  SSL* client = SSL_new(client_ctx);
  SSL* server = SSL_new(server_ctx);
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  if (resume != nullptr) SSL_set_session(client, resume);
  bool done = false;
  for (int round = 0; round < 16 && !done; ++round) {
    const int c = SSL_do_handshake(client);
    const int s = SSL_do_handshake(server);
    done = c == 1 && s == 1;
  }
  if (done) {
    // TLS 1.3 tickets follow the handshake: let the client read them.
    char byte;
    SSL_read(client, &byte, 1);
    *reused = SSL_session_reused(client) == 1;
    if (keep != nullptr) *keep = SSL_get1_session(client);
  }
  ERR_clear_error();
  // As SslSocket does: a finished handshake's session stays resumable
  // however the connection ends.
  if (done) {
    SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_shutdown(server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
  SSL_free(client);
  SSL_free(server);
  return done;
}

SSL_CTX* clientContext(int version) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, version);
  SSL_CTX_set_max_proto_version(ctx, version);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return ctx;
}

void BM_FullHandshake(benchmark::State& state) {
  stats::Store store;
  auto server = serverContext(store, true);
  SSL_CTX* client = clientContext(static_cast<int>(state.range(0)));
  bool reused = false;
  for (auto _ : state) {
    if (!handshake(client, server->ctx(), nullptr, nullptr, &reused)) state.SkipWithError("handshake failed");
  }
  state.SetItemsProcessed(state.iterations());
  SSL_CTX_free(client);
}
BENCHMARK(BM_FullHandshake)->Arg(TLS1_3_VERSION)->Arg(TLS1_2_VERSION)->ArgName("version");

// range(1): 1 stateless (tickets), 0 stateful (session ids, TLS 1.2 only).
void BM_ResumedHandshake(benchmark::State& state) {
  stats::Store store;
  auto server = serverContext(store, state.range(1) == 1);
  SSL_CTX* client = clientContext(static_cast<int>(state.range(0)));
  SSL_SESSION* session = nullptr;
  bool reused = false;
  if (!handshake(client, server->ctx(), nullptr, &session, &reused) || session == nullptr) {
    state.SkipWithError("no session to resume");
    return;
  }
  for (auto _ : state) {
    SSL_SESSION* next = nullptr;
    if (!handshake(client, server->ctx(), session, &next, &reused) || !reused) {
      state.SkipWithError("not resumed");
      break;
    }
    // A TLS 1.3 ticket is for one use: carry on with the new one.
    if (next != nullptr) {
      SSL_SESSION_free(session);
      session = next;
    }
  }
  state.SetItemsProcessed(state.iterations());
  SSL_SESSION_free(session);
  SSL_CTX_free(client);
}
BENCHMARK(BM_ResumedHandshake)
    ->Args({TLS1_3_VERSION, 1})
    ->Args({TLS1_2_VERSION, 1})
    ->Args({TLS1_2_VERSION, 0})
    ->ArgNames({"version", "tickets"});

}  // namespace
}  // namespace courier::tls

BENCHMARK_MAIN();
