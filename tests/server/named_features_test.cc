// Named features over gRPC (Features.namespaces, ModelSpec.interactions and
// hash_seed): the spec fields round-trip, hashed instances predict and train
// exactly as the equivalent explicit sparse instances, the namespaces' order
// does not matter, and bad named features are INVALID_ARGUMENT naming the
// field, with nothing applied.
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/learning/feature_hashing.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

using Stream = grpc::ClientReaderWriter<v1::UpdateRequest, v1::UpdateResponse>;

constexpr int64_t kD = 1000;
constexpr uint32_t kSeed = 42;

// (namespace, [(name, value or absent)]).
struct Ns {
  std::string name;
  std::vector<std::pair<std::string, std::optional<float>>> features;
};

void AddNamespaces(const std::vector<Ns>& namespaces, v1::Features* f) {
  for (const Ns& ns : namespaces) {
    v1::Namespace* n = f->add_namespaces();
    n->set_name(ns.name);
    for (const auto& [name, value] : ns.features) {
      v1::NamedFeature* nf = n->add_features();
      nf->set_name(name);
      if (value.has_value()) nf->set_value(*value);
    }
  }
}

v1::ModelSpec NamedSpec(std::vector<std::string> interactions = {"ua"}) {
  v1::ModelSpec spec = Spec(v1::LOGISTIC_REGRESSION, kD);
  spec.set_hash_seed(kSeed);
  for (const std::string& i : interactions) spec.add_interactions(i);
  return spec;
}

// user/age (3) and ad/id123 (absent: 1) under seed 42, D 1000 hash to 437
// and 4, and their "ua" pair to 393 (tests/core/feature_hashing_test.cc).
const std::vector<Ns> kExample = {{"user", {{"age", 3.0f}}},
                                  {"ad", {{"id123", std::nullopt}}}};
const Features kExampleHashed = SparseFeatures({4, 393, 437}, {1, 3, 3});

class NamedFeaturesTest : public ServiceTest {};

TEST_F(NamedFeaturesTest, SpecFieldsRoundTrip) {
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(CreateModel("m", NamedSpec({"ua", "uu"}), &info)));
  EXPECT_EQ(info.spec().hash_seed(), kSeed);
  ASSERT_EQ(info.spec().interactions_size(), 2);
  EXPECT_EQ(info.spec().interactions(0), "ua");
  EXPECT_EQ(info.spec().interactions(1), "uu");
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  EXPECT_EQ(info.spec().hash_seed(), kSeed);
  EXPECT_EQ(info.spec().interactions_size(), 2);
  EXPECT_TRUE(IsInvalid(CreateModel("bad", NamedSpec({"ua", "abc"})),
                        "spec.interactions[1]"));
}

TEST_F(NamedFeaturesTest, NamedInstancesTrainAndPredictAsTheirHashedIndices) {
  // Model "named" learns from names, model "explicit" from the indices the
  // recipe gives for them: the two end with the same weights.
  ASSERT_TRUE(IsOk(CreateModel("named", NamedSpec())));
  ASSERT_TRUE(IsOk(CreateModel("explicit", NamedSpec())));
  v1::UpdateRequest named;
  named.set_model("named");
  named.set_learning_rate(0.5f);
  v1::Example* e = named.add_examples();
  AddNamespaces(kExample, e->mutable_features());
  e->set_label(1);
  v1::UpdateRequest expl = UpdateRequestOf("explicit", {{kExampleHashed, 1}});
  expl.set_learning_rate(0.5f);
  v1::UpdateResponse named_response, expl_response;
  ASSERT_TRUE(IsOk(Update(named, &named_response)));
  ASSERT_TRUE(IsOk(Update(expl, &expl_response)));
  EXPECT_EQ(named_response.version(), 2u);
  EXPECT_EQ(named_response.loss_before(), expl_response.loss_before());

  // Probes of single indices: the hashed ones were trained, 5 was not.
  const std::vector<Features> probes = {
      SparseFeatures({4}, {1}), SparseFeatures({393}, {1}),
      SparseFeatures({437}, {1}), SparseFeatures({5}, {1}), kExampleHashed};
  v1::PredictResponse named_probes, expl_probes;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("named", probes), &named_probes)));
  ASSERT_TRUE(
      IsOk(Predict(PredictRequestOf("explicit", probes), &expl_probes)));
  EXPECT_TRUE(BitEqual(named_probes, expl_probes));
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(named_probes.predictions(i).value(),
              named_probes.predictions(3).value())
        << "probe " << i;
  }

  // The named instance predicts what its hashed indices do, also mixed in a
  // batch with plain dense and sparse instances.
  v1::PredictRequest mixed =
      PredictRequestOf("named", {SparseFeatures({5}, {1}), Features(),
                                 DenseFeatures(std::vector<float>(kD, 0.01f))});
  AddNamespaces(kExample, mixed.mutable_instances(1));
  v1::PredictResponse got, want;
  ASSERT_TRUE(IsOk(Predict(mixed, &got)));
  ASSERT_TRUE(IsOk(Predict(
      PredictRequestOf("named", {SparseFeatures({5}, {1}), kExampleHashed,
                                 DenseFeatures(std::vector<float>(kD, 0.01f))}),
      &want)));
  EXPECT_TRUE(BitEqual(got, want));
}

