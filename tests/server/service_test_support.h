// Helpers shared by the service tests: a fixture that starts a Server with no
// network port and talks to it over an in-process channel, builders for wire
// messages from the core's owned types (so a test can recompute a result with
// the store from the same data without going through convert.h), and
// assertions on grpc::Status and on bit-exact predictions.
//
// Everything here is header-only and used from one thread per fixture, except
// where a function says otherwise.
#ifndef LEPTON_TESTS_SERVER_SERVICE_TEST_SUPPORT_H_
#define LEPTON_TESTS_SERVER_SERVICE_TEST_SUPPORT_H_

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_version.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "server/server.h"

namespace lepton::server_test {

using Stub = v1::ModelService::Stub;

// ---------------------------------------------------------------- statuses

// `code`, and a message that starts with `prefix`.
inline ::testing::AssertionResult IsError(const grpc::Status& s,
                                          grpc::StatusCode code,
                                          absl::string_view prefix) {
  if (s.error_code() != code) {
    return ::testing::AssertionFailure()
           << "expected code " << code << ", got " << s.error_code() << " \""
           << s.error_message() << "\"";
  }
  if (!absl::StartsWith(s.error_message(), prefix)) {
    return ::testing::AssertionFailure()
           << "message \"" << s.error_message() << "\" does not start with \""
           << prefix << "\"";
  }
  return ::testing::AssertionSuccess();
}

// INVALID_ARGUMENT naming exactly `path`: the message is "<path>: <why>", so
// "examples[2].features" does not pass for "examples[2].features.dense: ...".
inline ::testing::AssertionResult IsInvalid(const grpc::Status& s,
                                            absl::string_view path) {
  return IsError(s, grpc::StatusCode::INVALID_ARGUMENT,
                 absl::StrCat(path, ": "));
}

inline ::testing::AssertionResult IsOk(const grpc::Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "code " << s.error_code() << " \"" << s.error_message() << "\"";
}

// ---------------------------------------------------------------- builders

inline v1::ModelSpec Spec(v1::ModelType type, int64_t num_features,
                          int32_t num_classes = 0) {
  v1::ModelSpec spec;
  spec.set_type(type);
  spec.set_num_features(num_features);
  spec.set_num_classes(num_classes);
  return spec;
}

inline void ToProto(const Features& f, v1::Features* proto) {
  proto->mutable_dense()->Add(f.dense.begin(), f.dense.end());
  proto->mutable_indices()->Add(f.indices.begin(), f.indices.end());
  proto->mutable_values()->Add(f.values.begin(), f.values.end());
}

// `weight` unset leaves the wire field absent (which means 1).
inline v1::Example ToProto(const Features& f, float label,
                           std::optional<float> weight = std::nullopt) {
  v1::Example e;
  ToProto(f, e.mutable_features());
  e.set_label(label);
  if (weight.has_value()) e.set_weight(*weight);
  return e;
}

inline v1::PredictRequest PredictRequestOf(const std::string& model,
                                           const std::vector<Features>& batch,
                                           uint64_t version = 0) {
  v1::PredictRequest r;
  r.set_model(model);
  r.set_version(version);
  for (const Features& f : batch) ToProto(f, r.add_instances());
  return r;
}

inline v1::UpdateRequest UpdateRequestOf(const std::string& model,
                                         const std::vector<Example>& batch) {
  v1::UpdateRequest r;
  r.set_model(model);
  for (const Example& e : batch) {
    *r.add_examples() = ToProto(e.features, e.label, e.weight);
  }
  return r;
}

inline Features DenseFeatures(std::vector<float> x) {
  Features f;
  f.dense = std::move(x);
  return f;
}

inline Features SparseFeatures(std::vector<uint32_t> indices,
                               std::vector<float> values) {
  Features f;
  f.indices = std::move(indices);
  f.values = std::move(values);
  return f;
}

// Deterministic data: dense and sparse instances (alternating) of `d`
// features, values in [-1, 1).
class DataGen {
 public:
  explicit DataGen(uint32_t seed) : rng_(seed) {}

  Features Dense(int64_t d) {
    std::vector<float> x(d);
    for (float& v : x) v = Uniform();
    return DenseFeatures(std::move(x));
  }
  // Up to `nnz` distinct indices, in no particular order.
  Features Sparse(int64_t d, int nnz) {
    Features f;
    for (int i = 0; i < nnz; ++i) {
      const uint32_t index = static_cast<uint32_t>(rng_() % d);
      bool seen = false;
      for (uint32_t j : f.indices) seen |= j == index;
      if (seen) continue;
      f.indices.push_back(index);
      f.values.push_back(Uniform());
    }
    return f;
  }
  std::vector<Features> Instances(int64_t d, int n) {
    std::vector<Features> batch;
    for (int i = 0; i < n; ++i) {
      batch.push_back(i % 2 == 0 ? Dense(d) : Sparse(d, 3));
    }
    return batch;
  }
  // Labels valid for the type: real values, 0/1, or 0..k-1.
  std::vector<Example> Examples(v1::ModelType type, int64_t d, int32_t k,
                                int n) {
    std::vector<Example> batch;
    for (Features& f : Instances(d, n)) {
      Example e;
      e.features = std::move(f);
      switch (type) {
        case v1::LINEAR_REGRESSION:
          e.label = 3 * Uniform();
          break;
        case v1::LOGISTIC_REGRESSION:
          e.label = static_cast<float>(rng_() % 2);
          break;
        default:
          e.label = static_cast<float>(rng_() % k);
          break;
      }
      batch.push_back(std::move(e));
    }
    return batch;
  }

 private:
  float Uniform() {
    return std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng_);
  }
  std::mt19937 rng_;
};

// ------------------------------------------------------------- predictions

