// The rollback, export and import commands and update's --update_id without a
// server: argument parsing and usage errors (exit 2), --help, the blob file
// helpers (FILE.tmp then rename, "-" for stdout and stdin), and server errors
// (exit 1) from a port nothing listens on.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/capture.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/subprocess.h"

namespace lepton::client {
namespace {

using testing::RunResult;

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Every byte value, NULs and a newline included: a blob is not text.
std::string BinaryBlob() {
  std::string blob = "LEPTNMDL";
  for (int i = 0; i < 600; ++i) blob.push_back(static_cast<char>(i % 256));
  return blob;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

using CommandFn = int (*)(const CommandArgs&, const GlobalOptions&);

// Runs a command, its output captured, against a port nothing listens on.
RunResult RunCommand(CommandFn run, const CommandArgs& args) {
  GlobalOptions global;
  global.target = "127.0.0.1:1";  // nothing listens there
  global.deadline = absl::Seconds(10);
  return testing::CaptureRun([&] { return run(args, global); });
}

// `err` is the one line "lepton_client: COMMAND: ...".
void ExpectOneLineError(const RunResult& o, const std::string& command) {
  EXPECT_THAT(o.err, StartsWith(absl::StrCat("lepton_client: ", command, ": ")))
      << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
}

// A fresh directory of this test's own (dir_), removed after it.
class CliVersionsTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::ScratchDirTest::SetUp());
    dir_ = root_;
  }

  std::string dir_;
};

TEST_F(CliVersionsTest, VersionArgumentIsAPositiveInteger) {
  EXPECT_EQ(*ParseVersionArgument("VERSION", "1"), 1u);
  EXPECT_EQ(*ParseVersionArgument("VERSION", "42"), 42u);
  EXPECT_EQ(*ParseVersionArgument("VERSION", "18446744073709551615"),
            18446744073709551615u);
  EXPECT_EQ(ParseVersionArgument("VERSION", "0").status().message(),
            "VERSION: \"0\" is not a positive integer");
  for (const char* bad :
       {"", "-1", "+1", " 1", "1.5", "abc", "1e3", "18446744073709551616"}) {
    absl::StatusOr<uint64_t> v = ParseVersionArgument("VERSION", bad);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(CliVersionsTest, WriteBlobFileReplacesTheFileWhole) {
  const std::string& dir = dir_;
  const std::string path = dir + "/m.lepton";
  const std::string blob = BinaryBlob();
  ASSERT_TRUE(WriteBlobFile(path, blob).ok());
  EXPECT_EQ(Slurp(path), blob);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // Over an existing file, and a stale .tmp left by an earlier crash.
  { std::ofstream(path + ".tmp") << "stale"; }
  ASSERT_TRUE(WriteBlobFile(path, "second").ok());
  EXPECT_EQ(Slurp(path), "second");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  ASSERT_TRUE(WriteBlobFile(path, "").ok());
  EXPECT_EQ(Slurp(path), "");
}

TEST_F(CliVersionsTest, WriteBlobFileFailureLeavesNothingBehind) {
  const std::string& dir = dir_;
  const std::string missing = dir + "/no_such_dir/m.lepton";
  absl::Status s = WriteBlobFile(missing, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), StartsWith(missing + ": "));
  EXPECT_FALSE(std::filesystem::exists(missing + ".tmp"));

  // A directory in the way of the rename: the .tmp file is removed again.
  const std::string taken = dir + "/taken";
  std::filesystem::create_directories(taken + "/child");
  s = WriteBlobFile(taken, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("rename"));
  EXPECT_FALSE(std::filesystem::exists(taken + ".tmp"));
  EXPECT_TRUE(std::filesystem::is_directory(taken));
}

TEST_F(CliVersionsTest, WriteBlobFileDashIsStdout) {
  const std::string blob = BinaryBlob();
  ::testing::internal::CaptureStdout();
  std::fputs("before\n", stdout);  // buffered: must come out first
  const absl::Status s = WriteBlobFile("-", blob);
  const std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(out, "before\n" + blob);
}

TEST_F(CliVersionsTest, ReadBlobFileReadsBytes) {
  const std::string& dir = dir_;
  const std::string path = dir + "/m.lepton";
  const std::string blob = BinaryBlob();
  ASSERT_TRUE(WriteBlobFile(path, blob).ok());
  absl::StatusOr<std::string> read = ReadBlobFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, blob);

  absl::StatusOr<std::string> missing = ReadBlobFile(dir + "/nope");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              StartsWith(dir + "/nope: cannot open: "));
  EXPECT_FALSE(ReadBlobFile(dir).ok());  // a directory cannot be read
}

TEST_F(CliVersionsTest, ReadBlobFileDashIsStdin) {
  const std::string& dir = dir_;
  const std::string path = dir + "/stdin.lepton";
  const std::string blob = BinaryBlob();
  ASSERT_TRUE(WriteBlobFile(path, blob).ok());
  const int saved = ::dup(STDIN_FILENO);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(saved, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, STDIN_FILENO), STDIN_FILENO);
  absl::StatusOr<std::string> read = ReadBlobFile("-");
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  ::close(fd);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, blob);
}

