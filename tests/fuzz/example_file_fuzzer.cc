// Fuzz targets: the client's example-file readers (client/example_file.h):
// csv_fuzzer, libsvm_fuzzer and vw_fuzzer are this file built with
// LEPTON_FUZZ_FORMAT 0, 1 and 2.
//
// Input: u8 options | u8 block | the file.
//   options & 1: LIBSVM's one_based; options & 2: CSV's header line;
//   (options >> 2) & 3: VW's label mapping (as is, -1/1, 1..K);
//   options >> 4: num_features (CSV: as is, 0 = from the first line;
//   LIBSVM: times 8, 0 = unchecked) or VW's K.
//   block: the reader's block size (16 + block) and longest line
//   (64 + 4 * block), small so that lines cross blocks, the buffer grows and
//   the longest-line limit is reached.
//
// Properties, beyond no crash, no sanitizer report (the fast paths read up
// to 16 bytes past a number: only ever inside the buffer's padding) and no
// allocation over libFuzzer's -malloc_limit_mb:
//   - every example read is one the server can take: its message parses
//     back (protobuf refuses a string that is not UTF-8);
//   - the two ways of reading a file agree: NextBatch, and NextBatchText
//     followed by ParseBatchText (lepton_client's --read_threads), give the
//     same examples from the same lines, and the same error;
//   - CSV and LIBSVM: each line parses (fast path or not) exactly as the
//     format says when read the plain way, field by field with ParseFloat
//     and ParseIndex (feature_text.h): the same values, bit for bit, or an
//     error for both;
//   - VW: an example read back from its own rendering (label, importance,
//     namespaces with every value written out) is the same example.
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/example_file.h"
#include "client/example_text.h"
#include "client/feature_text.h"
#include "client/vw_text.h"
#include "tests/fuzz/fuzz_support.h"

#ifndef LEPTON_FUZZ_FORMAT
#error "LEPTON_FUZZ_FORMAT: 0 (CSV), 1 (LIBSVM) or 2 (VW)"
#endif

