// Every error row of the wire contract through the unary RPCs: the gRPC code,
// a message that starts with the 0-based path of the offending field, and,
// for a rejected Update, a model left exactly as it was (same version, same
// counters, bit-identical predictions on a probe set).
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 8;
constexpr int32_t kK = 10;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

v1::ModelType TypeOf(const std::string& model) {
  if (model == "lin") return v1::LINEAR_REGRESSION;
  if (model == "log") return v1::LOGISTIC_REGRESSION;
  return v1::SOFTMAX_REGRESSION;
}
int32_t ClassesOf(const std::string& model) { return model == "soft" ? kK : 0; }

// Three valid examples: dense, sparse, dense.
v1::UpdateRequest ValidUpdate(const std::string& model, uint32_t seed = 2) {
  DataGen gen(seed);
  return UpdateRequestOf(model,
                         gen.Examples(TypeOf(model), kD, ClassesOf(model), 3));
}

// Models "lin", "log" and "soft" (K = 10), D = 8, each trained away from
// zero so that a partly applied update would show in the predictions.
class ErrorsTest : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ServiceTest::SetUp());
    for (const char* model : {"lin", "log", "soft"}) {
      ASSERT_TRUE(
          IsOk(CreateModel(model, Spec(TypeOf(model), kD, ClassesOf(model)))));
      v1::UpdateRequest request = ValidUpdate(model, /*seed=*/1);
      request.set_learning_rate(0.5f);
      ASSERT_TRUE(IsOk(Update(request)));
    }
  }

  struct Snapshot {
    v1::ModelInfo info;
    v1::PredictResponse probe;
  };

  Snapshot Take(const std::string& model) {
    Snapshot s;
    // 4 instances: within SmallLimitsTest's max_batch too.
    EXPECT_TRUE(IsOk(GetModel(model, &s.info)));
    DataGen gen(99);
    EXPECT_TRUE(
        IsOk(Predict(PredictRequestOf(model, gen.Instances(kD, 4)), &s.probe)));
    return s;
  }

  void ExpectUnchanged(const std::string& model, const Snapshot& before) {
    const Snapshot now = Take(model);
    EXPECT_EQ(now.info.version(), before.info.version());
    EXPECT_EQ(now.info.examples_seen(), before.info.examples_seen());
    EXPECT_EQ(now.info.updates(), before.info.updates());
    EXPECT_EQ(now.info.steps(), before.info.steps());
    EXPECT_EQ(now.info.weight_seen(), before.info.weight_seen());
    EXPECT_EQ(now.info.progressive_loss(), before.info.progressive_loss());
    EXPECT_EQ(now.info.retained_versions_size(),
              before.info.retained_versions_size());
    EXPECT_TRUE(BitEqual(now.probe, before.probe));
  }
};

// ------------------------------------------------------------ bad features

struct BadFeatures {
  std::string name;
  std::function<void(v1::Features*)> mutate;
  std::string path;  // after "examples[i].features" or "instances[i]"
};
void PrintTo(const BadFeatures& c, std::ostream* os) { *os << c.name; }

void SetSparse(v1::Features* f, std::vector<uint32_t> indices,
               std::vector<float> values) {
  f->Clear();
  f->mutable_indices()->Add(indices.begin(), indices.end());
  f->mutable_values()->Add(values.begin(), values.end());
}

void SetDense(v1::Features* f, int n, float fill = 0.5f) {
  f->Clear();
  for (int i = 0; i < n; ++i) f->add_dense(fill);
}

