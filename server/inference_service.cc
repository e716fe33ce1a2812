#include "server/inference_service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/status_mapping.h"

namespace lepton::server {

// CMake passes the project's version (server/CMakeLists.txt).
const char kServerVersion[] = LEPTON_VERSION;

namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

void Finish(rpc::UnaryResponder* call, const absl::Status& status) {
  call->Finish(ToGrpcStatus(status));
}

// The update_id request parameter (a string), "" without one.
absl::StatusOr<absl::string_view> UpdateIdOf(const ModelInferRequest& request) {
  auto it = request.parameters().find(kUpdateIdParameter);
  if (it == request.parameters().end()) return absl::string_view();
  if (it->second.parameter_choice_case() !=
      inference::InferParameter::kStringParam) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters[", kUpdateIdParameter, "]: must be a string_param"));
  }
  return absl::string_view(it->second.string_param());
}

// The rows a request asks for, as its inputs' first dimensions claim
// (checked later): only to choose the thread that computes them.
int64_t Rows(const ModelInferRequest& request) {
  int64_t rows = 0;
  for (const auto& input : request.inputs()) {
    if (input.shape_size() > 0) rows = std::max(rows, input.shape(0));
  }
  return rows;
}

}  // namespace

void InferenceService::Serve(rpc::CallPoller* poller) {
  using Async = inference::GRPCInferenceService::AsyncService;
  rpc::Serve(&async_, &Async::RequestServerLive, this,
             &InferenceService::ServerLive, poller);
  rpc::Serve(&async_, &Async::RequestServerReady, this,
             &InferenceService::ServerReady, poller);
  rpc::Serve(&async_, &Async::RequestModelReady, this,
             &InferenceService::ModelReady, poller);
  rpc::Serve(&async_, &Async::RequestServerMetadata, this,
             &InferenceService::ServerMetadata, poller);
  rpc::Serve(&async_, &Async::RequestModelMetadata, this,
             &InferenceService::ModelMetadata, poller);
  rpc::Serve(&async_, &Async::RequestModelInfer, this,
             &InferenceService::ModelInfer, poller);
}

InferenceService::InferenceService(ModelStore* store, ModelService* service,
                                   const std::atomic<bool>* serving,
                                   int32_t max_message_bytes)
    : store_(store),
      service_(service),
      serving_(serving),
      max_message_bytes_(max_message_bytes) {}

absl::StatusOr<InferInputs> InferenceService::Inputs(
    const ModelInferRequest& request) const {
  absl::StatusOr<InferInputs> inputs = ReadInputs(request);
  if (!inputs.ok()) return inputs;
  if (absl::Status s = service_->CheckBatch(
          absl::StrCat("inputs[", inputs->features.index, "].shape[0]"),
          inputs->rows());
      !s.ok()) {
    return s;
  }
  return inputs;
}

void InferenceService::ServerLive(
    rpc::UnaryCall<inference::ServerLiveRequest, inference::ServerLiveResponse>*
        call) {
  inference::ServerLiveResponse* response = call->response();
  response->set_live(true);
  Finish(call, absl::OkStatus());
}

void InferenceService::ServerReady(
    rpc::UnaryCall<inference::ServerReadyRequest,
                   inference::ServerReadyResponse>* call) {
  inference::ServerReadyResponse* response = call->response();
  response->set_ready(serving_->load());
  Finish(call, absl::OkStatus());
}

void InferenceService::ModelReady(
    rpc::UnaryCall<inference::ModelReadyRequest, inference::ModelReadyResponse>*
        call) {
  const inference::ModelReadyRequest* request = call->request();
  inference::ModelReadyResponse* response = call->response();
  if (absl::Status s = service_->Admit(call->context(), Method::kModelReady);
      !s.ok()) {
    return Finish(call, s);
  }
  absl::StatusOr<uint64_t> version =
      ParseVersion(request->version(), "version");
  if (!version.ok()) return Finish(call, version.status());
  // Not found, not retained, or not recoverable: not ready, which is an
  // answer rather than an error (a probe of a model not yet created).
  response->set_ready(
      store_->AcquireVersion(request->name(), *version).status().ok());
  Finish(call, absl::OkStatus());
}

void InferenceService::ServerMetadata(
    rpc::UnaryCall<inference::ServerMetadataRequest,
                   inference::ServerMetadataResponse>* call) {
  inference::ServerMetadataResponse* response = call->response();
  if (absl::Status s =
          service_->Admit(call->context(), Method::kServerMetadata);
      !s.ok()) {
    return Finish(call, s);
  }
  response->set_name("lepton");
  response->set_version(kServerVersion);
  response->add_extensions(kOnlineLearningExtension);
  Finish(call, absl::OkStatus());
}

void InferenceService::ModelMetadata(
    rpc::UnaryCall<inference::ModelMetadataRequest,
                   inference::ModelMetadataResponse>* call) {
  const inference::ModelMetadataRequest* request = call->request();
  inference::ModelMetadataResponse* response = call->response();
  if (absl::Status s = service_->Admit(call->context(), Method::kModelMetadata);
      !s.ok()) {
    return Finish(call, s);
  }
  absl::StatusOr<uint64_t> version =
      ParseVersion(request->version(), "version");
  if (!version.ok()) return Finish(call, version.status());
  if (*version > 0) {
    // NOT_FOUND naming the retained versions when it is not one of them.
    absl::Status held =
        store_->AcquireVersion(request->name(), *version).status();
    if (!held.ok()) return Finish(call, held);
  }
  absl::StatusOr<ModelInfo> info = store_->GetModel(request->name());
  if (!info.ok()) return Finish(call, info.status());
  response->set_name(info->name);
  for (uint64_t v : info->retained_versions) {
    response->add_versions(absl::StrCat(v));
  }
  SpecToMetadata(info->spec, response);
  Finish(call, absl::OkStatus());
}

