// The Open Inference Protocol (inference.GRPCInferenceService) on the real
// lepton_server binary over loopback, on the same port as
// lepton.v1.ModelService: every RPC, both forms of tensor contents (contents
// and raw_input_contents), pinned versions, the online_learning extension,
// every error the service names, --max_batch and --max_message_bytes, bearer
// tokens, TLS and the drain. Predictions and learning are compared bit for
// bit with lepton.v1's Predict and Update on the same server.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;
using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using Rows = std::vector<std::vector<float>>;

constexpr char kAdminToken[] = "oip-test-admin-token-0123456789";
constexpr char kWriterToken[] = "oip-test-writer-token-0123456789";
constexpr char kReaderToken[] = "oip-test-reader-token-0123456789";

// `code` and a message starting with `prefix`.
::testing::AssertionResult IsError(const grpc::Status& s, grpc::StatusCode code,
                                   absl::string_view prefix) {
  if (s.error_code() != code || !absl::StartsWith(s.error_message(), prefix)) {
    return ::testing::AssertionFailure()
           << "expected code " << code << " and \"" << prefix
           << "...\", got code " << s.error_code() << " \"" << s.error_message()
           << "\"";
  }
  return ::testing::AssertionSuccess();
}

// INVALID_ARGUMENT naming exactly `path` ("<path>: <why>").
::testing::AssertionResult IsInvalid(const grpc::Status& s,
                                     absl::string_view path) {
  return IsError(s, grpc::StatusCode::INVALID_ARGUMENT,
                 absl::StrCat(path, ": "));
}

std::string LittleEndian(const std::vector<float>& values) {
  std::string bytes;
  for (float v : values) {
    uint32_t word = std::bit_cast<uint32_t>(v);
    for (int b = 0; b < 4; ++b) {
      bytes.push_back(static_cast<char>(word & 0xff));
      word >>= 8;
    }
  }
  return bytes;
}

// Adds an FP32 input tensor, its values in contents or in
// raw_input_contents.
void AddInput(ModelInferRequest* request, const std::string& name,
              std::vector<int64_t> shape, const std::vector<float>& values,
              bool raw) {
  ModelInferRequest::InferInputTensor* input = request->add_inputs();
  input->set_name(name);
  input->set_datatype("FP32");
  for (int64_t d : shape) input->add_shape(d);
  if (raw) {
    request->add_raw_input_contents(LittleEndian(values));
  } else {
    for (float v : values) input->mutable_contents()->add_fp32_contents(v);
  }
}

// A request for `rows` (the features tensor "features" [n, D]).
ModelInferRequest Request(const std::string& model, const Rows& rows, bool raw,
                          const std::string& version = "") {
  ModelInferRequest request;
  request.set_model_name(model);
  request.set_model_version(version);
  std::vector<float> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  AddInput(&request, "features",
           {static_cast<int64_t>(rows.size()),
            static_cast<int64_t>(rows.empty() ? 0 : rows[0].size())},
           flat, raw);
  return request;
}

// A learning request: the features, "label" and optionally "weight".
ModelInferRequest Learn(const std::string& model, const Rows& rows,
                        const std::vector<float>& labels, bool raw,
                        const std::vector<float>& weights = {}) {
  ModelInferRequest request = Request(model, rows, raw);
  AddInput(&request, "label", {static_cast<int64_t>(labels.size())}, labels,
           raw);
  if (!weights.empty()) {
    AddInput(&request, "weight", {static_cast<int64_t>(weights.size())},
             weights, raw);
  }
  return request;
}

// Output `name`'s index in the response; fails the test when missing.
int OutputIndex(const ModelInferResponse& response, const std::string& name) {
  for (int i = 0; i < response.outputs_size(); ++i) {
    if (response.outputs(i).name() == name) return i;
  }
  ADD_FAILURE() << "no output " << name << " in "
                << response.ShortDebugString();
  return -1;
}

std::vector<int64_t> Shape(const ModelInferResponse& response,
                           const std::string& name) {
  const int i = OutputIndex(response, name);
  if (i < 0) return {};
  const auto& shape = response.outputs(i).shape();
  return {shape.begin(), shape.end()};
}

// Output `name`'s values, from raw_output_contents when the response has
// them (as tritonclient's InferResult.as_numpy reads them), else contents.
template <typename T>
std::vector<T> Values(const ModelInferResponse& response,
                      const std::string& name) {
  const int i = OutputIndex(response, name);
  if (i < 0) return {};
  if (response.raw_output_contents_size() > 0) {
    const std::string& bytes = response.raw_output_contents(i);
    std::vector<T> values(bytes.size() / sizeof(T));
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
    return values;
  }
  const auto& contents = response.outputs(i).contents();
  if constexpr (std::is_same_v<T, float>) {
    return {contents.fp32_contents().begin(), contents.fp32_contents().end()};
  } else {
    return {contents.int64_contents().begin(), contents.int64_contents().end()};
  }
}

v1::ModelSpec Spec(v1::ModelType type, int64_t d, int32_t k = 0) {
  v1::ModelSpec spec;
  spec.set_type(type);
  spec.set_num_features(d);
  spec.set_num_classes(k);
  spec.set_minibatch_size(1);
  return spec;
}

// Three classes by which of x0..x2 is largest, D = 4 (x3 is noise).
Rows SoftmaxRows(int n, int seed) {
  Rows rows;
  for (int i = 0; i < n; ++i) {
    const int c = (i + seed) % 3;
    std::vector<float> row(4, 0.1f);
    row[c] = 0.9f;
    row[3] = static_cast<float>((i * 7 + seed) % 5) / 5.0f;
    rows.push_back(row);
  }
  return rows;
}

std::vector<float> SoftmaxLabels(int n, int seed) {
  std::vector<float> labels;
  for (int i = 0; i < n; ++i)
    labels.push_back(static_cast<float>((i + seed) % 3));
  return labels;
}

