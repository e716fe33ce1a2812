// The one place where the core's absl::Status becomes a grpc::Status.
//
// absl::StatusCode and grpc::StatusCode share their numbering (both follow
// google.rpc.Code), so the code carries over unchanged and the message, which
// starts with the offending field's path, reaches the client as it is.
#ifndef LEPTON_SERVER_STATUS_MAPPING_H_
#define LEPTON_SERVER_STATUS_MAPPING_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace lepton::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_STATUS_MAPPING_H_
