// The client library against a real Lepton service over an in-process
// channel: every call, the status mapping, the pipelined update stream and a
// watch on a thread of its own.
#include "client/client.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/model_watch.h"
#include "client/update_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace lepton::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.listen = "";  // in-process only
    options.service.max_batch = 100;
    absl::StatusOr<std::unique_ptr<server::Server>> server =
        server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ =
        std::make_unique<Client>(server_->InProcessChannel(), ClientOptions{});
  }

  // A logistic model of 2 features.
  void CreateLogistic(const std::string& name) {
    v1::ModelSpec spec;
    spec.set_type(v1::LOGISTIC_REGRESSION);
    spec.set_num_features(2);
    ASSERT_TRUE(client_->CreateModel(name, spec).ok());
  }

  // `n` examples with dense features and `label`.
  static v1::UpdateRequest Batch(const std::string& model, int n, float label) {
    v1::UpdateRequest request;
    request.set_model(model);
    for (int i = 0; i < n; ++i) {
      v1::Example* e = request.add_examples();
      e->mutable_features()->add_dense(1);
      e->mutable_features()->add_dense(static_cast<float>(i));
      e->set_label(label);
    }
    return request;
  }

  std::unique_ptr<server::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, ModelLifecycle) {
  v1::ModelSpec spec;
  spec.set_type(v1::SOFTMAX_REGRESSION);
  spec.set_num_features(3);
  spec.set_num_classes(4);
  absl::StatusOr<v1::ModelInfo> created = client_->CreateModel("b", spec);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->version(), 1u);
  EXPECT_EQ(created->spec().minibatch_size(), 16);  // defaults filled in
  CreateLogistic("a");

  absl::StatusOr<std::vector<v1::ModelInfo>> models = client_->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name(), "a");
  EXPECT_EQ((*models)[1].name(), "b");

  absl::StatusOr<v1::ModelInfo> info = client_->GetModel("b");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->spec().num_classes(), 4);

  ASSERT_TRUE(client_->DeleteModel("b").ok());
  absl::Status gone = client_->GetModel("b").status();
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(gone.message(), "model \"b\" not found");
  EXPECT_EQ(client_->DeleteModel("b").code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, ServerErrorsKeepTheirCodeAndMessage) {
  CreateLogistic("a");
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(2);
  EXPECT_EQ(client_->CreateModel("a", spec).status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::Status bad = client_->Update(Batch("a", 3, 7)).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("examples[0].label"));
  EXPECT_EQ(client_->Update(Batch("a", 101, 1)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(ClientTest, UpdateThenPredict) {
  CreateLogistic("a");
  absl::StatusOr<v1::UpdateResponse> update = client_->Update(Batch("a", 4, 1));
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(update->version(), 2u);
  EXPECT_EQ(update->examples(), 4);
  EXPECT_TRUE(update->has_accuracy_before());

  v1::PredictRequest request;
  request.set_model("a");
  request.add_instances()->add_dense(1);
  request.mutable_instances(0)->add_dense(0);
  absl::StatusOr<v1::PredictResponse> newest = client_->Predict(request);
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(newest->version(), 2u);
  ASSERT_EQ(newest->predictions_size(), 1);
  EXPECT_GT(newest->predictions(0).value(), 0.5f);  // learned toward label 1
  request.set_version(1);
  absl::StatusOr<v1::PredictResponse> pinned = client_->Predict(request);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->version(), 1u);
  EXPECT_EQ(pinned->predictions(0).value(), 0.5f);  // all weights zero
}

// The one prediction of `model` (at `version`; 0: the newest) for (1, 2).
absl::StatusOr<v1::PredictResponse> PredictOne(Client* client,
                                               const std::string& model,
                                               uint64_t version = 0) {
  v1::PredictRequest request;
  request.set_model(model);
  request.set_version(version);
  request.add_instances()->add_dense(1);
  request.mutable_instances(0)->add_dense(2);
  return client->Predict(request);
}

TEST_F(ClientTest, UpdateIdMakesARetryApplyNothing) {
  CreateLogistic("a");
  v1::UpdateRequest request = Batch("a", 4, 1);
  request.set_update_id("retry-me");
  absl::StatusOr<v1::UpdateResponse> first = client_->Update(request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 2u);
  absl::StatusOr<v1::UpdateResponse> retry = client_->Update(request);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version(), 2u);
  EXPECT_EQ(retry->examples(), 4);
  EXPECT_EQ(retry->loss_before(), first->loss_before());
  absl::StatusOr<v1::ModelInfo> info = client_->GetModel("a");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), 2u);
  EXPECT_EQ(info->examples_seen(), 4u);
  EXPECT_EQ(info->updates(), 1u);

  request.set_update_id("another");
  EXPECT_EQ(client_->Update(request)->version(), 3u);
  request.clear_update_id();  // no id: applied every time
  EXPECT_EQ(client_->Update(request)->version(), 4u);
  EXPECT_EQ(client_->Update(request)->version(), 5u);

  request.set_update_id(std::string(129, 'x'));
  const absl::Status too_long = client_->Update(request).status();
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.message()), HasSubstr("update_id"));
  request.set_update_id(std::string(128, 'x'));
  EXPECT_EQ(client_->Update(request)->version(), 6u);
}

