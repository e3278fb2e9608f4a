#include "source/common/access_log/access_log.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"
#include "gtest/gtest.h"
#include "test/common/access_log/test_stream_info.h"

// The deprecated FileAccessLog.json_format is still accepted, as in Envoy.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace courier::access_log {
namespace {

using FileConfig = envoy::extensions::access_loggers::file::v3::FileAccessLog;
using ProtoAccessLog = envoy::config::accesslog::v3::AccessLog;

std::string tmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::remove(path.c_str());
  return path;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ProtoAccessLog fileLog(const std::string& path, const std::string& format) {
  FileConfig file;
  file.set_path(path);
  file.mutable_log_format()->mutable_text_format_source()->set_inline_string(format);
  ProtoAccessLog config;
  config.set_name("envoy.access_loggers.file");
  config.mutable_typed_config()->PackFrom(file);
  return config;
}

TEST(AccessLogTest, FileLoggerWritesLinesAfterFlush) {
  const std::string path = tmpPath("lines.log");
  AccessLogManager manager(std::chrono::hours(1));
  auto log = createAccessLog(fileLog(path, "%REQ(:METHOD)% %RESPONSE_CODE%\n"), "access_log[0]", manager);
  ASSERT_TRUE(log.ok()) << log.status();
  test::TestStream s;
  (*log)->log(s.info);
  s.info.response_code = 404;
  (*log)->log(s.info);
  EXPECT_EQ(readFile(path), "");  // buffered until the flush interval
  manager.flushAll();
  EXPECT_EQ(readFile(path), "GET 200\nGET 404\n");
}

TEST(AccessLogTest, FileLoggerDefaultFormatWhenNoneGiven) {
  const std::string path = tmpPath("default.log");
  FileConfig file;
  file.set_path(path);
  ProtoAccessLog config;
  config.mutable_typed_config()->PackFrom(file);
  AccessLogManager manager(std::chrono::hours(1));
  auto log = createAccessLog(config, "a", manager);
  ASSERT_TRUE(log.ok()) << log.status();
  test::TestStream s;
  (*log)->log(s.info);
  manager.flushAll();
  EXPECT_EQ(readFile(path),
            "[2024-01-01T00:00:00.123Z] \"GET /api/v1/items?x=1 HTTP/1.1\" 200 - 10 20 42 12 \"192.0.2.1\" "
            "\"curl/8.0\" \"req-1\" \"example.com\" \"10.0.0.3:8080\"\n");
}

TEST(AccessLogTest, FileLoggerDeprecatedJsonFormat) {
  const std::string path = tmpPath("json.log");
  FileConfig file;
  file.set_path(path);
  (*file.mutable_json_format()->mutable_fields())["code"].set_string_value("%RESPONSE_CODE%");
  ProtoAccessLog config;
  config.mutable_typed_config()->PackFrom(file);
  AccessLogManager manager(std::chrono::hours(1));
  auto log = createAccessLog(config, "a", manager);
  ASSERT_TRUE(log.ok()) << log.status();
  test::TestStream s;
  (*log)->log(s.info);
  manager.flushAll();
  EXPECT_EQ(readFile(path), "{\"code\":200}\n");
}

TEST(AccessLogTest, FlushedOnManagerDestruction) {
  const std::string path = tmpPath("destroy.log");
  {
    AccessLogManager manager(std::chrono::hours(1));
    auto log = createAccessLog(fileLog(path, "x\n"), "a", manager);
    ASSERT_TRUE(log.ok());
    (*log)->log(stream_info::StreamInfo{});
    log->reset();
  }
  EXPECT_EQ(readFile(path), "x\n");
}

TEST(AccessLogTest, FlusherThreadWritesAfterInterval) {
  const std::string path = tmpPath("interval.log");
  AccessLogManager manager(std::chrono::milliseconds(10));
  auto log = createAccessLog(fileLog(path, "x\n"), "a", manager);
  ASSERT_TRUE(log.ok());
  (*log)->log(stream_info::StreamInfo{});
  for (int i = 0; i < 500 && readFile(path).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(readFile(path), "x\n");
}

TEST(AccessLogTest, LoggersOnSamePathShareOneFile) {
  const std::string path = tmpPath("shared.log");
  AccessLogManager manager(std::chrono::hours(1));
  auto a = createAccessLog(fileLog(path, "a\n"), "a", manager);
  auto b = createAccessLog(fileLog(path, "b\n"), "b", manager);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*manager.file(path), *manager.file(path));
  (*a)->log(stream_info::StreamInfo{});
  (*b)->log(stream_info::StreamInfo{});
  manager.flushAll();
  EXPECT_EQ(readFile(path), "a\nb\n");
}

TEST(AccessLogTest, FilterSkipsNonMatchingStreams) {
  const std::string path = tmpPath("filtered.log");
  auto config = fileLog(path, "%RESPONSE_CODE%\n");
  auto* c = config.mutable_filter()->mutable_status_code_filter()->mutable_comparison();
  c->set_op(envoy::config::accesslog::v3::ComparisonFilter::GE);
  c->mutable_value()->set_default_value(500);
  AccessLogManager manager(std::chrono::hours(1));
  auto log = createAccessLog(config, "a", manager);
  ASSERT_TRUE(log.ok());
  test::TestStream s;
  (*log)->log(s.info);
  s.info.response_code = 503;
  (*log)->log(s.info);
  manager.flushAll();
  EXPECT_EQ(readFile(path), "503\n");
}

TEST(AccessLogTest, ReopenWritesToNewFileAfterRotation) {
  const std::string path = tmpPath("rotate.log");
  const std::string rotated = path + ".1";
  std::remove(rotated.c_str());
  AccessLogManager manager(std::chrono::hours(1));
  auto log = createAccessLog(fileLog(path, "%RESPONSE_CODE%\n"), "a", manager);
  ASSERT_TRUE(log.ok());
  test::TestStream s;
  (*log)->log(s.info);
  manager.flushAll();
  ASSERT_EQ(std::rename(path.c_str(), rotated.c_str()), 0);
  s.info.response_code = 204;
  (*log)->log(s.info);
  ASSERT_TRUE(manager.reopenAll().ok());
  (*log)->log(s.info);
  manager.flushAll();
  EXPECT_EQ(readFile(rotated), "200\n204\n");
  EXPECT_EQ(readFile(path), "204\n");
}

TEST(AccessLogTest, ConcurrentLogFromFourThreadsKeepsLinesIntact) {
  const std::string path = tmpPath("concurrent.log");
  AccessLogManager manager(std::chrono::milliseconds(1));
  auto log = createAccessLog(fileLog(path, "%REQ(X-THREAD)% %REQ(:PATH)% end\n"), "a", manager);
  ASSERT_TRUE(log.ok());
  constexpr int kThreads = 4;
  constexpr int kLines = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      test::TestStream s;
      s.request.set("x-thread", std::to_string(t));
      s.request.set(":path", std::string(100 + t * 10, 'a' + t));
      for (int i = 0; i < kLines; ++i) (*log)->log(s.info);
    });
  }
  for (auto& th : threads) th.join();
  manager.flushAll();
  std::ifstream in(path);
  std::string line;
  int counts[kThreads] = {};
  int total = 0;
  while (std::getline(in, line)) {
    ++total;
    ASSERT_GE(line.size(), 2u);
    int t = line[0] - '0';
    ASSERT_TRUE(t >= 0 && t < kThreads) << line;
    ASSERT_EQ(line, std::to_string(t) + " " + std::string(100 + t * 10, 'a' + t) + " end");
    ++counts[t];
  }
  EXPECT_EQ(total, kThreads * kLines);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(counts[t], kLines);
}