namespace lepton::fuzz {
namespace {

using client::ExampleBatch;
using client::ExampleFileOptions;
using client::ExampleReader;
using client::FileFormat;

constexpr FileFormat kFormat = static_cast<FileFormat>(LEPTON_FUZZ_FORMAT);

// What a reading produced: the examples (serialized) and their lines, and
// how it ended.
struct Reading {
  std::vector<std::string> examples;
  std::vector<int64_t> lines;
  absl::Status status;
};

std::unique_ptr<ExampleReader> Reader(absl::string_view file,
                                      const ExampleFileOptions& options,
                                      size_t block, size_t max_line) {
  return std::make_unique<ExampleReader>(
      std::make_unique<std::istringstream>(std::string(file)), "f", options,
      block, max_line);
}

Reading ByBatches(absl::string_view file, const ExampleFileOptions& options,
                  size_t block, size_t max_line, int64_t* num_features) {
  std::unique_ptr<ExampleReader> reader =
      Reader(file, options, block, max_line);
  Reading r;
  ExampleBatch batch;
  while (true) {
    absl::StatusOr<int> n = reader->NextBatch(3, &batch);
    for (int i = 0; i < batch.size(); ++i) {
      r.examples.push_back(batch.examples[i].SerializeAsString());
      r.lines.push_back(batch.lines[i]);
      // What the server will parse: a string that is not UTF-8 would not.
      v1::Example parsed;
      FUZZ_CHECK(parsed.ParseFromString(r.examples.back()), "line %ld",
                 static_cast<long>(batch.lines[i]));
    }
    if (!n.ok()) {
      r.status = n.status();
      break;
    }
    if (*n == 0) break;
  }
  *num_features = reader->num_features();
  return r;
}

Reading ByText(absl::string_view file, ExampleFileOptions options, size_t block,
               size_t max_line) {
  std::unique_ptr<ExampleReader> reader =
      Reader(file, options, block, max_line);
  Reading r;
  client::BatchText text;
  ExampleBatch batch;
  while (true) {
    absl::StatusOr<int> n = reader->NextBatchText(3, &text);
    if (!n.ok()) {
      r.status = n.status();
      break;
    }
    if (*n == 0) break;
    const absl::Status parsed =
        client::ParseBatchText(options, reader->name(), text, &batch);
    for (int i = 0; i < batch.size(); ++i) {
      r.examples.push_back(batch.examples[i].SerializeAsString());
      r.lines.push_back(batch.lines[i]);
    }
    if (!parsed.ok()) {
      r.status = parsed;
      break;
    }
  }
  return r;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// The line in a buffer of its own exact size, so that a read past its end
// is a heap overflow.
struct ExactLine {
  explicit ExactLine(absl::string_view line)
      : bytes(std::make_unique<char[]>(line.size() + 1)), size(line.size()) {
    std::memcpy(bytes.get(), line.data(), line.size());
  }
  absl::string_view view() const { return {bytes.get(), size}; }
  std::unique_ptr<char[]> bytes;  // one more: data() of an empty line
  size_t size;
};

void CheckCsvLine(absl::string_view line, int64_t num_features) {
  const ExactLine exact(line);
  v1::Example e;
  const absl::Status s = client::ParseCsvLine(exact.view(), num_features, &e);
  const std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
  bool ok = fields.size() >= 2 &&
            (num_features == 0 ||
             fields.size() == static_cast<size_t>(num_features) + 1);
  std::vector<float> values;
  for (size_t i = 0; ok && i < fields.size(); ++i) {
    absl::StatusOr<float> v = client::ParseFloat(fields[i]);
    ok = v.ok();
    if (ok) values.push_back(*v);
  }
  FUZZ_CHECK(s.ok() == ok, "%s", s.ToString().c_str());
  if (!ok) return;
  FUZZ_CHECK(SameBits(e.label(), values[0]));
  FUZZ_CHECK(e.features().dense_size() == static_cast<int>(values.size()) - 1);
  for (int i = 0; i < e.features().dense_size(); ++i) {
    FUZZ_CHECK(SameBits(e.features().dense(i), values[i + 1]), "field %d",
               i + 1);
  }
}

void CheckLibsvmLine(absl::string_view line, int64_t num_features,
                     bool one_based) {
  const ExactLine exact(line);
  v1::Example e;
  const absl::Status s =
      client::ParseLibsvmLine(exact.view(), num_features, one_based, &e);
  const std::vector<absl::string_view> tokens =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  absl::StatusOr<float> label =
      client::ParseFloat(tokens.empty() ? "" : tokens[0]);
  bool ok = label.ok();
  v1::Features want;
  for (size_t i = 1; ok && i < tokens.size(); ++i) {
    const size_t colon = tokens[i].find(':');
    ok = colon != absl::string_view::npos;
    if (!ok) break;
    absl::StatusOr<uint32_t> index =
        client::ParseIndex(tokens[i].substr(0, colon));
    absl::StatusOr<float> value =
        client::ParseFloat(tokens[i].substr(colon + 1));
    ok = index.ok() && value.ok() && !(one_based && *index == 0);
    if (!ok) break;
    want.add_indices(*index - (one_based ? 1 : 0));
    want.add_values(*value);
  }
  ok = ok && client::CheckSparseIndices(want, num_features, one_based).ok();
  FUZZ_CHECK(s.ok() == ok, "%s", s.ToString().c_str());
  if (!ok) return;
  FUZZ_CHECK(SameBits(e.label(), *label));
  FUZZ_CHECK(e.features().indices_size() == want.indices_size());
  for (int i = 0; i < want.indices_size(); ++i) {
    FUZZ_CHECK(e.features().indices(i) == want.indices(i));
    FUZZ_CHECK(SameBits(e.features().values(i), want.values(i)));
  }
}

std::string Number(float v) { return absl::StrFormat("%.9g", v); }

void CheckVwLine(absl::string_view line, const client::VwLineOptions& options) {
  const ExactLine exact(line);
  v1::Example e;
  if (!client::ParseVwLine(exact.view(), &e, options).ok()) return;
  std::string rendered = Number(e.label());
  if (e.has_weight()) absl::StrAppend(&rendered, " ", Number(e.weight()));
  for (const v1::Namespace& ns : e.features().namespaces()) {
    absl::StrAppend(&rendered, " |", ns.name());
    for (const v1::NamedFeature& f : ns.features()) {
      absl::StrAppend(&rendered, " ", f.name());
      if (f.has_value()) absl::StrAppend(&rendered, ":", Number(f.value()));
    }
  }
  v1::Example again;
  const absl::Status s = client::ParseVwLine(rendered, &again);
  FUZZ_CHECK(s.ok(), "%s: %s", rendered.c_str(), s.ToString().c_str());
  FUZZ_CHECK(again.SerializeAsString() == e.SerializeAsString(), "%s",
             rendered.c_str());
}

void OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  const uint8_t block = in.U8();
  const absl::string_view file = in.Rest();
  ExampleFileOptions options;
  options.format = kFormat;
  options.one_based = (flags & 1) != 0;
  options.header = (flags & 2) != 0;
  const int n = flags >> 4;
  switch (kFormat) {
    case FileFormat::kCsv:
      options.num_features = n;
      break;
    case FileFormat::kLibsvm:
      options.num_features = 8 * n;
      break;
    case FileFormat::kVw:
      options.vw_labels = static_cast<client::VwLabels>(((flags >> 2) & 3) % 3);
      options.num_classes = n;
      break;
  }
  const size_t block_size = 16 + block;
  const size_t max_line = 64 + 4 * size_t{block};

  int64_t num_features = 0;
  const Reading batches =
      ByBatches(file, options, block_size, max_line, &num_features);
  if (kFormat != FileFormat::kCsv || num_features > 0) {
    ExampleFileOptions known = options;
    known.num_features = num_features;
    const Reading texts = ByText(file, known, block_size, max_line);
    FUZZ_CHECK(texts.examples == batches.examples);
    FUZZ_CHECK(texts.lines == batches.lines);
    FUZZ_CHECK(texts.status == batches.status, "%s / %s",
               texts.status.ToString().c_str(),
               batches.status.ToString().c_str());
  }

  // Line by line, against the plain reading.
  int64_t number = 0;
  for (absl::string_view line : absl::StrSplit(file, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == absl::string_view::npos) continue;
    switch (kFormat) {
      case FileFormat::kCsv:
        if (options.header && number == 1) continue;
        CheckCsvLine(line, options.num_features);
        break;
      case FileFormat::kLibsvm:
        CheckLibsvmLine(line, options.num_features, options.one_based);
        break;
      case FileFormat::kVw:
        CheckVwLine(line, {.labels = options.vw_labels,
                           .num_classes = options.num_classes});
        break;
    }
  }
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
