// Tests of the update log's segment format (core/storage/update_log_format.h):
// the bytes follow the documented layout, records round-trip, and the reader
// tells a torn tail (a crash in the middle of a write: dropped, and only in
// the newest segment) from corruption (DATA_LOSS naming file and offset).
#include "core/storage/update_log_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/update_types.h"
#include "core/util/byte_io.h"
#include "core/util/crc32c.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

constexpr absl::string_view kFile = "wal-00000000000000000001.log";

// DATA_LOSS whose message is exactly "<kFile>: offset <offset>: <what>...".
::testing::AssertionResult IsDataLoss(const absl::Status& s, uint64_t offset,
                                      absl::string_view what) {
  if (s.code() != absl::StatusCode::kDataLoss) {
    return ::testing::AssertionFailure() << "expected DATA_LOSS, got " << s;
  }
  const std::string prefix = absl::StrCat(kFile, ": offset ", offset, ": ");
  if (!absl::StartsWith(s.message(), prefix) ||
      !absl::StrContains(s.message().substr(prefix.size()), what)) {
    return ::testing::AssertionFailure()
           << "message \"" << s.message() << "\" is not \"" << prefix
           << "...\" containing \"" << what << "\"";
  }
  return ::testing::AssertionSuccess();
}

struct Record {
  uint64_t version = 0;
  std::string update_id;
  UpdateOptions options;
  std::vector<Example> examples;
};

UpdateOptions Options(int32_t epochs, std::optional<float> learning_rate) {
  UpdateOptions o;
  o.epochs = epochs;
  o.learning_rate = learning_rate;
  return o;
}

// Records of every shape: dense, sparse, mixed (within a batch and within
// one example, which the format allows), weights, ids and options.
std::vector<Record> SampleRecords() {
  std::vector<Record> r(4);
  r[0].version = 41;
  r[0].update_id = "client-1/0001";
  r[0].options = Options(1, std::nullopt);
  r[0].examples = {Dense({1.0f, -0.0f, 3.5f}, 1, 0.5f),
                   Dense({-1e-30f, 2.0f, 1e30f}, 0, 1)};
  r[1].version = 42;
  r[1].update_id = "";
  r[1].options = Options(3, 0.25f);
  r[1].examples = {Sparse({0, 5, 9}, {1.5f, -2.0f, 1e-30f}, 2, 1),
                   Sparse({}, {}, 0, 0)};
  r[2].version = 43;
  r[2].update_id = std::string("id\0\xFF", 4);
  r[2].options = Options(kMaxEpochs, 1e-3f);
  r[2].examples = {Dense({0.25f, 0.5f, 0.75f}, -4.5f, 2),
                   Sparse({7}, {-1.0f}, 1, 3)};
  Example both = Dense({9.0f, 8.0f}, 1, 1);
  both.features.indices = {1, 4294967295u};
  both.features.values = {0.5f, -0.5f};
  r[2].examples.push_back(both);
  // Version 2: a delayed label's served outputs, and the holdout flag.
  r[2].examples[1].served_outputs = {-0.0f, 1e30f, 2.5f};
  r[2].examples[1].holdout = true;
  r[2].examples[0].holdout = true;
  r[3].version = 44;
  r[3].update_id = "client-2/last";
  r[3].options = Options(2, std::nullopt);
  for (int i = 0; i < 5; ++i) {
    r[3].examples.push_back(
        Dense({static_cast<float>(i), -static_cast<float>(i) / 7}, i % 2));
  }
  return r;
}

void Append(const Record& r, std::string* out) {
  const std::vector<ExampleView> views = Views(r.examples);
  AppendUpdateRecord(r.version, r.update_id, r.options, views, out);
}

// A segment of `records`; offsets[i] is where record i starts.
std::string Segment(const std::vector<Record>& records,
                    std::vector<uint64_t>* offsets = nullptr,
                    uint64_t first_version = 41) {
  std::string s = EncodeSegmentHeader(first_version);
  for (const Record& r : records) {
    if (offsets != nullptr) offsets->push_back(s.size());
    Append(r, &s);
  }
  return s;
}

// Like BitEqual (test_support.h), but also for empty vectors, whose data()
// may be null, which memcmp must not be given.
bool BitEqualFloats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

