#include "tools/xds_server/snapshot_server.h"

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "source/common/config/resource_decoder.h"
#include "source/common/protobuf/yaml_loader.h"
#include "spdlog/spdlog.h"

namespace courier::tools {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

std::string contentVersion(const google::protobuf::Any& any) {
  return std::to_string(std::hash<std::string>()(any.SerializeAsString()));
}

// What a client subscribed to for one type: every resource (LDS, CDS: no
// names, or "*") or the names it listed (RDS, EDS).
struct Interest {
  bool wildcard = true;
  std::set<std::string> names;

  bool wants(const std::string& name) const { return wildcard || names.count(name) > 0; }
};

// Interest from a SotW request's resource_names.
Interest sotwInterest(const DiscoveryRequest& request) {
  Interest out;
  for (const std::string& name : request.resource_names()) {
    if (name == "*") continue;
    out.names.insert(name);
  }
  const bool star = std::find(request.resource_names().begin(), request.resource_names().end(), "*") !=
                    request.resource_names().end();
  out.wildcard = out.names.empty() || star;
  return out;
}

}  // namespace

absl::Status loadSnapshot(const std::string& dir, Snapshot& out) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return absl::NotFoundError(absl::StrCat(dir, ": cannot open directory"));
  std::vector<std::string> files;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".json")) files.push_back(name);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> origin;  // type/name -> file, for duplicate errors
  for (const std::string& file : files) {
    const std::string path = dir + "/" + file;
    DiscoveryResponse response;
    if (auto s = protobuf::loadFromFile(path, response); !s.ok()) return s;
    for (int i = 0; i < response.resources_size(); ++i) {
      const auto& any = response.resources(i);
      auto decoded = config::decodeResource(any, any.type_url(), "", absl::StrCat(path, ": resources[", i, "]"));
      if (!decoded.ok()) return decoded.status();
      const std::string key = any.type_url() + "/" + decoded->name;
      if (auto [it, inserted] = origin.emplace(key, path); !inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": resources[", i, "] '", decoded->name, "' is also in ", it->second));
      }
      out.types[any.type_url()][decoded->name] = Snapshot::Resource{contentVersion(any), any};
    }
  }
  for (const auto& [type, resources] : out.types) {
    std::string all;
    for (const auto& [name, resource] : resources) absl::StrAppend(&all, name, "=", resource.version, ";");
    out.type_versions[type] = std::to_string(std::hash<std::string>()(all));
  }
  return absl::OkStatus();
}

void SnapshotServer::update(Snapshot snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  snapshot.number = snapshot_->number + 1;
  snapshot_ = std::make_shared<const Snapshot>(std::move(snapshot));
  changed_.notify_all();
}

