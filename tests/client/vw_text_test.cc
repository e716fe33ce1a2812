// The .vw reader: every form of Vowpal Wabbit's text syntax (the file
// tests/client/data/every_form.vw), VW's labels, and errors that name the
// line and column.
#include "client/vw_text.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "client/example_file.h"
#include "client/vw_labels.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lepton::client {
namespace {

using ::testing::ElementsAre;

// "ns/name" for a feature without a value, "ns/name=value" otherwise, and
// "ns/" for a namespace without features: what the request carries.
std::vector<std::string> Sent(const v1::Features& f) {
  std::vector<std::string> out;
  for (const v1::Namespace& ns : f.namespaces()) {
    for (const v1::NamedFeature& nf : ns.features()) {
      out.push_back(
          absl::StrCat(ns.name(), "/", nf.name(),
                       nf.has_value() ? absl::StrCat("=", nf.value()) : ""));
    }
    if (ns.features().empty()) out.push_back(ns.name() + "/");
  }
  return out;
}

struct Read {
  std::vector<v1::Example> examples;
  std::vector<int64_t> lines;
  absl::Status status;
};

Read ReadAll(std::unique_ptr<ExampleReader> reader) {
  Read r;
  ExampleBatch batch;
  while (true) {
    absl::StatusOr<int> n = reader->NextBatch(3, &batch);
    for (int i = 0; i < batch.size(); ++i) {
      r.examples.push_back(batch.examples[i]);
      r.lines.push_back(batch.lines[i]);
    }
    if (!n.ok()) r.status = n.status();
    if (!n.ok() || *n == 0) return r;
  }
}

ExampleFileOptions Vw(VwLabels labels, int64_t num_classes = 0) {
  return {.format = FileFormat::kVw,
          .vw_labels = labels,
          .num_classes = num_classes};
}

Read ReadText(const std::string& text, const ExampleFileOptions& options) {
  return ReadAll(std::make_unique<ExampleReader>(
      std::make_unique<std::istringstream>(text), "f.vw", options));
}

std::string FirstError(const std::string& text,
                       const ExampleFileOptions& options) {
  const Read r = ReadText(text, options);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
  return std::string(r.status.message());
}

TEST(VwTextTest, EveryFormOfTheSyntax) {
  absl::StatusOr<std::unique_ptr<ExampleReader>> reader = ExampleReader::Open(
      LEPTON_TEST_DATA_DIR "/every_form.vw", Vw(VwLabels::kLogistic));
  ASSERT_TRUE(reader.ok()) << reader.status();
  const Read r = ReadAll(*std::move(reader));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.examples.size(), 18u);
  // Line 16 is blank: skipped, and counted.
  EXPECT_THAT(r.lines, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                   14, 15, 17, 18, 19));
  struct Expected {
    float label;
    float weight;  // -1: none sent
    std::vector<std::string> sent;
  };
  const std::vector<Expected> expected = {
      // 1 |user age:3 city=paris |ad id123
      {1, -1, {"user/age=3", "user/city=paris", "ad/id123"}},
      // -1 |a x: VW's -1 is Lepton's 0
      {0, -1, {"a/x"}},
      // 1 2.5 |a x: an importance weight
      {1, 2.5, {"a/x"}},
      // -1 0 |a x: weight 0 is sent as 0
      {0, 0, {"a/x"}},
      // 1 'tag1 |a x, 1 'tag2|a x: tags are dropped
      {1, -1, {"a/x"}},
      {1, -1, {"a/x"}},
      // -1 0.5 'tag3 |a x, 1 0.5 tag4|a x: importance and tag
      {0, 0.5, {"a/x"}},
      {1, 0.5, {"a/x"}},
      // -1 tag5|a x: a tag touching the '|' needs no quote
      {0, -1, {"a/x"}},
      // 1 |user:2 age:3 city=paris: the namespace weight multiplies
      {1, -1, {"user/age=6", "user/city=paris=2"}},
      // -1 |:0.5 x y:4: the namespace without a name, weighted
      {0, -1, {"/x=0.5", "/y=2"}},
      // 1 | x y: a blank after '|': the namespace without a name
      {1, -1, {"/x", "/y"}},
      // -1 |a a:-0.5 b:1e-2 c:+3 d:.25: values as floats are written
      {0, -1, {"a/a=-0.5", "a/b=0.01", "a/c=3", "a/d=0.25"}},
      // 1 |a x |a y: a namespace twice is sent twice (the server sums)
      {1, -1, {"a/x", "a/y"}},
      // -1 |a: a namespace without features
      {0, -1, {"a/"}},
      // tabs separate as blanks do
      {1, -1, {"a/x", "a/y", "b/z"}},
      // blanks around: label -1, importance 3
      {0, 3, {"a/x"}},
      // 1|a x: a lone label touching the '|' (VW would read a tag)
      {1, -1, {"a/x"}},
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("line ", r.lines[i]));
    const v1::Example& e = r.examples[i];
    EXPECT_EQ(e.label(), expected[i].label);
    if (expected[i].weight < 0) {
      EXPECT_FALSE(e.has_weight());
    } else {
      ASSERT_TRUE(e.has_weight());
      EXPECT_EQ(e.weight(), expected[i].weight);
    }
    EXPECT_EQ(Sent(e.features()), expected[i].sent);
    // Named features only: the server hashes them.
    EXPECT_TRUE(e.features().dense().empty());
    EXPECT_TRUE(e.features().indices().empty());
  }
}

