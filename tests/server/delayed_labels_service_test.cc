// Delayed labels over gRPC: Predict with return_prediction_ids, Update and
// StreamUpdate with {prediction_id, label} examples, NOT_FOUND for unknown or
// used ids, INVALID_ARGUMENT for features beside an id, FAILED_PRECONDITION
// when the server keeps no predictions.
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 5;

class DelayedLabelsServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ServiceTest::SetUp());
    ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, kD, 3))));
    ASSERT_TRUE(IsOk(CreateModel("ref", Spec(v1::SOFTMAX_REGRESSION, kD, 3))));
  }

  // Predicts `x` on "m" with ids.
  v1::PredictResponse PredictWithIds(const std::vector<Features>& x) {
    v1::PredictRequest request = PredictRequestOf("m", x);
    request.set_return_prediction_ids(true);
    v1::PredictResponse response;
    EXPECT_TRUE(IsOk(Predict(request, &response)));
    return response;
  }

  static v1::Example Label(uint64_t id, float label) {
    v1::Example e;
    e.set_prediction_id(id);
    e.set_label(label);
    return e;
  }

  DataGen gen_{7};
};

TEST_F(DelayedLabelsServiceTest, PredictReturnsIdsOnlyWhenAsked) {
  const std::vector<Features> x = gen_.Instances(kD, 4);
  v1::PredictResponse plain;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", x), &plain)));
  for (const v1::Prediction& p : plain.predictions()) {
    EXPECT_EQ(p.prediction_id(), 0u);
  }
  const v1::PredictResponse with_ids = PredictWithIds(x);
  ASSERT_EQ(with_ids.predictions_size(), 4);
  std::set<uint64_t> ids;
  for (const v1::Prediction& p : with_ids.predictions()) {
    EXPECT_NE(p.prediction_id(), 0u);
    ids.insert(p.prediction_id());
  }
  EXPECT_EQ(ids.size(), 4u);
  // The predictions themselves are the same.
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(SameBits(plain.predictions(i).value(),
                         with_ids.predictions(i).value()));
  }
}

TEST_F(DelayedLabelsServiceTest, UpdateByIdsLearnsLikeTheFeatures) {
  const std::vector<Features> x = gen_.Instances(kD, 4);
  const v1::PredictResponse served = PredictWithIds(x);
  v1::UpdateRequest by_id;
  by_id.set_model("m");
  v1::UpdateRequest direct;
  direct.set_model("ref");
  for (int i = 0; i < 4; ++i) {
    *by_id.add_examples() = Label(served.predictions(i).prediction_id(), i % 3);
    by_id.mutable_examples(i)->set_holdout(i == 2);  // kept, not trained on
    *direct.add_examples() = ToProto(x[i], i % 3);
    direct.mutable_examples(i)->set_holdout(i == 2);
  }
  v1::UpdateResponse a, b;
  ASSERT_TRUE(IsOk(Update(by_id, &a)));
  ASSERT_TRUE(IsOk(Update(direct, &b)));
  EXPECT_EQ(a.version(), 2u);
  EXPECT_EQ(a.examples(), 4);
  EXPECT_EQ(a.loss_before(), b.loss_before());
  EXPECT_EQ(a.accuracy_before(), b.accuracy_before());
  // Same weights: the same predictions, bit for bit.
  const std::vector<Features> probe = gen_.Instances(kD, 6);
  v1::PredictResponse pa, pb;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", probe), &pa)));
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("ref", probe), &pb)));
  for (int i = 0; i < 6; ++i) {
    for (int k = 0; k < 3; ++k) {
      EXPECT_TRUE(SameBits(pa.predictions(i).probabilities(k),
                           pb.predictions(i).probabilities(k)));
    }
  }
}

TEST_F(DelayedLabelsServiceTest, UnknownOrUsedIdsAreNotFound) {
  const v1::PredictResponse served = PredictWithIds(gen_.Instances(kD, 2));
  const uint64_t id0 = served.predictions(0).prediction_id();
  const uint64_t id1 = served.predictions(1).prediction_id();
  v1::UpdateRequest request;
  request.set_model("m");
  *request.add_examples() = Label(id0, 1);
  *request.add_examples() = Label(1234, 0);
  EXPECT_TRUE(IsError(Update(request), grpc::StatusCode::NOT_FOUND,
                      "examples[1].prediction_id: 1234 is unknown or expired"));
  EXPECT_EQ(VersionOf("m"), 1u);  // nothing applied
  request.mutable_examples(1)->set_prediction_id(id1);
  ASSERT_TRUE(IsOk(Update(request)));  // id0 was not consumed
  EXPECT_TRUE(IsError(Update(request), grpc::StatusCode::NOT_FOUND,
                      absl::StrCat("examples[0].prediction_id: ", id0,
                                   " is unknown or expired")));
  EXPECT_EQ(VersionOf("m"), 2u);
}

TEST_F(DelayedLabelsServiceTest, RetryWithTheSameUpdateIdIsAnswered) {
  const v1::PredictResponse served = PredictWithIds(gen_.Instances(kD, 1));
  v1::UpdateRequest request;
  request.set_model("m");
  request.set_update_id("retry-me");
  *request.add_examples() = Label(served.predictions(0).prediction_id(), 2);
  v1::UpdateResponse first, again;
  ASSERT_TRUE(IsOk(Update(request, &first)));
  ASSERT_TRUE(IsOk(Update(request, &again)));
  EXPECT_EQ(again.version(), first.version());
  EXPECT_EQ(again.loss_before(), first.loss_before());
  EXPECT_EQ(VersionOf("m"), 2u);
}

TEST_F(DelayedLabelsServiceTest, FeaturesBesideAnIdAreInvalid) {
  const v1::PredictResponse served = PredictWithIds(gen_.Instances(kD, 1));
  v1::UpdateRequest request;
  request.set_model("m");
  *request.add_examples() = ToProto(gen_.Dense(kD), 1);
  request.mutable_examples(0)->set_prediction_id(
      served.predictions(0).prediction_id());
  EXPECT_TRUE(IsError(Update(request), grpc::StatusCode::INVALID_ARGUMENT,
                      "examples[0].features: must be empty with "
                      "prediction_id"));
}

TEST_F(DelayedLabelsServiceTest, StreamUpdateResolvesIds) {
  const v1::PredictResponse served = PredictWithIds(gen_.Instances(kD, 3));
  v1::UpdateRequest request;
  request.set_model("m");
  for (const v1::Prediction& p : served.predictions()) {
    *request.add_examples() = Label(p.prediction_id(), 0);
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  auto stream = stub_->StreamUpdate(&context);
  ASSERT_TRUE(stream->Write(request));
  v1::UpdateResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.version(), 2u);
  EXPECT_EQ(response.examples(), 3);
  // The same ids again: used, so the stream ends with NOT_FOUND.
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(IsError(stream->Finish(), grpc::StatusCode::NOT_FOUND,
                      "examples[0].prediction_id: "));
  EXPECT_EQ(VersionOf("m"), 2u);
}

TEST_F(DelayedLabelsServiceTest, NoCacheMeansFailedPrecondition) {
  server::ServerOptions options;
  options.store.prediction_cache_entries = 0;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, kD, 3))));
  v1::PredictRequest request = PredictRequestOf("m", gen_.Instances(kD, 1));
  request.set_return_prediction_ids(true);
  v1::PredictResponse response;
  EXPECT_TRUE(IsError(Predict(request, &response),
                      grpc::StatusCode::FAILED_PRECONDITION,
                      "return_prediction_ids: "));
}

}  // namespace
}  // namespace lepton::server_test
