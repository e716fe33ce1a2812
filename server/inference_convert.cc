#include "server/inference_convert.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace lepton::server {
namespace {

using inference::InferTensorContents;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using InputTensor = inference::ModelInferRequest::InferInputTensor;

constexpr char kFp32[] = "FP32";
constexpr char kInt64[] = "INT64";

// "[2, 4]"; at most 8 dimensions are written out, so that an absurd shape
// makes a short message.
std::string ShapeText(absl::Span<const int64_t> shape) {
  constexpr size_t kShown = 8;
  if (shape.size() <= kShown) {
    return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
  }
  return absl::StrCat("[", absl::StrJoin(shape.subspan(0, kShown), ", "),
                      ", ... (", shape.size(), " dimensions)]");
}

// Whether any of the typed value arrays of `contents` but fp32_contents
// holds something.
bool HasOtherContents(const InferTensorContents& c) {
  return c.bool_contents_size() > 0 || c.int_contents_size() > 0 ||
         c.int64_contents_size() > 0 || c.uint_contents_size() > 0 ||
         c.uint64_contents_size() > 0 || c.fp64_contents_size() > 0 ||
         c.bytes_contents_size() > 0;
}

bool HasContents(const InferTensorContents& c) {
  return c.fp32_contents_size() > 0 || HasOtherContents(c);
}

// Little-endian FP32 bytes as floats.
std::vector<float> DecodeFloats(const std::string& bytes) {
  std::vector<float> values(bytes.size() / sizeof(float));
  if constexpr (std::endian::native == std::endian::little) {
    if (!values.empty()) {
      std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
    }
  } else {
    for (size_t i = 0; i < values.size(); ++i) {
      uint32_t word = 0;
      for (int b = 3; b >= 0; --b) {
        word = (word << 8) | static_cast<uint8_t>(bytes[i * 4 + b]);
      }
      values[i] = std::bit_cast<float>(word);
    }
  }
  return values;
}

template <typename T>
void AppendLittleEndian(T value, std::string* out) {
  using Word = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Word word = std::bit_cast<Word>(value);
  for (size_t b = 0; b < sizeof(T); ++b) {
    out->push_back(static_cast<char>(word & 0xff));
    word >>= 8;
  }
}

// Checks input `i`'s datatype, rank and dimensions (rank 2 for the features,
// 1 for label and weight) and takes its values, from its contents or from
// raw_input_contents[i] (a copy in `owned`).
absl::StatusOr<Fp32Tensor> ReadTensor(const ModelInferRequest& request, int i,
                                      int rank, bool raw,
                                      std::vector<std::vector<float>>* owned) {
  const InputTensor& input = request.inputs(i);
  const std::string where = absl::StrCat("inputs[", i, "]");
  if (input.datatype() != kFp32) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".datatype: must be FP32, got \"",
                     absl::CHexEscape(input.datatype().substr(0, 32)), "\""));
  }
  Fp32Tensor tensor;
  tensor.index = i;
  tensor.shape.assign(input.shape().begin(), input.shape().end());
  if (input.shape_size() != rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ".shape: must be ",
        rank == 2 ? "[n, num_features]" : "[n] (one value per row)", ", got ",
        ShapeText(tensor.shape)));
  }
  // Every dimension >= 1, and their product (checked for overflow) equal to
  // the number of values given, before anything is allocated.
  int64_t elements = 1;
  for (int d = 0; d < rank; ++d) {
    const int64_t dim = tensor.shape[d];
    if (dim < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".shape[", d, "]: must be at least 1, got ", dim));
    }
    if (dim > std::numeric_limits<int64_t>::max() / elements) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".shape: ", ShapeText(tensor.shape),
                       " has too many elements"));
    }
    elements *= dim;
  }
  if (!raw) {
    const InferTensorContents& contents = input.contents();
    if (HasOtherContents(contents)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".contents: FP32 values go in fp32_contents"));
    }
    tensor.values_path = absl::StrCat(where, ".contents.fp32_contents");
    if (contents.fp32_contents_size() != elements) {
      return absl::InvalidArgumentError(absl::StrCat(
          tensor.values_path, ": has ", contents.fp32_contents_size(),
          " values, shape ", ShapeText(tensor.shape), " needs ", elements));
    }
    tensor.values = absl::MakeConstSpan(contents.fp32_contents().data(),
                                        contents.fp32_contents_size());
    return tensor;
  }
  if (HasContents(input.contents())) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ".contents: must be empty when raw_input_contents is used"));
  }
  tensor.values_path = absl::StrCat("raw_input_contents[", i, "]");
  const std::string& bytes = request.raw_input_contents(i);
  if (elements > static_cast<int64_t>(bytes.size()) / 4 ||
      static_cast<int64_t>(bytes.size()) != elements * 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        tensor.values_path, ": has ", bytes.size(), " bytes, shape ",
        ShapeText(tensor.shape), " of FP32 needs ", elements, " x 4"));
  }
  owned->push_back(DecodeFloats(bytes));
  tensor.values = owned->back();
  return tensor;
}

