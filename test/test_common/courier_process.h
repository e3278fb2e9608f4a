// Runs the real courier binary for integration tests: writes the config,
// starts the process with an ephemeral admin port, finds its ports through the
// admin API, and stops it (signal, /quitquitquit or kill) with bounded waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace courier::test {

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// One HTTP/1.1 request over a fresh loopback connection (Connection: close).
HttpResponse httpRequest(uint16_t port, const std::string& method, const std::string& path,
                         const std::string& body = "");

// Path of a runfile such as "source/exe/courier".
std::string runfile(const std::string& path);
// A fresh directory under TEST_TMPDIR.
std::string tempDir();
void writeFile(const std::string& path, const std::string& content);
// Runs a shell command (curl, openssl, h2load...) and returns its stdout;
// sets `rc` to its exit code (-1 if it did not exit) when given.
std::string runCommand(const std::string& cmd, int* rc = nullptr);

class CourierProcess {
 public:
  CourierProcess() = default;
  ~CourierProcess();

  // Starts courier -c <dir>/courier.yaml with the given extra flags and waits
  // for admin to answer. config_yaml must leave admin's port to the caller
  // (use port_value: 0). Returns false (with log() explaining) on failure.
  bool start(const std::string& config_yaml, std::vector<std::string> extra_args = {});
  // Runs courier to completion (e.g. --mode validate) and returns its exit code.
  static int runToExit(const std::vector<std::string>& args, std::string* output);

  // start() returns once admin answers, not waiting for /ready (a server
  // warming from a control plane the test has yet to answer). Set before start().
  void setWaitForReady(bool wait) { wait_for_ready_ = wait; }

  // Limits the child's open descriptors (RLIMIT_NOFILE) when non-zero; set before start().
  void setFileLimit(int limit) { file_limit_ = limit; }

  uint16_t adminPort() const { return admin_port_; }
  HttpResponse admin(const std::string& path, const std::string& method = "GET") const {
    return httpRequest(admin_port_, method, path);
  }
  // The bound port of a listener, from /listeners?format=json.
  uint16_t listenerPort(const std::string& name) const;
  // A counter or gauge from /stats (nullopt if absent).
  std::optional<uint64_t> stat(const std::string& name) const;
  // Waits until stat(name) == value.
  bool waitForStat(const std::string& name, uint64_t value,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) const;

  void signal(int sig);
  // Waits for the process to exit; returns its exit code, or -1 on timeout.
  int waitForExit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  // Every thread's stack (gdb), for a process that does not exit when it should.
  std::string stacks() const;

 private:
  pid_t pid_ = -1;
  uint16_t admin_port_ = 0;
  std::string dir_;
  int exit_code_ = -1;
  int file_limit_ = 0;
  bool wait_for_ready_ = true;
};

}  // namespace courier::test