void ExpectSameUpdate(const LoggedUpdate& got, const Record& want,
                      uint64_t offset) {
  EXPECT_EQ(got.offset, offset);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.update_id, want.update_id);
  EXPECT_EQ(got.options.epochs, want.options.epochs);
  EXPECT_EQ(got.options.learning_rate, want.options.learning_rate);
  ASSERT_EQ(got.examples.size(), want.examples.size());
  for (size_t i = 0; i < got.examples.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("example ", i));
    const Example& g = got.examples[i];
    const Example& w = want.examples[i];
    EXPECT_TRUE(BitEqualFloats({g.label, g.weight}, {w.label, w.weight}));
    EXPECT_TRUE(BitEqualFloats(g.features.dense, w.features.dense));
    EXPECT_EQ(g.features.indices, w.features.indices);
    EXPECT_TRUE(BitEqualFloats(g.features.values, w.features.values));
    EXPECT_TRUE(BitEqualFloats(g.served_outputs, w.served_outputs));
    EXPECT_EQ(g.holdout, w.holdout);
    EXPECT_EQ(g.prediction_id, 0u);  // never logged
  }
}

// A record frame around any payload, with correct checksums.
std::string Frame(absl::string_view payload) {
  std::string out;
  ByteWriter w(&out);
  const uint32_t size = static_cast<uint32_t>(payload.size());
  w.U32(size);
  w.U32(Crc32cExtend(0, &size, 4));
  w.U32(Crc32c(payload));
  out.append(payload.data(), payload.size());
  return out;
}

// The head of an update payload, up to and including the example count.
std::string PayloadHead(uint8_t kind, uint32_t n, uint8_t has_learning_rate) {
  std::string p;
  ByteWriter w(&p);
  w.U8(kind);
  w.U64(99);
  w.Bytes("id");
  w.U8(has_learning_rate);
  w.F32(0.5f);
  w.I32(1);
  w.U32(n);
  return p;
}
// Where the first example starts in a PayloadHead payload: after kind,
// version, the 2-byte id, has_learning_rate, learning_rate, epochs and n.
constexpr size_t kExamplesOffsetInPayload = 1 + 8 + (4 + 2) + 1 + 4 + 4 + 4;

TEST(UpdateLogFormatTest, SegmentHeaderFollowsTheDocumentedLayout) {
  const std::string header = EncodeSegmentHeader(0x0102030405060708ull);
  ASSERT_EQ(header.size(), kSegmentHeaderBytes);
  std::string want = "LEPTNWAL";
  ByteWriter w(&want);
  w.U32(kUpdateLogFormatVersion);
  w.U64(0x0102030405060708ull);
  w.U32(Crc32c(want));
  EXPECT_EQ(header, want);
}

// Format version 1, as written before served outputs and holdout (what old
// segments hold).
TEST(UpdateLogFormatTest, Version1RecordFollowsTheDocumentedLayout) {
  std::string payload;
  ByteWriter p(&payload);
  p.U8(1);    // kind: update
  p.U64(77);  // version
  p.Bytes("u");
  p.U8(1);  // has_learning_rate
  p.F32(0.5f);
  p.I32(2);     // epochs
  p.U32(2);     // examples
  p.F32(1.0f);  // dense: label, weight, d, values, s = 0
  p.F32(0.5f);
  p.U32(2);
  p.F32(3.0f);
  p.F32(-4.0f);
  p.U32(0);
  p.F32(0.0f);  // sparse: label, weight, d = 0, s, indices, values
  p.F32(1.0f);
  p.U32(0);
  p.U32(2);
  p.U32(3);
  p.U32(8);
  p.F32(0.25f);
  p.F32(-0.25f);

  std::vector<Example> examples = {Dense({3.0f, -4.0f}, 1.0f, 0.5f),
                                   Sparse({3, 8}, {0.25f, -0.25f}, 0, 1)};
  // Appends after what is already there.
  std::string out = "existing";
  AppendUpdateRecord(77, "u", Options(2, 0.5f), Views(examples), &out, 1);
  EXPECT_EQ(out, "existing" + Frame(payload));

  // Version 2: the same, each example followed by o, its served outputs and
  // holdout.
  examples[1].served_outputs = {1.5f, -2.5f};
  examples[1].holdout = true;
  std::string v2;
  ByteWriter q(&v2);
  q.U8(1);
  q.U64(77);
  q.Bytes("u");
  q.U8(1);
  q.F32(0.5f);
  q.I32(2);
  q.U32(2);
  q.F32(1.0f);  // dense example
  q.F32(0.5f);
  q.U32(2);
  q.F32(3.0f);
  q.F32(-4.0f);
  q.U32(0);
  q.U32(0);     // no served outputs
  q.U8(0);      // not holdout
  q.F32(0.0f);  // sparse example
  q.F32(1.0f);
  q.U32(0);
  q.U32(2);
  q.U32(3);
  q.U32(8);
  q.F32(0.25f);
  q.F32(-0.25f);
  q.U32(2);  // served outputs
  q.F32(1.5f);
  q.F32(-2.5f);
  q.U8(1);  // holdout
  out.clear();
  AppendUpdateRecord(77, "u", Options(2, 0.5f), Views(examples), &out);
  EXPECT_EQ(out, Frame(v2));
}

