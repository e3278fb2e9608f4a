// Helpers for tests that watch real files: a fresh directory under
// TEST_TMPDIR, writes in place or by atomic rename, and running a dispatcher
// until a condition holds, bounded so that a missed event fails instead of hanging.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "source/common/event/dispatcher.h"

namespace courier::config::testing {

inline std::string makeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/cfgXXXXXX";
  const char* dir = mkdtemp(templ.data());
  EXPECT_NE(dir, nullptr);
  return templ;
}

// Truncates and rewrites the file itself, as an editor or `cp` does.
inline void writeInPlace(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  ASSERT_TRUE(out.good()) << path;
}

// Writes beside the target and renames over it, as config generators do: the
// reader sees either the old or the new file, never half of one.
inline void writeAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  writeInPlace(tmp, contents);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
}

// Runs the loop until `done()` holds, checking every few milliseconds; false
// when `timeout` passed first.
inline bool runUntil(event::Dispatcher& dispatcher, const std::function<bool()>& done,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  if (done()) return true;
  bool timed_out = false;
  std::unique_ptr<event::Timer> check;
  check = dispatcher.createTimer([&] {
    if (done()) {
      dispatcher.exit();
    } else {
      check->enable(std::chrono::milliseconds(2));
    }
  });
  check->enable(std::chrono::milliseconds(0));
  auto deadline = dispatcher.createTimer([&] {
    timed_out = true;
    dispatcher.exit();
  });
  deadline->enable(timeout);
  dispatcher.run();
  return !timed_out && done();
}

}  // namespace courier::config::testing