absl::Status CheckRows(const Fp32Tensor& tensor, const Fp32Tensor& features,
                       absl::string_view what) {
  if (tensor.shape[0] != features.shape[0]) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs[", tensor.index, "].shape[0]: ", tensor.shape[0],
                     " ", what, " for the ", features.shape[0],
                     " rows of inputs[", features.index, "]"));
  }
  return absl::OkStatus();
}

ModelInferResponse::InferOutputTensor* AddOutput(
    absl::string_view name, const char* datatype,
    std::initializer_list<int64_t> shape, ModelInferResponse* response) {
  ModelInferResponse::InferOutputTensor* out = response->add_outputs();
  out->set_name(std::string(name));
  out->set_datatype(datatype);
  for (int64_t d : shape) out->add_shape(d);
  return out;
}

absl::string_view OutputName(Output output) {
  switch (output) {
    case Output::kValue:
      return kValueOutput;
    case Output::kLabel:
      return kLabelOutput;
    case Output::kProbabilities:
      return kProbabilitiesOutput;
  }
  return kValueOutput;
}

// Reads a non-negative decimal integer off the front of `*text`.
bool ConsumeIndex(absl::string_view* text, int64_t* value) {
  size_t digits = 0;
  while (digits < text->size() && absl::ascii_isdigit((*text)[digits])) {
    ++digits;
  }
  if (digits == 0 || !absl::SimpleAtoi(text->substr(0, digits), value)) {
    return false;
  }
  text->remove_prefix(digits);
  return true;
}

absl::Status Renamed(const absl::Status& status, absl::string_view path,
                     absl::string_view rest) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", rest));
}

// An element of a dense row: "<values>[i * D + j]: <why> (row i, column j)".
absl::Status RenameElement(const absl::Status& status,
                           const InferInputs& inputs, int64_t row,
                           absl::string_view rest) {
  int64_t column = 0;
  if (!absl::ConsumePrefix(&rest, "[") || !ConsumeIndex(&rest, &column) ||
      !absl::ConsumePrefix(&rest, "]: ")) {
    return status;
  }
  return absl::Status(status.code(),
                      absl::StrCat(inputs.features.values_path, "[",
                                   row * inputs.columns() + column, "]: ", rest,
                                   " (row ", row, ", column ", column, ")"));
}

}  // namespace

bool IsLearning(const ModelInferRequest& request) {
  for (const InputTensor& input : request.inputs()) {
    if (input.name() == kLabelInput) return true;
  }
  return false;
}