std::vector<BadFeatures> BadFeatureCases() {
  return {
      {"DenseTooShort", [](v1::Features* f) { SetDense(f, kD - 1); }, ".dense"},
      {"DenseTooLong", [](v1::Features* f) { SetDense(f, kD + 1); }, ".dense"},
      {"IndexOutOfRange",
       [](v1::Features* f) {
         SetSparse(f, {1, kD}, {1, 1});
       },
       ".indices[1]"},
      {"MoreIndicesThanValues",
       [](v1::Features* f) {
         SetSparse(f, {1, 2}, {1});
       },
       ".values"},
      {"MoreValuesThanIndices",
       [](v1::Features* f) {
         SetSparse(f, {1}, {1, 2});
       },
       ".values"},
      {"RepeatedIndex",
       [](v1::Features* f) {
         SetSparse(f, {1, 3, 3}, {1, 1, 1});
       },
       ".indices[2]"},
      {"RepeatedIndexUnsorted",
       [](v1::Features* f) {
         SetSparse(f, {5, 1, 5}, {1, 1, 1});
       },
       ".indices[2]"},
      {"NanInDense",
       [](v1::Features* f) {
         SetDense(f, kD);
         f->set_dense(3, kNaN);
       },
       ".dense[3]"},
      {"InfInDense",
       [](v1::Features* f) {
         SetDense(f, kD);
         f->set_dense(0, kInf);
       },
       ".dense[0]"},
      {"MinusInfInDense",
       [](v1::Features* f) {
         SetDense(f, kD);
         f->set_dense(kD - 1, -kInf);
       },
       ".dense[7]"},
      {"NanInValues",
       [](v1::Features* f) {
         SetSparse(f, {0, 4}, {1, kNaN});
       },
       ".values[1]"},
      {"InfInValues",
       [](v1::Features* f) {
         SetSparse(f, {0, 4}, {kInf, 1});
       },
       ".values[0]"},
      {"DenseAndSparse",
       [](v1::Features* f) {
         SetDense(f, kD);
         f->add_indices(1);
         f->add_values(1);
       },
       ""},
  };
}

// ------------------------------------------------------------- bad updates

struct BadUpdate {
  std::string name;
  std::string model;
  std::function<void(v1::UpdateRequest*)> mutate;
  grpc::StatusCode code;
  std::string prefix;
};
void PrintTo(const BadUpdate& c, std::ostream* os) { *os << c.name; }

BadUpdate Invalid(std::string name, std::string model,
                  std::function<void(v1::UpdateRequest*)> mutate,
                  std::string path) {
  return {std::move(name), std::move(model), std::move(mutate),
          grpc::StatusCode::INVALID_ARGUMENT, path + ": "};
}

std::function<void(v1::UpdateRequest*)> Label(int example, float label) {
  return [=](v1::UpdateRequest* r) {
    r->mutable_examples(example)->set_label(label);
  };
}
std::function<void(v1::UpdateRequest*)> Weight(int example, float weight) {
  return [=](v1::UpdateRequest* r) {
    r->mutable_examples(example)->set_weight(weight);
  };
}

std::vector<BadUpdate> BadUpdateCases() {
  std::vector<BadUpdate> cases;
  for (const BadFeatures& f : BadFeatureCases()) {
    cases.push_back(Invalid(
        f.name, "log",
        [mutate = f.mutate](v1::UpdateRequest* r) {
          mutate(r->mutable_examples(2)->mutable_features());
        },
        "examples[2].features" + f.path));
  }
  const grpc::StatusCode kNotFound = grpc::StatusCode::NOT_FOUND;
  std::vector<BadUpdate> more = {
      Invalid("LogisticLabel2", "log", Label(2, 2), "examples[2].label"),
      Invalid("LogisticLabelHalf", "log", Label(1, 0.5f), "examples[1].label"),
      Invalid("SoftmaxLabelHalf", "soft", Label(2, 0.5f), "examples[2].label"),
      Invalid("SoftmaxLabelK", "soft", Label(2, kK), "examples[2].label"),
      Invalid("SoftmaxLabelNegative", "soft", Label(0, -1),
              "examples[0].label"),
      Invalid("LinearLabelNan", "lin", Label(2, kNaN), "examples[2].label"),
      Invalid("LinearLabelInf", "lin", Label(1, -kInf), "examples[1].label"),
      Invalid("NegativeWeight", "log", Weight(2, -1), "examples[2].weight"),
      Invalid("NanWeight", "soft", Weight(0, kNaN), "examples[0].weight"),
      Invalid("InfWeight", "lin", Weight(1, kInf), "examples[1].weight"),
      // Two bad examples: the first one is reported.
      Invalid(
          "FirstBadExampleIsNamed", "log",
          [](v1::UpdateRequest* r) {
            r->mutable_examples(1)->set_label(3);
            r->mutable_examples(2)->set_weight(-1);
          },
          "examples[1].label"),
      Invalid(
          "EmptyBatch", "lin",
          [](v1::UpdateRequest* r) { r->clear_examples(); }, "examples"),
      Invalid(
          "NegativeLearningRate", "log",
          [](v1::UpdateRequest* r) { r->set_learning_rate(-0.1f); },
          "learning_rate"),
      Invalid(
          "NanLearningRate", "log",
          [](v1::UpdateRequest* r) { r->set_learning_rate(kNaN); },
          "learning_rate"),
      Invalid(
          "InfLearningRate", "soft",
          [](v1::UpdateRequest* r) { r->set_learning_rate(kInf); },
          "learning_rate"),
      Invalid(
          "EpochsMinusOne", "lin",
          [](v1::UpdateRequest* r) { r->set_epochs(-1); }, "epochs"),
      Invalid(
          "Epochs1001", "lin",
          [](v1::UpdateRequest* r) { r->set_epochs(1001); }, "epochs"),
      // Finite but huge: the gradient overflows float, so the learner
      // rejects the whole update instead of publishing infinities.
      Invalid(
          "StepWouldOverflow", "lin",
          [](v1::UpdateRequest* r) {
            v1::Example* e = r->mutable_examples(1);
            SetDense(e->mutable_features(), kD, 1e30f);
            e->set_label(-1e30f);
          },
          "examples"),
      {"UnknownModel", "log",
       [](v1::UpdateRequest* r) { r->set_model("ghost"); }, kNotFound,
       "model \"ghost\" not found"},
  };
  cases.insert(cases.end(), more.begin(), more.end());
  return cases;
}

