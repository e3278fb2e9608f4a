#include "source/common/config/resource_decoder.h"

#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"

namespace courier::config {
namespace {

constexpr char kTypePrefix[] = "type.googleapis.com/";
constexpr char kResourceWrapper[] = "type.googleapis.com/envoy.service.discovery.v3.Resource";

std::string typeName(const std::string& type_url) {
  const auto slash = type_url.rfind('/');
  return slash == std::string::npos ? type_url : type_url.substr(slash + 1);
}

}  // namespace

std::string resourceName(const google::protobuf::Message& resource) {
  const auto* descriptor = resource.GetDescriptor();
  const auto* field = descriptor->FindFieldByName("name");
  if (field == nullptr || field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    field = descriptor->FindFieldByName("cluster_name");
  }
  if (field == nullptr || field->type() != google::protobuf::FieldDescriptor::TYPE_STRING || field->is_repeated()) {
    return "";
  }
  return resource.GetReflection()->GetString(resource, field);
}

absl::StatusOr<DecodedResource> decodeResource(const google::protobuf::Any& any, const std::string& type_url,
                                               const std::string& version, const std::string& where) {
  const google::protobuf::Any* payload = &any;
  envoy::service::discovery::v3::Resource wrapper;
  std::string name;
  if (any.type_url() == kResourceWrapper) {
    if (!any.UnpackTo(&wrapper)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": cannot decode envoy.service.discovery.v3.Resource"));
    }
    payload = &wrapper.resource();
    name = wrapper.name();
  }
  const std::string label = name.empty() ? where : absl::StrCat(where, " '", name, "'");
  if (payload->type_url() != type_url) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": type URL ", payload->type_url(), " does not match the response's ", type_url));
  }
  if (type_url.rfind(kTypePrefix, 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": unsupported type URL ", type_url));
  }
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(typeName(type_url));
  if (descriptor == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": unknown resource type ", type_url));
  }
  const auto* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  if (prototype == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": unknown resource type ", type_url));
  }
  DecodedResource decoded;
  decoded.resource.reset(prototype->New());
  if (!decoded.resource->ParseFromString(payload->value())) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": cannot decode ", typeName(type_url)));
  }
  decoded.name = resourceName(*decoded.resource);
  if (decoded.name.empty()) decoded.name = name;
  decoded.version = version;
  return decoded;
}

DecodedResource cloneResource(const DecodedResource& resource) {
  DecodedResource copy;
  copy.name = resource.name;
  copy.version = resource.version;
  if (resource.resource != nullptr) {
    copy.resource.reset(resource.resource->New());
    copy.resource->CopyFrom(*resource.resource);
  }
  return copy;
}

}  // namespace courier::config
