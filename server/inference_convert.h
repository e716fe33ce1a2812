// Conversions between the Open Inference Protocol's messages (package
// inference, proto/inference/grpc_predict_v2.proto) and the core's types,
// for inference_service.h.
//
// Inputs. A ModelInfer request carries one FP32 tensor of features, shape
// [n, num_features], dense and row-major, under any name but "label" and
// "weight" (ModelMetadata calls it "features"); and, to learn (the
// online_learning extension), an FP32 tensor "label" of shape [n] and
// optionally an FP32 tensor "weight" of shape [n]. Every tensor's values
// come either in its contents.fp32_contents or, for every tensor at once, in
// raw_input_contents (little-endian floats, one entry per input, in order).
// ReadInputs() checks everything about that shape of the wire (datatypes,
// ranks, sizes, the batch limit) and makes views for the core: the
// fp32_contents of the request itself, or a copy of the raw bytes (bounded
// by the message size: a shape is only believed once the bytes it claims are
// there). What the values mean (finiteness, labels, the number of features)
// is the core's to check; InferStatus() renames the core's field paths
// ("instances[3].dense[1]") to the request's ("inputs[0].contents.
// fp32_contents[13]").
//
// Outputs. A model answers "value" [n] FP32 (the regression value, P(y = 1)
// for logistic, the probability of the predicted class for softmax), and a
// classifier also "label" [n] INT64 (the predicted class) and "probabilities"
// [n, K] FP32 (K = 2 for logistic: P(y = 0), P(y = 1)). A learning call
// answers "version" [1] INT64. Outputs are written in the form the request
// used: raw_output_contents for raw_input_contents, contents otherwise.
//
// Errors: INVALID_ARGUMENT naming the request's field path
// ("inputs[1].shape: ..."); RESOURCE_EXHAUSTED beyond --max_message_bytes of
// outputs.
//
// Thread safety: free functions without state; an InferInputs is used by
// one call.
#ifndef LEPTON_SERVER_INFERENCE_CONVERT_H_
#define LEPTON_SERVER_INFERENCE_CONVERT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/store/store_types.h"
#include "inference/grpc_predict_v2.pb.h"

namespace lepton::server {

// The names of the tensors (ModelMetadata lists them; docs/api.md).
inline constexpr char kFeaturesInput[] = "features";
inline constexpr char kLabelInput[] = "label";
inline constexpr char kWeightInput[] = "weight";
inline constexpr char kValueOutput[] = "value";
inline constexpr char kLabelOutput[] = "label";
inline constexpr char kProbabilitiesOutput[] = "probabilities";
inline constexpr char kVersionOutput[] = "version";
// ServerMetadata's extensions: ModelInfer with a "label" input learns.
inline constexpr char kOnlineLearningExtension[] = "online_learning";
// The request parameter that makes a learning call's retry safe (a string,
// ModelStore's update_id).
inline constexpr char kUpdateIdParameter[] = "update_id";

// One FP32 input tensor of a request, its values as floats.
struct Fp32Tensor {
  int index = -1;  // in request.inputs()
  std::vector<int64_t> shape;
  absl::Span<const float> values;  // row-major
  // Where its values are, for errors: "inputs[0].contents.fp32_contents" or
  // "raw_input_contents[0]" (its element i is "<path>[i]").
  std::string values_path;
};

// The tensors of a ModelInfer request.
struct InferInputs {
  Fp32Tensor features;               // [n, num_features]
  std::optional<Fp32Tensor> label;   // [n]: learn instead of predicting
  std::optional<Fp32Tensor> weight;  // [n], only with a label
  bool raw = false;                  // the values came in raw_input_contents
  // Copies of raw_input_contents (aligned floats), which `values` view.
  std::vector<std::vector<float>> owned;

  int64_t rows() const { return features.shape[0]; }
  int64_t columns() const { return features.shape[1]; }
  bool learning() const { return label.has_value(); }
};

// Whether the request has an input named "label" (the online_learning
// extension: it needs the writer role).
bool IsLearning(const inference::ModelInferRequest& request);

// The request's tensors (see the file comment). Their number of rows is the
// caller's to bound (--max_batch); the values they hold are bounded by the
// message.
absl::StatusOr<InferInputs> ReadInputs(
    const inference::ModelInferRequest& request);

// A version string of the protocol (model_version, ModelReady.version,
// ModelMetadata.version): "" is 0 (the newest), otherwise a decimal version
// >= 1. INVALID_ARGUMENT "<field>: ..." for anything else.
absl::StatusOr<uint64_t> ParseVersion(absl::string_view text,
                                      absl::string_view field);

// The outputs a prediction answers.
enum class Output { kValue, kLabel, kProbabilities };

// The requested outputs (request.outputs), in order, or every output of the
// model when none is named. `classifier`: the model has label and
// probabilities. INVALID_ARGUMENT "outputs[i].name: ..." for a name the model
// does not have or one asked twice; "outputs[i].parameters: ..." for Triton's
// classification parameter, which Lepton does not offer.
absl::StatusOr<std::vector<Output>> RequestedOutputs(
    const inference::ModelInferRequest& request, bool classifier);
// The same for a learning call, whose only output is "version".
absl::Status CheckLearningOutputs(const inference::ModelInferRequest& request);

// Row views of the features for ModelStore::Predict, and examples (label and
// weight too) for StartUpdate; they borrow `inputs`.
std::vector<FeaturesView> InstancesOf(const InferInputs& inputs);
std::vector<ExampleView> ExamplesOf(const InferInputs& inputs);

// Fills response->outputs (and raw_output_contents when `raw`) with
// `outputs` of `predictions`. RESOURCE_EXHAUSTED "outputs: ..." if they would
// take more than `max_bytes` (--max_message_bytes); nothing is written then.
absl::Status PredictionsToOutputs(const Predictions& predictions,
                                  absl::Span<const Output> outputs, bool raw,
                                  int64_t max_bytes,
                                  inference::ModelInferResponse* response);
// The output "version" [1] INT64 of a learning call.
void VersionToOutput(uint64_t version, bool raw,
                     inference::ModelInferResponse* response);

// `status` from the core, its field path renamed to the request's:
// "instances[i].dense[j]" and "examples[i].features.dense[j]" to the
// features' element i * num_features + j ("... (row i, column j)"),
// "instances[i].dense" (a row of the wrong length) to
// "inputs[k].shape[1]", "examples[i].label" and ".weight" to element i of
// those tensors, "instances" (outputs too large to send) to "outputs". Any
// other status is returned as it is.
absl::Status InferStatus(const absl::Status& status, const InferInputs& inputs);

// ModelMetadata for a model of `spec` (platform, inputs and outputs; name
// and versions are the caller's).
void SpecToMetadata(const ModelSpec& spec,
                    inference::ModelMetadataResponse* response);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_INFERENCE_CONVERT_H_
