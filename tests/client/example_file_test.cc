#include "client/example_file.h"

#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "client/example_prefetcher.h"
#include "client/feature_text.h"
#include "client/line_buffer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<ExampleReader> ReaderOf(const std::string& text,
                                        const ExampleFileOptions& options) {
  return std::make_unique<ExampleReader>(
      std::make_unique<std::istringstream>(text), "f.txt", options);
}

ExampleFileOptions Csv(int64_t num_features) {
  ExampleFileOptions o;
  o.format = FileFormat::kCsv;
  o.num_features = num_features;
  return o;
}

ExampleFileOptions Libsvm(int64_t num_features, bool one_based = false) {
  ExampleFileOptions o;
  o.format = FileFormat::kLibsvm;
  o.num_features = num_features;
  o.one_based = one_based;
  return o;
}

struct Read {
  std::vector<v1::Example> examples;
  std::vector<int64_t> lines;
  absl::Status status;  // the error that stopped the reading, or OK
};

Read ReadAll(ExampleReader& reader) {
  Read r;
  v1::Example e;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&e);
    if (!more.ok()) {
      r.status = more.status();
      return r;
    }
    if (!*more) return r;
    r.examples.push_back(e);
    r.lines.push_back(reader.line());
  }
}

// The first error of reading `text`, expected to be INVALID_ARGUMENT.
std::string FirstError(const std::string& text,
                       const ExampleFileOptions& options) {
  std::unique_ptr<ExampleReader> reader = ReaderOf(text, options);
  Read r = ReadAll(*reader);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
  return std::string(r.status.message());
}

TEST(CsvTest, ReadsLabelThenDenseFeatures) {
  auto reader = ReaderOf("1,0.5,0,2\n0,-1,+3,1e-2\n", Csv(3));
  Read r = ReadAll(*reader);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[0].label(), 1.0f);
  EXPECT_THAT(r.examples[0].features().dense(), ElementsAre(0.5f, 0.0f, 2.0f));
  EXPECT_TRUE(r.examples[0].features().indices().empty());
  EXPECT_FALSE(r.examples[0].has_weight());
  EXPECT_EQ(r.examples[1].label(), 0.0f);
  EXPECT_THAT(r.examples[1].features().dense(),
              ElementsAre(-1.0f, 3.0f, 0.01f));
  EXPECT_THAT(r.lines, ElementsAre(1, 2));
}

TEST(CsvTest, SkipsBlankLinesAndCarriageReturnsButCountsThem) {
  auto reader = ReaderOf("\n1, 2 ,3\r\n  \n\t\n0,4,5", Csv(2));
  Read r = ReadAll(*reader);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_THAT(r.examples[0].features().dense(), ElementsAre(2.0f, 3.0f));
  EXPECT_THAT(r.examples[1].features().dense(), ElementsAre(4.0f, 5.0f));
  EXPECT_THAT(r.lines, ElementsAre(2, 5));
}

TEST(CsvTest, TakesTheWidthFromTheFirstLineWhenNotGiven) {
  auto reader = ReaderOf("1,2,3\n4,5,6\n7,8\n", Csv(0));
  Read r = ReadAll(*reader);
  EXPECT_EQ(reader->num_features(), 2);
  EXPECT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.status.message(), "f.txt:3: expected 3 fields, got 2");
}

TEST(CsvTest, SkipsAHeaderOnlyWhenAskedTo) {
  ExampleFileOptions options = Csv(2);
  options.header = true;
  auto reader = ReaderOf("label,a,b\n1,2,3\n", options);
  Read r = ReadAll(*reader);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_THAT(r.lines, ElementsAre(2));
  // Without the option, the header is a bad line 1, and the message says
  // what to do about it.
  EXPECT_EQ(FirstError("label,a,b\n1,2,3\n", Csv(2)),
            "f.txt:1:1: field 1 (label): \"label\" is not a number (a header "
            "line? skip it with the header option)");
}

