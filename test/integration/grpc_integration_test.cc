// gRPC end to end: a real grpc++ client calls a real grpc++ server through the
// courier binary (HTTP/2 both sides), covering every streaming shape, metadata,
// big messages, deadlines, cancellation, error statuses and the gRPC-shaped
// local replies courier sends when it cannot route a call.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "echo.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/extensions/filters/http/grpc_web/base64.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

constexpr int kMaxMessage = 64 * 1024 * 1024;

class EchoService final : public courier::test::Echo::Service {
 public:
  grpc::Status Unary(grpc::ServerContext* ctx, const EchoRequest* req, EchoResponse* resp) override {
    if (req->sleep_ms() > 0) sleepUnlessCancelled(ctx, req->sleep_ms());
    if (req->fail_first() > 0) {
      if (++flaky_calls_ > req->fail_first()) return reply(ctx, req, resp);
    }
    if (req->fail_code() != 0) return grpc::Status(static_cast<grpc::StatusCode>(req->fail_code()), req->message());
    // Client metadata comes back both as initial and as trailing metadata, so
    // the test sees that each direction crossed the proxy.
    auto meta = ctx->client_metadata().find("x-client-meta");
    if (meta != ctx->client_metadata().end()) {
      std::string v(meta->second.data(), meta->second.size());
      ctx->AddInitialMetadata("x-initial-meta", "initial-" + v);
      ctx->AddTrailingMetadata("x-trailing-meta", "trailing-" + v);
    }
    return reply(ctx, req, resp);
  }

  grpc::Status reply(grpc::ServerContext*, const EchoRequest* req, EchoResponse* resp) {
    resp->set_message(req->message());
    resp->set_payload(req->payload());
    return grpc::Status::OK;
  }

  grpc::Status ServerStream(grpc::ServerContext* ctx, const EchoRequest* req,
                            grpc::ServerWriter<EchoResponse>* writer) override {
    for (int i = 0; i < req->count(); ++i) {
      if (ctx->IsCancelled()) {
        cancelled_ = true;
        return grpc::Status::CANCELLED;
      }
      EchoResponse r;
      r.set_message(req->message());
      r.set_index(i);
      if (!writer->Write(r)) {
        // The write failing means the call is gone (cancelled downstream).
        cancelled_ = true;
        return grpc::Status::CANCELLED;
      }
      if (req->sleep_ms() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(req->sleep_ms()));
    }
    return grpc::Status::OK;
  }

  grpc::Status ClientStream(grpc::ServerContext*, grpc::ServerReader<EchoRequest>* reader, EchoResponse* resp) override {
    EchoRequest req;
    int n = 0;
    std::string all;
    while (reader->Read(&req)) {
      all += req.message();
      ++n;
    }
    resp->set_message(all);
    resp->set_index(n);
    return grpc::Status::OK;
  }

  grpc::Status Bidi(grpc::ServerContext*, grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    EchoRequest req;
    int i = 0;
    while (stream->Read(&req)) {
      EchoResponse r;
      r.set_message(req.message());
      r.set_index(i++);
      if (!stream->Write(r)) break;
    }
    return grpc::Status::OK;
  }

  std::atomic<bool> cancelled_{false};
  std::atomic<int> flaky_calls_{0};

 private:
  void sleepUnlessCancelled(grpc::ServerContext* ctx, int ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until && !ctx->IsCancelled()) std::this_thread::sleep_for(5ms);
  }
};

// filters: http_filters entries that go before the router.
std::string config(uint16_t upstream_port, const std::string& filters = "", const std::string& codec_type = "HTTP2") {
  return hcmListener("          codec_type: " + codec_type + "\n") + R"(          route_config:
            name: local
            validate_clusters: false
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/courier.test.Echo/"}
                route:
                  cluster: grpc_backend
                  retry_policy:
                    retry_on: "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable"
                    num_retries: 2
              - match: {prefix: "/courier.test.Missing/"}
                route: {cluster: nowhere}
          http_filters:
)" + filters + R"(          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + staticCluster("grpc_backend", upstream_port) +
         R"(    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
)";
}

class GrpcIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    builder.SetMaxReceiveMessageSize(kMaxMessage);
    builder.SetMaxSendMessageSize(kMaxMessage);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    ASSERT_TRUE(courier_.start(config(static_cast<uint16_t>(port), filters(), codecType()), {"--concurrency", "1"}))
        << courier_.log();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessage);
    args.SetMaxSendMessageSize(kMaxMessage);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(courier_.listenerPort("http")),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = courier::test::Echo::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 1s);
  }
  virtual std::string filters() { return ""; }
  virtual std::string codecType() { return "HTTP2"; }

  static void setDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds d) {
    ctx.set_deadline(std::chrono::system_clock::now() + d);
  }

  grpc::Status unary(const std::string& message, EchoResponse* resp) {
    grpc::ClientContext ctx;
    setDeadline(ctx, 10s);
    EchoRequest req;
    req.set_message(message);
    return stub_->Unary(&ctx, req, resp);
  }

  EchoService service_;
  std::unique_ptr<grpc::Server> server_;
  CourierProcess courier_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<courier::test::Echo::Stub> stub_;
};

TEST_F(GrpcIntegrationTest, UnaryRoundTripCarriesInitialAndTrailingMetadata) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  ctx.AddMetadata("x-client-meta", "abc");
  EchoRequest req;
  req.set_message("hello");
  EchoResponse resp;
  grpc::Status s = stub_->Unary(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(resp.message(), "hello");
  auto initial = ctx.GetServerInitialMetadata().find("x-initial-meta");
  ASSERT_NE(initial, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(initial->second.data(), initial->second.size()), "initial-abc");
  auto trailing = ctx.GetServerTrailingMetadata().find("x-trailing-meta");
  ASSERT_NE(trailing, ctx.GetServerTrailingMetadata().end());
  EXPECT_EQ(std::string(trailing->second.data(), trailing->second.size()), "trailing-abc");
}

TEST_F(GrpcIntegrationTest, ServerStreamingDeliversAHundredMessagesInOrder) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoRequest req;
  req.set_message("s");
  req.set_count(100);
  auto reader = stub_->ServerStream(&ctx, req);
  EchoResponse r;
  int n = 0;
  while (reader->Read(&r)) {
    EXPECT_EQ(r.index(), n);
    ++n;
  }
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(n, 100);
}

TEST_F(GrpcIntegrationTest, ClientStreamingDeliversAHundredMessages) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoResponse resp;
  auto writer = stub_->ClientStream(&ctx, &resp);
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    EchoRequest req;
    req.set_message(std::to_string(i % 10));
    expected += req.message();
    ASSERT_TRUE(writer->Write(req));
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(resp.index(), 100);
  EXPECT_EQ(resp.message(), expected);
}

TEST_F(GrpcIntegrationTest, BidiStreamingEchoesAHundredMessagesInLockstep) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  auto stream = stub_->Bidi(&ctx);
  for (int i = 0; i < 100; ++i) {
    EchoRequest req;
    req.set_message("m" + std::to_string(i));
    ASSERT_TRUE(stream->Write(req));
    // Each answer arrives before the next request goes: nothing is held back
    // waiting for the end of the request stream.
    EchoResponse r;
    ASSERT_TRUE(stream->Read(&r));
    EXPECT_EQ(r.message(), "m" + std::to_string(i));
    EXPECT_EQ(r.index(), i);
  }
  stream->WritesDone();
  EchoResponse extra;
  EXPECT_FALSE(stream->Read(&extra));
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
}

TEST_F(GrpcIntegrationTest, SixteenMebibyteMessageCrossesBothWays) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 30s);
  EchoRequest req;
  std::string payload(16 * 1024 * 1024, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 + (i >> 12));
  req.set_payload(payload);
  EchoResponse resp;
  grpc::Status s = stub_->Unary(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(resp.payload().size(), payload.size());
  EXPECT_TRUE(resp.payload() == payload);
}