TEST(UpdateLogFormatTest, Version1SegmentsAreStillRead) {
  std::vector<Record> records = SampleRecords();
  std::string contents = EncodeSegmentHeader(41, 1);
  std::vector<uint64_t> offsets;
  for (const Record& r : records) {
    offsets.push_back(contents.size());
    AppendUpdateRecord(r.version, r.update_id, r.options, Views(r.examples),
                       &contents, 1);
  }
  absl::StatusOr<LogSegment> seg = ReadLogSegment(contents, kFile, false);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(seg->format_version, 1u);
  ASSERT_EQ(seg->records.size(), records.size());
  // Version 1 has neither: read as none and false.
  for (Record& r : records) {
    for (Example& e : r.examples) {
      e.served_outputs.clear();
      e.holdout = false;
    }
  }
  for (size_t i = 0; i < records.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("record ", i));
    ExpectSameUpdate(seg->records[i], records[i], offsets[i]);
  }
  // A version-2 record in a version-1 segment does not decode.
  std::string mixed = EncodeSegmentHeader(41, 1);
  Append(records[2], &mixed);
  EXPECT_EQ(ReadLogSegment(mixed, kFile, false).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(UpdateLogFormatTest, HoldoutFlagOtherThanZeroOrOneIsDataLoss) {
  const std::vector<Example> examples = {Sparse({}, {}, 1, 1)};
  std::string contents = EncodeSegmentHeader(1);
  AppendUpdateRecord(1, "", Options(1, std::nullopt), Views(examples),
                     &contents);
  // The holdout byte is the payload's last: set it to 2, fix the checksum.
  contents.back() = 2;
  const uint32_t crc = Crc32c(absl::string_view(contents).substr(
      kSegmentHeaderBytes + kRecordHeaderBytes));
  std::memcpy(contents.data() + kSegmentHeaderBytes + 8, &crc, 4);
  EXPECT_TRUE(IsDataLoss(ReadLogSegment(contents, kFile, true).status(),
                         contents.size() - 1, "holdout must be 0 or 1, got 2"));
}

TEST(UpdateLogFormatTest, RecordsRoundTrip) {
  const std::vector<Record> records = SampleRecords();
  std::vector<uint64_t> offsets;
  const std::string contents = Segment(records, &offsets, 41);
  for (bool newest : {true, false}) {
    absl::StatusOr<LogSegment> seg = ReadLogSegment(contents, kFile, newest);
    ASSERT_TRUE(seg.ok()) << seg.status();
    EXPECT_EQ(seg->first_version, 41u);
    EXPECT_EQ(seg->format_version, kUpdateLogFormatVersion);
    EXPECT_FALSE(seg->torn);
    EXPECT_EQ(seg->torn_reason, "");
    EXPECT_EQ(seg->valid_bytes, contents.size());
    ASSERT_EQ(seg->records.size(), records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("record ", i));
      ExpectSameUpdate(seg->records[i], records[i], offsets[i]);
    }
  }
}

