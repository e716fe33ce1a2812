// One line of a Vowpal Wabbit text file into a v1::Example, so that a VW
// user's training file reads without edits. The syntax, as VW writes it:
//
//   label [importance] ['tag]|ns[:weight] feature feature:value ... |ns2 ...
//
//   1 |user age:3 city=paris |ad id123      label 1, two namespaces
//   -1 2.5 |a x                             importance weight 2.5
//   1 'id42 |a x      1 0.5 'id42 |a x      a tag (quote, then the tag)
//   1 0.5 id42| a x                         a tag that touches the '|'
//   1 |user:0.5 age:3 new                   namespace weight: age is 1.5,
//                                           new is 0.5
//   1 | x y                                 the namespace with no name
//
// - The label section is everything before the first '|', split at blanks.
//   Its last word is the tag if it starts with a quote ('), or if it touches
//   the '|' and is not the only word; tags are accepted and dropped (Lepton
//   has no use for them). What remains is the label and, optionally, the
//   importance weight (finite, >= 0; sent as Example.weight). VW's third
//   number (base, an initial prediction) is an error, and so is a line
//   without a label. One difference from VW: a lone "1|a b" is read as
//   label 1 (VW would read a tag and no label).
// - Labels are taken as written unless `options.labels` maps VW's
//   conventions (vw_labels.h: -1/1 for logistic, 1..K for multiclass).
// - The features are feature_text.h's ParseNamedFeatures: namespaces and
//   names are sent as they are, and the server hashes them with the model's
//   hash_seed (proto's Namespace: XXH64 of the name, seeded with the
//   namespace's hash), so `|ns:2` and `name:value` end up as values and
//   nothing is hashed on the client.
//
// Errors are INVALID_ARGUMENT without the file and line; *column, when
// given, is the 1-based byte of the line where the error is (0: the whole
// line). Messages: "label: \"yes\" is not a number", "importance: -1 is
// negative", "namespace 2 (ad): feature 1: \"id:x\": \"x\" is not a number".
//
// Thread safety: free functions without state.
#ifndef LEPTON_CLIENT_VW_TEXT_H_
#define LEPTON_CLIENT_VW_TEXT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/vw_labels.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

struct VwLineOptions {
  VwLabels labels = VwLabels::kAsIs;
  int64_t num_classes = 0;  // K, for VwLabels::kMulticlass
};

// A VW line cut into its parts, views into the line; empty when absent.
struct VwLineParts {
  absl::string_view label;
  absl::string_view importance;
  absl::string_view tag;       // without its quote
  absl::string_view features;  // from the first '|' to the end
};

// Cuts `line` (see the top of the file); errors for a line without '|' and
// for more than label, importance and tag before it. Numbers are not read.
absl::Status SplitVwLine(absl::string_view line, VwLineParts* parts,
                         int64_t* column);

// `example` is reset first (example_text.h's ResetExample).
absl::Status ParseVwLine(absl::string_view line, v1::Example* example,
                         const VwLineOptions& options = {},
                         int64_t* column = nullptr);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_VW_TEXT_H_
