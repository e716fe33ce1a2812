#include "server/reflection_service.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <utility>

#include "absl/container/flat_hash_set.h"

namespace lepton::server {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

// Adds `file` and, after it, the files it imports, each once.
void AddFile(const FileDescriptor* file,
             absl::flat_hash_set<const FileDescriptor*>* seen,
             ServerReflectionResponse* response) {
  if (!seen->insert(file).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(response->mutable_file_descriptor_response()
                              ->add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFile(file->dependency(i), seen, response);
  }
}

void Error(grpc::StatusCode code, const std::string& message,
           ServerReflectionResponse* response) {
  response->mutable_error_response()->set_error_code(code);
  response->mutable_error_response()->set_error_message(message);
}

// One stream: read a request, write its response, read the next.
class ReflectionStream final
    : public rpc::BidiReactor<ServerReflectionRequest,
                              ServerReflectionResponse> {
 public:
  ReflectionStream(
      const ReflectionService* service,
      rpc::BidiCall<ServerReflectionRequest, ServerReflectionResponse>* call)
      : BidiReactor(call), service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the call ended
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    service_->Answer(request_, &response_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken"));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionService* const service_;
  // One read or write at a time, each started from the end of the other.
  ServerReflectionRequest request_;
  ServerReflectionResponse response_;
};

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services)
    : services_([&] {
        services.push_back(
            grpc::reflection::v1alpha::ServerReflection::service_full_name());
        return std::move(services);
      }()) {}

void ReflectionService::Serve(rpc::CallPoller* poller) {
  using Async = grpc::reflection::v1alpha::ServerReflection::AsyncService;
  rpc::Serve(&async_, &Async::RequestServerReflectionInfo, this,
             &ReflectionService::Info, poller);
}

void ReflectionService::Info(
    rpc::BidiCall<ServerReflectionRequest, ServerReflectionResponse>* call) {
  new ReflectionStream(this, call);
}

void ReflectionService::Answer(const ServerReflectionRequest& request,
                               ServerReflectionResponse* response) const {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  response->set_valid_host(request.host());
  *response->mutable_original_request() = request;
  absl::flat_hash_set<const FileDescriptor*> seen;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        response->mutable_list_services_response()->add_service()->set_name(
            name);
      }
      return;
    case ServerReflectionRequest::kFileByFilename:
      if (const FileDescriptor* file =
              pool->FindFileByName(request.file_by_filename())) {
        return AddFile(file, &seen, response);
      }
      return Error(grpc::StatusCode::NOT_FOUND, "File not found.", response);
    case ServerReflectionRequest::kFileContainingSymbol:
      if (const FileDescriptor* file = pool->FindFileContainingSymbol(
              request.file_containing_symbol())) {
        return AddFile(file, &seen, response);
      }
      return Error(grpc::StatusCode::NOT_FOUND, "Symbol not found.", response);
    case ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const google::protobuf::Descriptor* type =
          pool->FindMessageTypeByName(ext.containing_type());
      const google::protobuf::FieldDescriptor* field =
          type == nullptr
              ? nullptr
              : pool->FindExtensionByNumber(type, ext.extension_number());
      if (field != nullptr) return AddFile(field->file(), &seen, response);
      return Error(grpc::StatusCode::NOT_FOUND, "Extension not found.",
                   response);
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const google::protobuf::Descriptor* type =
          pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        return Error(grpc::StatusCode::NOT_FOUND, "Type not found.", response);
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* numbers = response->mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const auto* field : extensions) {
        numbers->add_extension_number(field->number());
      }
      return;
    }
    default:
      return Error(grpc::StatusCode::UNIMPLEMENTED,
                   "the request names no known kind of reflection request",
                   response);
  }
}

}  // namespace lepton::server