// A field's or a number's error names its column (1-based byte); a count of
// fields is the whole line's.
TEST(CsvTest, ErrorsNameTheFileAndLine) {
  EXPECT_EQ(FirstError("1,2,3\n1,2\n", Csv(2)),
            "f.txt:2: expected 3 fields, got 2");
  EXPECT_EQ(FirstError("1,2,3\n\n1,2,3,4\n", Csv(2)),
            "f.txt:3: expected 3 fields, got 4");
  EXPECT_EQ(FirstError("1,2,3\n0,x,3\n", Csv(2)),
            "f.txt:2:3: field 2 (feature 0): \"x\" is not a number");
  EXPECT_EQ(FirstError("1,2,3\n0,1,\n", Csv(2)),
            "f.txt:2:5: field 3 (feature 1): \"\" is not a number");
  EXPECT_EQ(FirstError("1,2,3\n1,2,nan\n", Csv(2)),
            "f.txt:2:5: field 3 (feature 1): \"nan\" is not finite");
  EXPECT_EQ(FirstError("1,2,3\n1,1e39,0\n", Csv(2)),
            "f.txt:2:3: field 2 (feature 0): \"1e39\" is out of the range of a "
            "float");
  EXPECT_EQ(FirstError("1,2,3\n1;2;3\n", Csv(2)),
            "f.txt:2: expected 3 fields, got 1");
  EXPECT_EQ(FirstError("1,2,3\ny,2,3\n", Csv(2)),
            "f.txt:2:1: field 1 (label): \"y\" is not a number");
  EXPECT_EQ(FirstError("7\n", Csv(0)),
            "f.txt:1: expected a label and at least one feature, got 1 field");
}

// Long lines take the fast paths (pairs of fields in registers, runs of 16
// "0" fields in one step); each value must be what ParseFloat reads.
TEST(CsvTest, LongLinesReadAsTheGeneralParserReadsThem) {
  std::mt19937 random(11);
  const std::vector<std::string> values = {
      "0",     "1",          "7",    "0.25",
      "-3.5",  "12.125",     "-0",   "0.003921569",
      "255",   "0.28627452", "1e-3", "+2",
      "100.5", "-0.000001",  "3.",   "123456789012345678"};
  const int kFeatures = 1000;
  std::string text;
  std::vector<std::vector<std::string>> rows;
  for (int line = 0; line < 50; ++line) {
    std::vector<std::string> row;
    while (static_cast<int>(row.size()) < kFeatures) {
      // Runs of "0" of any length, as an image's background has them.
      const int run = random() % 3 == 0 ? static_cast<int>(random() % 40) : 0;
      for (int i = 0; i < run && static_cast<int>(row.size()) < kFeatures;
           ++i) {
        row.push_back("0");
      }
      if (static_cast<int>(row.size()) < kFeatures) {
        // Even lines: only forms the fast paths take; odd lines: all (a
        // line with one "1e-3" is read by the general path).
        const size_t choices = line % 2 == 0 ? 10 : values.size();
        row.push_back(values[random() % choices]);
      }
    }
    text += "1";
    for (const std::string& v : row) text += "," + v;
    text += "\n";
    rows.push_back(std::move(row));
  }
  Read r = ReadAll(*ReaderOf(text, Csv(kFeatures)));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.examples.size(), rows.size());
  for (size_t line = 0; line < rows.size(); ++line) {
    const auto& dense = r.examples[line].features().dense();
    ASSERT_EQ(dense.size(), kFeatures);
    for (int k = 0; k < kFeatures; ++k) {
      const float expected = *ParseFloat(rows[line][k]);
      ASSERT_EQ(std::signbit(dense[k]), std::signbit(expected))
          << "line " << line + 1 << " feature " << k;
      ASSERT_EQ(dense[k], expected)
          << "line " << line + 1 << " feature " << k << ": " << rows[line][k];
    }
  }
  // A bad field deep in a long line: its column.
  std::string bad = "1";
  for (int k = 0; k < 40; ++k) bad += k == 33 ? ",0.x" : ",0";
  EXPECT_EQ(FirstError(bad + "\n", Csv(40)),
            "f.txt:1:69: field 35 (feature 33): \"0.x\" is not a number");
}

