#include "client/vw_labels.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "client/feature_text.h"
#include "client/line_buffer.h"
#include "client/vw_text.h"

namespace lepton::client {

VwLabels VwLabelsFor(v1::ModelType type) {
  switch (type) {
    case v1::LOGISTIC_REGRESSION:
      return VwLabels::kLogistic;
    case v1::SOFTMAX_REGRESSION:
      return VwLabels::kMulticlass;
    default:
      return VwLabels::kAsIs;
  }
}

absl::StatusOr<float> MapVwLabel(float label, VwLabels labels,
                                 int64_t num_classes) {
  switch (labels) {
    case VwLabels::kAsIs:
      return label;
    case VwLabels::kLogistic:
      if (label == -1) return 0.0f;
      if (label == 1) return 1.0f;
      return absl::InvalidArgumentError(absl::StrCat(
          label, " is not a VW label of a logistic model (-1 or 1)"));
    case VwLabels::kMulticlass:
      if (label >= 1 && label <= static_cast<float>(num_classes) &&
          label == std::floor(label)) {
        return label - 1;
      }
      return absl::InvalidArgumentError(
          absl::StrCat(label, " is not a VW label of a ", num_classes,
                       "-class model (1..", num_classes, ")"));
  }
  return label;
}

std::string DescribeVwLabels(VwLabels labels, int64_t num_classes) {
  switch (labels) {
    case VwLabels::kAsIs:
      return "as written";
    case VwLabels::kLogistic:
      return "-1/1 -> 0/1";
    case VwLabels::kMulticlass:
      return absl::StrCat("1..", num_classes, " -> 0..", num_classes - 1);
  }
  return "";
}

absl::StatusOr<VwLabelScan> DetectVwLabels(std::istream* in, v1::ModelType type,
                                           int64_t num_classes) {
  VwLabelScan scan;
  const VwLabels vw = VwLabelsFor(type);
  if (vw == VwLabels::kAsIs) return scan;
  const float vw_only =
      vw == VwLabels::kLogistic ? -1.0f : static_cast<float>(num_classes);
  bool all_shared = true;  // softmax: every label so far in 1..K-1
  bool any = false;
  LineBuffer lines(in);
  absl::string_view line;
  VwLineParts parts;
  while (lines.Next(&line)) {
    float label = 0;
    if (!SplitVwLine(line, &parts, nullptr).ok() || parts.label.empty() ||
        !ParseFloatFast(parts.label, &label)) {
      continue;
    }
    if (label == vw_only || label == 0) {
      if (label == vw_only) scan.labels = vw;
      scan.line = lines.line_number();
      scan.label = label;
      return scan;
    }
    any = true;
    all_shared = all_shared && label >= 1 && label < vw_only &&
                 label == std::floor(label);
  }
  if (!lines.status().ok()) {
    return absl::DataLossError(
        absl::StrCat(lines.line_number() + 1, ": ", lines.status().message()));
  }
  scan.ambiguous = vw == VwLabels::kMulticlass && any && all_shared;
  return scan;
}

}  // namespace lepton::client
