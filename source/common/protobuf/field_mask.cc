#include "source/common/protobuf/field_mask.h"

#include <map>
#include <memory>

#include "absl/strings/str_split.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"

namespace courier::protobuf {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

FieldMask parseFieldMask(std::string_view text) {
  FieldMask mask;
  for (absl::string_view path : absl::StrSplit(absl::string_view(text.data(), text.size()), ',', absl::SkipEmpty())) {
    std::vector<std::string> parts;
    for (absl::string_view part : absl::StrSplit(path, '.', absl::SkipEmpty())) parts.emplace_back(part);
    if (!parts.empty()) mask.paths.push_back(std::move(parts));
  }
  return mask;
}

namespace {

// The rest of each path below one field; an empty entry means "all of it".
using Subpaths = std::vector<std::vector<std::string>>;

void trim(const Subpaths& paths, Message& message);

bool wholeField(const Subpaths& rest) {
  for (const auto& p : rest) {
    if (p.empty()) return true;
  }
  return false;
}

void trimAny(const Subpaths& rest, Message& any_message) {
  auto& any = static_cast<google::protobuf::Any&>(any_message);
  const std::string type = any.type_url().substr(any.type_url().rfind('/') + 1);
  const Descriptor* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
  if (descriptor == nullptr) return;  // unknown type: kept whole
  std::unique_ptr<Message> inner(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
  if (!any.UnpackTo(inner.get())) return;
  trim(rest, *inner);
  any.PackFrom(*inner);
}

void trimField(const Subpaths& rest, Message& message, const FieldDescriptor* field) {
  if (wholeField(rest) || field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return;
  const Reflection* reflection = message.GetReflection();
  const bool is_any = field->message_type()->full_name() == "google.protobuf.Any";
  auto apply = [&](Message& child) { is_any ? trimAny(rest, child) : trim(rest, child); };
  if (field->is_repeated()) {
    for (int i = 0; i < reflection->FieldSize(message, field); ++i)
      apply(*reflection->MutableRepeatedMessage(&message, field, i));
  } else if (reflection->HasField(message, field)) {
    apply(*reflection->MutableMessage(&message, field));
  }
}

void trim(const Subpaths& paths, Message& message) {
  // Group the paths by their first segment.
  std::map<std::string, Subpaths> by_field;
  for (const auto& p : paths) by_field[p.front()].emplace_back(p.begin() + 1, p.end());
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> set;
  reflection->ListFields(message, &set);
  for (const FieldDescriptor* field : set) {
    auto it = by_field.find(field->name());
    if (it == by_field.end()) {
      reflection->ClearField(&message, field);
      continue;
    }
    trimField(it->second, message, field);
  }
}

}  // namespace

void trimMessage(const FieldMask& mask, Message& message) {
  if (mask.empty()) return;
  trim(mask.paths, message);
}

void trimPacked(const FieldMask& mask, google::protobuf::Any& any) {
  if (mask.empty()) return;
  trimAny(mask.paths, any);
}

}  // namespace courier::protobuf
