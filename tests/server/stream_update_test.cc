// StreamUpdate over an in-process channel: one response per request, in
// order, with consecutive versions; the first rejected request ends the
// stream with its error after every earlier request was applied and
// acknowledged, and nothing after it is applied.
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 6;

using Stream = grpc::ClientReaderWriter<v1::UpdateRequest, v1::UpdateResponse>;

class StreamUpdateTest : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ServiceTest::SetUp());
    ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  }

  // A stream with a deadline, so that a server that never answers fails the
  // test instead of hanging it.
  std::unique_ptr<Stream> Open(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    return stub_->StreamUpdate(context);
  }

  // Request i carries i + 1 examples, so a response shows which request it
  // answers.
  v1::UpdateRequest Good(int i) {
    return UpdateRequestOf(
        "m", gen_.Examples(v1::LOGISTIC_REGRESSION, kD, 0, i + 1));
  }
  v1::UpdateRequest Bad() {
    v1::UpdateRequest r = Good(1);
    r.mutable_examples(1)->set_label(2);
    return r;
  }

  // Writes every request, then half-closes, stopping early once the server
  // has ended the call. Runs beside a reader: the in-process transport hands
  // a message over only when the other side reads, and the server reads the
  // next request only after its response was taken.
  static void WriteAll(Stream* stream,
                       const std::vector<v1::UpdateRequest>& requests) {
    for (const v1::UpdateRequest& r : requests) {
      if (!stream->Write(r)) return;
    }
    stream->WritesDone();
  }

  DataGen gen_{1};
};

TEST_F(StreamUpdateTest, AnswersEveryRequestInOrderWithConsecutiveVersions) {
  constexpr int kN = 5;
  std::vector<v1::UpdateRequest> requests;
  for (int i = 0; i < kN; ++i) requests.push_back(Good(i));
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  std::jthread writer([&] { WriteAll(stream.get(), requests); });
  v1::UpdateResponse response;
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(stream->Read(&response)) << i;
    EXPECT_EQ(response.version(), 2u + i);
    EXPECT_EQ(response.examples(), i + 1);
    EXPECT_TRUE(response.has_accuracy_before());
  }
  EXPECT_FALSE(stream->Read(&response));
  writer.join();
  EXPECT_TRUE(IsOk(stream->Finish()));
  EXPECT_EQ(VersionOf("m"), 1u + kN);
}

// Stream results equal unary Update results: same versions, same
// progressive loss, same final predictions, bit for bit.
TEST_F(StreamUpdateTest, AppliesExactlyWhatUnaryUpdatesApply) {
  ASSERT_TRUE(IsOk(CreateModel("twin", Spec(v1::LOGISTIC_REGRESSION, kD))));
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  for (int i = 0; i < 4; ++i) {
    v1::UpdateRequest request = Good(i);
    v1::UpdateResponse streamed, unary;
    ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(stream->Read(&streamed));
    request.set_model("twin");
    ASSERT_TRUE(IsOk(Update(request, &unary)));
    EXPECT_EQ(streamed.SerializeAsString(), unary.SerializeAsString());
  }
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(IsOk(stream->Finish()));
  const std::vector<Features> probe = gen_.Instances(kD, 5);
  v1::PredictResponse a, b;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", probe), &a)));
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("twin", probe), &b)));
  EXPECT_TRUE(BitEqual(a, b));
}

TEST_F(StreamUpdateTest, EmptyStreamFinishesOk) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  ASSERT_TRUE(stream->WritesDone());
  v1::UpdateResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(IsOk(stream->Finish()));
  EXPECT_EQ(VersionOf("m"), 1u);
}

TEST_F(StreamUpdateTest, BadRequestEndsTheStreamAfterAcknowledgingEarlierOnes) {
  constexpr int kGood = 3;
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  v1::UpdateResponse response;
  for (int i = 0; i < kGood; ++i) {
    ASSERT_TRUE(stream->Write(Good(i)));
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.version(), 2u + i);
  }
  v1::PredictResponse before;
  const std::vector<Features> probe = gen_.Instances(kD, 4);
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", probe), &before)));

  stream->Write(Bad());  // may already fail if the server has finished
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(IsInvalid(stream->Finish(), "examples[1].label"));

  EXPECT_EQ(VersionOf("m"), 1u + kGood);
  v1::PredictResponse after;
  ASSERT_TRUE(IsOk(Predict(PredictRequestOf("m", probe), &after)));
  EXPECT_TRUE(BitEqual(after, before));
}

// Requests the client already sent after the bad one are not applied.
TEST_F(StreamUpdateTest, NothingAfterTheBadRequestIsApplied) {
  const std::vector<v1::UpdateRequest> requests = {Good(0), Good(1), Bad(),
                                                   Good(2), Good(3)};
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  std::jthread writer([&] { WriteAll(stream.get(), requests); });
  v1::UpdateResponse response;
  std::vector<int64_t> examples;
  while (stream->Read(&response)) {
    EXPECT_EQ(response.version(), 2u + examples.size());
    examples.push_back(response.examples());
  }
  writer.join();
  EXPECT_EQ(examples, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(IsInvalid(stream->Finish(), "examples[1].label"));
  EXPECT_EQ(VersionOf("m"), 3u);
}

TEST_F(StreamUpdateTest, UnknownModelIsNotFound) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  v1::UpdateResponse response;
  ASSERT_TRUE(stream->Write(Good(0)));
  ASSERT_TRUE(stream->Read(&response));
  v1::UpdateRequest ghost = Good(1);
  ghost.set_model("ghost");
  stream->Write(ghost);
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(IsError(stream->Finish(), grpc::StatusCode::NOT_FOUND,
                      "model \"ghost\" not found"));
  EXPECT_EQ(VersionOf("m"), 2u);
}

TEST_F(StreamUpdateTest, BatchAboveMaxBatchIsResourceExhausted) {
  server::ServerOptions options;
  options.service.max_batch = 4;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  v1::UpdateResponse response;
  ASSERT_TRUE(stream->Write(Good(3)));  // 4 examples: at the limit
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.examples(), 4);
  stream->Write(Good(4));
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(IsError(stream->Finish(), grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "examples: "));
  EXPECT_EQ(VersionOf("m"), 2u);
}

}  // namespace
}  // namespace lepton::server_test
