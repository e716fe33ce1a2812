// The add-classes command against a real server on a loopback port: the
// grown model printed as `info` does, the model given by flag or as the
// positional argument, usage errors (exit 2) and server errors (exit 1).
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace lepton::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Outcome {
  int exit_code;
  std::string out;
  std::string err;
};

class CliAddClassesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<server::Server>> s =
        server::Server::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    client_ =
        std::make_unique<Client>(server_->InProcessChannel(), ClientOptions{});
    v1::ModelSpec spec;
    spec.set_type(v1::SOFTMAX_REGRESSION);
    spec.set_num_features(2);
    spec.set_num_classes(3);
    ASSERT_TRUE(client_->CreateModel("m", spec).ok());
    spec.set_type(v1::LOGISTIC_REGRESSION);
    spec.set_num_classes(0);
    ASSERT_TRUE(client_->CreateModel("bin", spec).ok());
  }

  Outcome Run(const CommandArgs& args) {
    GlobalOptions global;
    global.target = absl::StrCat("127.0.0.1:", server_->port());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    Outcome o;
    o.exit_code = RunAddClasses(args, global);
    std::fflush(stdout);
    std::fflush(stderr);
    o.out = ::testing::internal::GetCapturedStdout();
    o.err = ::testing::internal::GetCapturedStderr();
    return o;
  }

  std::unique_ptr<server::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(CliAddClassesTest, GrowsTheModelAndPrintsIt) {
  Outcome o = Run({"--model=m", "--num_classes=5"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_THAT(o.out, StartsWith("name: m\n"));
  EXPECT_THAT(o.out, HasSubstr("\nnum_classes: 5\n"));
  EXPECT_THAT(o.out, HasSubstr("\nversion: 2\n"));
  // Positional model; equal: nothing changes.
  o = Run({"m", "--num_classes=5"});
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
    const Outcome o = Run(args);
    EXPECT_EQ(o.exit_code, 2) << args[0] << " " << o.err;
    EXPECT_THAT(o.err, StartsWith("lepton_client: add-classes: ")) << o.err;
  }
}

TEST_F(CliAddClassesTest, ServerErrors) {
  Outcome o = Run({"--model=bin", "--num_classes=4"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("num_classes: only SOFTMAX_REGRESSION"));
  o = Run({"--model=m", "--num_classes=2"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("INVALID_ARGUMENT"));
  o = Run({"--model=nope", "--num_classes=4"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace lepton::client