TEST_F(NamedFeaturesTest, OrderOfNamespacesAndFeaturesDoesNotMatter) {
  ASSERT_TRUE(IsOk(CreateModel("m", NamedSpec({"ua", "uu", "cu"}))));
  const std::vector<Ns> a = {
      {"user", {{"age", 3.0f}, {"city=paris", std::nullopt}, {"age", 0.5f}}},
      {"ad", {{"id123", 0.25f}, {"campaign=7", std::nullopt}}},
      {"ctx", {{"hour=13", std::nullopt}}},
      {"url", {{"path=/x", 2.0f}}}};
  const std::vector<Ns> b = {
      {"url", {{"path=/x", 2.0f}}},
      {"ctx", {{"hour=13", std::nullopt}}},
      {"ad", {{"campaign=7", std::nullopt}, {"id123", 0.25f}}},
      {"user", {{"age", 0.5f}, {"age", 3.0f}, {"city=paris", std::nullopt}}}};
  // Train on the first order so the weights are not all zero.
  v1::UpdateRequest update;
  update.set_model("m");
  update.set_learning_rate(0.3f);
  for (int i = 0; i < 3; ++i) {
    v1::Example* e = update.add_examples();
    AddNamespaces(i % 2 == 0 ? a : b, e->mutable_features());
    e->set_label(i % 2);
  }
  ASSERT_TRUE(IsOk(Update(update)));
  v1::PredictRequest first, second;
  first.set_model("m");
  second.set_model("m");
  AddNamespaces(a, first.add_instances());
  AddNamespaces(b, second.add_instances());
  v1::PredictResponse r1, r2;
  ASSERT_TRUE(IsOk(Predict(first, &r1)));
  ASSERT_TRUE(IsOk(Predict(second, &r2)));
  EXPECT_TRUE(BitEqual(r1, r2));
  EXPECT_NE(r1.predictions(0).value(), 0.5f);  // the weights matter
}

TEST_F(NamedFeaturesTest, StreamUpdateHashesNamedFeatures) {
  ASSERT_TRUE(IsOk(CreateModel("named", NamedSpec())));
  ASSERT_TRUE(IsOk(CreateModel("explicit", NamedSpec())));
  v1::UpdateRequest named;
  named.set_model("named");
  v1::Example* e = named.add_examples();
  AddNamespaces(kExample, e->mutable_features());
  e->set_label(1);
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->StreamUpdate(&context);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(stream->Write(named));
    v1::UpdateResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.version(), 2u + i);
  }
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(IsOk(stream->Finish()));
  const v1::UpdateRequest expl =
      UpdateRequestOf("explicit", {{kExampleHashed, 1}});
  ASSERT_TRUE(IsOk(Update(expl)));
  ASSERT_TRUE(IsOk(Update(expl)));
  v1::PredictResponse p1, p2;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("named", {kExampleHashed}), &p1)));
  ASSERT_TRUE(
      IsOk(Predict(PredictRequestOf("explicit", {kExampleHashed}), &p2)));
  EXPECT_TRUE(BitEqual(p1, p2));
}

