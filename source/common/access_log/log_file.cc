#include "source/common/access_log/log_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace courier::access_log {
namespace {

absl::StatusOr<int> openForAppend(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot open access log file \"", path, "\": ", strerror(errno)));
  }
  return fd;
}

void writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // disk full or fd gone: drop the bytes rather than block workers
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogFile>> LogFile::open(const std::string& path,
                                                       std::chrono::milliseconds flush_interval) {
  if (path == "/dev/stdout") return std::unique_ptr<LogFile>(new LogFile(path, 1, false, flush_interval));
  if (path == "/dev/stderr") return std::unique_ptr<LogFile>(new LogFile(path, 2, false, flush_interval));
  auto fd = openForAppend(path);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<LogFile>(new LogFile(path, *fd, true, flush_interval));
}

LogFile::LogFile(std::string path, int fd, bool owns_fd, std::chrono::milliseconds flush_interval)
    : path_(std::move(path)), owns_fd_(owns_fd), flush_interval_(flush_interval), fd_(fd) {
  flusher_ = std::thread([this] { flusherLoop(); });
}

LogFile::~LogFile() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  flusher_.join();
  flush();
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void LogFile::write(std::string_view data) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    buffer_.append(data.data(), data.size());
    wake = buffer_.size() >= kFlushThresholdBytes && !flush_requested_;
    if (wake) flush_requested_ = true;
  }
  if (wake) cv_.notify_one();
}

void LogFile::flushLocked() {
  std::string pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending.swap(buffer_);
    flush_requested_ = false;
  }
  if (!pending.empty() && fd_ >= 0) writeAll(fd_, pending);
}

void LogFile::flush() {
  std::lock_guard<std::mutex> lock(write_mutex_);
  flushLocked();
}

absl::Status LogFile::reopen() {
  std::lock_guard<std::mutex> lock(write_mutex_);
  flushLocked();
  if (!owns_fd_) return absl::OkStatus();
  auto fd = openForAppend(path_);
  if (!fd.ok()) return fd.status();
  if (fd_ >= 0) ::close(fd_);
  fd_ = *fd;
  return absl::OkStatus();
}

void LogFile::flusherLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    cv_.wait_for(lock, flush_interval_, [this] { return stop_ || flush_requested_; });
    if (stop_) break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

absl::StatusOr<LogFile*> AccessLogManager::file(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = files_.find(path);
  if (it != files_.end()) return it->second.get();
  auto file = LogFile::open(path, flush_interval_);
  if (!file.ok()) return file.status();
  LogFile* raw = file->get();
  files_.emplace(path, std::move(*file));
  return raw;
}

void AccessLogManager::flushAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [path, file] : files_) file->flush();
}

absl::Status AccessLogManager::reopenAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  absl::Status result = absl::OkStatus();
  for (auto& [path, file] : files_) {
    absl::Status s = file->reopen();
    if (result.ok() && !s.ok()) result = s;
  }
  return result;
}

}  // namespace courier::access_log
