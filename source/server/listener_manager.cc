#include "source/server/listener_manager.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "source/extensions/transport_sockets/tls/secret_manager.h"
#include "source/server/listener_factory.h"
#include "spdlog/spdlog.h"

namespace courier::server {
namespace {

using envoy::config::listener::v3::Listener;


// Envoy's filter-chain-only update: everything but the filter chains is the
// same, so the listener keeps its socket and only changed chains drain.
// Compared in place: copying both listeners (every chain, inline
// certificates included) just to clear their chains cost two deep copies.
bool filterChainOnlyChange(const Listener& before, const Listener& after) {
  google::protobuf::util::MessageDifferencer differ;
  differ.IgnoreField(Listener::descriptor()->FindFieldByName("filter_chains"));
  differ.IgnoreField(Listener::descriptor()->FindFieldByName("default_filter_chain"));
  return differ.Compare(before, after);
}

absl::Status prefixed(const absl::Status& status, const std::string& prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

}  // namespace

ListenerManagerStats::ListenerManagerStats(stats::Store& store)
    : listener_added(store.counter("listener_manager.listener_added")),
      listener_modified(store.counter("listener_manager.listener_modified")),
      listener_in_place_updated(store.counter("listener_manager.listener_in_place_updated")),
      listener_removed(store.counter("listener_manager.listener_removed")),
      listener_create_success(store.counter("listener_manager.listener_create_success")),
      listener_create_failure(store.counter("listener_manager.listener_create_failure")),
      total_listeners_active(store.gauge("listener_manager.total_listeners_active")),
      total_listeners_warming(store.gauge("listener_manager.total_listeners_warming")),
      total_listeners_draining(store.gauge("listener_manager.total_listeners_draining")),
      lds_update_attempt(store.counter("listener_manager.lds.update_attempt")),
      lds_update_success(store.counter("listener_manager.lds.update_success")),
      lds_update_rejected(store.counter("listener_manager.lds.update_rejected")),
      lds_update_failure(store.counter("listener_manager.lds.update_failure")),
      lds_version(store.gauge("listener_manager.lds.version")) {}

ListenerManager::ListenerManager(event::Dispatcher& main, std::vector<std::unique_ptr<Worker>>& workers,
                                 stats::Store& stats, ContextProvider context, std::chrono::seconds drain_time,
                                 bool bind)
    : main_(main),
      workers_(workers),
      store_(stats),
      stats_(stats),
      context_(std::move(context)),
      drain_time_(drain_time),
      bind_(bind) {
  updateGauges();
}

ListenerManager::~ListenerManager() { *alive_ = false; }

absl::Status ListenerManager::addStaticListeners(const google::protobuf::RepeatedPtrField<Listener>& listeners) {
  FactoryContext context = context_();
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  for (int i = 0; i < listeners.size(); ++i) {
    const std::string path = absl::StrCat("static_resources.listeners[", i, "]");
    std::vector<std::shared_ptr<tls::SecretProvider>> secrets;
    std::vector<std::shared_ptr<router::RouteConfigProvider>> rds;
    context.secret_providers = &secrets;
    context.rds_providers = &rds;
    auto config = createListener(listeners[i], path, context);
    context.secret_providers = nullptr;
    context.rds_providers = nullptr;
    if (!config.ok()) return config.status();
    if (find((*config)->name) != nullptr || warming_.contains((*config)->name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".name: duplicate listener name \"", (*config)->name, "\""));
    }
    Pending p{static_cast<size_t>(i), Entry{listeners[i], *config, (*config)->address, false, "", now}, {}, false};
    if (bind_) {
      // Bound now, so a port clash fails start-up; listening waits for the
      // server to initialize (clusters warm, route tables and secrets
      // arrived), as Envoy's listen() waits for its workers: until then a
      // connection is refused rather than left in a backlog nobody serves.
      if (auto s = bindSockets(**config, path, p.fds, p.entry.bound_address); !s.ok()) return s;
      spdlog::info("listener '{}' on {}", (*config)->name, p.entry.bound_address.asString());
    }
    p.rds = std::move(rds);
    p.secrets = std::move(secrets);
    addDuringInit(std::move(p));
  }
  updateGauges();
  return absl::OkStatus();
}

ListenerManager::Entry* ListenerManager::find(const std::string& name) {
  for (auto& e : entries_) {
    if (e.config->name == name) return &e;
  }
  return nullptr;
}

absl::Status ListenerManager::bindSockets(const ListenerConfig& config, const std::string& path,
                                          std::vector<network::SocketFd>& fds, network::Address& bound) {
  // The first socket fixes the port when the config asks for an ephemeral one.
  network::Address address = config.address;
  for (size_t w = 0; w < workers_.size(); ++w) {
    if (w > 0 && !config.reuse_port) {
      fds.emplace_back(::dup(fds.front().get()));
      continue;
    }
    auto fd = network::listenOn(address, config.reuse_port, config.backlog, /*listen=*/false);
    if (!fd.ok()) return absl::UnavailableError(absl::StrCat(path, ".address: ", fd.status().message()));
    if (w == 0) address = network::Address::localOf(fd->get());
    fds.push_back(std::move(*fd));
  }
  bound = address;
  return absl::OkStatus();
}

bool ListenerManager::listenAll(const ListenerConfig& config, std::vector<network::SocketFd>& fds) {
  for (auto& fd : fds) {
    // A dup()ed socket (reuse_port off) is listened on again: harmless.
    if (::listen(fd.get(), config.backlog) != 0) {
      spdlog::error("listener '{}': cannot listen on {}: {}", config.name, config.address.asString(),
                    std::strerror(errno));
      return false;
    }
  }
  return true;
}

absl::Status ListenerManager::onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                                             const std::string& version_info) {
  // State of the world: dynamic listeners not named are removed; static
  // ones are not LDS's to remove.
  absl::flat_hash_set<std::string> named;
  for (const auto& r : resources) named.insert(r.name);
  std::vector<std::string> removed;
  for (const auto& e : entries_) {
    if (e.added_via_api && !named.contains(e.config->name)) removed.push_back(e.config->name);
  }
  return apply(resources, removed, version_info);
}