TEST_F(GrpcIntegrationTest, DeadlineExceededReachesTheClientAndCourierStaysHealthy) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 200ms);
  EchoRequest req;
  req.set_sleep_ms(2000);
  EchoResponse resp;
  grpc::Status s = stub_->Unary(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_TRUE(courier_.running());
  EchoResponse after;
  grpc::Status ok = unary("after", &after);
  EXPECT_TRUE(ok.ok()) << ok.error_code() << " " << ok.error_message();
  EXPECT_EQ(after.message(), "after");
}

TEST_F(GrpcIntegrationTest, CancellingMidStreamReachesTheServer) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 30s);
  EchoRequest req;
  req.set_message("c");
  req.set_count(100000);
  req.set_sleep_ms(2);
  auto reader = stub_->ServerStream(&ctx, req);
  EchoResponse r;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(reader->Read(&r));
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED);
  // The reset travelled upstream: the server stops long before 100000 messages.
  auto until = std::chrono::steady_clock::now() + 10s;
  while (!service_.cancelled_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(service_.cancelled_);
  EchoResponse after;
  EXPECT_TRUE(unary("after", &after).ok());
}

TEST_F(GrpcIntegrationTest, ServerErrorStatusAndMessageReachTheClient) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoRequest req;
  req.set_message("no such thing 100%");
  req.set_fail_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EchoResponse resp;
  grpc::Status s = stub_->Unary(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no such thing 100%");
}

