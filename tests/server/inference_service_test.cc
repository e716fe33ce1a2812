// The Open Inference Protocol's ModelInfer under hostile input, in process
// (so that the ASan and UBSan builds run it): seeded random requests, valid
// ones mutated in their shapes, sizes, bytes, names, datatypes, outputs and
// versions. Every answer must be OK or a client error, an OK answer's
// outputs must hold exactly what their shapes say, and the model's version
// must count exactly the learning calls that were answered OK (all or
// nothing). The protocol's behaviour call by call is tested on the real
// binary (tests/integration/inference_protocol_test.cc).
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

constexpr int64_t kD = 3;
constexpr int32_t kK = 4;

std::string Bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint32_t word = std::bit_cast<uint32_t>(values[i]);
    for (int b = 0; b < 4; ++b)
      bytes[i * 4 + b] = static_cast<char>(word >> (8 * b));
  }
  return bytes;
}

class InferenceServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.service.max_batch = 32;
    options.max_message_bytes = 1 << 16;
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    inference_ = GRPCInferenceService::NewStub(channel_);
  }

  // A valid request of `n` rows: predicting, or learning with labels (and
  // weights).
  ModelInferRequest Valid(std::mt19937_64& rng, int n, bool learn, bool raw) {
    std::uniform_real_distribution<float> x(-2, 2);
    ModelInferRequest request;
    request.set_model_name("m");
    auto add = [&](const std::string& name, std::vector<int64_t> shape,
                   const std::vector<float>& values) {
      auto* input = request.add_inputs();
      input->set_name(name);
      input->set_datatype("FP32");
      for (int64_t d : shape) input->add_shape(d);
      if (raw) {
        request.add_raw_input_contents(Bytes(values));
      } else {
        for (float v : values) input->mutable_contents()->add_fp32_contents(v);
      }
    };
    std::vector<float> features(n * kD);
    for (float& v : features) v = x(rng);
    add("features", {n, kD}, features);
    if (learn) {
      std::vector<float> labels(n), weights(n);
      for (int i = 0; i < n; ++i) {
        labels[i] = static_cast<float>(rng() % kK);
        weights[i] = static_cast<float>(rng() % 3);
      }
      add("label", {n}, labels);
      if (rng() % 2 == 0) add("weight", {n}, weights);
    }
    return request;
  }

  // One random change that may or may not make `request` invalid.
  void Mutate(std::mt19937_64& rng, ModelInferRequest* request) {
    const int inputs = request->inputs_size();
    auto* input = request->mutable_inputs(rng() % inputs);
    const int64_t wild[] = {-1,
                            0,
                            1,
                            2,
                            kD,
                            33,
                            int64_t{1} << 31,
                            int64_t{1} << 62,
                            std::numeric_limits<int64_t>::max(),
                            std::numeric_limits<int64_t>::min()};
    switch (rng() % 12) {
      case 0:
        if (input->shape_size() > 0) {
          input->set_shape(rng() % input->shape_size(), wild[rng() % 10]);
        }
        break;
      case 1:
        input->add_shape(wild[rng() % 10]);
        break;
      case 2:
        input->clear_shape();
        break;
      case 3:
        input->set_datatype(rng() % 2 ? "INT64" : "");
        break;
      case 4:
        input->set_name(rng() % 2 ? "label" : "weight");
        break;
      case 5:
        if (request->raw_input_contents_size() > 0) {
          std::string* bytes = request->mutable_raw_input_contents(
              rng() % request->raw_input_contents_size());
          if (rng() % 2 && !bytes->empty()) {
            bytes->resize(rng() % bytes->size());
          } else {
            bytes->append(rng() % 7 + 1, '\x7f');
          }
        } else if (input->contents().fp32_contents_size() > 0) {
          input->mutable_contents()->mutable_fp32_contents()->RemoveLast();
        }
        break;
      case 6:
        if (request->raw_input_contents_size() > 0) {
          request->add_raw_input_contents("abcd");
        } else {
          input->mutable_contents()->add_int64_contents(1);
        }
        break;
      case 7: {
        // A NaN, an infinity or an out-of-range label somewhere.
        const float bad[] = {std::numeric_limits<float>::quiet_NaN(),
                             std::numeric_limits<float>::infinity(), 7.0f,
                             -1.0f, 0.5f};
        const float v = bad[rng() % 5];
        if (request->raw_input_contents_size() > 0) {
          std::string* bytes = request->mutable_raw_input_contents(
              rng() % request->raw_input_contents_size());
          if (bytes->size() >= 4) {
            const std::string one = Bytes({v});
            bytes->replace((rng() % (bytes->size() / 4)) * 4, 4, one);
          }
        } else if (input->contents().fp32_contents_size() > 0) {
          input->mutable_contents()->set_fp32_contents(
              rng() % input->contents().fp32_contents_size(), v);
        }
        break;
      }
      case 8: {
        const char* names[] = {"probabilities", "label", "value", "version",
                               "nope"};
        request->add_outputs()->set_name(names[rng() % 5]);
        break;
      }
      case 9: {
        const char* versions[] = {
            "", "1", "2", "0", "x", "999999", "18446744073709551616"};
        request->set_model_version(versions[rng() % 7]);
        break;
      }
      case 10:
        request->set_model_name(rng() % 2 ? "nope" : "");
        break;
      case 11:
        (*request->mutable_parameters())["update_id"].set_string_param(
            absl::StrCat("u", rng() % 4));
        break;
    }
  }

  std::unique_ptr<GRPCInferenceService::Stub> inference_;
};

