// The real lepton_server driven by the real lepton_client binary, as a user
// would from a shell: create, train from a file, predict (newest and pinned),
// eval, info, list, delete, and the one-line errors with their exit codes;
// then update --update_id, rollback, export and import.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

// Each test has a server and a directory (dir_) of its own.
class CliTest : public ScratchDirTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ScratchDirTest::SetUp());
    dir_ = root_;
    ASSERT_TRUE(server_.Start().ok());
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

  ServerProcess server_{kServerPath};
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

// The durable side of the command line: update --update_id retried, export
// to a file and import under a new name, export to stdout piped into import
// from stdin, rollback, and the errors of export and import.
TEST_F(CliTest, VersionsExportImportAndRetriedUpdates) {
  RunResult r =
      Client({"create", "dur", "--type=logistic", "--num_features=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string first = WriteCsv("dur_first.csv", 40);
  const std::string second = WriteCsv("dur_second.csv", 25);

  r = Client({"update", "dur", first});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "2") << r.out;
  r = Client({"update", "dur", second, "--update_id=x"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "3") << r.out;
  const std::string original = r.out;

  // The retry applies nothing and answers as the original did.
  r = Client({"update", "dur", second, "--update_id=x"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, original);
  EXPECT_EQ(Field(r.out, "version"), "3") << r.out;
  r = Client({"info", "dur"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "3") << r.out;
  EXPECT_EQ(Field(r.out, "updates"), "2") << r.out;
  EXPECT_EQ(Field(r.out, "examples_seen"), "65") << r.out;

  // Predictions of every line of `first`, by version 2 and by the newest.
  r = Client({"predict", "dur", absl::StrCat("--file=", first), "--version=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "2") << r.out;
  const std::string at_2 = r.out;
  r = Client({"predict", "dur", absl::StrCat("--file=", first)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "3") << r.out;
  const std::string at_3 = r.out;
  ASSERT_NE(at_2.substr(at_2.find('\n')), at_3.substr(at_3.find('\n')));

  const std::string blob_path = absl::StrCat(dir_, "/dur.lepton");
  r = Client({"export", "dur", blob_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "model"), "dur") << r.out;
  EXPECT_EQ(Field(r.out, "version"), "3") << r.out;
  std::string blob;
  {
    std::ifstream in(blob_path, std::ios::binary);
    blob.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_EQ(Field(r.out, "bytes"), absl::StrCat(blob.size())) << r.out;
  EXPECT_TRUE(absl::StartsWith(blob, "LEPTNMDL"));
  EXPECT_FALSE(std::ifstream(blob_path + ".tmp").good());

  r = Client({"import", "dur_copy", blob_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "name"), "dur_copy") << r.out;
  EXPECT_EQ(Field(r.out, "version"), "3") << r.out;
  EXPECT_EQ(Field(r.out, "examples_seen"), "65") << r.out;
  r = Client({"predict", "dur_copy", absl::StrCat("--file=", first)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, at_3);

  // "-": export to stdout (its report goes to stderr), import from stdin.
  const std::string client =
      absl::StrCat(kClientPath, " --target=", server_.target());
  r = lepton::testing::Run({"/bin/sh", "-c",
                            absl::StrCat(client, " export dur - --version=2 | ",
                                         client, " import dur_piped -")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "name"), "dur_piped") << r.out;
  EXPECT_EQ(Field(r.out, "version"), "2") << r.out;
  EXPECT_EQ(Field(r.err, "model"), "dur") << r.err;
  EXPECT_EQ(Field(r.err, "version"), "2") << r.err;
  r = Client({"predict", "dur_piped", absl::StrCat("--file=", first)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, at_2);

  // Rollback publishes version 2's state as version 4.
  r = Client({"rollback", "dur", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "name"), "dur") << r.out;
  EXPECT_EQ(Field(r.out, "version"), "4") << r.out;
  r = Client({"info", "dur"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "4") << r.out;
  r = Client({"predict", "dur", absl::StrCat("--file=", first)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "version"), "4") << r.out;
  EXPECT_EQ(r.out.substr(r.out.find('\n')), at_2.substr(at_2.find('\n')));
  r = Client({"rollback", "dur", "99"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "NOT_FOUND")) << r.err;

  // Errors: one line, exit 1 with the server's code; nothing written or made.
  const std::string missing_path = absl::StrCat(dir_, "/missing.lepton");
  r = Client({"export", "no_such_model", missing_path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "NOT_FOUND")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(std::ifstream(missing_path).good());

  std::string corrupt = blob;
  corrupt[corrupt.size() / 2] ^= 0x20;
  const std::string corrupt_path = absl::StrCat(dir_, "/corrupt.lepton");
  {
    std::ofstream out(corrupt_path, std::ios::binary);
    out << corrupt;
  }
  r = Client({"import", "dur_bad", corrupt_path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "INVALID_ARGUMENT")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(Client({"info", "dur_bad"}).exit_code, 1);

  r = Client({"import", "dur_copy", blob_path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "ALREADY_EXISTS")) << r.err;

  // Usage errors.
  EXPECT_EQ(Client({"rollback", "dur", "0"}).exit_code, 2);
  EXPECT_EQ(Client({"import", "", blob_path}).exit_code, 2);
  EXPECT_EQ(Client({"export", "dur"}).exit_code, 2);
}

}  // namespace
}  // namespace lepton::testing
