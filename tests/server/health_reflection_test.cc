// The standard services the Server registers beside lepton.v1.ModelService:
// grpc.health.v1.Health (SERVING for "" and the service's name) and server
// reflection, called here without its generated stub through a GenericStub
// with a hand-encoded request.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthTest : public ServiceTest {
 protected:
  grpc::Status Check(const std::string& service, HealthCheckResponse* out) {
    std::unique_ptr<Health::Stub> health = Health::NewStub(channel_);
    HealthCheckRequest request;
    request.set_service(service);
    grpc::ClientContext context;
    return health->Check(&context, request, out);
  }
};

TEST_F(HealthTest, ServerAndModelServiceAreServing) {
  for (const char* service : {"", "lepton.v1.ModelService"}) {
    HealthCheckResponse response;
    ASSERT_TRUE(IsOk(Check(service, &response))) << service;
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(HealthTest, UnknownServiceIsNotFound) {
  HealthCheckResponse response;
  EXPECT_EQ(Check("lepton.v1.NoSuchService", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// One request, written with the half-close, and one response read back.
class OneRequestBidi
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  OneRequestBidi(grpc::GenericStub* stub, const std::string& method,
                 const std::string& request_bytes) {
    grpc::Slice slice(request_bytes);
    request_ = grpc::ByteBuffer(&slice, 1);
    context_.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    stub->PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(),
                                   this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override { read_ok_ = ok; }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }

  // Blocks until the call is over; the response's bytes, or "" if none came.
  std::string Await() {
    done_.WaitForNotification();
    if (!read_ok_) return "";
    std::vector<grpc::Slice> slices;
    if (!response_.Dump(&slices).ok()) return "";
    std::string bytes;
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return bytes;
  }
  const grpc::Status& status() const { return status_; }

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  bool read_ok_ = false;  // written before done_ is notified
  grpc::Status status_;
  absl::Notification done_;
};

TEST_F(HealthTest, ReflectionListsTheModelService) {
  grpc::GenericStub stub(channel_);
  // ServerReflectionRequest{list_services: ""}: field 7, wire type 2 (0x3a),
  // length 0.
  OneRequestBidi call(&stub,
                      "/grpc.reflection.v1alpha.ServerReflection/"
                      "ServerReflectionInfo",
                      std::string("\x3a\x00", 2));
  const std::string response = call.Await();
  EXPECT_TRUE(IsOk(call.status()));
  EXPECT_NE(response.find("lepton.v1.ModelService"), std::string::npos);
  EXPECT_NE(response.find("grpc.health.v1.Health"), std::string::npos);
}

}  // namespace
}  // namespace lepton::server_test
