// The serving threads (server/rpc/call_poller.h): how many there are, that
// nothing else of gRPC polls beside them, what they hand to workers, and
// PollerAlarm.
#include "server/rpc/call_poller.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

// The names of this process's threads, counted.
std::map<std::string, int> ThreadNames() {
  std::map<std::string, int> names;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    ++names[name];
  }
  return names;
}

class ServingThreadsTest : public ServiceTest {
 protected:
  void SetUp() override {}

  // Calls from several threads at once, every one answered.
  void CallFromThreads() {
    ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, 8))));
    std::vector<std::thread> callers;
    std::atomic<int> failed{0};
    for (int t = 0; t < 8; ++t) {
      callers.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
          v1::ModelInfo info;
          if (!GetModel("m", &info).ok()) ++failed;
        }
      });
    }
    for (std::thread& c : callers) c.join();
    EXPECT_EQ(failed.load(), 0);
  }
};

TEST_F(ServingThreadsTest, OneThreadPollsAndNoneOfGrpcsOwn) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}, Transport::kLoopback));
  ASSERT_NO_FATAL_FAILURE(CallFromThreads());
  std::map<std::string, int> names = ThreadNames();
  EXPECT_EQ(names[server::rpc::CallPoller::kThreadName], 1);
  // The callback API's pollers and the sync API's: each would take part in
  // handing the poller role around, a wake-up or two more per call.
  EXPECT_EQ(names.count("nexting_thread"), 0u);
  EXPECT_EQ(names.count("grpcpp_sync_ser"), 0u);
}

TEST_F(ServingThreadsTest, MoreThreadsServeTheSameCalls) {
  server::ServerOptions options;
  options.serving_threads = 3;
  ASSERT_NO_FATAL_FAILURE(StartServer(options, Transport::kLoopback));
  ASSERT_NO_FATAL_FAILURE(CallFromThreads());
  EXPECT_EQ(ThreadNames()[server::rpc::CallPoller::kThreadName], 3);
  server_.reset();
  EXPECT_EQ(ThreadNames().count(server::rpc::CallPoller::kThreadName), 0u);
}

TEST_F(ServingThreadsTest, OutOfRangeIsRefused) {
  for (int threads : {0, 65}) {
    for (const char* field : {"serving_threads", "predict_threads"}) {
      server::ServerOptions options;
      options.listen = "";
      if (std::string(field) == "serving_threads") {
        options.serving_threads = threads;
      } else {
        options.service.predict_threads = threads;
      }
      absl::StatusOr<std::unique_ptr<server::Server>> s =
          server::Server::Start(options);
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(s.status().message().find(field), std::string::npos);
    }
  }
}

// A Predict above the inline limit is computed on a prediction worker: the
// same answers, instance for instance, as one instance per call on the
// polling thread, from one version.
TEST_F(ServingThreadsTest, LargePredictionsAgreeWithSmallOnes) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}));
  constexpr int64_t kD = 12;
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, kD, 3))));
  DataGen gen(7);
  ASSERT_TRUE(IsOk(Update(
      UpdateRequestOf("m", gen.Examples(v1::SOFTMAX_REGRESSION, kD, 3, 64)))));
  const int n = 3 * server::ModelService::kInlinePredictInstances + 1;
  const std::vector<Features> batch = gen.Instances(kD, n);
  v1::PredictResponse whole;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", batch), &whole)));
  ASSERT_EQ(whole.predictions_size(), n);
  for (int i = 0; i < n; ++i) {
    v1::PredictResponse one;
    ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", {batch[i]}), &one)));
    EXPECT_EQ(one.version(), whole.version());
    EXPECT_EQ(one.predictions(0).SerializeAsString(),
              whole.predictions(i).SerializeAsString())
        << "instance " << i;
  }
}

