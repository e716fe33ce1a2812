// The server's side of the Open Inference Protocol
// (inference.GRPCInferenceService), on the real lepton_server binary:
// --max_batch and --max_message_bytes, /metrics, bearer tokens and roles, TLS
// on the same port, ServerReady in a drain, a learning call past its
// deadline, and learning on one node of a cluster and predicting on another.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/inference_protocol_test_support.h"
#include "tests/testing/redis_test.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {
namespace {

// An update that keeps one update worker busy for about a second here (more
// on a slower machine): 4096 examples of 512 features (8 MB), 1000 epochs,
// one step per example, for a model Spec(LINEAR_REGRESSION, kSlowFeatures).
constexpr int kSlowFeatures = 512;
v1::UpdateRequest SlowUpdate(const std::string& model) {
  v1::UpdateRequest slow;
  slow.set_model(model);
  slow.set_epochs(1000);
  for (int i = 0; i < 4096; ++i) {
    v1::Example* e = slow.add_examples();
    for (int j = 0; j < kSlowFeatures; ++j) {
      e->mutable_features()->add_dense(static_cast<float>((i + j) % 7) / 7.0f);
    }
    e->set_label(static_cast<float>(i % 3));
  }
  return slow;
}

// --max_batch bounds the rows, --max_message_bytes the outputs (and gRPC the
// request).
TEST_F(InferenceProtocolTest, LimitsOfTheServer) {
  Create("m", Spec(v1::SOFTMAX_REGRESSION, 1, 1000));
  const Rows too_many(65, std::vector<float>{0.5f});  // --max_batch=64
  for (bool raw : {false, true}) {
    EXPECT_TRUE(IsError(Infer(Request("m", too_many, raw)),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "inputs[0].shape[0]: 65 items exceed the server's "
                        "limit of 64 (--max_batch)"));
  }
  EXPECT_TRUE(
      IsError(Infer(Learn("m", too_many, std::vector<float>(65, 0), true)),
              grpc::StatusCode::RESOURCE_EXHAUSTED, "inputs[0].shape[0]"));
  // 20 rows of 1000 probabilities: 80 KB, above --max_message_bytes=65536.
  const Rows rows(20, std::vector<float>{0.5f});
  EXPECT_TRUE(IsError(Infer(Request("m", rows, true)),
                      grpc::StatusCode::RESOURCE_EXHAUSTED, "outputs: "));
  // Without the probabilities they fit.
  ModelInferRequest labels = Request("m", rows, true);
  labels.add_outputs()->set_name("label");
  ModelInferResponse response;
  ASSERT_TRUE(Infer(labels, &response).ok());
  EXPECT_EQ(Values<int64_t>(response, "label").size(), 20u);
  // A request above the limit is gRPC's to refuse.
  const Rows wide(64, std::vector<float>(300, 0.5f));
  EXPECT_EQ(Infer(Request("m", wide, true)).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// /metrics counts the protocol's calls by method and code (ServerLive and
// ServerReady, probes, as "other" like health checks).
TEST_F(InferenceProtocolTest, MetricsCountTheCallsByMethod) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--metrics_listen=127.0.0.1:0"}));
  ASSERT_GT(server_->metrics_port(), 0);
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));
  ASSERT_TRUE(Infer(Request("m", {{1, 0}}, true)).ok());
  ASSERT_TRUE(Infer(Learn("m", {{1, 0}}, {1}, true)).ok());
  EXPECT_TRUE(
      IsInvalid(Infer(Request("m", {{1, 0, 0}}, true)), "inputs[0].shape[1]"));
  inference::ModelMetadataRequest metadata;
  metadata.set_name("m");
  inference::ModelMetadataResponse metadata_response;
  ASSERT_TRUE(Call(&GRPCInferenceService::Stub::ModelMetadata, metadata,
                   &metadata_response)
                  .ok());
  RunResult scrape = lepton::testing::Run(
      {"/usr/bin/curl", "-sS", "--max-time", "10",
       absl::StrCat("http://127.0.0.1:", server_->metrics_port(), "/metrics")});
  ASSERT_EQ(scrape.exit_code, 0) << scrape.err;
  for (const char* line :
       {"lepton_requests_total{code=\"OK\",method=\"ModelInfer\"} 2\n",
        "lepton_requests_total{code=\"INVALID_ARGUMENT\",method="
        "\"ModelInfer\"} 1\n",
        "lepton_requests_total{code=\"OK\",method=\"ModelMetadata\"} 1\n",
        "lepton_request_duration_seconds_count{method=\"ModelInfer\"} 3\n"}) {
    EXPECT_TRUE(absl::StrContains(scrape.out, line)) << line << scrape.out;
  }
}

