// One event loop per thread (main or worker) on libevent: file events, timers,
// cross-thread posts and deferred deletion. Everything a connection does runs
// on the dispatcher of the thread that owns it; other threads only post().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct event_base;
struct event;

namespace courier::event {

// Bits for FileEvent readiness.
enum FileReadyType : uint32_t { kRead = 0x1, kWrite = 0x2, kClosed = 0x4 };

class Dispatcher;

// A callback run later in the current loop iteration, after the events
// already being handled: a way to batch work (one socket write for several
// encoder calls) without a syscall. schedule() twice runs it once.
class SchedulableCallback {
 public:
  SchedulableCallback(Dispatcher& dispatcher, std::function<void()> cb);
  ~SchedulableCallback();
  SchedulableCallback(const SchedulableCallback&) = delete;
  SchedulableCallback& operator=(const SchedulableCallback&) = delete;
  void schedule();
  void cancel();
  bool scheduled() const { return scheduled_; }

 private:
  static void onFire(int, short, void* arg);
  std::function<void()> cb_;
  struct event* ev_;
  bool scheduled_ = false;
};

// A one-shot timer; enable() re-arms it.
class Timer {
 public:
  Timer(Dispatcher& dispatcher, std::function<void()> cb);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void enable(std::chrono::milliseconds timeout);
  void disable();
  bool enabled() const;

 private:
  static void onFire(int, short, void* arg);
  std::function<void()> cb_;
  struct event* ev_;
};

// Edge-triggered readiness of a socket. The callback gets FileReadyType bits.
class FileEvent {
 public:
  FileEvent(Dispatcher& dispatcher, int fd, std::function<void(uint32_t)> cb);
  ~FileEvent();
  FileEvent(const FileEvent&) = delete;
  FileEvent& operator=(const FileEvent&) = delete;

  // Simulates readiness on the next loop iteration (used after readDisable(false)
  // when data may already sit in the kernel, since edge triggering won't repeat it).
  void activate(uint32_t events);

 private:
  static void onReady(int fd, short what, void* arg);
  std::function<void(uint32_t)> cb_;
  struct event* ev_;
};

// Something deleted at the end of the current loop iteration, so that objects
// can be torn down from inside their own callbacks.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

class Dispatcher {
 public:
  explicit Dispatcher(std::string name);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  const std::string& name() const { return name_; }
  struct event_base* base() { return base_; }
  // The backend reports a peer's close (EPOLLRDHUP) as kClosed, so a reader
  // may stop at a short read without missing an end of stream.
  bool reportsPeerClose() const { return reports_peer_close_; }

  // Runs until exit(); binds the dispatcher to the calling thread.
  void run();
  // Thread-safe: makes run() return after the current iteration.
  void exit();
  // Thread-safe: runs cb on this dispatcher's thread, in posting order.
  void post(std::function<void()> cb);
  // True when called on the thread running this dispatcher (or before run()).
  bool isThreadSafe() const;

  std::unique_ptr<SchedulableCallback> createSchedulableCallback(std::function<void()> cb) {
    return std::make_unique<SchedulableCallback>(*this, std::move(cb));
  }
  std::unique_ptr<Timer> createTimer(std::function<void()> cb) {
    return std::make_unique<Timer>(*this, std::move(cb));
  }
  std::unique_ptr<FileEvent> createFileEvent(int fd, std::function<void(uint32_t)> cb) {
    return std::make_unique<FileEvent>(*this, fd, std::move(cb));
  }
  void deferredDelete(std::unique_ptr<DeferredDeletable> obj);
  // Monotonic time as seen by this loop (cached per iteration by libevent).
  std::chrono::steady_clock::time_point now() const { return std::chrono::steady_clock::now(); }

 private:
  static void onPostWakeup(int fd, short, void* arg);
  void runPosted();
  void clearDeferred();

  const std::string name_;
  struct event_base* base_;
  bool reports_peer_close_ = false;
  int wakeup_fd_;
  struct event* wakeup_ev_;
  std::mutex post_lock_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::unique_ptr<DeferredDeletable>> deferred_;
  std::unique_ptr<Timer> deferred_timer_;
  std::thread::id run_thread_;
  bool running_ = false;
  // exit() before the loop starts must still stop it: libevent forgets a
  // loopbreak issued before event_base_loop begins.
  std::atomic<bool> exit_requested_{false};
};

}  // namespace courier::event
