#include "source/common/config/file_watcher.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "source/common/event/dispatcher.h"
#include "test/common/config/file_test_util.h"

namespace courier::config {
namespace {

using testing::makeTempDir;
using testing::runUntil;
using testing::writeAtomically;
using testing::writeInPlace;

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir();
    auto watcher = FileWatcher::create(dispatcher_);
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    watcher_ = std::move(*watcher);
  }

  event::Dispatcher dispatcher_{"test"};
  std::string dir_;
  std::unique_ptr<FileWatcher> watcher_;
};

TEST_F(FileWatcherTest, FileReplacedByRenameFires) {
  const std::string path = dir_ + "/lds.yaml";
  writeInPlace(path, "old");
  int fired = 0;
  ASSERT_TRUE(watcher_->watchFile(path, [&] { ++fired; }).ok());
  writeAtomically(path, "new");
  EXPECT_TRUE(runUntil(dispatcher_, [&] { return fired > 0; }));
}

TEST_F(FileWatcherTest, FileRewrittenInPlaceFires) {
  const std::string path = dir_ + "/lds.yaml";
  writeInPlace(path, "old");
  int fired = 0;
  ASSERT_TRUE(watcher_->watchFile(path, [&] { ++fired; }).ok());
  writeInPlace(path, "new");
  EXPECT_TRUE(runUntil(dispatcher_, [&] { return fired > 0; }));
}

TEST_F(FileWatcherTest, FileCreatedAfterTheWatchFires) {
  const std::string path = dir_ + "/later.yaml";
  int fired = 0;
  ASSERT_TRUE(watcher_->watchFile(path, [&] { ++fired; }).ok());
  writeAtomically(path, "now");
  EXPECT_TRUE(runUntil(dispatcher_, [&] { return fired > 0; }));
}

// Both files share one directory watch; only the named one may fire.
TEST_F(FileWatcherTest, ChangeToAnotherFileInTheDirectoryDoesNotFire) {
  int a_fired = 0;
  int b_fired = 0;
  ASSERT_TRUE(watcher_->watchFile(dir_ + "/a.yaml", [&] { ++a_fired; }).ok());
  ASSERT_TRUE(watcher_->watchFile(dir_ + "/b.yaml", [&] { ++b_fired; }).ok());
  writeAtomically(dir_ + "/b.yaml", "b");
  writeInPlace(dir_ + "/unrelated", "x");
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return b_fired > 0; }));
  EXPECT_EQ(a_fired, 0);
}

TEST_F(FileWatcherTest, OneBurstOfEventsFiresOnce) {
  const std::string path = dir_ + "/lds.yaml";
  int fired = 0;
  ASSERT_TRUE(watcher_->watchFile(path, [&] { ++fired; }).ok());
  // All queued before the loop runs, so one read sees them all.
  writeInPlace(path, "1");
  writeInPlace(path, "2");
  writeAtomically(path, "3");
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return fired > 0; }));
  EXPECT_EQ(fired, 1);
}

// The file event is edge-triggered: events left unread after one readiness
// would never be reported. Queue more than one read's worth ahead of the one
// that matters.
TEST_F(FileWatcherTest, EveryQueuedEventIsReadAfterOneReadiness) {
  const std::string path = dir_ + "/lds.yaml";
  int fired = 0;
  ASSERT_TRUE(watcher_->watchFile(path, [&] { ++fired; }).ok());
  for (int i = 0; i < 2000; ++i) writeInPlace(dir_ + "/noise-" + std::to_string(i), "x");
  writeInPlace(path, "last");
  EXPECT_TRUE(runUntil(dispatcher_, [&] { return fired > 0; }));
}

TEST_F(FileWatcherTest, DirectoryWatchFiresOnAnyRenameIntoIt) {
  int fired = 0;
  ASSERT_TRUE(watcher_->watchDirectory(dir_, [&] { ++fired; }).ok());
  // A ConfigMap update: new data directory, then `..data` swapped by rename.
  ASSERT_EQ(mkdir((dir_ + "/..2024_01").c_str(), 0755), 0);
  ASSERT_EQ(symlink("..2024_01", (dir_ + "/..data_tmp").c_str()), 0);
  ASSERT_EQ(std::rename((dir_ + "/..data_tmp").c_str(), (dir_ + "/..data").c_str()), 0);
  EXPECT_TRUE(runUntil(dispatcher_, [&] { return fired > 0; }));
}

// watched_directory reacts to renames only, as Envoy's does.
TEST_F(FileWatcherTest, DirectoryWatchIgnoresInPlaceWrites) {
  int dir_fired = 0;
  int file_fired = 0;
  ASSERT_TRUE(watcher_->watchDirectory(dir_, [&] { ++dir_fired; }).ok());
  ASSERT_TRUE(watcher_->watchFile(dir_ + "/f", [&] { ++file_fired; }).ok());
  writeInPlace(dir_ + "/f", "x");
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return file_fired > 0; }));
  EXPECT_EQ(dir_fired, 0);
}

TEST_F(FileWatcherTest, MissingDirectoryIsAnError) {
  const absl::Status file = watcher_->watchFile(dir_ + "/nope/lds.yaml", [] {});
  EXPECT_FALSE(file.ok());
  EXPECT_NE(file.message().find("nope"), std::string::npos) << file;
  EXPECT_FALSE(watcher_->watchDirectory(dir_ + "/nope", [] {}).ok());
}

TEST_F(FileWatcherTest, CallbackMayDestroyTheWatcher) {
  int fired = 0;
  ASSERT_TRUE(watcher_->watchFile(dir_ + "/a", [&] {
                ++fired;
                watcher_.reset();
              }).ok());
  ASSERT_TRUE(watcher_->watchFile(dir_ + "/b", [&] { ++fired; }).ok());
  writeInPlace(dir_ + "/a", "x");
  writeInPlace(dir_ + "/b", "x");
  ASSERT_TRUE(runUntil(dispatcher_, [&] { return fired > 0; }));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(watcher_, nullptr);
}

}  // namespace
}  // namespace courier::config