TEST(CsvTest, StaysFailedAfterAnError) {
  auto reader = ReaderOf("1,x\n1,2\n", Csv(1));
  v1::Example e;
  EXPECT_FALSE(reader->Next(&e).ok());
  absl::StatusOr<bool> again = reader->Next(&e);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(),
            "f.txt:1:3: field 2 (feature 0): \"x\" is not a number");
}

TEST(CsvTest, ParseCsvLineReusesTheExample) {
  v1::Example e;
  ASSERT_TRUE(ParseCsvLine("1,2,3", 2, &e).ok());
  ASSERT_TRUE(ParseCsvLine("0,4,5", 2, &e).ok());
  EXPECT_EQ(e.label(), 0.0f);
  EXPECT_THAT(e.features().dense(), ElementsAre(4.0f, 5.0f));
}

TEST(LibsvmTest, ReadsSparseFeatures) {
  auto reader = ReaderOf("1 0:0.5 3:2\n0\t2:1  1:-1 \n-1\n", Libsvm(4));
  Read r = ReadAll(*reader);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.examples.size(), 3u);
  EXPECT_EQ(r.examples[0].label(), 1.0f);
  EXPECT_THAT(r.examples[0].features().indices(), ElementsAre(0u, 3u));
  EXPECT_THAT(r.examples[0].features().values(), ElementsAre(0.5f, 2.0f));
  EXPECT_TRUE(r.examples[0].features().dense().empty());
  EXPECT_THAT(r.examples[1].features().indices(), ElementsAre(2u, 1u));
  EXPECT_THAT(r.examples[1].features().values(), ElementsAre(1.0f, -1.0f));
  // A label alone: an instance without nonzero features.
  EXPECT_EQ(r.examples[2].label(), -1.0f);
  EXPECT_TRUE(r.examples[2].features().indices().empty());
  EXPECT_THAT(r.lines, ElementsAre(1, 2, 3));
}

TEST(LibsvmTest, OneBasedIndicesStartAtOne) {
  auto reader = ReaderOf("+1 1:1 4:2\n", Libsvm(4, /*one_based=*/true));
  Read r = ReadAll(*reader);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_EQ(r.examples[0].label(), 1.0f);
  EXPECT_THAT(r.examples[0].features().indices(), ElementsAre(0u, 3u));
}

TEST(LibsvmTest, UncheckedRangeWithoutNumFeatures) {
  auto reader = ReaderOf("1 100000:1\n", Libsvm(0));
  Read r = ReadAll(*reader);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.examples[0].features().indices(), ElementsAre(100000u));
}

// A pair's error names the pair's column, a value's the value's.
TEST(LibsvmTest, ErrorsNameTheFileAndLine) {
  EXPECT_EQ(FirstError("1 0:1\n0 4:1\n", Libsvm(4)),
            "f.txt:2:3: index 4 is out of range: 4 features, indices 0..3");
  EXPECT_EQ(FirstError("1 1:1\n0 5:1\n", Libsvm(4, true)),
            "f.txt:2:3: index 5 is out of range: 4 features, indices 1..4");
  EXPECT_EQ(FirstError("\n\n1 0:1 2:1 0:3\n", Libsvm(4)),
            "f.txt:3:11: index 0 is repeated");
  EXPECT_EQ(FirstError("1 0:1\n", Libsvm(4, true)),
            "f.txt:1:3: pair 1: index 0 with 1-based indices");
  EXPECT_EQ(FirstError("1 0:1\n1 2\n", Libsvm(4)),
            "f.txt:2:3: pair 1: \"2\" is not index:value");
  EXPECT_EQ(FirstError("1 0:1 1:x\n", Libsvm(4)),
            "f.txt:1:9: pair 2: \"x\" is not a number");
  EXPECT_EQ(FirstError("1 -1:1\n", Libsvm(4)),
            "f.txt:1:3: pair 1: index \"-1\" is not a non-negative integer");
  EXPECT_EQ(FirstError("1 qid:3 1:1\n", Libsvm(4)),
            "f.txt:1:3: pair 1: index \"qid\" is not a non-negative integer");
  EXPECT_EQ(FirstError("1 0:1\nyes 0:1\n", Libsvm(4)),
            "f.txt:2:1: label: \"yes\" is not a number");
  EXPECT_EQ(FirstError("1 0:1\n1 0:inf\n", Libsvm(4)),
            "f.txt:2:5: pair 1: \"inf\" is not finite");
}