absl::StatusOr<InferInputs> ReadInputs(const ModelInferRequest& request) {
  InferInputs inputs;
  inputs.raw = request.raw_input_contents_size() > 0;
  if (inputs.raw &&
      request.raw_input_contents_size() != request.inputs_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents: has ", request.raw_input_contents_size(),
        " entries for ", request.inputs_size(),
        " inputs; give one per input, in the order of inputs"));
  }
  // Which input is which, before any values are read.
  int features = -1, label = -1, weight = -1;
  for (int i = 0; i < request.inputs_size(); ++i) {
    const std::string& name = request.inputs(i).name();
    int* slot = name == kLabelInput    ? &label
                : name == kWeightInput ? &weight
                                       : &features;
    if (*slot >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[", i, "].name: \"", absl::CHexEscape(name.substr(0, 64)),
          "\": ",
          slot == &features
              ? absl::StrCat("a second features tensor (inputs[", features,
                             "] is one); a model takes one, [n, "
                             "num_features], and optionally \"label\" and "
                             "\"weight\"")
              : absl::StrCat("given twice (also inputs[", *slot, "])")));
    }
    *slot = i;
  }
  if (features < 0) {
    return absl::InvalidArgumentError(
        "inputs: no features tensor: give one FP32 tensor of shape [n, "
        "num_features]");
  }
  if (weight >= 0 && label < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs[", weight,
                     "].name: \"weight\" is only for learning, with a "
                     "\"label\" input"));
  }
  // Three tensors at most, each copied at most once: the copies are bounded
  // by the message.
  inputs.owned.reserve(3);
  absl::StatusOr<Fp32Tensor> tensor =
      ReadTensor(request, features, 2, inputs.raw, &inputs.owned);
  if (!tensor.ok()) return tensor.status();
  inputs.features = *std::move(tensor);
  if (label >= 0) {
    tensor = ReadTensor(request, label, 1, inputs.raw, &inputs.owned);
    if (!tensor.ok()) return tensor.status();
    inputs.label = *std::move(tensor);
    if (absl::Status s = CheckRows(*inputs.label, inputs.features, "labels");
        !s.ok()) {
      return s;
    }
  }
  if (weight >= 0) {
    tensor = ReadTensor(request, weight, 1, inputs.raw, &inputs.owned);
    if (!tensor.ok()) return tensor.status();
    inputs.weight = *std::move(tensor);
    if (absl::Status s = CheckRows(*inputs.weight, inputs.features, "weights");
        !s.ok()) {
      return s;
    }
  }
  return inputs;
}

absl::StatusOr<uint64_t> ParseVersion(absl::string_view text,
                                      absl::string_view field) {
  if (text.empty()) return uint64_t{0};
  uint64_t version = 0;
  const bool digits = std::all_of(
      text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); });
  if (!digits || !absl::SimpleAtoi(text, &version) || version == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     ": must be empty (the newest version) or a "
                     "version number >= 1, got \"",
                     absl::CHexEscape(text.substr(0, 64)), "\""));
  }
  return version;
}

absl::StatusOr<std::vector<Output>> RequestedOutputs(
    const ModelInferRequest& request, bool classifier) {
  std::vector<Output> outputs;
  if (request.outputs_size() == 0) {
    if (classifier) outputs = {Output::kProbabilities, Output::kLabel};
    outputs.push_back(Output::kValue);
    return outputs;
  }
  const std::string available = classifier
                                    ? "\"probabilities\", \"label\", \"value\""
                                    : "\"value\" (a linear model)";
  for (int i = 0; i < request.outputs_size(); ++i) {
    const auto& requested = request.outputs(i);
    const std::string where = absl::StrCat("outputs[", i, "]");
    if (requested.parameters().count("classification") > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where,
          ".parameters: \"classification\" (Triton's classification "
          "extension) is not offered; ask for \"label\" and "
          "\"probabilities\""));
    }
    std::optional<Output> output;
    if (requested.name() == kValueOutput) {
      output = Output::kValue;
    } else if (classifier && requested.name() == kLabelOutput) {
      output = Output::kLabel;
    } else if (classifier && requested.name() == kProbabilitiesOutput) {
      output = Output::kProbabilities;
    }
    if (!output.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".name: the model has no output \"",
                       absl::CHexEscape(requested.name().substr(0, 64)),
                       "\"; its outputs are ", available));
    }
    for (int j = 0; j < i; ++j) {
      if (request.outputs(j).name() == requested.name()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".name: \"", requested.name(), "\" asked for twice"));
      }
    }
    outputs.push_back(*output);
  }
  return outputs;
}