v1::UpdateRequest UpdateOf(const std::string& model, const Rows& rows,
                           const std::vector<float>& labels,
                           const std::vector<float>& weights = {}) {
  v1::UpdateRequest request;
  request.set_model(model);
  for (size_t i = 0; i < rows.size(); ++i) {
    v1::Example* e = request.add_examples();
    for (float x : rows[i]) e->mutable_features()->add_dense(x);
    e->set_label(labels[i]);
    if (!weights.empty()) e->set_weight(weights[i]);
  }
  return request;
}

v1::PredictRequest PredictOf(const std::string& model, const Rows& rows,
                             uint64_t version = 0) {
  v1::PredictRequest request;
  request.set_model(model);
  request.set_version(version);
  for (const auto& row : rows) {
    v1::Features* f = request.add_instances();
    for (float x : row) f->add_dense(x);
  }
  return request;
}

class InferenceProtocolTest : public ::testing::Test {
 protected:
  // A memory-only server with small limits, and both services' clients.
  void SetUp() override { StartServer({}); }

  void StartServer(std::vector<std::string> flags) {
    flags.insert(flags.begin(),
                 {"--data_dir=", "--max_batch=64", "--max_message_bytes=65536",
                  "--retained_versions=3", "--metrics_listen="});
    server_ = std::make_unique<ServerProcess>(kServerPath);
    ASSERT_TRUE(server_->Start(flags).ok()) << server_->err_text();
    channel_ = grpc::CreateChannel(server_->target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = GRPCInferenceService::NewStub(channel_);
    ClientOptions options;
    options.deadline = absl::Seconds(30);
    options.token = kAdminToken;  // ignored without --auth_tokens
    lepton_ = std::make_unique<Client>(channel_, options);
  }

  // One unary call of the inference service, with `token` if not empty.
  template <typename Request, typename Response, typename Method>
  grpc::Status Call(Method method, const Request& request, Response* response,
                    const std::string& token = "") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    if (!token.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    return ((*stub_).*method)(&context, request, response);
  }

  grpc::Status Infer(const ModelInferRequest& request,
                     ModelInferResponse* response,
                     const std::string& token = "") {
    return Call(&GRPCInferenceService::Stub::ModelInfer, request, response,
                token);
  }
  grpc::Status Infer(const ModelInferRequest& request) {
    ModelInferResponse response;
    return Infer(request, &response);
  }

  void Create(const std::string& name, const v1::ModelSpec& spec) {
    absl::StatusOr<v1::ModelInfo> info = lepton_->CreateModel(name, spec);
    ASSERT_TRUE(info.ok()) << info.status();
  }
  uint64_t VersionOf(const std::string& name) {
    absl::StatusOr<v1::ModelInfo> info = lepton_->GetModel(name);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->version() : 0;
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
  std::unique_ptr<Client> lepton_;
};

TEST_F(InferenceProtocolTest, ServerLiveReadyAndMetadata) {
  inference::ServerLiveResponse live;
  ASSERT_TRUE(Call(&GRPCInferenceService::Stub::ServerLive,
                   inference::ServerLiveRequest(), &live)
                  .ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(Call(&GRPCInferenceService::Stub::ServerReady,
                   inference::ServerReadyRequest(), &ready)
                  .ok());
  EXPECT_TRUE(ready.ready());
  inference::ServerMetadataResponse metadata;
  ASSERT_TRUE(Call(&GRPCInferenceService::Stub::ServerMetadata,
                   inference::ServerMetadataRequest(), &metadata)
                  .ok());
  EXPECT_EQ(metadata.name(), "lepton");
  EXPECT_EQ(metadata.version(), "0.1.0");
  ASSERT_EQ(metadata.extensions_size(), 1);
  EXPECT_EQ(metadata.extensions(0), "online_learning");
  // Health knows the service by name too.
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
      lepton_->Health("inference.GRPCInferenceService");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(InferenceProtocolTest, ModelReadyFollowsModelsAndRetainedVersions) {
  auto ready = [&](const std::string& name, const std::string& version,
                   grpc::Status* status = nullptr) {
    inference::ModelReadyRequest request;
    request.set_name(name);
    request.set_version(version);
    inference::ModelReadyResponse response;
    grpc::Status s =
        Call(&GRPCInferenceService::Stub::ModelReady, request, &response);
    if (status != nullptr) *status = s;
    EXPECT_TRUE(status != nullptr || s.ok()) << s.error_message();
    return response.ready();
  };
  EXPECT_FALSE(ready("m", ""));
  Create("m", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  EXPECT_TRUE(ready("m", ""));
  EXPECT_TRUE(ready("m", "1"));
  EXPECT_FALSE(ready("m", "2"));
  // Four updates: versions 3 to 5 are retained, 1 no longer.
  for (int seed = 0; seed < 4; ++seed) {
    ASSERT_TRUE(lepton_
                    ->Update(UpdateOf("m", SoftmaxRows(6, seed),
                                      SoftmaxLabels(6, seed)))
                    .ok());
  }
  EXPECT_FALSE(ready("m", "1"));
  EXPECT_FALSE(ready("m", "2"));
  EXPECT_TRUE(ready("m", "3"));
  EXPECT_TRUE(ready("m", "5"));
  EXPECT_FALSE(ready("m", "6"));
  ASSERT_TRUE(lepton_->DeleteModel("m").ok());
  EXPECT_FALSE(ready("m", ""));

  grpc::Status status;
  for (const char* bad : {"abc", "0", "-1", "1.0", " 1"}) {
    SCOPED_TRACE(bad);
    ready("m", bad, &status);
    EXPECT_TRUE(IsInvalid(status, "version"));
  }
}

TEST_F(InferenceProtocolTest, ModelMetadataDescribesEachModelType) {
  Create("soft", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  Create("logit", Spec(v1::LOGISTIC_REGRESSION, 2));
  Create("lin", Spec(v1::LINEAR_REGRESSION, 5));
  for (int seed = 0; seed < 3; ++seed) {
    ASSERT_TRUE(lepton_
                    ->Update(UpdateOf("soft", SoftmaxRows(6, seed),
                                      SoftmaxLabels(6, seed)))
                    .ok());
  }
  auto metadata = [&](const std::string& name, const std::string& version,
                      inference::ModelMetadataResponse* response) {
    inference::ModelMetadataRequest request;
    request.set_name(name);
    request.set_version(version);
    return Call(&GRPCInferenceService::Stub::ModelMetadata, request, response);
  };
  auto tensor = [](const auto& t) {
    return absl::StrCat(t.name(), " ", t.datatype(), " [",
                        absl::StrJoin(t.shape(), ","), "]");
  };

  inference::ModelMetadataResponse soft;
  ASSERT_TRUE(metadata("soft", "", &soft).ok());
  EXPECT_EQ(soft.name(), "soft");
  EXPECT_EQ(absl::StrJoin(soft.versions(), ","), "2,3,4");  // retained
  EXPECT_EQ(soft.platform(), "lepton_softmax");
  ASSERT_EQ(soft.inputs_size(), 1);
  EXPECT_EQ(tensor(soft.inputs(0)), "features FP32 [-1,4]");
  ASSERT_EQ(soft.outputs_size(), 3);
  EXPECT_EQ(tensor(soft.outputs(0)), "probabilities FP32 [-1,3]");
  EXPECT_EQ(tensor(soft.outputs(1)), "label INT64 [-1]");
  EXPECT_EQ(tensor(soft.outputs(2)), "value FP32 [-1]");
  inference::ModelMetadataResponse pinned;
  ASSERT_TRUE(metadata("soft", "3", &pinned).ok());
  EXPECT_EQ(pinned.name(), "soft");

  inference::ModelMetadataResponse logit;
  ASSERT_TRUE(metadata("logit", "", &logit).ok());
  EXPECT_EQ(logit.platform(), "lepton_logistic");
  EXPECT_EQ(absl::StrJoin(logit.versions(), ","), "1");
  EXPECT_EQ(tensor(logit.inputs(0)), "features FP32 [-1,2]");
  ASSERT_EQ(logit.outputs_size(), 3);
  EXPECT_EQ(tensor(logit.outputs(0)), "probabilities FP32 [-1,2]");

  inference::ModelMetadataResponse lin;
  ASSERT_TRUE(metadata("lin", "", &lin).ok());
  EXPECT_EQ(lin.platform(), "lepton_linear");
  EXPECT_EQ(tensor(lin.inputs(0)), "features FP32 [-1,5]");
  ASSERT_EQ(lin.outputs_size(), 1);
  EXPECT_EQ(tensor(lin.outputs(0)), "value FP32 [-1]");

  inference::ModelMetadataResponse unused;
  EXPECT_TRUE(IsError(metadata("nope", "", &unused),
                      grpc::StatusCode::NOT_FOUND, "model \"nope\" not found"));
  EXPECT_EQ(metadata("soft", "1", &unused).error_code(),
            grpc::StatusCode::NOT_FOUND);  // no longer retained
  EXPECT_EQ(metadata("soft", "9", &unused).error_code(),
            grpc::StatusCode::NOT_FOUND);  // not yet
  EXPECT_TRUE(IsInvalid(metadata("soft", "x", &unused), "version"));
}

// ModelInfer answers what lepton.v1's Predict answers, bit for bit, in the
// form of the request: raw_output_contents for raw_input_contents, contents
// otherwise.
TEST_F(InferenceProtocolTest, ModelInferMatchesPredictInBothForms) {
  Create("m", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  ASSERT_TRUE(
      lepton_->Update(UpdateOf("m", SoftmaxRows(30, 1), SoftmaxLabels(30, 1)))
          .ok());
  const Rows probe = SoftmaxRows(5, 2);
  absl::StatusOr<v1::PredictResponse> expected =
      lepton_->Predict(PredictOf("m", probe));
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->version(), 2u);

  for (bool raw : {false, true}) {
    SCOPED_TRACE(raw ? "raw_input_contents" : "contents");
    ModelInferRequest request = Request("m", probe, raw);
    request.set_id(raw ? "req-raw" : "req-contents");
    ModelInferResponse response;
    grpc::Status s = Infer(request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.model_name(), "m");
    EXPECT_EQ(response.model_version(), "2");
    EXPECT_EQ(response.id(), request.id());
    // Every output by default, in this order.
    ASSERT_EQ(response.outputs_size(), 3);
    EXPECT_EQ(response.outputs(0).name(), "probabilities");
    EXPECT_EQ(response.outputs(0).datatype(), "FP32");
    EXPECT_EQ(response.outputs(1).name(), "label");
    EXPECT_EQ(response.outputs(1).datatype(), "INT64");
    EXPECT_EQ(response.outputs(2).name(), "value");
    EXPECT_EQ(response.outputs(2).datatype(), "FP32");
    EXPECT_EQ(response.raw_output_contents_size(), raw ? 3 : 0);
    if (raw) {
      for (const auto& output : response.outputs()) {
        EXPECT_FALSE(output.has_contents()) << output.name();
      }
    }
    EXPECT_EQ(Shape(response, "probabilities"), (std::vector<int64_t>{5, 3}));
    EXPECT_EQ(Shape(response, "label"), (std::vector<int64_t>{5}));
    EXPECT_EQ(Shape(response, "value"), (std::vector<int64_t>{5}));
    const std::vector<float> probabilities =
        Values<float>(response, "probabilities");
    const std::vector<int64_t> labels = Values<int64_t>(response, "label");
    const std::vector<float> values = Values<float>(response, "value");
    ASSERT_EQ(probabilities.size(), 15u);
    ASSERT_EQ(labels.size(), 5u);
    ASSERT_EQ(values.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      const v1::Prediction& p = expected->predictions(i);
      EXPECT_EQ(labels[i], p.label());
      EXPECT_EQ(std::bit_cast<uint32_t>(values[i]),
                std::bit_cast<uint32_t>(p.value()));
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(std::bit_cast<uint32_t>(probabilities[i * 3 + c]),
                  std::bit_cast<uint32_t>(p.probabilities(c)));
      }
    }
    // Learned: each probe's largest feature is its class.
    for (int i = 0; i < 5; ++i) EXPECT_EQ(labels[i], (i + 2) % 3);
  }
}

TEST_F(InferenceProtocolTest, RequestedOutputsByNameAndModelType) {
  Create("soft", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  Create("logit", Spec(v1::LOGISTIC_REGRESSION, 2));
  Create("lin", Spec(v1::LINEAR_REGRESSION, 2));
  ASSERT_TRUE(lepton_
                  ->Update(UpdateOf("logit", {{1, 0}, {0, 1}, {1, 0}, {0, 1}},
                                    {1, 0, 1, 0}))
                  .ok());
  ASSERT_TRUE(lepton_->Update(UpdateOf("lin", {{1, 0}, {0, 1}}, {3, -2})).ok());

  ModelInferRequest request = Request("soft", SoftmaxRows(2, 0), true);
  request.add_outputs()->set_name("value");
  request.add_outputs()->set_name("probabilities");
  ModelInferResponse response;
  ASSERT_TRUE(Infer(request, &response).ok());
  ASSERT_EQ(response.outputs_size(), 2);
  EXPECT_EQ(response.outputs(0).name(), "value");
  EXPECT_EQ(response.outputs(1).name(), "probabilities");
  EXPECT_EQ(response.raw_output_contents_size(), 2);

  // Logistic: probabilities are [P(y = 0), P(y = 1)], value is P(y = 1).
  const Rows probe = {{1, 0}, {0, 1}, {0.5f, 0.5f}};
  absl::StatusOr<v1::PredictResponse> expected =
      lepton_->Predict(PredictOf("logit", probe));
  ASSERT_TRUE(expected.ok());
  response.Clear();
  ASSERT_TRUE(Infer(Request("logit", probe, false), &response).ok());
  EXPECT_EQ(Shape(response, "probabilities"), (std::vector<int64_t>{3, 2}));
  const std::vector<float> p = Values<float>(response, "probabilities");
  const std::vector<float> v = Values<float>(response, "value");
  const std::vector<int64_t> label = Values<int64_t>(response, "label");
  ASSERT_EQ(p.size(), 6u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(v[i], expected->predictions(i).value());
    EXPECT_EQ(p[2 * i + 1], expected->predictions(i).value());
    EXPECT_EQ(p[2 * i], 1.0f - expected->predictions(i).value());
    EXPECT_EQ(label[i], expected->predictions(i).label());
  }
  EXPECT_EQ(label[0], 1);
  EXPECT_EQ(label[1], 0);

  // Linear: the value only, by default and by name.
  expected = lepton_->Predict(PredictOf("lin", probe));
  ASSERT_TRUE(expected.ok());
  for (bool named : {false, true}) {
    ModelInferRequest lin = Request("lin", probe, true);
    if (named) lin.add_outputs()->set_name("value");
    response.Clear();
    ASSERT_TRUE(Infer(lin, &response).ok());
    ASSERT_EQ(response.outputs_size(), 1);
    const std::vector<float> values = Values<float>(response, "value");
    ASSERT_EQ(values.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(values[i], expected->predictions(i).value());
    }
  }
  EXPECT_GT(Values<float>(response, "value")[0], 0.0f);  // learned 3
}

TEST_F(InferenceProtocolTest, PinnedVersionsAnswerAsPredictDoes) {
  Create("m", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  for (int seed = 0; seed < 3; ++seed) {
    ASSERT_TRUE(lepton_
                    ->Update(UpdateOf("m", SoftmaxRows(9, seed),
                                      SoftmaxLabels(9, seed)))
                    .ok());
  }
  // Versions 2, 3 and 4 are retained.
  const Rows probe = SoftmaxRows(3, 1);
  for (uint64_t version : {2, 3, 4}) {
    SCOPED_TRACE(version);
    absl::StatusOr<v1::PredictResponse> expected =
        lepton_->Predict(PredictOf("m", probe, version));
    ASSERT_TRUE(expected.ok());
    ModelInferResponse response;
    ASSERT_TRUE(
        Infer(Request("m", probe, true, absl::StrCat(version)), &response)
            .ok());
    EXPECT_EQ(response.model_version(), absl::StrCat(version));
    const std::vector<float> p = Values<float>(response, "probabilities");
    ASSERT_EQ(p.size(), 9u);
    for (int i = 0; i < 3; ++i) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(p[i * 3 + c], expected->predictions(i).probabilities(c));
      }
    }
  }
  // Versions 2 and 4 differ: the pin is honoured.
  ModelInferResponse v2, v4;
  ASSERT_TRUE(Infer(Request("m", probe, true, "2"), &v2).ok());
  ASSERT_TRUE(Infer(Request("m", probe, true, "4"), &v4).ok());
  EXPECT_NE(Values<float>(v2, "probabilities"),
            Values<float>(v4, "probabilities"));

  EXPECT_TRUE(IsError(Infer(Request("m", probe, true, "1")),
                      grpc::StatusCode::NOT_FOUND, "version 1"));
  EXPECT_EQ(Infer(Request("m", probe, true, "5")).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(
      IsInvalid(Infer(Request("m", probe, true, "v2")), "model_version"));
  EXPECT_TRUE(
      IsInvalid(Infer(Request("m", probe, true, "0")), "model_version"));
  EXPECT_TRUE(IsError(Infer(Request("nope", probe, true)),
                      grpc::StatusCode::NOT_FOUND, "model \"nope\" not found"));
}

// A ModelInfer with a "label" input learns as Update does: the same weights
// bit for bit (a twin model fed through Update), the new version in
// model_version and in the output "version".
TEST_F(InferenceProtocolTest, OnlineLearningExtensionLearnsAsUpdateDoes) {
  Create("oip", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  Create("twin", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  const Rows probe = SoftmaxRows(6, 5);
  uint64_t version = 1;
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE(seed);
    const bool raw = seed % 2 == 1;
    const Rows rows = SoftmaxRows(8, seed);
    const std::vector<float> labels = SoftmaxLabels(8, seed);
    // Weights on the second and fourth calls.
    std::vector<float> weights;
    if (seed % 2 == 1) {
      for (int i = 0; i < 8; ++i) weights.push_back(0.5f + 0.25f * i);
    }
    ModelInferRequest request = Learn("oip", rows, labels, raw, weights);
    request.set_id(absl::StrCat("learn-", seed));
    if (seed == 3) request.add_outputs()->set_name("version");
    ModelInferResponse response;
    grpc::Status s = Infer(request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ++version;
    EXPECT_EQ(response.model_name(), "oip");
    EXPECT_EQ(response.model_version(), absl::StrCat(version));
    EXPECT_EQ(response.id(), request.id());
    ASSERT_EQ(response.outputs_size(), 1);
    EXPECT_EQ(response.outputs(0).name(), "version");
    EXPECT_EQ(response.outputs(0).datatype(), "INT64");
    EXPECT_EQ(Shape(response, "version"), (std::vector<int64_t>{1}));
    EXPECT_EQ(response.raw_output_contents_size(), raw ? 1 : 0);
    EXPECT_EQ(Values<int64_t>(response, "version"),
              (std::vector<int64_t>{static_cast<int64_t>(version)}));

    ASSERT_TRUE(lepton_->Update(UpdateOf("twin", rows, labels, weights)).ok());
  }
  absl::StatusOr<v1::ModelInfo> info = lepton_->GetModel("oip");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 5u);
  EXPECT_EQ(info->examples_seen(), 32u);
  absl::StatusOr<v1::PredictResponse> learned =
      lepton_->Predict(PredictOf("oip", probe));
  absl::StatusOr<v1::PredictResponse> twin =
      lepton_->Predict(PredictOf("twin", probe));
  ASSERT_TRUE(learned.ok() && twin.ok());
  for (int i = 0; i < 6; ++i) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(
          std::bit_cast<uint32_t>(learned->predictions(i).probabilities(c)),
          std::bit_cast<uint32_t>(twin->predictions(i).probabilities(c)));
    }
  }
  // And the model learned the rule.
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(learned->predictions(i).label(), (i + 5) % 3);

  // A logistic and a linear model learn the same way.
  Create("logit", Spec(v1::LOGISTIC_REGRESSION, 2));
  ModelInferResponse response;
  ASSERT_TRUE(
      Infer(Learn("logit", {{1, 0}, {0, 1}}, {1, 0}, true), &response).ok());
  EXPECT_EQ(response.model_version(), "2");
  Create("lin", Spec(v1::LINEAR_REGRESSION, 1));
  response.Clear();
  ASSERT_TRUE(
      Infer(Learn("lin", {{1}, {2}}, {2.5f, 5}, false), &response).ok());
  EXPECT_EQ(response.model_version(), "2");
}

// The update_id parameter makes a learning call's retry safe: the retry
// answers the original version and learns nothing.
TEST_F(InferenceProtocolTest, UpdateIdParameterMakesRetriesSafe) {
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));
  ModelInferRequest request = Learn("m", {{1, 0}, {0, 1}}, {1, 0}, true);
  (*request.mutable_parameters())["update_id"].set_string_param("batch-17");
  for (int attempt = 0; attempt < 2; ++attempt) {
    ModelInferResponse response;
    ASSERT_TRUE(Infer(request, &response).ok());
    EXPECT_EQ(response.model_version(), "2");
    EXPECT_EQ(Values<int64_t>(response, "version"), (std::vector<int64_t>{2}));
  }
  EXPECT_EQ(VersionOf("m"), 2u);
  absl::StatusOr<v1::ModelInfo> info = lepton_->GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->examples_seen(), 2u);

  (*request.mutable_parameters())["update_id"].set_int64_param(17);
  EXPECT_TRUE(IsInvalid(Infer(request), "parameters[update_id]"));
  ModelInferRequest predict = Request("m", {{1, 0}}, true);
  (*predict.mutable_parameters())["update_id"].set_string_param("x");
  EXPECT_TRUE(IsInvalid(Infer(predict), "parameters[update_id]"));
  EXPECT_EQ(VersionOf("m"), 2u);
}

// A learning call that is refused changes nothing: the same version and
// counters, whatever row is at fault.
TEST_F(InferenceProtocolTest, LearningErrorsApplyNothing) {
  Create("m", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  const Rows rows = SoftmaxRows(4, 0);
  std::vector<float> labels = SoftmaxLabels(4, 0);

  std::vector<float> bad_labels = labels;
  bad_labels[3] = 3;  // K = 3
  EXPECT_TRUE(IsInvalid(Infer(Learn("m", rows, bad_labels, false)),
                        "inputs[1].contents.fp32_contents[3]"));
  bad_labels[3] = 0.5f;
  EXPECT_TRUE(IsInvalid(Infer(Learn("m", rows, bad_labels, true)),
                        "raw_input_contents[1][3]"));
  EXPECT_TRUE(IsInvalid(Infer(Learn("m", rows, labels, true, {1, -1, 1, 1})),
                        "raw_input_contents[2][1]"));
  Rows nan_rows = rows;
  nan_rows[2][1] = std::numeric_limits<float>::quiet_NaN();
  grpc::Status s = Infer(Learn("m", nan_rows, labels, false));
  EXPECT_TRUE(IsInvalid(s, "inputs[0].contents.fp32_contents[9]"));
  EXPECT_TRUE(absl::StrContains(s.error_message(), "(row 2, column 1)"))
      << s.error_message();

  ModelInferRequest pinned = Learn("m", rows, labels, false);
  pinned.set_model_version("1");
  EXPECT_TRUE(IsInvalid(Infer(pinned), "model_version"));
  ModelInferRequest outputs = Learn("m", rows, labels, false);
  outputs.add_outputs()->set_name("probabilities");
  EXPECT_TRUE(IsInvalid(Infer(outputs), "outputs[0].name"));
  ModelInferRequest twice = Learn("m", rows, labels, false);
  twice.add_outputs()->set_name("version");
  twice.add_outputs()->set_name("version");
  EXPECT_TRUE(IsInvalid(Infer(twice), "outputs[1].name"));
  EXPECT_TRUE(IsInvalid(Infer(Learn("m", rows, {0, 1, 2}, false)),
                        "inputs[1].shape[0]"));
  EXPECT_TRUE(IsInvalid(Infer(Learn("m", rows, labels, false, {1, 1})),
                        "inputs[2].shape[0]"));
  ModelInferRequest label_2d = Request("m", rows, false);
  AddInput(&label_2d, "label", {4, 1}, labels, false);
  EXPECT_TRUE(IsInvalid(Infer(label_2d), "inputs[1].shape"));
  ModelInferRequest weight_only = Request("m", rows, false);
  AddInput(&weight_only, "weight", {4}, {1, 1, 1, 1}, false);
  EXPECT_TRUE(IsInvalid(Infer(weight_only), "inputs[1].name"));
  ModelInferRequest two_labels = Learn("m", rows, labels, false);
  AddInput(&two_labels, "label", {4}, labels, false);
  EXPECT_TRUE(IsInvalid(Infer(two_labels), "inputs[2].name"));
  EXPECT_TRUE(IsError(Infer(Learn("nope", rows, labels, false)),
                      grpc::StatusCode::NOT_FOUND, "model \"nope\" not found"));

  absl::StatusOr<v1::ModelInfo> info = lepton_->GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 1u);
  EXPECT_EQ(info->examples_seen(), 0u);
  EXPECT_EQ(info->updates(), 0u);
}

// Every wire error of a prediction, each naming its field path.
TEST_F(InferenceProtocolTest, WireErrorsNameTheirFieldPath) {
  Create("m", Spec(v1::SOFTMAX_REGRESSION, 4, 3));
  Create("lin", Spec(v1::LINEAR_REGRESSION, 4));
  const Rows rows = SoftmaxRows(2, 0);

  ModelInferRequest none;
  none.set_model_name("m");
  EXPECT_TRUE(IsInvalid(Infer(none), "inputs"));

  ModelInferRequest datatype = Request("m", rows, false);
  datatype.mutable_inputs(0)->set_datatype("INT64");
  EXPECT_TRUE(IsInvalid(Infer(datatype), "inputs[0].datatype"));

  ModelInferRequest flat = Request("m", rows, false);
  flat.mutable_inputs(0)->clear_shape();
  flat.mutable_inputs(0)->add_shape(8);
  EXPECT_TRUE(IsInvalid(Infer(flat), "inputs[0].shape"));

  ModelInferRequest empty = Request("m", {}, false);
  EXPECT_TRUE(IsInvalid(Infer(empty), "inputs[0].shape[0]"));

  ModelInferRequest negative = Request("m", rows, true);
  negative.mutable_inputs(0)->set_shape(1, -4);
  EXPECT_TRUE(IsInvalid(Infer(negative), "inputs[0].shape[1]"));

  // A shape whose element count overflows int64 allocates nothing.
  ModelInferRequest huge = Request("m", rows, true);
  huge.mutable_inputs(0)->set_shape(0, int64_t{1} << 40);
  huge.mutable_inputs(0)->set_shape(1, int64_t{1} << 40);
  EXPECT_TRUE(IsInvalid(Infer(huge), "inputs[0].shape"));
  // A large one within int64 is believed only with its bytes; --max_batch
  // comes after the sizes.
  huge.mutable_inputs(0)->set_shape(0, int64_t{1} << 30);
  huge.mutable_inputs(0)->set_shape(1, 4);
  EXPECT_TRUE(IsInvalid(Infer(huge), "raw_input_contents[0]"));

  ModelInferRequest short_contents = Request("m", rows, false);
  short_contents.mutable_inputs(0)
      ->mutable_contents()
      ->mutable_fp32_contents()
      ->RemoveLast();
  EXPECT_TRUE(
      IsInvalid(Infer(short_contents), "inputs[0].contents.fp32_contents"));

  ModelInferRequest typed = Request("m", rows, false);
  typed.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
  EXPECT_TRUE(IsInvalid(Infer(typed), "inputs[0].contents"));

  ModelInferRequest short_raw = Request("m", rows, true);
  short_raw.mutable_raw_input_contents(0)->pop_back();
  EXPECT_TRUE(IsInvalid(Infer(short_raw), "raw_input_contents[0]"));

  ModelInferRequest extra_raw = Request("m", rows, true);
  extra_raw.add_raw_input_contents("abcd");
  EXPECT_TRUE(IsInvalid(Infer(extra_raw), "raw_input_contents"));

  ModelInferRequest mixed = Request("m", rows, true);
  mixed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  EXPECT_TRUE(IsInvalid(Infer(mixed), "inputs[0].contents"));

  ModelInferRequest two = Request("m", rows, false);
  AddInput(&two, "more", {2, 4}, std::vector<float>(8, 0.5f), false);
  EXPECT_TRUE(IsInvalid(Infer(two), "inputs[1].name"));

  // What the core finds, renamed to the request's paths.
  grpc::Status s = Infer(Request("m", {{1, 2, 3}, {4, 5, 6}}, false));
  EXPECT_TRUE(IsInvalid(s, "inputs[0].shape[1]"));
  EXPECT_TRUE(absl::StrContains(s.error_message(), "num_features 4"))
      << s.error_message();
  Rows inf_rows = rows;
  inf_rows[1][2] = std::numeric_limits<float>::infinity();
  s = Infer(Request("m", inf_rows, true));
  EXPECT_TRUE(IsInvalid(s, "raw_input_contents[0][6]"));
  EXPECT_TRUE(
      absl::StrContains(s.error_message(), "not finite (row 1, column 2)"))
      << s.error_message();

  ModelInferRequest unknown = Request("m", rows, false);
  unknown.add_outputs()->set_name("scores");
  EXPECT_TRUE(IsInvalid(Infer(unknown), "outputs[0].name"));
  ModelInferRequest twice = Request("m", rows, false);
  twice.add_outputs()->set_name("label");
  twice.add_outputs()->set_name("label");
  EXPECT_TRUE(IsInvalid(Infer(twice), "outputs[1].name"));
  ModelInferRequest classification = Request("m", rows, false);
  auto* output = classification.add_outputs();
  output->set_name("label");
  (*output->mutable_parameters())["classification"].set_int64_param(2);
  EXPECT_TRUE(IsInvalid(Infer(classification), "outputs[0].parameters"));
  ModelInferRequest linear_label = Request("lin", rows, false);
  linear_label.add_outputs()->set_name("label");
  EXPECT_TRUE(IsInvalid(Infer(linear_label), "outputs[0].name"));

  EXPECT_TRUE(IsError(Infer(Request("nope", rows, false)),
                      grpc::StatusCode::NOT_FOUND, "model \"nope\" not found"));
}

// --max_batch bounds the rows, --max_message_bytes the outputs (and gRPC the
// request).
TEST_F(InferenceProtocolTest, LimitsOfTheServer) {
  Create("m", Spec(v1::SOFTMAX_REGRESSION, 1, 1000));
  const Rows too_many(65, std::vector<float>{0.5f});  // --max_batch=64
  for (bool raw : {false, true}) {
    EXPECT_TRUE(IsError(Infer(Request("m", too_many, raw)),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "inputs[0].shape[0]: 65 items exceed the server's "
                        "limit of 64 (--max_batch)"));
  }
  EXPECT_TRUE(
      IsError(Infer(Learn("m", too_many, std::vector<float>(65, 0), true)),
              grpc::StatusCode::RESOURCE_EXHAUSTED, "inputs[0].shape[0]"));
  // 20 rows of 1000 probabilities: 80 KB, above --max_message_bytes=65536.
  const Rows rows(20, std::vector<float>{0.5f});
  EXPECT_TRUE(IsError(Infer(Request("m", rows, true)),
                      grpc::StatusCode::RESOURCE_EXHAUSTED, "outputs: "));
  // Without the probabilities they fit.
  ModelInferRequest labels = Request("m", rows, true);
  labels.add_outputs()->set_name("label");
  ModelInferResponse response;
  ASSERT_TRUE(Infer(labels, &response).ok());
  EXPECT_EQ(Values<int64_t>(response, "label").size(), 20u);
  // A request above the limit is gRPC's to refuse.
  const Rows wide(64, std::vector<float>(300, 0.5f));
  EXPECT_EQ(Infer(Request("m", wide, true)).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// /metrics counts the protocol's calls by method and code (ServerLive and
// ServerReady, probes, as "other" like health checks).
TEST_F(InferenceProtocolTest, MetricsCountTheCallsByMethod) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--metrics_listen=127.0.0.1:0"}));
  ASSERT_GT(server_->metrics_port(), 0);
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));
  ASSERT_TRUE(Infer(Request("m", {{1, 0}}, true)).ok());
  ASSERT_TRUE(Infer(Learn("m", {{1, 0}}, {1}, true)).ok());
  EXPECT_TRUE(
      IsInvalid(Infer(Request("m", {{1, 0, 0}}, true)), "inputs[0].shape[1]"));
  inference::ModelMetadataRequest metadata;
  metadata.set_name("m");
  inference::ModelMetadataResponse metadata_response;
  ASSERT_TRUE(Call(&GRPCInferenceService::Stub::ModelMetadata, metadata,
                   &metadata_response)
                  .ok());
  RunResult scrape = lepton::testing::Run(
      {"/usr/bin/curl", "-sS", "--max-time", "10",
       absl::StrCat("http://127.0.0.1:", server_->metrics_port(), "/metrics")});
  ASSERT_EQ(scrape.exit_code, 0) << scrape.err;
  for (const char* line :
       {"lepton_requests_total{code=\"OK\",method=\"ModelInfer\"} 2\n",
        "lepton_requests_total{code=\"INVALID_ARGUMENT\",method="
        "\"ModelInfer\"} 1\n",
        "lepton_requests_total{code=\"OK\",method=\"ModelMetadata\"} 1\n",
        "lepton_request_duration_seconds_count{method=\"ModelInfer\"} 3\n"}) {
    EXPECT_TRUE(absl::StrContains(scrape.out, line)) << line << scrape.out;
  }
}

// Tokens: ServerLive and ServerReady are open, the rest need a reader, and
// learning a writer; over TLS as over plaintext.
class InferenceProtocolSecurityTest : public InferenceProtocolTest {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TestScratchDir>("lepton-oip-test");
    ASSERT_FALSE(dir_->path().empty());
    std::ofstream(dir_->Path("tokens.txt")) << kAdminToken << " admin\n"
                                            << kWriterToken << " writer\n"
                                            << kReaderToken << " reader\n";
  }