std::shared_ptr<const Snapshot> SnapshotServer::current() {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

// Both flavours: a reader (this handler's thread) records what the client
// asked for, a pusher thread answers it and pushes every new snapshot. LDS
// and CDS ask for every resource of their type (wildcard); RDS and EDS name
// theirs, and get those (a changed list of names is answered at once).
grpc::Status SnapshotServer::StreamAggregatedResources(
    grpc::ServerContext* context, grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* stream) {
  std::mutex state_mu;
  std::map<std::string, std::string> wanted;  // type -> version the client has ("" none)
  std::set<std::string> sent;                 // type -> already sent the current version
  std::map<std::string, Interest> interest;   // type -> the names it asked for
  std::set<std::string> forced;               // types whose names changed: answered even at the same version
  bool done = false;
  std::thread pusher([&] {
    uint64_t last = 0;
    for (;;) {
      std::shared_ptr<const Snapshot> snapshot;
      std::vector<std::string> to_send;
      {
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait_for(lock, std::chrono::milliseconds(100));
        snapshot = snapshot_;
      }
      {
        std::lock_guard<std::mutex> lock(state_mu);
        if (done) return;
        if (snapshot->number != last) sent.clear();
        last = snapshot->number;
        for (const auto& [type, version] : wanted) {
          auto v = snapshot->type_versions.find(type);
          const std::string current = v == snapshot->type_versions.end() ? "empty" : v->second;
          if (sent.count(type) == 0 && (version != current || forced.count(type) > 0)) to_send.push_back(type);
          sent.insert(type);
        }
        forced.clear();
      }
      for (const std::string& type : to_send) {
        Interest asked;
        {
          std::lock_guard<std::mutex> lock(state_mu);
          asked = interest[type];
        }
        DiscoveryResponse response;
        response.set_type_url(type);
        auto v = snapshot->type_versions.find(type);
        response.set_version_info(v == snapshot->type_versions.end() ? "empty" : v->second);
        response.set_nonce(absl::StrCat(snapshot->number, "-", type));
        if (auto it = snapshot->types.find(type); it != snapshot->types.end()) {
          for (const auto& [name, resource] : it->second) {
            if (asked.wants(name)) *response.add_resources() = resource.any;
          }
        }
        stream->Write(response);
      }
    }
  });
  DiscoveryRequest request;
  while (stream->Read(&request)) {
    if (request.has_error_detail()) {
      spdlog::warn("{} NACKed {} version {}: {}", context->peer(), request.type_url(), request.version_info(),
                   request.error_detail().message());
    }
    std::lock_guard<std::mutex> lock(state_mu);
    // A request naming a nonce answers a response; only a fresh one asks.
    wanted[request.type_url()] = request.version_info();
    if (request.response_nonce().empty()) sent.erase(request.type_url());
    Interest now = sotwInterest(request);
    auto& before = interest[request.type_url()];
    if (now.wildcard != before.wildcard || now.names != before.names) {
      // New names (an EDS cluster, an RDS table) need their resources now.
      before = std::move(now);
      sent.erase(request.type_url());
      forced.insert(request.type_url());
    }
  }
  {
    std::lock_guard<std::mutex> lock(state_mu);
    done = true;
  }
  changed_.notify_all();
  pusher.join();
  return grpc::Status::OK;
}

grpc::Status SnapshotServer::DeltaAggregatedResources(
    grpc::ServerContext* context, grpc::ServerReaderWriter<DeltaDiscoveryResponse, DeltaDiscoveryRequest>* stream) {
  std::mutex state_mu;
  // type -> the versions the client holds, by name.
  std::map<std::string, std::map<std::string, std::string>> held;
  std::set<std::string> dirty;  // types to compare against the snapshot
  std::set<std::string> fresh;  // first requested: answered even when nothing differs
  std::map<std::string, Interest> interest;
  bool done = false;
  std::thread pusher([&] {
    uint64_t last = 0;
    uint64_t nonce = 0;
    for (;;) {
      std::shared_ptr<const Snapshot> snapshot;
      {
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait_for(lock, std::chrono::milliseconds(100));
        snapshot = snapshot_;
      }
      std::vector<DeltaDiscoveryResponse> out;
      {
        std::lock_guard<std::mutex> lock(state_mu);
        if (done) return;
        if (snapshot->number != last) {
          for (const auto& [type, versions] : held) dirty.insert(type);
        }
        last = snapshot->number;
        for (const std::string& type : dirty) {
          auto& mine = held[type];
          const Interest& asked = interest[type];
          DeltaDiscoveryResponse response;
          response.set_type_url(type);
          response.set_system_version_info(std::to_string(snapshot->number));
          static const std::map<std::string, Snapshot::Resource> kNone;
          auto it = snapshot->types.find(type);
          const auto& theirs = it == snapshot->types.end() ? kNone : it->second;
          for (const auto& [name, resource] : theirs) {
            if (!asked.wants(name)) continue;
            auto h = mine.find(name);
            if (h != mine.end() && h->second == resource.version) continue;
            auto* r = response.add_resources();
            r->set_name(name);
            r->set_version(resource.version);
            *r->mutable_resource() = resource.any;
            mine[name] = resource.version;
          }
          for (auto h = mine.begin(); h != mine.end();) {
            if (theirs.count(h->first) > 0) {
              ++h;
              continue;
            }
            response.add_removed_resources(h->first);
            h = mine.erase(h);
          }
          if (response.resources_size() == 0 && response.removed_resources_size() == 0 && fresh.count(type) == 0) {
            continue;
          }
          response.set_nonce(std::to_string(++nonce));
          out.push_back(std::move(response));
        }
        dirty.clear();
        fresh.clear();
      }
      for (const auto& response : out) stream->Write(response);
    }
  });
  DeltaDiscoveryRequest request;
  while (stream->Read(&request)) {
    if (request.has_error_detail()) {
      spdlog::warn("{} NACKed {} (nonce {}): {}", context->peer(), request.type_url(), request.response_nonce(),
                   request.error_detail().message());
    }
    std::lock_guard<std::mutex> lock(state_mu);
    const std::string& type = request.type_url();
    // Not the nonce: a later request changing names carries none unless it
    // also acknowledges a response.
    const bool first = interest.count(type) == 0;
    auto& mine = held[type];
    auto& asked = interest[type];
    if (first) {
      // The first request of a type: what the client already holds needs no
      // resend. No names (or "*") is a wildcard subscription, as LDS and CDS ask.
      for (const auto& [name, version] : request.initial_resource_versions()) mine[name] = version;
      asked = Interest{};
      asked.wildcard = request.resource_names_subscribe().empty();
      dirty.insert(type);
      fresh.insert(type);
    }
    for (const std::string& name : request.resource_names_subscribe()) {
      if (name == "*") {
        asked.wildcard = true;
        continue;
      }
      if (!asked.names.insert(name).second) continue;
      // Newly asked for: sent even if an earlier subscription had it.
      if (request.initial_resource_versions().count(name) == 0) mine.erase(name);
      dirty.insert(type);
    }
    for (const std::string& name : request.resource_names_unsubscribe()) {
      if (name == "*") {
        asked.wildcard = false;
      } else {
        asked.names.erase(name);
      }
      // Not the client's any more: neither resent nor reported removed.
      if (!asked.wants(name)) mine.erase(name);
    }
  }
  {
    std::lock_guard<std::mutex> lock(state_mu);
    done = true;
  }
  changed_.notify_all();
  pusher.join();
  return grpc::Status::OK;
}

}  // namespace courier::tools
