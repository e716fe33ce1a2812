// Fuzz target: Predict, Update and the Open Inference Protocol's ModelInfer
// requests as they arrive, serialized protobuf, through the server's
// conversion (server/convert.h, server/inference_convert.h) and the
// services' checks into the core's hashing of named features and its
// validation, and on into learning: the path of step P1-P5 and U1-U11 in
// docs/design.md, without the sockets. Debian's Protobuf and gRPC are not
// instrumented; Lepton's code is.
//
// Input: up to 8 requests, each
//   u8 op | u32 length | a serialized request
// op & 16: a ModelInferRequest (which learns when it has a "label" input);
// otherwise op & 1: 0 a PredictRequest, 1 an UpdateRequest. (op >> 1) & 3:
// the model, one of four made for the input (below), whose name replaces
// the request's unless op & 8.
// The four: "dense" (logistic, 8 features, quarantine guardrail, ADWIN),
// "sparse" (softmax of 3 classes over 1000 hashed features, interactions
// "ab" and "aa", a refusing guardrail, BOOST), "linear" (4 features, Adam,
// Page-Hinkley, CHALLENGER) and "wide" (softmax of 65536 classes over one
// feature, the most outputs a model can have). The models are made for each
// input and deleted after it, so that every input reproduces on its own.
//
// Properties, beyond no crash, no sanitizer report and no allocation over
// libFuzzer's -malloc_limit_mb:
//   - every answer is OK or a client error (INVALID_ARGUMENT, NOT_FOUND,
//     FAILED_PRECONDITION, RESOURCE_EXHAUSTED);
//   - an OK Predict answers one prediction per instance, an OK ModelInfer
//     that predicts at least one output and its model's version;
//   - a rejected Update or learning ModelInfer changes nothing: version and
//     counters as before.
#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/store/model_store.h"
#include "google/protobuf/stubs/logging.h"
#include "inference/grpc_predict_v2.pb.h"
#include "lepton/v1/lepton.pb.h"
#include "server/convert.h"
#include "server/inference_convert.h"
#include "server/inference_service.h"
#include "server/model_service.h"
#include "server/status_mapping.h"
#include "tests/fuzz/fuzz_support.h"

namespace lepton::fuzz {
namespace {

constexpr const char* kModels[] = {"dense", "sparse", "linear", "wide"};

ModelSpec SpecOf(int model) {
  ModelSpec spec;
  switch (model) {
    case 0:
      spec.type = ModelType::kLogisticRegression;
      spec.num_features = 8;
      spec.minibatch_size = 4;
      spec.guardrail.policy = GuardrailPolicy::kQuarantine;
      spec.guardrail.holdout_capacity = 100;
      spec.guardrail.min_holdout = 5;
      spec.guardrail.recheck_holdout = 5;
      spec.drift.detector.kind = DriftDetectorKind::kAdwin;
      break;
    case 1:
      spec.type = ModelType::kSoftmaxRegression;
      spec.num_classes = 3;
      spec.num_features = 1000;
      spec.optimizer.kind = OptimizerKind::kFtrl;
      spec.interactions = {"ab", "aa"};
      spec.hash_seed = 7;
      spec.guardrail.policy = GuardrailPolicy::kReject;
      spec.guardrail.holdout_capacity = 100;
      spec.guardrail.min_holdout = 5;
      spec.drift.policy = DriftPolicy::kBoost;
      spec.drift.boost_examples = 10;
      break;
    case 2:
      spec.type = ModelType::kLinearRegression;
      spec.num_features = 4;
      spec.optimizer.kind = OptimizerKind::kAdam;
      spec.drift.detector.kind = DriftDetectorKind::kPageHinkley;
      spec.drift.detector.min_observations = 5;
      spec.drift.policy = DriftPolicy::kChallenger;
      spec.drift.challenger_window = 10;
      spec.drift.challenger_max_examples = 50;
      break;
    default:
      spec.type = ModelType::kSoftmaxRegression;
      spec.num_classes = kMaxClasses;
      spec.num_features = 1;
      spec.optimizer.kind = OptimizerKind::kSgd;
      break;
  }
  return spec;
}

bool IsClientError(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsNotFound(s) ||
         absl::IsFailedPrecondition(s) || absl::IsResourceExhausted(s);
}

// The store and the service, one for the whole process (a service per input
// would start an update thread per input, and ASan keeps memory for every
// thread ever started); each input starts and ends with no model in it.
struct Server {
  Server()
      : store(Options()),
        service(&store, ServiceOptions()),
        inference(&store, &service, &serving, kMaxMessageBytes) {}

  static constexpr int32_t kMaxMessageBytes = 64 << 20;  // the default

  static StoreOptions Options() {
    StoreOptions options;
    options.prediction_cache_entries = 1000;
    options.prediction_cache_bytes = 1 << 20;
    options.remembered_update_ids = 100;
    return options;
  }
  static server::ServiceOptions ServiceOptions() {
    server::ServiceOptions options;  // --max_batch as the server's default
    options.update_threads = 1;      // not used: ApplyUpdate runs here
    return options;
  }

