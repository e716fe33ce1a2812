// The happy path of every lepton.v1.ModelService RPC over an in-process
// channel: what each response holds, checked against the spec's documented
// defaults, against the core store (bit for bit) and against predictions
// recomputed here from the version's weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 12;
constexpr int32_t kK = 5;

struct TypeCase {
  v1::ModelType type;
  int32_t num_classes;
};

const TypeCase kTypes[] = {{v1::LINEAR_REGRESSION, 0},
                           {v1::LOGISTIC_REGRESSION, 0},
                           {v1::SOFTMAX_REGRESSION, kK}};

std::string TypeName(v1::ModelType type) { return v1::ModelType_Name(type); }

class ModelServiceTest : public ServiceTest {
 protected:
  // Creates `name` and moves its weights away from zero with a few updates
  // at a high learning rate, so predictions depend on the features.
  void CreateTrained(const std::string& name, const TypeCase& t,
                     uint32_t seed = 1) {
    ASSERT_TRUE(IsOk(CreateModel(name, Spec(t.type, kD, t.num_classes))));
    DataGen gen(seed);
    for (int i = 0; i < 4; ++i) {
      v1::UpdateRequest request =
          UpdateRequestOf(name, gen.Examples(t.type, kD, t.num_classes, 32));
      request.set_learning_rate(0.5f);
      ASSERT_TRUE(IsOk(Update(request)));
    }
  }
};

TEST_F(ModelServiceTest, CreateModelEchoesTheSpecWithDefaultsFilledIn) {
  for (const TypeCase& t : kTypes) {
    SCOPED_TRACE(TypeName(t.type));
    const std::string name = "m-" + TypeName(t.type);
    v1::ModelInfo info;
    ASSERT_TRUE(
        IsOk(CreateModel(name, Spec(t.type, kD, t.num_classes), &info)));
    EXPECT_EQ(info.name(), name);
    EXPECT_EQ(info.spec().type(), t.type);
    EXPECT_EQ(info.spec().num_features(), kD);
    EXPECT_EQ(info.spec().num_classes(), t.num_classes);
    EXPECT_EQ(info.spec().optimizer().kind(), v1::ADAGRAD);
    EXPECT_EQ(info.spec().optimizer().learning_rate(), 0.05f);
    EXPECT_EQ(info.spec().optimizer().epsilon(), 1e-6f);
    EXPECT_EQ(info.spec().optimizer().power_t(), 0.0f);
    EXPECT_EQ(info.spec().optimizer().initial_accumulator(), 0.0f);
    EXPECT_EQ(info.spec().l2(), 0.0f);
    EXPECT_EQ(info.spec().minibatch_size(), 16);
    EXPECT_EQ(info.spec().optimizer().beta(), 1.0f);
    EXPECT_EQ(info.spec().optimizer().l1(), 0.0f);
    EXPECT_EQ(info.spec().optimizer().beta1(), 0.9f);
    EXPECT_EQ(info.spec().optimizer().beta2(), 0.999f);
    EXPECT_EQ(info.spec().max_gradient_norm(), 0.0f);
    EXPECT_EQ(info.spec().max_step(), 0.0f);
    EXPECT_EQ(info.nonzero_weights(), 0);  // all weights start at zero
    EXPECT_EQ(info.version(), 1u);
    EXPECT_EQ(info.retained_versions_size(), 1);
    EXPECT_EQ(info.retained_versions(0), 1u);
    EXPECT_EQ(info.examples_seen(), 0u);
    EXPECT_EQ(info.updates(), 0u);
    EXPECT_EQ(info.steps(), 0u);
    EXPECT_GT(info.memory_bytes(), 0);
    EXPECT_GT(info.create_time().seconds(), 0);
  }
}

TEST_F(ModelServiceTest, CreateModelKeepsEveryFieldThatIsSet) {
  v1::ModelSpec spec = Spec(v1::LOGISTIC_REGRESSION, 7);
  spec.mutable_optimizer()->set_kind(v1::SGD);
  spec.mutable_optimizer()->set_learning_rate(0.25f);
  spec.mutable_optimizer()->set_power_t(0.5f);
  spec.set_l2(0.01f);
  spec.set_minibatch_size(3);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(CreateModel("sgd", spec, &info)));
  EXPECT_EQ(info.spec().optimizer().kind(), v1::SGD);
  EXPECT_EQ(info.spec().optimizer().learning_rate(), 0.25f);
  EXPECT_EQ(info.spec().optimizer().power_t(), 0.5f);
  EXPECT_EQ(info.spec().l2(), 0.01f);
  EXPECT_EQ(info.spec().minibatch_size(), 3);
}