absl::Status CheckLearningOutputs(const ModelInferRequest& request) {
  for (int i = 0; i < request.outputs_size(); ++i) {
    if (request.outputs(i).name() != kVersionOutput || i > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "outputs[", i,
          "].name: a learning call (an input named \"label\") "
          "answers only \"version\", once; got \"",
          absl::CHexEscape(request.outputs(i).name().substr(0, 64)), "\""));
    }
  }
  return absl::OkStatus();
}

std::vector<FeaturesView> InstancesOf(const InferInputs& inputs) {
  std::vector<FeaturesView> views(inputs.rows());
  const size_t d = inputs.columns();
  for (size_t i = 0; i < views.size(); ++i) {
    views[i].dense = inputs.features.values.subspan(i * d, d);
  }
  return views;
}

std::vector<ExampleView> ExamplesOf(const InferInputs& inputs) {
  std::vector<ExampleView> views(inputs.rows());
  const size_t d = inputs.columns();
  for (size_t i = 0; i < views.size(); ++i) {
    views[i].features.dense = inputs.features.values.subspan(i * d, d);
    if (inputs.label.has_value()) views[i].label = inputs.label->values[i];
    if (inputs.weight.has_value()) views[i].weight = inputs.weight->values[i];
  }
  return views;
}

absl::Status PredictionsToOutputs(const Predictions& predictions,
                                  absl::Span<const Output> outputs, bool raw,
                                  int64_t max_bytes,
                                  ModelInferResponse* response) {
  const int64_t n = static_cast<int64_t>(predictions.size());
  // A logistic model's probabilities are [P(y = 0), P(y = 1)].
  const int64_t k = predictions.num_outputs > 1 ? predictions.num_outputs : 2;
  int64_t bytes = 0;
  for (Output output : outputs) {
    bytes += n * (output == Output::kProbabilities ? 4 * k
                  : output == Output::kLabel       ? 8
                                                   : 4);
  }
  if (bytes > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "outputs: ", bytes, " bytes of outputs for ", n,
        " rows exceed the server's limit of ", max_bytes,
        " (--max_message_bytes); ask for fewer rows or fewer outputs"));
  }
  for (Output output : outputs) {
    const absl::string_view name = OutputName(output);
    ModelInferResponse::InferOutputTensor* out = nullptr;
    switch (output) {
      case Output::kProbabilities:
        out = AddOutput(name, kFp32, {n, k}, response);
        break;
      case Output::kLabel:
        out = AddOutput(name, kInt64, {n}, response);
        break;
      case Output::kValue:
        out = AddOutput(name, kFp32, {n}, response);
        break;
    }
    std::string* bytes_out =
        raw ? response->add_raw_output_contents() : nullptr;
    auto put_float = [&](float v) {
      if (raw) {
        AppendLittleEndian(v, bytes_out);
      } else {
        out->mutable_contents()->add_fp32_contents(v);
      }
    };
    const int64_t elements = output == Output::kProbabilities ? n * k : n;
    if (raw) {
      bytes_out->reserve(elements * (output == Output::kLabel ? 8 : 4));
    } else if (output == Output::kLabel) {
      out->mutable_contents()->mutable_int64_contents()->Reserve(elements);
    } else {
      out->mutable_contents()->mutable_fp32_contents()->Reserve(elements);
    }
    for (int64_t i = 0; i < n; ++i) {
      switch (output) {
        case Output::kProbabilities:
          if (predictions.num_outputs > 1) {
            for (float p : predictions.probabilities(i)) put_float(p);
          } else {
            put_float(1.0f - predictions.value(i));
            put_float(predictions.value(i));
          }
          break;
        case Output::kLabel:
          if (raw) {
            AppendLittleEndian(int64_t{predictions.labels[i]}, bytes_out);
          } else {
            out->mutable_contents()->add_int64_contents(predictions.labels[i]);
          }
          break;
        case Output::kValue:
          put_float(predictions.num_outputs > 1
                        ? predictions.probabilities(i)[predictions.labels[i]]
                        : predictions.value(i));
          break;
      }
    }
  }
  return absl::OkStatus();
}