TEST(UpdateLogFormatTest, RecordWithoutExamplesRoundTrips) {
  Record r;
  r.version = 1;
  r.options = Options(1, std::nullopt);
  const std::string contents = Segment({r}, nullptr, 1);
  absl::StatusOr<LogSegment> seg = ReadLogSegment(contents, kFile, true);
  ASSERT_TRUE(seg.ok()) << seg.status();
  ASSERT_EQ(seg->records.size(), 1u);
  ExpectSameUpdate(seg->records[0], r, kSegmentHeaderBytes);
}

TEST(UpdateLogFormatTest, HeaderOnlySegmentIsEmptyAndWhole) {
  const std::string contents = EncodeSegmentHeader(12345);
  absl::StatusOr<LogSegment> seg = ReadLogSegment(contents, kFile, false);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(seg->first_version, 12345u);
  EXPECT_TRUE(seg->records.empty());
  EXPECT_FALSE(seg->torn);
  EXPECT_EQ(seg->valid_bytes, kSegmentHeaderBytes);
}

TEST(UpdateLogFormatTest, TruncationAnywhereInTheLastRecordIsATornTail) {
  const std::vector<Record> records = SampleRecords();
  std::vector<uint64_t> offsets;
  const std::string contents = Segment(records, &offsets);
  const uint64_t last = offsets.back();
  // Cut at the record boundary: a whole, shorter segment.
  {
    absl::StatusOr<LogSegment> seg =
        ReadLogSegment(contents.substr(0, last), kFile, true);
    ASSERT_TRUE(seg.ok()) << seg.status();
    EXPECT_FALSE(seg->torn);
    EXPECT_EQ(seg->records.size(), records.size() - 1);
    EXPECT_EQ(seg->valid_bytes, last);
  }
  const std::string reason =
      absl::StrCat("record at offset ", last, " is incomplete (needs ");
  for (size_t cut = last + 1; cut < contents.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut));
    const absl::string_view prefix = absl::string_view(contents).substr(0, cut);
    absl::StatusOr<LogSegment> seg = ReadLogSegment(prefix, kFile, true);
    ASSERT_TRUE(seg.ok()) << seg.status();
    EXPECT_TRUE(seg->torn);
    EXPECT_EQ(seg->valid_bytes, last);
    EXPECT_TRUE(absl::StartsWith(seg->torn_reason, reason)) << seg->torn_reason;
    EXPECT_TRUE(absl::StrContains(seg->torn_reason,
                                  absl::StrCat(cut - last, " remain)")))
        << seg->torn_reason;
    ASSERT_EQ(seg->records.size(), records.size() - 1);
    for (size_t i = 0; i + 1 < records.size(); ++i) {
      ExpectSameUpdate(seg->records[i], records[i], offsets[i]);
    }
    // Only the newest segment may be torn.
    EXPECT_TRUE(IsDataLoss(ReadLogSegment(prefix, kFile, false).status(), last,
                           reason));
  }
}

TEST(UpdateLogFormatTest, IncompleteReasonGivesSizes) {
  std::vector<uint64_t> offsets;
  const std::string contents = Segment(SampleRecords(), &offsets);
  const uint64_t last = offsets.back();
  const uint64_t record_size = contents.size() - last;
  absl::StatusOr<LogSegment> seg =
      ReadLogSegment(contents.substr(0, last + 100), kFile, true);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(seg->torn_reason,
            absl::StrCat("record at offset ", last, " is incomplete (needs ",
                         record_size, " bytes, 100 remain)"));
  seg = ReadLogSegment(contents.substr(0, last + 5), kFile, true);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(seg->torn_reason,
            absl::StrCat("record at offset ", last,
                         " is incomplete (needs 12 bytes, 5 remain)"));
}

