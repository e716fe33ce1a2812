// AddClasses over the service: the grown model's description, predictions
// of the newest and a pinned older version, the status codes of its errors
// (and of a rollback across the change), and the CLASSES_ADDED event on
// WatchModel.
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/server/service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 3;

class AddClassesServiceTest : public ServiceTest {
 protected:
  grpc::Status AddClasses(const std::string& name, int32_t num_classes,
                          v1::ModelInfo* info = nullptr) {
    v1::AddClassesRequest request;
    request.set_name(name);
    request.set_num_classes(num_classes);
    v1::ModelInfo ignored;
    return Call(&Stub::AddClasses, request, info ? info : &ignored);
  }
  grpc::Status Rollback(const std::string& name, uint64_t version) {
    v1::RollbackRequest request;
    request.set_name(name);
    request.set_version(version);
    v1::ModelInfo ignored;
    return Call(&Stub::Rollback, request, &ignored);
  }
  // Trains `name` on one batch of labels in [0, k).
  void Train(const std::string& name, int32_t k) {
    std::vector<Example> batch;
    for (int i = 0; i < 12; ++i) {
      Example e;
      e.features = DenseFeatures({0.1f * i, 1.0f - 0.2f * i, (i % 3) * 0.5f});
      e.label = static_cast<float>(i % k);
      batch.push_back(e);
    }
    ASSERT_TRUE(IsOk(Update(UpdateRequestOf(name, batch))));
  }
};

TEST_F(AddClassesServiceTest, GrowsTheModel) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, kD, 3))));
  Train("m", 3);
  const uint64_t before = VersionOf("m");
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(AddClasses("m", 5, &info)));
  EXPECT_EQ(info.name(), "m");
  EXPECT_EQ(info.version(), before + 1);
  EXPECT_EQ(info.spec().num_classes(), 5);
  EXPECT_EQ(info.examples_seen(), 12);
  // Equal: nothing changes.
  ASSERT_TRUE(IsOk(AddClasses("m", 5, &info)));
  EXPECT_EQ(info.version(), before + 1);

  const Features x = DenseFeatures({0.3f, 0.2f, 0.1f});
  v1::PredictRequest request = PredictRequestOf("m", {x});
  v1::PredictResponse newest, pinned;
  ASSERT_TRUE(IsOk(Predict(request, &newest)));
  ASSERT_EQ(newest.predictions_size(), 1);
  EXPECT_EQ(newest.predictions(0).probabilities_size(), 5);
  request.set_version(before);
  ASSERT_TRUE(IsOk(Predict(request, &pinned)));
  EXPECT_EQ(pinned.predictions(0).probabilities_size(), 3);
  // Label 4 is valid now.
  Train("m", 5);
  EXPECT_EQ(VersionOf("m"), before + 2);
}

TEST_F(AddClassesServiceTest, StatusCodes) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, kD, 3))));
  ASSERT_TRUE(IsOk(CreateModel("bin", Spec(v1::LOGISTIC_REGRESSION, kD))));
  EXPECT_TRUE(IsError(AddClasses("nope", 4), grpc::StatusCode::NOT_FOUND, ""));
  EXPECT_TRUE(IsError(AddClasses("bin", 4),
                      grpc::StatusCode::FAILED_PRECONDITION, "num_classes: "));
  EXPECT_TRUE(IsInvalid(AddClasses("m", 2), "num_classes"));
  EXPECT_TRUE(IsInvalid(AddClasses("m", 1 << 20), "num_classes"));
  ASSERT_TRUE(IsOk(AddClasses("m", 4)));
  EXPECT_TRUE(IsError(Rollback("m", 1), grpc::StatusCode::FAILED_PRECONDITION,
                      "version: "));
}

TEST_F(AddClassesServiceTest, WatchSeesClassesAdded) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, kD, 3))));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  v1::WatchModelRequest request;
  request.set_name("m");
  std::unique_ptr<grpc::ClientReader<v1::ModelEvent>> reader =
      stub_->WatchModel(&context, request);
  reader->WaitForInitialMetadata();
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(AddClasses("m", 7, &info)));
  v1::ModelEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.kind(), v1::CLASSES_ADDED) << event.ShortDebugString();
  EXPECT_EQ(event.model(), "m");
  EXPECT_EQ(event.version(), info.version());
  EXPECT_EQ(event.detail(), "num_classes 3 -> 7");
  context.TryCancel();
}

}  // namespace
}  // namespace lepton::server_test
