#include "source/common/access_log/formatter.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace courier::access_log {
namespace {

using Op = Formatter::Op;
using Piece = Formatter::Piece;
using TimeSegment = Formatter::TimeSegment;
using JsonField = Formatter::JsonField;
using stream_info::StreamInfo;

struct OpSpec {
  std::string_view name;
  Op op;
  bool takes_args;
  bool needs_args;
};

constexpr OpSpec kOps[] = {
    {"START_TIME", Op::kStartTime, true, false},
    {"REQ", Op::kReq, true, true},
    {"RESP", Op::kResp, true, true},
    {"TRAILER", Op::kTrailer, true, true},
    {"RESPONSE_CODE", Op::kResponseCode, false, false},
    {"RESPONSE_CODE_DETAILS", Op::kResponseCodeDetails, false, false},
    {"RESPONSE_FLAGS", Op::kResponseFlags, false, false},
    {"BYTES_RECEIVED", Op::kBytesReceived, false, false},
    {"BYTES_SENT", Op::kBytesSent, false, false},
    {"DURATION", Op::kDuration, false, false},
    {"REQUEST_DURATION", Op::kRequestDuration, false, false},
    {"RESPONSE_DURATION", Op::kResponseDuration, false, false},
    {"RESPONSE_TX_DURATION", Op::kResponseTxDuration, false, false},
    {"UPSTREAM_HOST", Op::kUpstreamHost, false, false},
    {"UPSTREAM_CLUSTER", Op::kUpstreamCluster, false, false},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON", Op::kUpstreamTransportFailureReason, false, false},
    {"DOWNSTREAM_REMOTE_ADDRESS", Op::kDownstreamRemoteAddress, false, false},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Op::kDownstreamRemoteAddressWithoutPort, false, false},
    {"DOWNSTREAM_LOCAL_ADDRESS", Op::kDownstreamLocalAddress, false, false},
    {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", Op::kDownstreamLocalAddressWithoutPort, false, false},
    {"PROTOCOL", Op::kProtocol, false, false},
    {"ROUTE_NAME", Op::kRouteName, false, false},
    {"HOSTNAME", Op::kHostname, false, false},
    {"REQUESTED_SERVER_NAME", Op::kRequestedServerName, false, false},
};

bool isNumeric(Op op) {
  switch (op) {
    case Op::kResponseCode:
    case Op::kBytesReceived:
    case Op::kBytesSent:
    case Op::kDuration:
    case Op::kRequestDuration:
    case Op::kResponseDuration:
    case Op::kResponseTxDuration:
      return true;
    default:
      return false;
  }
}

std::string hostName() {
  char buf[256];
  if (gethostname(buf, sizeof(buf)) != 0) return "-";
  buf[sizeof(buf) - 1] = '\0';
  return buf;
}

// Splits a START_TIME strftime format into strftime chunks and the
// specifiers strftime does not know (%f, %Nf, %s, %ENS).
std::vector<TimeSegment> compileTimeFormat(std::string_view fmt) {
  std::vector<TimeSegment> segs;
  auto addStrftime = [&](std::string_view s) {
    if (s.empty()) return;
    if (segs.empty() || segs.back().kind != TimeSegment::Kind::kStrftime) segs.emplace_back();
    segs.back().strftime.append(s.data(), s.size());
  };
  auto addFraction = [&](int digits) {
    TimeSegment seg;
    seg.kind = TimeSegment::Kind::kFraction;
    seg.digits = digits;
    segs.push_back(seg);
  };
  size_t i = 0;
  while (i < fmt.size()) {
    if (fmt[i] != '%' || i + 1 >= fmt.size()) {
      addStrftime(fmt.substr(i, 1));
      ++i;
      continue;
    }
    char c = fmt[i + 1];
    if (c == 'f') {
      addFraction(9);
      i += 2;
    } else if (c >= '1' && c <= '9' && i + 2 < fmt.size() && fmt[i + 2] == 'f') {
      addFraction(c - '0');
      i += 3;
    } else if (c == 's') {
      TimeSegment seg;
      seg.kind = TimeSegment::Kind::kEpochSeconds;
      segs.push_back(seg);
      i += 2;
    } else if (c == 'E' && i + 3 < fmt.size() && fmt[i + 2] >= '1' && fmt[i + 2] <= '9' && fmt[i + 3] == 'S') {
      addStrftime("%S.");
      addFraction(fmt[i + 2] - '0');
      i += 4;
    } else {
      addStrftime(fmt.substr(i, 2));
      i += 2;
    }
  }
  return segs;
}

void appendStartTime(const Piece& p, std::chrono::system_clock::time_point t, std::string& out) {
  const int64_t total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  int64_t secs = total_ns / 1000000000;
  int64_t nanos = total_ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    --secs;
  }
  time_t tt = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[256];
  if (p.time.empty()) {
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    out.append(buf, n);
    int ms = static_cast<int>(nanos / 1000000);
    out += '.';
    out += static_cast<char>('0' + ms / 100);
    out += static_cast<char>('0' + (ms / 10) % 10);
    out += static_cast<char>('0' + ms % 10);
    out += 'Z';
    return;
  }
  for (const TimeSegment& seg : p.time) {
    switch (seg.kind) {
      case TimeSegment::Kind::kStrftime: {
        size_t n = strftime(buf, sizeof(buf), seg.strftime.c_str(), &tm);
        out.append(buf, n);
        break;
      }
      case TimeSegment::Kind::kFraction: {
        char digits[9];
        int64_t v = nanos;
        for (int d = 8; d >= 0; --d) {
          digits[d] = static_cast<char>('0' + v % 10);
          v /= 10;
        }
        out.append(digits, seg.digits);
        break;
      }
      case TimeSegment::Kind::kEpochSeconds:
        absl::StrAppend(&out, secs);
        break;
    }
  }
}