TEST(UpdateLogFormatTest, TrailingZerosAreATornTail) {
  const std::vector<Record> records = SampleRecords();
  const std::string good = Segment(records);
  for (size_t zeros : {1, 11, 12, 13, 100, 4096}) {
    SCOPED_TRACE(absl::StrCat(zeros, " zeros"));
    const std::string contents = good + std::string(zeros, '\0');
    absl::StatusOr<LogSegment> seg = ReadLogSegment(contents, kFile, true);
    ASSERT_TRUE(seg.ok()) << seg.status();
    EXPECT_TRUE(seg->torn);
    EXPECT_EQ(seg->records.size(), records.size());
    EXPECT_EQ(seg->valid_bytes, good.size());
    EXPECT_TRUE(absl::StrContains(
        seg->torn_reason,
        absl::StrCat(zeros, " zero bytes at offset ", good.size())))
        << seg->torn_reason;
    EXPECT_TRUE(IsDataLoss(ReadLogSegment(contents, kFile, false).status(),
                           good.size(), "zero bytes"));
  }
  // Zeros right after the header: a torn, empty segment.
  const std::string empty = EncodeSegmentHeader(41) + std::string(64, '\0');
  absl::StatusOr<LogSegment> seg = ReadLogSegment(empty, kFile, true);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_TRUE(seg->torn);
  EXPECT_TRUE(seg->records.empty());
  EXPECT_EQ(seg->valid_bytes, kSegmentHeaderBytes);
}

TEST(UpdateLogFormatTest, PayloadDamageInTheLastRecordIsATornTail) {
  const std::vector<Record> records = SampleRecords();
  std::vector<uint64_t> offsets;
  const std::string good = Segment(records, &offsets);
  const uint64_t last = offsets.back();
  // Every bit of the payload checksum and the payload: the record ends the
  // file, so it may be a write the crash cut short.
  for (size_t bit = (last + 8) * 8; bit < good.size() * 8; ++bit) {
    std::string bad = good;
    bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    SCOPED_TRACE(absl::StrCat("byte ", bit / 8, " bit ", bit % 8));
    absl::StatusOr<LogSegment> seg = ReadLogSegment(bad, kFile, true);
    ASSERT_TRUE(seg.ok()) << seg.status();
    EXPECT_TRUE(seg->torn);
    EXPECT_EQ(seg->valid_bytes, last);
    EXPECT_EQ(seg->records.size(), records.size() - 1);
    EXPECT_EQ(seg->torn_reason,
              absl::StrCat("record at offset ", last,
                           " fails its payload checksum and ends the file (a "
                           "write cut short)"));
    ASSERT_TRUE(IsDataLoss(ReadLogSegment(bad, kFile, false).status(), last,
                           "payload checksum"));
  }
}

TEST(UpdateLogFormatTest, HeaderDamageInTheLastRecordIsDataLoss) {
  // A crash cannot leave a complete header that fails its own checksum (the
  // header is written before the payload), so the tail is not "torn".
  std::vector<uint64_t> offsets;
  const std::string good = Segment(SampleRecords(), &offsets);
  const uint64_t last = offsets.back();
  for (size_t bit = last * 8; bit < (last + 8) * 8; ++bit) {
    std::string bad = good;
    bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    SCOPED_TRACE(absl::StrCat("byte ", bit / 8, " bit ", bit % 8));
    ASSERT_TRUE(IsDataLoss(ReadLogSegment(bad, kFile, true).status(), last,
                           "record header checksum mismatch"));
  }
}

TEST(UpdateLogFormatTest, AnyDamageToAnEarlierRecordIsDataLoss) {
  std::vector<uint64_t> offsets;
  const std::string good = Segment(SampleRecords(), &offsets);
  // Record 1 (of 0..3): every bit of its size, size checksum, payload
  // checksum and payload.
  const uint64_t start = offsets[1], end = offsets[2];
  for (size_t bit = start * 8; bit < end * 8; ++bit) {
    const size_t byte = bit / 8;
    std::string bad = good;
    bad[byte] ^= static_cast<char>(1 << (bit % 8));
    SCOPED_TRACE(absl::StrCat("byte ", byte, " bit ", bit % 8));
    for (bool newest : {true, false}) {
      const absl::Status s = ReadLogSegment(bad, kFile, newest).status();
      if (byte < start + 8) {
        ASSERT_TRUE(IsDataLoss(s, start, "record header checksum mismatch"));
      } else {
        ASSERT_TRUE(IsDataLoss(s, start, "record payload checksum mismatch"));
      }
    }
  }
}