TEST_F(ModelServiceTest, FtrlAndAdamFieldsConvertBothWays) {
  v1::ModelSpec ftrl = Spec(v1::LOGISTIC_REGRESSION, 5);
  ftrl.mutable_optimizer()->set_kind(v1::FTRL);
  ftrl.mutable_optimizer()->set_learning_rate(0.5f);
  ftrl.mutable_optimizer()->set_beta(2.0f);
  ftrl.mutable_optimizer()->set_l1(0.75f);
  ftrl.set_max_gradient_norm(5.0f);
  ftrl.set_max_step(0.25f);
  ftrl.set_minibatch_size(1);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(CreateModel("ftrl", ftrl, &info)));
  EXPECT_EQ(info.spec().optimizer().kind(), v1::FTRL);
  EXPECT_EQ(info.spec().optimizer().beta(), 2.0f);
  EXPECT_EQ(info.spec().optimizer().l1(), 0.75f);
  EXPECT_EQ(info.spec().optimizer().beta1(), 0.9f);  // unset: the defaults
  EXPECT_EQ(info.spec().optimizer().beta2(), 0.999f);
  EXPECT_EQ(info.spec().max_gradient_norm(), 5.0f);
  EXPECT_EQ(info.spec().max_step(), 0.25f);

  v1::ModelSpec adam = Spec(v1::SOFTMAX_REGRESSION, 4, 3);
  adam.mutable_optimizer()->set_kind(v1::ADAM);
  adam.mutable_optimizer()->set_beta1(0.5f);
  adam.mutable_optimizer()->set_beta2(0.99f);
  ASSERT_TRUE(IsOk(CreateModel("adam", adam, &info)));
  EXPECT_EQ(info.spec().optimizer().kind(), v1::ADAM);
  EXPECT_EQ(info.spec().optimizer().beta1(), 0.5f);
  EXPECT_EQ(info.spec().optimizer().beta2(), 0.99f);
  EXPECT_EQ(info.spec().optimizer().beta(), 1.0f);
  EXPECT_EQ(info.spec().optimizer().l1(), 0.0f);

  // The core's validation, over the wire.
  adam.mutable_optimizer()->set_beta1(1.5f);
  EXPECT_TRUE(IsInvalid(CreateModel("bad", adam), "spec.optimizer.beta1"));
  ftrl.mutable_optimizer()->set_l1(-1.0f);
  EXPECT_TRUE(IsInvalid(CreateModel("bad", ftrl), "spec.optimizer.l1"));

  // nonzero_weights: one example x = {2: 1}, label 1, from zero weights:
  // g = sigmoid(0) - 1 = -0.5 for feature 2 and the bias. FTRL's z = g, and
  // |z| = 0.5 <= l1 = 0.75, so feature 2's weight stays exactly 0; the bias
  // (never L1-regularized) moves: 1 nonzero weight.
  Example e;
  e.features = SparseFeatures({2}, {1.0f});
  e.label = 1;
  ASSERT_TRUE(IsOk(Update(UpdateRequestOf("ftrl", {e}))));
  ASSERT_TRUE(IsOk(GetModel("ftrl", &info)));
  EXPECT_EQ(info.nonzero_weights(), 1);
  // With importance weight 4 the gradient is 4 times larger and leaves the
  // L1 ball: 2 nonzero weights.
  e.weight = 4;
  ASSERT_TRUE(IsOk(Update(UpdateRequestOf("ftrl", {e}))));
  ASSERT_TRUE(IsOk(GetModel("ftrl", &info)));
  EXPECT_EQ(info.nonzero_weights(), 2);
}