bool appendHeader(const http::HeaderMap* map, const Piece& p, std::string& out) {
  if (map == nullptr) return false;
  const http::HeaderEntry* e = map->get(p.header);
  if (e == nullptr && !p.alt_header.empty()) e = map->get(p.alt_header);
  if (e == nullptr) return false;
  std::string_view v = e->value();
  out.append(v.data(), v.size());
  return true;
}

bool appendString(const std::string& s, std::string& out) {
  if (s.empty()) return false;
  out += s;
  return true;
}

bool appendMillis(const std::optional<std::chrono::nanoseconds>& d, std::string& out) {
  if (!d.has_value()) return false;
  absl::StrAppend(&out, std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
  return true;
}

bool appendAddress(const network::Address& a, bool with_port, std::string& out) {
  if (!a.valid()) return false;
  out += with_port ? a.asString() : a.ip();
  return true;
}

// Appends the operator's value; false (and nothing appended) when the value
// is missing, so the caller decides between "-", null and omission.
bool appendValue(const Piece& p, const StreamInfo& info, std::string& out) {
  switch (p.op) {
    case Op::kLiteral:
      out += p.text;
      return true;
    case Op::kStartTime:
      appendStartTime(p, info.start_time, out);
      return true;
    case Op::kReq:
      return appendHeader(info.request_headers, p, out);
    case Op::kResp:
      return appendHeader(info.response_headers, p, out);
    case Op::kTrailer:
      return appendHeader(info.response_trailers, p, out);
    case Op::kResponseCode:
      absl::StrAppend(&out, info.response_code.value_or(0));
      return true;
    case Op::kResponseCodeDetails:
      return appendString(info.response_code_details, out);
    case Op::kResponseFlags:
      if (info.response_flags == 0) return false;
      out += stream_info::responseFlagsToString(info.response_flags);
      return true;
    case Op::kBytesReceived:
      absl::StrAppend(&out, info.bytes_received);
      return true;
    case Op::kBytesSent:
      absl::StrAppend(&out, info.bytes_sent);
      return true;
    case Op::kDuration:
      return appendMillis(info.requestComplete(), out);
    case Op::kRequestDuration:
      return appendMillis(info.last_downstream_rx_byte_received, out);
    case Op::kResponseDuration:
      // Until the upstream's first byte; "-" for a local reply.
      return appendMillis(info.first_upstream_rx_byte_received, out);
    case Op::kResponseTxDuration:
      if (!info.first_upstream_rx_byte_received || !info.last_downstream_tx_byte_sent) return false;
      return appendMillis(*info.last_downstream_tx_byte_sent - *info.first_upstream_rx_byte_received, out);
    case Op::kUpstreamHost:
      if (!info.upstream_host.has_value()) return false;
      return appendAddress(*info.upstream_host, true, out);
    case Op::kUpstreamCluster:
      return appendString(info.upstream_cluster, out);
    case Op::kUpstreamTransportFailureReason:
      return appendString(info.upstream_transport_failure_reason, out);
    case Op::kDownstreamRemoteAddress:
      return appendAddress(info.downstream_remote_address, true, out);
    case Op::kDownstreamRemoteAddressWithoutPort:
      return appendAddress(info.downstream_remote_address, false, out);
    case Op::kDownstreamLocalAddress:
      return appendAddress(info.downstream_local_address, true, out);
    case Op::kDownstreamLocalAddressWithoutPort:
      return appendAddress(info.downstream_local_address, false, out);
    case Op::kProtocol:
      return appendString(info.protocol, out);
    case Op::kRouteName:
      return appendString(info.route_name, out);
    case Op::kHostname:
      out += p.text;
      return true;
    case Op::kRequestedServerName:
      // StreamInfo does not carry SNI yet.
      return false;
  }
  return false;
}

bool appendTruncated(const Piece& p, const StreamInfo& info, std::string& out) {
  const size_t start = out.size();
  if (!appendValue(p, info, out)) return false;
  if (p.max_length != std::string::npos && out.size() - start > p.max_length) out.resize(start + p.max_length);
  return true;
}

void appendPieces(const std::vector<Piece>& pieces, const StreamInfo& info, bool omit_empty, std::string& out) {
  for (const Piece& p : pieces) {
    if (!appendTruncated(p, info, out) && !omit_empty) out += '-';
  }
}

bool needsEscape(char c) { return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20; }

void appendEscaped(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
}

// JSON-escapes out[start..] in place; the common case (nothing to escape)
// only scans.
void escapeTail(std::string& out, size_t start) {
  auto it = std::find_if(out.begin() + start, out.end(), needsEscape);
  if (it == out.end()) return;
  std::string raw = out.substr(start);
  out.resize(start);
  appendEscaped(raw, out);
}

absl::StatusOr<std::vector<Piece>> compile(std::string_view format) {
  std::vector<Piece> pieces;
  auto literal = [&](std::string_view s) {
    if (s.empty()) return;
    if (pieces.empty() || pieces.back().op != Op::kLiteral) pieces.emplace_back();
    pieces.back().text.append(s.data(), s.size());
  };
  size_t i = 0;
  while (i < format.size()) {
    size_t pct = format.find('%', i);
    if (pct == std::string_view::npos) {
      literal(format.substr(i));
      break;
    }
    literal(format.substr(i, pct - i));
    if (pct + 1 < format.size() && format[pct + 1] == '%') {
      literal("%");
      i = pct + 2;
      continue;
    }
    // %NAME[(args)][:max_length]%
    size_t j = pct + 1;
    while (j < format.size() && (absl::ascii_isupper(format[j]) || absl::ascii_isdigit(format[j]) || format[j] == '_')) {
      ++j;
    }
    const std::string name(format.substr(pct + 1, j - pct - 1));
    std::string_view args;
    bool has_args = false;
    if (!name.empty() && j < format.size() && format[j] == '(') {
      size_t close = format.find(')', j);
      if (close == std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated \"(\" in command operator \"%", name, "\" at offset ", pct));
      }
      args = format.substr(j + 1, close - j - 1);
      has_args = true;
      j = close + 1;
    }
    size_t max_length = std::string::npos;
    if (!name.empty() && j < format.size() && format[j] == ':') {
      size_t k = j + 1;
      while (k < format.size() && absl::ascii_isdigit(format[k])) ++k;
      if (k == j + 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid max length in command operator \"%", name, "\" at offset ", pct));
      }
      max_length = std::stoul(std::string(format.substr(j + 1, k - j - 1)));
      j = k;
    }
    if (name.empty() || j >= format.size() || format[j] != '%') {
      size_t end = format.find('%', pct + 1);
      const std::string shown(format.substr(pct, end == std::string_view::npos ? std::string_view::npos : end - pct + 1));
      return absl::InvalidArgumentError(
          absl::StrCat("invalid command operator \"", shown, "\" at offset ", pct,
                       " (expected %NAME%, %NAME(args)% or %NAME(args):length%; a literal % is written %%)"));
    }
    const std::string whole(format.substr(pct, j - pct + 1));
    const OpSpec* spec = nullptr;
    for (const OpSpec& s : kOps) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown command operator \"", whole, "\" at offset ", pct));
    }
    if (has_args && !spec->takes_args) {
      return absl::InvalidArgumentError(
          absl::StrCat("command operator \"", whole, "\" at offset ", pct, " takes no parameters"));
    }
    if (spec->needs_args && args.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("command operator \"", whole, "\" at offset ", pct, " needs a header name: %", name, "(X)%"));
    }
    Piece p;
    p.op = spec->op;
    p.max_length = max_length;
    if (p.op == Op::kReq || p.op == Op::kResp || p.op == Op::kTrailer) {
      size_t q = args.find('?');
      std::string_view main = args.substr(0, q);
      std::string_view alt = q == std::string_view::npos ? std::string_view() : args.substr(q + 1);
      if (main.empty() || (q != std::string_view::npos && alt.empty()) ||
          alt.find('?') != std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("command operator \"", whole, "\" at offset ", pct, " needs X or X?Y as header names"));
      }
      p.header = absl::AsciiStrToLower(std::string(main));
      p.alt_header = absl::AsciiStrToLower(std::string(alt));
    } else if (p.op == Op::kStartTime && !args.empty()) {
      p.time = compileTimeFormat(args);
    } else if (p.op == Op::kHostname) {
      p.text = hostName();
    }
    pieces.push_back(std::move(p));
    i = j + 1;
  }
  return pieces;
}