TEST_F(NamedFeaturesTest, BadNamedFeaturesNameTheFieldAndChangeNothing) {
  ASSERT_TRUE(IsOk(CreateModel("m", NamedSpec())));
  // An Update whose second example has an empty feature name.
  v1::UpdateRequest update;
  update.set_model("m");
  for (int i = 0; i < 2; ++i) {
    v1::Example* e = update.add_examples();
    AddNamespaces(kExample, e->mutable_features());
    e->set_label(1);
  }
  update.mutable_examples(1)
      ->mutable_features()
      ->mutable_namespaces(1)
      ->add_features()
      ->set_value(2.0f);
  EXPECT_TRUE(IsInvalid(Update(update),
                        "examples[1].features.namespaces[1].features[1].name"));
  // A non-finite value.
  update.mutable_examples(1)
      ->mutable_features()
      ->mutable_namespaces(1)
      ->mutable_features(1)
      ->set_name("x");
  update.mutable_examples(1)
      ->mutable_features()
      ->mutable_namespaces(1)
      ->mutable_features(1)
      ->set_value(std::numeric_limits<float>::infinity());
  EXPECT_TRUE(IsInvalid(
      Update(update), "examples[1].features.namespaces[1].features[1].value"));
  // Namespaces with dense values.
  v1::PredictRequest predict = PredictRequestOf(
      "m", {SparseFeatures({}, {}), DenseFeatures(std::vector<float>(kD, 1))});
  AddNamespaces(kExample, predict.mutable_instances(1));
  v1::PredictResponse response;
  grpc::Status s = Predict(predict, &response);
  EXPECT_TRUE(IsInvalid(s, "instances[1].namespaces"));
  EXPECT_EQ(s.error_message(),
            "instances[1].namespaces: cannot be combined with dense");
  // An explicit index out of range next to the names.
  predict = PredictRequestOf("m", {SparseFeatures({kD}, {1})});
  AddNamespaces(kExample, predict.mutable_instances(0));
  EXPECT_TRUE(
      IsInvalid(Predict(predict, &response), "instances[0].indices[0]"));
  // Nothing was applied.
  EXPECT_EQ(VersionOf("m"), 1u);
  // No such model.
  predict.set_model("nope");
  EXPECT_TRUE(IsError(Predict(predict, &response), grpc::StatusCode::NOT_FOUND,
                      "model \"nope\" not found"));
  update.set_model("nope");
  EXPECT_TRUE(IsError(Update(update), grpc::StatusCode::NOT_FOUND,
                      "model \"nope\" not found"));
}

TEST_F(NamedFeaturesTest, TooManyInteractionPairsAreRefused) {
  ASSERT_TRUE(IsOk(CreateModel("m", NamedSpec({"uu"}))));
  // One instance: 1,500 features crossed with themselves, over 2^20.
  Ns big{"user", {}};
  for (int i = 0; i < 1500; ++i) big.features.push_back({std::to_string(i), 1});
  v1::PredictRequest one;
  one.set_model("m");
  AddNamespaces({big}, one.add_instances());
  v1::PredictResponse response;
  EXPECT_TRUE(IsInvalid(Predict(one, &response), "instances[0].namespaces"));
  // 17 instances of 1,447 (1,047,628 entries each, under the instance
  // limit) exceed the request's 2^24, and are refused before any hashing.
  big.features.resize(1447);
  v1::PredictRequest many;
  many.set_model("m");
  for (int i = 0; i < 17; ++i) AddNamespaces({big}, many.add_instances());
  EXPECT_TRUE(IsError(Predict(many, &response),
                      grpc::StatusCode::RESOURCE_EXHAUSTED, "instances: "));
}

}  // namespace
}  // namespace lepton::server_test