void VersionToOutput(uint64_t version, bool raw, ModelInferResponse* response) {
  ModelInferResponse::InferOutputTensor* out =
      AddOutput(kVersionOutput, kInt64, {1}, response);
  const int64_t value = static_cast<int64_t>(version);
  if (raw) {
    AppendLittleEndian(value, response->add_raw_output_contents());
  } else {
    out->mutable_contents()->add_int64_contents(value);
  }
}

absl::Status InferStatus(const absl::Status& status,
                         const InferInputs& inputs) {
  if (status.ok()) return status;
  absl::string_view text = status.message();
  int64_t row = 0;
  // The whole batch's outputs, too large to send (PredictOptions::
  // max_output_bytes).
  if (absl::ConsumePrefix(&text, "instances: ")) {
    return Renamed(status, "outputs", text);
  }
  if (absl::ConsumePrefix(&text, "instances[")) {
    if (!ConsumeIndex(&text, &row) || !absl::ConsumePrefix(&text, "].dense")) {
      return status;
    }
  } else if (absl::ConsumePrefix(&text, "examples[")) {
    if (!ConsumeIndex(&text, &row) || !absl::ConsumePrefix(&text, "]")) {
      return status;
    }
    if (absl::ConsumePrefix(&text, ".label: ") && inputs.label.has_value()) {
      return Renamed(
          status, absl::StrCat(inputs.label->values_path, "[", row, "]"), text);
    }
    if (absl::ConsumePrefix(&text, ".weight: ") && inputs.weight.has_value()) {
      return Renamed(status,
                     absl::StrCat(inputs.weight->values_path, "[", row, "]"),
                     text);
    }
    if (!absl::ConsumePrefix(&text, ".features.dense")) return status;
  } else {
    return status;
  }
  // A row's dense features: the whole row (its length: "has 3 values, the
  // model has num_features 4") or one element.
  if (absl::ConsumePrefix(&text, ": ")) {
    if (const size_t cut = text.find(" values, ");
        absl::StartsWith(text, "has ") && cut != absl::string_view::npos) {
      text.remove_prefix(cut + 9);
    }
    return Renamed(
        status, absl::StrCat("inputs[", inputs.features.index, "].shape[1]"),
        absl::StrCat("rows of ", inputs.columns(), " features, ", text));
  }
  return RenameElement(status, inputs, row, text);
}

void SpecToMetadata(const ModelSpec& spec,
                    inference::ModelMetadataResponse* response) {
  switch (spec.type) {
    case ModelType::kLinearRegression:
      response->set_platform("lepton_linear");
      break;
    case ModelType::kLogisticRegression:
      response->set_platform("lepton_logistic");
      break;
    case ModelType::kSoftmaxRegression:
      response->set_platform("lepton_softmax");
      break;
    case ModelType::kUnspecified:
      break;
  }
  auto add = [](auto* list, const char* name, const char* datatype,
                std::initializer_list<int64_t> shape) {
    auto* tensor = list->Add();
    tensor->set_name(name);
    tensor->set_datatype(datatype);
    for (int64_t d : shape) tensor->add_shape(d);
  };
  add(response->mutable_inputs(), kFeaturesInput, kFp32,
      {-1, spec.num_features});
  if (spec.is_classifier()) {
    const int64_t k =
        spec.type == ModelType::kSoftmaxRegression ? spec.num_classes : 2;
    add(response->mutable_outputs(), kProbabilitiesOutput, kFp32, {-1, k});
    add(response->mutable_outputs(), kLabelOutput, kInt64, {-1});
  }
  add(response->mutable_outputs(), kValueOutput, kFp32, {-1});
}

}  // namespace lepton::server