// Tokens: ServerLive and ServerReady are open, the rest need a reader, and
// learning a writer; over TLS as over plaintext.
class InferenceProtocolSecurityTest : public InferenceProtocolTest {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TestScratchDir>("lepton-oip-test");
    ASSERT_FALSE(dir_->path().empty());
    std::ofstream(dir_->Path("tokens.txt")) << kAdminToken << " admin\n"
                                            << kWriterToken << " writer\n"
                                            << kReaderToken << " reader\n";
  }

  void OpenSsl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult result = lepton::testing::Run(argv);
    ASSERT_EQ(result.exit_code, 0) << args[0] << ": " << result.err;
  }

  std::unique_ptr<TestScratchDir> dir_;
};

TEST_F(InferenceProtocolSecurityTest, TokensAndRoles) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--auth_tokens=" + dir_->Path("tokens.txt")}));
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));
  // Probes need no token.
  inference::ServerLiveResponse live;
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ServerLive,
                   inference::ServerLiveRequest(), &live)
                  .ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ServerReady,
                   inference::ServerReadyRequest(), &ready)
                  .ok());
  EXPECT_TRUE(ready.ready());

  // The rest need a reader's token.
  inference::ServerMetadataResponse server_metadata;
  inference::ModelReadyRequest model_ready;
  model_ready.set_name("m");
  inference::ModelReadyResponse model_ready_response;
  inference::ModelMetadataRequest model_metadata;
  model_metadata.set_name("m");
  inference::ModelMetadataResponse model_metadata_response;
  const ModelInferRequest predict = Request("m", {{1, 0}}, true);
  ModelInferResponse infer_response;
  for (const std::string token : {"", "not-a-known-token-0123456789"}) {
    SCOPED_TRACE(token);
    EXPECT_EQ(Call(&GRPCInferenceService::Stub::ServerMetadata,
                   inference::ServerMetadataRequest(), &server_metadata, token)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Call(&GRPCInferenceService::Stub::ModelReady, model_ready,
                   &model_ready_response, token)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Call(&GRPCInferenceService::Stub::ModelMetadata, model_metadata,
                   &model_metadata_response, token)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Infer(predict, &infer_response, token).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ServerMetadata,
                   inference::ServerMetadataRequest(), &server_metadata,
                   kReaderToken)
                  .ok());
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ModelReady, model_ready,
                   &model_ready_response, kReaderToken)
                  .ok());
  EXPECT_TRUE(model_ready_response.ready());
  EXPECT_TRUE(Call(&GRPCInferenceService::Stub::ModelMetadata, model_metadata,
                   &model_metadata_response, kReaderToken)
                  .ok());
  EXPECT_TRUE(Infer(predict, &infer_response, kReaderToken).ok());

  // Learning needs a writer; a reader's attempt applies nothing.
  const ModelInferRequest learn = Learn("m", {{1, 0}, {0, 1}}, {1, 0}, true);
  EXPECT_TRUE(IsError(Infer(learn, &infer_response, kReaderToken),
                      grpc::StatusCode::PERMISSION_DENIED,
                      "inference.GRPCInferenceService/ModelInfer with a label "
                      "input (online_learning): needs role writer or higher; "
                      "the caller's token has role reader"));
  EXPECT_EQ(Infer(learn, &infer_response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(VersionOf("m"), 1u);
  infer_response.Clear();
  ASSERT_TRUE(Infer(learn, &infer_response, kWriterToken).ok());
  EXPECT_EQ(infer_response.model_version(), "2");
  EXPECT_EQ(VersionOf("m"), 2u);
}

TEST_F(InferenceProtocolSecurityTest, TlsOnTheSamePort) {
  const std::string ext = dir_->Path("server.ext");
  std::ofstream(ext) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n";
  ASSERT_NO_FATAL_FAILURE(
      OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
               "/CN=Lepton OIP test CA", "-keyout", dir_->Path("ca.key"),
               "-out", dir_->Path("ca.pem")}));
  ASSERT_NO_FATAL_FAILURE(OpenSsl(
      {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-subj", "/CN=localhost", "-keyout", dir_->Path("server.key"),
       "-out", dir_->Path("server.csr")}));
  ASSERT_NO_FATAL_FAILURE(OpenSsl(
      {"x509", "-req", "-in", dir_->Path("server.csr"), "-CA",
       dir_->Path("ca.pem"), "-CAkey", dir_->Path("ca.key"), "-set_serial", "1",
       "-days", "1", "-extfile", ext, "-out", dir_->Path("server.pem")}));
  server_ = std::make_unique<ServerProcess>(kServerPath);
  ASSERT_TRUE(server_
                  ->Start({"--data_dir=", "--metrics_listen=",
                           "--tls_cert=" + dir_->Path("server.pem"),
                           "--tls_key=" + dir_->Path("server.key"),
                           "--auth_tokens=" + dir_->Path("tokens.txt")})
                  .ok())
      << server_->err_text();
  std::ifstream ca_file(dir_->Path("ca.pem"));
  std::stringstream ca;
  ca << ca_file.rdbuf();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.str();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  channel_ = grpc::CreateCustomChannel(server_->target(),
                                       grpc::SslCredentials(ssl), args);
  stub_ = GRPCInferenceService::NewStub(channel_);
  ClientOptions options;
  options.token = kAdminToken;
  lepton_ = std::make_unique<Client>(channel_, options);
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));

  ModelInferResponse response;
  grpc::Status s = Infer(Learn("m", {{1, 0}, {0, 1}}, {1, 0}, false), &response,
                         kWriterToken);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.model_version(), "2");
  response.Clear();
  s = Infer(Request("m", {{1, 0}}, false), &response, kReaderToken);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Values<int64_t>(response, "label"), (std::vector<int64_t>{1}));

  // Plaintext gets no answer, not even a probe.
  auto plain = GRPCInferenceService::NewStub(grpc::CreateChannel(
      server_->target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  inference::ServerLiveResponse live;
  EXPECT_EQ(plain->ServerLive(&context, inference::ServerLiveRequest(), &live)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// From SIGTERM on, ServerReady says false (as health says NOT_SERVING) while
// the accepted updates finish, and ModelInfer is UNAVAILABLE.
TEST_F(InferenceProtocolTest, ServerReadyTurnsFalseWhenTheDrainStarts) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--update_threads=1", "--max_batch=4096",
                   "--max_message_bytes=67108864", "--drain_seconds=120"}));
  Create("m", Spec(v1::LINEAR_REGRESSION, kSlowFeatures));
  const v1::UpdateRequest slow = SlowUpdate("m");
  absl::Status slow_status;
  absl::Duration slow_time;
  std::thread updater([&] {
    const absl::Time start = absl::Now();
    slow_status = lepton_->Update(slow).status();
    slow_time = absl::Now() - start;
  });
  // Time for the request to reach the worker before the signal.
  absl::SleepFor(absl::Milliseconds(300));
  server_->process().Signal(SIGTERM);

  bool saw_not_ready = false;
  grpc::Status infer_status;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    inference::ServerReadyResponse ready;
    grpc::Status s = Call(&GRPCInferenceService::Stub::ServerReady,
                          inference::ServerReadyRequest(), &ready);
    if (!s.ok()) break;  // the server stopped taking calls
    if (!ready.ready()) {
      saw_not_ready = true;
      infer_status =
          Infer(Request("m", {std::vector<float>(kSlowFeatures, 0.5f)}, true));
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  updater.join();
  EXPECT_TRUE(saw_not_ready)
      << "the update ended before a ServerReady saw the drain";
  std::cout << "the update took " << slow_time << "\n";
  EXPECT_TRUE(IsError(infer_status, grpc::StatusCode::UNAVAILABLE,
                      "the server is shutting down"));
  EXPECT_TRUE(slow_status.ok()) << slow_status;  // the drain finished it
  // Hang up, so that the server need not wait for an idle connection.
  lepton_.reset();
  stub_.reset();
  channel_.reset();
  EXPECT_EQ(server_->process().Wait(absl::Seconds(120)), 0);
}

