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
// The same numbers, faster where more is known (all give the same floats):
//   ScanFloatWide          the text lies in a buffer readable further
//                          (readable_end): a number of up to 15 digits is
//                          found and converted in SSE registers in one step
//   ParseDecimalField      a whole field whose end is known (a CSV field
//                          between commas): decided by masks, not by a scan,
//                          so consecutive fields are independent work
//   ParseDecimalFieldPair  two such fields in the halves of AVX2 registers
// Only the Wide and Field functions load bytes past `end` (16 at a time),
// never past readable_end. None allocates. Thread safety: pure functions.
//
// The SSE and AVX2 paths need a build for x86-64-v3 (the project's
// default, LEPTON_MARCH); without it the scalar paths serve.
#ifndef LEPTON_CLIENT_DECIMAL_SCAN_H_
#define LEPTON_CLIENT_DECIMAL_SCAN_H_

#include <cstdint>
#include <cstring>

#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

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

// kAlignDigits[digits][point]: the byte shuffle that moves a field's
// `digits` digits, skipping the point at byte `point` (point >= the field's
// length: none), to the last lanes of 16, the lanes before them 0 (a lane
// whose index has its top bit set). Lane j takes byte j - (16 - digits), one
// more at or past the point.
struct AlignDigitsTable {
  alignas(16) int8_t masks[16][16][16];
};
inline constexpr AlignDigitsTable MakeAlignDigitsTable() {
  AlignDigitsTable table{};
  for (int digits = 0; digits < 16; ++digits) {
    for (int point = 0; point < 16; ++point) {
      for (int j = 0; j < 16; ++j) {
        const int source = j + digits - 16;
        table.masks[digits][point][j] =
            static_cast<int8_t>(source < 0        ? -128
                                : source >= point ? source + 1
                                                  : source);
      }
    }
  }
  return table;
}
inline constexpr AlignDigitsTable kAlignDigits = MakeAlignDigitsTable();

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

// ScanFloat for text inside a buffer that may be read up to `readable_end`
// (at or past `end`): while 16 bytes remain there, a number of up to 15
// digits and a point is found, aligned and converted in SSE registers in
// one step, whatever its length; elsewhere, and for the rest, ScanFloat.
// Bytes past `end` are loaded but never read as part of the number.
inline const char* ScanFloatWide(const char* p, const char* end,
                                 const char* readable_end, float* value) {
#if defined(__SSE4_1__)
  using namespace decimal_scan_internal;  // NOLINT: this header's own helpers
  const bool negative = p != end && *p == '-';
  const char* const q = p + negative;
  if (readable_end - q >= 16 && q != end) {
    // A lone "0" (half of an image's pixels) takes the shortest way.
    if (*q == '0' && (end - q == 1 || (!IsDigit(q[1]) && q[1] != '.'))) {
      *value = negative ? -0.0f : 0.0f;
      return q + 1;
    }
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    const __m128i is_digit =
        _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
    const uint32_t digit_bits =
        static_cast<uint32_t>(_mm_movemask_epi8(is_digit));
    const uint32_t dot_bits = static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))));
    // The run of digits and points: its length, and its points.
    const int length = __builtin_ctz(~(digit_bits | dot_bits));
    const uint32_t dot = dot_bits & ((1u << length) - 1);
    const int digits = length - (dot != 0);
    const int dot_at = __builtin_ctz(dot | (1u << length));
    const int fraction = length - dot_at - (dot != 0);
    if (length < 16 && length <= end - q && (dot & (dot - 1)) == 0 &&
        digits > 0 && (dot == 0 || fraction > 0) &&
        (length == end - q || (q[length] != 'e' && q[length] != 'E'))) {
      // The digits without the point, moved to the last lanes (the lanes
      // before them 0): lane j takes byte j - (16 - digits), one more past
      // the point.
      const __m128i index = _mm_load_si128(
          reinterpret_cast<const __m128i*>(kAlignDigits.masks[digits][dot_at]));
      const __m128i t = _mm_shuffle_epi8(d, index);
      // Pairs, quads, then the two halves of eight digits.
      const __m128i pairs =
          _mm_maddubs_epi16(t, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1,
                                             10, 1, 10, 1, 10, 1));
      const __m128i quads =
          _mm_madd_epi16(pairs, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
      const __m128i packed = _mm_packus_epi32(quads, quads);
      const __m128i halves = _mm_madd_epi16(
          packed, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
      const uint64_t w =
          uint64_t{static_cast<uint32_t>(_mm_cvtsi128_si32(halves))} *
              100000000 +
          static_cast<uint32_t>(_mm_extract_epi32(halves, 1));
      float f = 0;
      if (ToFloat(w, fraction, &f)) {
        *value = negative ? -f : f;
        return q + length;
      }
    }
  }
#endif
  (void)readable_end;
  return ScanFloat(p, end, value);
}

// A decimal read but not yet converted: the value is
// (negative ? -1 : 1) * w / 10^fraction, with w < 10^15.
struct DecimalParts {
  uint64_t w = 0;
  int32_t fraction = 0;
  bool negative = false;
};