TEST(UpdateLogFormatTest, ExactDataLossMessage) {
  const std::string good = Segment(SampleRecords());
  std::string bad = good;
  bad[kSegmentHeaderBytes + 2] ^= 1;
  EXPECT_EQ(ReadLogSegment(bad, kFile, true).status(),
            absl::DataLossError("wal-00000000000000000001.log: offset 24: "
                                "record header checksum mismatch"));
}

TEST(UpdateLogFormatTest, TornTailInAnOlderSegmentIsDataLoss) {
  std::vector<uint64_t> offsets;
  const std::string good = Segment(SampleRecords(), &offsets);
  const absl::Status s =
      ReadLogSegment(good.substr(0, good.size() - 1), kFile, false).status();
  EXPECT_TRUE(IsDataLoss(s, offsets.back(), "is incomplete"));
  EXPECT_TRUE(absl::StrContains(s.message(), "only the newest segment")) << s;
}

TEST(UpdateLogFormatTest, BadSegmentHeaderIsDataLoss) {
  const std::string good = Segment(SampleRecords());
  for (bool newest : {true, false}) {
    std::string bad = good;
    bad[3] = 'x';
    EXPECT_EQ(ReadLogSegment(bad, kFile, newest).status(),
              absl::DataLossError(
                  absl::StrCat(kFile,
                               ": offset 0: not a Lepton update log segment "
                               "(bad magic)")));

    // A flipped bit in first_version.
    bad = good;
    bad[13] ^= 0x10;
    EXPECT_EQ(ReadLogSegment(bad, kFile, newest).status(),
              absl::DataLossError(absl::StrCat(
                  kFile, ": offset 20: segment header checksum mismatch")));

    // A flipped bit in the checksum itself.
    bad = good;
    bad[22] ^= 0x01;
    EXPECT_TRUE(IsDataLoss(ReadLogSegment(bad, kFile, newest).status(), 20,
                           "segment header checksum mismatch"));
  }
}

TEST(UpdateLogFormatTest, AnotherFormatVersionSaysSo) {
  // A well-formed header of format version 3.
  std::string header = "LEPTNWAL";
  ByteWriter w(&header);
  w.U32(3);
  w.U64(1);
  w.U32(Crc32c(header));
  for (bool newest : {true, false}) {
    EXPECT_EQ(
        ReadLogSegment(header, kFile, newest).status(),
        absl::DataLossError(absl::StrCat(
            kFile, ": offset 8: format version 3; this server reads 1 to 2")));
  }
}

TEST(UpdateLogFormatTest, FileShorterThanItsHeader) {
  const std::string header = EncodeSegmentHeader(41);
  for (size_t n = 0; n < kSegmentHeaderBytes; ++n) {
    SCOPED_TRACE(absl::StrCat(n, " bytes"));
    const absl::string_view contents = absl::string_view(header).substr(0, n);
    // Newest: a crash right after creating the file.
    absl::StatusOr<LogSegment> seg = ReadLogSegment(contents, kFile, true);
    ASSERT_TRUE(seg.ok()) << seg.status();
    EXPECT_TRUE(seg->torn);
    EXPECT_TRUE(seg->records.empty());
    EXPECT_EQ(seg->valid_bytes, 0u);
    EXPECT_EQ(seg->first_version, 0u);
    EXPECT_TRUE(absl::StrContains(seg->torn_reason, "shorter than"))
        << seg->torn_reason;
    // Older: it was complete once.
    EXPECT_TRUE(IsDataLoss(ReadLogSegment(contents, kFile, false).status(), 0,
                           absl::StrCat("the file is ", n, " bytes")));
  }
}

TEST(UpdateLogFormatTest, UnknownRecordKindIsDataLoss) {
  std::vector<uint64_t> offsets;
  std::string contents = Segment(SampleRecords(), &offsets);
  const uint64_t unknown = contents.size();
  contents += Frame(PayloadHead(/*kind=*/2, 0, 0));
  // Last record or not, and in the newest segment too: its checksums match,
  // so it was written so.
  for (const std::string& c :
       {contents,
        contents + Segment({SampleRecords()[0]}).substr(kSegmentHeaderBytes)}) {
    for (bool newest : {true, false}) {
      EXPECT_TRUE(IsDataLoss(ReadLogSegment(c, kFile, newest).status(),
                             unknown + kRecordHeaderBytes,
                             absl::StrCat("record at offset ", unknown,
                                          ": unknown record kind 2")));
    }
  }
}

