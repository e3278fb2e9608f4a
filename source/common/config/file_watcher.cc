#include "source/common/config/file_watcher.h"

#include <errno.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace courier::config {
namespace {

// Splits "a/b/c.yaml" into ("a/b", "c.yaml"); a bare name lives in ".".
std::pair<std::string, std::string> splitPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileWatcher>> FileWatcher::create(event::Dispatcher& dispatcher) {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return absl::ResourceExhaustedError(absl::StrCat("inotify_init1: ", std::strerror(errno),
                                                     " (see /proc/sys/fs/inotify/max_user_instances)"));
  }
  return std::unique_ptr<FileWatcher>(new FileWatcher(dispatcher, fd));
}

FileWatcher::FileWatcher(event::Dispatcher& dispatcher, int fd) : fd_(fd) {
  file_event_ = dispatcher.createFileEvent(fd_, [this](uint32_t events) {
    if (events & event::kRead) onReadable();
  });
}

FileWatcher::~FileWatcher() {
  *alive_ = false;
  file_event_.reset();
  close(fd_);
}

absl::Status FileWatcher::watchFile(const std::string& path, Callback cb) {
  auto [dir, name] = splitPath(path);
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("'", path, "' names a directory, not a file"));
  return addWatch(dir, std::move(name), IN_MOVED_TO | IN_CLOSE_WRITE, std::move(cb));
}

absl::Status FileWatcher::watchDirectory(const std::string& dir, Callback cb) {
  return addWatch(dir, "", IN_MOVED_TO, std::move(cb));
}

absl::Status FileWatcher::addWatch(const std::string& dir, std::string name, uint32_t mask, Callback cb) {
  // One mask per directory in the kernel: ask for the union of everything any
  // registration wants and filter per registration when events arrive.
  const int wd = inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
  if (wd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot watch directory '", dir, "': ", std::strerror(errno)));
  }
  DirectoryWatch& watch = watches_[wd];
  watch.dir = dir;
  watch.registrations.push_back(Registration{std::move(name), mask, std::move(cb)});
  return absl::OkStatus();
}

void FileWatcher::onReadable() {
  // The file event is edge-triggered: read until EAGAIN, because events left
  // queued would not be reported until some later, unrelated change.
  // Entries are (watch descriptor, registration index), each once.
  std::vector<std::pair<int, size_t>> due;
  absl::flat_hash_set<std::pair<int, size_t>> seen;
  bool overflow = false;
  alignas(inotify_event) char buf[16 * 1024];
  while (true) {
    const ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) spdlog::warn("file watcher: reading inotify events: {}", std::strerror(errno));
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        overflow = true;
        continue;
      }
      auto it = watches_.find(ev->wd);
      if (it == watches_.end()) continue;
      if (ev->mask & IN_IGNORED) {
        spdlog::warn("file watcher: directory '{}' was removed; files in it are no longer watched", it->second.dir);
        watches_.erase(it);
        continue;
      }
      const std::string name = ev->len > 0 ? std::string(ev->name) : std::string();
      for (size_t i = 0; i < it->second.registrations.size(); ++i) {
        const Registration& r = it->second.registrations[i];
        if ((ev->mask & r.mask) != 0 && (r.name.empty() || r.name == name) && seen.insert({ev->wd, i}).second) {
          due.emplace_back(ev->wd, i);
        }
      }
    }
  }
  if (overflow) {
    // Some events were dropped: any registration may have missed its change.
    spdlog::warn("file watcher: inotify queue overflowed; reloading every watched file");
    due.clear();
    for (const auto& [wd, watch] : watches_) {
      for (size_t i = 0; i < watch.registrations.size(); ++i) due.emplace_back(wd, i);
    }
  }
  // A burst (editor writes, ConfigMap swaps) can name one file several times;
  // callbacks reload whole files, so once per burst is enough. Callbacks were
  // copied because one may destroy this watcher.
  std::vector<Callback> callbacks;
  callbacks.reserve(due.size());
  for (const auto& [wd, i] : due) {
    auto it = watches_.find(wd);
    if (it != watches_.end()) callbacks.push_back(it->second.registrations[i].cb);
  }
  std::shared_ptr<bool> alive = alive_;
  for (const Callback& cb : callbacks) {
    if (!*alive) return;
    cb();
  }
}

}  // namespace courier::config