TEST_F(GrpcIntegrationTest, RetryOnGrpcStatusRetriesATrailersOnlyFailure) {
  auto call = [&](grpc::StatusCode code, int fail_first) {
    service_.flaky_calls_ = 0;
    grpc::ClientContext ctx;
    setDeadline(ctx, 10s);
    EchoRequest req;
    req.set_message("flaky");
    req.set_fail_code(static_cast<int>(code));
    req.set_fail_first(fail_first);
    EchoResponse resp;
    return stub_->Unary(&ctx, req, &resp);
  };
  // UNAVAILABLE once: the retry succeeds.
  grpc::Status s = call(grpc::StatusCode::UNAVAILABLE, 1);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(service_.flaky_calls_, 2);
  // INTERNAL every time: the first try and num_retries (2) more, then the
  // client sees the upstream's status.
  s = call(grpc::StatusCode::INTERNAL, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(service_.flaky_calls_, 3);
  // NOT_FOUND is no retry condition.
  s = call(grpc::StatusCode::NOT_FOUND, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(service_.flaky_calls_, 1);
  EXPECT_TRUE(courier_.waitForStat("cluster.grpc_backend.upstream_rq_retry", 3));
}

TEST_F(GrpcIntegrationTest, MissingClusterIsAGrpcUnavailable) {
  // The router's 503 (cluster_not_found) becomes a trailers-only gRPC reply.
  auto stub = courier::test::Missing::NewStub(channel_);
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoRequest req;
  EchoResponse resp;
  grpc::Status s = stub->Unary(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_TRUE(courier_.waitForStat("http.ingress.downstream_rq_2xx", 1));
}

TEST_F(GrpcIntegrationTest, NoRouteIsAGrpcUnimplemented) {
  auto stub = courier::test::Unrouted::NewStub(channel_);
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoRequest req;
  EchoResponse resp;
  grpc::Status s = stub->Unary(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << s.error_message();
  EXPECT_TRUE(courier_.waitForStat("http.ingress.no_route", 1));
}

// grpc-timeout, honoured because the route sets grpc_timeout_header_max, is
// checked with a raw HTTP/1 client against an upstream that never answers:
// the 504 arrives after the client's deadline (or the cap), not the 30s route
// timeout, and as a gRPC-shaped reply.
std::string timeoutConfig(uint16_t upstream_port) {
  return hcmListener("          codec_type: AUTO\n") + R"(          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/capped"}
                route: {cluster: silent, timeout: 30s, max_stream_duration: {grpc_timeout_header_max: 0.3s}}
              - match: {prefix: "/deprecated"}
                route: {cluster: silent, timeout: 30s, max_grpc_timeout: 0s}
              - match: {prefix: "/plain"}
                route: {cluster: silent, timeout: 0.3s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
)" + staticCluster("silent", upstream_port);
}

std::string grpcPost(const std::string& path, const std::string& grpc_timeout) {
  std::string r = "POST " + path + " HTTP/1.1\r\nhost: example.com\r\ncontent-type: application/grpc\r\n";
  if (!grpc_timeout.empty()) r += "grpc-timeout: " + grpc_timeout + "\r\n";
  return r + "te: trailers\r\ncontent-length: 0\r\n\r\n";
}

TEST(GrpcTimeoutTest, GrpcTimeoutHeaderSetsTheRouteTimeoutWithinTheMaximum) {
  std::atomic<bool> stop{false};
  TcpServer silent(silentUpstream(stop));
  CourierProcess courier;
  ASSERT_TRUE(courier.start(timeoutConfig(silent.port()))) << courier.log();
  struct Case {
    std::string path, grpc_timeout;
  };
  // The header below the cap; the header above the cap; no cap (0) with a
  // header, through the deprecated field.
  for (const Case& c : {Case{"/capped", "100m"}, Case{"/capped", "99S"}, Case{"/deprecated", "200000u"}}) {
    Raw client(courier.listenerPort("http"));
    auto start = std::chrono::steady_clock::now();
    std::string r = client.roundTrip(grpcPost(c.path, c.grpc_timeout));
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_THAT(r, ::testing::StartsWith("HTTP/1.1 200")) << c.path << " " << r;
    EXPECT_THAT(r, ::testing::HasSubstr("grpc-status: 14\r\n")) << r;
    EXPECT_THAT(r, ::testing::HasSubstr("grpc-message: upstream request timeout\r\n")) << r;
    EXPECT_LT(took, 5s) << c.path << " " << c.grpc_timeout;
  }
  // A request that is not gRPC keeps the route's plain timeout and HTTP reply.
  Raw client(courier.listenerPort("http"));
  std::string r = client.roundTrip("GET /plain HTTP/1.1\r\nhost: example.com\r\ngrpc-timeout: 99S\r\n\r\n");
  EXPECT_THAT(r, ::testing::StartsWith("HTTP/1.1 504")) << r;
  stop = true;
}

}  // namespace
}  // namespace courier::test

namespace courier::test {
namespace {

std::string grpcStatsFilter(const std::string& fields) {
  return R"(          - name: envoy.filters.http.grpc_stats
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig
)" + fields;
}

class GrpcStatsAllMethodsTest : public GrpcIntegrationTest {
 protected:
  std::string filters() override {
    return grpcStatsFilter("              stats_for_all_methods: true\n              enable_upstream_stats: true\n");
  }
  uint64_t stat(const std::string& name) { return courier_.stat(name).value_or(0); }
  static constexpr const char* kUnary = "cluster.grpc_backend.grpc.courier.test.Echo.Unary.";
};

TEST_F(GrpcStatsAllMethodsTest, AUnaryCallCountsSuccessTotalAndOneMessageEachWay) {
  EchoResponse resp;
  ASSERT_TRUE(unary("hi", &resp).ok());
  EXPECT_TRUE(courier_.waitForStat(std::string(kUnary) + "success", 1));
  EXPECT_EQ(stat(std::string(kUnary) + "total"), 1u);
  EXPECT_EQ(stat(std::string(kUnary) + "failure"), 0u);
  EXPECT_EQ(stat(std::string(kUnary) + "request_message_count"), 1u);
  EXPECT_EQ(stat(std::string(kUnary) + "response_message_count"), 1u);
  std::string hist = courier_.admin("/stats?filter=upstream_rq_time").body;
  EXPECT_THAT(hist, ::testing::HasSubstr(std::string(kUnary) + "upstream_rq_time"));
}

TEST_F(GrpcStatsAllMethodsTest, AnErrorStatusCountsAFailure) {
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoRequest req;
  req.set_fail_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EchoResponse resp;
  EXPECT_EQ(stub_->Unary(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(courier_.waitForStat(std::string(kUnary) + "failure", 1));
  EXPECT_EQ(stat(std::string(kUnary) + "success"), 0u);
  EXPECT_EQ(stat(std::string(kUnary) + "total"), 1u);
}

TEST_F(GrpcStatsAllMethodsTest, StreamingCallsCountEveryMessage) {
  {
    grpc::ClientContext ctx;
    setDeadline(ctx, 10s);
    EchoResponse resp;
    auto writer = stub_->ClientStream(&ctx, &resp);
    for (int i = 0; i < 37; ++i) {
      EchoRequest req;
      req.set_message(std::string(static_cast<size_t>(i) * 1000, 'x'));
      ASSERT_TRUE(writer->Write(req));
    }
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
  }
  {
    grpc::ClientContext ctx;
    setDeadline(ctx, 10s);
    EchoRequest req;
    req.set_count(23);
    auto reader = stub_->ServerStream(&ctx, req);
    EchoResponse r;
    while (reader->Read(&r)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
  }
  const std::string client = "cluster.grpc_backend.grpc.courier.test.Echo.ClientStream.";
  const std::string server = "cluster.grpc_backend.grpc.courier.test.Echo.ServerStream.";
  EXPECT_TRUE(courier_.waitForStat(server + "success", 1));
  EXPECT_EQ(stat(client + "request_message_count"), 37u);
  EXPECT_EQ(stat(client + "response_message_count"), 1u);
  EXPECT_EQ(stat(server + "request_message_count"), 1u);
  EXPECT_EQ(stat(server + "response_message_count"), 23u);
}

TEST_F(GrpcStatsAllMethodsTest, ACallToAMissingClusterMintsNoStats) {
  auto stub = courier::test::Missing::NewStub(channel_);
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoRequest req;
  EchoResponse resp;
  EXPECT_EQ(stub->Unary(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(courier_.waitForStat("http.ingress.downstream_rq_2xx", 1));
  EXPECT_THAT(courier_.admin("/stats").body, ::testing::Not(::testing::HasSubstr("cluster.nowhere.grpc")));
}

class GrpcStatsAllowlistTest : public GrpcStatsAllMethodsTest {
 protected:
  std::string filters() override {
    return grpcStatsFilter(R"(              individual_method_stats_allowlist:
                services:
                - name: courier.test.Echo
                  method_names: [Unary]
)");
  }
};

TEST_F(GrpcStatsAllowlistTest, OnlyAllowlistedMethodsGetTheirOwnStats) {
  EchoResponse resp;
  ASSERT_TRUE(unary("hi", &resp).ok());
  grpc::ClientContext ctx;
  setDeadline(ctx, 10s);
  EchoRequest req;
  req.set_count(2);
  auto reader = stub_->ServerStream(&ctx, req);
  EchoResponse r;
  while (reader->Read(&r)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(courier_.waitForStat(std::string(kUnary) + "success", 1));
  // Not allowlisted: counted without service and method.
  EXPECT_TRUE(courier_.waitForStat("cluster.grpc_backend.grpc.success", 1));
  EXPECT_EQ(stat("cluster.grpc_backend.grpc.response_message_count"), 2u);
  EXPECT_EQ(stat("cluster.grpc_backend.grpc.courier.test.Echo.ServerStream.success"), 0u);
}

class GrpcStatsDefaultTest : public GrpcStatsAllMethodsTest {
 protected:
  std::string filters() override { return grpcStatsFilter("              replace_dots_in_grpc_service_name: true\n"); }
};

TEST_F(GrpcStatsDefaultTest, WithoutStatsForAllMethodsCallsCountPerClusterOnly) {
  EchoResponse resp;
  ASSERT_TRUE(unary("hi", &resp).ok());
  EXPECT_TRUE(courier_.waitForStat("cluster.grpc_backend.grpc.success", 1));
  EXPECT_EQ(stat("cluster.grpc_backend.grpc.total"), 1u);
  EXPECT_EQ(stat("cluster.grpc_backend.grpc.courier_test_Echo.Unary.success"), 0u);
}

class GrpcStatsDotsTest : public GrpcStatsAllMethodsTest {
 protected:
  std::string filters() override {
    return grpcStatsFilter("              stats_for_all_methods: true\n              replace_dots_in_grpc_service_name: true\n");
  }
};

TEST_F(GrpcStatsDotsTest, ReplaceDotsRewritesTheServiceName) {
  EchoResponse resp;
  ASSERT_TRUE(unary("hi", &resp).ok());
  EXPECT_TRUE(courier_.waitForStat("cluster.grpc_backend.grpc.courier_test_Echo.Unary.success", 1));
}

}  // namespace
}  // namespace courier::test

namespace courier::test {
namespace {

// gRPC-Web through an HTTP/1.1 client (as a browser would call) to the real
// grpc++ upstream over HTTP/2.
class GrpcWebTest : public GrpcIntegrationTest {
 protected:
  // HTTP/1.1 for the gRPC-Web client, HTTP/2 for the native one.
  std::string codecType() override { return "AUTO"; }
  std::string filters() override {
    return R"(          - name: envoy.filters.http.grpc_web
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb
)";
  }

  static std::string frame(uint8_t flag, const std::string& payload) {
    std::string f(1, static_cast<char>(flag));
    const uint32_t n = static_cast<uint32_t>(payload.size());
    f += {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
    return f + payload;
  }

  struct Response {
    std::string head;
    std::string body;  // de-chunked
  };

  // POSTs body and reads the whole (chunked or sized) response.
  Response post(const std::string& path, const std::string& content_type, const std::string& body) {
    TcpClient c(courier_.listenerPort("http"));
    c.write("POST " + path + " HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: " + content_type +
            "\r\nx-grpc-web: 1\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    std::string all = c.readToEof();
    Response r;
    const size_t end = all.find("\r\n\r\n");
    if (end == std::string::npos) return r;
    r.head = all.substr(0, end + 2);
    std::string rest = all.substr(end + 4);
    if (r.head.find("transfer-encoding: chunked") == std::string::npos) {
      r.body = rest;
      return r;
    }
    size_t pos = 0;
    while (pos < rest.size()) {
      const size_t eol = rest.find("\r\n", pos);
      if (eol == std::string::npos) break;
      const size_t n = std::stoul(rest.substr(pos, eol - pos), nullptr, 16);
      if (n == 0) break;
      r.body += rest.substr(eol + 2, n);
      pos = eol + 2 + n + 2;
    }
    return r;
  }

  static std::string request(const std::string& message, int fail_code = 0) {
    EchoRequest req;
    req.set_message(message);
    req.set_fail_code(fail_code);
    return frame(0, req.SerializeAsString());
  }

  // Splits a gRPC-Web body into its message payloads and its trailer block.
  static void split(const std::string& body, std::vector<std::string>& messages, std::string& trailers) {
    size_t pos = 0;
    while (pos + 5 <= body.size()) {
      const uint8_t flag = static_cast<uint8_t>(body[pos]);
      const uint32_t n = (static_cast<uint8_t>(body[pos + 1]) << 24) | (static_cast<uint8_t>(body[pos + 2]) << 16) |
                         (static_cast<uint8_t>(body[pos + 3]) << 8) | static_cast<uint8_t>(body[pos + 4]);
      const std::string payload = body.substr(pos + 5, n);
      if (flag & 0x80) {
        trailers = payload;
      } else {
        messages.push_back(payload);
      }
      pos += 5 + n;
    }
  }
};

TEST_F(GrpcWebTest, BinaryUnaryCallGetsTheMessageAndATrailerFrame) {
  Response r = post("/courier.test.Echo/Unary", "application/grpc-web+proto", request("web"));
  EXPECT_THAT(r.head, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r.head, ::testing::HasSubstr("content-type: application/grpc-web+proto"));
  std::vector<std::string> messages;
  std::string trailers;
  split(r.body, messages, trailers);
  ASSERT_EQ(messages.size(), 1u) << r.head;
  EchoResponse resp;
  ASSERT_TRUE(resp.ParseFromString(messages[0]));
  EXPECT_EQ(resp.message(), "web");
  EXPECT_THAT(trailers, ::testing::HasSubstr("grpc-status:0\r\n"));
}

TEST_F(GrpcWebTest, TextModeIsBase64BothWays) {
  std::string in = request("text mode"), encoded;
  // Two padded segments back to back, as some clients send.
  std::string first = in.substr(0, 4), second = in.substr(4);
  std::string seg;
  courier::extensions::grpc_web::base64EncodeGroups(first, seg, true);
  encoded += seg;
  seg.clear();
  courier::extensions::grpc_web::base64EncodeGroups(second, seg, true);
  encoded += seg;
  Response r = post("/courier.test.Echo/Unary", "application/grpc-web-text", encoded);
  EXPECT_THAT(r.head, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r.head, ::testing::HasSubstr("content-type: application/grpc-web-text+proto"));
  std::string decoded, body = r.body;
  ASSERT_TRUE(courier::extensions::grpc_web::base64DecodeGroups(body, decoded)) << r.body;
  EXPECT_TRUE(body.empty());
  std::vector<std::string> messages;
  std::string trailers;
  split(decoded, messages, trailers);
  ASSERT_EQ(messages.size(), 1u);
  EchoResponse resp;
  ASSERT_TRUE(resp.ParseFromString(messages[0]));
  EXPECT_EQ(resp.message(), "text mode");
  EXPECT_THAT(trailers, ::testing::HasSubstr("grpc-status:0\r\n"));
}

TEST_F(GrpcWebTest, AnErrorStatusReachesTheClient) {
  Response r = post("/courier.test.Echo/Unary", "application/grpc-web+proto",
                    request("gone", static_cast<int>(grpc::StatusCode::NOT_FOUND)));
  EXPECT_THAT(r.head, ::testing::StartsWith("HTTP/1.1 200"));
  // Trailers-only: the status rides in the headers.
  EXPECT_THAT(r.head, ::testing::HasSubstr("grpc-status: 5\r\n"));
  EXPECT_THAT(r.head, ::testing::HasSubstr("grpc-message: gone\r\n"));
}

TEST_F(GrpcWebTest, BadBase64IsAGrpcErrorAndCourierCarriesOn) {
  Response r = post("/courier.test.Echo/Unary", "application/grpc-web-text", "!!!!");
  // The 400 local reply goes out gRPC-shaped (the request is gRPC by now), as
  // Envoy's: INTERNAL, in gRPC-Web headers a browser client reads.
  EXPECT_THAT(r.head, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r.head, ::testing::HasSubstr("content-type: application/grpc-web-text+proto"));
  EXPECT_THAT(r.head, ::testing::HasSubstr("grpc-status: 13"));
  EXPECT_THAT(r.head, ::testing::HasSubstr("invalid base64"));
  Response ok = post("/courier.test.Echo/Unary", "application/grpc-web+proto", request("after"));
  EXPECT_THAT(ok.head, ::testing::StartsWith("HTTP/1.1 200"));
}

TEST_F(GrpcWebTest, NativeGrpcClientsPassThroughUntouched) {
  EchoResponse resp;
  ASSERT_TRUE(unary("native", &resp).ok());
  EXPECT_EQ(resp.message(), "native");
}

}  // namespace
}  // namespace courier::test