// A whole field [p, end) whose ends are known (a CSV field between
// commas): true and *parts when it is one of ScanFloat's forms with at most
// 15 digits, false otherwise (then ask the general parser). Knowing the
// field's length, it decides by masks rather than by a scan, so fields in a
// row are independent work that the processor overlaps. Loads 16 bytes at a
// time while `readable_end` allows.
inline bool ParseDecimalParts(const char* p, const char* end,
                              const char* readable_end, DecimalParts* parts) {
  using namespace decimal_scan_internal;  // NOLINT: this header's own helpers
  if (end - p == 1) {  // "0", "1": one digit, or not a number
    const unsigned digit = static_cast<unsigned char>(*p - '0');
    parts->w = digit;
    parts->fraction = 0;
    parts->negative = false;
    return digit < 10;
  }
#if defined(__SSE4_1__)
  const bool negative = p != end && *p == '-';
  const char* const q = p + negative;
  const int length = static_cast<int>(end - q);
  if (length > 0 && length < 16 && readable_end - q >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    const __m128i is_digit =
        _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
    const uint32_t in_field = (1u << length) - 1;
    const uint32_t digit_bits =
        static_cast<uint32_t>(_mm_movemask_epi8(is_digit)) & in_field;
    const uint32_t dot = static_cast<uint32_t>(_mm_movemask_epi8(
                             _mm_cmpeq_epi8(v, _mm_set1_epi8('.')))) &
                         in_field;
    const int digits = length - (dot != 0);
    const int dot_at = __builtin_ctz(dot | (1u << length));
    const int fraction = length - dot_at - (dot != 0);
    // Every byte a digit but at most one point, with digits after it; no
    // branch on whether there is a point.
    if (((digit_bits | dot) != in_field) | ((dot & (dot - 1)) != 0) |
        (digits == 0) | ((dot != 0) & (fraction == 0))) {
      return false;
    }
    // The digits without the point, moved to the last lanes (the lanes
    // before them 0; kAlignDigits). Then pairs, quads, and the two halves
    // of eight digits.
    const __m128i index = _mm_load_si128(
        reinterpret_cast<const __m128i*>(kAlignDigits.masks[digits][dot_at]));
    const __m128i t = _mm_shuffle_epi8(d, index);
    const __m128i pairs = _mm_maddubs_epi16(
        t,
        _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
    const __m128i quads =
        _mm_madd_epi16(pairs, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
    const __m128i packed = _mm_packus_epi32(quads, quads);
    const __m128i halves = _mm_madd_epi16(
        packed, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
    parts->w =
        uint64_t{static_cast<uint32_t>(_mm_cvtsi128_si32(halves))} * 100000000 +
        static_cast<uint32_t>(_mm_extract_epi32(halves, 1));
    parts->fraction = fraction;
    parts->negative = negative;
    return true;
  }
#endif
  // The scalar way, for what the registers cannot take.
  (void)readable_end;
  float unused;
  if (p == end || *p == '+' || ScanFloat(p, end, &unused) != end) return false;
  const bool minus = *p == '-';
  uint64_t w = 0;
  const char* digits_end = AccumulateDigits(p + minus, end, &w);
  int32_t fraction = 0;
  if (digits_end != end) {  // at the point
    const char* const fraction_begin = digits_end + 1;
    fraction = static_cast<int32_t>(AccumulateDigits(fraction_begin, end, &w) -
                                    fraction_begin);
  }
  if (w >= 1000000000000000 || fraction > 22) return false;
  parts->w = w;
  parts->fraction = fraction;
  parts->negative = minus;
  return true;
}

// The float of one DecimalParts; false near a tie (ask the general parser).
inline bool ToFloat(const DecimalParts& parts, float* value) {
  float f = 0;
  if (!decimal_scan_internal::ToFloat(parts.w, parts.fraction, &f)) {
    return false;
  }
  *value = parts.negative ? -f : f;
  return true;
}

// ParseDecimalParts, then ToFloat.
inline bool ParseDecimalField(const char* p, const char* end,
                              const char* readable_end, float* value) {
  DecimalParts parts;
  return ParseDecimalParts(p, end, readable_end, &parts) &&
         ToFloat(parts, value);
}

// Two fields at once, [p0, end0) into out[0] and [p1, end1) into out[1]:
// ParseDecimalField of each, the two in the two halves of AVX2 registers
// (each step, conversion to float included, serves both). False when
// either is not one of the plain forms (out may then be incomplete).
inline bool ParseDecimalFieldPair(const char* p0, const char* end0,
                                  const char* p1, const char* end1,
                                  const char* readable_end, float* out) {
#if defined(__AVX2__)
  using namespace decimal_scan_internal;  // NOLINT: this header's own helpers
  const bool negative0 = p0 != end0 && *p0 == '-';
  const bool negative1 = p1 != end1 && *p1 == '-';
  const char* const q0 = p0 + negative0;
  const char* const q1 = p1 + negative1;
  const int length0 = static_cast<int>(end0 - q0);
  const int length1 = static_cast<int>(end1 - q1);
  if (length0 > 0 && length0 < 16 && length1 > 0 && length1 < 16 &&
      readable_end - q0 >= 16 && readable_end - q1 >= 16) {
    const __m256i v = _mm256_inserti128_si256(
        _mm256_castsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(q0))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(q1)), 1);
    const __m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
    const __m256i is_digit =
        _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(9)), d);
    const uint32_t in_field = ((1u << length0) - 1) | ((1u << length1) - 1)
                                                          << 16;
    const uint32_t digit_bits =
        static_cast<uint32_t>(_mm256_movemask_epi8(is_digit)) & in_field;
    const uint32_t dots = static_cast<uint32_t>(_mm256_movemask_epi8(
                              _mm256_cmpeq_epi8(v, _mm256_set1_epi8('.')))) &
                          in_field;
    const uint32_t dot0 = dots & 0xFFFF;
    const uint32_t dot1 = dots >> 16;
    // Without branches: whether a field has a point is the data's whim.
    const int digits0 = length0 - (dot0 != 0);
    const int digits1 = length1 - (dot1 != 0);
    const int dot_at0 = __builtin_ctz(dot0 | (1u << length0));
    const int dot_at1 = __builtin_ctz(dot1 | (1u << length1));
    const int fraction0 = length0 - dot_at0 - (dot0 != 0);
    const int fraction1 = length1 - dot_at1 - (dot1 != 0);
    const bool bad = ((digit_bits | dots) != in_field) |
                     ((dot0 & (dot0 - 1)) != 0) | ((dot1 & (dot1 - 1)) != 0) |
                     ((dot0 != 0) & (fraction0 == 0)) |
                     ((dot1 != 0) & (fraction1 == 0));
    if (bad) return false;
    // As in ParseDecimalParts, in each half, the shuffles from a table.
    const __m256i index =
        _mm256_setr_m128i(_mm_load_si128(reinterpret_cast<const __m128i*>(
                              kAlignDigits.masks[digits0][dot_at0])),
                          _mm_load_si128(reinterpret_cast<const __m128i*>(
                              kAlignDigits.masks[digits1][dot_at1])));
    const __m256i t = _mm256_shuffle_epi8(d, index);
    const __m256i pairs =
        _mm256_maddubs_epi16(t, _mm256_set1_epi16(0x010A));  // 10, 1
    const __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x10064));
    const __m256i packed = _mm256_packus_epi32(quads, quads);
    // Per half, 32-bit lanes: the first eight digits, the last eight, twice.
    const __m256i halves =
        _mm256_madd_epi16(packed, _mm256_set1_epi32(0x12710));  // 10000, 1
    // 64-bit lanes: w0, w0, w1, w1 (first * 10^8 + last).
    const __m256i w = _mm256_add_epi64(
        _mm256_mul_epu32(halves, _mm256_set1_epi64x(100000000)),
        _mm256_srli_epi64(halves, 32));
    // w < 2^52 is the low bits of the double 2^52 + w.
    const __m256d value = _mm256_mul_pd(
        _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(
                          w, _mm256_set1_epi64x(0x4330000000000000))),
                      _mm256_set1_pd(4503599627370496.0)),
        _mm256_setr_pd(
            kInversePowersOfTen[fraction0], kInversePowersOfTen[fraction0],
            kInversePowersOfTen[fraction1], kInversePowersOfTen[fraction1]));
    // ToFloat's test for a value near a float tie, in each lane.
    const __m256i off =
        _mm256_sub_epi64(_mm256_and_si256(_mm256_castpd_si256(value),
                                          _mm256_set1_epi64x(0x1FFFFFFF)),
                         _mm256_set1_epi64x(0x10000000 - 8));
    const __m256i near =
        _mm256_andnot_si256(_mm256_cmpgt_epi64(off, _mm256_set1_epi64x(16)),
                            _mm256_cmpgt_epi64(off, _mm256_set1_epi64x(-1)));
    if (!_mm256_testz_si256(near, near)) {
      return ParseDecimalField(p0, end0, readable_end, &out[0]) &&
             ParseDecimalField(p1, end1, readable_end, &out[1]);
    }
    const __m128 f = _mm256_cvtpd_ps(value);  // f0, f0, f1, f1
    const __m128 signs = _mm_castsi128_ps(_mm_setr_epi32(
        negative0 ? 0x80000000 : 0, negative1 ? 0x80000000 : 0, 0, 0));
    _mm_storel_pi(
        reinterpret_cast<__m64*>(out),
        _mm_xor_ps(_mm_shuffle_ps(f, f, _MM_SHUFFLE(2, 2, 2, 0)), signs));
    return true;
  }
#endif
  return ParseDecimalField(p0, end0, readable_end, &out[0]) &&
         ParseDecimalField(p1, end1, readable_end, &out[1]);
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
