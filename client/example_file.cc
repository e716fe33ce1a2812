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
                   ".svm); give it explicitly (csv or libsvm)"));
}

absl::Status ParseCsvLine(absl::string_view line, int64_t num_features,
                          v1::Example* example) {
  example->Clear();
  const int64_t fields = 1 + std::count(line.begin(), line.end(), ',');
  if (num_features > 0 && fields != num_features + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", num_features + 1, " fields, got ", fields));
  }
  if (fields < 2) {
    return absl::InvalidArgumentError(
        "expected a label and at least one feature, got 1 field");
  }
  size_t end = line.find(',');
  absl::StatusOr<float> label = ParseFloat(line.substr(0, end));
  if (!label.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 1 (label): ", label.status().message()));
  }
  example->set_label(*label);
  google::protobuf::RepeatedField<float>* dense =
      example->mutable_features()->mutable_dense();
  dense->Resize(static_cast<int>(fields - 1), 0.0f);
  float* out = dense->mutable_data();
  // Fields are a few characters long: a plain scan beats a memchr call each.
  const char* p = line.data() + end + 1;
  const char* const line_end = line.data() + line.size();
  for (int64_t k = 0; k < fields - 1; ++k) {
    const char* field_end = p;
    while (field_end != line_end && *field_end != ',') ++field_end;
    const absl::string_view field(p, field_end - p);
    if (!ParseFloatFast(field, &out[k])) {
      return absl::InvalidArgumentError(
          absl::StrCat("field ", k + 2, " (feature ", k,
                       "): ", ParseFloat(field).status().message()));
    }
    p = field_end + 1;
  }
  return absl::OkStatus();
}

absl::Status ParseLibsvmLine(absl::string_view line, int64_t num_features,
                             bool one_based, v1::Example* example) {
  example->Clear();
  // The next blank-separated token of `line`, consumed; empty at the end.
  auto next_token = [&line]() {
    while (!line.empty() && IsBlank(line.front())) line.remove_prefix(1);
    size_t n = 0;
    while (n < line.size() && !IsBlank(line[n])) ++n;
    absl::string_view token = line.substr(0, n);
    line.remove_prefix(n);
    return token;
  };
  const absl::string_view label_text = next_token();
  absl::StatusOr<float> label = ParseFloat(label_text);
  if (!label.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label: ", label.status().message()));
  }
  example->set_label(*label);
  v1::Features* features = example->mutable_features();
  int pair = 0;
  for (absl::string_view token = next_token(); !token.empty();
       token = next_token()) {
    ++pair;
    const size_t colon = token.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("pair ", pair, ": \"", token, "\" is not index:value"));
    }
    absl::StatusOr<uint32_t> index = ParseIndex(token.substr(0, colon));
    if (index.ok() && one_based && *index == 0) {
      index = absl::InvalidArgumentError("index 0 with 1-based indices");
    }
    if (!index.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pair ", pair, ": ", index.status().message()));
    }
    absl::StatusOr<float> value = ParseFloat(token.substr(colon + 1));
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pair ", pair, ": ", value.status().message()));
    }
    features->add_indices(*index - (one_based ? 1 : 0));
    features->add_values(*value);
  }
  return CheckSparseIndices(*features, num_features, one_based);
}

absl::Status ParseVwLine(absl::string_view line, v1::Example* example) {
  example->Clear();
  const size_t bar = line.find('|');
  if (bar == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "expected label |namespace feature ... (no '|')");
  }
  absl::StatusOr<float> label = ParseFloat(line.substr(0, bar));
  if (!label.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label: ", label.status().message()));
  }
  example->set_label(*label);
  return ParseNamedFeatures(line.substr(bar), example->mutable_features());
}

absl::StatusOr<std::unique_ptr<ExampleReader>> ExampleReader::Open(
    const std::string& path, const ExampleFileOptions& options) {
  auto file = std::make_unique<std::ifstream>(path);
  if (!file->is_open()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  return std::make_unique<ExampleReader>(std::move(file), path, options);
}

ExampleReader::ExampleReader(std::unique_ptr<std::istream> in, std::string name,
                             const ExampleFileOptions& options)
    : in_(std::move(in)), name_(std::move(name)), options_(options) {}

absl::Status ExampleReader::LineError(const absl::Status& status) const {
  return absl::Status(status.code(),
                      absl::StrCat(name_, ":", line_, ": ", status.message()));
}

absl::StatusOr<bool> ExampleReader::Next(v1::Example* example) {
  if (!error_.ok()) return error_;
  const bool csv = options_.format == FileFormat::kCsv;
  while (true) {
    errno = 0;
    if (!std::getline(*in_, text_)) {
      if (in_->bad()) {
        error_ = absl::DataLossError(absl::StrCat(
            name_, ":", line_ + 1, ": read error",
            errno != 0 ? absl::StrCat(": ", std::strerror(errno)) : ""));
        return error_;
      }
      return false;
    }
    ++line_;
    absl::string_view line = text_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (csv && options_.header && line_ == 1) continue;
    if (IsBlankLine(line)) continue;
    absl::Status status =
        csv ? ParseCsvLine(line, options_.num_features, example)
        : options_.format == FileFormat::kVw
            ? ParseVwLine(line, example)
            : ParseLibsvmLine(line, options_.num_features, options_.one_based,
                              example);
    if (!status.ok()) {
      if (csv && line_ == 1 && !options_.header &&
          !ParseFloat(line.substr(0, line.find(','))).ok()) {
        status = absl::InvalidArgumentError(
            absl::StrCat(status.message(),
                         " (a header line? skip it with the header "
                         "option)"));
      }
      error_ = LineError(status);
      return error_;
    }
    if (csv && options_.num_features == 0) {
      options_.num_features = example->features().dense_size();
    }
    return true;
  }
}

}  // namespace lepton::client
