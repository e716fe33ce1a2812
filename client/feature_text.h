// Text forms of numbers and feature vectors, shared by the file readers
// (example_file.h) and the command line (`predict --dense=... --sparse=...`):
//
//   ParseFloat(" 0.25")                 -> 0.25f
//   ParseDenseFeatures("0.1,0.2,0", &f)  -> f.dense = {0.1, 0.2, 0}
//   ParseSparseFeatures("3:1.5,7:1", false, &f)
//                                        -> f.indices = {3, 7}, values = {1.5,
//                                        1}
//   ParseNamedFeatures("|user age:3 city=paris |ad id123", &f)
//                                        -> f.namespaces = {user: {age 3,
//                                           city=paris}, ad: {id123}}
//
// Numbers are decimal floats as std::from_chars reads them ("1", "-0.5",
// "2.5e-3"; a leading '+' is accepted too), with spaces or tabs around them
// allowed. They must be finite floats: "nan", "inf" and values beyond the
// float range are errors, since the server would reject them anyway, and
// without the line number.
//
// Errors are INVALID_ARGUMENT with a message naming the offending item, to
// which callers prepend where it came from ("train.csv:17: ", "--dense: ").
//
// Thread safety: free functions without state.
#ifndef LEPTON_CLIENT_FEATURE_TEXT_H_
#define LEPTON_CLIENT_FEATURE_TEXT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

// A finite float. Message: "\"abc\" is not a number", "... is not finite",
// "... is out of the range of a float".
absl::StatusOr<float> ParseFloat(absl::string_view text);

// The same rules without a message, for the hot loop of the file readers
// (call ParseFloat() to learn what is wrong): true and *value, or false.
bool ParseFloatFast(absl::string_view text, float* value);

// A non-negative decimal integer below 2^32 (the wire's uint32 index).
absl::StatusOr<uint32_t> ParseIndex(absl::string_view text);

// Comma-separated values into `features->dense` (appended). At least one.
// Message: "value 3: \"x\" is not a number".
absl::Status ParseDenseFeatures(absl::string_view text, v1::Features* features);

// Comma-separated index:value pairs into `features->indices` and `values`
// (appended). Empty text is an instance with no nonzero feature. With
// `one_based`, indices start at 1 in the text and are stored minus one.
// Indices are checked with CheckSparseIndices(num_features) (0: unbounded).
// Message: "pair 2: \"7x1\" is not index:value".
absl::Status ParseSparseFeatures(absl::string_view text, bool one_based,
                                 int64_t num_features, v1::Features* features);

// Named features, Vowpal Wabbit style, into `features->namespaces`
// (appended): one or more `|namespace feature feature ...` groups. The
// namespace's name follows '|' directly ("| a b", with a blank after '|', is
// the namespace with an empty name), up to a blank or ':'; `|ns:2` weighs
// the namespace: each of its features' values is multiplied by 2 (a feature
// without a value is then worth 2). A feature is `name` (value absent,
// meaning 1) or `name:value`, split at its first ':'. Blanks separate
// features. Empty text is an instance with no feature. Names must be UTF-8,
// as the wire's strings are (the server could not parse the request
// otherwise). Messages: "\"age\" before the first '|'", "namespace 2 (ad):
// feature 1: \"id:x\": \"x\" is not a number", "namespace 1 (a): feature
// 3: its name is not valid UTF-8"; *column, when given, is set to the
// 1-based byte of `text` where the error is. Allocates nothing when `features`
// is a reused message whose namespaces and names already have the room.
absl::Status ParseNamedFeatures(absl::string_view text, v1::Features* features,
                                int64_t* column = nullptr);

// Every index is below `num_features` (unless 0) and appears once, as the
// server requires; the check is linear when the indices ascend, as they do
// in LIBSVM files. Messages show indices as the text had them (`one_based`):
// "index 9 is repeated", "index 784 is out of range: 784 features, indices
// 0..783".
absl::Status CheckSparseIndices(const v1::Features& features,
                                int64_t num_features, bool one_based);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_FEATURE_TEXT_H_
