// Vowpal Wabbit's labels and Lepton's, for the .vw reader (vw_text.h).
//
// VW's logistic loss takes the labels -1 and 1, and its multiclass
// reductions (--oaa K) the classes 1..K; Lepton's logistic models take 0 and
// 1, and its softmax models 0..K-1. A .vw file's labels are mapped
// (-1 -> 0, 1 -> 1; k -> k - 1) when the user says so (lepton_client's
// --vw_labels) or when DetectVwLabels finds a label that only VW's
// convention explains; never by a guess. What was decided is printed by the
// commands (DescribeVwLabels), so a mapping is never silent.
//
//   absl::StatusOr<VwLabelScan> scan =
//       DetectVwLabels(&in, v1::LOGISTIC_REGRESSION, 0);
//   // "-1 |a x\n1 |a y\n": scan->labels == VwLabels::kLogistic,
//   // scan->line == 1, scan->label == -1
//   absl::StatusOr<float> label = MapVwLabel(-1, VwLabels::kLogistic, 0);
//   // 0
//
// Thread safety: free functions without state.
#ifndef LEPTON_CLIENT_VW_LABELS_H_
#define LEPTON_CLIENT_VW_LABELS_H_

#include <cstdint>
#include <istream>
#include <string>

#include "absl/status/statusor.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

enum class VwLabels {
  kAsIs,        // labels as written (Lepton's own, or a linear model's)
  kLogistic,    // -1 -> 0, 1 -> 1; anything else is an error
  kMulticlass,  // 1..K -> 0..K-1; anything else is an error
};

// The mapping VW labels need for a model of `type`: kLogistic,
// kMulticlass, or kAsIs (linear regression: VW's labels are Lepton's).
VwLabels VwLabelsFor(v1::ModelType type);

// Lepton's label for VW's `label`. INVALID_ARGUMENT: "0 is not a VW label of
// a logistic model (-1 or 1)", "0 is not a VW label of a 10-class model
// (1..10)".
absl::StatusOr<float> MapVwLabel(float label, VwLabels labels,
                                 int64_t num_classes);

// For the commands' output: "-1/1 -> 0/1", "1..10 -> 0..9", "as written".
std::string DescribeVwLabels(VwLabels labels, int64_t num_classes);

// What DetectVwLabels found.
struct VwLabelScan {
  VwLabels labels = VwLabels::kAsIs;  // how to read the file
  int64_t line = 0;  // 1-based line whose label decided; 0: none decided
  float label = 0;   // that line's label
  // A softmax model's file whose labels all lie in 1..K-1: either
  // convention reads it, and it is read as written; worth a note.
  bool ambiguous = false;
};

// Reads the labels of a .vw file until one decides: for a logistic model,
// -1 (VW's) or 0 (Lepton's); for a softmax model of K classes, K (VW's) or
// 0 (Lepton's). Lines whose label does not parse are skipped here (the
// reader reports them). A linear model's file is not read. DATA_LOSS on a
// read error.
absl::StatusOr<VwLabelScan> DetectVwLabels(std::istream* in, v1::ModelType type,
                                           int64_t num_classes);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_VW_LABELS_H_
