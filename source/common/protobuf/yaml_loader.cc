#include "source/common/protobuf/yaml_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "yaml-cpp/yaml.h"

namespace courier::protobuf {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

#define COURIER_RETURN_IF_ERROR(expr)  \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

// Proto3 JSON limit for Duration (10,000 years).
constexpr int64_t kMaxDurationSeconds = 315576000000;

enum class WellKnown { None, Duration, Timestamp, FieldMask, Struct, Value, ListValue, Any, Wrapper };

WellKnown wellKnownKind(const Descriptor* d) {
  static const auto* kinds = new std::map<std::string, WellKnown>{
      {"google.protobuf.Duration", WellKnown::Duration},
      {"google.protobuf.Timestamp", WellKnown::Timestamp},
      {"google.protobuf.FieldMask", WellKnown::FieldMask},
      {"google.protobuf.Struct", WellKnown::Struct},
      {"google.protobuf.Value", WellKnown::Value},
      {"google.protobuf.ListValue", WellKnown::ListValue},
      {"google.protobuf.Any", WellKnown::Any},
      {"google.protobuf.DoubleValue", WellKnown::Wrapper},
      {"google.protobuf.FloatValue", WellKnown::Wrapper},
      {"google.protobuf.Int64Value", WellKnown::Wrapper},
      {"google.protobuf.UInt64Value", WellKnown::Wrapper},
      {"google.protobuf.Int32Value", WellKnown::Wrapper},
      {"google.protobuf.UInt32Value", WellKnown::Wrapper},
      {"google.protobuf.BoolValue", WellKnown::Wrapper},
      {"google.protobuf.StringValue", WellKnown::Wrapper},
      {"google.protobuf.BytesValue", WellKnown::Wrapper},
  };
  auto it = kinds->find(d->full_name());
  return it == kinds->end() ? WellKnown::None : it->second;
}

// How a YAML node reads in "expected X, got Y".
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar: {
      std::string text = node.Scalar();
      if (text.size() > 64) text = text.substr(0, 61) + "...";
      return absl::StrCat("\"", absl::CHexEscape(text), "\"");
    }
    default:
      return "null";
  }
}

std::string quoted(absl::string_view s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

std::string childPath(const std::string& path, absl::string_view name) {
  return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
}

size_t editDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t subst = prev[j - 1] + (absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string baseName(const std::string& file) {
  const size_t slash = file.rfind('/');
  return slash == std::string::npos ? file : file.substr(slash + 1);
}

// Proto3 JSON accepts a field by its proto name or its json_name.
const FieldDescriptor* findField(const Descriptor* d, const std::string& key) {
  if (const FieldDescriptor* f = d->FindFieldByName(key)) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == key) return d->field(i);
  }
  return nullptr;
}

std::string unknownFieldMessage(const Descriptor* d, const std::string& key) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (int i = 0; i < d->field_count(); ++i) {
    for (const std::string& candidate : {d->field(i)->name(), d->field(i)->json_name()}) {
      const size_t distance = editDistance(key, candidate);
      if (distance < best_distance) {
        best_distance = distance;
        best = candidate;
      }
    }
  }
  const size_t allowed = std::max<size_t>(1, std::min<size_t>(3, key.size() / 3));
  if (!best.empty() && best_distance <= allowed)
    return absl::StrCat("unknown field (did you mean ", quoted(best), "?)");
  return absl::StrCat("unknown field (not in ", d->full_name(), ")");
}

// A null leaves a field unset, except where null is itself a value.
bool acceptsNull(const FieldDescriptor* f) {
  if (f->is_repeated()) return false;
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    return f->message_type()->full_name() == "google.protobuf.Value";
  }
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
    return f->enum_type()->full_name() == "google.protobuf.NullValue";
  }
  return false;
}

bool isSet(const Message& msg, const FieldDescriptor* f) {
  const Reflection* r = msg.GetReflection();
  return f->is_repeated() ? r->FieldSize(msg, f) > 0 : r->HasField(msg, f);
}

// The types proto3 JSON writes under "value" when packed in an Any.
bool packsUnderValue(const Descriptor* d) { return wellKnownKind(d) != WellKnown::None; }