class BadUpdateTest : public ErrorsTest,
                      public ::testing::WithParamInterface<BadUpdate> {};

TEST_P(BadUpdateTest, IsRejectedWholeAndChangesNothing) {
  const BadUpdate& c = GetParam();
  const Snapshot before = Take(c.model);
  v1::UpdateRequest request = ValidUpdate(c.model);
  c.mutate(&request);
  v1::UpdateResponse response;
  EXPECT_TRUE(IsError(Update(request, &response), c.code, c.prefix));
  ExpectUnchanged(c.model, before);
}

INSTANTIATE_TEST_SUITE_P(Rows, BadUpdateTest,
                         ::testing::ValuesIn(BadUpdateCases()),
                         [](const auto& info) { return info.param.name; });

// The requests above differ from an accepted one only by their mutation.
TEST_F(ErrorsTest, TheUnmutatedRequestsAreAccepted) {
  for (const char* model : {"lin", "log", "soft"}) {
    const uint64_t version = VersionOf(model);
    v1::UpdateRequest request = ValidUpdate(model);
    request.set_epochs(1000);  // the largest allowed
    ASSERT_TRUE(IsOk(Update(request))) << model;
    EXPECT_EQ(VersionOf(model), version + 1);
  }
}

// ------------------------------------------------------------ bad predicts

class BadPredictTest : public ErrorsTest,
                       public ::testing::WithParamInterface<BadFeatures> {};

TEST_P(BadPredictTest, NamesTheInstanceAndField) {
  DataGen gen(3);
  v1::PredictRequest request = PredictRequestOf("soft", gen.Instances(kD, 3));
  GetParam().mutate(request.mutable_instances(1));
  v1::PredictResponse response;
  EXPECT_TRUE(
      IsInvalid(Predict(request, &response), "instances[1]" + GetParam().path));
}

INSTANTIATE_TEST_SUITE_P(Rows, BadPredictTest,
                         ::testing::ValuesIn(BadFeatureCases()),
                         [](const auto& info) { return info.param.name; });

TEST_F(ErrorsTest, PredictWithNoInstances) {
  v1::PredictRequest request;
  request.set_model("log");
  v1::PredictResponse response;
  EXPECT_TRUE(IsInvalid(Predict(request, &response), "instances"));
}

TEST_F(ErrorsTest, UnknownModelIsNotFoundForEveryRpc) {
  const std::string message = "model \"ghost\" not found";
  const grpc::StatusCode kNotFound = grpc::StatusCode::NOT_FOUND;
  v1::ModelInfo info;
  EXPECT_TRUE(IsError(GetModel("ghost", &info), kNotFound, message));
  EXPECT_TRUE(IsError(DeleteModel("ghost"), kNotFound, message));
  DataGen gen(4);
  v1::PredictResponse predicted;
  EXPECT_TRUE(IsError(
      Predict(PredictRequestOf("ghost", gen.Instances(kD, 2)), &predicted),
      kNotFound, message));
  v1::UpdateRequest update = ValidUpdate("log");
  update.set_model("ghost");
  EXPECT_TRUE(IsError(Update(update), kNotFound, message));
  // Nothing was created on the way.
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(ListModels(&list)));
  EXPECT_EQ(list.models_size(), 3);
}

