// ModelService: the lepton.v1.ModelService RPCs, served with gRPC's callback
// API over a core ModelStore.
//
// Each RPC checks what only the wire can get wrong (batch size against
// --max_batch, enum values), converts the request (convert.h) and calls the
// store; the store's absl::Status becomes the RPC's status in one place
// (status_mapping.h). Unary RPCs run on gRPC's callback threads and finish
// before returning; learning and prediction are short and CPU-bound, so no
// extra thread pool is needed.
//
// StreamUpdate applies one request at a time: it reads a request, applies it,
// writes its response, and only then reads the next, so responses come in
// request order and a failed request ends the stream after every earlier one
// was acknowledged. Once BeginShutdown() is called, open streams end with
// UNAVAILABLE after the request in progress, so that a graceful shutdown does
// not wait for clients that keep streaming.
//
// Ownership and thread safety: the service borrows the store, which must
// outlive it (and the grpc::Server it is registered with). Every method may
// be called concurrently; the only state of its own is an atomic flag.
#ifndef LEPTON_SERVER_MODEL_SERVICE_H_
#define LEPTON_SERVER_MODEL_SERVICE_H_

#include <atomic>
#include <cstdint>

#include "core/model_store.h"
#include "lepton/v1/lepton.grpc.pb.h"

namespace lepton::server {

struct ServiceOptions {
  // Most instances in one Predict, or examples in one Update request;
  // RESOURCE_EXHAUSTED above it.
  int32_t max_batch = 16384;
};

class ModelService final : public v1::ModelService::CallbackService {
 public:
  ModelService(ModelStore* store, const ServiceOptions& options);

  // Ends open StreamUpdate calls after their current request.
  void BeginShutdown() { draining_.store(true, std::memory_order_relaxed); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* context,
                                        const v1::CreateModelRequest* request,
                                        v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context,
                                        const v1::DeleteModelRequest* request,
                                        v1::DeleteModelResponse* response) override;
  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context,
                                    const v1::PredictRequest* request,
                                    v1::PredictResponse* response) override;
  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* context,
                                   const v1::UpdateRequest* request,
                                   v1::UpdateResponse* response) override;
  grpc::ServerBidiReactor<v1::UpdateRequest, v1::UpdateResponse>* StreamUpdate(
      grpc::CallbackServerContext* context) override;

  // The work of one Update, shared by Update and StreamUpdate.
  absl::Status ApplyUpdate(const v1::UpdateRequest& request,
                           v1::UpdateResponse* response);

 private:
  absl::Status CheckBatch(const char* field, int size) const;

  ModelStore* const store_;
  const ServiceOptions options_;
  std::atomic<bool> draining_{false};
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_MODEL_SERVICE_H_
