// gRPC active health checks (grpc.health.v1.Health/Check) against a real
// grpc++ server whose default health service the test switches.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "echo.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/http_test_util.h"
#include "test/test_common/courier_process.h"

namespace courier::test {
namespace {

// The request metadata the upstream saw on its last health check.
struct SeenMetadata {
  std::mutex mu;
  std::multimap<std::string, std::string> last;
  std::multimap<std::string, std::string> get() {
    std::lock_guard<std::mutex> lock(mu);
    return last;
  }
};

class RecordHealthMetadata : public grpc::experimental::Interceptor {
 public:
  RecordHealthMetadata(grpc::experimental::ServerRpcInfo* info, SeenMetadata& seen) : info_(info), seen_(seen) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA) &&
        std::string(info_->method()) == "/grpc.health.v1.Health/Check") {
      std::multimap<std::string, std::string> md;
      for (const auto& [k, v] : *methods->GetRecvInitialMetadata()) {
        md.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
      }
      std::lock_guard<std::mutex> lock(seen_.mu);
      seen_.last = std::move(md);
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  SeenMetadata& seen_;
};

class RecordHealthMetadataFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RecordHealthMetadataFactory(SeenMetadata& seen) : seen_(seen) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new RecordHealthMetadata(info, seen_);
  }

 private:
  SeenMetadata& seen_;
};

std::string config(uint16_t port, const std::string& service, const std::string& grpc_extra = "") {
  return hcmListener("") + R"(          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: grpc}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: grpc
    connect_timeout: 1s
    type: STATIC
    health_checks:
    - timeout: 1s
      interval: 0.05s
      no_traffic_interval: 0.05s
      unhealthy_threshold: 2
      healthy_threshold: 2
      grpc_health_check: {service_name: ")" + service + R"(")" + grpc_extra + R"(}
    load_assignment:
      cluster_name: grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )" +
         std::to_string(port) + R"(}}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
)";
}

class GrpcHealthIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    // grpc++ serves its default health service only beside a synchronous one.
    builder.RegisterService(&echo_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(std::make_unique<RecordHealthMetadataFactory>(seen_));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(server_->GetHealthCheckService(), nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  std::string flags() {
    const std::string body = courier_.admin("/clusters").body;
    const std::string key = "grpc::127.0.0.1:" + std::to_string(port_) + "::health_flags::";
    const size_t at = body.find(key);
    if (at == std::string::npos) return "";
    const size_t start = at + key.size();
    return body.substr(start, body.find('\n', start) - start);
  }
  bool waitForFlags(const std::string& want) {
    return waitFor([&] { return flags() == want; }, std::chrono::milliseconds(10000));
  }

  int port_ = 0;
  SeenMetadata seen_;
  courier::test::Echo::Service echo_;
  std::unique_ptr<grpc::Server> server_;
  CourierProcess courier_;
};

TEST_F(GrpcHealthIntegrationTest, ServingStatusOfTheNamedServiceDecidesHealth) {
  server_->GetHealthCheckService()->SetServingStatus("courier.Echo", true);
  ASSERT_TRUE(courier_.start(config(port_, "courier.Echo"))) << courier_.log();
  ASSERT_TRUE(waitForFlags("healthy")) << flags() << courier_.log();

  server_->GetHealthCheckService()->SetServingStatus("courier.Echo", false);
  ASSERT_TRUE(waitForFlags("/failed_active_hc"));
  EXPECT_GE(courier_.stat("cluster.grpc.health_check.failure").value_or(0), 1u);

  server_->GetHealthCheckService()->SetServingStatus("courier.Echo", true);
  ASSERT_TRUE(waitForFlags("healthy"));
}

TEST_F(GrpcHealthIntegrationTest, UnknownServiceIsUnhealthy) {
  ASSERT_TRUE(courier_.start(config(port_, "no.such.Service"))) << courier_.log();
  ASSERT_TRUE(courier_.waitForStat("cluster.grpc.health_check.failure", 1)) << courier_.log();
  EXPECT_EQ(flags(), "/failed_active_hc");
  EXPECT_EQ(courier_.stat("cluster.grpc.health_check.success").value_or(0), 0u);
}

TEST_F(GrpcHealthIntegrationTest, InitialMetadataReachesTheUpstream) {
  server_->GetHealthCheckService()->SetServingStatus("courier.Echo", true);
  ASSERT_TRUE(courier_.start(config(port_, "courier.Echo",
                                    ", initial_metadata: [{header: {key: x-hc-token, value: s3cret}}, "
                                    "{header: {key: X-Mesh, value: east}}]")))
      << courier_.log();
  ASSERT_TRUE(waitForFlags("healthy")) << flags() << courier_.log();
  const auto md = seen_.get();
  auto value = [&](const std::string& key) {
    auto it = md.find(key);
    return it == md.end() ? std::string("<none>") : it->second;
  };
  EXPECT_EQ(value("x-hc-token"), "s3cret");
  EXPECT_EQ(value("x-mesh"), "east");
}

}  // namespace
}  // namespace courier::test
