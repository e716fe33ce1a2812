// Tests of CRC-32C (core/util/crc32c.h): the published check values, agreement
// with a bit-at-a-time reference on every length and alignment (the hardware
// path reads 8 bytes at a time, then a byte tail), and Extend over split
// points, which the log and model formats rely on.
#include "core/util/crc32c.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lepton {
namespace {

// The definition, one bit at a time (reflected polynomial 0x82F63B78): slow
// and obviously right, the yardstick for the fast path.
uint32_t ReferenceCrc32c(absl::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

TEST(Crc32cTest, KnownVectors) {
  // The standard check value (the CRC catalogue's "check" for CRC-32C).
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending(32, '\0'), descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, EmptyInputIsZeroAndExtendByNothingIsIdentity) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32cExtend(0, nullptr, 0), 0u);
  EXPECT_EQ(Crc32cExtend(0xE3069283u, "", 0), 0xE3069283u);
}

TEST(Crc32cTest, FourZeroBytesAreNotZero) {
  // The update log relies on this: a record header of zeros never passes its
  // size checksum, so zero-filled space cannot pass for a record.
  EXPECT_EQ(Crc32c(std::string(4, '\0')), 0x48674BC7u);
}

TEST(Crc32cTest, MatchesReferenceOnEveryLength) {
  const std::string data = RandomBytes(300, 1);
  for (size_t n = 0; n <= data.size(); ++n) {
    const absl::string_view prefix = absl::string_view(data).substr(0, n);
    ASSERT_EQ(Crc32c(prefix), ReferenceCrc32c(prefix)) << "length " << n;
  }
}

TEST(Crc32cTest, UnalignedInputGivesTheSameResult) {
  const std::string data = RandomBytes(131, 2);
  const uint32_t want = ReferenceCrc32c(data);
  // The same bytes at every misalignment of an 8-byte word.
  for (size_t shift = 0; shift < 16; ++shift) {
    std::vector<char> buffer(shift + data.size() + 8, '\x5A');
    std::copy(data.begin(), data.end(), buffer.begin() + shift);
    EXPECT_EQ(Crc32cExtend(0, buffer.data() + shift, data.size()), want)
        << "shift " << shift;
  }
}

TEST(Crc32cTest, ExtendEqualsOneShotAtEverySplitPoint) {
  const std::string data = RandomBytes(97, 3);
  const uint32_t whole = Crc32c(data);
  ASSERT_EQ(whole, ReferenceCrc32c(data));
  for (size_t split = 0; split <= data.size(); ++split) {
    const absl::string_view a = absl::string_view(data).substr(0, split);
    const absl::string_view b = absl::string_view(data).substr(split);
    EXPECT_EQ(Crc32cExtend(Crc32c(a), b.data(), b.size()), whole)
        << "split " << split;
  }
}

TEST(Crc32cTest, ExtendOverManyPiecesEqualsOneShot) {
  const std::string data = RandomBytes(1000, 4);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    uint32_t crc = 0;
    size_t pos = 0;
    while (pos < data.size()) {
      const size_t n = std::min<size_t>(rng() % 20, data.size() - pos);
      crc = Crc32cExtend(crc, data.data() + pos, n);
      pos += n;
    }
    ASSERT_EQ(crc, Crc32c(data)) << "trial " << trial;
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  const std::string data = RandomBytes(64, 6);
  const uint32_t crc = Crc32c(data);
  for (size_t bit = 0; bit < data.size() * 8; ++bit) {
    std::string flipped = data;
    flipped[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    EXPECT_NE(Crc32c(flipped), crc) << "bit " << bit;
  }
}

}  // namespace
}  // namespace lepton