// A learning call that waited for the update worker past its deadline
// applies nothing, as an Update's does.
TEST_F(InferenceProtocolTest, LearningPastItsDeadlineAppliesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--update_threads=1", "--max_batch=4096",
                                       "--max_message_bytes=67108864"}));
  Create("slow", Spec(v1::LINEAR_REGRESSION, kSlowFeatures));
  Create("m", Spec(v1::LOGISTIC_REGRESSION, 2));
  const v1::UpdateRequest slow = SlowUpdate("slow");
  absl::Status slow_status;
  std::thread updater([&] { slow_status = lepton_->Update(slow).status(); });
  // Time for the request to reach the worker first.
  absl::SleepFor(absl::Milliseconds(300));
  // Queued behind it, with a deadline that passes while it waits.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(100));
  ModelInferResponse response;
  grpc::Status s = stub_->ModelInfer(
      &context, Learn("m", {{1, 0}, {0, 1}}, {1, 0}, true), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << s.error_message();
  updater.join();
  ASSERT_TRUE(slow_status.ok()) << slow_status;
  // The worker reaches the call after the slow update and drops it: the
  // model is as it was, and the next call, queued after the dropped one,
  // makes version 2, not 3.
  EXPECT_EQ(VersionOf("m"), 1u);
  ASSERT_TRUE(
      Infer(Learn("m", {{1, 0}, {0, 1}}, {1, 0}, true), &response).ok());
  EXPECT_EQ(response.model_version(), "2");
  absl::StatusOr<v1::ModelInfo> info = lepton_->GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->examples_seen(), 2u);
}