inline bool SameBits(float a, float b) {
  return std::memcmp(&a, &b, sizeof(float)) == 0;
}

// Two wire predictions are the same bit for bit, version included.
inline ::testing::AssertionResult BitEqual(const v1::PredictResponse& a,
                                           const v1::PredictResponse& b) {
  if (a.version() != b.version()) {
    return ::testing::AssertionFailure()
           << "version " << a.version() << " vs " << b.version();
  }
  if (a.predictions_size() != b.predictions_size()) {
    return ::testing::AssertionFailure() << "sizes differ";
  }
  for (int i = 0; i < a.predictions_size(); ++i) {
    const v1::Prediction& p = a.predictions(i);
    const v1::Prediction& q = b.predictions(i);
    bool same = SameBits(p.value(), q.value()) && p.label() == q.label() &&
                p.probabilities_size() == q.probabilities_size();
    for (int k = 0; same && k < p.probabilities_size(); ++k) {
      same = SameBits(p.probabilities(k), q.probabilities(k));
    }
    if (!same) {
      return ::testing::AssertionFailure()
             << "prediction " << i << " differs: " << p.ShortDebugString()
             << " vs " << q.ShortDebugString();
    }
  }
  return ::testing::AssertionSuccess();
}

// The wire response carries the core's predictions bit for bit: softmax as K
// probabilities with value = the probability of the label, the others as the
// value (and label, for logistic).
inline ::testing::AssertionResult MatchesCore(const v1::PredictResponse& wire,
                                              const Predictions& core) {
  if (wire.version() != core.version) {
    return ::testing::AssertionFailure()
           << "version " << wire.version() << " vs core " << core.version;
  }
  if (static_cast<size_t>(wire.predictions_size()) != core.size()) {
    return ::testing::AssertionFailure() << "sizes differ";
  }
  for (size_t i = 0; i < core.size(); ++i) {
    const v1::Prediction& p = wire.predictions(static_cast<int>(i));
    const int32_t label = core.labels.empty() ? 0 : core.labels[i];
    bool same = p.label() == label;
    if (core.num_outputs > 1) {
      absl::Span<const float> probs = core.probabilities(i);
      same = same && p.probabilities_size() == core.num_outputs &&
             SameBits(p.value(), probs[label]);
      for (int k = 0; same && k < core.num_outputs; ++k) {
        same = SameBits(p.probabilities(k), probs[k]);
      }
    } else {
      same = same && p.probabilities_size() == 0 &&
             SameBits(p.value(), core.value(i));
    }
    if (!same) {
      return ::testing::AssertionFailure()
             << "prediction " << i
             << " differs from the core's: " << p.ShortDebugString();
    }
  }
  return ::testing::AssertionSuccess();
}

// ------------------------------------------------------------------ fixture

// A Server with no network port, its in-process channel and a stub.
class ServiceTest : public ::testing::Test {
 protected:
  // How the test's channel reaches the server. The in-process transport is
  // torn down as soon as the server's Shutdown() begins, cancelling open
  // calls; tests of a graceful shutdown need a real connection.
  enum class Transport { kInProcess, kLoopback };

  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartServer({})); }

  // (Re)starts the server; `options.listen` is replaced: no network port for
  // kInProcess, a free loopback port for kLoopback.
  void StartServer(server::ServerOptions options,
                   Transport transport = Transport::kInProcess) {
    stub_.reset();
    channel_.reset();
    server_.reset();
    const bool loopback = transport == Transport::kLoopback;
    options.listen = loopback ? "127.0.0.1:0" : "";
    absl::StatusOr<std::unique_ptr<server::Server>> s =
        server::Server::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    channel_ = loopback ? grpc::CreateChannel(
                              absl::StrCat("127.0.0.1:", server_->port()),
                              grpc::InsecureChannelCredentials())
                        : server_->InProcessChannel();
    stub_ = v1::ModelService::NewStub(channel_);
  }

  grpc::Status CreateModel(const std::string& name, const v1::ModelSpec& spec,
                           v1::ModelInfo* info = nullptr) {
    v1::CreateModelRequest request;
    request.set_name(name);
    *request.mutable_spec() = spec;
    v1::ModelInfo ignored;
    return Call(&Stub::CreateModel, request, info ? info : &ignored);
  }
  grpc::Status GetModel(const std::string& name, v1::ModelInfo* info) {
    v1::GetModelRequest request;
    request.set_name(name);
    return Call(&Stub::GetModel, request, info);
  }
  grpc::Status ListModels(v1::ListModelsResponse* response) {
    return Call(&Stub::ListModels, v1::ListModelsRequest(), response);
  }
  grpc::Status DeleteModel(const std::string& name) {
    v1::DeleteModelRequest request;
    request.set_name(name);
    v1::DeleteModelResponse response;
    return Call(&Stub::DeleteModel, request, &response);
  }
  grpc::Status Predict(const v1::PredictRequest& request,
                       v1::PredictResponse* response) {
    return Call(&Stub::Predict, request, response);
  }
  grpc::Status Update(const v1::UpdateRequest& request,
                      v1::UpdateResponse* response = nullptr) {
    v1::UpdateResponse ignored;
    return Call(&Stub::Update, request, response ? response : &ignored);
  }

  // The newest version of `name`, or 0 (with a test failure) on an error.
  uint64_t VersionOf(const std::string& name) {
    v1::ModelInfo info;
    grpc::Status s = GetModel(name, &info);
    EXPECT_TRUE(IsOk(s)) << name;
    return info.version();
  }

  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (Stub::*rpc)(grpc::ClientContext*,
                                              const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    return (stub_.get()->*rpc)(&context, request, response);
  }

  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace lepton::server_test

#endif  // LEPTON_TESTS_SERVER_SERVICE_TEST_SUPPORT_H_