TEST(VwTextTest, LabelsAsWrittenUnlessMapped) {
  Read r = ReadText("-1 |a x\n2 |a x\n", Vw(VwLabels::kAsIs));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.examples[0].label(), -1);  // the server will say what is wrong
  EXPECT_EQ(r.examples[1].label(), 2);
  r = ReadText("1 |a x\n10 |a y\n3 |a z\n", Vw(VwLabels::kMulticlass, 10));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.examples[0].label(), 0);
  EXPECT_EQ(r.examples[1].label(), 9);
  EXPECT_EQ(r.examples[2].label(), 2);
}

TEST(VwTextTest, ErrorsNameTheLineAndColumn) {
  const ExampleFileOptions as_is = Vw(VwLabels::kAsIs);
  EXPECT_EQ(FirstError("1 |a x\n1 a x\n", as_is),
            "f.vw:2: expected label |namespace feature ... (no '|')");
  EXPECT_EQ(FirstError("yes |a x\n", as_is),
            "f.vw:1:1: label: \"yes\" is not a number");
  EXPECT_EQ(FirstError("1 |a x\n  1 x |a\n", as_is),
            "f.vw:2:5: importance: \"x\" is not a number");
  EXPECT_EQ(FirstError("1 -2 |a x\n", as_is),
            "f.vw:1:3: importance: -2 is negative");
  EXPECT_EQ(FirstError("1 2 3 |a x\n", as_is),
            "f.vw:1:5: \"3\" after the label and the importance weight: VW's "
            "base (an initial prediction) is not supported, and a tag needs a "
            "quote ('tag) unless it touches the '|'");
  EXPECT_EQ(FirstError("'tag |a x\n", as_is),
            "f.vw:1:1: no label before the '|' (an unlabeled example cannot "
            "be learned from)");
  EXPECT_EQ(FirstError("1 |a x:y\n", as_is),
            "f.vw:1:8: namespace 1 (a): feature 1: \"x:y\": \"y\" is not a "
            "number");
  EXPECT_EQ(FirstError("1 |a x |b :3\n", as_is),
            "f.vw:1:11: namespace 2 (b): feature 1: \":3\" has no name");
  EXPECT_EQ(FirstError("1 |a:z x\n", as_is),
            "f.vw:1:6: namespace 1 (a): weight \"z\" is not a number");
  EXPECT_EQ(FirstError("1 |a x:nan\n", as_is),
            "f.vw:1:8: namespace 1 (a): feature 1: \"x:nan\": \"nan\" is not "
            "finite");
  EXPECT_EQ(FirstError("-1 |a x\n0 |a y\n", Vw(VwLabels::kLogistic)),
            "f.vw:2:1: label: 0 is not a VW label of a logistic model (-1 or "
            "1)");
  EXPECT_EQ(FirstError("  0 |a y\n", Vw(VwLabels::kMulticlass, 10)),
            "f.vw:1:3: label: 0 is not a VW label of a 10-class model "
            "(1..10)");
  EXPECT_EQ(FirstError("2.5 |a y\n", Vw(VwLabels::kMulticlass, 10)),
            "f.vw:1:1: label: 2.5 is not a VW label of a 10-class model "
            "(1..10)");
}