TEST_F(ClientTest, RollbackPublishesAnEarlierVersionAgain) {
  CreateLogistic("a");
  ASSERT_TRUE(client_->Update(Batch("a", 4, 1)).ok());  // version 2
  ASSERT_TRUE(client_->Update(Batch("a", 4, 0)).ok());  // version 3
  absl::StatusOr<v1::PredictResponse> v2 = PredictOne(client_.get(), "a", 2);
  absl::StatusOr<v1::PredictResponse> v3 = PredictOne(client_.get(), "a", 3);
  ASSERT_TRUE(v2.ok() && v3.ok());
  ASSERT_NE(v2->predictions(0).value(), v3->predictions(0).value());

  absl::StatusOr<v1::ModelInfo> info = client_->Rollback("a", 2);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name(), "a");
  EXPECT_EQ(info->version(), 4u);
  EXPECT_EQ(info->retained_versions(info->retained_versions_size() - 1), 4u);
  absl::StatusOr<v1::PredictResponse> now = PredictOne(client_.get(), "a");
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->version(), 4u);
  EXPECT_EQ(now->predictions(0).value(), v2->predictions(0).value());
  EXPECT_EQ(client_->GetModel("a")->version(), 4u);

  EXPECT_EQ(client_->Rollback("a", 99).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Rollback("nope", 1).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetModel("a")->version(), 4u);  // errors change nothing
}

TEST_F(ClientTest, ExportThenImportIsTheSameModel) {
  CreateLogistic("a");
  ASSERT_TRUE(client_->Update(Batch("a", 4, 1)).ok());  // version 2
  ASSERT_TRUE(client_->Update(Batch("a", 3, 0)).ok());  // version 3
  absl::StatusOr<v1::ExportModelResponse> newest = client_->ExportModel("a", 0);
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(newest->version(), 3u);
  EXPECT_EQ(newest->model().substr(0, 8), "LEPTNMDL");

  absl::StatusOr<v1::ModelInfo> b = client_->ImportModel("b", newest->model());
  ASSERT_TRUE(b.ok()) << b.status();
  const v1::ModelInfo a = *client_->GetModel("a");
  EXPECT_EQ(b->name(), "b");
  EXPECT_EQ(b->version(), 3u);
  EXPECT_EQ(b->spec().SerializeAsString(), a.spec().SerializeAsString());
  EXPECT_EQ(b->examples_seen(), 7u);
  EXPECT_EQ(b->steps(), a.steps());
  EXPECT_EQ(PredictOne(client_.get(), "b")->predictions(0).value(),
            PredictOne(client_.get(), "a")->predictions(0).value());

  // An older version, imported under the blob's own name once it is free.
  absl::StatusOr<v1::ExportModelResponse> older = client_->ExportModel("a", 2);
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ(older->version(), 2u);
  EXPECT_EQ(client_->ImportModel("b", older->model()).status().code(),
            absl::StatusCode::kAlreadyExists);
  const float v2 = PredictOne(client_.get(), "a", 2)->predictions(0).value();
  ASSERT_TRUE(client_->DeleteModel("a").ok());
  absl::StatusOr<v1::ModelInfo> renamed =
      client_->ImportModel("", older->model());
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->name(), "a");
  EXPECT_EQ(renamed->version(), 2u);
  EXPECT_EQ(PredictOne(client_.get(), "a")->predictions(0).value(), v2);
}

