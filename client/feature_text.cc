#include "client/feature_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/decimal_scan.h"

namespace lepton::client {
namespace {

absl::string_view StripBlanks(absl::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// Whether `s` is UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF), as a proto3 string must be: the server cannot parse a request
// whose names are not.
bool IsUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;  // overlong
      if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;  // overlong
      if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return false;
    }
    if (s.size() - i <= static_cast<size_t>(n)) return false;
    const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (int k = 2; k <= n; ++k) {
      const unsigned char ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xbf) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string Quoted(absl::string_view text) {
  // Keeps messages one line long, whatever the input holds.
  constexpr size_t kMax = 40;
  std::string shown(text.substr(0, kMax));
  for (char& c : shown) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return absl::StrCat("\"", shown, text.size() > kMax ? "...\"" : "\"");
}

}  // namespace

bool ParseFloatFast(absl::string_view text, float* value) {
  // The plain forms first (decimal_scan.h), from_chars for the rest.
  const char* const text_end = text.data() + text.size();
  if (!text.empty() && ScanFloat(text.data(), text_end, value) == text_end) {
    return true;
  }
  absl::string_view digits = StripBlanks(text);
  if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-') {
    digits.remove_prefix(1);
  }
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, *value);
  return ec == std::errc() && ptr == end && !digits.empty() &&
         std::isfinite(*value);
}

absl::StatusOr<float> ParseFloat(absl::string_view text) {
  float value = 0;
  if (ParseFloatFast(text, &value)) return value;
  const absl::string_view token = StripBlanks(text);
  absl::string_view digits = token;
  // from_chars takes no '+', which printf-style writers may emit.
  if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-') {
    digits.remove_prefix(1);
  }
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(token), " is out of the range of a float"));
  }
  if (ec != std::errc() || ptr != end || digits.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(token), " is not a number"));
  }
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(token), " is not finite"));
  }
  return value;
}

absl::StatusOr<uint32_t> ParseIndex(absl::string_view text) {
  const absl::string_view token = StripBlanks(text);
  uint32_t value = 0;
  const char* end = token.data() + token.size();
  const auto [ptr, ec] = std::from_chars(token.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    return absl::InvalidArgumentError(
        absl::StrCat("index ", Quoted(token), " is too large"));
  }
  if (ec != std::errc() || ptr != end || token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "index ", Quoted(token), " is not a non-negative integer"));
  }
  return value;
}

absl::Status ParseDenseFeatures(absl::string_view text,
                                v1::Features* features) {
  if (StripBlanks(text).empty()) {
    return absl::InvalidArgumentError("no values");
  }
  int n = 0;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    ++n;
    absl::StatusOr<float> value = ParseFloat(item);
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("value ", n, ": ", value.status().message()));
    }
    features->add_dense(*value);
  }
  return absl::OkStatus();
}

absl::Status ParseSparseFeatures(absl::string_view text, bool one_based,
                                 int64_t num_features, v1::Features* features) {
  if (StripBlanks(text).empty()) return absl::OkStatus();
  int n = 0;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    ++n;
    const size_t colon = item.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("pair ", n, ": ", Quoted(item), " is not index:value"));
    }
    absl::StatusOr<uint32_t> index = ParseIndex(item.substr(0, colon));
    if (index.ok() && one_based && *index == 0) {
      index = absl::InvalidArgumentError("index 0 with 1-based indices");
    }
    if (!index.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pair ", n, ": ", index.status().message()));
    }
    absl::StatusOr<float> value = ParseFloat(item.substr(colon + 1));
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pair ", n, ": ", value.status().message()));
    }
    features->add_indices(*index - (one_based ? 1 : 0));
    features->add_values(*value);
  }
  return CheckSparseIndices(*features, num_features, one_based);
}

absl::Status CheckSparseIndices(const v1::Features& features,
                                int64_t num_features, bool one_based) {
  const int base = one_based ? 1 : 0;
  const auto& indices = features.indices();
  bool ascending = true;
  for (int i = 0; i < indices.size(); ++i) {
    if (num_features > 0 && indices[i] >= num_features) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index ", int64_t{indices[i]} + base,
          " is out of range: ", num_features, " features, indices ", base, "..",
          num_features - 1 + base));
    }
    if (i > 0 && indices[i] <= indices[i - 1]) {
      if (indices[i] == indices[i - 1]) {
        return absl::InvalidArgumentError(
            absl::StrCat("index ", int64_t{indices[i]} + base, " is repeated"));
      }
      ascending = false;
    }
  }
  if (ascending) return absl::OkStatus();
  std::vector<uint32_t> sorted(indices.begin(), indices.end());
  std::sort(sorted.begin(), sorted.end());
  auto repeated = std::adjacent_find(sorted.begin(), sorted.end());
  if (repeated != sorted.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("index ", int64_t{*repeated} + base, " is repeated"));
  }
  return absl::OkStatus();
}