TEST_F(ModelServiceTest, GetModelReportsVersionsAndCounters) {
  v1::ModelInfo created;
  ASSERT_TRUE(
      IsOk(CreateModel("ctr", Spec(v1::LOGISTIC_REGRESSION, kD), &created)));
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("ctr", &info)));
  EXPECT_EQ(info.SerializeAsString(), created.SerializeAsString());

  // 20 examples, minibatch 16: two steps; weights 2 and 1 x 19.
  DataGen gen(3);
  std::vector<Example> batch = gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 20);
  batch[0].weight = 2;
  ASSERT_TRUE(IsOk(Update(UpdateRequestOf("ctr", batch))));
  ASSERT_TRUE(IsOk(GetModel("ctr", &info)));
  EXPECT_EQ(info.version(), 2u);
  EXPECT_EQ(info.examples_seen(), 20u);
  EXPECT_EQ(info.updates(), 1u);
  EXPECT_EQ(info.steps(), 2u);
  EXPECT_DOUBLE_EQ(info.weight_seen(), 21.0);
  ASSERT_EQ(info.retained_versions_size(), 2);
  EXPECT_EQ(info.retained_versions(0), 1u);
  EXPECT_EQ(info.retained_versions(1), 2u);
  // Zero weights score every example at log(2), with label 1 predicted.
  EXPECT_NEAR(info.progressive_loss(), std::log(2.0), 1e-6);
  double right = 0;
  for (const Example& e : batch) right += e.label == 1 ? e.weight : 0;
  EXPECT_NEAR(info.progressive_accuracy(), right / 21.0, 1e-12);
  EXPECT_GE(info.update_time().seconds(), info.create_time().seconds());
}

TEST_F(ModelServiceTest, ListModelsIsOrderedByName) {
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(ListModels(&list)));
  EXPECT_EQ(list.models_size(), 0);

  ASSERT_TRUE(IsOk(CreateModel("b", Spec(v1::LINEAR_REGRESSION, 3))));
  ASSERT_TRUE(IsOk(CreateModel("c", Spec(v1::SOFTMAX_REGRESSION, 4, 3))));
  ASSERT_TRUE(IsOk(CreateModel("a", Spec(v1::LOGISTIC_REGRESSION, 2))));
  ASSERT_TRUE(IsOk(ListModels(&list)));
  ASSERT_EQ(list.models_size(), 3);
  EXPECT_EQ(list.models(0).name(), "a");
  EXPECT_EQ(list.models(0).spec().type(), v1::LOGISTIC_REGRESSION);
  EXPECT_EQ(list.models(1).name(), "b");
  EXPECT_EQ(list.models(1).spec().num_features(), 3);
  EXPECT_EQ(list.models(2).name(), "c");
  EXPECT_EQ(list.models(2).spec().num_classes(), 3);
}

TEST_F(ModelServiceTest, DeleteModelRemovesItAndFreesTheName) {
  ASSERT_TRUE(IsOk(CreateModel("a", Spec(v1::LINEAR_REGRESSION, 3))));
  ASSERT_TRUE(IsOk(CreateModel("b", Spec(v1::LINEAR_REGRESSION, 3))));
  DataGen gen(4);
  ASSERT_TRUE(IsOk(Update(
      UpdateRequestOf("a", gen.Examples(v1::LINEAR_REGRESSION, 3, 0, 4)))));
  ASSERT_EQ(VersionOf("a"), 2u);

  ASSERT_TRUE(IsOk(DeleteModel("a")));
  v1::ModelInfo info;
  EXPECT_EQ(GetModel("a", &info).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(ListModels(&list)));
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_EQ(list.models(0).name(), "b");

  // The name is free again, for a new model that starts over at version 1.
  ASSERT_TRUE(IsOk(CreateModel("a", Spec(v1::LINEAR_REGRESSION, 3), &info)));
  EXPECT_EQ(info.version(), 1u);
  EXPECT_EQ(info.examples_seen(), 0u);
}

// z = W^T x + b for one instance, in double, from the version's weights.
std::vector<double> Logits(const ModelVersion& v, const Features& f) {
  const int64_t d = v.spec().num_features;
  std::vector<double> z(v.spec().num_outputs());
  for (size_t o = 0; o < z.size(); ++o) {
    z[o] = v.weight(d, static_cast<int32_t>(o));
    for (size_t i = 0; i < f.dense.size(); ++i) {
      z[o] += double{f.dense[i]} * v.weight(i, static_cast<int32_t>(o));
    }
    for (size_t i = 0; i < f.indices.size(); ++i) {
      z[o] +=
          double{f.values[i]} * v.weight(f.indices[i], static_cast<int32_t>(o));
    }
  }
  return z;
}

