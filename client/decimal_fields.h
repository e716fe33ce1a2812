// The file readers' numbers in SSE and AVX2 registers: the forms of
// decimal_scan.h's ScanFloat, read faster where more is known, and always
// to the same floats (bit for bit what std::from_chars gives).
//
//   ScanFloatWide          the text lies in a buffer readable further
//                          (readable_end): a number of up to 15 digits is
//                          found and converted in SSE registers in one step
//   ParseDecimalField      a whole field whose end is known (a CSV field
//                          between commas): decided by masks, not by a scan,
//                          so consecutive fields are independent work that
//                          the processor overlaps
//   ParseDecimalFieldPair  two such fields in the halves of AVX2 registers,
//                          their conversion to float included
//
//   float pair[2];
//   // "0.5,12,..." in a buffer readable to `readable`:
//   ParseDecimalFieldPair(p, p + 3, p + 4, p + 6, readable, pair);
//   // true; pair = {0.5f, 12.0f}
//
// They return false (or nullptr) for anything else, which the caller hands
// to the general parser (feature_text.h) for the value or the message. They
// load 16 bytes at a time past a number's end, never past readable_end, and
// allocate nothing. The register paths need a build for x86-64-v3 (the
// project's default, LEPTON_MARCH); without one the scalar paths serve.
//
// Thread safety: pure functions.
#ifndef LEPTON_CLIENT_DECIMAL_FIELDS_H_
#define LEPTON_CLIENT_DECIMAL_FIELDS_H_

#include <cstdint>
#include <cstring>

#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

#include "client/decimal_scan.h"

namespace lepton::client {
namespace decimal_scan_internal {

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

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_DECIMAL_FIELDS_H_