// Parses proto3 JSON's duration form: optional '-', seconds, up to nine
// fractional digits, then 's'.
bool parseDuration(absl::string_view text, int64_t* seconds, int32_t* nanos) {
  if (text.size() < 2 || text.back() != 's') return false;
  text.remove_suffix(1);
  bool negative = false;
  if (text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  absl::string_view whole = text, fraction;
  if (const size_t dot = text.find('.'); dot != absl::string_view::npos) {
    whole = text.substr(0, dot);
    fraction = text.substr(dot + 1);
    if (fraction.empty() || fraction.size() > 9) return false;
  }
  if (whole.empty() && fraction.empty()) return false;
  auto all_digits = [](absl::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!all_digits(whole) || !all_digits(fraction)) return false;
  uint64_t s = 0;
  if (!whole.empty() && (!absl::SimpleAtoi(whole, &s) || s > static_cast<uint64_t>(kMaxDurationSeconds))) return false;
  int32_t n = 0;
  if (!fraction.empty()) {
    std::string padded(fraction);
    padded.resize(9, '0');
    if (!absl::SimpleAtoi(padded, &n)) return false;
  }
  *seconds = negative ? -static_cast<int64_t>(s) : static_cast<int64_t>(s);
  *nanos = negative ? -n : n;
  return true;
}

std::string camelToSnake(absl::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (absl::ascii_isupper(c)) {
      out.push_back('_');
      out.push_back(absl::ascii_tolower(c));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Walks the YAML tree and the message descriptor side by side.
class Loader {
 public:
  Loader(const LoadOptions& opts, std::string source) : opts_(opts), source_(std::move(source)) {}

  absl::Status loadMessage(const YAML::Node& node, Message& msg, const std::string& path) {
    switch (wellKnownKind(msg.GetDescriptor())) {
      case WellKnown::Duration:
        return loadDuration(node, msg, path);
      case WellKnown::Timestamp:
        return loadTimestamp(node, msg, path);
      case WellKnown::FieldMask:
        return loadFieldMask(node, msg, path);
      case WellKnown::Struct:
        return loadStruct(node, msg, path);
      case WellKnown::Value:
        return loadValue(node, msg, path);
      case WellKnown::ListValue:
        return loadListValue(node, msg, path);
      case WellKnown::Any:
        return loadAny(node, msg, path);
      case WellKnown::Wrapper:
        return storeScalar(node, msg, msg.GetDescriptor()->FindFieldByName("value"), path);
      case WellKnown::None:
        break;
    }
    if (!node.IsMap()) {
      return error(node, path,
                   absl::StrCat("expected a map (", msg.GetDescriptor()->full_name(), "), got ", describe(node)));
    }
    return loadFields(node, msg, path, /*skip_type_key=*/false);
  }

  // Deprecations seen, reported only once the whole input loaded.
  const std::vector<std::pair<std::string, std::string>>& deprecations() const { return deprecations_; }

 private:
  void recordLine(const YAML::Node& node, const std::string& path) {
    if (opts_.field_lines != nullptr && node.Mark().line >= 0) (*opts_.field_lines)[path] = node.Mark().line + 1;
  }

  absl::Status error(const YAML::Node& node, const std::string& path, absl::string_view what) const {
    const int line = node.Mark().line;
    return absl::InvalidArgumentError(absl::StrCat(source_, line >= 0 ? absl::StrCat(":", line + 1) : "", ": ",
                                                   path.empty() ? "" : absl::StrCat(path, ": "), what));
  }

  absl::Status loadFields(const YAML::Node& node, Message& msg, const std::string& path, bool skip_type_key) {
    const Descriptor* d = msg.GetDescriptor();
    std::map<const FieldDescriptor*, std::string> seen;
    std::map<const OneofDescriptor*, std::string> oneofs;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node& key = it->first;
      const YAML::Node& value = it->second;
      // Envoy skips keys tagged !ignore, which hold YAML anchors for reuse.
      if (key.Tag() == "!ignore") continue;
      if (!key.IsScalar()) return error(key, path, absl::StrCat("expected a field name, got ", describe(key)));
      const std::string& name = key.Scalar();
      if (skip_type_key && name == "@type") continue;
      const std::string child = childPath(path, name);
      recordLine(key, child);
      const FieldDescriptor* f = findField(d, name);
      if (f == nullptr) {
        if (opts_.allow_unknown_fields) continue;
        return error(key, child, unknownFieldMessage(d, name));
      }
      if (auto [prev, inserted] = seen.emplace(f, name); !inserted) {
        return error(key, child, absl::StrCat("field is set twice (also as ", quoted(prev->second), ")"));
      }
      if (value.IsNull() && !acceptsNull(f)) continue;
      if (const OneofDescriptor* oneof = f->real_containing_oneof()) {
        if (auto [prev, inserted] = oneofs.emplace(oneof, name); !inserted) {
          return error(
              key, path,
              absl::StrCat(quoted(prev->second), " and ", quoted(name), " are both set, but only one member of oneof ",
                           quoted(oneof->name()), " may be set"));
        }
      }
      COURIER_RETURN_IF_ERROR(loadField(value, msg, f, child));
      if (f->options().deprecated() && isSet(msg, f)) {
        deprecations_.emplace_back(child, absl::StrCat("Using deprecated option '", f->full_name(), "' from file ",
                                                       baseName(f->file()->name()), "."));
      }
    }
    return absl::OkStatus();
  }

  absl::Status loadField(const YAML::Node& value, Message& msg, const FieldDescriptor* f, const std::string& path) {
    if (f->is_map()) return loadMap(value, msg, f, path);
    if (!f->is_repeated()) return loadElement(value, msg, f, path);
    if (!value.IsSequence()) return loadElement(value, msg, f, path);  // Envoy's leniency: a list of one.
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node element = value[i];
      const std::string element_path = absl::StrCat(path, "[", i, "]");
      recordLine(element, element_path);
      if (element.IsNull() &&
          !(f->message_type() != nullptr && f->message_type()->full_name() == "google.protobuf.Value")) {
        return error(element, element_path, "null is not allowed in a list");
      }
      COURIER_RETURN_IF_ERROR(loadElement(element, msg, f, element_path));
    }
    return absl::OkStatus();
  }

  // One value of a singular field, or one more element of a repeated one.
  absl::Status loadElement(const YAML::Node& value, Message& msg, const FieldDescriptor* f, const std::string& path) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return storeScalar(value, msg, f, path);
    const Reflection* r = msg.GetReflection();
    Message* child = f->is_repeated() ? r->AddMessage(&msg, f) : r->MutableMessage(&msg, f);
    return loadMessage(value, *child, path);
  }

  absl::Status loadMap(const YAML::Node& value, Message& msg, const FieldDescriptor* f, const std::string& path) {
    const FieldDescriptor* key_field = f->message_type()->map_key();
    const FieldDescriptor* value_field = f->message_type()->map_value();
    if (!value.IsMap()) return error(value, path, absl::StrCat("expected a map, got ", describe(value)));
    std::set<std::string> keys;
    for (auto it = value.begin(); it != value.end(); ++it) {
      const YAML::Node& key = it->first;
      if (!key.IsScalar()) return error(key, path, absl::StrCat("expected a map key, got ", describe(key)));
      const std::string entry_path = absl::StrCat(path, "[", quoted(key.Scalar()), "]");
      if (!keys.insert(key.Scalar()).second) return error(key, entry_path, "duplicate map key");
      if (it->second.IsNull() && !acceptsNull(value_field))
        return error(it->second, entry_path, "null is not allowed as a map value");
      Message* entry = msg.GetReflection()->AddMessage(&msg, f);
      COURIER_RETURN_IF_ERROR(storeScalar(key, *entry, key_field, entry_path));
      COURIER_RETURN_IF_ERROR(loadElement(it->second, *entry, value_field, entry_path));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status parseInteger(const YAML::Node& node, const std::string& path, const char* type, T* out) {
    const std::string& text = node.Scalar();
    auto out_of_range = [&] { return error(node, path, absl::StrCat(quoted(text), " is out of range for ", type)); };
    if constexpr (std::is_signed_v<T>) {
      int64_t v = 0;
      if (absl::SimpleAtoi(text, &v)) {
        if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) return out_of_range();
        *out = static_cast<T>(v);
        return absl::OkStatus();
      }
    } else {
      uint64_t v = 0;
      if (absl::SimpleAtoi(text, &v)) {
        if (v > std::numeric_limits<T>::max()) return out_of_range();
        *out = static_cast<T>(v);
        return absl::OkStatus();
      }
    }
    // Proto3 JSON also takes integral numbers written as "1e3" or "80.0".
    double d;
    if (absl::SimpleAtod(text, &d) && std::isfinite(d) && d == std::trunc(d)) {
      if (d < static_cast<double>(std::numeric_limits<T>::min()) ||
          d >= static_cast<double>(std::numeric_limits<T>::max()) + 1.0) {
        return out_of_range();
      }
      *out = static_cast<T>(d);
      return absl::OkStatus();
    }
    return error(node, path, absl::StrCat("expected an integer (", type, "), got ", describe(node)));
  }

  absl::Status parseFloating(const YAML::Node& node, const std::string& path, bool is_float, double* out) {
    const char* type = is_float ? "float" : "double";
    const std::string& text = node.Scalar();
    const std::string lower = absl::AsciiStrToLower(text);
    // YAML spells the specials .inf/.nan; proto3 JSON spells them Infinity/NaN.
    if (lower == ".inf" || lower == "+.inf") {
      *out = std::numeric_limits<double>::infinity();
    } else if (lower == "-.inf") {
      *out = -std::numeric_limits<double>::infinity();
    } else if (lower == ".nan") {
      *out = std::numeric_limits<double>::quiet_NaN();
    } else if (!absl::SimpleAtod(text, out)) {
      return error(node, path, absl::StrCat("expected a number (", type, "), got ", describe(node)));
    } else if (std::isinf(*out) && !absl::StrContains(lower, "inf")) {
      return error(node, path, absl::StrCat(quoted(text), " is out of range for ", type));  // SimpleAtod overflowed.
    }
    if (is_float && std::isfinite(*out) && std::fabs(*out) > std::numeric_limits<float>::max()) {
      return error(node, path, absl::StrCat(quoted(text), " is out of range for float"));
    }
    return absl::OkStatus();
  }

  // Converts a scalar node into field `f` of `msg` (Set, or Add if repeated).
  absl::Status storeScalar(const YAML::Node& node, Message& msg, const FieldDescriptor* f, const std::string& path) {
    const Reflection* r = msg.GetReflection();
    const bool add = f->is_repeated();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM && f->enum_type()->full_name() == "google.protobuf.NullValue" &&
        node.IsNull()) {
      add ? r->AddEnumValue(&msg, f, 0) : r->SetEnumValue(&msg, f, 0);
      return absl::OkStatus();
    }
    if (!node.IsScalar()) {
      return error(node, path, absl::StrCat("expected ", expectedScalar(f), ", got ", describe(node)));
    }
    const std::string& text = node.Scalar();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = 0;
        COURIER_RETURN_IF_ERROR(parseInteger(node, path, "int32", &v));
        add ? r->AddInt32(&msg, f, v) : r->SetInt32(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = 0;
        COURIER_RETURN_IF_ERROR(parseInteger(node, path, "int64", &v));
        add ? r->AddInt64(&msg, f, v) : r->SetInt64(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v = 0;
        COURIER_RETURN_IF_ERROR(parseInteger(node, path, "uint32", &v));
        add ? r->AddUInt32(&msg, f, v) : r->SetUInt32(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v = 0;
        COURIER_RETURN_IF_ERROR(parseInteger(node, path, "uint64", &v));
        add ? r->AddUInt64(&msg, f, v) : r->SetUInt64(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double v;
        COURIER_RETURN_IF_ERROR(parseFloating(node, path, /*is_float=*/false, &v));
        add ? r->AddDouble(&msg, f, v) : r->SetDouble(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v;
        COURIER_RETURN_IF_ERROR(parseFloating(node, path, /*is_float=*/true, &v));
        add ? r->AddFloat(&msg, f, static_cast<float>(v)) : r->SetFloat(&msg, f, static_cast<float>(v));
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v;
        if (!YAML::convert<bool>::decode(node, v)) {
          return error(node, path, absl::StrCat("expected a boolean (true or false), got ", describe(node)));
        }
        add ? r->AddBool(&msg, f, v) : r->SetBool(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string v = text;
        if (f->type() == FieldDescriptor::TYPE_BYTES) {
          // Proto3 JSON writes bytes as standard base64; it also reads the URL-safe alphabet.
          if (!absl::Base64Unescape(text, &v) && !absl::WebSafeBase64Unescape(text, &v)) {
            return error(node, path, absl::StrCat("expected base64-encoded bytes, got ", describe(node)));
          }
        }
        add ? r->AddString(&msg, f, std::move(v)) : r->SetString(&msg, f, std::move(v));
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumValueDescriptor* v = findEnumValue(f->enum_type(), text);
        if (v == nullptr) {
          std::vector<std::string> names;
          for (int i = 0; i < f->enum_type()->value_count(); ++i) names.push_back(f->enum_type()->value(i)->name());
          return error(node, path,
                       absl::StrCat("unknown value ", quoted(text), " for enum ", f->enum_type()->full_name(),
                                    " (expected one of ", absl::StrJoin(names, ", "), ")"));
        }
        add ? r->AddEnumValue(&msg, f, v->number()) : r->SetEnumValue(&msg, f, v->number());
        if (v->options().deprecated()) {
          deprecations_.emplace_back(
              path, absl::StrCat("Using deprecated value '", v->name(), "' for enum '", f->enum_type()->full_name(),
                                 "' from file ", baseName(f->file()->name()), "."));
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return error(node, path, "internal error: message field read as a scalar");
    }
    return absl::OkStatus();
  }

  static std::string expectedScalar(const FieldDescriptor* f) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return "an integer (int32)";
      case FieldDescriptor::CPPTYPE_INT64:
        return "an integer (int64)";
      case FieldDescriptor::CPPTYPE_UINT32:
        return "an integer (uint32)";
      case FieldDescriptor::CPPTYPE_UINT64:
        return "an integer (uint64)";
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return "a number (double)";
      case FieldDescriptor::CPPTYPE_FLOAT:
        return "a number (float)";
      case FieldDescriptor::CPPTYPE_BOOL:
        return "a boolean (true or false)";
      case FieldDescriptor::CPPTYPE_STRING:
        return f->type() == FieldDescriptor::TYPE_BYTES ? "base64-encoded bytes" : "a string";
      case FieldDescriptor::CPPTYPE_ENUM:
        return absl::StrCat("a value of enum ", f->enum_type()->full_name());
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return "a scalar";
  }

  // By name, then by name ignoring case, then by number, as Envoy accepts.
  static const EnumValueDescriptor* findEnumValue(const EnumDescriptor* e, const std::string& text) {
    if (const EnumValueDescriptor* v = e->FindValueByName(text)) return v;
    for (int i = 0; i < e->value_count(); ++i) {
      if (absl::EqualsIgnoreCase(e->value(i)->name(), text)) return e->value(i);
    }
    int32_t number;
    if (absl::SimpleAtoi(text, &number)) return e->FindValueByNumber(number);
    return nullptr;
  }

  absl::Status setSecondsNanos(Message& msg, int64_t seconds, int32_t nanos) {
    const Descriptor* d = msg.GetDescriptor();
    msg.GetReflection()->SetInt64(&msg, d->FindFieldByName("seconds"), seconds);
    msg.GetReflection()->SetInt32(&msg, d->FindFieldByName("nanos"), nanos);
    return absl::OkStatus();
  }

  absl::Status loadDuration(const YAML::Node& node, Message& msg, const std::string& path) {
    if (!node.IsScalar()) {
      return error(node, path, absl::StrCat("expected a duration string (e.g. \"1.5s\"), got ", describe(node)));
    }
    int64_t seconds;
    int32_t nanos;
    if (!parseDuration(node.Scalar(), &seconds, &nanos)) {
      return error(node, path, absl::StrCat("invalid duration ", describe(node), " (expected e.g. \"1.5s\")"));
    }
    return setSecondsNanos(msg, seconds, nanos);
  }

  absl::Status loadTimestamp(const YAML::Node& node, Message& msg, const std::string& path) {
    google::protobuf::Timestamp ts;
    if (!node.IsScalar() || !google::protobuf::util::TimeUtil::FromString(node.Scalar(), &ts)) {
      return error(
          node, path,
          absl::StrCat("invalid timestamp ", describe(node), " (expected RFC 3339, e.g. \"2024-05-01T10:00:00Z\")"));
    }
    return setSecondsNanos(msg, ts.seconds(), ts.nanos());
  }

  absl::Status loadFieldMask(const YAML::Node& node, Message& msg, const std::string& path) {
    if (!node.IsScalar()) {
      return error(node, path,
                   absl::StrCat("expected a field mask string (e.g. \"name,lbPolicy\"), got ", describe(node)));
    }
    const FieldDescriptor* paths = msg.GetDescriptor()->FindFieldByName("paths");
    for (absl::string_view p : absl::StrSplit(node.Scalar(), ',', absl::SkipWhitespace())) {
      msg.GetReflection()->AddString(&msg, paths, camelToSnake(absl::StripAsciiWhitespace(p)));
    }
    return absl::OkStatus();
  }

  absl::Status loadStruct(const YAML::Node& node, Message& msg, const std::string& path) {
    if (!node.IsMap()) return error(node, path, absl::StrCat("expected a map, got ", describe(node)));
    const FieldDescriptor* fields = msg.GetDescriptor()->FindFieldByName("fields");
    const FieldDescriptor* key_field = fields->message_type()->map_key();
    const FieldDescriptor* value_field = fields->message_type()->map_value();
    std::set<std::string> keys;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar())
        return error(it->first, path, absl::StrCat("expected a map key, got ", describe(it->first)));
      const std::string& key = it->first.Scalar();
      const std::string child = childPath(path, key);
      if (!keys.insert(key).second) return error(it->first, child, "duplicate map key");
      Message* entry = msg.GetReflection()->AddMessage(&msg, fields);
      entry->GetReflection()->SetString(entry, key_field, key);
      COURIER_RETURN_IF_ERROR(
          loadValue(it->second, *entry->GetReflection()->MutableMessage(entry, value_field), child));
    }
    return absl::OkStatus();
  }

  absl::Status loadListValue(const YAML::Node& node, Message& msg, const std::string& path) {
    if (!node.IsSequence()) return error(node, path, absl::StrCat("expected a list, got ", describe(node)));
    const FieldDescriptor* values = msg.GetDescriptor()->FindFieldByName("values");
    for (size_t i = 0; i < node.size(); ++i) {
      COURIER_RETURN_IF_ERROR(
          loadValue(node[i], *msg.GetReflection()->AddMessage(&msg, values), absl::StrCat(path, "[", i, "]")));
    }
    return absl::OkStatus();
  }

  // Any YAML is a Value. Scalars are typed as Envoy's YAML-to-JSON step types
  // them: quoted means string, else bool, then number, else string.
  absl::Status loadValue(const YAML::Node& node, Message& msg, const std::string& path) {
    const Descriptor* d = msg.GetDescriptor();
    const Reflection* r = msg.GetReflection();
    switch (node.Type()) {
      case YAML::NodeType::Map:
        return loadStruct(node, *r->MutableMessage(&msg, d->FindFieldByName("struct_value")), path);
      case YAML::NodeType::Sequence:
        return loadListValue(node, *r->MutableMessage(&msg, d->FindFieldByName("list_value")), path);
      case YAML::NodeType::Scalar: {
        if (node.Tag() != "!") {
          bool b;
          if (YAML::convert<bool>::decode(node, b)) {
            r->SetBool(&msg, d->FindFieldByName("bool_value"), b);
            return absl::OkStatus();
          }
          double number;
          if (YAML::convert<double>::decode(node, number)) {
            r->SetDouble(&msg, d->FindFieldByName("number_value"), number);
            return absl::OkStatus();
          }
        }
        r->SetString(&msg, d->FindFieldByName("string_value"), node.Scalar());
        return absl::OkStatus();
      }
      default:
        r->SetEnumValue(&msg, d->FindFieldByName("null_value"), 0);
        return absl::OkStatus();
    }
  }

  absl::Status loadAny(const YAML::Node& node, Message& msg, const std::string& path) {
    if (!node.IsMap()) {
      return error(node, path,
                   absl::StrCat("expected a map with \"@type\" (google.protobuf.Any), got ", describe(node)));
    }
    // Optional, not Node: assigning to a YAML::Node writes through it.
    std::optional<YAML::Node> type_node;
    std::optional<YAML::Node> value_node;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      if (it->first.Scalar() == "@type") type_node.emplace(it->second);
      if (it->first.Scalar() == "value") value_node.emplace(it->second);
    }
    if (!type_node) {
      if (node.size() == 0) return absl::OkStatus();
      return error(node, path, "missing \"@type\" (expected e.g. \"@type\": type.googleapis.com/<message name>)");
    }
    if (!type_node->IsScalar()) {
      return error(*type_node, path, absl::StrCat("expected a type URL for \"@type\", got ", describe(*type_node)));
    }
    const std::string url = type_node->Scalar();
    const size_t slash = url.rfind('/');
    if (slash == std::string::npos || slash + 1 == url.size()) {
      return error(
          *type_node, path,
          absl::StrCat("invalid type URL ", quoted(url), " (expected \"type.googleapis.com/<message name>\")"));
    }
    // The Any's own pool and factory, so dynamic messages resolve like generated ones.
    const Descriptor* type = msg.GetDescriptor()->file()->pool()->FindMessageTypeByName(url.substr(slash + 1));
    const Message* prototype = type == nullptr ? nullptr : msg.GetReflection()->GetMessageFactory()->GetPrototype(type);
    if (prototype == nullptr) {
      return error(*type_node, path, absl::StrCat("unknown type ", quoted(url), " (not linked into this binary)"));
    }
    std::unique_ptr<Message> payload(prototype->New());
    if (packsUnderValue(type)) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
        if (key != "@type" && key != "value") {
          return error(it->first, childPath(path, key),
                       absl::StrCat("unknown field (a packed ", type->full_name(), " goes under \"value\")"));
        }
      }
      if (value_node && !value_node->IsNull()) {
        COURIER_RETURN_IF_ERROR(loadMessage(*value_node, *payload, childPath(path, "value")));
      }
    } else {
      COURIER_RETURN_IF_ERROR(loadFields(node, *payload, path, /*skip_type_key=*/true));
    }
    std::string bytes;
    payload->SerializePartialToString(&bytes);
    const Descriptor* d = msg.GetDescriptor();
    msg.GetReflection()->SetString(&msg, d->FindFieldByName("type_url"), url);
    msg.GetReflection()->SetString(&msg, d->FindFieldByName("value"), std::move(bytes));
    return absl::OkStatus();
  }

  const LoadOptions& opts_;
  const std::string source_;
  std::vector<std::pair<std::string, std::string>> deprecations_;
};

