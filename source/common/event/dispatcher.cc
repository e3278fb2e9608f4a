#include "source/common/event/dispatcher.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>

namespace courier::event {
namespace {

struct LibeventInit {
  LibeventInit() { evthread_use_pthreads(); }
};

void ensureLibeventInit() { static LibeventInit init; }

timeval toTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = ms.count() / 1000;
  tv.tv_usec = (ms.count() % 1000) * 1000;
  return tv;
}

}  // namespace

Timer::Timer(Dispatcher& dispatcher, std::function<void()> cb)
    : cb_(std::move(cb)), ev_(evtimer_new(dispatcher.base(), &Timer::onFire, this)) {}

Timer::~Timer() { event_free(ev_); }

void Timer::enable(std::chrono::milliseconds timeout) {
  timeval tv = toTimeval(timeout);
  evtimer_add(ev_, &tv);
}

void Timer::disable() { evtimer_del(ev_); }

bool Timer::enabled() const { return evtimer_pending(ev_, nullptr) != 0; }

void Timer::onFire(int, short, void* arg) { static_cast<Timer*>(arg)->cb_(); }

SchedulableCallback::SchedulableCallback(Dispatcher& dispatcher, std::function<void()> cb)
    : cb_(std::move(cb)), ev_(event_new(dispatcher.base(), -1, 0, &SchedulableCallback::onFire, this)) {}

SchedulableCallback::~SchedulableCallback() { event_free(ev_); }

void SchedulableCallback::schedule() {
  if (scheduled_) return;
  scheduled_ = true;
  event_active(ev_, EV_TIMEOUT, 0);
}

void SchedulableCallback::cancel() {
  if (!scheduled_) return;
  scheduled_ = false;
  event_del(ev_);
}

void SchedulableCallback::onFire(int, short, void* arg) {
  auto* self = static_cast<SchedulableCallback*>(arg);
  self->scheduled_ = false;
  self->cb_();
}

FileEvent::FileEvent(Dispatcher& dispatcher, int fd, std::function<void(uint32_t)> cb)
    : cb_(std::move(cb)),
      ev_(event_new(dispatcher.base(), fd, EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST, &FileEvent::onReady,
                    this)) {
  event_add(ev_, nullptr);
}

FileEvent::~FileEvent() { event_free(ev_); }

void FileEvent::activate(uint32_t events) {
  short what = 0;
  if (events & kRead) what |= EV_READ;
  if (events & kWrite) what |= EV_WRITE;
  event_active(ev_, what, 0);
}

void FileEvent::onReady(int, short what, void* arg) {
  uint32_t events = 0;
  if (what & EV_READ) events |= kRead;
  if (what & EV_WRITE) events |= kWrite;
  if (what & EV_CLOSED) events |= kClosed;
  static_cast<FileEvent*>(arg)->cb_(events);
}

Dispatcher::Dispatcher(std::string name) : name_(std::move(name)) {
  ensureLibeventInit();
  event_config* cfg = event_config_new();
  // A worker never shares its loop; skip libevent's internal locking.
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (base_ == nullptr) std::abort();
  reports_peer_close_ = (event_base_get_features(base_) & EV_FEATURE_EARLY_CLOSE) != 0;
  wakeup_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeup_fd_ < 0) std::abort();
  wakeup_ev_ = event_new(base_, wakeup_fd_, EV_READ | EV_PERSIST, &Dispatcher::onPostWakeup, this);
  event_add(wakeup_ev_, nullptr);
  deferred_timer_ = createTimer([this] { clearDeferred(); });
}

Dispatcher::~Dispatcher() {
  clearDeferred();
  // Posted work that never ran still owns captured objects; destroy it here,
  // on whichever thread tears the dispatcher down.
  posted_.clear();
  deferred_timer_.reset();
  event_free(wakeup_ev_);
  close(wakeup_fd_);
  event_base_free(base_);
}

void Dispatcher::run() {
  run_thread_ = std::this_thread::get_id();
  running_ = true;
  runPosted();
  if (!exit_requested_.load()) event_base_loop(base_, 0);
  clearDeferred();
  running_ = false;
  exit_requested_ = false;
}

void Dispatcher::exit() {
  exit_requested_ = true;
  post([this] { event_base_loopbreak(base_); });
}

bool Dispatcher::isThreadSafe() const { return !running_ || run_thread_ == std::this_thread::get_id(); }

void Dispatcher::post(std::function<void()> cb) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(post_lock_);
    first = posted_.empty();
    posted_.push_back(std::move(cb));
  }
  if (first) {
    uint64_t one = 1;
    // A full counter only means a wakeup is already pending.
    [[maybe_unused]] ssize_t n = write(wakeup_fd_, &one, sizeof(one));
  }
}

void Dispatcher::onPostWakeup(int fd, short, void* arg) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(fd, &count, sizeof(count));
  static_cast<Dispatcher*>(arg)->runPosted();
}

void Dispatcher::runPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(post_lock_);
    batch.swap(posted_);
  }
  for (auto& cb : batch) cb();
}

void Dispatcher::deferredDelete(std::unique_ptr<DeferredDeletable> obj) {
  deferred_.push_back(std::move(obj));
  if (deferred_.size() == 1) deferred_timer_->enable(std::chrono::milliseconds(0));
}

void Dispatcher::clearDeferred() {
  // Destructors may defer more objects; keep going until none are left.
  while (!deferred_.empty()) {
    std::vector<std::unique_ptr<DeferredDeletable>> batch;
    batch.swap(deferred_);
    batch.clear();
  }
}

}  // namespace courier::event
