// xds_server: serves a directory of DiscoveryResponse YAML files over ADS
// (state of the world and delta on one port) and pushes changes as the files
// change. For examples and development, not production.
//
//   xds_server --dir examples/ads/resources [--address 127.0.0.1:18000]
#include <grpcpp/grpcpp.h>
#include <dirent.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "spdlog/spdlog.h"
#include "tools/xds_server/snapshot_server.h"

namespace {

// A cheap change detector: the names, sizes and mtimes of the directory's files.
std::string directoryStamp(const std::string& dir) {
  courier::tools::Snapshot ignored;
  std::string stamp;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      struct stat st {};
      const std::string path = dir + "/" + e->d_name;
      if (::stat(path.c_str(), &st) == 0) {
        stamp += path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                 std::to_string(st.st_mtim.tv_nsec) + ";";
      }
    }
    ::closedir(d);
  }
  return stamp;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  std::string address = "127.0.0.1:18000";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    else if (std::strcmp(argv[i], "--address") == 0) address = argv[i + 1];
  }
  if (dir.empty()) {
    fprintf(stderr, "usage: %s --dir DIR [--address HOST:PORT]\n", argv[0]);
    return 2;
  }
  courier::tools::SnapshotServer service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::error("cannot listen on {}", address);
    return 1;
  }
  spdlog::info("serving {} over ADS on {} (port {})", dir, address, port);
  std::string last_stamp;
  for (;;) {
    const std::string stamp = directoryStamp(dir);
    if (stamp != last_stamp) {
      last_stamp = stamp;
      courier::tools::Snapshot snapshot;
      if (auto s = courier::tools::loadSnapshot(dir, snapshot); !s.ok()) {
        // Keep serving the last good snapshot; the client never sees a half-written directory.
        spdlog::warn("not serving the change: {}", std::string(s.message()));
      } else {
        size_t count = 0;
        for (const auto& [type, resources] : snapshot.types) count += resources.size();
        service.update(std::move(snapshot));
        spdlog::info("serving {} resource(s)", count);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}
