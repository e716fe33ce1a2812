#include "client/example_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/feature_text.h"

namespace lepton::client {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool IsBlankLine(absl::string_view line) {
  return std::all_of(line.begin(), line.end(), IsBlank);
}

}  // namespace

absl::StatusOr<FileFormat> ParseFileFormat(absl::string_view name) {
  if (name == "csv") return FileFormat::kCsv;
  if (name == "libsvm") return FileFormat::kLibsvm;
  if (name == "vw") return FileFormat::kVw;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown file format \"", name, "\" (expected csv, libsvm or vw)"));
}

absl::StatusOr<FileFormat> FileFormatOfPath(absl::string_view path) {
  if (absl::EndsWithIgnoreCase(path, ".csv")) return FileFormat::kCsv;
  if (absl::EndsWithIgnoreCase(path, ".vw")) return FileFormat::kVw;
  for (absl::string_view ext : {".libsvm", ".svm", ".svmlight"}) {
    if (absl::EndsWithIgnoreCase(path, ext)) return FileFormat::kLibsvm;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path,
                   ": cannot tell the format from the name (.csv, .libsvm, "
                   ".svm, .vw); give it explicitly (csv, libsvm or vw)"));
}

absl::StatusOr<std::unique_ptr<ExampleReader>> ExampleReader::Open(
    const std::string& path, const ExampleFileOptions& options) {
  auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!file->is_open()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  return std::make_unique<ExampleReader>(std::move(file), path, options);
}

ExampleReader::ExampleReader(std::unique_ptr<std::istream> in, std::string name,
                             const ExampleFileOptions& options,
                             size_t block_size, size_t max_line_bytes)
    : in_(std::move(in)),
      name_(std::move(name)),
      options_(options),
      lines_(in_.get(), block_size, max_line_bytes) {}

bool ExampleReader::NextLine(absl::string_view* text) {
  const bool csv = options_.format == FileFormat::kCsv;
  while (lines_.Next(text)) {
    if (csv && options_.header && lines_.line_number() == 1) continue;
    if (IsBlankLine(*text)) continue;
    return true;
  }
  if (!lines_.status().ok()) {
    error_ = absl::Status(lines_.status().code(),
                          absl::StrCat(name_, ":", lines_.line_number() + 1,
                                       ": ", lines_.status().message()));
  }
  return false;
}

absl::Status ParseExampleLine(const ExampleFileOptions& options,
                              absl::string_view name, int64_t line,
                              absl::string_view text, const char* readable_end,
                              v1::Example* example) {
  int64_t column = 0;
  absl::Status status;
  switch (options.format) {
    case FileFormat::kCsv:
      status = ParseCsvLine(text, options.num_features, example, &column,
                            readable_end);
      break;
    case FileFormat::kLibsvm:
      status = ParseLibsvmLine(text, options.num_features, options.one_based,
                               example, &column, readable_end);
      break;
    case FileFormat::kVw:
      status = ParseVwLine(
          text, example,
          {.labels = options.vw_labels, .num_classes = options.num_classes},
          &column);
      break;
  }
  if (status.ok()) return status;
  std::string message(status.message());
  if (options.format == FileFormat::kCsv && line == 1 && !options.header &&
      !ParseFloat(text.substr(0, text.find(','))).ok()) {
    absl::StrAppend(&message,
                    " (a header line? skip it with the header option)");
  }
  return absl::Status(
      status.code(),
      absl::StrCat(name, ":", line,
                   column > 0 ? absl::StrCat(":", column) : std::string(), ": ",
                   message));
}

absl::Status ParseBatchText(const ExampleFileOptions& options,
                            absl::string_view name, const BatchText& text,
                            ExampleBatch* batch) {
  batch->Clear();
  const char* const data = text.text.data();
  const char* const readable_end = data + text.text.size();
  for (int i = 0; i < text.size(); ++i) {
    const absl::string_view line(data + text.begins[i],
                                 text.ends[i] - text.begins[i]);
    absl::Status s = ParseExampleLine(options, name, text.lines[i], line,
                                      readable_end, batch->Add());
    if (!s.ok()) {
      batch->examples.RemoveLast();
      return s;
    }
    batch->lines.push_back(text.lines[i]);
  }
  return absl::OkStatus();
}

bool ExampleReader::ParseLine(absl::string_view text, v1::Example* example) {
  line_ = lines_.line_number();
  error_ = ParseExampleLine(options_, name_, line_, text, lines_.readable_end(),
                            example);
  if (!error_.ok()) return false;
  if (options_.format == FileFormat::kCsv && options_.num_features == 0) {
    options_.num_features = example->features().dense_size();
  }
  return true;
}

absl::StatusOr<int> ExampleReader::NextBatchText(int max, BatchText* text) {
  text->text.clear();
  text->begins.clear();
  text->ends.clear();
  text->lines.clear();
  if (!error_.ok()) return error_;
  absl::string_view line;
  while (text->size() < max && NextLine(&line)) {
    text->begins.push_back(text->text.size());
    text->text.append(line.data(), line.size());
    text->ends.push_back(text->text.size());
    text->text.push_back('\n');  // what ends a line in a file, too
    text->lines.push_back(lines_.line_number());
  }
  // Room for the fast paths' loads past the last line's end.
  text->text.append(BatchText::kPadding, '\0');
  // A line that cannot be read ends the batch; the lines before it come
  // first, so that a bad one among them is reported before it, as NextBatch
  // does. The error comes at the next call.
  if (!error_.ok() && text->size() == 0) return error_;
  line_ = text->lines.empty() ? line_ : text->lines.back();
  return text->size();
}

absl::StatusOr<bool> ExampleReader::Next(v1::Example* example) {
  if (!error_.ok()) return error_;
  absl::string_view text;
  if (!NextLine(&text)) {
    if (!error_.ok()) return error_;
    return false;
  }
  if (!ParseLine(text, example)) return error_;
  return true;
}

absl::StatusOr<int> ExampleReader::NextBatch(int max, ExampleBatch* batch) {
  batch->Clear();
  if (!error_.ok()) return error_;
  absl::string_view text;
  while (batch->size() < max && NextLine(&text)) {
    // Add() hands back a cleared example of an earlier batch, with its
    // arrays' room: the parsers fill it without allocating.
    if (!ParseLine(text, batch->Add())) {
      batch->examples.RemoveLast();
      return error_;
    }
    batch->lines.push_back(line_);
  }
  // A line that cannot be read ends the batch; its error comes at the next
  // call, after the examples before it.
  if (!error_.ok() && batch->size() == 0) return error_;
  return batch->size();
}

}  // namespace lepton::client
