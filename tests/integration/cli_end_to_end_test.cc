// The real lepton_server driven by the real lepton_client binary, as a user
// would from a shell: create, train from a file, predict (newest and pinned),
// eval, info, list, delete, and the one-line errors with their exit codes.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/server_process.h"

namespace lepton::testing {
namespace {

// The value of the "key: value" line of `out`, or "" if there is none.
std::string Field(const std::string& out, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, key + ": ")) {
      return std::string(line.substr(key.size() + 2));
    }
  }
  return "";
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    dir_ = ::testing::TempDir();
  }

  RunResult Client(std::vector<std::string> args) {
    args.insert(args.begin(),
                {kClientPath, absl::StrCat("--target=", server_.target())});
    return lepton::testing::Run(args);
  }

  // y = 1 iff x0 > x1; n lines of "label,x0,x1".
  std::string WriteCsv(const std::string& name, int n) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream out(path);
    for (int i = 0; i < n; ++i) {
      const float a = static_cast<float>((i * 7) % 17) / 17.0f;
      const float b = static_cast<float>((i * 11) % 19) / 19.0f;
      out << (a > b ? 1 : 0) << "," << a << "," << b << "\n";
    }
    return path;
  }

  ServerProcess server_;
  std::string dir_;
};

TEST_F(CliTest, ModelLifeCycle) {
  RunResult r = Client({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = Client({"create", "cli", "--type=logistic", "--num_features=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "1") << r.out;

  const std::string train = WriteCsv("cli_train.csv", 500);
  r = Client({"train", "cli", train, "--batch=50", "--progress=0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "examples"), "500") << r.out;
  EXPECT_EQ(Field(r.out, "version"), "11") << r.out;

  r = Client({"predict", "cli", "--dense=0.9,0.1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "11") << r.out;
  // "label<TAB>probability" for logistic: the learned rule says 1.
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_GE(lines.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(lines[1], "1\t")) << r.out;

  r = Client({"predict", "cli", "--sparse=0:0.9,1:0.1", "--version=10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "10") << r.out;

  // Eight retained versions: 4 .. 11. Version 1 is gone.
  r = Client({"predict", "cli", "--dense=0.9,0.1", "--version=1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "NOT_FOUND") ||
              absl::StrContains(r.err, "not"))
      << r.err;

  r = Client({"eval", "cli", train});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "11") << r.out;
  double accuracy = 0;
  ASSERT_TRUE(absl::SimpleAtod(Field(r.out, "accuracy"), &accuracy)) << r.out;
  EXPECT_GT(accuracy, 0.9);

  r = Client({"info", "cli"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "11") << r.out;
  EXPECT_EQ(Field(r.out, "examples_seen"), "500") << r.out;

  r = Client({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "cli")) << r.out;

  r = Client({"delete", "cli"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Client({"info", "cli"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "cli")) << r.err;

  server_.process().Signal(SIGTERM);
  EXPECT_EQ(server_.process().Wait(absl::Seconds(30)), std::optional<int>(0));
}

TEST_F(CliTest, ErrorsAreOneLineWithNonZeroExit) {
  ASSERT_EQ(Client({"create", "err", "--type=logistic", "--num_features=2"})
                .exit_code,
            0);

  // A bad line of a file is named with its line number.
  const std::string bad = absl::StrCat(dir_, "/cli_bad.csv");
  {
    std::ofstream out(bad);
    out << "1,0.5,0.25\n0,0.1,0.2\n1,0.3\n";
  }
  RunResult r = Client({"train", "err", bad, "--progress=0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "cli_bad.csv:3")) << r.err;

  // A label the server rejects: the error names the file line it came from.
  const std::string wrong_label = absl::StrCat(dir_, "/cli_label.csv");
  {
    std::ofstream out(wrong_label);
    out << "1,0.5,0.25\n2,0.1,0.2\n";
  }
  r = Client({"train", "err", wrong_label, "--progress=0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "label")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "cli_label.csv:2")) << r.err;

  r = Client({"info", "no_such_model"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no_such_model")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  r = Client({"predict", "err", "--dense=1,2,3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "instances[0].dense")) << r.err;

  r = Client({"no_such_command"});
  EXPECT_EQ(r.exit_code, 2);

  // No server at all: the error says which target could not be reached.
  r = lepton::testing::Run({kClientPath, "--target=127.0.0.1:1", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "127.0.0.1:1")) << r.err;
  r = lepton::testing::Run({kClientPath, "--target=127.0.0.1:1", "health"});
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace lepton::testing