absl::Status ParseNamedFeatures(absl::string_view text, v1::Features* features,
                                int64_t* column) {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  const char* p = text.data();
  const char* const end = p + text.size();
  // Errors are rare: their messages and columns are made only then.
  const auto error_at = [&](const char* at, std::string message) {
    if (column != nullptr) *column = at - text.data() + 1;
    return absl::InvalidArgumentError(std::move(message));
  };
  while (p != end && blank(*p)) ++p;
  if (p == end) return absl::OkStatus();
  if (*p != '|') {
    const absl::string_view before(p, text.find('|') == absl::string_view::npos
                                          ? end - p
                                          : text.data() + text.find('|') - p);
    return error_at(p, absl::StrCat(Quoted(before),
                                    " before the first '|' (expected "
                                    "|namespace feature feature:value ...)"));
  }
  int ns_number = 0;
  while (p != end) {  // at a '|'
    ++p;
    ++ns_number;
    const char* const name_begin = p;
    while (p != end && !blank(*p) && *p != '|' && *p != ':') ++p;
    const absl::string_view ns_name(name_begin, p - name_begin);
    const auto where = [&] {
      return absl::StrCat("namespace ", ns_number, " (", ns_name, ")");
    };
    if (!IsUtf8(ns_name)) {
      return error_at(name_begin,
                      absl::StrCat("namespace ", ns_number,
                                   ": its name is not valid UTF-8"));
    }
    float weight = 1;
    if (p != end && *p == ':') {
      const char* const weight_begin = ++p;
      while (p != end && !blank(*p) && *p != '|') ++p;
      const absl::string_view weight_text(weight_begin, p - weight_begin);
      if (!ParseFloatFast(weight_text, &weight)) {
        return error_at(
            weight_begin,
            absl::StrCat(where(), ": weight ",
                         ParseFloat(weight_text).status().message()));
      }
    }
    v1::Namespace* ns = features->add_namespaces();
    ns->set_name(name_begin, ns_name.size());
    int feature_number = 0;
    while (true) {
      while (p != end && blank(*p)) ++p;
      if (p == end || *p == '|') break;
      const char* const token_begin = p;
      const char* colon = nullptr;
      while (p != end && !blank(*p) && *p != '|') {
        if (*p == ':' && colon == nullptr) colon = p;
        ++p;
      }
      ++feature_number;
      const absl::string_view token(token_begin, p - token_begin);
      const size_t name_size =
          colon == nullptr ? token.size() : colon - token_begin;
      if (name_size == 0) {
        return error_at(token_begin,
                        absl::StrCat(where(), ": feature ", feature_number,
                                     ": ", Quoted(token), " has no name"));
      }
      if (!IsUtf8(token.substr(0, name_size))) {
        return error_at(token_begin,
                        absl::StrCat(where(), ": feature ", feature_number,
                                     ": its name is not valid UTF-8"));
      }
      v1::NamedFeature* f = ns->add_features();
      f->set_name(token_begin, name_size);
      if (colon == nullptr) {
        // Absent means 1; a weighted namespace's feature is worth the weight.
        if (weight != 1) f->set_value(weight);
        continue;
      }
      const absl::string_view value_text(colon + 1, p - colon - 1);
      float value = 0;
      if (!ParseFloatFast(value_text, &value)) {
        return error_at(
            colon + 1, absl::StrCat(where(), ": feature ", feature_number, ": ",
                                    Quoted(token), ": ",
                                    ParseFloat(value_text).status().message()));
      }
      value *= weight;
      if (!std::isfinite(value)) {
        return error_at(
            colon + 1,
            absl::StrCat(where(), ": feature ", feature_number, ": ",
                         Quoted(token), " times the namespace weight ", weight,
                         " is not finite"));
      }
      f->set_value(value);
    }
  }
  return absl::OkStatus();
}

}  // namespace lepton::client