TEST(ExampleFileTest, OpenReadsAFileAndNamesItInErrors) {
  testing::TestScratchDir dir("lepton-example-file-test");
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.Path("example_file_test.csv");
  {
    std::ofstream out(path);
    out << "1,0.25,0.5\n0,1\n";
  }
  absl::StatusOr<std::unique_ptr<ExampleReader>> reader =
      ExampleReader::Open(path, Csv(2));
  ASSERT_TRUE(reader.ok()) << reader.status();
  Read r = ReadAll(**reader);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_THAT(r.examples[0].features().dense(), ElementsAre(0.25f, 0.5f));
  EXPECT_EQ(r.status.message(), path + ":2: expected 3 fields, got 2");
}

TEST(ExampleFileTest, OpenMissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<ExampleReader>> reader =
      ExampleReader::Open("/nonexistent/train.csv", Csv(2));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reader.status().message(),
            "/nonexistent/train.csv: cannot open: No such file or directory");
}

TEST(ExampleFileTest, FormatFromNameOrFlag) {
  EXPECT_EQ(*FileFormatOfPath("a/train.csv"), FileFormat::kCsv);
  EXPECT_EQ(*FileFormatOfPath("TRAIN.CSV"), FileFormat::kCsv);
  EXPECT_EQ(*FileFormatOfPath("a.libsvm"), FileFormat::kLibsvm);
  EXPECT_EQ(*FileFormatOfPath("a.svm"), FileFormat::kLibsvm);
  EXPECT_THAT(FileFormatOfPath("a.txt").status().message(),
              HasSubstr("a.txt: cannot tell the format"));
  EXPECT_EQ(*ParseFileFormat("csv"), FileFormat::kCsv);
  EXPECT_EQ(*ParseFileFormat("libsvm"), FileFormat::kLibsvm);
  EXPECT_EQ(ParseFileFormat("tsv").status().message(),
            "unknown file format \"tsv\" (expected csv, libsvm or vw)");
}

TEST(LineBufferTest, LinesOfAnyLengthAcrossBlocks) {
  // Blocks of 16 bytes: lines shorter, as long and far longer than one.
  const std::string long_line(100, 'x');
  std::istringstream in("a\r\n\n" + long_line + "\n0123456789abcdef\nlast");
  LineBuffer lines(&in, 16);
  std::vector<std::string> got;
  absl::string_view line;
  while (lines.Next(&line)) got.emplace_back(line);
  EXPECT_TRUE(lines.status().ok());
  EXPECT_THAT(got, ElementsAre("a", "", long_line, "0123456789abcdef", "last"));
  EXPECT_EQ(lines.line_number(), 5);
}

