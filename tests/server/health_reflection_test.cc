// The standard services the Server registers beside lepton.v1.ModelService:
// grpc.health.v1.Health (server/health_service.h: SERVING for "" and the
// services' names, Watch) and server reflection (server/reflection_service.h),
// called once through a GenericStub with a hand-encoded request, as a client
// without the stubs would, and otherwise through the generated stub.
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
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

TEST_F(HealthTest, WatchSendsTheStatusThenItsChangesAndEndsAtTheShutdown) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}, Transport::kLoopback));
  std::unique_ptr<Health::Stub> health = Health::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  HealthCheckRequest request;
  request.set_service("lepton.v1.ModelService");
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> watch =
      health->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  const absl::Time start = absl::Now();
  std::thread shutdown([this] { server_->Shutdown(); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&response));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  shutdown.join();
  // The watch did not hold the drain up to its limit (10 s by default).
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HealthTest, WatchOfAnUnknownServiceSaysSo) {
  std::unique_ptr<Health::Stub> health = Health::NewStub(channel_);
  grpc::ClientContext context;
  HealthCheckRequest request;
  request.set_service("lepton.v1.NoSuchService");
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> watch =
      health->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  context.TryCancel();
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

class ReflectionTest : public ServiceTest {
 protected:
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;

  // One response per request, on one stream.
  std::vector<Response> Ask(const std::vector<Request>& requests) {
    auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    auto stream = stub->ServerReflectionInfo(&context);
    std::vector<Response> responses;
    for (const Request& request : requests) {
      EXPECT_TRUE(stream->Write(request));
      Response response;
      EXPECT_TRUE(stream->Read(&response));
      responses.push_back(response);
    }
    stream->WritesDone();
    EXPECT_TRUE(IsOk(stream->Finish()));
    return responses;
  }
};

// file_containing_symbol sends the file that defines the service, then the
// files it imports; the second request on the stream is answered too.
TEST_F(ReflectionTest, SendsTheFileOfASymbolWithItsImports) {
  Request by_symbol;
  by_symbol.set_host("h");
  by_symbol.set_file_containing_symbol("lepton.v1.ModelService");
  Request by_name;
  by_name.set_file_by_filename("inference/grpc_predict_v2.proto");
  const std::vector<Response> responses = Ask({by_symbol, by_name});
  ASSERT_EQ(responses.size(), 2u);

  EXPECT_EQ(responses[0].valid_host(), "h");
  EXPECT_EQ(responses[0].original_request().file_containing_symbol(),
            "lepton.v1.ModelService");
  const auto& files = responses[0].file_descriptor_response();
  ASSERT_GE(files.file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto first;
  ASSERT_TRUE(first.ParseFromString(files.file_descriptor_proto(0)));
  EXPECT_EQ(first.name(), "lepton/v1/lepton.proto");
  EXPECT_EQ(files.file_descriptor_proto_size(), 1 + first.dependency_size());
  ASSERT_EQ(first.service_size(), 1);
  EXPECT_EQ(first.service(0).name(), "ModelService");

  google::protobuf::FileDescriptorProto inference;
  ASSERT_GE(
      responses[1].file_descriptor_response().file_descriptor_proto_size(), 1);
  ASSERT_TRUE(inference.ParseFromString(
      responses[1].file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(inference.package(), "inference");
}

TEST_F(ReflectionTest, ListsEveryServiceAndNamesWhatItCannotFind) {
  Request list;
  list.set_list_services("");
  Request missing_symbol;
  missing_symbol.set_file_containing_symbol("lepton.v1.NoSuchThing");
  Request missing_file;
  missing_file.set_file_by_filename("no/such.proto");
  Request none;  // no kind of request set
  const std::vector<Response> responses =
      Ask({list, missing_symbol, missing_file, none});
  ASSERT_EQ(responses.size(), 4u);

  std::vector<std::string> names;
  for (const auto& service : responses[0].list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "lepton.v1.ModelService", "inference.GRPCInferenceService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection"}));
  EXPECT_EQ(responses[1].error_response().error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(responses[2].error_response().error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(responses[3].error_response().error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace lepton::server_test