TEST_F(ErrorsTest, DeletingTwiceIsNotFound) {
  ASSERT_TRUE(IsOk(DeleteModel("lin")));
  EXPECT_TRUE(IsError(DeleteModel("lin"), grpc::StatusCode::NOT_FOUND,
                      "model \"lin\" not found"));
}

TEST_F(ErrorsTest, ExistingNameIsAlreadyExistsAndKeepsTheModel) {
  const Snapshot before = Take("log");
  EXPECT_TRUE(IsError(CreateModel("log", Spec(v1::LINEAR_REGRESSION, 3)),
                      grpc::StatusCode::ALREADY_EXISTS,
                      "model \"log\" already exists"));
  ExpectUnchanged("log", before);
  EXPECT_EQ(before.info.spec().type(), v1::LOGISTIC_REGRESSION);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("log", &info)));
  EXPECT_EQ(info.spec().type(), v1::LOGISTIC_REGRESSION);
  EXPECT_EQ(info.spec().num_features(), kD);
}

TEST_F(ErrorsTest, PinnedVersionThatDoesNotExistYetIsNotFound) {
  DataGen gen(5);
  v1::PredictResponse response;
  const uint64_t next = VersionOf("soft") + 1;
  EXPECT_TRUE(IsError(
      Predict(PredictRequestOf("soft", gen.Instances(kD, 2), next), &response),
      grpc::StatusCode::NOT_FOUND, absl::StrCat("version ", next)));
}

// ---------------------------------------------------------------- bad specs

struct BadSpec {
  std::string name;
  std::string model_name;
  v1::ModelSpec spec;
  std::string path;
};
void PrintTo(const BadSpec& c, std::ostream* os) { *os << c.name; }

v1::ModelSpec With(v1::ModelSpec spec,
                   const std::function<void(v1::ModelSpec*)>& mutate) {
  mutate(&spec);
  return spec;
}

std::vector<BadSpec> BadSpecCases() {
  const v1::ModelSpec log = Spec(v1::LOGISTIC_REGRESSION, 4);
  return {
      {"TypeUnspecified", "m", Spec(v1::MODEL_TYPE_UNSPECIFIED, 4),
       "spec.type"},
      {"TypeUnknownValue", "m",
       With(log, [](auto* s) { s->set_type(static_cast<v1::ModelType>(7)); }),
       "spec.type"},
      {"OptimizerUnknownValue", "m",
       With(log,
            [](auto* s) {
              s->mutable_optimizer()->set_kind(
                  static_cast<v1::OptimizerKind>(9));
            }),
       "spec.optimizer.kind"},
      {"NoFeatures", "m", Spec(v1::LOGISTIC_REGRESSION, 0),
       "spec.num_features"},
      {"NegativeFeatures", "m", Spec(v1::LINEAR_REGRESSION, -5),
       "spec.num_features"},
      {"TooManyFeatures", "m",
       Spec(v1::LINEAR_REGRESSION, (int64_t{1} << 26) + 1),
       "spec.num_features"},
      {"SoftmaxOneClass", "m", Spec(v1::SOFTMAX_REGRESSION, 4, 1),
       "spec.num_classes"},
      {"LogisticWithClasses", "m", Spec(v1::LOGISTIC_REGRESSION, 4, 3),
       "spec.num_classes"},
      {"NegativeL2", "m", With(log, [](auto* s) { s->set_l2(-0.1f); }),
       "spec.l2"},
      {"NanL2", "m", With(log, [](auto* s) { s->set_l2(kNaN); }), "spec.l2"},
      {"NegativeLearningRate", "m",
       With(log,
            [](auto* s) { s->mutable_optimizer()->set_learning_rate(-1); }),
       "spec.optimizer.learning_rate"},
      {"NegativeMinibatch", "m",
       With(log, [](auto* s) { s->set_minibatch_size(-1); }),
       "spec.minibatch_size"},
      {"EmptyName", "", log, "name"},
      {"NameStartsWithDot", ".hidden", log, "name"},
      {"NameWithSlash", "a/b", log, "name"},
      {"NameTooLong", std::string(129, 'n'), log, "name"},
  };
}

