// The accept/forward path of the real courier binary on loopback (one
// worker): new connections per second through the TCP proxy, and throughput
// of a 1 MiB transfer to a sink upstream.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "benchmark/benchmark.h"
#include "test/integration/configs.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

// Counts what it receives and acknowledges every 1 MiB with one byte.
TcpServer::Handler sinkWithAck() {
  return [](int fd) {
    char buf[65536];
    size_t since_ack = 0;
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
      since_ack += static_cast<size_t>(n);
      while (since_ack >= (1u << 20)) {
        since_ack -= 1u << 20;
        ::send(fd, "k", 1, MSG_NOSIGNAL);
      }
    }
  };
}

struct Fixture {
  explicit Fixture(TcpServer::Handler handler) : upstream(std::move(handler)) {
    ok = courier.start(tcpProxyConfig({upstream.port()}), {"--concurrency", "1", "--log-level", "warn"});
    port = courier.listenerPort("tcp");
  }
  TcpServer upstream;
  CourierProcess courier;
  uint16_t port = 0;
  bool ok = false;
};

void BM_ProxyOneMebibyte(benchmark::State& state) {
  Fixture f(sinkWithAck());
  if (!f.ok) {
    state.SkipWithError("courier did not start");
    return;
  }
  TcpClient client(f.port);
  const std::string mib(1 << 20, 'm');
  for (auto _ : state) {
    client.write(mib);
    if (client.readExactly(1) != "k") {
      state.SkipWithError("no ack");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(mib.size()));
}
BENCHMARK(BM_ProxyOneMebibyte)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_ProxyConnectAndEcho(benchmark::State& state) {
  Fixture f(TcpServer::echo());
  if (!f.ok) {
    state.SkipWithError("courier did not start");
    return;
  }
  for (auto _ : state) {
    TcpClient client(f.port);
    client.write("p");
    if (client.readExactly(1) != "p") {
      state.SkipWithError("no echo");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProxyConnectAndEcho)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace courier::test

BENCHMARK_MAIN();