absl::Status fieldError(const std::string& path, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
}

std::string jsonKey(const std::string& key) {
  std::string out = "\"";
  appendEscaped(key, out);
  out += "\":";
  return out;
}

absl::StatusOr<std::vector<JsonField>> compileStruct(const google::protobuf::Struct& s, const std::string& path) {
  // Sorted keys: protobuf map order is unspecified and log lines should be stable.
  std::map<std::string, const google::protobuf::Value*> sorted;
  for (const auto& [k, v] : s.fields()) sorted.emplace(k, &v);
  std::vector<JsonField> fields;
  for (const auto& [key, value] : sorted) {
    const std::string field_path = path.empty() ? key : absl::StrCat(path, ".", key);
    JsonField f;
    f.key = jsonKey(key);
    switch (value->kind_case()) {
      case google::protobuf::Value::kStringValue: {
        auto pieces = compile(value->string_value());
        if (!pieces.ok()) return fieldError(field_path, pieces.status());
        f.pieces = std::move(*pieces);
        f.kind = f.pieces.size() == 1 && f.pieces[0].op != Op::kLiteral ? JsonField::Kind::kSoleOperator
                                                                          : JsonField::Kind::kFormat;
        break;
      }
      case google::protobuf::Value::kNumberValue: {
        f.kind = JsonField::Kind::kLiteral;
        double d = value->number_value();
        f.literal = (d == static_cast<double>(static_cast<int64_t>(d))) ? absl::StrCat(static_cast<int64_t>(d))
                                                                          : absl::StrCat(d);
        break;
      }
      case google::protobuf::Value::kBoolValue:
        f.kind = JsonField::Kind::kLiteral;
        f.literal = value->bool_value() ? "true" : "false";
        break;
      case google::protobuf::Value::kNullValue:
        f.kind = JsonField::Kind::kLiteral;
        f.literal = "null";
        break;
      case google::protobuf::Value::kStructValue: {
        auto children = compileStruct(value->struct_value(), field_path);
        if (!children.ok()) return children.status();
        f.kind = JsonField::Kind::kObject;
        f.children = std::move(*children);
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(field_path, ": json_format values must be strings, numbers, bools or nested objects"));
    }
    fields.push_back(std::move(f));
  }
  return fields;
}

}  // namespace