TEST(UpdateLogFormatTest, ChecksummedPayloadThatDoesNotDecodeIsDataLoss) {
  const uint64_t at = kSegmentHeaderBytes;
  const uint64_t payload_at = at + kRecordHeaderBytes;
  const std::string header = EncodeSegmentHeader(1);
  const auto read = [&](absl::string_view payload) {
    return ReadLogSegment(header + Frame(payload), kFile, true).status();
  };
  // Cut short inside an example.
  std::string p = PayloadHead(1, 1, 0);
  {
    ByteWriter w(&p);
    w.F32(1);
    w.F32(1);
    w.U32(10);
    for (int i = 0; i < 4; ++i) w.F32(1);
  }
  EXPECT_TRUE(IsDataLoss(read(p), payload_at + kExamplesOffsetInPayload + 12,
                         "the payload ends inside 10 dense features"));
  // Bytes after the last example.
  EXPECT_TRUE(IsDataLoss(read(PayloadHead(1, 0, 0) + "xyz"),
                         payload_at + kExamplesOffsetInPayload,
                         "3 unexpected bytes after the last example"));
  // A flag that is neither 0 nor 1.
  EXPECT_TRUE(IsDataLoss(read(PayloadHead(1, 0, 7)), payload_at + 1 + 8 + 4 + 2,
                         "has_learning_rate must be 0 or 1, got 7"));
  // An empty payload.
  EXPECT_TRUE(IsDataLoss(read(""), payload_at, "the payload ends inside"));
  // A record id longer than the payload.
  std::string long_id;
  {
    ByteWriter w(&long_id);
    w.U8(1);
    w.U64(5);
    w.U32(1000);
    w.Raw("abc", 3);
  }
  EXPECT_TRUE(IsDataLoss(read(long_id), payload_at + 9,
                         "the payload ends inside the update id"));
  EXPECT_TRUE(absl::StrContains(read(long_id).message(),
                                absl::StrCat("record at offset ", at, ": ")));
}

TEST(UpdateLogFormatTest, HugeCountsAreBoundedByThePayloadNotAllocated) {
  const std::string header = EncodeSegmentHeader(1);
  const uint64_t examples_at =
      kSegmentHeaderBytes + kRecordHeaderBytes + kExamplesOffsetInPayload;
  // 4 billion examples (~300 GB as Example objects) in a 24-byte payload.
  EXPECT_TRUE(
      IsDataLoss(ReadLogSegment(header + Frame(PayloadHead(1, 0xFFFFFFFFu, 0)),
                                kFile, true)
                     .status(),
                 examples_at, "4294967295 examples"));
  // One example claiming 4 billion dense floats, then 4 billion pairs.
  for (bool sparse : {false, true}) {
    std::string p = PayloadHead(1, 1, 0);
    ByteWriter w(&p);
    w.F32(0);
    w.F32(1);
    if (sparse) w.U32(0);
    w.U32(0xFFFFFFFFu);
    w.F32(1);
    w.F32(2);
    w.F32(3);
    w.F32(4);
    EXPECT_TRUE(IsDataLoss(
        ReadLogSegment(header + Frame(p), kFile, true).status(),
        examples_at + (sparse ? 16 : 12),
        sparse ? "4294967295 sparse features" : "4294967295 dense features"));
  }
}

TEST(UpdateLogFormatTest, PayloadSizeAboveTheBoundIsDataLossNotTorn) {
  // A header whose size checksum matches but whose size is past the sanity
  // bound: written so, not cut short, even though it runs past the end.
  std::string contents = EncodeSegmentHeader(1);
  ByteWriter w(&contents);
  const uint32_t size = kMaxRecordPayloadBytes + 1;
  w.U32(size);
  w.U32(Crc32cExtend(0, &size, 4));
  w.U32(0);
  contents += "some payload";
  EXPECT_TRUE(IsDataLoss(ReadLogSegment(contents, kFile, true).status(),
                         kSegmentHeaderBytes, "exceeds the maximum"));
}

}  // namespace
}  // namespace lepton
