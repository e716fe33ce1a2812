// ScanFloat and ScanIndex: the file readers' hot path for numbers, inline.
// Each reads a number at the start of [p, end) and returns where it stopped,
// or nullptr when the text is not of the plain form it knows; the caller
// then asks the general parser of feature_text.h (ParseFloat, ParseIndex),
// which either agrees or explains what is wrong.
//
//   float v;
//   const char* q = ScanFloat(p, end, &v);  // "0.25,1" -> v = 0.25f, q at ','
//   if (q == nullptr) ...                    // "+1", "1e-3", " 2", "x": ask
//                                            // ParseFloat
//
// ScanFloat's forms: [-|+]digits[.digits] and [-|+].digits, at most 19 digits
// in all. Its value is bit for bit what std::from_chars (and so ParseFloat)
// gives: the digits make an exact integer w < 2^53, w / 10^f is one
// correctly rounded double division (10^f exact for f <= 22), and rounding
// that double to float is correct unless it lies exactly halfway between two
// floats, which is sent to the general parser. (A multiplication by 10^-f
// stands in for the division unless the result is near such a tie.) Up to
// eight digits at a time are found and converted together in a 64-bit word
// (SWAR), so the typical "0.28627452" costs two steps.
//
// ScanIndex's form: decimal digits, value below 2^32.
//
// Neither looks past `end`; neither allocates. decimal_fields.h reads the
// same numbers faster where more is known (a buffer readable past the
// number, a field whose end is known). Thread safety: pure functions.
#ifndef LEPTON_CLIENT_DECIMAL_SCAN_H_
#define LEPTON_CLIENT_DECIMAL_SCAN_H_

#include <cstdint>
#include <cstring>

namespace lepton::client {
namespace decimal_scan_internal {

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// The 8 bytes at p, little-endian.
inline uint64_t Load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// How many of the 8 bytes of `v`, lowest first, are ASCII digits before the
// first one that is not. Each byte is tested by two carries (b + 0x46 >= 0x80
// for b > '9', b - 0x30 borrowing for b < '0'); a carry can only corrupt the
// bytes above the first non-digit, which do not count.
inline int DigitCount(uint64_t v) {
  const uint64_t t = ((v + 0x4646464646464646) | (v - 0x3030303030303030)) &
                     0x8080808080808080;
  return t == 0 ? 8 : __builtin_ctzll(t) >> 3;
}

// The value of the first n (1..8) bytes of `v`, ASCII digits, the first in
// the lowest byte: shifted so that they are the last of 8 digits (the bytes
// before them 0), then combined in pairs, quads and the eight.
inline uint64_t DigitsValue(uint64_t v, int n) {
  constexpr uint64_t kMask = 0x000000FF000000FF;
  constexpr uint64_t kMul1 = 100 + (1000000ULL << 32);
  constexpr uint64_t kMul2 = 1 + (10000ULL << 32);
  v = (v - 0x3030303030303030) << (8 * (8 - n));
  v = (v * 10) + (v >> 8);
  return (((v & kMask) * kMul1) + (((v >> 16) & kMask) * kMul2)) >> 32;
}

inline constexpr uint64_t kIntegerPowersOfTen[] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

inline constexpr double kPowersOfTen[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

inline constexpr double kInversePowersOfTen[] = {
    1e0,   1e-1,  1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,
    1e-8,  1e-9,  1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15,
    1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22};

// Appends the digits at p to *w; returns where they end. Eight bytes at a
// time while eight remain before `end`.
inline const char* AccumulateDigits(const char* p, const char* end,
                                    uint64_t* w) {
  while (end - p >= 8) {
    const uint64_t v = Load8(p);
    const int n = DigitCount(v);
    if (n == 0) return p;
    *w = *w * kIntegerPowersOfTen[n] + DigitsValue(v, n);
    p += n;
    if (n < 8) return p;
  }
  while (p != end && IsDigit(*p)) {
    *w = *w * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
  }
  return p;
}

// The float nearest to w / 10^fraction (w <= 2^53, fraction <= 22), or
// false when it could not be told apart from a tie.
inline bool ToFloat(uint64_t w, int64_t fraction, float* value) {
  // A multiplication by the double nearest 10^-fraction is off from the
  // exact quotient by at most 2 units of the double's last place; unless a
  // float tie (the 29 bits a float drops exactly one half) is within 8
  // units, both round to the same float.
  double d = static_cast<double>(w) * kInversePowersOfTen[fraction];
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  if ((bits & 0x1FFFFFFF) - (0x10000000 - 8) <= 16) {
    // Near a tie: one division is correctly rounded, so only an exact tie
    // remains for the general parser.
    d = static_cast<double>(w) / kPowersOfTen[fraction];
    std::memcpy(&bits, &d, sizeof(bits));
    if ((bits & 0x1FFFFFFF) == 0x10000000) return false;
  }
  *value = static_cast<float>(d);
  return true;
}

}  // namespace decimal_scan_internal

inline const char* ScanFloat(const char* p, const char* end, float* value) {
  using namespace decimal_scan_internal;  // NOLINT: this header's own helpers
  const bool negative = p != end && *p == '-';
  p += negative;
  // ParseFloat takes a '+' that printf-style writers put before a number.
  if (!negative && p != end && *p == '+' && end - p > 1 &&
      (IsDigit(p[1]) || p[1] == '.')) {
    ++p;
  }
  // A lone "0" (half of an image's pixels) takes the shortest way.
  if (p != end && *p == '0' &&
      (end - p == 1 || (!IsDigit(p[1]) && p[1] != '.'))) {
    *value = negative ? -0.0f : 0.0f;
    return p + 1;
  }
  uint64_t w = 0;
  const char* const int_begin = p;
  p = AccumulateDigits(p, end, &w);
  int64_t digits = p - int_begin;
  int64_t fraction = 0;
  if (p != end && *p == '.') {
    const char* const fraction_begin = ++p;
    p = AccumulateDigits(p, end, &w);
    fraction = p - fraction_begin;
    if (fraction == 0) return nullptr;  // "1." : the general parser decides
    digits += fraction;
  }
  if (digits == 0 || digits > 19 || fraction > 22) return nullptr;
  if (p != end && (*p == 'e' || *p == 'E')) return nullptr;
  if (w > (uint64_t{1} << 53)) return nullptr;
  float f = 0;
  if (!ToFloat(w, fraction, &f)) return nullptr;
  *value = negative ? -f : f;
  return p;
}

inline const char* ScanIndex(const char* p, const char* end, uint32_t* index) {
  using decimal_scan_internal::IsDigit;
  uint64_t v = 0;
  const char* const begin = p;
  while (p != end && IsDigit(*p) && p - begin < 10) {
    v = v * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
  }
  if (p == begin || v > 0xFFFFFFFF || (p != end && IsDigit(*p))) {
    return nullptr;
  }
  *index = static_cast<uint32_t>(v);
  return p;
}

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_DECIMAL_SCAN_H_
