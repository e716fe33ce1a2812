// ReflectionService: gRPC's server reflection, grpc.reflection.v1alpha
// (proto/grpc/reflection/v1alpha/reflection.proto), served from the server's
// polling thread (rpc/call_poller.h), so that grpcurl and
// clients/node/discover.js can list the services and fetch their
// descriptors without .proto files.
//
// Each request of a ServerReflectionInfo stream gets one response, in order:
// list_services names the services given to the constructor;
// file_by_filename, file_containing_symbol and file_containing_extension
// send the file's FileDescriptorProto and those of the files it imports,
// transitively, each once per response; all_extension_numbers_of_type the
// extension numbers of a message type. What the linked-in descriptors do not
// have is an error_response NOT_FOUND; a request of no known kind, an
// error_response UNIMPLEMENTED. The descriptors are protobuf's generated
// pool: every message linked into the server.
//
// Thread safety: immutable once built. Open streams end when their client
// half-closes, or at the server's shutdown.
#ifndef LEPTON_SERVER_REFLECTION_SERVICE_H_
#define LEPTON_SERVER_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/rpc/async_calls.h"

namespace lepton::server {

class ReflectionService {
 public:
  // `services`: the fully qualified names list_services answers (this
  // service's own is added).
  explicit ReflectionService(std::vector<std::string> services);

  grpc::Service* grpc_service() { return &async_; }
  void Serve(rpc::CallPoller* poller);

  // The response to one request.
  void Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request,
      grpc::reflection::v1alpha::ServerReflectionResponse* response) const;

  void Info(
      rpc::BidiCall<grpc::reflection::v1alpha::ServerReflectionRequest,
                    grpc::reflection::v1alpha::ServerReflectionResponse>* call);

 private:
  const std::vector<std::string> services_;
  grpc::reflection::v1alpha::ServerReflection::AsyncService async_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_REFLECTION_SERVICE_H_