TEST(LineBufferTest, RefusesALineLongerThanTheLimitBeforeHoldingIt) {
  // A file without a single line end (found by csv_fuzzer, docs/fuzzing.md):
  // the buffer stops at the limit instead of growing with the file.
  std::istringstream in("short\n" + std::string(10000, '7'));
  LineBuffer lines(&in, 16, 100);
  absl::string_view line;
  ASSERT_TRUE(lines.Next(&line));
  EXPECT_EQ(line, "short");
  EXPECT_FALSE(lines.Next(&line));
  EXPECT_EQ(lines.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(lines.status().message(),
            "the line is longer than 100 bytes, the longest the reader takes");
  EXPECT_FALSE(lines.Next(&line));  // stays failed
  // Exactly at the limit is fine.
  std::istringstream exact(std::string(100, 'x') + "\nend");
  LineBuffer fits(&exact, 16, 100);
  ASSERT_TRUE(fits.Next(&line));
  EXPECT_EQ(line.size(), 100u);
  ASSERT_TRUE(fits.Next(&line));
  EXPECT_EQ(line, "end");
}

TEST(ExampleReaderTest, ALineTooLongIsAnErrorNamingIt) {
  auto reader = std::make_unique<ExampleReader>(
      std::make_unique<std::istringstream>("1,2\n" + std::string(500, '1')),
      "f.csv", Csv(1), 16, 100);
  Read r = ReadAll(*reader);
  EXPECT_EQ(r.examples.size(), 1u);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status.message(),
            "f.csv:2: the line is longer than 100 bytes, the longest the "
            "reader takes");
}

// Both ways of reading a batch report the first bad line of the file, even
// when a line that cannot be read follows it in the same batch (found by
// csv_fuzzer: the text way reported the later one).
TEST(ExampleReaderTest, BothWaysReportTheFirstBadLine) {
  const std::string text = "1,2\n1,x\n" + std::string(500, '1') + "\n";
  for (bool by_text : {false, true}) {
    auto reader = std::make_unique<ExampleReader>(
        std::make_unique<std::istringstream>(text), "f.csv", Csv(1), 16, 100);
    absl::Status status;
    ExampleBatch batch;
    BatchText lines;
    absl::StatusOr<int> n = by_text ? reader->NextBatchText(3, &lines)
                                    : reader->NextBatch(3, &batch);
    if (by_text && n.ok()) {
      status = ParseBatchText(Csv(1), reader->name(), lines, &batch);
    } else {
      status = n.status();
    }
    EXPECT_EQ(status.message(),
              "f.csv:2:3: field 2 (feature 0): \"x\" is not a number")
        << "by text: " << by_text;
    EXPECT_EQ(batch.size(), 1);
  }
  // Without the bad line, the lines before the unreadable one come first
  // and its error next, both ways.
  const std::string fine = "1,2\n0,3\n" + std::string(500, '1') + "\n";
  for (bool by_text : {false, true}) {
    auto reader = std::make_unique<ExampleReader>(
        std::make_unique<std::istringstream>(fine), "f.csv", Csv(1), 16, 100);
    ExampleBatch batch;
    BatchText lines;
    absl::StatusOr<int> n = by_text ? reader->NextBatchText(3, &lines)
                                    : reader->NextBatch(3, &batch);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 2);
    n = by_text ? reader->NextBatchText(3, &lines)
                : reader->NextBatch(3, &batch);
    EXPECT_EQ(n.status().message(),
              "f.csv:3: the line is longer than 100 bytes, the longest the "
              "reader takes");
  }
}

std::string CsvRows(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) absl::StrAppend(&text, i % 2, ",", i, ",0.5\n");
  return text;
}

TEST(ExampleReaderTest, NextBatchReusesTheBatch) {
  auto reader = ReaderOf(CsvRows(7), Csv(2));
  ExampleBatch batch;
  std::vector<int> sizes;
  std::vector<float> firsts;
  while (true) {
    absl::StatusOr<int> n = reader->NextBatch(3, &batch);
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) break;
    sizes.push_back(*n);
    firsts.push_back(batch.examples[0].features().dense(0));
    EXPECT_EQ(batch.lines.size(), static_cast<size_t>(*n));
  }
  EXPECT_THAT(sizes, ElementsAre(3, 3, 1));
  EXPECT_THAT(firsts, ElementsAre(0.0f, 3.0f, 6.0f));
}

class ExamplePrefetcherThreadsTest : public ::testing::TestWithParam<int> {};

