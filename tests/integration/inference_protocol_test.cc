// The Open Inference Protocol (inference.GRPCInferenceService) on the real
// lepton_server binary over loopback, on the same port as
// lepton.v1.ModelService: every RPC, both forms of tensor contents (contents
// and raw_input_contents), pinned versions, the online_learning extension and
// every error the service names. Predictions and learning are compared bit
// for bit with lepton.v1's Predict and Update on the same server. The
// server's side of it (limits, metrics, tokens, TLS, the drain, deadlines, a
// cluster) is in inference_protocol_server_test.cc.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/inference_protocol_test_support.h"

namespace lepton::testing {
namespace {

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

  // An absurd shape makes a short message.
  ModelInferRequest many = Request("m", rows, false);
  for (int i = 0; i < 10000; ++i) many.mutable_inputs(0)->add_shape(1);
  grpc::Status many_status = Infer(many);
  EXPECT_TRUE(IsInvalid(many_status, "inputs[0].shape"));
  EXPECT_LT(many_status.error_message().size(), 200u)
      << many_status.error_message();

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

}  // namespace
}  // namespace lepton::testing
