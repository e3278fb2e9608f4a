#include "source/server/admin/admin_server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace courier::server {
namespace {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

// A tiny blocking HTTP/1.1 client: one request, Connection: close, read to
// EOF. Every socket wait is bounded by SO_RCVTIMEO/SO_SNDTIMEO.
HttpReply request(uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body = "", const std::string& content_type = "") {
  HttpReply reply;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ADD_FAILURE() << "connect failed";
    close(fd);
    return reply;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
  if (!body.empty() || method == "POST")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    const ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;  // EOF, or the 5 s timeout
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);

  const size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    ADD_FAILURE() << "no complete response: " << raw;
    return reply;
  }
  const std::string head = raw.substr(0, header_end);
  reply.body = raw.substr(header_end + 4);
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  reply.status = std::stoi(status_line.substr(status_line.find(' ') + 1, 3));
  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line =
        head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    reply.headers[lower(line.substr(0, colon))] = value;
  }
  return reply;
}

class AdminServerTest : public testing::Test {
 protected:
  void SetUp() override {
    static const int threads_enabled = evthread_use_pthreads();
    ASSERT_EQ(threads_enabled, 0);
    base_ = event_base_new();
    ASSERT_NE(base_, nullptr);
    admin_ = std::make_unique<AdminServer>(base_, store_);
  }

  // Handlers must be registered before start(): after it, the loop thread owns the server.
  void start() {
    ASSERT_TRUE(admin_->listen("127.0.0.1", 0).ok());
    ASSERT_NE(admin_->port(), 0);
    loop_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
  }

  void TearDown() override {
    if (loop_.joinable()) {
      // A loopbreak issued before the thread enters the loop would be lost
      // (the loop clears the flag on entry); a queued event is not.
      const timeval now{0, 0};
      event_base_once(
          base_, -1, EV_TIMEOUT,
          [](evutil_socket_t, short, void* base) {
            event_base_loopbreak(static_cast<event_base*>(base));
          },
          base_, &now);
      loop_.join();
    }
    admin_.reset();
    event_base_free(base_);
  }

  HttpReply get(const std::string& target) { return request(admin_->port(), "GET", target); }

  stats::Store store_;
  event_base* base_ = nullptr;
  std::unique_ptr<AdminServer> admin_;
  std::thread loop_;
};

TEST_F(AdminServerTest, ListensOnEphemeralPort) {
  start();
  EXPECT_GT(admin_->port(), 0);
}

TEST_F(AdminServerTest, HelpListsPathsSortedWithPostMarkerAndParams) {
  admin_->addHandler("/quitquitquit", "exit the server", true, [](const AdminRequest&) {
    return AdminResponse{200, "text/plain", "OK\n"};
  });
  start();
  const HttpReply r = get("/help");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "text/plain; charset=UTF-8");
  EXPECT_EQ(r.body.rfind("admin commands are:\n"
                         "  /help: print out list of admin commands\n"
                         "  /quitquitquit (POST): exit the server\n"
                         "  /reset_counters (POST): reset all counters to zero\n"
                         "  /stats: print server stats\n"
                         "      usedonly: Only include stats that have been written by system "
                         "since restart\n"
                         "      filter: Regular expression (Google re2) for filtering stats\n"
                         "      format: Format to use; One of (text, json, prometheus)\n",
                         0),
            0u)
      << r.body;
  EXPECT_NE(r.body.find("  /stats/prometheus: print server stats in prometheus format\n"),
            std::string::npos);
}

TEST_F(AdminServerTest, UnknownPathIs404WithHelp) {
  start();
  const HttpReply r = get("/nope?x=1");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.rfind("invalid path. admin commands are:\n  /help: ", 0), 0u) << r.body;
}

TEST_F(AdminServerTest, PathMatchIsExact) {
  start();
  EXPECT_EQ(get("/stats/").status, 404);
  EXPECT_EQ(get("/stat").status, 404);
}