TEST_F(CliVersionsTest, UsageErrorsExitTwoWithOneLine) {
  struct Case {
    int (*run)(const CommandArgs&, const GlobalOptions&);
    const char* command;
    CommandArgs args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {RunRollback, "rollback", {"m"}, "expected 2 argument(s), got 1"},
      {RunRollback, "rollback", {"m", "2", "3"}, "expected 2 argument(s)"},
      {RunRollback,
       "rollback",
       {"m", "two"},
       "VERSION: \"two\" is not a positive integer"},
      {RunRollback, "rollback", {"m", "0"}, "VERSION: \"0\""},
      {RunRollback, "rollback", {"m", "2", "--version=3"}, "unknown flag"},
      {RunExport, "export", {"m"}, "expected 2 argument(s), got 1"},
      {RunExport, "export", {"m", "f", "--version=-1"}, "--version: must be"},
      {RunExport, "export", {"m", "f", "--version=x"}, "not an integer"},
      {RunExport, "export", {"m", ""}, "FILE must not be empty"},
      {RunExport,
       "export",
       {"m", "f", "--max_message_bytes=1"},
       "--max_message_bytes"},
      {RunImport, "import", {"f"}, "expected 2 argument(s), got 1"},
      {RunImport, "import", {"", "f"}, "MODEL must not be empty"},
      {RunImport, "import", {"m", ""}, "FILE must not be empty"},
      {RunImport, "import", {"m", "f", "--version=2"}, "unknown flag"},
      {RunUpdate,
       "update",
       {"m", "f.csv", absl::StrCat("--update_id=", std::string(129, 'x'))},
       "--update_id: at most 128 bytes, got 129"},
      {RunUpdate, "update", {"m", "f.csv", "--update_id"}, "needs a value"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.command, " ", c.args.empty() ? "" : c.args[0],
                              " ", c.args.size() > 1 ? c.args.back() : ""));
    const RunResult o = RunCommand(c.run, c.args);
    EXPECT_EQ(o.exit_code, kExitUsage);
    ExpectOneLineError(o, c.command);
    EXPECT_THAT(o.err, HasSubstr(c.message));
    EXPECT_EQ(o.out, "");
  }
}

TEST_F(CliVersionsTest, HelpExitsZeroAndDescribesTheCommand) {
  RunResult o = RunCommand(RunRollback, {"--help"});
  EXPECT_EQ(o.exit_code, kExitOk);
  EXPECT_THAT(o.out, StartsWith("Usage: lepton_client rollback MODEL VERSION"));
  EXPECT_THAT(o.out, HasSubstr("checkpointed_versions"));

  o = RunCommand(RunExport, {"m", "--help"});
  EXPECT_EQ(o.exit_code, kExitOk);
  EXPECT_THAT(o.out, StartsWith("Usage: lepton_client export MODEL FILE"));
  EXPECT_THAT(o.out, HasSubstr("FILE.tmp"));
  EXPECT_THAT(o.out, HasSubstr("--version=...\n"));
  EXPECT_THAT(o.out, HasSubstr("stdout"));

  o = RunCommand(RunImport, {"-h"});
  EXPECT_EQ(o.exit_code, kExitOk);
  EXPECT_THAT(o.out, StartsWith("Usage: lepton_client import MODEL FILE"));
  EXPECT_THAT(o.out, HasSubstr("stdin"));
  EXPECT_THAT(o.out, HasSubstr("INVALID_ARGUMENT"));

  o = RunCommand(RunUpdate, {"--help"});
  EXPECT_EQ(o.exit_code, kExitOk);
  EXPECT_THAT(o.out, HasSubstr("--update_id=...\n"));
  EXPECT_THAT(o.out, HasSubstr("Idempotent retries"));
  EXPECT_EQ(o.err, "");
}

TEST_F(CliVersionsTest, ServerErrorsExitOneNamingTheCode) {
  const std::string& dir = dir_;
  RunResult o = RunCommand(RunRollback, {"m", "2"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  ExpectOneLineError(o, "rollback");
  EXPECT_THAT(o.err, HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(o.err, HasSubstr("(UNAVAILABLE)"));

  // No blob: neither FILE nor FILE.tmp appears.
  const std::string path = dir + "/m.lepton";
  o = RunCommand(RunExport, {"m", path, "--version=3"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  ExpectOneLineError(o, "export");
  EXPECT_THAT(o.err, HasSubstr("(UNAVAILABLE)"));
  EXPECT_EQ(o.out, "");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  ASSERT_TRUE(WriteBlobFile(path, BinaryBlob()).ok());
  o = RunCommand(RunImport, {"m", path});
  EXPECT_EQ(o.exit_code, kExitFailure);
  ExpectOneLineError(o, "import");
  EXPECT_THAT(o.err, HasSubstr("(UNAVAILABLE)"));

  // A file that cannot be read fails before any call.
  o = RunCommand(RunImport, {"m", dir + "/nope"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  ExpectOneLineError(o, "import");
  EXPECT_THAT(o.err, HasSubstr(dir + "/nope: cannot open"));
}

}  // namespace
}  // namespace lepton::client
