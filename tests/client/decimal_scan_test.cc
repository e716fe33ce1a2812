// decimal_scan.h and decimal_fields.h against std::from_chars.
#include "client/decimal_scan.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "client/decimal_fields.h"
#include "gtest/gtest.h"

namespace lepton::client {
namespace {

// What ScanFloat must agree with: std::from_chars over the same text.
struct Reference {
  bool ok = false;
  float value = 0;
};

Reference FromChars(const std::string& text) {
  Reference r;
  std::string digits = text;
  if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-') {
    digits.erase(0, 1);
  }
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, r.value);
  r.ok = ec == std::errc() && ptr == end && !digits.empty();
  return r;
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

// ScanFloat either declines `text` or reads all of it to the very float
// from_chars reads. Returns whether it read it all.
bool ExpectAgrees(const std::string& text) {
  float value = 12345;
  const char* end = text.data() + text.size();
  const char* stop = ScanFloat(text.data(), end, &value);
  if (stop == nullptr) return false;  // declined: the general parser decides
  if (stop != end) return false;      // read a prefix: the caller sees the rest
  const Reference r = FromChars(text);
  EXPECT_TRUE(r.ok) << "\"" << text << "\" read, but from_chars refuses it";
  EXPECT_EQ(Bits(value), Bits(r.value))
      << "\"" << text << "\": " << value << " vs " << r.value;
  return true;
}

TEST(DecimalScanTest, ReadsThePlainForms) {
  struct Case {
    const char* text;
    float value;
    size_t length;  // how much ScanFloat reads
  } cases[] = {
      {"0", 0.0f, 1},
      {"0,1", 0.0f, 1},
      {"1", 1.0f, 1},
      {"-1", -1.0f, 2},
      {"+1", 1.0f, 2},
      {"0.25", 0.25f, 4},
      {".5", 0.5f, 2},
      {"-.5", -0.5f, 3},
      {"255", 255.0f, 3},
      {"0.28627452,0", 0.28627452f, 10},
      {"0.003921569", 0.003921569f, 11},
      {"123456789.125", 123456789.125f, 13},
      {"1 2", 1.0f, 1},
      {"7:1", 7.0f, 1},
  };
  for (const Case& c : cases) {
    float value = -99;
    const char* end = c.text + std::strlen(c.text);
    const char* stop = ScanFloat(c.text, end, &value);
    ASSERT_NE(stop, nullptr) << c.text;
    EXPECT_EQ(stop - c.text, static_cast<ptrdiff_t>(c.length)) << c.text;
    EXPECT_EQ(value, c.value) << c.text;
  }
  float value = 0;
  const char* minus_zero = "-0";
  ASSERT_NE(ScanFloat(minus_zero, minus_zero + 2, &value), nullptr);
  EXPECT_TRUE(std::signbit(value));
}

TEST(DecimalScanTest, DeclinesWhatTheGeneralParserMustRead) {
  for (const char* text :
       {"", "-", "+", "+-1", "x", " 1", "1.", "1e5", "2.5E-3", "nan", "inf",
        "12345678901234567890", "0.00000000000000000000001"}) {
    float value = 0;
    const char* end = text + std::strlen(text);
    const char* stop = ScanFloat(text, end, &value);
    EXPECT_TRUE(stop == nullptr || stop != end) << "\"" << text << "\"";
  }
}

TEST(DecimalScanTest, AgreesWithFromCharsOnEveryPixel) {
  // Fashion-MNIST's pixels, k / 255 as the demo's converter writes them.
  char text[32];
  for (int k = 0; k <= 255; ++k) {
    const float pixel = static_cast<float>(k) / 255.0f;
    const auto [end, ec] = std::to_chars(text, text + sizeof(text), pixel);
    EXPECT_TRUE(ExpectAgrees(std::string(text, end))) << text;
  }
}

TEST(DecimalScanTest, AgreesWithFromCharsOnRandomDecimals) {
  std::mt19937_64 random(20240601);
  char text[64];
  int64_t read = 0;  // texts ScanFloat read itself: most of them
  for (int i = 0; i < 400000; ++i) {
    // Random floats, written shortest, with 9 and 17 digits, and fixed.
    const uint32_t bits = static_cast<uint32_t>(random());
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    if (!std::isfinite(f)) continue;
    const char* formats[] = {"%.9g", "%.17g", "%.6f", "%.12f", "%.3f"};
    for (const char* format : formats) {
      std::snprintf(text, sizeof(text), format, static_cast<double>(f));
      read += ExpectAgrees(text);
    }
    const auto [end, ec] = std::to_chars(text, text + sizeof(text), f);
    read += ExpectAgrees(std::string(text, end));
    // Random digit strings of every length, with the point anywhere.
    std::string digits;
    const int n = 1 + static_cast<int>(random() % 19);
    for (int d = 0; d < n; ++d) digits.push_back('0' + random() % 10);
    const size_t point = random() % (digits.size() + 1);
    if (point < digits.size()) {
      digits = digits.substr(0, point) + "." + digits.substr(point);
    }
    read += ExpectAgrees(digits);
    read += ExpectAgrees("-" + digits);
  }
  EXPECT_GT(read, 1000000);
}

TEST(DecimalScanTest, AgreesWithFromCharsNearFloatTies) {
  // Decimals exactly halfway between two floats, and a hair either side.
  // Written with 9 to 11 decimals, most ties are exact and short enough
  // for ScanFloat (at most 19 digits, below 2^53).
  std::mt19937 random(7);
  char text[80];
  int64_t read = 0;
  for (int i = 0; i < 20000; ++i) {
    const float f = static_cast<float>(random() % 100000000) / 1024.0f;
    const double tie =
        (static_cast<double>(f) + std::nextafter(f, INFINITY)) / 2;
    for (const double x :
         {tie, std::nextafter(tie, 0.0), std::nextafter(tie, 1e30)}) {
      for (const char* format : {"%.17g", "%.9f", "%.10f", "%.11f"}) {
        std::snprintf(text, sizeof(text), format, x);
        read += ExpectAgrees(text);
      }
    }
  }
  EXPECT_GT(read, 20000);
}

TEST(DecimalScanTest, FieldsAreWholeOrDeclined) {
  // A field must be a number to its end: no blanks, signs or exponents that
  // the general parser would have to judge.
  const std::vector<std::string> fields = {
      "1 ", "+1", "1e5", "1.", ".", "-", "", "1.2.3", "12345678901234567", "x"};
  for (const std::string& text : fields) {
    std::string buffer = "0," + text + ",";
    buffer.append(32, '7');
    const char* const begin = buffer.data() + 2;
    const char* const end = begin + text.size();
    const char* const readable = buffer.data() + buffer.size();
    float value = 0;
    EXPECT_FALSE(ParseDecimalField(begin, end, readable, &value)) << text;
    float pair[2];
    EXPECT_FALSE(ParseDecimalFieldPair(buffer.data(), buffer.data() + 1, begin,
                                       end, readable, pair))
        << text;
  }
}

TEST(DecimalScanTest, ScanIndexReadsDecimalIndices) {
  uint32_t index = 0;
  const std::string ok[] = {"0", "7", "0007", "4294967295"};
  for (const std::string& text : ok) {
    const char* end = text.data() + text.size();
    ASSERT_EQ(ScanIndex(text.data(), end, &index), end) << text;
    EXPECT_EQ(index, std::stoul(text)) << text;
  }
  const std::string stops = "12:3";
  EXPECT_EQ(ScanIndex(stops.data(), stops.data() + stops.size(), &index),
            stops.data() + 2);
  for (const std::string& text :
       std::vector<std::string>{"", "x", "-1", "4294967296", "99999999999"}) {
    EXPECT_EQ(ScanIndex(text.data(), text.data() + text.size(), &index),
              nullptr)
        << text;
  }
}

}  // namespace
}  // namespace lepton::client
