// Access log output files. Workers append formatted lines to a per-file
// buffer under a short mutex; a flusher thread per file writes the buffer to
// disk every flush interval or as soon as it passes 64 KiB, so no worker ever
// waits on a write(2). One LogFile per path, owned by the AccessLogManager.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"

namespace courier::access_log {

class LogFile {
 public:
  static constexpr size_t kFlushThresholdBytes = 64 * 1024;

  // Opens path for appending (created 0644); "/dev/stdout" and "/dev/stderr"
  // use fds 1 and 2 directly.
  static absl::StatusOr<std::unique_ptr<LogFile>> open(const std::string& path,
                                                       std::chrono::milliseconds flush_interval);
  ~LogFile();  // flushes what is buffered
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Appends bytes to the buffer; safe from any thread.
  void write(std::string_view data);
  // Writes everything buffered so far before returning.
  void flush();
  // Flushes, then closes and reopens the path (after log rotation moved it).
  absl::Status reopen();

  const std::string& path() const { return path_; }

 private:
  LogFile(std::string path, int fd, bool owns_fd, std::chrono::milliseconds flush_interval);
  void flusherLoop();
  // Takes the buffer and writes it; callers hold write_mutex_.
  void flushLocked();

  const std::string path_;
  const bool owns_fd_;
  const std::chrono::milliseconds flush_interval_;

  std::mutex write_mutex_;  // guards fd_ and the write(2) calls
  int fd_;

  std::mutex mutex_;  // guards buffer_ and stop_; held only to append/swap
  std::condition_variable cv_;
  std::string buffer_;
  bool stop_ = false;
  bool flush_requested_ = false;
  std::thread flusher_;
};

class AccessLogManager {
 public:
  // Envoy's --file-flush-interval-msec default.
  explicit AccessLogManager(std::chrono::milliseconds flush_interval = std::chrono::milliseconds(1000))
      : flush_interval_(flush_interval) {}

  // The one LogFile for path, opened on first use. The manager must outlive
  // every access logger that holds the returned reference.
  absl::StatusOr<LogFile*> file(const std::string& path);
  void flushAll();
  // Reopens every file (SIGUSR1 / admin /reopen_logs); the first error wins.
  absl::Status reopenAll();

 private:
  const std::chrono::milliseconds flush_interval_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<LogFile>> files_;
};

}  // namespace courier::access_log