absl::Status ListenerManager::onConfigUpdate(const std::vector<config::DecodedResource>& added,
                                             const std::vector<std::string>& removed,
                                             const std::string& system_version_info) {
  return apply(added, removed, system_version_info);
}

void ListenerManager::onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) {
  stats_.lds_update_attempt.inc();
  (reason == config::UpdateFailureReason::UpdateRejected ? stats_.lds_update_rejected : stats_.lds_update_failure)
      .inc();
  spdlog::warn("lds: update failed, keeping {} listener(s): {}", entries_.size(), std::string(error.message()));
  markInitialLoadDone();
}

absl::Status ListenerManager::apply(const std::vector<config::DecodedResource>& added,
                                    const std::vector<std::string>& removed, const std::string& version_info) {
  stats_.lds_update_attempt.inc();
  auto reject = [this](absl::Status status) {
    stats_.lds_update_rejected.inc();
    spdlog::warn("lds: update rejected, the previous listeners keep serving: {}", std::string(status.message()));
    markInitialLoadDone();
    return status;
  };
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  FactoryContext context = context_();

  // 1. Build every new or changed listener; nothing is live yet.
  std::vector<Pending> pending;
  std::vector<std::string> back_to_active;
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string path = absl::StrCat("resources[", i, "]");
    const auto* proto = dynamic_cast<const Listener*>(added[i].resource.get());
    if (proto == nullptr) {
      return reject(absl::InvalidArgumentError(absl::StrCat(path, ": not a ", Listener::descriptor()->full_name())));
    }
    const std::string prefix = absl::StrCat("listener \"", added[i].name, "\": ");
    Entry* existing = find(added[i].name);
    if (existing != nullptr && !existing->added_via_api) {
      // Envoy: a static listener cannot be changed through the API; the rest
      // of the update still applies.
      spdlog::warn("lds: listener '{}' is static; its LDS version is ignored", added[i].name);
      continue;
    }
    // Byte-for-byte the same listener: leave it and its connections alone
    // (and drop a newer version that was still warming: this one wins).
    if (existing != nullptr && google::protobuf::util::MessageDifferencer::Equals(existing->proto, *proto)) {
      if (warming_.contains(added[i].name)) back_to_active.push_back(added[i].name);
      continue;
    }
    std::vector<std::shared_ptr<router::RouteConfigProvider>> rds;
    std::vector<std::shared_ptr<tls::SecretProvider>> secrets;
    context.rds_providers = &rds;
    context.secret_providers = &secrets;
    auto config = createListener(*proto, path, context);
    context.rds_providers = nullptr;
    context.secret_providers = nullptr;
    if (!config.ok()) return reject(prefixed(config.status(), prefix));
    if ((*config)->name != added[i].name) {
      return reject(absl::InvalidArgumentError(
          absl::StrCat(prefix, path, ".name: the listener is named \"", (*config)->name, "\"")));
    }
    Pending p{i, Entry{*proto, *config, (*config)->address, true, added[i].version, now}, {}, existing != nullptr};
    p.rds = std::move(rds);
    p.secrets = std::move(secrets);
    pending.push_back(std::move(p));
  }
  absl::flat_hash_set<std::string> removing;
  for (const auto& name : removed) {
    Entry* e = find(name);
    if (e == nullptr) continue;
    if (!e->added_via_api) {
      spdlog::warn("lds: listener '{}' is static and cannot be removed by LDS", name);
      continue;
    }
    removing.insert(name);
  }

  // 2. Two listeners on one address would split its connections between two
  // configs: refuse, as Envoy does. The changed ones replace their old selves.
  absl::flat_hash_map<std::string, std::string> by_address;
  absl::flat_hash_set<std::string> replacing;
  for (const auto& p : pending) replacing.insert(p.entry.config->name);
  for (const auto& e : entries_) {
    const std::string& name = e.config->name;
    if (removing.contains(name) || replacing.contains(name)) continue;
    by_address.emplace(e.bound_address.asString(), name);
    if (e.config->address.port() != 0) by_address.emplace(e.config->address.asString(), name);
  }
  for (const auto& p : pending) {
    const auto& address = p.entry.config->address;
    if (address.port() == 0) continue;
    auto [it, inserted] = by_address.emplace(address.asString(), p.entry.config->name);
    if (!inserted) {
      return reject(absl::InvalidArgumentError(absl::StrCat(
          "listener \"", p.entry.config->name, "\": resources[", p.resource_index, "].address: ", address.asString(),
          " is already the address of listener \"", it->second, "\"")));
    }
  }

  // 3. Bind what needs new sockets. A changed listener at the same address
  // takes over its predecessor's sockets on each worker instead, so no
  // connection queued in the kernel is lost to the swap.
  if (bind_) {
    for (auto& p : pending) {
      auto warming = warming_.find(p.entry.config->name);
      if (warming != warming_.end()) {
        const auto& w = warming->second.pending;
        if (w.entry.config->address.asString() == p.entry.config->address.asString() &&
            w.entry.config->reuse_port == p.entry.config->reuse_port) {
          // The warming version bound these sockets (or borrows its predecessor's).
          p.take_warming_fds = true;
          p.entry.bound_address = w.entry.bound_address;
          continue;
        }
      }
      if (p.replaces) {
        const Entry* old = find(p.entry.config->name);
        if (old->config->address.asString() == p.entry.config->address.asString() &&
            old->config->reuse_port == p.entry.config->reuse_port) {
          p.entry.bound_address = old->bound_address;
          continue;
        }
      }
      const std::string path = absl::StrCat("resources[", p.resource_index, "]");
      auto s = bindSockets(*p.entry.config, path, p.fds, p.entry.bound_address);
      if (!s.ok()) return reject(prefixed(s, absl::StrCat("listener \"", p.entry.config->name, "\": ")));
    }
  }

  // 4. Commit: from here nothing fails.
  size_t changes = 0;
  for (const auto& name : back_to_active) warming_.erase(name);
  for (const auto& name : removing) {
    warming_.erase(name);
    if (find(name) == nullptr) continue;  // it was only warming
    if (auto held = findHeld(name); held != held_.end()) {
      // Never handed to a worker (the server initializes): nothing drains.
      held_.erase(held);
      init_waiting_.erase(name);
      entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                    [&name](const Entry& e) { return e.config->name == name; }),
                     entries_.end());
      stats_.listener_removed.inc();
      spdlog::info("lds: removed listener '{}' before it started", name);
      ++changes;
      continue;
    }
    const uint64_t tag = next_drain_tag_++;
    onEveryWorker([name, tag](Worker& w) { w.drainListener(name, tag); }, nullptr);
    scheduleDrainEnd(tag);
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [&name](const Entry& e) { return e.config->name == name; }),
                   entries_.end());
    stats_.listener_removed.inc();
    spdlog::info("lds: removed listener '{}'; draining for {}s", name, drain_time_.count());
    ++changes;
  }
  for (auto& p : pending) {
    if (!initial_load_done_) {
      // Envoy, before its workers start: straight to the active list; the
      // server's initialization waits for it.
      addDuringInit(std::move(p));
      ++changes;
      continue;
    }
    const std::string name = p.entry.config->name;
    auto previous = warming_.find(name);
    if (previous != warming_.end()) {
      if (p.take_warming_fds) p.fds = std::move(previous->second.pending.fds);
      warming_.erase(previous);
    }
    startWarming(std::move(p));
    ++changes;
  }
  version_info_ = version_info;
  stats_.lds_version.set(config::versionHash(version_info));
  updateGauges();
  // Success is counted once every worker runs the new listeners, so that
  // whoever watches the counter can rely on new connections meeting them.
  std::shared_ptr<bool> alive = alive_;
  onEveryWorker(nullptr, [this, alive] {
    if (!*alive) return;
    stats_.lds_update_success.inc();
    markInitialLoadDone();
  });
  if (changes == 0) spdlog::debug("lds: version '{}' changes no listener", version_info);
  return absl::OkStatus();
}