TEST_F(ClientTest, ExportAndImportErrors) {
  EXPECT_EQ(client_->ExportModel("nope", 0).status().code(),
            absl::StatusCode::kNotFound);
  CreateLogistic("a");
  EXPECT_EQ(client_->ExportModel("a", 99).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<v1::ExportModelResponse> blob = client_->ExportModel("a", 0);
  ASSERT_TRUE(blob.ok()) << blob.status();
  std::string corrupt = blob->model();
  corrupt[corrupt.size() / 2] ^= 0x01;
  EXPECT_EQ(client_->ImportModel("c", corrupt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->ImportModel("c", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      client_->ImportModel("c", blob->model().substr(0, 20)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->GetModel("c").status().code(),
            absl::StatusCode::kNotFound);  // nothing was created
}

TEST_F(ClientTest, HealthIsServing) {
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> status =
      client_->Health();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, grpc::health::v1::HealthCheckResponse::SERVING);
  status = client_->Health("lepton.v1.ModelService");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(client_->Health("no.such.Service").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, StreamAnswersEveryRequestInOrderWithTheWindowFull) {
  CreateLogistic("a");
  std::vector<int64_t> indices;
  std::vector<uint64_t> versions;
  int64_t most_in_flight = 0;
  UpdateStream* stream_ptr = nullptr;
  UpdateStreamOptions options;
  options.max_in_flight = 3;
  options.on_response = [&](int64_t index, const v1::UpdateResponse& r) {
    indices.push_back(index);
    versions.push_back(r.version());
    most_in_flight = std::max(most_in_flight, stream_ptr->sent() - index);
  };
  std::unique_ptr<UpdateStream> stream = client_->StartUpdateStream(options);
  stream_ptr = stream.get();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(stream->Send(Batch("a", 2, i % 2)).ok());
    // Send() waits for a response only once the window is full.
    EXPECT_LE(stream->sent() - stream->acknowledged(), 3);
  }
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_THAT(indices, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
  EXPECT_THAT(versions, ElementsAre(2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  // Nothing is read before the window fills: the first response arrived
  // with three requests out.
  EXPECT_EQ(most_in_flight, 3);
  EXPECT_EQ(stream->sent(), 10);
  EXPECT_EQ(stream->acknowledged(), 10);
  EXPECT_EQ(client_->GetModel("a")->examples_seen(), 20u);
  EXPECT_EQ(stream->Send(Batch("a", 1, 0)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(stream->Finish().ok());  // idempotent
}

TEST_F(ClientTest, StreamStopsAtTheFirstRejectedRequest) {
  CreateLogistic("a");
  int responses = 0;
  UpdateStreamOptions options;
  options.max_in_flight = 4;
  options.on_response = [&](int64_t, const v1::UpdateResponse&) {
    ++responses;
  };
  std::unique_ptr<UpdateStream> stream = client_->StartUpdateStream(options);
  absl::Status status;
  int sent = 0;
  for (int i = 0; i < 50 && status.ok(); ++i) {
    // Request 5 has a label a logistic model rejects.
    status = stream->Send(Batch("a", 2, i == 5 ? 3 : 1));
    if (status.ok()) ++sent;
  }
  const absl::Status finished = stream->Finish();
  EXPECT_EQ(finished.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(finished.message()), HasSubstr("examples[0].label"));
  if (!status.ok()) {
    EXPECT_EQ(status, finished);
  }
  // Requests 0-4 were applied and answered; 5 is the rejected one.
  EXPECT_EQ(stream->acknowledged(), 5);
  EXPECT_EQ(responses, 5);
  EXPECT_GE(sent, 6);
  EXPECT_EQ(client_->GetModel("a")->version(), 6u);
  EXPECT_EQ(stream->Send(Batch("a", 1, 1)).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, DestroyingAnUnfinishedStreamCancelsIt) {
  CreateLogistic("a");
  {
    std::unique_ptr<UpdateStream> stream = client_->StartUpdateStream({});
    ASSERT_TRUE(stream->Send(Batch("a", 2, 1)).ok());
  }  // must return, not hang
  EXPECT_TRUE(client_->GetModel("a").ok());
}

TEST(ClientStatusTest, FromGrpcStatusKeepsCodeAndMessage) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  const absl::Status s = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "model \"m\" not found"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "model \"m\" not found");
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, ""))
                .code(),
            absl::StatusCode::kUnauthenticated);
}

// StartWatch: once subscribed, every event of the updates that follow
// arrives on the watch's thread; Stop() ends the call with OK.
TEST_F(ClientTest, StartWatchSeesTheEventsAfterItSubscribed) {
  CreateLogistic("w");
  absl::Mutex mu;
  std::vector<uint64_t> versions;
  v1::WatchModelRequest request;
  request.set_name("w");
  request.set_min_version_interval_ms(1);
  std::unique_ptr<ModelWatch> watch =
      client_->StartWatch(request, [&](const v1::ModelEvent& event) {
        absl::MutexLock lock(&mu);
        if (event.kind() == v1::VERSION_PUBLISHED) {
          versions.push_back(event.version());
        }
      });
  ASSERT_TRUE(watch->WaitSubscribed().ok());
  ASSERT_TRUE(client_->Update(Batch("w", 4, 1)).ok());
  {
    absl::MutexLock lock(&mu);
    auto got = [&] {
      mu.AssertReaderHeld();
      return !versions.empty() && versions.back() == 2;
    };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&got), absl::Seconds(30)));
  }
  EXPECT_FALSE(watch->WaitEnded(absl::ZeroDuration()));
  EXPECT_TRUE(watch->Stop().ok());
  EXPECT_TRUE(watch->WaitEnded(absl::ZeroDuration()));
  EXPECT_TRUE(watch->Stop().ok());  // idempotent
  absl::MutexLock lock(&mu);
  EXPECT_THAT(versions, ElementsAre(2));
}

TEST_F(ClientTest, StartWatchOfAMissingModelEndsNotFound) {
  v1::WatchModelRequest request;
  request.set_name("nope");
  std::unique_ptr<ModelWatch> watch =
      client_->StartWatch(request, [](const v1::ModelEvent&) {});
  // Either at once or once the call's end has arrived.
  const absl::Status subscribed = watch->WaitSubscribed();
  EXPECT_TRUE(subscribed.ok() || absl::IsNotFound(subscribed)) << subscribed;
  EXPECT_TRUE(watch->WaitEnded(absl::Seconds(30)));
  EXPECT_EQ(watch->Stop().code(), absl::StatusCode::kNotFound);
}

// A port nothing listens on: calls and streams fail fast with UNAVAILABLE.
TEST(ClientUnreachableTest, CallsAndStreamsReportUnavailable) {
  ClientOptions options;
  options.deadline = absl::Seconds(10);
  Client client("127.0.0.1:1", options);
  EXPECT_EQ(client.Health().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.GetModel("a").status().code(),
            absl::StatusCode::kUnavailable);
  std::unique_ptr<UpdateStream> stream = client.StartUpdateStream({});
  v1::UpdateRequest request;
  request.set_model("a");
  absl::Status sent = stream->Send(request);
  const absl::Status finished = stream->Finish();
  EXPECT_EQ(finished.code(), absl::StatusCode::kUnavailable) << finished;
  if (!sent.ok()) {
    EXPECT_EQ(sent, finished);
  }
  EXPECT_EQ(stream->acknowledged(), 0);
}

}  // namespace
}  // namespace lepton::client
