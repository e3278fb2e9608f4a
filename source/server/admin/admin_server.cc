#include "source/server/admin/admin_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <re2/re2.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "source/common/stats/stats_render.h"

namespace courier::server {

namespace {

const char* reasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

const char* methodName(evhttp_cmd_type cmd) {
  switch (cmd) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    case EVHTTP_REQ_TRACE:
      return "TRACE";
    case EVHTTP_REQ_CONNECT:
      return "CONNECT";
    case EVHTTP_REQ_PATCH:
      return "PATCH";
  }
  return "UNKNOWN";
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

AdminResponse text(int code, std::string body) {
  AdminResponse r;
  r.code = code;
  r.body = std::move(body);
  return r;
}

// The /stats and /stats/prometheus query, parsed with Envoy's StatsParams
// rules and error texts.
struct StatsQuery {
  stats::RenderParams render;
  enum class Format { Text, Json, Prometheus } format = Format::Text;
};

bool parseStatsQuery(const AdminRequest& request, StatsQuery& out, AdminResponse& error) {
  out.render.used_only = request.has("usedonly");
  if (request.has("filter")) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<re2::RE2>(request.get("filter"), options);
    if (!re->ok()) {
      error = text(400, "Invalid re2 regex");
      return false;
    }
    out.render.filter = std::move(re);
  }

  if (request.has("histogram_buckets")) {
    const std::string mode = request.get("histogram_buckets");
    if (mode == "cumulative") {
      out.render.histogram_buckets = stats::HistogramBuckets::Cumulative;
    } else if (mode == "disjoint") {
      out.render.histogram_buckets = stats::HistogramBuckets::Disjoint;
    } else if (mode == "none" || mode == "summary") {
      out.render.histogram_buckets = stats::HistogramBuckets::None;
    } else {
      error = text(400, "usage: /stats?histogram_buckets=(cumulative|disjoint|none)\n");
      return false;
    }
  }

  if (request.has("type")) {
    const std::string type = request.get("type");
    if (type == "All") {
      out.render.type = stats::StatsType::All;
    } else if (type == "Counters") {
      out.render.type = stats::StatsType::Counters;
    } else if (type == "Gauges") {
      out.render.type = stats::StatsType::Gauges;
    } else if (type == "Histograms") {
      out.render.type = stats::StatsType::Histograms;
    } else if (type == "TextReadouts") {
      out.render.type = stats::StatsType::TextReadouts;
    } else {
      error = text(400, "invalid &type= param");
      return false;
    }
  }

  if (request.has("format")) {
    const std::string format = request.get("format");
    if (format == "prometheus") {
      out.format = StatsQuery::Format::Prometheus;
    } else if (format == "json") {
      out.format = StatsQuery::Format::Json;
    } else if (format == "text") {
      out.format = StatsQuery::Format::Text;
    } else if (format == "html") {
      // Courier has no admin HTML; answer as an Envoy built without it.
      error = text(400, "HTML output was disabled by building with --define=admin_html=disabled");
      return false;
    } else if (format == "active-html") {
      error = text(400,
                   "Active HTML output was disabled by building with "
                   "--define=admin_html=disabled");
      return false;
    } else {
      error = text(400, "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n");
      return false;
    }
  }
  return true;
}

}  // namespace

std::string AdminRequest::get(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

AdminServer::AdminServer(event_base* base, stats::Store& store)
    : store_(store), http_(evhttp_new(base)) {
  // Every method reaches our dispatcher, so 405/404 answers are Envoy's, not evhttp's.
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                        EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_, &AdminServer::onRequest, this);
  evhttp_set_max_headers_size(http_, 64 * 1024);
  evhttp_set_max_body_size(http_, 1024 * 1024);
  evhttp_set_timeout(http_, 60);

  const AdminParam usedonly{AdminParam::Type::Boolean,
                            "usedonly",
                            "Only include stats that have been written by system since restart",
                            {}};
  const AdminParam filter{AdminParam::Type::String,
                          "filter",
                          "Regular expression (Google re2) for filtering stats",
                          {}};

  addHandler("/help", "print out list of admin commands", false,
             [this](const AdminRequest&) { return text(200, helpText()); });
  addHandler("/stats", "print server stats", false,
             [this](const AdminRequest& r) { return statsHandler(r); },
             {usedonly,
              filter,
              {AdminParam::Type::Enum, "format", "Format to use", {"text", "json", "prometheus"}},
              {AdminParam::Type::Enum,
               "type",
               "Stat types to include.",
               {"All", "Counters", "Histograms", "Gauges", "TextReadouts"}},
              {AdminParam::Type::Enum,
               "histogram_buckets",
               "Histogram bucket display mode",
               {"cumulative", "disjoint", "none"}}});
  addHandler("/stats/prometheus", "print server stats in prometheus format", false,
             [this](const AdminRequest& r) { return prometheusHandler(r); }, {usedonly, filter});
  addHandler("/reset_counters", "reset all counters to zero", true, [this](const AdminRequest&) {
    store_.resetCounters();
    return text(200, "OK\n");
  });
}

AdminServer::~AdminServer() { evhttp_free(http_); }

absl::Status AdminServer::listen(const std::string& address, uint16_t port) {
  if (listening_) return absl::FailedPreconditionError("admin: already listening");
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http_, address.c_str(), port);
  if (bound == nullptr) {
    return absl::UnavailableError("admin: cannot listen on " + address + ":" +
                                  std::to_string(port) + ": " + std::strerror(errno));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return absl::InternalError(std::string("admin: getsockname: ") + std::strerror(errno));
  }
  port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                   : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  listening_ = true;
  return absl::OkStatus();
}