class BadSpecTest : public ServiceTest,
                    public ::testing::WithParamInterface<BadSpec> {};

TEST_P(BadSpecTest, IsInvalidAndCreatesNothing) {
  const BadSpec& c = GetParam();
  EXPECT_TRUE(IsInvalid(CreateModel(c.model_name, c.spec), c.path));
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(ListModels(&list)));
  EXPECT_EQ(list.models_size(), 0);
}

INSTANTIATE_TEST_SUITE_P(Rows, BadSpecTest, ::testing::ValuesIn(BadSpecCases()),
                         [](const auto& info) { return info.param.name; });

// -------------------------------------------------------- server limits

class SmallLimitsTest : public ErrorsTest {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.service.max_batch = 4;
    options.store.retained_versions = 2;
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    ASSERT_TRUE(IsOk(CreateModel("log", Spec(v1::LOGISTIC_REGRESSION, kD))));
  }
};

TEST_F(SmallLimitsTest, BatchAboveMaxBatchIsResourceExhausted) {
  DataGen gen(6);
  v1::PredictResponse predicted;
  ASSERT_TRUE(
      IsOk(Predict(PredictRequestOf("log", gen.Instances(kD, 4)), &predicted)));
  EXPECT_TRUE(IsError(
      Predict(PredictRequestOf("log", gen.Instances(kD, 5)), &predicted),
      grpc::StatusCode::RESOURCE_EXHAUSTED, "instances: "));

  const Snapshot before = Take("log");
  EXPECT_TRUE(
      IsError(Update(UpdateRequestOf(
                  "log", gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 5))),
              grpc::StatusCode::RESOURCE_EXHAUSTED, "examples: "));
  ExpectUnchanged("log", before);
  EXPECT_TRUE(IsOk(Update(UpdateRequestOf(
      "log", gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 4)))));
}

// Found with request_fuzzer (docs/fuzzing.md): a softmax model's K outputs
// per instance let a small request ask for a huge answer (2000 empty
// instances of a model of 65536 classes, 4 KB on the wire, made the server
// allocate 500 MB before gRPC refused to send it). A batch whose outputs
// cannot fit a response is refused first.
TEST_F(ServiceTest, PredictWhoseOutputsCannotBeSentIsRefusedFirst) {
  server::ServerOptions options;
  options.max_message_bytes = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(IsOk(CreateModel("wide", Spec(v1::SOFTMAX_REGRESSION, 1, 4096))));
  v1::PredictResponse response;
  // 100 x 4096 x 4 bytes: 1.6 MB of probabilities.
  EXPECT_TRUE(IsError(
      Predict(PredictRequestOf("wide", std::vector<Features>(100)), &response),
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      "instances: 100 predictions of 4096 outputs are 1638400 bytes, more "
      "than the 1048576 a response may hold"));
  ASSERT_TRUE(IsOk(
      Predict(PredictRequestOf("wide", std::vector<Features>(50)), &response)));
  EXPECT_EQ(response.predictions_size(), 50);
  EXPECT_EQ(response.predictions(0).probabilities_size(), 4096);
}

TEST_F(SmallLimitsTest, EvictedPinnedVersionIsNotFound) {
  DataGen gen(7);
  const std::vector<Features> probe = gen.Instances(kD, 3);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(IsOk(Update(UpdateRequestOf(
        "log", gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 4)))));
  }
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("log", &info)));
  ASSERT_EQ(info.version(), 3u);
  ASSERT_EQ(info.retained_versions_size(), 2);
  EXPECT_EQ(info.retained_versions(0), 2u);
  EXPECT_EQ(info.retained_versions(1), 3u);

  v1::PredictResponse response;
  EXPECT_TRUE(IsError(Predict(PredictRequestOf("log", probe, 1), &response),
                      grpc::StatusCode::NOT_FOUND,
                      "version 1 of model \"log\""));
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("log", probe, 2), &response)));
  EXPECT_EQ(response.version(), 2u);
}

}  // namespace
}  // namespace lepton::server_test
