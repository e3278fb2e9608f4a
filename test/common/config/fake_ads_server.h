// An in-process ADS management server for tests, on 127.0.0.1 and a port the
// kernel picks. It records every request of every stream (SotW or delta),
// lets a test answer on any stream, and can cut a stream as a server would.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace courier::config::test {

class FakeAdsServer {
 public:
  static constexpr std::chrono::seconds kWait{10};

  // `port` 0: the kernel picks. A fixed port lets a test bring a control
  // plane back where the client keeps reconnecting.
  explicit FakeAdsServer(int port = 0);
  ~FakeAdsServer();

  // "127.0.0.1:PORT"
  const std::string& address() const { return address_; }

  // Bounded waits: false when the stream or request did not show up in kWait.
  bool waitSotwRequest(size_t stream, size_t index, envoy::service::discovery::v3::DiscoveryRequest* out);
  bool waitDeltaRequest(size_t stream, size_t index, envoy::service::discovery::v3::DeltaDiscoveryRequest* out);
  bool waitStreamClosed(size_t stream);
  // A client metadata value of an existing stream ("" when absent).
  std::string clientMetadata(size_t stream, const std::string& key);
  // Requests received so far on a stream (0 if it does not exist yet).
  size_t requestCount(size_t stream);

  bool send(size_t stream, const envoy::service::discovery::v3::DiscoveryResponse& response);
  bool send(size_t stream, const envoy::service::discovery::v3::DeltaDiscoveryResponse& response);
  // Ends the stream from the server side (the client sees it fail).
  void closeStream(size_t stream);

 private:
  struct Stream {
    grpc::ServerContext* context;
    grpc::ServerReaderWriter<envoy::service::discovery::v3::DiscoveryResponse,
                             envoy::service::discovery::v3::DiscoveryRequest>* sotw = nullptr;
    grpc::ServerReaderWriter<envoy::service::discovery::v3::DeltaDiscoveryResponse,
                             envoy::service::discovery::v3::DeltaDiscoveryRequest>* delta = nullptr;
    std::vector<envoy::service::discovery::v3::DiscoveryRequest> sotw_requests;
    std::vector<envoy::service::discovery::v3::DeltaDiscoveryRequest> delta_requests;
    std::vector<std::pair<std::string, std::string>> metadata;
    bool open = true;
    // Serialises writes and closing against the handler's return, after
    // which the writer is gone.
    std::mutex write_mu;
  };
  class Service;

  template <class Req, class Resp>
  grpc::Status serve(grpc::ServerContext* context, grpc::ServerReaderWriter<Resp, Req>* stream);
  Stream* waitStream(size_t stream, std::unique_lock<std::mutex>& lock);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Stream>> streams_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace courier::config::test
