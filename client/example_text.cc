#include "client/example_text.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "client/decimal_fields.h"
#include "client/feature_text.h"

namespace lepton::client {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// 1-based column of `p` in `line`, skipping the blanks before a token.
int64_t ColumnAt(absl::string_view line, const char* p) {
  const char* const end = line.data() + line.size();
  while (p != end && IsBlank(*p)) ++p;
  return p - line.data() + 1;
}

absl::Status ErrorAt(int64_t* column, int64_t at, absl::Status status) {
  if (column != nullptr) *column = at;
  return status;
}

// Room for the offsets of a line's commas, kept from line to line.
struct CommaOffsets {
  std::unique_ptr<uint32_t[]> data;
  size_t capacity = 0;
};

// The offsets of the commas of `line` into commas->data; returns how many.
// The positions are found 32 bytes at a time and written 8 at a time whether
// or not there are 8, so that the loop does not branch on how many a block
// holds; the room has space for the spare ones.
size_t FindCommas(absl::string_view line, CommaOffsets* commas) {
  const size_t n = line.size();
  if (commas->capacity < n + 64) {
    commas->capacity = 2 * n + 64;
    commas->data = std::make_unique_for_overwrite<uint32_t[]>(commas->capacity);
  }
  uint32_t* out = commas->data.get();
  size_t count = 0;
  size_t i = 0;
#if defined(__AVX2__)
  const __m256i comma = _mm256_set1_epi8(',');
  for (; i + 32 <= n; i += 32) {
    const __m256i v =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line.data() + i));
    uint32_t bits = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, comma)));
    const int found = __builtin_popcount(bits);
    for (int j = 0; j < 8; ++j) {
      out[count + j] =
          static_cast<uint32_t>(i + __builtin_ctz(bits | (1u << 31)));
      bits &= bits - 1;
    }
    if (found > 8) {
      for (int j = 8; j < 16; ++j) {
        out[count + j] =
            static_cast<uint32_t>(i + __builtin_ctz(bits | (1u << 31)));
        bits &= bits - 1;
      }
      for (int j = 16; j < found; ++j) {
        out[count + j] = static_cast<uint32_t>(i + __builtin_ctz(bits));
        bits &= bits - 1;
      }
    }
    count += found;
  }
#endif
  for (; i < n; ++i) {
    if (line[i] == ',') out[count++] = static_cast<uint32_t>(i);
  }
  return count;
}

// The fast path of a CSV line: true when it read the whole line. The commas
// are found first, so that each field's length is known and the fields are
// read as independent pieces of work, which the processor overlaps (a scan
// for each field's end would chain each field to the one before).
bool FastCsvLine(absl::string_view line, int64_t num_features,
                 const char* readable, v1::Example* example) {
  if (line.size() >= (size_t{1} << 31)) return false;
  thread_local CommaOffsets offsets;  // reused: no allocation a line
  const int64_t n = static_cast<int64_t>(FindCommas(line, &offsets));
  const uint32_t* const commas = offsets.data.get();
  if (n == 0 || (num_features > 0 && n != num_features) ||
      n > std::numeric_limits<int>::max()) {
    return false;
  }
  const char* const p = line.data();
  float label = 0;
  if (!ParseDecimalField(p, p + commas[0], readable, &label)) return false;
  ResetExample(example);
  google::protobuf::RepeatedField<float>* dense =
      example->mutable_features()->mutable_dense();
  dense->Reserve(static_cast<int>(n));
  float* out = dense->AddNAlreadyReserved(static_cast<int>(n));
  // Two fields at a time; two one-digit fields ("0") the short way, and a
  // run of 16 "0" fields (an image's background) in one step.
  bool ok = true;  // and-ed, not branched on, field after field
  int64_t k = 0;
  for (; k + 2 < n; k += 2) {
    const char* const a = p + commas[k] + 1;
#if defined(__AVX2__)
    if (k + 17 < n && readable - a >= 32) {
      const __m256i zeros = _mm256_cmpeq_epi8(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)),
          _mm256_set1_epi16(',' << 8 | '0'));  // "0,0,0,..."
      if (_mm256_movemask_epi8(zeros) == -1) {
        std::memset(&out[k], 0, 16 * sizeof(float));
        k += 14;  // and 2 more by the loop
        continue;
      }
    }