void ListenerManager::startWarming(Pending p) {
  const std::string name = p.entry.config->name;
  std::vector<std::shared_ptr<router::RouteConfigProvider>> waiting;
  for (const auto& provider : p.rds) {
    if (!provider->warm()) waiting.push_back(provider);
  }
  std::vector<std::shared_ptr<tls::SecretProvider>> waiting_secrets;
  for (const auto& provider : p.secrets) {
    if (!provider->warm()) waiting_secrets.push_back(provider);
  }
  if (waiting.empty() && waiting_secrets.empty()) {
    activate(p);
    updateGauges();
    return;
  }
  const uint64_t generation = next_warming_generation_++;
  spdlog::info("lds: listener '{}' warms until {} route table(s) and {} secret(s) arrive", name, waiting.size(),
               waiting_secrets.size());
  warming_[name] = Warming{std::move(p), waiting.size() + waiting_secrets.size(), generation};
  updateGauges();
  for (const auto& provider : waiting) {
    provider->onWarm([this, alive = alive_, name, generation] {
      if (*alive) onWarm(name, generation);
    });
  }
  for (const auto& provider : waiting_secrets) {
    provider->onWarm([this, alive = alive_, name, generation] {
      if (*alive) onWarm(name, generation);
    });
  }
}

void ListenerManager::onWarm(const std::string& name, uint64_t generation) {
  auto it = warming_.find(name);
  // Replaced or removed while it warmed: that version is gone.
  if (it == warming_.end() || it->second.generation != generation) return;
  if (--it->second.waiting > 0) return;
  Pending p = std::move(it->second.pending);
  warming_.erase(it);
  // Its predecessor may have gone meanwhile (then its sockets went too).
  p.replaces = find(name) != nullptr;
  activate(p);
  updateGauges();
  maybeInitialLoadDone();
}

