// Tests of PredictRequest.min_version (read your writes): a Predict that
// waits, without holding a thread, for the model to reach a version or to
// be created, up to its deadline; and ends at a shutdown.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/server/service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 4;

class MinVersionTest : public ServiceTest {
 protected:
  v1::PredictRequest Probe(const std::string& model, uint64_t min_version) {
    v1::PredictRequest request =
        PredictRequestOf(model, {DenseFeatures({1, 0, 0, 1})});
    request.set_min_version(min_version);
    return request;
  }

  // Predict with a deadline `timeout` from now.
  grpc::Status PredictWithin(const v1::PredictRequest& request,
                             absl::Duration timeout,
                             v1::PredictResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(timeout));
    return stub_->Predict(&context, request, response);
  }

  grpc::Status Learn(const std::string& model) {
    return Update(UpdateRequestOf(
        model, {Example{DenseFeatures({1, 0, 0, 1}), 1.0f, 1.0f}}));
  }
};

TEST_F(MinVersionTest, WaitsForTheVersionThenAnswersFromIt) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  std::atomic<bool> answered{false};
  grpc::Status status;
  v1::PredictResponse response;
  std::thread reader([&] {
    status = PredictWithin(Probe("m", 3), absl::Seconds(30), &response);
    answered = true;
  });
  ASSERT_TRUE(IsOk(Learn("m")));  // version 2: not yet
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(answered.load());
  ASSERT_TRUE(IsOk(Learn("m")));  // version 3
  reader.join();
  ASSERT_TRUE(IsOk(status)) << status.error_message();
  EXPECT_EQ(response.version(), 3u);
  ASSERT_EQ(response.predictions_size(), 1);
}

TEST_F(MinVersionTest, AVersionAlreadyThereAnswersAtOnce) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_TRUE(IsOk(Learn("m")));
  v1::PredictResponse response;
  grpc::Status status =
      PredictWithin(Probe("m", 1), absl::Seconds(30), &response);
  ASSERT_TRUE(IsOk(status)) << status.error_message();
  EXPECT_EQ(response.version(), 2u);
}

TEST_F(MinVersionTest, AVersionNeverReachedIsDeadlineExceeded) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  v1::PredictResponse response;
  const absl::Time start = absl::Now();
  grpc::Status status =
      PredictWithin(Probe("m", 5), absl::Milliseconds(300), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << status.error_message();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  // The server is fine, and later waits work.
  ASSERT_TRUE(IsOk(Learn("m")));
  EXPECT_EQ(VersionOf("m"), 2u);
}

TEST_F(MinVersionTest, AModelNotYetCreatedIsWaitedFor) {
  std::atomic<bool> answered{false};
  grpc::Status status;
  v1::PredictResponse response;
  std::thread reader([&] {
    status = PredictWithin(Probe("later", 2), absl::Seconds(30), &response);
    answered = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(answered.load());
  ASSERT_TRUE(IsOk(CreateModel("later", Spec(v1::LINEAR_REGRESSION, kD))));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(answered.load());  // version 1 < 2
  ASSERT_TRUE(IsOk(Learn("later")));
  reader.join();
  ASSERT_TRUE(IsOk(status)) << status.error_message();
  EXPECT_EQ(response.version(), 2u);

  // Without min_version, a missing model is NOT_FOUND at once.
  v1::PredictResponse none;
  EXPECT_EQ(
      PredictWithin(Probe("missing", 0), absl::Seconds(30), &none).error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_F(MinVersionTest, ADeletedModelIsWaitedForAgain) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  std::atomic<bool> answered{false};
  grpc::Status status;
  v1::PredictResponse response;
  std::thread reader([&] {
    status = PredictWithin(Probe("m", 2), absl::Seconds(30), &response);
    answered = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(IsOk(DeleteModel("m")));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(answered.load());
  ASSERT_TRUE(IsOk(Learn("m")));
  reader.join();
  ASSERT_TRUE(IsOk(status)) << status.error_message();
  EXPECT_EQ(response.version(), 2u);
}

TEST_F(MinVersionTest, AShutdownEndsAWaitWithUnavailable) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}, Transport::kLoopback));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  grpc::Status status;
  v1::PredictResponse response;
  std::thread reader([&] {
    status = PredictWithin(Probe("m", 9), absl::Seconds(30), &response);
  });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  server_->Shutdown();
  reader.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace lepton::server_test
