// A bounded, allocation-light parser of a TLS ClientHello as it arrives on a
// socket: the record layer (the hello may span several records), the
// handshake header and the extensions the tls_inspector wants (SNI, ALPN).
// Every length is checked against what encloses it; no input can make it
// read out of bounds.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace courier::extensions::tls_inspector {

// Envoy's limit: a ClientHello needing more bytes than this is refused.
constexpr size_t kMaxClientHelloSize = 16384;

enum class ClientHelloResult {
  NeedMoreData,  // a prefix of a ClientHello: read more
  NotTls,        // not a TLS ClientHello (plaintext, another protocol)
  Malformed,     // started like TLS, then broke its own lengths
  TooLarge,      // the hello would not fit in max_size bytes
  Found,
};

struct ClientHello {
  // The first host_name of server_name (lower-cased as sent); empty without SNI.
  std::string server_name;
  // application_layer_protocol_negotiation, in the client's order.
  std::vector<std::string> alpn;
};

// `data` is the stream from its first byte.
ClientHelloResult parseClientHello(std::string_view data, ClientHello& out, size_t max_size = kMaxClientHelloSize);

}  // namespace courier::extensions::tls_inspector