TEST_F(AdminServerTest, MutatingHandlerRefusesGet) {
  store_.counter("server.c").add(5);
  start();
  const HttpReply r = get("/reset_counters");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body, "Method GET not allowed, POST required.");
  EXPECT_EQ(store_.counter("server.c").value(), 5u);
}

TEST_F(AdminServerTest, ResetCountersByPost) {
  store_.counter("server.c").add(5);
  start();
  const HttpReply r = request(admin_->port(), "POST", "/reset_counters");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "OK\n");
  EXPECT_EQ(store_.counter("server.c").value(), 0u);
}

TEST_F(AdminServerTest, StatsTextSortedWithHistograms) {
  store_.counter("cluster.b.upstream_cx_total").add(3);
  store_.gauge("cluster.a.membership_healthy").set(1);
  store_.histogram("cluster.a.upstream_rq_time");
  start();
  const HttpReply r = get("/stats");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "text/plain; charset=UTF-8");
  EXPECT_EQ(r.headers.at("cache-control"), "no-cache, max-age=0");
  EXPECT_EQ(r.headers.at("x-content-type-options"), "nosniff");
  EXPECT_EQ(r.body,
            "cluster.a.membership_healthy: 1\n"
            "cluster.b.upstream_cx_total: 3\n"
            "cluster.a.upstream_rq_time: No recorded values\n");
}

TEST_F(AdminServerTest, StatsJson) {
  store_.counter("server.c").add(2);
  start();
  const HttpReply r = get("/stats?format=json");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.body, "{\"stats\":[{\"name\":\"server.c\",\"value\":2}]}");
}

TEST_F(AdminServerTest, StatsPrometheusBothPaths) {
  store_.counter("cluster.backend.upstream_cx_total").add(4);
  start();
  const std::string expected =
      "# TYPE envoy_cluster_upstream_cx_total counter\n"
      "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"backend\"} 4\n\n";
  const HttpReply a = get("/stats/prometheus");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.headers.at("content-type"), "text/plain; charset=UTF-8");
  EXPECT_EQ(a.body, expected);
  const HttpReply b = get("/stats?format=prometheus");
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.body, expected);
}

TEST_F(AdminServerTest, FilterIsPercentDecodedRe2) {
  store_.counter("cluster.a.upstream_cx_total");
  store_.counter("server.live");
  start();
  EXPECT_EQ(get("/stats?filter=%5Eserver").body, "server.live: 0\n");
  EXPECT_EQ(get("/stats?filter=cx_tot[a-z]+").body, "cluster.a.upstream_cx_total: 0\n");
}

TEST_F(AdminServerTest, UsedOnly) {
  store_.counter("a.used").inc();
  store_.counter("a.unused");
  start();
  EXPECT_EQ(get("/stats?usedonly").body, "a.used: 1\n");
  EXPECT_EQ(get("/stats/prometheus?usedonly").body,
            "# TYPE envoy_a_used counter\nenvoy_a_used{} 1\n\n");
}

TEST_F(AdminServerTest, BadStatsParamsAre400) {
  start();
  HttpReply r = get("/stats?filter=(");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "Invalid re2 regex");
  r = get("/stats?format=xml");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n");
  EXPECT_EQ(get("/stats?type=Nope").status, 400);
  EXPECT_EQ(get("/stats?histogram_buckets=nope").status, 400);
  EXPECT_EQ(get("/stats/prometheus?filter=(").status, 400);
}

TEST_F(AdminServerTest, HandlerGetsMethodPathAndParams) {
  AdminRequest seen;
  admin_->addHandler("/echo", "echo", false, [&seen](const AdminRequest& r) {
    seen = r;
    return AdminResponse{503, "application/json", "{\"state\":\"PRE_INITIALIZING\"}"};
  });
  start();
  const HttpReply r = get("/echo?x=1&flag&x=2&name=a%20b+c");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.body, "{\"state\":\"PRE_INITIALIZING\"}");
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.path, "/echo");
  EXPECT_EQ(seen.query.count("x"), 2u);
  EXPECT_TRUE(seen.has("flag"));
  EXPECT_EQ(seen.get("flag", "absent"), "");
  EXPECT_EQ(seen.get("name"), "a b+c");
  EXPECT_EQ(seen.get("missing", "dflt"), "dflt");
}

