// One ADS bidi stream on gRPC's callback API, for either flavour of the
// protocol. gRPC's threads deliver reads and the end of the stream; this class
// hands both to the owning dispatcher, so the mux above only runs on its loop.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "source/common/event/dispatcher.h"

namespace courier::config {

template <class Request, class Response>
class AdsStream final : public grpc::ClientBidiReactor<Request, Response> {
 public:
  // Both run on the dispatcher thread, and only while `alive` is still held:
  // events that arrive after the owner is gone are dropped, not delivered.
  struct Handlers {
    std::function<void(const Response&)> on_response;
    std::function<void(grpc::Status)> on_closed;
    // The server answered the call with its headers: it is there.
    std::function<void()> on_connected;
  };
  // Binds the reactor to a call; the generated stubs differ per method, so
  // the caller supplies the one to start.
  using Starter = std::function<void(grpc::ClientContext*, grpc::ClientBidiReactor<Request, Response>*)>;

  AdsStream(event::Dispatcher& dispatcher, std::weak_ptr<void> alive, Handlers handlers,
            const std::vector<std::pair<std::string, std::string>>& metadata)
      : dispatcher_(dispatcher), alive_(std::move(alive)), handlers_(std::move(handlers)) {
    for (const auto& [key, value] : metadata) context_.AddMetadata(key, value);
  }

  // Waits for gRPC to finish with the reactor: it must not outlive the call.
  ~AdsStream() override {
    context_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
  }

  void start(const Starter& starter) {
    starter(&context_, this);
    // The hold keeps the call open for writes that start outside reactions
    // (from the dispatcher thread); it is dropped once the read side ends.
    this->AddHold();
    this->StartRead(&response_);
    this->StartCall();
  }

  // Thread-safe. Requests go out in order, one write in flight at a time as
  // gRPC requires; after the stream ended they are dropped.
  void send(Request request) {
    const Request* to_write = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (read_closed_ || write_failed_) return;
      queue_.push_back(std::move(request));
      if (writing_) return;
      writing_ = true;
      starting_write_ = true;
      to_write = &queue_.front();
    }
    this->StartWrite(to_write);
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      starting_write_ = false;
      release = read_closed_ && !hold_released_;
      if (release) hold_released_ = true;
    }
    if (release) this->RemoveHold();
  }

  void OnWriteDone(bool ok) override {
    const Request* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A deque keeps the addresses of the remaining elements stable, so the
      // one gRPC is writing stays valid while others are appended.
      queue_.pop_front();
      if (!ok) {
        write_failed_ = true;
        queue_.clear();
      }
      if (queue_.empty()) {
        writing_ = false;
      } else {
        next = &queue_.front();
      }
    }
    if (next != nullptr) this->StartWrite(next);
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) post([](Handlers& h) {
      if (h.on_connected) h.on_connected();
    });
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      // Shared only because std::function needs a copyable closure.
      auto response = std::make_shared<Response>();
      response->Swap(&response_);
      post([response](Handlers& h) { h.on_response(*response); });
      this->StartRead(&response_);
      return;
    }
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_closed_ = true;
      // A write being started right now releases the hold itself once
      // StartWrite returned; releasing it here could finish the call under it.
      release = !starting_write_ && !hold_released_;
      if (release) hold_released_ = true;
    }
    if (release) this->RemoveHold();
  }

  void OnDone(const grpc::Status& status) override {
    post([status](Handlers& h) { h.on_closed(status); });
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    // Notified under the lock: the destructor cannot return (and free this)
    // until OnDone has let go of the mutex and touches nothing more.
    done_cv_.notify_all();
  }

 private:
  template <class F>
  void post(F f) {
    // The handlers are copied into the closure because the stream object may
    // be destroyed before the dispatcher runs it.
    dispatcher_.post([alive = alive_, handlers = handlers_, f = std::move(f)]() mutable {
      if (alive.expired()) return;
      f(handlers);
    });
  }

  event::Dispatcher& dispatcher_;
  const std::weak_ptr<void> alive_;
  const Handlers handlers_;
  grpc::ClientContext context_;
  Response response_;

  std::mutex mu_;
  std::condition_variable done_cv_;
  std::deque<Request> queue_;
  bool writing_ = false;
  bool starting_write_ = false;
  bool read_closed_ = false;
  bool write_failed_ = false;
  bool hold_released_ = false;
  bool done_ = false;
};

}  // namespace courier::config
