// Predictions and updates through gRPC at the same time, on two models:
// 8 predicting clients and 2 updating clients for about 2 seconds. Every
// prediction must equal, bit for bit, the store's recomputation at the
// version the response names (the server retains every version, so each one
// can be pinned afterwards); the versions a client sees never go backwards;
// each model ends at 1 + the updates applied to it (none lost, none doubled);
// and the only errors are the ones the updaters provoke on purpose.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

constexpr int kPredictors = 8;
constexpr int kUpdaters = 2;
constexpr absl::Duration kRunFor = absl::Seconds(2);

struct ModelCase {
  std::string name;
  v1::ModelType type;
  int64_t num_features;
  int32_t num_classes;
};

const ModelCase kModels[] = {
    {"dense-softmax", v1::SOFTMAX_REGRESSION, 16, 4},
    {"sparse-logistic", v1::LOGISTIC_REGRESSION, 200, 0},
};

// Failures found on client threads, reported on the main thread (a few
// messages, not one per bad prediction).
class Failures {
 public:
  void Add(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (messages_.size() < 10) messages_.push_back(what);
    ++count_;
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  std::string Summary() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s;
    for (const std::string& m : messages_) s += m + "\n";
    return s;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> messages_;
  int count_ = 0;
};

class GrpcConcurrencyTest : public ServiceTest {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.store.retained_versions = 100000;
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    for (const ModelCase& m : kModels) {
      ASSERT_TRUE(IsOk(
          CreateModel(m.name, Spec(m.type, m.num_features, m.num_classes))));
    }
  }

  void Predictor(int id) {
    const ModelCase& m = kModels[id % 2];
    std::unique_ptr<Stub> stub = v1::ModelService::NewStub(channel_);
    DataGen gen(100 + id);
    std::vector<std::vector<Features>> batches;
    for (int i = 0; i < 8; ++i) {
      batches.push_back(gen.Instances(m.num_features, 1 + i % 4));
    }
    uint64_t last_version = 0;
    for (int i = 0; !stop_.load(); ++i) {
      const std::vector<Features>& batch = batches[i % batches.size()];
      grpc::ClientContext context;
      v1::PredictResponse response;
      grpc::Status s =
          stub->Predict(&context, PredictRequestOf(m.name, batch), &response);
      if (!s.ok()) {
        failures_.Add("Predict: " + s.error_message());
        continue;
      }
      if (response.version() < last_version) {
        failures_.Add(absl::StrCat(m.name, ": version went back from ",
                                   last_version, " to ", response.version()));
      }
      last_version = response.version();
      absl::StatusOr<Predictions> expected =
          server_->store().Predict(m.name, Views(batch), response.version());
      if (!expected.ok()) {
        failures_.Add("recompute: " + expected.status().ToString());
        continue;
      }
      ::testing::AssertionResult same = MatchesCore(response, *expected);
      if (!same) failures_.Add(absl::StrCat(m.name, ": ", same.message()));
      checked_.fetch_add(1);
      uint64_t seen = max_version_seen_.load();
      while (
          seen < response.version() &&
          !max_version_seen_.compare_exchange_weak(seen, response.version())) {
      }
    }
  }

  // Alternates between the models; every 10th request has a bad label and
  // must be rejected naming it.
  void Updater(int id) {
    std::unique_ptr<Stub> stub = v1::ModelService::NewStub(channel_);
    DataGen gen(200 + id);
    std::map<std::string, uint64_t> last_version;
    for (int i = 0; !stop_.load(); ++i) {
      const ModelCase& m = kModels[i % 2];
      v1::UpdateRequest request = UpdateRequestOf(
          m.name, gen.Examples(m.type, m.num_features, m.num_classes, 8));
      const bool bad = i % 10 == 9;
      if (bad) request.mutable_examples(5)->set_label(-1);
      grpc::ClientContext context;
      v1::UpdateResponse response;
      grpc::Status s = stub->Update(&context, request, &response);
      if (bad) {
        if (IsInvalid(s, "examples[5].label")) {
          rejected_.fetch_add(1);
        } else {
          failures_.Add("bad Update was not rejected: " + s.error_message());
        }
        continue;
      }
      if (!s.ok()) {
        failures_.Add("Update: " + s.error_message());
        continue;
      }
      if (response.version() <= last_version[m.name]) {
        failures_.Add(absl::StrCat(m.name, ": update version ",
                                   response.version(), " after ",
                                   last_version[m.name]));
      }
      last_version[m.name] = response.version();
      applied_[i % 2].fetch_add(1);
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int64_t> checked_{0};
  std::atomic<uint64_t> max_version_seen_{0};
  std::atomic<int64_t> applied_[2] = {0, 0};
  std::atomic<int64_t> rejected_{0};
  Failures failures_;
};

TEST_F(GrpcConcurrencyTest, PredictionsMatchTheirVersionWhileUpdating) {
  std::vector<std::thread> threads;
  for (int i = 0; i < kPredictors; ++i) {
    threads.emplace_back([this, i] { Predictor(i); });
  }
  for (int i = 0; i < kUpdaters; ++i) {
    threads.emplace_back([this, i] { Updater(i); });
  }
  // The run's length, not a synchronization: the checks are made as it goes.
  absl::SleepFor(kRunFor);
  stop_ = true;
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(failures_.count(), 0) << failures_.Summary();
  EXPECT_GT(checked_.load(), 0);
  EXPECT_GT(applied_[0].load() + applied_[1].load(), 0);
  EXPECT_GT(rejected_.load(), 0);
  EXPECT_GT(max_version_seen_.load(), 1u);  // predictions saw updates land
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(kModels[i].name);
    EXPECT_GT(applied_[i].load(), 0);
    EXPECT_EQ(VersionOf(kModels[i].name),
              1u + static_cast<uint64_t>(applied_[i].load()));
  }
  std::printf("checked %lld predictions; applied %lld + %lld updates\n",
              static_cast<long long>(checked_.load()),
              static_cast<long long>(applied_[0].load()),
              static_cast<long long>(applied_[1].load()));
}

}  // namespace
}  // namespace lepton::server_test