TEST_F(AdminServerTest, PostFormBodyParamsReachHandler) {
  AdminRequest seen;
  admin_->addHandler("/logging", "query/change logging levels", true,
                     [&seen](const AdminRequest& r) {
                       seen = r;
                       return AdminResponse{200, AdminServer::kTextContentType, "done\n"};
                     });
  start();
  const HttpReply r = request(admin_->port(), "POST", "/logging?paths=a:debug", "level=info",
                              "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.get("paths"), "a:debug");
  EXPECT_EQ(seen.get("level"), "info");
}

TEST_F(AdminServerTest, HeadOnMutatingHandlerIs405) {
  admin_->addHandler("/healthcheck/fail", "cause the server to fail health checks", true,
                     [](const AdminRequest&) { return AdminResponse{}; });
  start();
  EXPECT_EQ(request(admin_->port(), "HEAD", "/healthcheck/fail").status, 405);
  EXPECT_EQ(request(admin_->port(), "PUT", "/healthcheck/fail").status, 405);
}

TEST_F(AdminServerTest, FlushOnAdminMergesHistograms) {
  store_.histogram("server.h").recordValue(1);
  admin_->setFlushOnAdmin(true);
  start();
  EXPECT_EQ(get("/stats?filter=server.h").body.rfind("server.h: P0(1,1) P25(1.025,1.025)", 0), 0u);
}

TEST_F(AdminServerTest, AddHandlerRejectsDuplicatesAndBadPaths) {
  EXPECT_FALSE(admin_->addHandler("/stats", "again", false, nullptr));
  EXPECT_FALSE(admin_->addHandler("noslash", "x", false, nullptr));
  EXPECT_FALSE(admin_->addHandler("/a?b", "x", false, nullptr));
  EXPECT_FALSE(admin_->addHandler("/", "x", false, nullptr));
  EXPECT_TRUE(admin_->addHandler("/ready", "print server state", false, [](const AdminRequest&) {
    return AdminResponse{200, "", "LIVE\n"};
  }));
}

TEST_F(AdminServerTest, ListenOnBusyPortFails) {
  start();
  event_base* other_base = event_base_new();
  {
    AdminServer other(other_base, store_);
    const absl::Status status = other.listen("127.0.0.1", admin_->port());
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.message().find("cannot listen on 127.0.0.1:"), std::string::npos)
        << status.message();
  }
  event_base_free(other_base);
}

TEST_F(AdminServerTest, HandleRunsWithoutHttp) {
  store_.counter("server.c").inc();
  const AdminResponse r = admin_->handle("GET", "/stats?format=json");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"stats\":[{\"name\":\"server.c\",\"value\":1}]}");
}

TEST(AdminQueryTest, ParsesRepeatedKeysFlagsAndEscapes) {
  const AdminQueryParams p = AdminServer::parseQuery("a=1&b&c=x%20y&a=2&&d=%zz&e=%41");
  EXPECT_EQ(p.count("a"), 2u);
  EXPECT_EQ(p.find("b")->second, "");
  EXPECT_EQ(p.find("c")->second, "x y");
  EXPECT_EQ(p.find("d")->second, "%zz");
  EXPECT_EQ(p.find("e")->second, "A");
  EXPECT_EQ(p.size(), 6u);
}

TEST(AdminQueryTest, PercentDecodeKeepsPlusAndTrailingPercent) {
  EXPECT_EQ(AdminServer::percentDecode("a+b"), "a+b");
  EXPECT_EQ(AdminServer::percentDecode("too%20lar%20"), "too lar ");
  EXPECT_EQ(AdminServer::percentDecode("too large%"), "too large%");
  EXPECT_EQ(AdminServer::percentDecode("x%2"), "x%2");
}

}  // namespace
}  // namespace courier::server
