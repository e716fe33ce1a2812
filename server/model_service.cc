#include "server/model_service.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "server/convert.h"
#include "server/status_mapping.h"
#include "server/stream_update_reactor.h"

namespace lepton::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

ModelService::ModelService(ModelStore* store, const ServiceOptions& options)
    : store_(store),
      options_(options),
      updates_(options.update_threads, options.update_nice) {}

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
  LEPTON_ASSIGN_OR_RETURN(UpdateResult result,
                          store_->Update(request.model(), ExamplesOf(request),
                                         UpdateOptionsOf(request)));
  UpdateResultToProto(result, response);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ModelService::Update(
    grpc::CallbackServerContext* context, const v1::UpdateRequest* request,
    v1::UpdateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // request and response stay valid until Finish().
  const bool queued = SubmitUpdate([this, reactor, request, response] {
    reactor->Finish(ToGrpcStatus(ApplyUpdate(*request, response)));
  });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "server shutting down: update not applied"));
  }
  return reactor;
}

grpc::ServerBidiReactor<v1::UpdateRequest, v1::UpdateResponse>*
ModelService::StreamUpdate(grpc::CallbackServerContext* context) {
  return new StreamUpdateReactor(this);
}

void ModelService::BeginShutdown() {
  draining_.store(true);
  MutexLock lock(&streams_mu_);
  for (StreamUpdateReactor* stream : streams_) stream->EndForShutdown();
}

void ModelService::RegisterStream(StreamUpdateReactor* stream) {
  MutexLock lock(&streams_mu_);
  streams_.insert(stream);
}

void ModelService::UnregisterStream(StreamUpdateReactor* stream) {
  MutexLock lock(&streams_mu_);
  streams_.erase(stream);
}

}  // namespace lepton::server
