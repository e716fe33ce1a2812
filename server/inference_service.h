// InferenceService: the Open Inference Protocol (KServe V2) gRPC API,
// inference.GRPCInferenceService (proto/inference/grpc_predict_v2.proto),
// served by the same server and port as lepton.v1.ModelService, over the same
// store, so that Triton's and KServe's clients call Lepton as they are.
//
//   ServerLive       live: true while the process answers.
//   ServerReady      ready: the server's health (grpc.health.v1.Health):
//                    false while a cluster node catches up and from the
//                    start of a shutdown.
//   ModelReady       ready: the model exists and has `version` (a retained
//                    one; "" is the newest); false otherwise.
//   ServerMetadata   "lepton", its version, extensions ["online_learning"].
//   ModelMetadata    a model: its retained versions as versions, platform
//                    lepton_linear|lepton_logistic|lepton_softmax, input
//                    "features" FP32 [-1, num_features], outputs as
//                    inference_convert.h says.
//   ModelInfer       predicts from the newest or a retained version, like
//                    Predict; with an input named "label" it learns instead,
//                    like Update (the online_learning extension), and
//                    answers the new version.
//
// Like ModelService, each call checks what only the wire can get wrong
// (inference_convert.h), calls the store, and maps the store's status to
// gRPC in one place (status_mapping.h), with the core's field paths renamed
// to the request's. A prediction runs on the server's polling thread; learning
// goes to ModelService's update workers (SubmitUpdate), through ModelService's
// StartUpdate, so a cluster node appends it to the cluster's log, and an
// update applies whole or not at all, as Update's do.
//
// Access control: every call but ServerLive and ServerReady goes through
// ModelService::Admit(): UNAVAILABLE while draining (or while a cluster node
// is not serving), then the caller's token: reader for ModelInfer and the
// metadata calls, writer for a ModelInfer that learns. ServerLive and
// ServerReady are probes, open like the health service.
//
// Ownership and thread safety: borrows the store, the ModelService and
// `serving`, which must outlive it (and the grpc::Server it is registered
// with). Stateless: every method may be called concurrently.
#ifndef LEPTON_SERVER_INFERENCE_SERVICE_H_
#define LEPTON_SERVER_INFERENCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "core/store/model_store.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "server/inference_convert.h"
#include "server/model_service.h"

namespace lepton::server {

// "0.1.0": the server's version, as ServerMetadata reports it.
extern const char kServerVersion[];

class InferenceService final {
 public:
  // `serving`: the server's health (what grpc.health.v1.Health says for
  // ""). The rows of a ModelInfer are bounded by `service`'s --max_batch
  // (ModelService::CheckBatch), its outputs by `max_message_bytes`.
  InferenceService(ModelStore* store, ModelService* service,
                   const std::atomic<bool>* serving, int32_t max_message_bytes);

  // The gRPC service to register with the grpc::ServerBuilder, and its
  // methods served on a CallPoller's queue (rpc/call_poller.h), as
  // ModelService's.
  grpc::Service* grpc_service() { return &async_; }
  void Serve(rpc::CallPoller* poller);

  void ServerLive(rpc::UnaryCall<inference::ServerLiveRequest,
                                 inference::ServerLiveResponse>* call);
  void ServerReady(rpc::UnaryCall<inference::ServerReadyRequest,
                                  inference::ServerReadyResponse>* call);
  void ModelReady(rpc::UnaryCall<inference::ModelReadyRequest,
                                 inference::ModelReadyResponse>* call);
  void ServerMetadata(rpc::UnaryCall<inference::ServerMetadataRequest,
                                     inference::ServerMetadataResponse>* call);
  void ModelMetadata(rpc::UnaryCall<inference::ModelMetadataRequest,
                                    inference::ModelMetadataResponse>* call);
  void ModelInfer(rpc::UnaryCall<inference::ModelInferRequest,
                                 inference::ModelInferResponse>* call);

  // ModelInfer's work once the call is admitted, without gRPC (ModelInfer
  // and the fuzz target call these). Infer() predicts: fills *response or
  // returns the error. A learning request (IsLearning) is checked whole by
  // CheckLearning(), which returns its inputs; ApplyLearning() learns them
  // on the calling thread and calls `done` with the status once, as
  // ModelService::StartUpdate does. `request` and `response` must stay
  // valid until then.
  absl::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response) const;
  absl::StatusOr<InferInputs> CheckLearning(
      const inference::ModelInferRequest& request) const;
  void ApplyLearning(const inference::ModelInferRequest& request,
                     std::shared_ptr<const InferInputs> inputs,
                     inference::ModelInferResponse* response,
                     std::function<void(absl::Status)> done);

 private:
  // A ModelInfer that learns (online_learning), on an update worker.
  void Learn(rpc::UnaryCall<inference::ModelInferRequest,
                            inference::ModelInferResponse>* call);
  // ReadInputs(), and the rows against --max_batch.
  absl::StatusOr<InferInputs> Inputs(
      const inference::ModelInferRequest& request) const;

  ModelStore* const store_;
  ModelService* const service_;
  const std::atomic<bool>* const serving_;
  const int32_t max_message_bytes_;
  inference::GRPCInferenceService::AsyncService async_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_INFERENCE_SERVICE_H_