TEST_F(InferenceServiceTest, HostileRequestsAreAnsweredAndApplyAllOrNothing) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::SOFTMAX_REGRESSION, kD, kK))));
  std::mt19937_64 rng(20240611);
  uint64_t learned = 0;  // learning calls answered OK with a new version
  int ok = 0, refused = 0;
  std::map<std::string, std::string> versions_by_id;
  for (int round = 0; round < 3000; ++round) {
    const bool learn = rng() % 2 == 0;
    const bool raw = rng() % 2 == 0;
    const int n = 1 + static_cast<int>(rng() % 40);  // max_batch 32
    ModelInferRequest request = Valid(rng, n, learn, raw);
    const int mutations = static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations; ++m) Mutate(rng, &request);

    grpc::ClientContext context;
    ModelInferResponse response;
    grpc::Status s = inference_->ModelInfer(&context, request, &response);
    SCOPED_TRACE(absl::StrCat("round ", round, ": ", s.error_code(), " ",
                              s.error_message()));
    const grpc::StatusCode code = s.error_code();
    ASSERT_TRUE(code == grpc::StatusCode::OK ||
                code == grpc::StatusCode::INVALID_ARGUMENT ||
                code == grpc::StatusCode::NOT_FOUND ||
                code == grpc::StatusCode::RESOURCE_EXHAUSTED);
    if (!s.ok()) {
      ++refused;
      EXPECT_FALSE(s.error_message().empty());
      EXPECT_LT(s.error_message().size(), 400u);
      continue;
    }
    ++ok;
    const bool raw_out = response.raw_output_contents_size() > 0;
    for (int i = 0; i < response.outputs_size(); ++i) {
      const auto& out = response.outputs(i);
      int64_t elements = 1;
      for (int64_t d : out.shape()) elements *= d;
      const int64_t width = out.datatype() == "INT64" ? 8 : 4;
      if (raw_out) {
        ASSERT_EQ(response.raw_output_contents_size(), response.outputs_size());
        EXPECT_EQ(static_cast<int64_t>(response.raw_output_contents(i).size()),
                  elements * width)
            << out.name();
      } else if (width == 8) {
        EXPECT_EQ(out.contents().int64_contents_size(), elements);
      } else {
        EXPECT_EQ(out.contents().fp32_contents_size(), elements);
      }
    }
    if (response.outputs_size() == 1 &&
        response.outputs(0).name() == "version") {
      // A retry of an update_id answers its original version, learning
      // nothing; any other learning call makes the next version.
      const auto& params = request.parameters();
      const std::string id = params.count("update_id") > 0
                                 ? params.at("update_id").string_param()
                                 : "";
      auto [it, fresh] = versions_by_id.emplace(id, "");
      if (id.empty() || fresh) {
        ++learned;
        it->second = absl::StrCat(1 + learned);
      }
      EXPECT_EQ(response.model_version(), it->second);
    }
  }
  // Both kinds happened, and the version counts the learning calls.
  EXPECT_GT(ok, 300);
  EXPECT_GT(refused, 300);
  EXPECT_GT(learned, 50u);
  EXPECT_EQ(VersionOf("m"), 1 + learned);
}

}  // namespace
}  // namespace lepton::server_test
