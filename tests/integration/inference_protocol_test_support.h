// What the tests of the Open Inference Protocol
// (inference.GRPCInferenceService) share: requests built as clients build them
// (contents or raw_input_contents), outputs read back as tritonclient reads
// them, lepton.v1 requests of the same data to compare with, and a fixture that
// starts the real lepton_server on a loopback port with a stub of each
// service.
//
// Header-only; a fixture is used by its test's thread.
#ifndef LEPTON_TESTS_INTEGRATION_INFERENCE_PROTOCOL_TEST_SUPPORT_H_
#define LEPTON_TESTS_INTEGRATION_INFERENCE_PROTOCOL_TEST_SUPPORT_H_

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/client.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {

using client::Client;
using client::ClientOptions;
using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using Rows = std::vector<std::vector<float>>;

inline constexpr char kAdminToken[] = "oip-test-admin-token-0123456789";
inline constexpr char kWriterToken[] = "oip-test-writer-token-0123456789";
inline constexpr char kReaderToken[] = "oip-test-reader-token-0123456789";

// `code` and a message starting with `prefix`.
inline ::testing::AssertionResult IsError(const grpc::Status& s,
                                          grpc::StatusCode code,
                                          absl::string_view prefix) {
  if (s.error_code() != code || !absl::StartsWith(s.error_message(), prefix)) {
    return ::testing::AssertionFailure()
           << "expected code " << code << " and \"" << prefix
           << "...\", got code " << s.error_code() << " \"" << s.error_message()
           << "\"";
  }
  return ::testing::AssertionSuccess();
}

// INVALID_ARGUMENT naming exactly `path` ("<path>: <why>").
inline ::testing::AssertionResult IsInvalid(const grpc::Status& s,
                                            absl::string_view path) {
  return IsError(s, grpc::StatusCode::INVALID_ARGUMENT,
                 absl::StrCat(path, ": "));
}

inline std::string LittleEndian(const std::vector<float>& values) {
  std::string bytes;
  for (float v : values) {
    uint32_t word = std::bit_cast<uint32_t>(v);
    for (int b = 0; b < 4; ++b) {
      bytes.push_back(static_cast<char>(word & 0xff));
      word >>= 8;
    }
  }
  return bytes;
}

// Adds an FP32 input tensor, its values in contents or in
// raw_input_contents.
inline void AddInput(ModelInferRequest* request, const std::string& name,
                     std::vector<int64_t> shape,
                     const std::vector<float>& values, bool raw) {
  ModelInferRequest::InferInputTensor* input = request->add_inputs();
  input->set_name(name);
  input->set_datatype("FP32");
  for (int64_t d : shape) input->add_shape(d);
  if (raw) {
    request->add_raw_input_contents(LittleEndian(values));
  } else {
    for (float v : values) input->mutable_contents()->add_fp32_contents(v);
  }
}

// A request for `rows` (the features tensor "features" [n, D]).
inline ModelInferRequest Request(const std::string& model, const Rows& rows,
                                 bool raw, const std::string& version = "") {
  ModelInferRequest request;
  request.set_model_name(model);
  request.set_model_version(version);
  std::vector<float> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  AddInput(&request, "features",
           {static_cast<int64_t>(rows.size()),
            static_cast<int64_t>(rows.empty() ? 0 : rows[0].size())},
           flat, raw);
  return request;
}

// A learning request: the features, "label" and optionally "weight".
inline ModelInferRequest Learn(const std::string& model, const Rows& rows,
                               const std::vector<float>& labels, bool raw,
                               const std::vector<float>& weights = {}) {
  ModelInferRequest request = Request(model, rows, raw);
  AddInput(&request, "label", {static_cast<int64_t>(labels.size())}, labels,
           raw);
  if (!weights.empty()) {
    AddInput(&request, "weight", {static_cast<int64_t>(weights.size())},
             weights, raw);
  }
  return request;
}

// Output `name`'s index in the response; fails the test when missing.
inline int OutputIndex(const ModelInferResponse& response,
                       const std::string& name) {
  for (int i = 0; i < response.outputs_size(); ++i) {
    if (response.outputs(i).name() == name) return i;
  }
  ADD_FAILURE() << "no output " << name << " in "
                << response.ShortDebugString();
  return -1;
}

inline std::vector<int64_t> Shape(const ModelInferResponse& response,
                                  const std::string& name) {
  const int i = OutputIndex(response, name);
  if (i < 0) return {};
  const auto& shape = response.outputs(i).shape();
  return {shape.begin(), shape.end()};
}

// Output `name`'s values, from raw_output_contents when the response has
// them (as tritonclient's InferResult.as_numpy reads them), else contents.
template <typename T>
std::vector<T> Values(const ModelInferResponse& response,
                      const std::string& name) {
  const int i = OutputIndex(response, name);
  if (i < 0) return {};
  if (response.raw_output_contents_size() > 0) {
    const std::string& bytes = response.raw_output_contents(i);
    std::vector<T> values(bytes.size() / sizeof(T));
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
    return values;
  }
  const auto& contents = response.outputs(i).contents();
  if constexpr (std::is_same_v<T, float>) {
    return {contents.fp32_contents().begin(), contents.fp32_contents().end()};
  } else {
    return {contents.int64_contents().begin(), contents.int64_contents().end()};
  }
}

inline v1::ModelSpec Spec(v1::ModelType type, int64_t d, int32_t k = 0) {
  v1::ModelSpec spec;
  spec.set_type(type);
  spec.set_num_features(d);
  spec.set_num_classes(k);
  spec.set_minibatch_size(1);
  return spec;
}

// Three classes by which of x0..x2 is largest, D = 4 (x3 is noise).
inline Rows SoftmaxRows(int n, int seed) {
  Rows rows;
  for (int i = 0; i < n; ++i) {
    const int c = (i + seed) % 3;
    std::vector<float> row(4, 0.1f);
    row[c] = 0.9f;
    row[3] = static_cast<float>((i * 7 + seed) % 5) / 5.0f;
    rows.push_back(row);
  }
  return rows;
}

inline std::vector<float> SoftmaxLabels(int n, int seed) {
  std::vector<float> labels;
  for (int i = 0; i < n; ++i)
    labels.push_back(static_cast<float>((i + seed) % 3));
  return labels;
}

inline v1::UpdateRequest UpdateOf(const std::string& model, const Rows& rows,
                                  const std::vector<float>& labels,
                                  const std::vector<float>& weights = {}) {
  v1::UpdateRequest request;
  request.set_model(model);
  for (size_t i = 0; i < rows.size(); ++i) {
    v1::Example* e = request.add_examples();
    for (float x : rows[i]) e->mutable_features()->add_dense(x);
    e->set_label(labels[i]);
    if (!weights.empty()) e->set_weight(weights[i]);
  }
  return request;
}

inline v1::PredictRequest PredictOf(const std::string& model, const Rows& rows,
                                    uint64_t version = 0) {
  v1::PredictRequest request;
  request.set_model(model);
  request.set_version(version);
  for (const auto& row : rows) {
    v1::Features* f = request.add_instances();
    for (float x : row) f->add_dense(x);
  }
  return request;
}

// One unary call of `stub`'s `method`, with `token` if not empty.
template <typename Request, typename Response, typename Method>
grpc::Status CallStub(GRPCInferenceService::Stub& stub, Method method,
                      const Request& request, Response* response,
                      const std::string& token = "") {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  if (!token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  return (stub.*method)(&context, request, response);
}

class InferenceProtocolTest : public ::testing::Test {
 protected:
  // A memory-only server with small limits, and both services' clients.
  void SetUp() override { StartServer({}); }

  void StartServer(std::vector<std::string> flags) {
    flags.insert(flags.begin(),
                 {"--data_dir=", "--max_batch=64", "--max_message_bytes=65536",
                  "--retained_versions=3", "--metrics_listen="});
    server_ = std::make_unique<ServerProcess>(kServerPath);
    ASSERT_TRUE(server_->Start(flags).ok()) << server_->err_text();
    channel_ = grpc::CreateChannel(server_->target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = GRPCInferenceService::NewStub(channel_);
    ClientOptions options;
    options.deadline = absl::Seconds(30);
    options.token = kAdminToken;  // ignored without --auth_tokens
    lepton_ = std::make_unique<Client>(channel_, options);
  }

  // One unary call of the inference service, with `token` if not empty.
  template <typename Request, typename Response, typename Method>
  grpc::Status Call(Method method, const Request& request, Response* response,
                    const std::string& token = "") {
    return CallStub(*stub_, method, request, response, token);
  }

  grpc::Status Infer(const ModelInferRequest& request,
                     ModelInferResponse* response,
                     const std::string& token = "") {
    return Call(&GRPCInferenceService::Stub::ModelInfer, request, response,
                token);
  }
  grpc::Status Infer(const ModelInferRequest& request) {
    ModelInferResponse response;
    return Infer(request, &response);
  }

  void Create(const std::string& name, const v1::ModelSpec& spec) {
    absl::StatusOr<v1::ModelInfo> info = lepton_->CreateModel(name, spec);
    ASSERT_TRUE(info.ok()) << info.status();
  }
  uint64_t VersionOf(const std::string& name) {
    absl::StatusOr<v1::ModelInfo> info = lepton_->GetModel(name);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->version() : 0;
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
  std::unique_ptr<Client> lepton_;
};

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_INTEGRATION_INFERENCE_PROTOCOL_TEST_SUPPORT_H_