TEST(AccessLogTest, StdoutLoggerBuildsByTypeUrl) {
  envoy::extensions::access_loggers::stream::v3::StdoutAccessLog out;
  out.mutable_log_format()->mutable_text_format_source()->set_inline_string("%RESPONSE_CODE%\n");
  ProtoAccessLog config;
  config.set_name("envoy.access_loggers.stdout");
  config.mutable_typed_config()->PackFrom(out);
  AccessLogManager manager;
  auto log = createAccessLog(config, "a", manager);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*manager.file("/dev/stdout"))->path(), "/dev/stdout");
}

TEST(AccessLogTest, StderrLoggerBuildsByName) {
  ProtoAccessLog config;
  config.set_name("envoy.access_loggers.stderr");
  AccessLogManager manager;
  auto log = createAccessLog(config, "a", manager);
  ASSERT_TRUE(log.ok()) << log.status();
}

TEST(AccessLogTest, UnknownLoggerIsError) {
  ProtoAccessLog config;
  config.set_name("envoy.access_loggers.http_grpc");
  AccessLogManager manager;
  auto log = createAccessLog(config, "listeners[0].access_log[2]", manager);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().message().rfind(
                "listeners[0].access_log[2].name: unsupported access logger \"envoy.access_loggers.http_grpc\"", 0),
            0u)
      << log.status();
}

TEST(AccessLogTest, FileLoggerWithoutPathIsError) {
  FileConfig file;
  ProtoAccessLog config;
  config.mutable_typed_config()->PackFrom(file);
  AccessLogManager manager;
  auto log = createAccessLog(config, "a", manager);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().message(), "a.typed_config.path: the file access logger needs a path");
}

TEST(AccessLogTest, BadFormatErrorCarriesFullPath) {
  AccessLogManager manager;
  auto log = createAccessLog(fileLog(tmpPath("bad.log"), "%NOPE%"), "access_log[1]", manager);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().message(),
            "access_log[1].typed_config.log_format.text_format_source.inline_string: unknown command operator "
            "\"%NOPE%\" at offset 0");
}

TEST(AccessLogTest, BadFilterErrorCarriesFullPath) {
  auto config = fileLog(tmpPath("badfilter.log"), "x\n");
  config.mutable_filter()->mutable_traceable_filter();
  AccessLogManager manager;
  auto log = createAccessLog(config, "access_log[0]", manager);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().message(),
            "access_log[0].filter.traceable_filter: access log filter traceable_filter is not supported");
}

TEST(AccessLogTest, UnopenablePathIsError) {
  AccessLogManager manager;
  auto log = createAccessLog(fileLog("/nonexistent-dir/x.log", "x\n"), "a", manager);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("a.typed_config.path: cannot open access log file"), std::string::npos)
      << log.status();
}

}  // namespace
}  // namespace courier::access_log
