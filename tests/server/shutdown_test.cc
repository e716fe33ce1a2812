// Server::Shutdown() with calls in flight: health turns NOT_SERVING as soon
// as it begins, an open StreamUpdate ends with UNAVAILABLE after the request
// in progress (every acknowledged request applied, nothing else), and so a
// client that keeps streaming does not hold the shutdown for the grace
// period. A stream waiting for its next request ends at once.
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using Stream = grpc::ClientReaderWriter<v1::UpdateRequest, v1::UpdateResponse>;

constexpr int64_t kD = 4;

class ShutdownTest : public ServiceTest {
 protected:
  // Over loopback TCP: the in-process transport would cancel every open call
  // the moment Shutdown() begins, so it cannot show a graceful one.
  void StartWithGrace(absl::Duration grace) {
    server::ServerOptions options;
    options.shutdown_grace = grace;
    ASSERT_NO_FATAL_FAILURE(StartServer(options, Transport::kLoopback));
    ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  }
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartWithGrace(absl::Seconds(30)));
  }

  std::unique_ptr<Stream> Open(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(60));
    return stub_->StreamUpdate(context);
  }
  v1::UpdateRequest Request() {
    return UpdateRequestOf("m", gen_.Examples(v1::LINEAR_REGRESSION, kD, 0, 2));
  }
  uint64_t StoreVersion() {
    absl::StatusOr<ModelInfo> info = server_->store().GetModel("m");
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->version : 0;
  }

  DataGen gen_{1};
};

// Health turns NOT_SERVING while Shutdown() is still waiting for our open
// stream (so before it can complete); the client then keeps streaming, and
// the stream ends with UNAVAILABLE after the request in progress. The
// server may end it right after the first acknowledgement or a few requests
// later (health goes NOT_SERVING a moment before streams start draining),
// but every acknowledged request was applied and nothing else was.
TEST_F(ShutdownTest, NotServingWhileDrainingThenTheOpenStreamEndsUnavailable) {
  std::unique_ptr<Health::Stub> health = Health::NewStub(channel_);
  grpc::ClientContext watch_context;
  HealthCheckRequest watch_request;  // "": the server as a whole
  auto watch = health->Watch(&watch_context, watch_request);
  HealthCheckResponse status;
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), HealthCheckResponse::SERVING);

  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  v1::UpdateResponse response;
  ASSERT_TRUE(stream->Write(Request()));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.version(), 2u);
  int acknowledged = 1;

  absl::Duration took;
  std::jthread shutdown([&] {
    const absl::Time start = absl::Now();
    server_->Shutdown();
    took = absl::Now() - start;
  });

  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), HealthCheckResponse::NOT_SERVING);
  watch_context.TryCancel();
  watch->Finish();

  while (stream->Write(Request()) && stream->Read(&response)) {
    ++acknowledged;
    EXPECT_EQ(response.version(), 1u + acknowledged);
  }
  EXPECT_TRUE(IsError(stream->Finish(), grpc::StatusCode::UNAVAILABLE,
                      "server shutting down"));

  shutdown.join();
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ(StoreVersion(), 1u + acknowledged);
}

// A client streaming as fast as it can: Shutdown() returns well before the
// 30 s grace, and the versions applied are exactly the ones acknowledged.
TEST_F(ShutdownTest, ClientStillWritingDoesNotHoldShutdown) {
  absl::Notification streaming;
  int acknowledged = 0;
  uint64_t last_version = 0;
  grpc::Status finish;
  std::jthread client([&] {
    grpc::ClientContext context;
    std::unique_ptr<Stream> stream = Open(&context);
    v1::UpdateResponse response;
    while (stream->Write(Request()) && stream->Read(&response)) {
      ++acknowledged;
      last_version = response.version();
      if (acknowledged == 3) streaming.Notify();
    }
    finish = stream->Finish();
    if (!streaming.HasBeenNotified()) streaming.Notify();
  });
  streaming.WaitForNotification();
  const absl::Time start = absl::Now();
  server_->Shutdown();
  const absl::Duration took = absl::Now() - start;
  client.join();

  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_TRUE(
      IsError(finish, grpc::StatusCode::UNAVAILABLE, "server shutting down"));
  EXPECT_GE(acknowledged, 3);
  EXPECT_EQ(last_version, 1u + acknowledged);
  EXPECT_EQ(StoreVersion(), 1u + acknowledged);
}

TEST_F(ShutdownTest, ShutdownIsIdempotentAndRefusesNewCalls) {
  server_->Shutdown();
  server_->Shutdown();
  server_->Wait();
  v1::ModelInfo info;
  EXPECT_FALSE(GetModel("m", &info).ok());
}

// An idle stream (open, waiting for its next request) is ended at once with
// the service's own UNAVAILABLE, not left to the end of the (30 s) grace
// period, and nothing after its last acknowledged request is applied.
TEST_F(ShutdownTest, IdleStreamEndsAtOnce) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  v1::UpdateResponse response;
  ASSERT_TRUE(stream->Write(Request()));
  ASSERT_TRUE(stream->Read(&response));

  const absl::Time start = absl::Now();
  server_->Shutdown();
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message().rfind("server shutting down", 0), 0u)
      << status.error_message();
  EXPECT_EQ(StoreVersion(), 2u);
}

}  // namespace
}  // namespace lepton::server_test
