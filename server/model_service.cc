#include "server/model_service.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "server/convert.h"
#include "server/status_mapping.h"

namespace lepton::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// StreamUpdate's state machine: Read -> apply -> Write -> Read ... Exactly one
// operation is outstanding at a time, so no lock is needed; gRPC calls
// OnReadDone/OnWriteDone/OnDone one after another. Deletes itself in OnDone.
class StreamUpdateReactor final
    : public grpc::ServerBidiReactor<v1::UpdateRequest, v1::UpdateResponse> {
 public:
  explicit StreamUpdateReactor(ModelService* service) : service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or the call was cancelled)
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    const absl::Status status = service_->ApplyUpdate(request_, &response_);
    if (!status.ok()) {
      Finish(ToGrpcStatus(status));
      return;
    }
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken"));
      return;
    }
    if (service_->draining()) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "server shutting down: every acknowledged request "
                          "was applied, later ones were not"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  ModelService* const service_;
  v1::UpdateRequest request_;
  v1::UpdateResponse response_;
};

}  // namespace

ModelService::ModelService(ModelStore* store, const ServiceOptions& options)
    : store_(store), options_(options) {}

absl::Status ModelService::CheckBatch(const char* field, int size) const {
  if (size > options_.max_batch) {
    return absl::ResourceExhaustedError(
        absl::StrCat(field, ": ", size, " items exceed the server's limit of ",
                     options_.max_batch, " (--max_batch)"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ModelService::CreateModel(
    grpc::CallbackServerContext* context, const v1::CreateModelRequest* request,
    v1::ModelInfo* response) {
  absl::StatusOr<ModelSpec> spec = SpecFromProto(request->spec());
  if (!spec.ok()) return Finish(context, spec.status());
  absl::StatusOr<ModelInfo> info = store_->CreateModel(request->name(), *spec);
  if (info.ok()) InfoToProto(*info, response);
  return Finish(context, info.status());
}

grpc::ServerUnaryReactor* ModelService::GetModel(
    grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
    v1::ModelInfo* response) {
  absl::StatusOr<ModelInfo> info = store_->GetModel(request->name());
  if (info.ok()) InfoToProto(*info, response);
  return Finish(context, info.status());
}

grpc::ServerUnaryReactor* ModelService::ListModels(
    grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
    v1::ListModelsResponse* response) {
  for (const ModelInfo& info : store_->ListModels()) {
    InfoToProto(info, response->add_models());
  }
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ModelService::DeleteModel(
    grpc::CallbackServerContext* context, const v1::DeleteModelRequest* request,
    v1::DeleteModelResponse* response) {
  return Finish(context, store_->DeleteModel(request->name()));
}

grpc::ServerUnaryReactor* ModelService::Predict(
    grpc::CallbackServerContext* context, const v1::PredictRequest* request,
    v1::PredictResponse* response) {
  absl::Status status = CheckBatch("instances", request->instances_size());
  if (!status.ok()) return Finish(context, status);
  absl::StatusOr<Predictions> predictions = store_->Predict(
      request->model(), InstancesOf(*request), request->version());
  if (predictions.ok()) PredictionsToProto(*predictions, response);
  return Finish(context, predictions.status());
}

absl::Status ModelService::ApplyUpdate(const v1::UpdateRequest& request,
                                       v1::UpdateResponse* response) {
  LEPTON_RETURN_IF_ERROR(CheckBatch("examples", request.examples_size()));
  LEPTON_ASSIGN_OR_RETURN(
      UpdateResult result,
      store_->Update(request.model(), ExamplesOf(request),
                     UpdateOptionsOf(request)));
  UpdateResultToProto(result, response);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ModelService::Update(
    grpc::CallbackServerContext* context, const v1::UpdateRequest* request,
    v1::UpdateResponse* response) {
  return Finish(context, ApplyUpdate(*request, response));
}

grpc::ServerBidiReactor<v1::UpdateRequest, v1::UpdateResponse>*
ModelService::StreamUpdate(grpc::CallbackServerContext* context) {
  return new StreamUpdateReactor(this);
}

}  // namespace lepton::server