TEST_P(ExamplePrefetcherThreadsTest, DeliversEveryExampleInOrder) {
  ExamplePrefetcher prefetcher(
      ReaderOf(CsvRows(1000), Csv(2)),
      {.batch_size = 7, .depth = 2, .threads = GetParam()});
  int64_t next = 0;
  while (true) {
    absl::StatusOr<ExampleBatch*> batch = prefetcher.Next();
    ASSERT_TRUE(batch.ok()) << batch.status();
    if (*batch == nullptr) break;
    EXPECT_LE((*batch)->size(), 7);
    for (int i = 0; i < (*batch)->size(); ++i) {
      EXPECT_EQ((*batch)->examples[i].features().dense(0), next);
      EXPECT_EQ((*batch)->lines[i], next + 1);
      ++next;
    }
  }
  EXPECT_EQ(next, 1000);
  // The end stays the end.
  absl::StatusOr<ExampleBatch*> again = prefetcher.Next();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, nullptr);
}

TEST_P(ExamplePrefetcherThreadsTest, TheErrorComesAfterTheBatchesBeforeIt) {
  std::string text = CsvRows(20);
  text += "1,x,2\n";  // line 21
  text += CsvRows(50);
  ExamplePrefetcher prefetcher(ReaderOf(text, Csv(2)),
                               {.batch_size = 8, .threads = GetParam()});
  int64_t examples = 0;
  absl::Status error;
  while (true) {
    absl::StatusOr<ExampleBatch*> batch = prefetcher.Next();
    if (!batch.ok()) {
      error = batch.status();
      break;
    }
    ASSERT_NE(*batch, nullptr);
    examples += (*batch)->size();
  }
  // Batches of lines 1-8 and 9-16; the bad line's batch is not delivered.
  EXPECT_EQ(examples, 16);
  EXPECT_EQ(error.message(),
            "f.txt:21:3: field 2 (feature 0): \"x\" is not a number");
  EXPECT_EQ(prefetcher.Next().status(), error);
}

TEST_P(ExamplePrefetcherThreadsTest, StopsWhenDestroyedEarly) {
  // The reading threads block on a full queue; destroying must not hang.
  ExamplePrefetcher prefetcher(
      ReaderOf(CsvRows(10000), Csv(2)),
      {.batch_size = 4, .depth = 1, .threads = GetParam()});
  absl::StatusOr<ExampleBatch*> batch = prefetcher.Next();
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ((*batch)->size(), 4);
}

TEST_P(ExamplePrefetcherThreadsTest, SkipsHeadersAndBlankLinesAndReadsLibsvm) {
  ExampleFileOptions options = Csv(2);
  options.header = true;
  ExamplePrefetcher csv(ReaderOf("a,b,c\n1,2,3\n\n  \n0,4,5\n", options),
                        {.batch_size = 1, .threads = GetParam()});
  std::vector<int64_t> lines;
  for (absl::StatusOr<ExampleBatch*> b = csv.Next(); b.ok() && *b != nullptr;
       b = csv.Next()) {
    lines.insert(lines.end(), (*b)->lines.begin(), (*b)->lines.end());
  }
  EXPECT_THAT(lines, ElementsAre(2, 5));
  ExamplePrefetcher libsvm(ReaderOf("1 0:1 3:2\n0 1:0.5\n", Libsvm(4)),
                           {.batch_size = 5, .threads = GetParam()});
  absl::StatusOr<ExampleBatch*> b = libsvm.Next();
  ASSERT_TRUE(b.ok() && *b != nullptr);
  ASSERT_EQ((*b)->size(), 2);
  EXPECT_THAT((*b)->examples[1].features().indices(), ElementsAre(1u));
  EXPECT_THAT((*b)->examples[1].features().values(), ElementsAre(0.5f));
}

INSTANTIATE_TEST_SUITE_P(Threads, ExamplePrefetcherThreadsTest,
                         ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace lepton::client