// Creating and deleting a model, and predicting a large batch, wait for a
// worker; the polling thread answers other calls meanwhile. With every
// worker held, such calls pass their deadline in the queue and apply
// nothing, while small calls are answered.
TEST_F(ServingThreadsTest, LongWorkWaitsForAWorkerWhileThePollerServes) {
  server::ServerOptions options;
  options.service.update_threads = 1;
  options.service.predict_threads = 1;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  constexpr int64_t kD = 4;
  ASSERT_TRUE(IsOk(CreateModel("kept", Spec(v1::LOGISTIC_REGRESSION, kD))));
  server::ModelService& service = server_->service();
  absl::Notification held, release;
  auto hold = [&] {
    held.Notify();
    release.WaitForNotification();
  };
  ASSERT_TRUE(service.SubmitUpdate("", hold));
  held.WaitForNotification();
  absl::Notification prediction_held;
  ASSERT_TRUE(service.SubmitPrediction([&] {
    prediction_held.Notify();
    release.WaitForNotification();
  }));
  prediction_held.WaitForNotification();

  auto soon = [] {
    return std::chrono::system_clock::now() + std::chrono::milliseconds(300);
  };
  // The code of a call of `stub_` with a deadline 300 ms away.
  auto code_soon = [&](auto rpc, const auto& request, auto* response) {
    grpc::ClientContext context;
    context.set_deadline(soon());
    return (stub_.get()->*rpc)(&context, request, response).error_code();
  };
  const int large = server::ModelService::kInlinePredictInstances + 1;
  DataGen gen(3);
  v1::CreateModelRequest create;
  create.set_name("new");
  *create.mutable_spec() = Spec(v1::LOGISTIC_REGRESSION, kD);
  v1::ModelInfo info;
  EXPECT_EQ(code_soon(&Stub::CreateModel, create, &info),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::DeleteModelRequest remove;
  remove.set_name("kept");
  v1::DeleteModelResponse deleted;
  EXPECT_EQ(code_soon(&Stub::DeleteModel, remove, &deleted),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::PredictResponse predicted;
  EXPECT_EQ(
      code_soon(&Stub::Predict,
                PredictRequestOf("kept", gen.Instances(kD, large)), &predicted),
      grpc::StatusCode::DEADLINE_EXCEEDED);
  auto inference = inference::GRPCInferenceService::NewStub(channel_);
  auto infer = [&](int rows) {
    inference::ModelInferRequest request;
    request.set_model_name("kept");
    auto* input = request.add_inputs();
    input->set_name("features");
    input->set_datatype("FP32");
    input->add_shape(rows);
    input->add_shape(kD);
    for (int64_t i = 0; i < rows * kD; ++i) {
      input->mutable_contents()->add_fp32_contents(0.5f);
    }
    grpc::ClientContext context;
    context.set_deadline(soon());
    inference::ModelInferResponse response;
    return inference->ModelInfer(&context, request, &response);
  };
  EXPECT_EQ(infer(large).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // Meanwhile the small calls are answered on the polling thread.
  EXPECT_TRUE(IsOk(infer(1)));
  v1::PredictResponse small;
  EXPECT_TRUE(
      IsOk(Predict(PredictRequestOf("kept", gen.Instances(kD, 1)), &small)));
  EXPECT_TRUE(IsOk(GetModel("kept", &info)));

  release.Notify();
  absl::Notification drained;
  ASSERT_TRUE(service.SubmitUpdate("", [&] { drained.Notify(); }));
  drained.WaitForNotification();
  // The expired create and delete applied nothing.
  EXPECT_EQ(GetModel("new", &info).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(IsOk(GetModel("kept", &info)));
  EXPECT_TRUE(IsOk(infer(large)));
  EXPECT_TRUE(IsOk(CreateModel("new", Spec(v1::LOGISTIC_REGRESSION, kD))));
  EXPECT_TRUE(IsOk(DeleteModel("kept")));
}

// A poller of a queue of its own.
class PollerAlarmTest : public ::testing::Test {
 protected:
  PollerAlarmTest() : poller_(std::make_unique<grpc::CompletionQueue>()) {
    poller_.Start();
  }
  ~PollerAlarmTest() override { poller_.ShutdownAndJoin(); }
  server::rpc::CallPoller poller_;
};

TEST_F(PollerAlarmTest, RunsOnThePollerWhenDueOrFalseOnceCancelled) {
  absl::Notification due;
  char ran_on[16] = {};
  bool due_ok = false;
  server::rpc::PollerAlarm now;
  now.Set(&poller_, absl::Now(), [&](bool ok) {
    due_ok = ok;
    pthread_getname_np(pthread_self(), ran_on, sizeof(ran_on));
    due.Notify();
  });
  ASSERT_TRUE(due.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(due_ok);
  EXPECT_STREQ(ran_on, server::rpc::CallPoller::kThreadName);

  absl::Notification cancelled;
  bool cancelled_ok = true;
  {
    server::rpc::PollerAlarm later;
    later.Set(&poller_, absl::Now() + absl::Hours(1), [&](bool ok) {
      cancelled_ok = ok;
      cancelled.Notify();
    });
    // Destroyed while due in an hour: cancelled, run at once with false.
  }
  ASSERT_TRUE(cancelled.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_FALSE(cancelled_ok);
}

// An alarm destroyed while its timer fires: the run (true or false) still
// comes, once, and nothing is used after it is freed (gRPC's alarm takes its
// reference for the event only once its timer has fired). Many alarms, each
// destroyed about when it is due.
TEST_F(PollerAlarmTest, AnAlarmDestroyedAsItFiresRunsOnce) {
  constexpr int kAlarms = 3000;
  std::atomic<int> runs{0};
  for (int i = 0; i < kAlarms; ++i) {
    server::rpc::PollerAlarm alarm;
    const absl::Duration due = absl::Microseconds(100 * (i % 20));
    alarm.Set(&poller_, absl::Now() + due, [&](bool) { ++runs; });
    absl::SleepFor(due);
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (runs.load() < kAlarms && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(runs.load(), kAlarms);
}

// Once the queue is shut down, an alarm set is dropped: gRPC would abort on
// it (a WatchModel's throttle may be set by a publishing thread late).
TEST_F(PollerAlarmTest, AnAlarmSetAfterTheShutdownNeverRuns) {
  poller_.ShutdownAndJoin();
  bool ran = false;
  server::rpc::PollerAlarm late;
  late.Set(&poller_, absl::Now(), [&](bool) { ran = true; });
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace lepton::server_test
