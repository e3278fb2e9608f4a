#include "test/common/config/fake_ads_server.h"

#include <type_traits>

namespace courier::config::test {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

class FakeAdsServer::Service final : public envoy::service::discovery::v3::AggregatedDiscoveryService::Service {
 public:
  explicit Service(FakeAdsServer& server) : server_(server) {}
  grpc::Status StreamAggregatedResources(
      grpc::ServerContext* context, grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* stream) override {
    return server_.serve(context, stream);
  }
  grpc::Status DeltaAggregatedResources(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<DeltaDiscoveryResponse, DeltaDiscoveryRequest>* stream) override {
    return server_.serve(context, stream);
  }

 private:
  FakeAdsServer& server_;
};

FakeAdsServer::FakeAdsServer(int requested_port) : service_(std::make_unique<Service>(*this)) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(requested_port), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  address_ = "127.0.0.1:" + std::to_string(port);
}

FakeAdsServer::~FakeAdsServer() {
  // Handlers blocked in Read are cancelled at the deadline, which is now.
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
}

template <class Req, class Resp>
grpc::Status FakeAdsServer::serve(grpc::ServerContext* context, grpc::ServerReaderWriter<Resp, Req>* rw) {
  Stream* stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.push_back(std::make_unique<Stream>());
    stream = streams_.back().get();
    stream->context = context;
    for (const auto& [key, value] : context->client_metadata()) {
      stream->metadata.emplace_back(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
    }
    if constexpr (std::is_same_v<Req, DiscoveryRequest>) {
      stream->sotw = rw;
    } else {
      stream->delta = rw;
    }
    cv_.notify_all();
  }
  Req request;
  while (rw->Read(&request)) {
    std::lock_guard<std::mutex> lock(mu_);
    if constexpr (std::is_same_v<Req, DiscoveryRequest>) {
      stream->sotw_requests.push_back(request);
    } else {
      stream->delta_requests.push_back(request);
    }
    cv_.notify_all();
  }
  {
    std::lock_guard<std::mutex> write_lock(stream->write_mu);
    std::lock_guard<std::mutex> lock(mu_);
    stream->open = false;
    stream->sotw = nullptr;
    stream->delta = nullptr;
    stream->context = nullptr;
    cv_.notify_all();
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake server closed the stream");
}

FakeAdsServer::Stream* FakeAdsServer::waitStream(size_t stream, std::unique_lock<std::mutex>& lock) {
  if (!cv_.wait_for(lock, kWait, [&] { return streams_.size() > stream; })) return nullptr;
  return streams_[stream].get();
}

bool FakeAdsServer::waitSotwRequest(size_t stream, size_t index, DiscoveryRequest* out) {
  std::unique_lock<std::mutex> lock(mu_);
  Stream* s = waitStream(stream, lock);
  if (s == nullptr || !cv_.wait_for(lock, kWait, [&] { return s->sotw_requests.size() > index; })) return false;
  *out = s->sotw_requests[index];
  return true;
}

bool FakeAdsServer::waitDeltaRequest(size_t stream, size_t index, DeltaDiscoveryRequest* out) {
  std::unique_lock<std::mutex> lock(mu_);
  Stream* s = waitStream(stream, lock);
  if (s == nullptr || !cv_.wait_for(lock, kWait, [&] { return s->delta_requests.size() > index; })) return false;
  *out = s->delta_requests[index];
  return true;
}

bool FakeAdsServer::waitStreamClosed(size_t stream) {
  std::unique_lock<std::mutex> lock(mu_);
  Stream* s = waitStream(stream, lock);
  return s != nullptr && cv_.wait_for(lock, kWait, [&] { return !s->open; });
}

std::string FakeAdsServer::clientMetadata(size_t stream, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_.size() <= stream) return "";
  for (const auto& [k, v] : streams_[stream]->metadata) {
    if (k == key) return v;
  }
  return "";
}

size_t FakeAdsServer::requestCount(size_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_.size() <= stream) return 0;
  return streams_[stream]->sotw_requests.size() + streams_[stream]->delta_requests.size();
}

bool FakeAdsServer::send(size_t stream, const DiscoveryResponse& response) {
  Stream* s;
  {
    std::unique_lock<std::mutex> lock(mu_);
    s = waitStream(stream, lock);
  }
  if (s == nullptr) return false;
  std::lock_guard<std::mutex> write_lock(s->write_mu);
  return s->sotw != nullptr && s->sotw->Write(response);
}

bool FakeAdsServer::send(size_t stream, const DeltaDiscoveryResponse& response) {
  Stream* s;
  {
    std::unique_lock<std::mutex> lock(mu_);
    s = waitStream(stream, lock);
  }
  if (s == nullptr) return false;
  std::lock_guard<std::mutex> write_lock(s->write_mu);
  return s->delta != nullptr && s->delta->Write(response);
}

void FakeAdsServer::closeStream(size_t stream) {
  Stream* s;
  {
    std::unique_lock<std::mutex> lock(mu_);
    s = waitStream(stream, lock);
  }
  if (s == nullptr) return;
  std::lock_guard<std::mutex> write_lock(s->write_mu);
  if (s->context != nullptr) s->context->TryCancel();
}

}  // namespace courier::config::test