TEST_F(ModelServiceTest, PredictDenseAndSparseForEveryType) {
  for (const TypeCase& t : kTypes) {
    SCOPED_TRACE(TypeName(t.type));
    const std::string name = "m-" + TypeName(t.type);
    ASSERT_NO_FATAL_FAILURE(CreateTrained(name, t));
    DataGen gen(7);
    std::vector<Features> batch = gen.Instances(kD, 9);
    batch.push_back(Features());  // neither form: the bias alone
    v1::PredictResponse response;
    ASSERT_TRUE(IsOk(Predict(PredictRequestOf(name, batch), &response)));
    EXPECT_EQ(response.version(), VersionOf(name));
    ASSERT_EQ(response.predictions_size(), static_cast<int>(batch.size()));

    // The wire carries the core's answer bit for bit.
    absl::StatusOr<Predictions> core =
        server_->store().Predict(name, Views(batch), response.version());
    ASSERT_TRUE(core.ok()) << core.status();
    EXPECT_TRUE(MatchesCore(response, *core));

    // And the answer means what the contract says, recomputed here.
    auto version = server_->store().AcquireVersion(name, response.version());
    ASSERT_TRUE(version.ok()) << version.status();
    for (size_t i = 0; i < batch.size(); ++i) {
      SCOPED_TRACE(i);
      const v1::Prediction& p = response.predictions(static_cast<int>(i));
      const std::vector<double> z = Logits(**version, batch[i]);
      switch (t.type) {
        case v1::LINEAR_REGRESSION:
          EXPECT_NEAR(p.value(), z[0], 1e-5 * (1 + std::fabs(z[0])));
          EXPECT_EQ(p.label(), 0);
          EXPECT_EQ(p.probabilities_size(), 0);
          break;
        case v1::LOGISTIC_REGRESSION:
          EXPECT_NEAR(p.value(), 1 / (1 + std::exp(-z[0])), 1e-6);
          if (std::fabs(z[0]) > 1e-4) {
            EXPECT_EQ(p.label(), z[0] >= 0 ? 1 : 0);
          }
          EXPECT_EQ(p.probabilities_size(), 0);
          break;
        default: {
          ASSERT_EQ(p.probabilities_size(), kK);
          double max = z[0], sum = 0, prob_sum = 0;
          for (double v : z) max = std::max(max, v);
          for (double v : z) sum += std::exp(v - max);
          int arg_max = 0;
          for (int k = 0; k < kK; ++k) {
            EXPECT_NEAR(p.probabilities(k), std::exp(z[k] - max) / sum, 1e-6);
            prob_sum += p.probabilities(k);
            if (p.probabilities(k) > p.probabilities(arg_max)) arg_max = k;
          }
          EXPECT_NEAR(prob_sum, 1.0, 1e-5);
          EXPECT_EQ(p.label(), arg_max);
          EXPECT_TRUE(SameBits(p.value(), p.probabilities(p.label())));
          break;
        }
      }
    }
  }
}

// The loss of one prediction against `label`, as the README's table defines
// it for each type.
double LossOf(v1::ModelType type, const v1::Prediction& p, float label) {
  switch (type) {
    case v1::LINEAR_REGRESSION:
      return (double{p.value()} - label) * (double{p.value()} - label);
    case v1::LOGISTIC_REGRESSION:
      return label == 1 ? -std::log(double{p.value()})
                        : -std::log1p(-double{p.value()});
    default:
      return -std::log(double{p.probabilities(static_cast<int>(label))});
  }
}

