// The RPCs and fields of durability over an in-process channel, on a server
// with a --data_dir: Rollback, ExportModel, ImportModel, UpdateRequest.
// update_id, ModelInfo.checkpointed_versions, recovery across a restart of
// the Server object, and DATA_LOSS for a model whose log is corrupt.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service_test_support.h"
#include "tests/core/fault_file_system.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::server_test {
namespace {

constexpr int64_t kD = 10;

class DurableServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    data_dir_ = dir_.Path("data");
    ASSERT_NO_FATAL_FAILURE(StartServer(Options()));
  }
  void TearDown() override {
    stub_.reset();
    channel_.reset();
    server_.reset();  // before its data directory goes
  }

  server::ServerOptions Options() {
    server::ServerOptions options;
    options.store.data_dir = data_dir_;
    options.store.retained_versions = 3;
    return options;
  }

  // Creates a logistic model and applies `updates` updates of 8 examples.
  void CreateTrained(const std::string& name, int updates) {
    ASSERT_TRUE(IsOk(CreateModel(name, Spec(v1::LOGISTIC_REGRESSION, kD))));
    DataGen gen(7);
    for (int i = 0; i < updates; ++i) {
      v1::UpdateRequest request = UpdateRequestOf(
          name, gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 8));
      request.set_learning_rate(0.5f);
      ASSERT_TRUE(IsOk(Update(request)));
    }
  }

  v1::PredictResponse PredictProbe(const std::string& name,
                                   uint64_t version = 0) {
    DataGen gen(99);
    v1::PredictResponse response;
    EXPECT_TRUE(IsOk(Predict(
        PredictRequestOf(name, gen.Instances(kD, 6), version), &response)));
    return response;
  }

  // The same predictions bit for bit, whatever versions produced them.
  ::testing::AssertionResult SamePredictions(const v1::PredictResponse& a,
                                             v1::PredictResponse b) {
    b.set_version(a.version());
    return BitEqual(a, b);
  }

  testing::TestScratchDir dir_{"lepton-durable"};
  std::string data_dir_;
  // For the tests that inject failures; it outlives the server (TearDown).
  FaultFileSystem fault_;
};

TEST_F(DurableServiceTest, RollbackPublishesAnEarlierStateAsTheNextVersion) {
  CreateTrained("m", 4);  // versions 1..5; 3..5 retained
  const v1::PredictResponse at3 = PredictProbe("m", 3);
  v1::RollbackRequest request;
  request.set_name("m");
  request.set_version(3);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(Call(&Stub::Rollback, request, &info)));
  EXPECT_EQ(info.version(), 6u);
  const v1::PredictResponse now = PredictProbe("m");
  EXPECT_EQ(now.version(), 6u);
  EXPECT_TRUE(SamePredictions(now, at3));
}

TEST_F(DurableServiceTest, RollbackErrors) {
  CreateTrained("m", 5);  // versions 1..6; 4..6 retained; checkpoint 1
  v1::RollbackRequest request;
  v1::ModelInfo info;
  request.set_name("m");
  request.set_version(0);
  EXPECT_TRUE(IsInvalid(Call(&Stub::Rollback, request, &info), "version"));
  request.set_version(2);  // neither retained nor checkpointed
  EXPECT_TRUE(IsError(Call(&Stub::Rollback, request, &info),
                      grpc::StatusCode::NOT_FOUND, "version 2 of model"));
  request.set_version(1);  // checkpointed at creation
  EXPECT_TRUE(IsOk(Call(&Stub::Rollback, request, &info)));
  EXPECT_EQ(info.version(), 7u);
  request.set_name("nope");
  EXPECT_TRUE(IsError(Call(&Stub::Rollback, request, &info),
                      grpc::StatusCode::NOT_FOUND, "model \"nope\""));
}

TEST_F(DurableServiceTest, ExportImportRoundTrip) {
  CreateTrained("a", 3);
  v1::ExportModelRequest request;
  request.set_name("a");
  v1::ExportModelResponse exported;
  ASSERT_TRUE(IsOk(Call(&Stub::ExportModel, request, &exported)));
  EXPECT_EQ(exported.version(), 4u);
  EXPECT_TRUE(absl::StartsWith(exported.model(), "LEPTNMDL"));

  v1::ImportModelRequest import;
  import.set_name("b");
  import.set_model(exported.model());
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(Call(&Stub::ImportModel, import, &info)));
  EXPECT_EQ(info.name(), "b");
  EXPECT_EQ(info.version(), 4u);
  EXPECT_EQ(info.examples_seen(), 24u);
  EXPECT_TRUE(BitEqual(PredictProbe("b"), PredictProbe("a")));

  // The name taken, a corrupt blob, an empty one.
  EXPECT_TRUE(IsError(Call(&Stub::ImportModel, import, &info),
                      grpc::StatusCode::ALREADY_EXISTS, "model \"b\""));
  import.set_name("c");
  std::string corrupt = exported.model();
  corrupt[corrupt.size() / 2] ^= 0x10;
  import.set_model(corrupt);
  EXPECT_TRUE(IsInvalid(Call(&Stub::ImportModel, import, &info), "model"));
  import.set_model("");
  EXPECT_TRUE(IsInvalid(Call(&Stub::ImportModel, import, &info), "model"));

  request.set_name("nope");
  EXPECT_TRUE(IsError(Call(&Stub::ExportModel, request, &exported),
                      grpc::StatusCode::NOT_FOUND, "model \"nope\""));
}