bool ListenerManager::activate(Pending& p) {
  const std::string name = p.entry.config->name;
  auto cfg = p.entry.config;
  // Its own new sockets were only bound while it warmed. Borrowed ones (an
  // in-place update, or the predecessor's at the same address) listen
  // already: the predecessor kept serving on them.
  if (!listenAll(*cfg, p.fds)) {
    stats_.listener_create_failure.inc();
    spdlog::error("lds: listener '{}' dropped{}", name,
                  p.replaces ? "; its previous version keeps serving" : "");
    return false;
  }
  auto fds = std::make_shared<std::vector<network::SocketFd>>(std::move(p.fds));
  const Entry* previous = p.replaces ? find(name) : nullptr;
  if (previous != nullptr && fds->empty() && filterChainOnlyChange(previous->proto, p.entry.proto)) {
    const uint64_t tag = next_drain_tag_++;
    onEveryWorker([cfg, tag](Worker& w) { w.updateListenerInPlace(cfg, tag); }, nullptr);
    scheduleDrainEnd(tag);
    *find(name) = std::move(p.entry);
    stats_.listener_modified.inc();
    stats_.listener_in_place_updated.inc();
    spdlog::info("lds: updated filter chains of listener '{}' in place; connections of changed chains drain for {}s",
                 name, drain_time_.count());
  } else if (p.replaces) {
    const uint64_t tag = next_drain_tag_++;
    onEveryWorker(
        [cfg, fds, tag](Worker& w) {
          w.replaceListener(cfg, fds->empty() ? network::SocketFd() : std::move((*fds)[w.index()]), tag);
        },
        nullptr);
    scheduleDrainEnd(tag);
    *find(name) = std::move(p.entry);
    stats_.listener_modified.inc();
    spdlog::info("lds: updated listener '{}' on {}; the previous version drains for {}s", name,
                 cfg->address.asString(), drain_time_.count());
  } else {
    if (bind_) onEveryWorker([cfg, fds](Worker& w) { w.addListener(cfg, std::move((*fds)[w.index()])); }, nullptr);
    spdlog::info("lds: added listener '{}' on {}", name, p.entry.bound_address.asString());
    entries_.push_back(std::move(p.entry));
    stats_.listener_added.inc();
  }
  stats_.listener_create_success.inc();
  return true;
}

