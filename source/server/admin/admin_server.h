// The admin HTTP endpoint (bootstrap `admin.address`), served by libevent's
// evhttp on the main thread's loop: Envoy's paths, help text, POST-only
// mutating handlers, 404-with-help, and the /stats family over a stats::Store.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "source/common/stats/store.h"

struct event_base;
struct evhttp;
struct evhttp_request;

namespace courier::server {

// Decoded query parameters (and, for POST, form-encoded body parameters).
// "?usedonly" gives {"usedonly", ""}.
using AdminQueryParams = std::multimap<std::string, std::string>;

struct AdminRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query, e.g. "/stats"
  AdminQueryParams query;

  bool has(const std::string& key) const { return query.count(key) != 0; }
  // First value of `key`, or `fallback` when absent.
  std::string get(const std::string& key, const std::string& fallback = "") const;
};

struct AdminResponse {
  int code = 200;
  std::string content_type = "text/plain; charset=UTF-8";
  std::string body;
};

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

// One query parameter line under a path in /help (Envoy's ParamDescriptor).
struct AdminParam {
  enum class Type { Boolean, String, Enum };
  Type type;
  std::string id;
  std::string help;
  std::vector<std::string> choices;  // Enum only
};

class AdminServer {
 public:
  static constexpr const char* kTextContentType = "text/plain; charset=UTF-8";
  static constexpr const char* kJsonContentType = "application/json";

  // `base` is the main thread's loop, owned by the caller, and must outlive
  // this object; requests are served (and handlers run) on that loop's thread.
  // Registers /help, /stats, /stats/prometheus and /reset_counters.
  AdminServer(event_base* base, stats::Store& store);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens (bootstrap admin.address.socket_address); port 0 picks
  // an ephemeral port, see port(). The access log fields are ignored for now.
  absl::Status listen(const std::string& address, uint16_t port);
  uint16_t port() const { return port_; }

  // Adds an exact-path handler. `mutates` handlers answer 405 unless the
  // method is POST, as Envoy's admin. False when the path is taken or is not
  // a valid admin path (must start with '/', none of &"'<>?:).
  bool addHandler(std::string path, std::string help, bool mutates, AdminHandler handler,
                  std::vector<AdminParam> params = {});

  // Envoy's stats_config.flush_on_admin: merge histograms before rendering
  // /stats. Off by default, as Envoy: the server's stats flush timer merges.
  void setFlushOnAdmin(bool flush) { flush_on_admin_ = flush; }

  // Runs a request in-process, without HTTP (Envoy's Admin::request); used by
  // the HTTP callback and handy for tests and the `--admin-*` style tooling.
  AdminResponse handle(std::string_view method, std::string_view path_and_query,
                       const AdminQueryParams& extra_params = {}) const;

  // "admin commands are:\n  /help: ...\n" as Envoy's /help.
  std::string helpText() const;

  static AdminQueryParams parseQuery(std::string_view query);
  // Envoy's PercentEncoding::decode: %XX is decoded, '+' stays '+'.
  static std::string percentDecode(std::string_view in);

 private:
  struct Entry {
    std::string path;
    std::string help;
    bool mutates;
    AdminHandler handler;
    std::vector<AdminParam> params;
  };

  static void onRequest(evhttp_request* req, void* self);
  void serve(evhttp_request* req);

  AdminResponse statsHandler(const AdminRequest& request) const;
  AdminResponse prometheusHandler(const AdminRequest& request) const;

  stats::Store& store_;
  evhttp* http_;
  uint16_t port_ = 0;
  bool listening_ = false;
  bool flush_on_admin_ = false;
  std::vector<Entry> handlers_;
};

}  // namespace courier::server