TEST_F(DurableServiceTest, UpdateIdMakesRetriesIdempotent) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  DataGen gen(3);
  v1::UpdateRequest request =
      UpdateRequestOf("m", gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 4));
  request.set_update_id("batch-1");
  v1::UpdateResponse first, retry;
  ASSERT_TRUE(IsOk(Update(request, &first)));
  ASSERT_TRUE(IsOk(Update(request, &retry)));
  EXPECT_EQ(first.version(), 2u);
  EXPECT_EQ(retry.version(), 2u);
  EXPECT_EQ(retry.loss_before(), first.loss_before());
  EXPECT_EQ(VersionOf("m"), 2u);

  // Survives a restart (replayed from the log).
  ASSERT_NO_FATAL_FAILURE(StartServer(Options()));
  ASSERT_TRUE(IsOk(Update(request, &retry)));
  EXPECT_EQ(retry.version(), 2u);
  EXPECT_EQ(VersionOf("m"), 2u);

  request.set_update_id(std::string(129, 'x'));
  EXPECT_TRUE(IsInvalid(Update(request, &retry), "update_id"));
}

TEST_F(DurableServiceTest, ARestartServesTheSameModel) {
  CreateTrained("m", 6);
  const v1::PredictResponse before = PredictProbe("m");
  ASSERT_NO_FATAL_FAILURE(StartServer(Options()));
  EXPECT_TRUE(server_->recovery_report().failed.empty());
  ASSERT_EQ(server_->recovery_report().recovered,
            std::vector<std::string>{"m"});
  const v1::PredictResponse after = PredictProbe("m");
  EXPECT_EQ(after.version(), 7u);
  EXPECT_TRUE(BitEqual(after, before));
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  // The creation checkpoint and the one the shutdown wrote.
  EXPECT_EQ(std::vector<uint64_t>(info.checkpointed_versions().begin(),
                                  info.checkpointed_versions().end()),
            (std::vector<uint64_t>{1, 7}));
}

TEST_F(DurableServiceTest, ACorruptLogIsDataLossForThatModelOnly) {
  CreateTrained("bad", 3);
  CreateTrained("good", 3);
  // A copy taken while the server runs is what a crash would leave: the
  // logs, no final checkpoint.
  const std::string crashed = data_dir_ + "-crashed";
  std::filesystem::copy(data_dir_, crashed,
                        std::filesystem::copy_options::recursive);
  server_.reset();
  std::filesystem::remove_all(data_dir_);
  std::filesystem::rename(crashed, data_dir_);
  const std::filesystem::path dir =
      std::filesystem::path(data_dir_) / "models" / "bad";
  std::filesystem::path log;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, "wal-") &&
        std::filesystem::file_size(entry.path()) > 100) {
      log = entry.path();
    }
  }
  ASSERT_FALSE(log.empty()) << "no log segment with records in " << dir;
  {
    std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);  // inside the first record, which is not the last
    f.put('\x5a');
  }
  ASSERT_NO_FATAL_FAILURE(StartServer(Options()));
  ASSERT_EQ(server_->recovery_report().failed.size(), 1u);
  EXPECT_EQ(server_->recovery_report().failed[0].first, "bad");
  v1::ModelInfo info;
  const grpc::Status s = GetModel("bad", &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), log.filename().string()))
      << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "offset"))
      << s.error_message();
  EXPECT_EQ(VersionOf("good"), 4u);
  // Creating over it is refused; deleting it frees the name.
  EXPECT_EQ(CreateModel("bad", Spec(v1::LOGISTIC_REGRESSION, kD)).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(IsOk(DeleteModel("bad")));
  EXPECT_TRUE(IsOk(CreateModel("bad", Spec(v1::LOGISTIC_REGRESSION, kD))));
}

TEST_F(DurableServiceTest, AFailedFsyncStopsChangesAndGetModelSaysWhy) {
  server::ServerOptions options = Options();
  options.store.fs = &fault_;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  CreateTrained("m", 2);
  CreateTrained("other", 2);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  EXPECT_EQ(info.update_log_error(), "");

  fault_.FailSyncs("/models/m/wal-");
  DataGen gen(3);
  const v1::UpdateRequest request =
      UpdateRequestOf("m", gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 8));
  EXPECT_EQ(Update(request).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(IsError(Update(request), grpc::StatusCode::FAILED_PRECONDITION,
                      "model \"m\": the update log failed"));
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  EXPECT_TRUE(absl::StrContains(info.update_log_error(), "Input/output error"))
      << info.update_log_error();
  EXPECT_EQ(info.version(), 3u);
  // Predictions go on, and the other model takes updates.
  EXPECT_EQ(PredictProbe("m").version(), 3u);
  ASSERT_TRUE(IsOk(GetModel("other", &info)));
  EXPECT_EQ(info.update_log_error(), "");
  EXPECT_TRUE(IsOk(Update(UpdateRequestOf(
      "other", gen.Examples(v1::LOGISTIC_REGRESSION, kD, 0, 8)))));

  // A restart recovers from the disk, and the model takes changes again.
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  EXPECT_EQ(info.update_log_error(), "");
  EXPECT_TRUE(IsOk(Update(request)));
}

}  // namespace
}  // namespace lepton::server_test
