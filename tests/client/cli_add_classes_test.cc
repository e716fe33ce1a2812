// The add-classes command against a real server on a loopback port: the
// grown model printed as `info` does, the model given by flag or as the
// positional argument, usage errors (exit 2) and server errors (exit 1).
#include <cstdio>
#include <string>

#include "client/cli/commands.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_server_test.h"

namespace lepton::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class CliAddClassesTest : public CliServerTest {
 protected:
  void SetUp() override {
    CliServerTest::SetUp();
    v1::ModelSpec spec;
    spec.set_type(v1::SOFTMAX_REGRESSION);
    spec.set_num_features(2);
    spec.set_num_classes(3);
    ASSERT_TRUE(client_->CreateModel("m", spec).ok());
    spec.set_type(v1::LOGISTIC_REGRESSION);
    spec.set_num_classes(0);
    ASSERT_TRUE(client_->CreateModel("bin", spec).ok());
  }

  RunResult AddClasses(const CommandArgs& args) {
    return Run(RunAddClasses, args);
  }
};

TEST_F(CliAddClassesTest, GrowsTheModelAndPrintsIt) {
  RunResult o = AddClasses({"--model=m", "--num_classes=5"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_THAT(o.out, StartsWith("name: m\n"));
  EXPECT_THAT(o.out, HasSubstr("\nnum_classes: 5\n"));
  EXPECT_THAT(o.out, HasSubstr("\nversion: 2\n"));
  // Positional model; equal: nothing changes.
  o = AddClasses({"m", "--num_classes=5"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nversion: 2\n"));
  absl::StatusOr<v1::ModelInfo> info = client_->GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->spec().num_classes(), 5);
}

TEST_F(CliAddClassesTest, UsageErrors) {
  for (const CommandArgs& args :
       {CommandArgs{"--num_classes=4"}, CommandArgs{"--model=m"},
        CommandArgs{"--model=m", "--num_classes=0"},
        CommandArgs{"--model=m", "--num_classes=4294967296"},
        CommandArgs{"other", "--model=m", "--num_classes=4"},
        CommandArgs{"m", "x", "--num_classes=4"}}) {
    const RunResult o = AddClasses(args);
    EXPECT_EQ(o.exit_code, 2) << args[0] << " " << o.err;
    EXPECT_THAT(o.err, StartsWith("lepton_client: add-classes: ")) << o.err;
  }
}

TEST_F(CliAddClassesTest, ServerErrors) {
  RunResult o = AddClasses({"--model=bin", "--num_classes=4"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("num_classes: only SOFTMAX_REGRESSION"));
  o = AddClasses({"--model=m", "--num_classes=2"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("INVALID_ARGUMENT"));
  o = AddClasses({"--model=nope", "--num_classes=4"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace lepton::client
