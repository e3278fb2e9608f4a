// The ClientHello parser on real hellos (made by OpenSSL in memory) and on
// hand-built broken ones: truncation at every byte, lengths that overflow
// their enclosing block, and sizes past the limit.
#include "source/extensions/filters/listener/tls_inspector/client_hello.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/stats/store.h"
#include "source/extensions/filters/listener/tls_inspector/tls_inspector.h"

namespace courier::extensions::tls_inspector {
namespace {

// The bytes OpenSSL's client sends first, with the given SNI and ALPN.
std::string realClientHello(const std::string& sni, const std::vector<std::string>& alpn) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  std::string wire;
  for (const auto& p : alpn) {
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  if (!wire.empty()) SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()), wire.size());
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

std::string u16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string u24(size_t v) { return std::string(1, static_cast<char>(v >> 16)) + u16(v & 0xffff); }

// A ClientHello with the given extensions block (already length-prefixed or not).
std::string helloBody(const std::string& extensions_block) {
  std::string b = "\x03\x03" + std::string(32, 'r');
  b += std::string(1, '\0');             // no session id
  b += u16(2) + std::string("\x13\x01"); // one cipher suite
  b += std::string("\x01\x00", 2);       // null compression
  return b + extensions_block;
}
std::string record(const std::string& body) {
  std::string hs = "\x01" + u24(body.size()) + body;
  return "\x16\x03\x01" + u16(hs.size()) + hs;
}
std::string ext(uint16_t type, const std::string& data) { return u16(type) + u16(data.size()) + data; }
std::string sniExt(const std::string& name) {
  std::string entry = std::string(1, '\0') + u16(name.size()) + name;
  return ext(0, u16(entry.size()) + entry);
}

TEST(ClientHelloTest, RealHelloGivesSniAndAlpn) {
  const std::string hello = realClientHello("Api.Example.com", {"h2", "http/1.1"});
  ClientHello out;
  ASSERT_EQ(parseClientHello(hello, out), ClientHelloResult::Found);
  EXPECT_EQ(out.server_name, "api.example.com");
  EXPECT_EQ(out.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
}

TEST(ClientHelloTest, RealHelloWithoutSniOrAlpn) {
  ClientHello out;
  ASSERT_EQ(parseClientHello(realClientHello("", {}), out), ClientHelloResult::Found);
  EXPECT_TRUE(out.server_name.empty());
  EXPECT_TRUE(out.alpn.empty());
}

TEST(ClientHelloTest, EveryTruncationAsksForMore) {
  const std::string hello = realClientHello("a.test", {"h2"});
  for (size_t n = 0; n < hello.size(); ++n) {
    ClientHello out;
    EXPECT_EQ(parseClientHello(std::string_view(hello).substr(0, n), out), ClientHelloResult::NeedMoreData) << n;
  }
}

TEST(ClientHelloTest, HelloSplitAcrossRecords) {
  const std::string hello = realClientHello("split.test", {"h2"});
  const std::string hs = hello.substr(5);
  const std::string split = "\x16\x03\x01" + u16(10) + hs.substr(0, 10) + "\x16\x03\x01" + u16(hs.size() - 10) +
                            hs.substr(10);
  ClientHello out;
  ASSERT_EQ(parseClientHello(split, out), ClientHelloResult::Found);
  EXPECT_EQ(out.server_name, "split.test");
}

TEST(ClientHelloTest, PlaintextIsNotTls) {
  ClientHello out;
  EXPECT_EQ(parseClientHello("GET / HTTP/1.1\r\n", out), ClientHelloResult::NotTls);
  EXPECT_EQ(parseClientHello(std::string("\x16\x01", 2), out), ClientHelloResult::NotTls);
  // A handshake record that is not a ClientHello (a ServerHello).
  EXPECT_EQ(parseClientHello(std::string("\x16\x03\x01\x00\x05\x02", 6), out), ClientHelloResult::NotTls);
}

TEST(ClientHelloTest, MinimalHandBuiltHello) {
  ClientHello out;
  EXPECT_EQ(parseClientHello(record(helloBody("")), out), ClientHelloResult::Found);
  std::string exts = sniExt("x.test");
  EXPECT_EQ(parseClientHello(record(helloBody(u16(exts.size()) + exts)), out), ClientHelloResult::Found);
  EXPECT_EQ(out.server_name, "x.test");
}

TEST(ClientHelloTest, LengthsOverflowingTheirBlockAreMalformed) {
  ClientHello out;
  // Extensions block says more than the hello holds.
  std::string exts = sniExt("x.test");
  EXPECT_EQ(parseClientHello(record(helloBody(u16(exts.size() + 50) + exts)), out), ClientHelloResult::Malformed);
  // One extension's length runs past the block.
  std::string bad_ext = u16(0) + u16(0xfff0) + "abc";
  EXPECT_EQ(parseClientHello(record(helloBody(u16(bad_ext.size()) + bad_ext)), out), ClientHelloResult::Malformed);
  // server_name list longer than its extension.
  std::string sni = ext(0, u16(200) + std::string("\0\0\x01x", 4));
  EXPECT_EQ(parseClientHello(record(helloBody(u16(sni.size()) + sni)), out), ClientHelloResult::Malformed);
  // A host name running past the list.
  std::string entry = std::string(1, '\0') + u16(99) + "abc";
  std::string sni2 = ext(0, u16(entry.size()) + entry);
  EXPECT_EQ(parseClientHello(record(helloBody(u16(sni2.size()) + sni2)), out), ClientHelloResult::Malformed);
  // ALPN protocol length past its list, and an empty protocol.
  std::string alpn = ext(16, u16(3) + std::string("\x09h2", 3));
  EXPECT_EQ(parseClientHello(record(helloBody(u16(alpn.size()) + alpn)), out), ClientHelloResult::Malformed);
  std::string alpn_empty = ext(16, u16(1) + std::string("\0", 1));
  EXPECT_EQ(parseClientHello(record(helloBody(u16(alpn_empty.size()) + alpn_empty)), out),
            ClientHelloResult::Malformed);
  // Session id longer than 32, odd cipher suite length.
  std::string body = helloBody("");
  body[34] = 40;
  EXPECT_EQ(parseClientHello(record(body), out), ClientHelloResult::Malformed);
  // Twice the same extension.
  std::string twice = sniExt("a") + sniExt("b");
  EXPECT_EQ(parseClientHello(record(helloBody(u16(twice.size()) + twice)), out), ClientHelloResult::Malformed);
}

TEST(ClientHelloTest, HugeLengthsAreTooLargeWithoutWaiting) {
  ClientHello out;
  // The handshake header promises 16 MiB.
  const std::string huge = "\x16\x03\x01" + u16(100) + "\x01" + u24(0xffffff) + std::string(96, 'x');
  EXPECT_EQ(parseClientHello(huge, out), ClientHelloResult::TooLarge);
  // Just over the limit, spread over records.
  const std::string big = "\x16\x03\x01" + u16(16384) + "\x01" + u24(20000) + std::string(16380, 'x');
  EXPECT_EQ(parseClientHello(big, out), ClientHelloResult::TooLarge);
  // A record longer than TLS allows.
  const std::string record_too_long = "\x16\x03\x01" + u16(0x7000) + "\x01";
  EXPECT_EQ(parseClientHello(record_too_long, out), ClientHelloResult::Malformed);
  // A zero-length record.
  EXPECT_EQ(parseClientHello(std::string("\x16\x03\x01\x00\x00", 5), out), ClientHelloResult::Malformed);
}

TEST(ClientHelloTest, GarbageNeverReadsOutOfBounds) {
  // Pseudo-random bytes behind a valid record + handshake header: every
  // outcome is fine as long as the parser returns (ASan/valgrind catch the rest).
  uint32_t x = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    const size_t n = round % 300;
    for (size_t i = 0; i < n; ++i) {
      x = x * 1103515245 + 12345;
      body.push_back(static_cast<char>(x >> 16));
    }
    ClientHello out;
    const auto r = parseClientHello(record(body), out);
    EXPECT_NE(r, ClientHelloResult::NeedMoreData);
  }
}

TEST(TlsInspectorTest, CountsAndSetsState) {
  stats::Store store;
  TlsInspector inspector(store, kMaxClientHelloSize);
  server::ListenerFilterState state;
  const std::string hello = realClientHello("a.test", {"h2"});
  EXPECT_EQ(inspector.onData(std::string_view(hello).substr(0, 20), state), server::ListenerFilterStatus::NeedMoreData);
  EXPECT_EQ(inspector.onData(hello, state), server::ListenerFilterStatus::Continue);
  EXPECT_EQ(state.transport_protocol, "tls");
  EXPECT_EQ(state.server_name, "a.test");
  EXPECT_EQ(state.application_protocols, std::vector<std::string>{"h2"});
  EXPECT_EQ(store.counter("tls_inspector.tls_found").value(), 1u);
  EXPECT_EQ(store.counter("tls_inspector.sni_found").value(), 1u);
  EXPECT_EQ(store.counter("tls_inspector.alpn_found").value(), 1u);

  server::ListenerFilterState plain;
  EXPECT_EQ(inspector.onData("GET / HTTP/1.1\r\n", plain), server::ListenerFilterStatus::Continue);
  EXPECT_TRUE(plain.transport_protocol.empty());
  EXPECT_EQ(store.counter("tls_inspector.tls_not_found").value(), 1u);

  server::ListenerFilterState no_ext;
  EXPECT_EQ(inspector.onData(realClientHello("", {}), no_ext), server::ListenerFilterStatus::Continue);
  EXPECT_EQ(store.counter("tls_inspector.sni_not_found").value(), 1u);
  EXPECT_EQ(store.counter("tls_inspector.alpn_not_found").value(), 1u);

  // A hello that would not fit closes the connection.
  TlsInspector small(store, 64);
  server::ListenerFilterState s;
  EXPECT_EQ(small.onData(hello, s), server::ListenerFilterStatus::Close);
  EXPECT_EQ(store.counter("tls_inspector.client_hello_too_large").value(), 1u);
}

}  // namespace
}  // namespace courier::extensions::tls_inspector