void ListenerManager::addDuringInit(Pending p) {
  const std::string name = p.entry.config->name;
  Entry* existing = p.replaces ? find(name) : nullptr;
  auto held = findHeld(name);
  // A new version of a listener that never started replaces it outright,
  // taking its sockets when it binds the same address.
  if (held != held_.end() && p.fds.empty()) p.fds = std::move(held->fds);
  if (held != held_.end()) {
    *held = Held{p.entry.config, std::move(p.fds)};
  } else {
    held_.push_back(Held{p.entry.config, std::move(p.fds)});
  }
  waitDuringInit(name, p.rds, p.secrets);
  if (existing != nullptr) {
    *existing = std::move(p.entry);
    stats_.listener_modified.inc();
  } else {
    if (p.entry.added_via_api) {
      spdlog::info("lds: added listener '{}' on {}; it starts once the server initialized", name,
                   p.entry.bound_address.asString());
      stats_.listener_added.inc();
    }
    entries_.push_back(std::move(p.entry));
  }
  stats_.listener_create_success.inc();
  updateGauges();
}

void ListenerManager::waitDuringInit(const std::string& name,
                                     const std::vector<std::shared_ptr<router::RouteConfigProvider>>& rds,
                                     const std::vector<std::shared_ptr<tls::SecretProvider>>& secrets) {
  // A replaced version's wait ends with it, as Envoy readies the init
  // target of a listener destroyed before its workers started.
  init_waiting_.erase(name);
  std::vector<std::function<void(std::function<void()>)>> cold;
  for (const auto& provider : rds) {
    if (!provider->warm()) cold.push_back([provider](std::function<void()> cb) { provider->onWarm(std::move(cb)); });
  }
  for (const auto& provider : secrets) {
    if (!provider->warm()) cold.push_back([provider](std::function<void()> cb) { provider->onWarm(std::move(cb)); });
  }
  if (cold.empty()) return;
  const uint64_t generation = next_warming_generation_++;
  init_waiting_[name] = InitWait{generation, cold.size()};
  spdlog::info("listener '{}': the server initializes until {} route table(s)/secret(s) arrive", name, cold.size());
  for (auto& on_warm : cold) {
    on_warm([this, alive = alive_, name, generation] {
      if (*alive) onInitWarm(name, generation);
    });
  }
}