absl::StatusOr<Formatter> Formatter::fromText(std::string_view format, bool omit_empty_values) {
  auto pieces = compile(format.empty() ? kDefaultFormat : format);
  if (!pieces.ok()) return pieces.status();
  Formatter f;
  f.pieces_ = std::move(*pieces);
  f.omit_empty_values_ = omit_empty_values;
  f.content_type_ = "text/plain";
  return f;
}

absl::StatusOr<Formatter> Formatter::fromJson(const google::protobuf::Struct& json_format, bool omit_empty_values) {
  auto fields = compileStruct(json_format, "");
  if (!fields.ok()) return fields.status();
  Formatter f;
  f.json_ = true;
  f.fields_ = std::move(*fields);
  f.omit_empty_values_ = omit_empty_values;
  f.content_type_ = "application/json";
  return f;
}

absl::StatusOr<Formatter> Formatter::fromProto(const envoy::config::core::v3::SubstitutionFormatString& config) {
  using Proto = envoy::config::core::v3::SubstitutionFormatString;
  if (config.formatters_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("formatters[0]: formatter extension \"", config.formatters(0).name(), "\" is not supported"));
  }
  absl::StatusOr<Formatter> f = absl::InvalidArgumentError("unset");
  switch (config.format_case()) {
    case Proto::kTextFormat:
      f = fromText(config.text_format(), config.omit_empty_values());
      if (!f.ok()) return fieldError("text_format", f.status());
      break;
    case Proto::kTextFormatSource:
      if (config.text_format_source().specifier_case() != envoy::config::core::v3::DataSource::kInlineString) {
        return absl::InvalidArgumentError("text_format_source: only inline_string is supported");
      }
      f = fromText(config.text_format_source().inline_string(), config.omit_empty_values());
      if (!f.ok()) return fieldError("text_format_source.inline_string", f.status());
      break;
    case Proto::kJsonFormat: {
      auto fields = compileStruct(config.json_format(), "json_format");
      if (!fields.ok()) return fields.status();
      Formatter jf;
      jf.json_ = true;
      jf.fields_ = std::move(*fields);
      jf.omit_empty_values_ = config.omit_empty_values();
      jf.content_type_ = "application/json";
      f = std::move(jf);
      break;
    }
    default:
      f = fromText("", config.omit_empty_values());
      break;
  }
  if (!config.content_type().empty()) f->content_type_ = config.content_type();
  return f;
}

