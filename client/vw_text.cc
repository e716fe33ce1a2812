#include "client/vw_text.h"

#include "absl/strings/str_cat.h"
#include "client/example_text.h"
#include "client/feature_text.h"

namespace lepton::client {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

absl::Status ErrorAt(int64_t* column, int64_t at, absl::Status status) {
  if (column != nullptr) *column = at;
  return status;
}

}  // namespace

absl::Status SplitVwLine(absl::string_view line, VwLineParts* parts,
                         int64_t* column) {
  *parts = VwLineParts();
  const size_t bar = line.find('|');
  if (bar == absl::string_view::npos) {
    return ErrorAt(column, 0,
                   absl::InvalidArgumentError(
                       "expected label |namespace feature ... (no '|')"));
  }
  parts->features = line.substr(bar);
  // The words before the '|': label, importance, tag, and one more to tell
  // that there are too many.
  absl::string_view words[4];
  int count = 0;
  const char* p = line.data();
  const char* const end = line.data() + bar;
  while (true) {
    while (p != end && IsBlank(*p)) ++p;
    if (p == end) break;
    const char* const begin = p;
    while (p != end && !IsBlank(*p)) ++p;
    words[count++] = absl::string_view(begin, p - begin);
    if (count == 4) break;
  }
  if (count > 0) {
    const absl::string_view last = words[count - 1];
    const bool touches_bar = last.data() + last.size() == end;
    if (last.front() == '\'' || (touches_bar && count >= 2)) {
      parts->tag = last.front() == '\'' ? last.substr(1) : last;
      --count;
    }
  }
  if (count >= 3) {
    return ErrorAt(
        column, words[2].data() - line.data() + 1,
        absl::InvalidArgumentError(absl::StrCat(
            "\"", words[2],
            "\" after the label and the importance weight: VW's base (an "
            "initial prediction) is not supported, and a tag needs a quote "
            "('tag) unless it touches the '|'")));
  }
  if (count >= 1) parts->label = words[0];
  if (count >= 2) parts->importance = words[1];
  return absl::OkStatus();
}

absl::Status ParseVwLine(absl::string_view line, v1::Example* example,
                         const VwLineOptions& options, int64_t* column) {
  ResetExample(example);
  VwLineParts parts;
  if (absl::Status s = SplitVwLine(line, &parts, column); !s.ok()) return s;
  const auto at = [&line](absl::string_view part) {
    return part.data() - line.data() + 1;
  };
  if (parts.label.empty()) {
    return ErrorAt(column, 1,
                   absl::InvalidArgumentError(
                       "no label before the '|' (an unlabeled example cannot "
                       "be learned from)"));
  }
  float label = 0;
  if (!ParseFloatFast(parts.label, &label)) {
    return ErrorAt(column, at(parts.label),
                   absl::InvalidArgumentError(absl::StrCat(
                       "label: ", ParseFloat(parts.label).status().message())));
  }
  absl::StatusOr<float> mapped =
      MapVwLabel(label, options.labels, options.num_classes);
  if (!mapped.ok()) {
    return ErrorAt(column, at(parts.label),
                   absl::InvalidArgumentError(
                       absl::StrCat("label: ", mapped.status().message())));
  }
  example->set_label(*mapped);
  if (!parts.importance.empty()) {
    float weight = 0;
    if (!ParseFloatFast(parts.importance, &weight)) {
      return ErrorAt(column, at(parts.importance),
                     absl::InvalidArgumentError(absl::StrCat(
                         "importance: ",
                         ParseFloat(parts.importance).status().message())));
    }
    if (weight < 0) {
      return ErrorAt(column, at(parts.importance),
                     absl::InvalidArgumentError(absl::StrCat(
                         "importance: ", parts.importance, " is negative")));
    }
    example->set_weight(weight);
  }
  int64_t features_column = 0;
  absl::Status s = ParseNamedFeatures(
      parts.features, example->mutable_features(), &features_column);
  if (!s.ok() && column != nullptr) {
    *column = at(parts.features) + features_column - 1;
  }
  return s;
}

}  // namespace lepton::client
