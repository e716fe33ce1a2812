// The server's limits: --max_models (CreateModel and ImportModel beyond it
// are RESOURCE_EXHAUSTED naming the limit), per-call deadlines (an Update or
// a StreamUpdate request whose deadline passed while it waited for an update
// worker applies nothing), --max_concurrent_streams (a connection's calls
// beyond it wait), and the request metrics the interceptor keeps.
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 4;

std::string MetricValue(const std::string& text, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      return std::string(line);
    }
  }
  return "";
}

class LimitsTest : public ServiceTest {
 protected:
  // Keeps the (single) update worker busy until Release().
  void BlockWorker() {
    ASSERT_TRUE(server_->service().SubmitUpdate("", [this] {
      blocked_.Notify();
      release_.WaitForNotification();
    }));
    blocked_.WaitForNotification();
  }
  void Release() { release_.Notify(); }
  // Returns once every task queued before it has run.
  void WaitForQueue() {
    absl::Notification done;
    ASSERT_TRUE(server_->service().SubmitUpdate("", [&] { done.Notify(); }));
    done.WaitForNotification();
  }
  v1::UpdateRequest Request() {
    return UpdateRequestOf("m", gen_.Examples(v1::LINEAR_REGRESSION, kD, 0, 4));
  }
  ModelInfo Info() {
    absl::StatusOr<ModelInfo> info = server_->store().GetModel("m");
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : ModelInfo{};
  }

  absl::Notification blocked_, release_;
  DataGen gen_{7};
};

TEST_F(LimitsTest, MaxModelsRefusesCreateAndImportBeyondIt) {
  server::ServerOptions options;
  options.store.max_models = 2;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  const v1::ModelSpec spec = Spec(v1::LINEAR_REGRESSION, kD);
  ASSERT_TRUE(IsOk(CreateModel("a", spec)));
  ASSERT_TRUE(IsOk(CreateModel("b", spec)));
  EXPECT_TRUE(IsError(CreateModel("c", spec),
                      grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "max_models: the server holds 2 models, at or above "
                      "its limit of 2"));

  v1::ExportModelRequest export_request;
  export_request.set_name("a");
  v1::ExportModelResponse exported;
  ASSERT_TRUE(IsOk(Call(&Stub::ExportModel, export_request, &exported)));
  v1::ImportModelRequest import_request;
  import_request.set_name("d");
  import_request.set_model(exported.model());
  v1::ModelInfo imported;
  EXPECT_TRUE(IsError(Call(&Stub::ImportModel, import_request, &imported),
                      grpc::StatusCode::RESOURCE_EXHAUSTED, "max_models: "));
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(ListModels(&list)));
  EXPECT_EQ(list.models_size(), 2);

  // A deleted model frees its place.
  ASSERT_TRUE(IsOk(DeleteModel("a")));
  EXPECT_TRUE(IsOk(Call(&Stub::ImportModel, import_request, &imported)));
  EXPECT_TRUE(IsError(CreateModel("c", spec),
                      grpc::StatusCode::RESOURCE_EXHAUSTED, "max_models: "));
  EXPECT_EQ(MetricValue(server_->RenderMetrics(),
                        "lepton_requests_total{code=\"RESOURCE_EXHAUSTED\","
                        "method=\"CreateModel\"}"),
            "2");
}

TEST_F(LimitsTest, MaxModelsZeroMeansNoLimit) {
  const v1::ModelSpec spec = Spec(v1::LINEAR_REGRESSION, kD);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(IsOk(CreateModel(absl::StrCat("m", i), spec))) << i;
  }
}