// Update's loss_before and accuracy_before are the weighted loss and accuracy
// of what Predict answered for the same examples just before the update.
TEST_F(ModelServiceTest, UpdateReportsProgressiveValidation) {
  for (const TypeCase& t : kTypes) {
    SCOPED_TRACE(TypeName(t.type));
    const std::string name = "m-" + TypeName(t.type);
    ASSERT_NO_FATAL_FAILURE(CreateTrained(name, t));
    v1::ModelInfo before;
    ASSERT_TRUE(IsOk(GetModel(name, &before)));

    DataGen gen(11);
    std::vector<Example> batch = gen.Examples(t.type, kD, t.num_classes, 40);
    v1::UpdateRequest request = UpdateRequestOf(name, batch);
    // Weights: absent (1) for most, and 0.5, 2 and 0 for three examples.
    for (v1::Example& e : *request.mutable_examples()) e.clear_weight();
    request.mutable_examples(1)->set_weight(0.5f);
    request.mutable_examples(2)->set_weight(2.0f);
    request.mutable_examples(3)->set_weight(0.0f);

    std::vector<Features> features;
    for (const Example& e : batch) features.push_back(e.features);
    v1::PredictResponse predicted;
    ASSERT_TRUE(IsOk(Predict(PredictRequestOf(name, features), &predicted)));
    ASSERT_EQ(predicted.version(), before.version());
    double weight = 0, loss = 0, right = 0;
    for (int i = 0; i < request.examples_size(); ++i) {
      const v1::Example& e = request.examples(i);
      const double w = e.has_weight() ? e.weight() : 1.0;
      weight += w;
      loss += w * LossOf(t.type, predicted.predictions(i), e.label());
      right += predicted.predictions(i).label() == e.label() ? w : 0;
    }

    v1::UpdateResponse response;
    ASSERT_TRUE(IsOk(Update(request, &response)));
    EXPECT_EQ(response.version(), before.version() + 1);
    EXPECT_EQ(response.examples(), 40);
    EXPECT_NEAR(response.loss_before(), loss / weight,
                1e-5 * (1 + loss / weight));
    if (t.type == v1::LINEAR_REGRESSION) {
      EXPECT_FALSE(response.has_accuracy_before());
    } else {
      ASSERT_TRUE(response.has_accuracy_before());
      EXPECT_NEAR(response.accuracy_before(), right / weight, 1e-9);
    }

    v1::ModelInfo after;
    ASSERT_TRUE(IsOk(GetModel(name, &after)));
    EXPECT_EQ(after.version(), response.version());
    EXPECT_EQ(after.examples_seen(), before.examples_seen() + 40);
    EXPECT_EQ(after.updates(), before.updates() + 1);
    EXPECT_DOUBLE_EQ(after.weight_seen(), before.weight_seen() + weight);
  }
}

TEST_F(ModelServiceTest, EpochsRepeatTheStepsButCountExamplesOnce) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  DataGen gen(5);
  v1::UpdateRequest request =
      UpdateRequestOf("m", gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 20));
  request.set_epochs(3);
  v1::UpdateResponse response;
  ASSERT_TRUE(IsOk(Update(request, &response)));
  EXPECT_EQ(response.examples(), 20);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  EXPECT_EQ(info.examples_seen(), 20u);
  EXPECT_EQ(info.steps(), 3u * 2u);  // 2 mini-batches of <= 16, 3 times
}

// learning_rate overrides the spec's rate for one update: the spec's own
// rate gives bit-identical weights to no override, another rate does not.
TEST_F(ModelServiceTest, LearningRateOverrideReplacesTheSpecRate) {
  DataGen gen(6);
  const std::vector<Example> batch =
      gen.Examples(v1::SOFTMAX_REGRESSION, kD, kK, 24);
  const std::vector<Features> probe = gen.Instances(kD, 6);
  const float rates[] = {0, 0.05f, 0.3f};  // 0 = the spec's 0.05
  std::vector<v1::PredictResponse> answers;
  for (float rate : rates) {
    const std::string name = absl::StrCat("lr-", answers.size());
    ASSERT_TRUE(IsOk(CreateModel(name, Spec(v1::SOFTMAX_REGRESSION, kD, kK))));
    v1::UpdateRequest request = UpdateRequestOf(name, batch);
    request.set_learning_rate(rate);
    ASSERT_TRUE(IsOk(Update(request)));
    answers.emplace_back();
    ASSERT_TRUE(IsOk(Predict(PredictRequestOf(name, probe), &answers.back())));
  }
  EXPECT_TRUE(BitEqual(answers[0], answers[1]));
  EXPECT_FALSE(BitEqual(answers[0], answers[2]));
}

TEST_F(ModelServiceTest, PinnedVersionPredictsExactlyAsThatVersionDid) {
  const TypeCase softmax = kTypes[2];
  ASSERT_NO_FATAL_FAILURE(CreateTrained("m", softmax));
  DataGen gen(8);
  const std::vector<Features> probe = gen.Instances(kD, 8);
  v1::PredictResponse then;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", probe), &then)));
  const uint64_t pinned = then.version();

  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(IsOk(Update(UpdateRequestOf(
        "m", gen.Examples(v1::SOFTMAX_REGRESSION, kD, kK, 16)))));
  }
  v1::PredictResponse now, again;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", probe), &now)));
  EXPECT_EQ(now.version(), pinned + 3);
  v1::PredictResponse moved = then;  // the model did move on
  moved.set_version(now.version());
  EXPECT_FALSE(BitEqual(now, moved));
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", probe, pinned), &again)));
  EXPECT_TRUE(BitEqual(again, then));
}

}  // namespace
}  // namespace lepton::server_test