bool AdminServer::addHandler(std::string path, std::string help, bool mutates, AdminHandler handler,
                             std::vector<AdminParam> params) {
  // Envoy rules out characters that could inject into its HTML or make no
  // sense in a path.
  if (path.size() < 2 || path[0] != '/' || path.find_first_of("&\"'<>?:") != std::string::npos) {
    return false;
  }
  for (const Entry& e : handlers_) {
    if (e.path == path) return false;
  }
  handlers_.push_back(
      {std::move(path), std::move(help), mutates, std::move(handler), std::move(params)});
  return true;
}

std::string AdminServer::helpText() const {
  std::vector<const Entry*> sorted;
  for (const Entry& e : handlers_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const Entry* a, const Entry* b) { return a->path < b->path; });
  std::string out = "admin commands are:\n";
  for (const Entry* e : sorted) {
    out += "  " + e->path + (e->mutates ? " (POST)" : "") + ": " + e->help + "\n";
    for (const AdminParam& p : e->params) {
      out += "      " + p.id + ": " + p.help;
      if (p.type == AdminParam::Type::Enum) {
        out += "; One of (";
        for (size_t i = 0; i < p.choices.size(); ++i) {
          if (i != 0) out += ", ";
          out += p.choices[i];
        }
        out += ")";
      }
      out += "\n";
    }
  }
  return out;
}

std::string AdminServer::percentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      const int hi = hexValue(in[i + 1]);
      const int lo = hexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

AdminQueryParams AdminServer::parseQuery(std::string_view query) {
  AdminQueryParams params;
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos) {
        params.emplace(percentDecode(pair), "");
      } else {
        params.emplace(percentDecode(pair.substr(0, eq)), percentDecode(pair.substr(eq + 1)));
      }
    }
    start = end + 1;
  }
  return params;
}

AdminResponse AdminServer::handle(std::string_view method, std::string_view path_and_query,
                                  const AdminQueryParams& extra_params) const {
  AdminRequest request;
  request.method = std::string(method);
  const size_t q = path_and_query.find('?');
  request.path = std::string(path_and_query.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = path_and_query.substr(q + 1);
    query = query.substr(0, query.find('#'));
    request.query = parseQuery(query);
  }
  request.query.insert(extra_params.begin(), extra_params.end());

  for (const Entry& e : handlers_) {
    if (e.path != request.path) continue;
    if (e.mutates && request.method != "POST") {
      return text(405, "Method " + request.method + " not allowed, POST required.");
    }
    return e.handler(request);
  }
  // As Envoy: "invalid path. " then the /help text.
  return text(404, "invalid path. " + helpText());
}

AdminResponse AdminServer::statsHandler(const AdminRequest& request) const {
  StatsQuery query;
  AdminResponse error;
  if (!parseStatsQuery(request, query, error)) return error;
  if (flush_on_admin_) store_.mergeHistograms();
  switch (query.format) {
    case StatsQuery::Format::Prometheus:
      return text(200, stats::renderPrometheus(store_, query.render));
    case StatsQuery::Format::Json: {
      AdminResponse r = text(200, stats::renderJson(store_, query.render));
      r.content_type = kJsonContentType;
      return r;
    }
    case StatsQuery::Format::Text:
      break;
  }
  return text(200, stats::renderText(store_, query.render));
}

AdminResponse AdminServer::prometheusHandler(const AdminRequest& request) const {
  StatsQuery query;
  AdminResponse error;
  if (!parseStatsQuery(request, query, error)) return error;
  if (flush_on_admin_) store_.mergeHistograms();
  return text(200, stats::renderPrometheus(store_, query.render));
}

void AdminServer::onRequest(evhttp_request* req, void* self) {
  static_cast<AdminServer*>(self)->serve(req);
}

void AdminServer::serve(evhttp_request* req) {
  const std::string method = methodName(evhttp_request_get_command(req));
  std::string_view target = evhttp_request_get_uri(req);
  // Absolute-form targets ("http://host/stats") are reduced to the path.
  const size_t scheme = target.find("://");
  if (scheme != std::string_view::npos && scheme < target.find('/')) {
    const size_t path_start = target.find('/', scheme + 3);
    target =
        path_start == std::string_view::npos ? std::string_view("/") : target.substr(path_start);
  }

  // Envoy's admin also takes POST parameters from a form-encoded body.
  AdminQueryParams body_params;
  const char* content_type =
      evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
  if (method == "POST" && content_type != nullptr &&
      std::string_view(content_type).rfind("application/x-www-form-urlencoded", 0) == 0) {
    evbuffer* in = evhttp_request_get_input_buffer(req);
    const size_t len = evbuffer_get_length(in);
    if (len > 0) {
      const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
      body_params = parseQuery(std::string_view(data, len));
    }
  }

  const AdminResponse response = handle(method, target, body_params);

  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", response.content_type.c_str());
  // Envoy's admin fallback headers.
  evhttp_add_header(headers, "Cache-Control", "no-cache, max-age=0");
  evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
  evbuffer* body = evbuffer_new();
  evbuffer_add(body, response.body.data(), response.body.size());
  evhttp_send_reply(req, response.code, reasonPhrase(response.code), body);
  evbuffer_free(body);
}

}  // namespace courier::server
