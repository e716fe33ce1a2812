// GoogleTest helpers over ScratchDir (tests/testing/scratch_dir.h): a
// directory for the duration of one test that is removed after it, unless
// the test failed: then it stays, and its path is printed, so that the files
// the failure left can be read.
//
//   class StoreRestartTest : public testing::ScratchDirTest {};
//   TEST_F(StoreRestartTest, Reopens) {
//     Open(Path("data"));  // root_/data
//     ...
//
//   TEST(CrashRecoveryTest, Rounds) {
//     TestScratchDir dir("lepton-crash-test");
//     ASSERT_FALSE(dir.path().empty());  // it could not be made (reported)
//
// ScratchDirTest names its directory after the test (parameterized tests'
// '/' become '_'); a TestScratchDir is for tests that need several
// directories, or one per test suite.
//
// Thread safety: used by the test's own thread, as a fixture is.
#ifndef LEPTON_TESTS_TESTING_SCRATCH_DIR_FIXTURE_H_
#define LEPTON_TESTS_TESTING_SCRATCH_DIR_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tests/testing/scratch_dir.h"

namespace lepton::testing {

class TestScratchDir {
 public:
  // A new "<TempRoot()>/<prefix>-XXXXXX"; a test failure, and an empty
  // path(), if it cannot be made.
  explicit TestScratchDir(absl::string_view prefix) {
    absl::StatusOr<ScratchDir> dir = ScratchDir::Create(prefix);
    if (dir.ok()) {
      dir_ = *std::move(dir);
    } else {
      ADD_FAILURE() << dir.status();
    }
  }
  ~TestScratchDir() {
    if (dir_.path().empty() || !::testing::Test::HasFailure()) return;
    dir_.Keep();
    std::fprintf(stderr, "kept %s for inspection: the test failed\n",
                 dir_.path().c_str());
  }
  TestScratchDir(const TestScratchDir&) = delete;
  TestScratchDir& operator=(const TestScratchDir&) = delete;

  const std::string& path() const { return dir_.path(); }
  // path() + "/" + name.
  std::string Path(absl::string_view name) const { return dir_.Path(name); }

 private:
  ScratchDir dir_;
};

// Gives each test an empty directory of its own, root_.
class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    dir_.emplace(
        absl::StrCat("lepton_", info->test_suite_name(), "_", info->name()));
    ASSERT_FALSE(dir_->path().empty());
    root_ = dir_->path();
  }
  void TearDown() override { dir_.reset(); }

  // root_/sub.
  std::string Path(absl::string_view sub) const {
    return absl::StrCat(root_, "/", sub);
  }

  std::string root_;

 private:
  std::optional<TestScratchDir> dir_;
};

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_SCRATCH_DIR_FIXTURE_H_