std::string jsonQuoted(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

absl::Status yamlError(const std::string& source, const YAML::Exception& e) {
  const std::string line = e.mark.is_null() ? "" : absl::StrCat(":", e.mark.line + 1);
  return absl::InvalidArgumentError(absl::StrCat(source, line, ": invalid YAML: ", e.msg));
}

}  // namespace

absl::Status loadFromYamlString(std::string_view text, Message& out, const LoadOptions& opts) {
  const std::string source = opts.source_name.empty() ? "<yaml>" : opts.source_name;
  // yaml-cpp reports errors by throwing; none of that may leave this unit.
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    out.Clear();
    if (root.IsNull()) return absl::OkStatus();
    Loader loader(opts, source);
    COURIER_RETURN_IF_ERROR(loader.loadMessage(root, out, ""));
    if (opts.on_deprecated) {
      for (const auto& [path, message] : loader.deprecations()) opts.on_deprecated(path, message);
    }
    return absl::OkStatus();
  } catch (const YAML::Exception& e) {
    return yamlError(source, e);
  }
}

absl::Status loadFromFile(const std::string& path, Message& out, const LoadOptions& opts) {
  // A directory opens as a stream that reads as empty: an empty config, silently.
  struct stat info;
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read file: Is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read file: ", std::strerror(errno)));
  std::stringstream contents;
  contents << in.rdbuf();
  std::string text = contents.str();
  if (absl::EndsWith(path, ".json")) {
    // A raw tab is only whitespace in valid JSON (strings must escape it), but
    // YAML forbids tabs for indentation; spaces keep yaml-cpp from tripping.
    std::replace(text.begin(), text.end(), '\t', ' ');
  }
  LoadOptions file_opts = opts;
  if (file_opts.source_name.empty()) file_opts.source_name = path;
  return loadFromYamlString(text, out, file_opts);
}

std::string locate(const std::string& source, const std::map<std::string, int>& field_lines,
                   const std::string& field_path) {
  // Walk back from the full path to shorter prefixes ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a").
  std::string prefix = field_path;
  while (!prefix.empty()) {
    auto it = field_lines.find(prefix);
    if (it != field_lines.end()) return absl::StrCat(source, ":", it->second, ": ");
    size_t cut = prefix.find_last_of(".[");
    if (cut == std::string::npos) break;
    prefix.resize(cut);
  }
  return absl::StrCat(source, ": ");
}

std::string toJson(const Message& m, bool pretty, bool print_defaults) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = print_defaults;
  options.always_print_enums_as_ints = false;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(m, &out, options);
  if (!status.ok()) {
    return absl::StrCat("{\"error\": ", jsonQuoted(std::string(status.message())), "}");
  }
  return out;
}

}  // namespace courier::protobuf
