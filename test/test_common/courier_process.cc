#include "test/test_common/courier_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "test/test_common/net.h"

namespace courier::test {

HttpResponse httpRequest(uint16_t port, const std::string& method, const std::string& path,
                         const std::string& body) {
  HttpResponse r;
  TcpClient c(port);
  if (!c.connected()) return r;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!c.write(req)) return r;
  std::string raw = c.readToEof();
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return r;
  r.status = std::atoi(raw.c_str() + 9);
  r.headers = raw.substr(0, head_end);
  r.body = raw.substr(head_end + 4);
  // Our admin server may answer chunked; undo it for the tests.
  if (r.headers.find("chunked") != std::string::npos) {
    std::string decoded, &b = r.body;
    size_t pos = 0;
    while (pos < b.size()) {
      size_t eol = b.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = std::strtoul(b.c_str() + pos, nullptr, 16);
      if (len == 0) break;
      decoded += b.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    r.body = decoded;
  }
  return r;
}

std::string runCommand(const std::string& cmd, int* rc) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  const int status = ::pclose(f);
  if (rc != nullptr) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) {
    // Run directly (a benchmark): runfiles sit beside the binary.
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return path;
    return std::string(exe, static_cast<size_t>(n)) + ".runfiles/courier/" + path;
  }
  return std::string(srcdir) + "/" + (ws != nullptr ? ws : "courier") + "/" + path;
}

std::string tempDir() {
  static std::atomic<int> n{0};
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/courier_" + std::to_string(getpid()) + "_" +
                    std::to_string(n.fetch_add(1));
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path);
  out << content;
}

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path, int file_limit = 0) {
  pid_t pid = fork();
  if (pid == 0) {
    if (file_limit > 0) {
      rlimit rl{static_cast<rlim_t>(file_limit), static_cast<rlim_t>(file_limit)};
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

CourierProcess::~CourierProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool CourierProcess::start(const std::string& config_yaml, std::vector<std::string> extra_args) {
  dir_ = tempDir();
  writeFile(dir_ + "/courier.yaml", config_yaml);
  std::vector<std::string> args = {runfile("source/exe/courier"), "-c", dir_ + "/courier.yaml",
                                   "--admin-address-path", dir_ + "/admin_address"};
  // Defaults unless the caller chose (a flag given twice is an error, as in Envoy).
  for (const auto& [flag, value] : {std::pair<std::string, std::string>{"--concurrency", "2"}, {"--log-level", "info"}}) {
    if (std::find(extra_args.begin(), extra_args.end(), flag) == extra_args.end()) {
      args.push_back(flag);
      args.push_back(value);
    }
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = spawn(args, dir_ + "/courier.log", file_limit_);
  bool up = waitFor([&] {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    std::string addr = readFile(dir_ + "/admin_address");
    auto colon = addr.rfind(':');
    if (colon == std::string::npos || addr.back() != '\n') return false;
    admin_port_ = static_cast<uint16_t>(std::atoi(addr.c_str() + colon + 1));
    // Warming on a control plane is the test's to drive: admin answering is enough.
    return !wait_for_ready_ || admin("/ready").status == 200;
  });
  return up && pid_ > 0;
}

int CourierProcess::runToExit(const std::vector<std::string>& args, std::string* output) {
  std::string dir = tempDir();
  std::vector<std::string> full = {runfile("source/exe/courier")};
  full.insert(full.end(), args.begin(), args.end());
  pid_t pid = spawn(full, dir + "/out.log");
  int status = 0;
  bool done = waitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::milliseconds(30000));
  if (!done) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
  }
  if (output != nullptr) *output = readFile(dir + "/out.log");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

uint16_t CourierProcess::listenerPort(const std::string& name) const {
  std::string body = admin("/listeners?format=json").body;
  // {"listener_statuses": [{"name": "x", "local_address": {"socket_address": {"address": "..", "port_value": N}}}]}
  std::regex re("\"name\":\\s*\"" + name + "\"[^}]*?\"port_value\":\\s*(\\d+)");
  std::smatch m;
  if (!std::regex_search(body, m, re)) return 0;
  return static_cast<uint16_t>(std::stoi(m[1]));
}

std::optional<uint64_t> CourierProcess::stat(const std::string& name) const {
  std::string body = admin("/stats").body;
  std::istringstream in(body);
  std::string line;
  const std::string prefix = name + ": ";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) == 0) return std::stoull(line.substr(prefix.size()));
  }
  return std::nullopt;
}

bool CourierProcess::waitForStat(const std::string& name, uint64_t value, std::chrono::milliseconds timeout) const {
  return waitFor([&] { return stat(name) == value; }, timeout);
}

void CourierProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int CourierProcess::waitForExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  int status = 0;
  if (!waitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout)) {
    if (timeout.count() >= 1000) std::fprintf(stderr, "courier did not exit; stacks:\n%s\n", stacks().c_str());
    return -1;
  }
  pid_ = -1;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

std::string CourierProcess::stacks() const {
  if (pid_ <= 0) return "(not running)";
  std::string out_path = dir_ + "/stacks.txt";
  std::string cmd = "gdb -p " + std::to_string(pid_) + " -batch -ex 'thread apply all bt' >" + out_path + " 2>&1";
  if (std::system(cmd.c_str()) != 0) return "(gdb failed)\n" + readFile(out_path);
  return readFile(out_path);
}

std::string CourierProcess::log() const { return readFile(dir_ + "/courier.log"); }

}  // namespace courier::test