void Formatter::format(const StreamInfo& info, std::string& out) const {
  if (!json_) {
    appendPieces(pieces_, info, omit_empty_values_, out);
    return;
  }
  formatJsonObject(fields_, info, out);
  out += '\n';
}

std::string Formatter::format(const StreamInfo& info) const {
  std::string out;
  format(info, out);
  return out;
}

void Formatter::formatJsonObject(const std::vector<JsonField>& fields, const StreamInfo& info,
                                 std::string& out) const {
  out += '{';
  bool first = true;
  for (const JsonField& f : fields) {
    const size_t rollback = out.size();
    if (!first) out += ',';
    out += f.key;
    bool keep = true;
    switch (f.kind) {
      case JsonField::Kind::kLiteral:
        out += f.literal;
        break;
      case JsonField::Kind::kObject:
        formatJsonObject(f.children, info, out);
        break;
      case JsonField::Kind::kSoleOperator: {
        const Piece& p = f.pieces[0];
        const bool numeric = isNumeric(p.op) && p.max_length == std::string::npos;
        if (!numeric) out += '"';
        const size_t start = out.size();
        if (!appendTruncated(p, info, out)) {
          if (!numeric) out.pop_back();
          if (omit_empty_values_) {
            keep = false;
          } else {
            out += "null";
          }
          break;
        }
        if (!numeric) {
          if (omit_empty_values_ && out.size() == start) {
            keep = false;
            break;
          }
          escapeTail(out, start);
          out += '"';
        }
        break;
      }
      case JsonField::Kind::kFormat: {
        out += '"';
        const size_t start = out.size();
        appendPieces(f.pieces, info, omit_empty_values_, out);
        if (omit_empty_values_ && out.size() == start) {
          keep = false;
          break;
        }
        escapeTail(out, start);
        out += '"';
        break;
      }
    }
    if (keep) {
      first = false;
    } else {
      out.resize(rollback);
    }
  }
  out += '}';
}

}  // namespace courier::access_log
