// One line of a CSV or LIBSVM example file into a v1::Example (the formats
// are described in example_file.h, which reads whole files with these).
//
//   v1::Example e;
//   int64_t column = 0;
//   absl::Status s = ParseCsvLine("1,0.5,0", 2, &e, &column);
//   // e.label() == 1, e.features().dense() == {0.5, 0}
//   s = ParseCsvLine("1,0.5,x", 2, &e, &column);
//   // "field 3 (feature 1): \"x\" is not a number", column == 7
//
// Each line is first read by a fast path (decimal_scan.h) that writes
// straight into `example`'s arrays, whose capacity a reused Example keeps,
// so a steady stream of lines allocates nothing. A line the fast path does
// not take (blanks around numbers, '+', exponents, an error) is read again
// by the general path, which gives the same values or the error. Either way
// the result is what feature_text.h's ParseFloat and ParseIndex say of each
// number.
//
// Errors are INVALID_ARGUMENT without the file and line (the reader adds
// them); *column, when given, is set to the 1-based byte of the line where
// the error is (the bad field, pair or number), or 0 when it concerns the
// whole line ("expected 785 fields, got 12").
//
// `readable_end`, when given, says that the line lies in a buffer that may
// be read up to there (line_buffer.h's readable_end()): the fast path then
// loads 16 bytes at a time (decimal_scan.h's ScanFloatWide), past the
// line's end but not past readable_end.
//
// Thread safety: free functions without state.
#ifndef LEPTON_CLIENT_EXAMPLE_TEXT_H_
#define LEPTON_CLIENT_EXAMPLE_TEXT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

// Clears `example` but keeps its features message, and with it the room of
// its arrays, for the next line: protobuf's own Clear() deletes a proto3
// message field, which would cost two allocations a line.
void ResetExample(v1::Example* example);

// `label,x_0,...,x_{D-1}`: exactly 1 + num_features fields (num_features 0:
// any count of at least 2). `example` is cleared first.
absl::Status ParseCsvLine(absl::string_view line, int64_t num_features,
                          v1::Example* example, int64_t* column = nullptr,
                          const char* readable_end = nullptr);

// `label idx:val idx:val ...`, blank-separated; indices below num_features
// (0: unchecked) and not repeated; with `one_based` they start at 1 in the
// text and are stored minus one. `example` is reset first (ResetExample).
absl::Status ParseLibsvmLine(absl::string_view line, int64_t num_features,
                             bool one_based, v1::Example* example,
                             int64_t* column = nullptr,
                             const char* readable_end = nullptr);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_EXAMPLE_TEXT_H_
