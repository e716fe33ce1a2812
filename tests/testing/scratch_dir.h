// ScratchDir: a fresh, empty directory of one's own under the temporary
// directory, removed with everything in it when the object dies. For tests
// and benchmarks that need files: a server's --data_dir, a CSV file to read,
// certificates.
//
//   absl::StatusOr<ScratchDir> dir = ScratchDir::Create("lepton-cli-test");
//   if (!dir.ok()) return dir.status();
//   WriteCsv(dir->Path("train.csv"));  // <dir>/train.csv
//
// Create() makes "<TempRoot()>/<prefix>-XXXXXX" with mkdtemp, so tests that
// run at once, also from other build trees on the same machine, never share
// a directory. Keep() leaves it on disk, for looking at what a failed test
// wrote. A default-constructed or moved-from ScratchDir owns no directory.
// tests/testing/scratch_dir_fixture.h has the GoogleTest fixture built on it.
//
// Thread safety: a ScratchDir is used by one thread at a time.
#ifndef LEPTON_TESTS_TESTING_SCRATCH_DIR_H_
#define LEPTON_TESTS_TESTING_SCRATCH_DIR_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lepton::testing {

// The directory temporary files go to: $TEST_TMPDIR, else $TMPDIR, else
// /tmp (GoogleTest's choice for ::testing::TempDir()), without a trailing
// slash.
std::string TempRoot();

class ScratchDir {
 public:
  // A new directory; `prefix` may hold no '/' (each becomes '_').
  // INTERNAL with the reason if it cannot be made.
  static absl::StatusOr<ScratchDir> Create(absl::string_view prefix);

  ScratchDir() = default;
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&& other) noexcept;
  ~ScratchDir();

  // Empty when this object owns no directory.
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Path(absl::string_view name) const;
  // The directory stays on disk when this object dies.
  void Keep() { keep_ = true; }

 private:
  void Remove();

  std::string path_;
  bool keep_ = false;
};

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_SCRATCH_DIR_H_