TEST_F(LimitsTest, NegativeLimitsAreRejectedAtStart) {
  server::ServerOptions options;
  options.store.max_models = -1;
  EXPECT_EQ(server::Server::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.store.max_models = 0;
  options.max_concurrent_streams = -1;
  EXPECT_EQ(server::Server::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LimitsTest, UpdatePastItsDeadlineInTheQueueAppliesNothing) {
  server::ServerOptions options;
  options.service.update_threads = 1;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(BlockWorker());

  // Queued behind the busy worker, and its deadline passes there.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(200));
  v1::UpdateResponse response;
  EXPECT_EQ(stub_->Update(&context, Request(), &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // And one without a deadline, queued after it: the control.
  grpc::Status late;
  std::thread control([&] { late = Update(Request()); });
  absl::SleepFor(absl::Milliseconds(100));
  // Both of m's calls wait (the expired one until a worker finds it), and
  // the metrics say so per model.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (server_->service().QueuedByModel()["m"] < 2 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(server_->service().QueuedByModel()["m"], 2);
  EXPECT_EQ(MetricValue(server_->RenderMetrics(),
                        "lepton_model_update_queue_depth{model=\"m\"}"),
            "2");
  Release();
  control.join();
  ASSERT_NO_FATAL_FAILURE(WaitForQueue());

  EXPECT_TRUE(IsOk(late));
  const ModelInfo info = Info();
  EXPECT_EQ(info.version, 2u) << "only the control update was applied";
  EXPECT_EQ(info.counters.updates, 1u);
  EXPECT_EQ(info.counters.examples_seen, 4u);
}

TEST_F(LimitsTest, StreamRequestPastTheDeadlineInTheQueueAppliesNothing) {
  server::ServerOptions options;
  options.service.update_threads = 1;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(BlockWorker());

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(200));
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::UpdateRequest, v1::UpdateResponse>>
      stream = stub_->StreamUpdate(&context);
  ASSERT_TRUE(stream->Write(Request()));
  absl::SleepFor(absl::Milliseconds(400));  // past the deadline, still queued
  Release();
  ASSERT_NO_FATAL_FAILURE(WaitForQueue());
  stream->WritesDone();
  v1::UpdateResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  const ModelInfo info = Info();
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.counters.examples_seen, 0u);
}

TEST_F(LimitsTest, CancelledUpdateInTheQueueAppliesNothing) {
  server::ServerOptions options;
  options.service.update_threads = 1;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(BlockWorker());

  grpc::ClientContext context;
  grpc::Status status;
  std::thread caller([&] {
    v1::UpdateResponse response;
    status = stub_->Update(&context, Request(), &response);
  });
  absl::SleepFor(absl::Milliseconds(200));  // the call reaches the queue
  context.TryCancel();
  caller.join();
  absl::SleepFor(absl::Milliseconds(100));  // the server sees the cancel
  Release();
  ASSERT_NO_FATAL_FAILURE(WaitForQueue());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(Info().version, 1u);
  EXPECT_EQ(Info().counters.examples_seen, 0u);
}

// Over loopback: HTTP/2 stream limits belong to a real connection.
TEST_F(LimitsTest, MaxConcurrentStreamsMakesFurtherCallsWait) {
  for (int limit : {0, 1}) {
    SCOPED_TRACE(absl::StrCat("max_concurrent_streams=", limit));
    server::ServerOptions options;
    options.max_concurrent_streams = limit;
    ASSERT_NO_FATAL_FAILURE(StartServer(options, Transport::kLoopback));
    ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));

    // One open call (a stream waiting for its first request) holds a slot.
    grpc::ClientContext stream_context;
    auto stream = stub_->StreamUpdate(&stream_context);
    absl::SleepFor(absl::Milliseconds(100));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(500));
    v1::ModelInfo info;
    v1::GetModelRequest request;
    request.set_name("m");
    const grpc::Status blocked = stub_->GetModel(&context, request, &info);
    if (limit == 1) {
      EXPECT_EQ(blocked.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    } else {
      EXPECT_TRUE(IsOk(blocked));
    }
    stream->WritesDone();
    EXPECT_TRUE(IsOk(stream->Finish()));
    // The slot is free again.
    EXPECT_TRUE(IsOk(GetModel("m", &info)));
  }
}

TEST_F(LimitsTest, InterceptorCountsCallsByMethodAndCode) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  v1::PredictResponse predictions;
  ASSERT_TRUE(IsOk(
      Predict(PredictRequestOf("m", gen_.Instances(kD, 3)), &predictions)));
  ASSERT_TRUE(IsOk(
      Predict(PredictRequestOf("m", gen_.Instances(kD, 3)), &predictions)));
  // An index out of range: INVALID_ARGUMENT.
  EXPECT_EQ(Predict(PredictRequestOf("m", {SparseFeatures({kD + 5}, {1})}),
                    &predictions)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      Predict(PredictRequestOf("nope", gen_.Instances(kD, 1)), &predictions)
          .error_code(),
      grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(IsOk(Update(Request())));

  const std::string text = server_->RenderMetrics();
  EXPECT_EQ(MetricValue(
                text, "lepton_requests_total{code=\"OK\",method=\"Predict\"}"),
            "2");
  EXPECT_EQ(MetricValue(text,
                        "lepton_requests_total{code=\"INVALID_ARGUMENT\","
                        "method=\"Predict\"}"),
            "1");
  EXPECT_EQ(MetricValue(text,
                        "lepton_requests_total{code=\"NOT_FOUND\","
                        "method=\"Predict\"}"),
            "1");
  EXPECT_EQ(MetricValue(text,
                        "lepton_request_duration_seconds_count{method="
                        "\"Predict\"}"),
            "4");
  EXPECT_EQ(
      MetricValue(text, "lepton_requests_total{code=\"OK\",method=\"Update\"}"),
      "1");
  EXPECT_EQ(MetricValue(text, "lepton_model_version{model=\"m\"}"), "2");
  EXPECT_EQ(MetricValue(text, "lepton_model_examples_seen_total{model=\"m\"}"),
            "4");
  EXPECT_EQ(MetricValue(text, "lepton_models"), "1");
}

}  // namespace
}  // namespace lepton::server_test
