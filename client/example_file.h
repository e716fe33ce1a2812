// ExampleReader: reads labeled examples from a text file, one line at a
// time, so that a file of any size streams through bounded memory.
//
// Formats (one example per line):
//   CSV     label,x_0,x_1,...,x_{D-1}   exactly 1 + D fields, dense features.
//           No header line, unless ExampleFileOptions::header says the first
//           line is one (it is then skipped, whatever it holds).
//   LIBSVM  label idx:val idx:val ...   sparse features, fields separated by
//           spaces or tabs; indices 0-based unless `one_based` (libsvm's own
//           tools count from 1). Any order, no index twice.
//   VW      label |ns feature feature:value |ns2 ...   named features,
//           Vowpal Wabbit style (feature_text.h's ParseNamedFeatures), which
//           the server hashes with the model's hash_seed and interactions.
//           The label is taken as it is (0/1 for logistic, not VW's -1/1).
// Numbers follow feature_text.h (finite floats). Blank lines are skipped; a
// trailing '\r' (Windows line ends) is ignored. Labels are read as floats and
// not checked against a model type: the server, or the caller, does that.
//
//   absl::StatusOr<std::unique_ptr<ExampleReader>> reader =
//       ExampleReader::Open("train.csv", {.format = FileFormat::kCsv,
//                                         .num_features = 784});
//   v1::Example example;
//   while (true) {
//     absl::StatusOr<bool> more = (*reader)->Next(&example);
//     if (!more.ok()) ...  // "train.csv:17: expected 785 fields, got 12"
//     if (!*more) break;
//     ...                  // (*reader)->line() is example's line number
//   }
//
// Errors name the file and the 1-based line: INVALID_ARGUMENT for a bad line,
// NOT_FOUND when the file cannot be opened, DATA_LOSS on a read error.
//
// Thread safety: none; one thread uses a reader.
#ifndef LEPTON_CLIENT_EXAMPLE_FILE_H_
#define LEPTON_CLIENT_EXAMPLE_FILE_H_

#include <cstdint>
#include <istream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

enum class FileFormat { kCsv, kLibsvm, kVw };

// "csv", "libsvm" or "vw".
absl::StatusOr<FileFormat> ParseFileFormat(absl::string_view name);
// From the file name's extension: .csv is CSV; .libsvm, .svm and .svmlight
// are LIBSVM; .vw is VW; anything else is INVALID_ARGUMENT asking for the
// format.
absl::StatusOr<FileFormat> FileFormatOfPath(absl::string_view path);

struct ExampleFileOptions {
  FileFormat format = FileFormat::kCsv;
  // D, the model's num_features. CSV: every line has exactly 1 + D fields
  // (0: as many as the first line has). LIBSVM: every index is below D
  // (0: not checked here; the server checks).
  int64_t num_features = 0;
  // LIBSVM: indices in the file start at 1.
  bool one_based = false;
  // CSV: the first line is a header, skipped.
  bool header = false;
};

// One line, without its line end, into `example` (cleared first). Errors carry
// no location (ExampleReader adds it). Exposed for tests.
absl::Status ParseCsvLine(absl::string_view line, int64_t num_features,
                          v1::Example* example);
absl::Status ParseLibsvmLine(absl::string_view line, int64_t num_features,
                             bool one_based, v1::Example* example);
absl::Status ParseVwLine(absl::string_view line, v1::Example* example);

class ExampleReader {
 public:
  static absl::StatusOr<std::unique_ptr<ExampleReader>> Open(
      const std::string& path, const ExampleFileOptions& options);
  // Reads `in`; `name` stands for the file in messages.
  ExampleReader(std::unique_ptr<std::istream> in, std::string name,
                const ExampleFileOptions& options);

  // The next example into `example` (cleared first): true, or false at the
  // end of the file. After an error the reader stays failed.
  absl::StatusOr<bool> Next(v1::Example* example);

  // 1-based line number of the example Next() returned last (0 before).
  int64_t line() const { return line_; }
  const std::string& name() const { return name_; }
  // D: as given, or, for CSV with num_features 0, as read from the first line.
  int64_t num_features() const { return options_.num_features; }

 private:
  absl::Status LineError(const absl::Status& status) const;

  std::unique_ptr<std::istream> in_;
  const std::string name_;
  ExampleFileOptions options_;
  std::string text_;  // the current line
  int64_t line_ = 0;
  absl::Status error_;
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_EXAMPLE_FILE_H_