// On the nodes of a cluster: ServerReady once a node has caught up, learning
// through one node's log, and the same predictions from the other.
class InferenceProtocolClusterTest : public RedisTest {
 protected:
  std::unique_ptr<ServerProcess> StartNode() {
    auto node = std::make_unique<ServerProcess>(kServerPath);
    absl::Status s = node->Start(
        {absl::StrCat("--cluster=redis://127.0.0.1:", redis_->port(), "/oip"),
         "--metrics_listen="});
    EXPECT_TRUE(s.ok()) << s;
    return node;
  }
};

TEST_F(InferenceProtocolClusterTest, LearnOnOneNodePredictOnAnother) {
  std::unique_ptr<ServerProcess> a = StartNode(), b = StartNode();
  ASSERT_FALSE(HasFailure());
  std::vector<std::unique_ptr<GRPCInferenceService::Stub>> stubs;
  for (ServerProcess* node : {a.get(), b.get()}) {
    stubs.push_back(GRPCInferenceService::NewStub(grpc::CreateChannel(
        node->target(), grpc::InsecureChannelCredentials())));
  }
  // Each node is ready once it has caught up with the log.
  for (auto& stub : stubs) {
    inference::ServerReadyResponse ready;
    for (int i = 0; i < 600 && !ready.ready(); ++i) {
      if (i > 0) absl::SleepFor(absl::Milliseconds(50));
      ASSERT_TRUE(CallStub(*stub, &GRPCInferenceService::Stub::ServerReady,
                           inference::ServerReadyRequest(), &ready)
                      .ok());
    }
    ASSERT_TRUE(ready.ready());
  }
  Client lepton(a->target(), ClientOptions{});
  ASSERT_TRUE(lepton.CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, 4, 3)).ok());

  ModelInferResponse learned;
  grpc::Status s = CallStub(
      *stubs[0], &GRPCInferenceService::Stub::ModelInfer,
      Learn("m", SoftmaxRows(30, 0), SoftmaxLabels(30, 0), true), &learned);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(learned.model_version(), "2");
  // Node b has version 2 once it has applied the log's entry.
  inference::ModelReadyRequest request;
  request.set_name("m");
  request.set_version("2");
  inference::ModelReadyResponse ready;
  for (int i = 0; i < 600 && !ready.ready(); ++i) {
    if (i > 0) absl::SleepFor(absl::Milliseconds(20));
    ASSERT_TRUE(CallStub(*stubs[1], &GRPCInferenceService::Stub::ModelReady,
                         request, &ready)
                    .ok());
  }
  ASSERT_TRUE(ready.ready());
  ModelInferResponse from_a, from_b;
  const Rows probe = SoftmaxRows(6, 1);
  ASSERT_TRUE(CallStub(*stubs[0], &GRPCInferenceService::Stub::ModelInfer,
                       Request("m", probe, true, "2"), &from_a)
                  .ok());
  ASSERT_TRUE(CallStub(*stubs[1], &GRPCInferenceService::Stub::ModelInfer,
                       Request("m", probe, true, "2"), &from_b)
                  .ok());
  EXPECT_EQ(from_b.model_version(), "2");
  ASSERT_EQ(from_a.raw_output_contents_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(from_a.raw_output_contents(i), from_b.raw_output_contents(i));
  }
  const std::vector<int64_t> labels = Values<int64_t>(from_b, "label");
  ASSERT_EQ(labels.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(labels[i], (i + 1) % 3);
}

}  // namespace
}  // namespace lepton::testing