void ListenerManager::onInitWarm(const std::string& name, uint64_t generation) {
  auto it = init_waiting_.find(name);
  if (it == init_waiting_.end() || it->second.generation != generation) return;
  if (--it->second.waiting > 0) return;
  init_waiting_.erase(it);
  maybeInitialLoadDone();
}

std::vector<ListenerManager::Held>::iterator ListenerManager::findHeld(const std::string& name) {
  return std::find_if(held_.begin(), held_.end(), [&name](const Held& h) { return h.config->name == name; });
}

std::vector<const ListenerManager::Entry*> ListenerManager::warmingListeners() const {
  std::vector<const Entry*> out;
  for (const auto& [name, w] : warming_) out.push_back(&w.pending.entry);
  return out;
}

void ListenerManager::onEveryWorker(std::function<void(Worker&)> fn, std::function<void()> done) {
  if (!bind_ || workers_.empty()) {
    if (done) done();
    return;
  }
  auto remaining = std::make_shared<std::atomic<size_t>>(workers_.size());
  auto shared_fn = std::make_shared<std::function<void(Worker&)>>(std::move(fn));
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  for (auto& w : workers_) {
    Worker* worker = w.get();
    // Each worker's queue runs in order, so an update posted after another
    // applies after it.
    worker->dispatcher().post([this, worker, remaining, shared_fn, shared_done] {
      if (*shared_fn) (*shared_fn)(*worker);
      if (remaining->fetch_sub(1) == 1 && *shared_done) main_.post([shared_done] { (*shared_done)(); });
    });
  }
}

void ListenerManager::scheduleDrainEnd(uint64_t drain_tag) {
  stats_.total_listeners_draining.inc();
  auto timer = main_.createTimer([this, drain_tag] {
    onEveryWorker([drain_tag](Worker& w) { w.removeDrainingListener(drain_tag); }, nullptr);
    stats_.total_listeners_draining.dec();
    // Not from inside the timer's own callback.
    main_.post([this, drain_tag, alive = alive_] {
      if (*alive) drain_timers_.erase(drain_tag);
    });
  });
  timer->enable(std::chrono::duration_cast<std::chrono::milliseconds>(drain_time_));
  drain_timers_[drain_tag] = std::move(timer);
}

void ListenerManager::stopListeners() {
  warming_.clear();
  // Never handed to a worker: their sockets just close.
  held_.clear();
  init_waiting_.clear();
  stats_.total_listeners_draining.set(stats_.total_listeners_draining.value() + entries_.size());
  stats_.total_listeners_active.set(0);
}

void ListenerManager::updateGauges() {
  stats_.total_listeners_active.set(entries_.size());
  stats_.total_listeners_warming.set(warming_.size());
}

void ListenerManager::markInitialLoadDone() {
  lds_initial_done_ = true;
  maybeInitialLoadDone();
}

void ListenerManager::startHeldListeners() {
  size_t started = 0;
  for (auto& held : held_) {
    // As Envoy's startWorkers(): a listener that cannot listen is dropped
    // and the others start.
    if (!listenAll(*held.config, held.fds)) {
      stats_.listener_create_failure.inc();
      const std::string& name = held.config->name;
      entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                    [&name](const Entry& e) { return e.config->name == name; }),
                     entries_.end());
      continue;
    }
    ++started;
    for (size_t w = 0; w < workers_.size() && w < held.fds.size(); ++w) {
      auto fd = std::make_shared<network::SocketFd>(std::move(held.fds[w]));
      workers_[w]->dispatcher().post(
          [worker = workers_[w].get(), cfg = held.config, fd] { worker->addListener(cfg, std::move(*fd)); });
    }
  }
  if (started > 0 && bind_) spdlog::info("{} listener(s) accept connections", started);
  held_.clear();
  updateGauges();
}

void ListenerManager::maybeInitialLoadDone() {
  // Envoy's server initializes once the first LDS listeners and the static
  // listeners warmed; only then do listeners accept, all together.
  if (initial_load_done_ || !lds_initial_done_ || !warming_.empty() || !init_waiting_.empty()) return;
  initial_load_done_ = true;
  startHeldListeners();
  if (on_initial_load_) {
    auto cb = std::move(on_initial_load_);
    cb();
  }
}

}  // namespace courier::server
