// Tells file-based config sources when to reload: inotify on the owning
// thread's dispatcher, reporting a file replaced by rename or rewritten in
// place, or anything renamed into a directory (Kubernetes ConfigMap swaps).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/common/event/dispatcher.h"

namespace courier::config {

class FileWatcher {
 public:
  using Callback = std::function<void()>;

  // Fails when inotify is unavailable (no instances left for this user).
  static absl::StatusOr<std::unique_ptr<FileWatcher>> create(event::Dispatcher& dispatcher);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Calls `cb` on the dispatcher thread when `path` is renamed into place
  // (IN_MOVED_TO) or closed after a write (IN_CLOSE_WRITE). The watch is on
  // the parent directory, matched by name, because a watch on the file's inode
  // would follow the old inode away after an atomic rename. The directory must
  // exist; the file need not, so a file created later is seen.
  absl::Status watchFile(const std::string& path, Callback cb);

  // Calls `cb` for any entry renamed into `dir`, as Envoy's watched_directory:
  // a ConfigMap update swaps its `..data` symlink with a rename.
  absl::Status watchDirectory(const std::string& dir, Callback cb);

 private:
  struct Registration {
    // Empty: every entry of the directory.
    std::string name;
    uint32_t mask;
    Callback cb;
  };

  struct DirectoryWatch {
    std::string dir;
    std::vector<Registration> registrations;
  };

  FileWatcher(event::Dispatcher& dispatcher, int fd);
  absl::Status addWatch(const std::string& dir, std::string name, uint32_t mask, Callback cb);
  void onReadable();

  const int fd_;
  std::unique_ptr<event::FileEvent> file_event_;
  // By inotify watch descriptor; one per directory however many files in it.
  absl::flat_hash_map<int, DirectoryWatch> watches_;
  // Lets onReadable notice that a callback destroyed this watcher.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace courier::config