TEST(VwTextTest, ParseVwLineAloneGivesTheColumn) {
  v1::Example e;
  int64_t column = 0;
  EXPECT_FALSE(ParseVwLine("1 |a x |b y:q", &e, {}, &column).ok());
  EXPECT_EQ(column, 13);
}

VwLabelScan Detect(const std::string& text, v1::ModelType type,
                   int64_t num_classes = 0) {
  std::istringstream in(text);
  absl::StatusOr<VwLabelScan> scan = DetectVwLabels(&in, type, num_classes);
  EXPECT_TRUE(scan.ok()) << scan.status();
  return scan.ok() ? *scan : VwLabelScan();
}

TEST(VwLabelsTest, DetectsOnlyWhatOnlyVwsConventionExplains) {
  VwLabelScan s = Detect("1 |a\n1 |a\n-1 |a\n0 |a\n", v1::LOGISTIC_REGRESSION);
  EXPECT_EQ(s.labels, VwLabels::kLogistic);
  EXPECT_EQ(s.line, 3);
  EXPECT_EQ(s.label, -1);
  // A 0 first: Lepton's labels (a later -1 is then the server's error).
  s = Detect("1 |a\n0 |a\n-1 |a\n", v1::LOGISTIC_REGRESSION);
  EXPECT_EQ(s.labels, VwLabels::kAsIs);
  EXPECT_EQ(s.line, 2);
  // Only 1s: both conventions read them alike.
  s = Detect("1 |a\n1 2 'x|a\n", v1::LOGISTIC_REGRESSION);
  EXPECT_EQ(s.labels, VwLabels::kAsIs);
  EXPECT_EQ(s.line, 0);
  EXPECT_FALSE(s.ambiguous);
  // Unreadable lines are the reader's to report.
  s = Detect("x |a\nno bar\n 'tag|a\n-1 |a\n", v1::LOGISTIC_REGRESSION);
  EXPECT_EQ(s.labels, VwLabels::kLogistic);
  EXPECT_EQ(s.line, 4);
  // Softmax: K is VW's, 0 is Lepton's; 1..K-1 only is either.
  s = Detect("1 |a\n3 |a\n", v1::SOFTMAX_REGRESSION, 3);
  EXPECT_EQ(s.labels, VwLabels::kMulticlass);
  EXPECT_EQ(s.line, 2);
  s = Detect("2 |a\n0 |a\n3 |a\n", v1::SOFTMAX_REGRESSION, 3);
  EXPECT_EQ(s.labels, VwLabels::kAsIs);
  EXPECT_EQ(s.line, 2);
  s = Detect("1 |a\n2 |a\n", v1::SOFTMAX_REGRESSION, 3);
  EXPECT_EQ(s.labels, VwLabels::kAsIs);
  EXPECT_TRUE(s.ambiguous);
  // Linear regression: VW's labels are Lepton's.
  s = Detect("-1 |a\n", v1::LINEAR_REGRESSION);
  EXPECT_EQ(s.labels, VwLabels::kAsIs);
  EXPECT_EQ(s.line, 0);
}

TEST(VwLabelsTest, MapAndDescribe) {
  EXPECT_EQ(*MapVwLabel(-1, VwLabels::kLogistic, 0), 0);
  EXPECT_EQ(*MapVwLabel(1, VwLabels::kLogistic, 0), 1);
  EXPECT_FALSE(MapVwLabel(0, VwLabels::kLogistic, 0).ok());
  EXPECT_EQ(*MapVwLabel(4, VwLabels::kMulticlass, 4), 3);
  EXPECT_FALSE(MapVwLabel(5, VwLabels::kMulticlass, 4).ok());
  EXPECT_EQ(DescribeVwLabels(VwLabels::kLogistic, 0), "-1/1 -> 0/1");
  EXPECT_EQ(DescribeVwLabels(VwLabels::kMulticlass, 10), "1..10 -> 0..9");
}

}  // namespace
}  // namespace lepton::client