#endif
    const char* const b = p + commas[k + 1] + 1;
    const char* const b_end = p + commas[k + 2];
    if (b - a == 2 && b_end - b == 1) {
      const unsigned digit_a = static_cast<unsigned char>(*a - '0');
      const unsigned digit_b = static_cast<unsigned char>(*b - '0');
      out[k] = static_cast<float>(digit_a);
      out[k + 1] = static_cast<float>(digit_b);
      ok &= (digit_a | digit_b) < 10;
    } else {
      ok &= ParseDecimalFieldPair(a, b - 1, b, b_end, readable, &out[k]);
    }
  }
  for (; k < n; ++k) {
    ok &= ParseDecimalField(p + commas[k] + 1,
                            k + 1 < n ? p + commas[k + 1] : p + line.size(),
                            readable, &out[k]);
  }
  if (!ok) return false;
  example->set_label(label);
  return true;
}

absl::Status SlowCsvLine(absl::string_view line, int64_t num_features,
                         v1::Example* example, int64_t* column) {
  ResetExample(example);
  const int64_t fields = 1 + std::count(line.begin(), line.end(), ',');
  if (num_features > 0 && fields != num_features + 1) {
    return ErrorAt(
        column, 0,
        absl::InvalidArgumentError(absl::StrCat("expected ", num_features + 1,
                                                " fields, got ", fields)));
  }
  if (fields < 2) {
    return ErrorAt(column, 0,
                   absl::InvalidArgumentError(
                       "expected a label and at least one feature, got 1 "
                       "field"));
  }
  const size_t label_end = line.find(',');
  absl::StatusOr<float> label = ParseFloat(line.substr(0, label_end));
  if (!label.ok()) {
    return ErrorAt(column, ColumnAt(line, line.data()),
                   absl::InvalidArgumentError(absl::StrCat(
                       "field 1 (label): ", label.status().message())));
  }
  example->set_label(*label);
  google::protobuf::RepeatedField<float>* dense =
      example->mutable_features()->mutable_dense();
  dense->Resize(static_cast<int>(fields - 1), 0.0f);
  float* out = dense->mutable_data();
  const char* p = line.data() + label_end + 1;
  const char* const line_end = line.data() + line.size();
  for (int64_t k = 0; k < fields - 1; ++k) {
    const char* field_end = p;
    while (field_end != line_end && *field_end != ',') ++field_end;
    const absl::string_view field(p, field_end - p);
    if (!ParseFloatFast(field, &out[k])) {
      return ErrorAt(column, ColumnAt(line, p),
                     absl::InvalidArgumentError(absl::StrCat(
                         "field ", k + 2, " (feature ", k,
                         "): ", ParseFloat(field).status().message())));
    }
    p = field_end + 1;
  }
  return absl::OkStatus();
}

// The fast path of a LIBSVM line: true when it read the whole line.
bool FastLibsvmLine(absl::string_view line, int64_t num_features,
                    bool one_based, const char* readable,
                    v1::Example* example) {
  const char* p = line.data();
  const char* const end = p + line.size();
  while (p != end && IsBlank(*p)) ++p;
  float label = 0;
  p = ScanFloat(p, end, &label);
  if (p == nullptr || (p != end && !IsBlank(*p))) return false;
  ResetExample(example);
  v1::Features* features = example->mutable_features();
  google::protobuf::RepeatedField<uint32_t>* indices =
      features->mutable_indices();
  google::protobuf::RepeatedField<float>* values = features->mutable_values();
  bool ascending = true;
  while (true) {
    while (p != end && IsBlank(*p)) ++p;
    if (p == end) break;
    uint32_t index = 0;
    p = ScanIndex(p, end, &index);
    if (p == nullptr || p == end || *p != ':') return false;
    float value = 0;
    p = ScanFloatWide(p + 1, end, readable, &value);
    if (p == nullptr || (p != end && !IsBlank(*p))) return false;
    if (one_based) {
      if (index == 0) return false;
      --index;
    }
    if (num_features > 0 && index >= num_features) return false;
    if (!indices->empty() && index <= indices->Get(indices->size() - 1)) {
      if (index == indices->Get(indices->size() - 1)) return false;
      ascending = false;
    }
    indices->Add(index);
    values->Add(value);
  }
  if (!ascending && !CheckSparseIndices(*features, 0, false).ok()) {
    return false;
  }
  example->set_label(label);
  return true;
}