  ModelStore store;
  server::ModelService service;
  std::atomic<bool> serving{true};
  server::InferenceService inference;
};

class Session {
 public:
  Session() {
    static Server* const server = new Server;
    store_ = &server->store;
    service_ = &server->service;
    inference_ = &server->inference;
  }
  ~Session() {
    for (int model = 0; model < 4; ++model) {
      if (created_[model]) FUZZ_CHECK(store_->DeleteModel(kModels[model]).ok());
    }
  }

  void Predict(int model, bool keep_name, absl::string_view bytes) {
    v1::PredictRequest request;
    if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    Prepare(model, keep_name, request.mutable_model());
    // ModelService::Predict: the batch limit, then (without a min_version
    // to wait for) PredictNow.
    if (request.min_version() > 0) return;  // a wait, not a parse
    absl::Status status =
        service_->CheckBatch("instances", request.instances_size());
    v1::PredictResponse response;
    if (status.ok()) status = service_->PredictNow(request, &response);
    if (status.ok()) {
      FUZZ_CHECK(response.predictions_size() == request.instances_size());
    }
    CheckAnswer(status);
  }

  void Update(int model, bool keep_name, absl::string_view bytes) {
    v1::UpdateRequest request;
    if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    Prepare(model, keep_name, request.mutable_model());
    absl::StatusOr<ModelInfo> before = store_->GetModel(request.model());
    v1::UpdateResponse response;
    std::promise<absl::Status> answered;
    service_->ApplyUpdate(request, &response, [&answered](absl::Status s) {
      answered.set_value(std::move(s));
    });
    const absl::Status status = answered.get_future().get();
    CheckAnswer(status);
    if (!status.ok()) CheckUnchanged(request.model(), before, status);
  }

  void Infer(int model, bool keep_name, absl::string_view bytes) {
    inference::ModelInferRequest request;
    if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    Prepare(model, keep_name, request.mutable_model_name());
    inference::ModelInferResponse response;
    if (!server::IsLearning(request)) {
      const absl::Status status = inference_->Infer(request, &response);
      CheckAnswer(status);
      if (status.ok()) {
        FUZZ_CHECK(response.outputs_size() > 0);
        FUZZ_CHECK(!response.model_version().empty());
      }
      return;
    }
    absl::StatusOr<ModelInfo> before = store_->GetModel(request.model_name());
    absl::StatusOr<server::InferInputs> inputs =
        inference_->CheckLearning(request);
    absl::Status status = inputs.status();
    if (inputs.ok()) {
      std::promise<absl::Status> answered;
      inference_->ApplyLearning(
          request,
          std::make_shared<const server::InferInputs>(*std::move(inputs)),
          &response,
          [&answered](absl::Status s) { answered.set_value(std::move(s)); });
      status = answered.get_future().get();
    }
    CheckAnswer(status);
    if (!status.ok()) CheckUnchanged(request.model_name(), before, status);
  }

 private:
  // The model's name into the request (unless it keeps its own), and the
  // model made on first use.
  void Prepare(int model, bool keep_name, std::string* name) {
    if (!created_[model]) {
      created_[model] = true;
      FUZZ_CHECK(store_->CreateModel(kModels[model], SpecOf(model)).ok());
    }
    if (!keep_name) *name = kModels[model];
  }

  static void CheckAnswer(const absl::Status& status) {
    server::ToGrpcStatus(status);
    FUZZ_CHECK(status.ok() || IsClientError(status), "%s",
               status.ToString().c_str());
  }

  // A refused change left model `name` as it was `before` it.
  void CheckUnchanged(const std::string& name,
                      const absl::StatusOr<ModelInfo>& before,
                      const absl::Status& refusal) {
    if (!before.ok()) return;
    absl::StatusOr<ModelInfo> after = store_->GetModel(name);
    FUZZ_CHECK(after.ok());
    FUZZ_CHECK(after->version == before->version, "%s",
               refusal.ToString().c_str());
    FUZZ_CHECK(after->counters.examples_seen == before->counters.examples_seen);
    FUZZ_CHECK(after->counters.updates == before->counters.updates);
  }

  ModelStore* store_;
  server::ModelService* service_;
  server::InferenceService* inference_;
  bool created_[4] = {};
};

void OneInput(const uint8_t* data, size_t size) {
  // Protobuf's complaints about invalid UTF-8 in a string field are the
  // fuzzer's doing: not worth a line each.
  static google::protobuf::LogSilencer* const quiet =
      new google::protobuf::LogSilencer;
  (void)quiet;
  FuzzInput in(data, size);
  Session session;
  for (int i = 0; i < 8 && !in.empty(); ++i) {
    const uint8_t op = in.U8();
    const absl::string_view request = in.Chunk();
    const int model = (op >> 1) & 3;
    const bool keep_name = (op & 8) != 0;
    if (op & 16) {
      session.Infer(model, keep_name, request);
    } else if (op & 1) {
      session.Update(model, keep_name, request);
    } else {
      session.Predict(model, keep_name, request);
    }
  }
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