  void OpenSsl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult result = lepton::testing::Run(argv);
    ASSERT_EQ(result.exit_code, 0) << args[0] << ": " << result.err;
  }

  std::unique_ptr<TestScratchDir> dir_;
};

TEST_F(InferenceProtocolSecurityTest, TokensAndRoles) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--auth_tokens=" + dir_->Path("tokens.txt")}));
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));
  // Probes need no token.
  inference::ServerLiveResponse live;
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ServerLive,
                   inference::ServerLiveRequest(), &live)
                  .ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ServerReady,
                   inference::ServerReadyRequest(), &ready)
                  .ok());
  EXPECT_TRUE(ready.ready());

  // The rest need a reader's token.
  inference::ServerMetadataResponse server_metadata;
  inference::ModelReadyRequest model_ready;
  model_ready.set_name("m");
  inference::ModelReadyResponse model_ready_response;
  inference::ModelMetadataRequest model_metadata;
  model_metadata.set_name("m");
  inference::ModelMetadataResponse model_metadata_response;
  const ModelInferRequest predict = Request("m", {{1, 0}}, true);
  ModelInferResponse infer_response;
  for (const std::string token : {"", "not-a-known-token-0123456789"}) {
    SCOPED_TRACE(token);
    EXPECT_EQ(Call(&GRPCInferenceService::Stub::ServerMetadata,
                   inference::ServerMetadataRequest(), &server_metadata, token)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Call(&GRPCInferenceService::Stub::ModelReady, model_ready,
                   &model_ready_response, token)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Call(&GRPCInferenceService::Stub::ModelMetadata, model_metadata,
                   &model_metadata_response, token)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Infer(predict, &infer_response, token).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ServerMetadata,
                   inference::ServerMetadataRequest(), &server_metadata,
                   kReaderToken)
                  .ok());
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ModelReady, model_ready,
                   &model_ready_response, kReaderToken)
                  .ok());
  EXPECT_TRUE(model_ready_response.ready());
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ModelMetadata, model_metadata,
                   &model_metadata_response, kReaderToken)
                  .ok());
  EXPECT_TRUE(Infer(predict, &infer_response, kReaderToken).ok());

  // Learning needs a writer; a reader's attempt applies nothing.
  const ModelInferRequest learn = Learn("m", {{1, 0}, {0, 1}}, {1, 0}, true);
  EXPECT_TRUE(IsError(Infer(learn, &infer_response, kReaderToken),
                      grpc::StatusCode::PERMISSION_DENIED,
                      "inference.GRPCInferenceService/ModelInfer with a label "
                      "input (online_learning): needs role writer or higher; "
                      "the caller's token has role reader"));
  EXPECT_EQ(Infer(learn, &infer_response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(VersionOf("m"), 1u);
  infer_response.Clear();
  ASSERT_TRUE(Infer(learn, &infer_response, kWriterToken).ok());
  EXPECT_EQ(infer_response.model_version(), "2");
  EXPECT_EQ(VersionOf("m"), 2u);
}

TEST_F(InferenceProtocolSecurityTest, TlsOnTheSamePort) {
  const std::string ext = dir_->Path("server.ext");
  std::ofstream(ext) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n";
  ASSERT_NO_FATAL_FAILURE(
      OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
               "/CN=Lepton OIP test CA", "-keyout", dir_->Path("ca.key"),
               "-out", dir_->Path("ca.pem")}));
  ASSERT_NO_FATAL_FAILURE(OpenSsl(
      {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-subj", "/CN=localhost", "-keyout", dir_->Path("server.key"),
       "-out", dir_->Path("server.csr")}));
  ASSERT_NO_FATAL_FAILURE(OpenSsl(
      {"x509", "-req", "-in", dir_->Path("server.csr"), "-CA",
       dir_->Path("ca.pem"), "-CAkey", dir_->Path("ca.key"), "-set_serial", "1",
       "-days", "1", "-extfile", ext, "-out", dir_->Path("server.pem")}));
  server_ = std::make_unique<ServerProcess>(kServerPath);
  ASSERT_TRUE(server_
                  ->Start({"--data_dir=", "--metrics_listen=",
                           "--tls_cert=" + dir_->Path("server.pem"),
                           "--tls_key=" + dir_->Path("server.key"),
                           "--auth_tokens=" + dir_->Path("tokens.txt")})
                  .ok())
      << server_->err_text();
  std::ifstream ca_file(dir_->Path("ca.pem"));
  std::stringstream ca;
  ca << ca_file.rdbuf();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.str();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  channel_ = grpc::CreateCustomChannel(server_->target(),
                                       grpc::SslCredentials(ssl), args);
  stub_ = GRPCInferenceService::NewStub(channel_);
  ClientOptions options;
  options.token = kAdminToken;
  lepton_ = std::make_unique<Client>(channel_, options);
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));

  ModelInferResponse response;
  grpc::Status s = Infer(Learn("m", {{1, 0}, {0, 1}}, {1, 0}, false), &response,
                         kWriterToken);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.model_version(), "2");
  response.Clear();
  s = Infer(Request("m", {{1, 0}}, false), &response, kReaderToken);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Values<int64_t>(response, "label"), (std::vector<int64_t>{1}));

  // Plaintext gets no answer, not even a probe.
  auto plain = GRPCInferenceService::NewStub(grpc::CreateChannel(
      server_->target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  inference::ServerLiveResponse live;
  EXPECT_EQ(plain->ServerLive(&context, inference::ServerLiveRequest(), &live)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// From SIGTERM on, ServerReady says false (as health says NOT_SERVING) while
// the accepted updates finish, and ModelInfer is UNAVAILABLE.
TEST_F(InferenceProtocolTest, ServerReadyTurnsFalseWhenTheDrainStarts) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--update_threads=1", "--max_batch=4096",
                   "--max_message_bytes=67108864", "--drain_seconds=120"}));
  constexpr int kD = 512;
  Create("m", Spec(v1::LINEAR_REGRESSION, kD));
  // An update that keeps the one worker busy for about a second here (more
  // on a slower machine): 4096 examples of 512 features, 1000 epochs, one
  // step per example.
  v1::UpdateRequest slow;
  slow.set_model("m");
  slow.set_epochs(1000);
  for (int i = 0; i < 4096; ++i) {
    v1::Example* e = slow.add_examples();
    for (int j = 0; j < kD; ++j) {
      e->mutable_features()->add_dense(static_cast<float>((i + j) % 7) / 7.0f);
    }
    e->set_label(static_cast<float>(i % 3));
  }
  absl::Status slow_status;
  absl::Duration slow_time;
  std::thread updater([&] {
    const absl::Time start = absl::Now();
    slow_status = lepton_->Update(slow).status();
    slow_time = absl::Now() - start;
  });
  // Time for the request (8 MB) to reach the worker before the signal.
  absl::SleepFor(absl::Milliseconds(150));
  server_->process().Signal(SIGTERM);

  bool saw_not_ready = false;
  grpc::Status infer_status;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    inference::ServerReadyResponse ready;
    grpc::Status s = Call(&GRPCInferenceService::Stub::ServerReady,
                          inference::ServerReadyRequest(), &ready);
    if (!s.ok()) break;  // the server stopped taking calls
    if (!ready.ready()) {
      saw_not_ready = true;
      infer_status = Infer(Request("m", {std::vector<float>(kD, 0.5f)}, true));
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  updater.join();
  EXPECT_TRUE(saw_not_ready)
      << "the update ended before a ServerReady saw the drain";
  std::cout << "the update took " << slow_time << "\n";
  EXPECT_TRUE(IsError(infer_status, grpc::StatusCode::UNAVAILABLE,
                      "the server is shutting down"));
  EXPECT_TRUE(slow_status.ok()) << slow_status;  // the drain finished it
  // Hang up, so that the server need not wait for an idle connection.
  lepton_.reset();
  stub_.reset();
  channel_.reset();
  EXPECT_EQ(server_->process().Wait(absl::Seconds(120)), 0);
}

}  // namespace
}  // namespace lepton::testing