absl::Status SlowLibsvmLine(absl::string_view line, int64_t num_features,
                            bool one_based, v1::Example* example,
                            int64_t* column) {
  ResetExample(example);
  const char* p = line.data();
  const char* const end = p + line.size();
  // The next blank-separated token, consumed; empty at the end.
  auto next_token = [&p, end]() {
    while (p != end && IsBlank(*p)) ++p;
    const char* const begin = p;
    while (p != end && !IsBlank(*p)) ++p;
    return absl::string_view(begin, p - begin);
  };
  const absl::string_view label_text = next_token();
  absl::StatusOr<float> label = ParseFloat(label_text);
  if (!label.ok()) {
    return ErrorAt(column, ColumnAt(line, label_text.data()),
                   absl::InvalidArgumentError(
                       absl::StrCat("label: ", label.status().message())));
  }
  example->set_label(*label);
  v1::Features* features = example->mutable_features();
  // The column of each pair, for the checks after them; this path is the
  // exception (a line the fast path did not take), so it may allocate.
  std::vector<int64_t> columns;
  int pair = 0;
  for (absl::string_view token = next_token(); !token.empty();
       token = next_token()) {
    ++pair;
    const int64_t at = token.data() - line.data() + 1;
    const size_t colon = token.find(':');
    if (colon == absl::string_view::npos) {
      return ErrorAt(
          column, at,
          absl::InvalidArgumentError(absl::StrCat("pair ", pair, ": \"", token,
                                                  "\" is not index:value")));
    }
    absl::StatusOr<uint32_t> index = ParseIndex(token.substr(0, colon));
    if (index.ok() && one_based && *index == 0) {
      index = absl::InvalidArgumentError("index 0 with 1-based indices");
    }
    if (!index.ok()) {
      return ErrorAt(column, at,
                     absl::InvalidArgumentError(absl::StrCat(
                         "pair ", pair, ": ", index.status().message())));
    }
    absl::StatusOr<float> value = ParseFloat(token.substr(colon + 1));
    if (!value.ok()) {
      return ErrorAt(column, at + static_cast<int64_t>(colon) + 1,
                     absl::InvalidArgumentError(absl::StrCat(
                         "pair ", pair, ": ", value.status().message())));
    }
    features->add_indices(*index - (one_based ? 1 : 0));
    features->add_values(*value);
    columns.push_back(at);
  }
  // The checks of CheckSparseIndices, in its order, each error at its pair.
  absl::Status checked = CheckSparseIndices(*features, num_features, one_based);
  if (checked.ok()) return checked;
  const auto& indices = features->indices();
  int64_t at = 0;
  for (int i = 0; i < indices.size() && at == 0; ++i) {
    if ((num_features > 0 && indices[i] >= num_features) ||
        (i > 0 && indices[i] == indices[i - 1])) {
      at = columns[i];
    }
  }
  if (at == 0) {
    // Not ascending: the smallest repeated index, at its second occurrence.
    std::vector<std::pair<uint32_t, int>> sorted;
    for (int i = 0; i < indices.size(); ++i) sorted.emplace_back(indices[i], i);
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 1; i < sorted.size() && at == 0; ++i) {
      if (sorted[i].first == sorted[i - 1].first)
        at = columns[sorted[i].second];
    }
  }
  return ErrorAt(column, at, checked);
}

}  // namespace

void ResetExample(v1::Example* example) {
  v1::Features* features =
      example->has_features() ? example->release_features() : nullptr;
  example->Clear();
  if (features != nullptr) {
    features->Clear();  // repeated fields only: their room stays
    example->set_allocated_features(features);
  }
}

absl::Status ParseCsvLine(absl::string_view line, int64_t num_features,
                          v1::Example* example, int64_t* column,
                          const char* readable_end) {
  const char* const readable =
      readable_end != nullptr ? readable_end : line.data() + line.size();
  if (FastCsvLine(line, num_features, readable, example)) {
    return absl::OkStatus();
  }
  return SlowCsvLine(line, num_features, example, column);
}

absl::Status ParseLibsvmLine(absl::string_view line, int64_t num_features,
                             bool one_based, v1::Example* example,
                             int64_t* column, const char* readable_end) {
  const char* const readable =
      readable_end != nullptr ? readable_end : line.data() + line.size();
  if (FastLibsvmLine(line, num_features, one_based, readable, example)) {
    return absl::OkStatus();
  }
  return SlowLibsvmLine(line, num_features, one_based, example, column);
}

}  // namespace lepton::client
