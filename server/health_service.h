// HealthService: gRPC's standard health protocol, grpc.health.v1.Health
// (proto/grpc/health/v1/health.proto), served from the server's polling
// thread (rpc/call_poller.h) like every other method, so that a probe costs
// what an empty call costs.
//
//   Check   the status of a service name: SERVING or NOT_SERVING as last
//           set by SetServing(); NOT_FOUND for a name never set.
//   Watch   a stream of a name's status: the current one at once (or
//           SERVICE_UNKNOWN for a name never set), then each change; a
//           client slower than the changes gets the newest one.
//
// EndWatches() (the server's shutdown) finishes every Watch call with
// UNAVAILABLE after the status being written, and those that come later at
// once, so that a graceful shutdown does not wait for watchers.
//
// Thread safety: every method may be called from any thread. Ownership: the
// server owns it; it must outlive the grpc::Server it is registered with.
#ifndef LEPTON_SERVER_HEALTH_SERVICE_H_
#define LEPTON_SERVER_HEALTH_SERVICE_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "core/util/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/rpc/async_calls.h"

namespace lepton::server {

class HealthWatch;

class HealthService {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  HealthService() = default;
  HealthService(const HealthService&) = delete;
  HealthService& operator=(const HealthService&) = delete;

  grpc::Service* grpc_service() { return &async_; }
  void Serve(rpc::CallPoller* poller);

  void SetServing(const std::string& service, bool serving)
      ABSL_LOCKS_EXCLUDED(mu_);
  void EndWatches() ABSL_LOCKS_EXCLUDED(mu_);

  void Check(rpc::UnaryCall<grpc::health::v1::HealthCheckRequest,
                            grpc::health::v1::HealthCheckResponse>* call)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Watch(rpc::WriterCall<grpc::health::v1::HealthCheckRequest,
                             grpc::health::v1::HealthCheckResponse>* call)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class HealthWatch;
  void Unregister(HealthWatch* watch) ABSL_LOCKS_EXCLUDED(mu_);

  grpc::health::v1::Health::AsyncService async_;
  Mutex mu_;
  absl::flat_hash_map<std::string, Status> statuses_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<HealthWatch*> watches_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_HEALTH_SERVICE_H_