void InferenceService::ModelInfer(
    rpc::UnaryCall<ModelInferRequest, ModelInferResponse>* call) {
  if (IsLearning(*call->request())) return Learn(call);
  const ModelInferRequest* request = call->request();
  ModelInferResponse* response = call->response();
  if (absl::Status s = service_->Admit(call->context(), Method::kModelInfer);
      !s.ok()) {
    return Finish(call, s);
  }
  if (Rows(*request) <= ModelService::kInlinePredictInstances) {
    return Finish(call, Infer(*request, response));
  }
  service_->PredictOnWorker(
      call, [this, call] { return Infer(*call->request(), call->response()); });
}

absl::Status InferenceService::Infer(const ModelInferRequest& request,
                                     ModelInferResponse* response) const {
  if (request.parameters().count(kUpdateIdParameter) > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters[", kUpdateIdParameter,
                     "]: only for learning (an input named \"label\")"));
  }
  absl::StatusOr<uint64_t> version =
      ParseVersion(request.model_version(), "model_version");
  if (!version.ok()) return version.status();
  absl::StatusOr<InferInputs> inputs = Inputs(request);
  if (!inputs.ok()) return inputs.status();
  const std::vector<FeaturesView> instances = InstancesOf(*inputs);
  // The outputs' own limit below names them; this one refuses a batch
  // whose probabilities could not be sent, before they are computed. Labels
  // alone (8 bytes a row) still need every probability computed: they may
  // take four times the limit.
  const bool labels_only =
      request.outputs_size() > 0 &&
      std::all_of(request.outputs().begin(), request.outputs().end(),
                  [](const auto& o) { return o.name() == kLabelOutput; });
  const int64_t max_output_bytes =
      int64_t{max_message_bytes_} * (labels_only ? 4 : 1);
  absl::StatusOr<Predictions> predictions =
      store_->Predict(request.model_name(), instances, *version,
                      {.max_output_bytes = max_output_bytes});
  if (!predictions.ok()) return InferStatus(predictions.status(), *inputs);
  absl::StatusOr<std::vector<Output>> outputs =
      RequestedOutputs(request, !predictions->labels.empty());
  if (!outputs.ok()) return outputs.status();
  LEPTON_RETURN_IF_ERROR(PredictionsToOutputs(
      *predictions, *outputs, inputs->raw, max_message_bytes_, response));
  response->set_model_name(request.model_name());
  response->set_model_version(absl::StrCat(predictions->version));
  response->set_id(request.id());
  return absl::OkStatus();
}

absl::StatusOr<InferInputs> InferenceService::CheckLearning(
    const ModelInferRequest& request) const {
  if (!request.model_version().empty()) {
    return absl::InvalidArgumentError(
        "model_version: must be empty when learning (an input named "
        "\"label\"): an update applies to the newest version");
  }
  LEPTON_RETURN_IF_ERROR(CheckLearningOutputs(request));
  LEPTON_RETURN_IF_ERROR(UpdateIdOf(request).status());
  return Inputs(request);
}

void InferenceService::ApplyLearning(const ModelInferRequest& request,
                                     std::shared_ptr<const InferInputs> inputs,
                                     ModelInferResponse* response,
                                     std::function<void(absl::Status)> done) {
  // Checked by CheckLearning().
  const absl::string_view update_id = *UpdateIdOf(request);
  // The core reads the views only inside StartUpdate().
  const std::vector<ExampleView> examples = ExamplesOf(*inputs);
  service_->StartUpdate(
      request.model_name(), examples, UpdateOptions{}, update_id,
      [&request, response, inputs = std::move(inputs),
       done = std::move(done)](absl::StatusOr<UpdateResult> result) {
        if (result.ok()) {
          response->set_model_name(request.model_name());
          response->set_model_version(absl::StrCat(result->version));
          response->set_id(request.id());
          VersionToOutput(result->version, inputs->raw, response);
        }
        done(InferStatus(result.status(), *inputs));
      });
}

void InferenceService::Learn(
    rpc::UnaryCall<ModelInferRequest, ModelInferResponse>* call) {
  const ModelInferRequest* request = call->request();
  ModelInferResponse* response = call->response();
  if (absl::Status s =
          service_->Admit(call->context(), Method::kModelInferLearn);
      !s.ok()) {
    return Finish(call, s);
  }
  absl::StatusOr<InferInputs> read = CheckLearning(*request);
  if (!read.ok()) return Finish(call, read.status());
  // Shared by the worker's task and the update's answer, which may run on
  // the log syncer's thread; request and response stay valid until Finish().
  auto inputs = std::make_shared<const InferInputs>(*std::move(read));
  const bool queued = service_->SubmitUpdate(
      request->model_name(), [this, call, request, response, inputs] {
        if (absl::Status alive = ModelService::CallAlive(*call->context());
            !alive.ok()) {
          return Finish(call, alive);
        }
        ApplyLearning(*request, inputs, response,
                      [call](absl::Status s) { Finish(call, s); });
      });
  if (!queued) {
    call->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "server shutting down: update not applied"));
  }
}

}  // namespace lepton::server
