// How fast a large xDS push is applied, and what it costs in memory: the real
// courier binary against the fake ADS server, both protocols.
//
// For each cluster count N: the proxy starts with one seed cluster and a
// listener routing to it. Then CDS pushes N STATIC clusters of E endpoints
// each (every endpoint a distinct loopback address, as a mesh's pods are)
// followed by an LDS update routing to the last of them, and we time:
//   push -> CDS ACKed, push -> first request answered through the new route,
//   a route-only change -> first request on it, and a one-cluster change ->
//   ACKed (delta sends one resource, SotW resends all N).
// RSS is read from /proc before and after the push.
//
// Not a test: run by hand or by `ci/do_ci.sh bench`.
//   xds_scale_benchmark [--clusters=1000,10000] [--endpoints=10,20]
//   [--protocol=sotw|delta|both]
// Two endpoint counts at the same cluster count give the cost of a host (the
// slope) apart from the cost of a cluster.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "source/common/protobuf/yaml_loader.h"
#include "test/integration/ads_driver.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"
#include "test/test_common/net.h"

namespace courier::test {
namespace {

using Clock = std::chrono::steady_clock;
using envoy::config::cluster::v3::Cluster;
using envoy::config::listener::v3::Listener;

constexpr char kClusterType[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Resident set of a process in KiB (VmRSS), 0 if unreadable.
long rssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// CPU time (user + system) the process has used so far, in ms, all threads.
double cpuMs(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  std::istringstream rest(content.substr(content.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Endpoint k of the mesh: 127.x.y.z, distinct for k < 16M, port 1 (never
// connected: only the clusters a route names get traffic).
std::string meshAddress(size_t k) {
  return "127." + std::to_string(1 + (k >> 16) % 254) + "." + std::to_string((k >> 8) & 255) + "." +
         std::to_string(k & 255);
}

Cluster makeCluster(const std::string& name, size_t endpoints, size_t first_endpoint, uint16_t live_port) {
  Cluster c;
  c.set_name(name);
  c.set_type(Cluster::STATIC);
  c.mutable_connect_timeout()->set_seconds(1);
  auto* cla = c.mutable_load_assignment();
  cla->set_cluster_name(name);
  auto* locality = cla->add_endpoints();
  for (size_t i = 0; i < endpoints; ++i) {
    auto* address = locality->add_lb_endpoints()->mutable_endpoint()->mutable_address()->mutable_socket_address();
    if (live_port != 0) {
      address->set_address("127.0.0.1");
      address->set_port_value(live_port);
    } else {
      address->set_address(meshAddress(first_endpoint + i));
      address->set_port_value(1);
    }
  }
  return c;
}

Listener makeListener(uint16_t port, const std::string& cluster_name) {
  Listener l;
  const std::string yaml = R"(name: scale
address: {socket_address: {address: 127.0.0.1, port_value: )" +
                           std::to_string(port) + R"(}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: scale
      route_config:
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: {prefix: "/"}
            route: {cluster: )" +
                           cluster_name + R"(}
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
  if (!protobuf::loadFromYamlString(yaml, l).ok()) std::fprintf(stderr, "bad listener yaml\n");
  return l;
}

std::string bootstrap(bool delta, uint16_t ads_port) { return adsBootstrap(delta, ads_port, "scale-node"); }

// Polls the listener until the upstream named `expected` answers; ms until
// then, or -1 after 60 s.
double firstRequestAnswered(uint16_t port, const std::string& expected, Clock::time_point start) {
  const auto deadline = start + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    HttpResponse r = httpRequest(port, "GET", "/");
    if (r.status == 200 && r.body.rfind(expected + " ", 0) == 0) return msSince(start);
  }
  return -1;
}

struct Result {
  double cds_ack_ms = -1;
  double first_request_ms = -1;
  double route_change_ms = -1;
  double one_cluster_ack_ms = -1;
  // The proxy's own CPU from the push to the first request on the new route:
  // unlike wall time, not inflated by whatever else the machine runs.
  double apply_cpu_ms = -1;
  long rss_before_kib = 0;
  long rss_after_kib = 0;
};

bool run(bool delta, size_t clusters, size_t endpoints, Result& out) {
  config::test::FakeAdsServer ads;
  AdsDriver driver(ads, delta);
  const uint16_t ads_port = static_cast<uint16_t>(std::stoi(ads.address().substr(ads.address().rfind(':') + 1)));
  TcpServer seed(namedUpstream("seed"));
  TcpServer target(namedUpstream("target"));
  TcpServer second(namedUpstream("second"));
  const uint16_t port = unusedPort();

  CourierProcess courier;
  courier.setWaitForReady(false);
  if (!courier.start(bootstrap(delta, ads_port))) {
    std::fprintf(stderr, "courier did not start:\n%s\n", courier.log().c_str());
    return false;
  }
  size_t cursor = 0;
  if (!driver.serve(0, cursor, kClusterType, "0", std::vector{makeCluster("seed", 1, 0, seed.port())}) ||
      !driver.serve(0, cursor, kListenerType, "0", std::vector{makeListener(port, "seed")}) ||
      firstRequestAnswered(port, "seed", Clock::now()) < 0) {
    std::fprintf(stderr, "initial config not served:\n%s\n", courier.log().c_str());
    return false;
  }
  out.rss_before_kib = rssKib(courier.pid());

  // N clusters; the last two have live endpoints so routes can name them.
  std::vector<Cluster> set;
  set.reserve(clusters + 1);
  set.push_back(makeCluster("seed", 1, 0, seed.port()));
  for (size_t i = 0; i < clusters; ++i) {
    const uint16_t live = i == clusters - 1 ? target.port() : i == clusters - 2 ? second.port() : 0;
    set.push_back(makeCluster("c" + std::to_string(i), endpoints, i * endpoints, live));
  }
  const std::string last = "c" + std::to_string(clusters - 1);
  const std::string second_last = "c" + std::to_string(clusters - 2);

  const double cpu_before = cpuMs(courier.pid());
  auto start = Clock::now();
  if (!driver.push(0, kClusterType, "1", set) ||
      !driver.push(0, kListenerType, "1", std::vector{makeListener(port, last)})) {
    return false;
  }
  if (!driver.waitAck(0, cursor, kClusterType, "1")) {
    std::fprintf(stderr, "CDS push not ACKed:\n%s\n", courier.log().c_str());
    return false;
  }
  out.cds_ack_ms = msSince(start);
  out.first_request_ms = firstRequestAnswered(port, "target", start);
  out.apply_cpu_ms = cpuMs(courier.pid()) - cpu_before;
  if (!driver.waitAck(0, cursor, kListenerType, "1")) return false;
  // The heap is trimmed on the main loop after a large response; take the
  // lowest RSS over a second so the figure is the kept state, not garbage
  // still waiting for that turn.
  out.rss_after_kib = rssKib(courier.pid());
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    out.rss_after_kib = std::min(out.rss_after_kib, rssKib(courier.pid()));
  }

  start = Clock::now();
  if (!driver.push(0, kListenerType, "2", std::vector{makeListener(port, second_last)})) return false;
  out.route_change_ms = firstRequestAnswered(port, "second", start);
  if (!driver.waitAck(0, cursor, kListenerType, "2")) return false;

  // One cluster changes (its endpoint count): delta carries it alone.
  set[1] = makeCluster("c0", endpoints + 1, 0, 0);
  start = Clock::now();
  const bool sent =
      delta ? driver.push(0, kClusterType, "2", std::vector{set[1]}) : driver.push(0, kClusterType, "2", set);
  if (!sent || !driver.waitAck(0, cursor, kClusterType, "2")) return false;
  out.one_cluster_ack_ms = msSince(start);

  courier.signal(SIGTERM);
  courier.waitForExit(std::chrono::seconds(30));
  return true;
}

std::vector<size_t> parseList(const std::string& s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoul(item));
  return out;
}

}  // namespace
}  // namespace courier::test

int main(int argc, char** argv) {
  using namespace courier::test;
  std::vector<size_t> counts = {1000, 10000};
  std::vector<size_t> endpoint_counts = {10};
  std::vector<bool> protocols = {false, true};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--clusters=", 0) == 0) {
      counts = parseList(arg.substr(11));
    } else if (arg.rfind("--endpoints=", 0) == 0) {
      endpoint_counts = parseList(arg.substr(12));
    } else if (arg == "--protocol=sotw") {
      protocols = {false};
    } else if (arg == "--protocol=delta") {
      protocols = {true};
    } else if (arg != "--protocol=both") {
      std::fprintf(stderr,
                   "usage: %s [--clusters=N,M] [--endpoints=E,F] "
                   "[--protocol=sotw|delta|both]\n",
                   argv[0]);
      return 2;
    }
  }
  std::printf("%-6s %8s %6s %11s %13s %13s %13s %11s %8s %16s\n", "proto", "clusters", "eps", "cds_ack_ms",
              "first_req_ms", "apply_cpu_ms", "route_chg_ms", "one_upd_ms", "rss_MB", "B/cluster+hosts");
  int failures = 0;
  for (bool delta : protocols) {
    for (size_t n : counts) {
      for (size_t endpoints : endpoint_counts) {
        if (n < 2) continue;
        Result r;
        if (!run(delta, n, endpoints, r)) {
          std::printf("%-6s %8zu FAILED\n", delta ? "delta" : "sotw", n);
          ++failures;
          continue;
        }
        const double grown = static_cast<double>(r.rss_after_kib - r.rss_before_kib) * 1024.0;
        std::printf("%-6s %8zu %6zu %11.1f %13.1f %13.1f %13.1f %11.1f %8.1f %16.0f\n", delta ? "delta" : "sotw", n,
                    endpoints, r.cds_ack_ms, r.first_request_ms, r.apply_cpu_ms, r.route_change_ms,
                    r.one_cluster_ack_ms, r.rss_after_kib / 1024.0, grown / static_cast<double>(n));
        std::fflush(stdout);
      }
    }
  }
  return failures == 0 ? 0 : 1;
}
