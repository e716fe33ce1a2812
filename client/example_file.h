// ExampleReader: reads labeled examples from a text file, in large blocks
// into buffers it reuses, so that a file of any size streams through bounded
// memory and a steady stream of lines allocates nothing.
//
// Formats (one example per line):
//   CSV     label,x_0,x_1,...,x_{D-1}   exactly 1 + D fields, dense features.
//           No header line, unless ExampleFileOptions::header says the first
//           line is one (it is then skipped, whatever it holds).
//   LIBSVM  label idx:val idx:val ...   sparse features, fields separated by
//           spaces or tabs; indices 0-based unless `one_based` (libsvm's own
//           tools count from 1). Any order, no index twice.
//   VW      Vowpal Wabbit's text format (vw_text.h): label [importance]
//           ['tag]|ns[:weight] feature feature:value |ns2 ... Named
//           features, which the server hashes with the model's hash_seed
//           and interactions. Labels as written, or VW's mapped to Lepton's
//           (`vw_labels`, vw_labels.h).
// Numbers follow feature_text.h (finite floats); one line is parsed by
// example_text.h or vw_text.h. Blank lines are skipped; a trailing '\r'
// (Windows line ends) is ignored. Labels are not checked against a model
// type (except VW's mapped ones): the server, or the caller, does that.
//
//   absl::StatusOr<std::unique_ptr<ExampleReader>> reader =
//       ExampleReader::Open("train.csv", {.format = FileFormat::kCsv,
//                                         .num_features = 784});
//   ExampleBatch batch;  // reused: its examples keep their arrays
//   while (true) {
//     absl::StatusOr<int> n = (*reader)->NextBatch(256, &batch);
//     if (!n.ok()) ...  // "train.csv:17:34: field 7 (feature 5): \"x\" ..."
//     if (*n == 0) break;
//     ...               // batch.examples[i] came from line batch.lines[i]
//   }
//
// Next() reads one example at a time instead. Errors name the file, the
// 1-based line and, where the error is one field or number, the 1-based
// column (byte) of the line: INVALID_ARGUMENT for a bad line (or one longer
// than LineBuffer::kMaxLineBytes, 1 GiB, refused before it is all in
// memory), NOT_FOUND when the file cannot be opened, DATA_LOSS on a read
// error.
//
// Thread safety: none; one thread at a time uses a reader (the prefetcher,
// example_prefetcher.h, hands one to its reading thread).
#ifndef LEPTON_CLIENT_EXAMPLE_FILE_H_
#define LEPTON_CLIENT_EXAMPLE_FILE_H_

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/example_text.h"
#include "client/line_buffer.h"
#include "client/vw_labels.h"
#include "client/vw_text.h"
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
  // VW: VW's labels mapped to Lepton's (vw_labels.h), or taken as written.
  VwLabels vw_labels = VwLabels::kAsIs;
  // K of a softmax model, for VwLabels::kMulticlass.
  int64_t num_classes = 0;
};

// Examples read together, with the line each came from. Reusing one keeps
// its examples' messages and arrays, which the next lines fill without
// allocating.
struct ExampleBatch {
  google::protobuf::RepeatedPtrField<v1::Example> examples;
  std::vector<int64_t> lines;

  int size() const { return examples.size(); }
  // Empties the batch. Protobuf's Clear() of an example deletes its
  // features: they are kept aside instead, for Add() to hand out again.
  void Clear() {
    for (v1::Example& e : examples) {
      if (e.has_features()) spare_features_.emplace_back(e.release_features());
    }
    examples.Clear();
    lines.clear();
  }
  // A new last example, with the features (and their room) of an earlier
  // one when there is one.
  v1::Example* Add() {
    v1::Example* e = examples.Add();
    if (!e->has_features() && !spare_features_.empty()) {
      e->set_allocated_features(spare_features_.back().release());
      spare_features_.pop_back();
    }
    return e;
  }

 private:
  std::vector<std::unique_ptr<v1::Features>> spare_features_;
};

// The text of lines read together, copied out of the reader's buffer, so
// that another thread can parse them (ParseBatchText) while the reader reads
// on. Reused from batch to batch without allocating.
struct BatchText {
  std::string text;  // the lines back to back, then kPadding spare bytes
  std::vector<size_t> begins;  // where each line starts in text
  std::vector<size_t> ends;    // where it ends (no line end)
  std::vector<int64_t> lines;  // its 1-based line number
  static constexpr size_t kPadding = 64;

  int size() const { return static_cast<int>(lines.size()); }
};

// `text` (line `line` of the file `name`) into `example`, in `options`'
// format; errors say where: "name:line[:column]: message". `readable_end` as
// for example_text.h. What ExampleReader does with each line.
absl::Status ParseExampleLine(const ExampleFileOptions& options,
                              absl::string_view name, int64_t line,
                              absl::string_view text, const char* readable_end,
                              v1::Example* example);

// Parses the lines of `text` into `batch` (cleared first); on an error, the
// batch holds the examples before the bad line. num_features must be known
// (not 0) for CSV.
absl::Status ParseBatchText(const ExampleFileOptions& options,
                            absl::string_view name, const BatchText& text,
                            ExampleBatch* batch);

class ExampleReader {
 public:
  static absl::StatusOr<std::unique_ptr<ExampleReader>> Open(
      const std::string& path, const ExampleFileOptions& options);
  // Reads `in`; `name` stands for the file in messages. `block_size` and
  // `max_line_bytes` as for LineBuffer (line_buffer.h), whose defaults
  // Open() uses: a line longer than max_line_bytes is INVALID_ARGUMENT.
  ExampleReader(std::unique_ptr<std::istream> in, std::string name,
                const ExampleFileOptions& options,
                size_t block_size = LineBuffer::kDefaultBlockSize,
                size_t max_line_bytes = LineBuffer::kMaxLineBytes);

  // The next example into `example` (cleared first): true, or false at the
  // end of the file. After an error the reader stays failed.
  absl::StatusOr<bool> Next(v1::Example* example);

  // Clears `batch`, then reads up to `max` examples into it: how many (0 at
  // the end of the file). After an error the reader stays failed, and the
  // batch holds the examples before the bad line. A line that cannot be
  // read (a read error, a line too long) ends the batch early instead: its
  // examples come, and the error at the next call.
  absl::StatusOr<int> NextBatch(int max, ExampleBatch* batch);

  // Copies up to `max` of the next non-blank lines (no header) into `text`,
  // for ParseBatchText on another thread: how many (0 at the end of the
  // file). A line that cannot be read ends the batch early, as in
  // NextBatch, so that both ways report the first bad line of a file.
  absl::StatusOr<int> NextBatchText(int max, BatchText* text);

  // 1-based line number of the example Next() returned last (0 before).
  int64_t line() const { return line_; }
  const std::string& name() const { return name_; }
  // The options; num_features as given, or, for CSV with num_features 0, as
  // read from the first line.
  const ExampleFileOptions& options() const { return options_; }
  int64_t num_features() const { return options_.num_features; }

 private:
  // The next non-blank line into *text: true, false at the end of the file
  // or after a read error (error_ set).
  bool NextLine(absl::string_view* text);
  // Parses `text` (the current line) into `example`; on error sets error_.
  bool ParseLine(absl::string_view text, v1::Example* example);

  std::unique_ptr<std::istream> in_;
  const std::string name_;
  ExampleFileOptions options_;
  LineBuffer lines_;
  int64_t line_ = 0;
  absl::Status error_;
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_EXAMPLE_FILE_H_
