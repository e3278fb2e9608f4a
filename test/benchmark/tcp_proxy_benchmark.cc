// The accept/forward path of the real courier binary on loopback (one
// worker): new connections per second through the TCP proxy, and throughput
// of a 1 MiB transfer to a sink upstream.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
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

// User+system CPU seconds of a process so far, from /proc.
double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the ")" that ends the command name; utime and stime are 14 and 15.
  std::istringstream rest(content.substr(content.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Reports the proxy's own CPU per iteration as a counter.
class ProxyCpu {
 public:
  explicit ProxyCpu(pid_t pid) : pid_(pid), start_(cpuSeconds(pid)) {}
  void report(benchmark::State& state) {
    if (state.iterations() == 0) return;
    state.counters["proxy_cpu_us"] = (cpuSeconds(pid_) - start_) * 1e6 / static_cast<double>(state.iterations());
  }

 private:
  pid_t pid_;
  double start_;
};

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

// state.range(0) == 1: through courier; 0: straight to the upstream (the
// baseline the proxy's cost is read against).
void BM_OneMebibyte(benchmark::State& state) {
  Fixture f(sinkWithAck());
  if (!f.ok) {
    state.SkipWithError("courier did not start");
    return;
  }
  TcpClient client(state.range(0) ? f.port : f.upstream.port());
  const std::string mib(1 << 20, 'm');
  ProxyCpu cpu(f.courier.pid());
  for (auto _ : state) {
    client.write(mib);
    if (client.readExactly(1) != "k") {
      state.SkipWithError("no ack");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(mib.size()));
  cpu.report(state);
}
BENCHMARK(BM_OneMebibyte)->ArgName("proxied")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_ConnectAndEcho(benchmark::State& state) {
  Fixture f(TcpServer::echo());
  if (!f.ok) {
    state.SkipWithError("courier did not start");
    return;
  }
  const uint16_t port = state.range(0) ? f.port : f.upstream.port();
  ProxyCpu cpu(f.courier.pid());
  for (auto _ : state) {
    TcpClient client(port);
    client.write("p");
    if (client.readExactly(1) != "p") {
      state.SkipWithError("no echo");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  cpu.report(state);
}
BENCHMARK(BM_ConnectAndEcho)->ArgName("proxied")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace courier::test

BENCHMARK_MAIN();
