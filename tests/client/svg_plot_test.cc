// client/svg_plot.h: a series' points and their merging in bounded memory,
// the markers' bound, and the SVG document, read back through Python's XML
// parser (tests/testing/svg_summary.h): one polyline per series with one
// vertex per point, markers where their x is, nothing that reaches outside
// the file, and text escaped.
#include "client/svg_plot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/svg_summary.h"

namespace lepton::client {
namespace {

using ::lepton::testing::SummarizeSvg;
using ::lepton::testing::SvgSummary;

TEST(PlotSeriesTest, OnePointPerIntervalUntilFull) {
  PlotSeries s(8);
  s.Add(0, 10, 10, 5);
  s.Add(10, 30, 20, 4);
  ASSERT_EQ(s.points().size(), 2u);
  EXPECT_EQ(s.points()[0].x_begin, 0);
  EXPECT_EQ(s.points()[0].x_end, 10);
  EXPECT_DOUBLE_EQ(s.points()[0].mean(), 0.5);
  EXPECT_DOUBLE_EQ(s.points()[1].mean(), 0.2);
  EXPECT_EQ(s.end(), 30);
  EXPECT_EQ(s.min_span(), 0);
}

TEST(PlotSeriesTest, IgnoresEmptyAndBackwardIntervals) {
  PlotSeries s(8);
  s.Add(0, 10, 10, 5);
  s.Add(10, 20, 0, 0);   // no weight
  s.Add(5, 15, 10, 1);   // starts before the end
  s.Add(20, 15, 10, 1);  // ends before it begins
  ASSERT_EQ(s.points().size(), 1u);
  s.Add(40, 50, 10, 1);  // after a gap
  ASSERT_EQ(s.points().size(), 2u);
  EXPECT_EQ(s.points()[1].x_begin, 40);
}

TEST(PlotSeriesTest, MergesNeighboursWhenFull) {
  PlotSeries s(4);
  for (int i = 0; i < 5; ++i) s.Add(i * 10, (i + 1) * 10, 10, i * 10.0);
  // Five points made four and a half: pairs merged, the fifth alone.
  ASSERT_EQ(s.points().size(), 3u);
  EXPECT_EQ(s.points()[0].x_end, 20);
  EXPECT_DOUBLE_EQ(s.points()[0].mean(), 0.5);  // (0 + 10) / 20
  EXPECT_EQ(s.points()[1].x_begin, 20);
  EXPECT_EQ(s.points()[1].x_end, 40);
  EXPECT_DOUBLE_EQ(s.points()[1].mean(), 2.5);  // (20 + 30) / 20
  EXPECT_EQ(s.points()[2].x_begin, 40);
  EXPECT_NEAR(s.min_span(), 50.0 / 3, 1e-9);
  // The next interval joins the last point, which is under min_span().
  s.Add(50, 60, 10, 50);
  ASSERT_EQ(s.points().size(), 3u);
  EXPECT_EQ(s.points()[2].x_end, 60);
  EXPECT_DOUBLE_EQ(s.points()[2].mean(), 4.5);  // (40 + 50) / 20
}

// A long run stays within max_points + 1 points, each contiguous with the
// next and of about the same span, and keeps every weight and sum.
TEST(PlotSeriesTest, BoundedWhateverTheRunsLength) {
  constexpr int kMax = 100;
  PlotSeries s(kMax);
  double weight = 0;
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double w = 1 + i % 3;
    const double v = (i % 7) * w;
    s.Add(i, i + 1, w, v);
    weight += w;
    sum += v;
    ASSERT_LE(s.points().size(), static_cast<size_t>(kMax) + 1) << i;
  }
  EXPECT_GE(s.points().size(), static_cast<size_t>(kMax) / 2);
  EXPECT_EQ(s.total_weight(), weight);  // integers: exact
  EXPECT_EQ(s.total_sum(), sum);
  EXPECT_EQ(s.points().front().x_begin, 0);
  EXPECT_EQ(s.end(), 100000);
  double widest = 0;
  for (size_t i = 0; i < s.points().size(); ++i) {
    const PlotPoint& p = s.points()[i];
    if (i > 0) {
      EXPECT_EQ(p.x_begin, s.points()[i - 1].x_end);
    }
    // The last point may still be filling up.
    if (i + 1 < s.points().size())
      widest = std::max(widest, p.x_end - p.x_begin);
  }
  EXPECT_LE(widest, 4 * s.min_span());
}

TEST(PlotMarkersTest, AtMostMaxPerKindTheRestCounted) {
  PlotMarkers m;
  for (int i = 0; i < PlotMarkers::kMaxPerKind + 5; ++i) {
    m.Add({static_cast<double>(i), MarkerKind::kDriftWarning, "w"});
  }
  m.Add({3, MarkerKind::kDrift, "d"});
  EXPECT_EQ(m.markers().size(),
            static_cast<size_t>(PlotMarkers::kMaxPerKind) + 1);
  EXPECT_EQ(m.count(MarkerKind::kDriftWarning), PlotMarkers::kMaxPerKind + 5);
  EXPECT_EQ(m.count(MarkerKind::kDrift), 1);
  EXPECT_EQ(m.omitted(), 5);
}

TEST(PlotMarkersTest, LongLabelsCutBetweenCharacters) {
  PlotMarkers m;
  std::string label;
  while (label.size() < 2 * PlotMarkers::kMaxLabelBytes) label += "é";
  m.Add({0, MarkerKind::kOther, label});
  const std::string& kept = m.markers()[0].label;
  EXPECT_LE(kept.size(), PlotMarkers::kMaxLabelBytes);
  EXPECT_TRUE(absl::EndsWith(kept, "é...")) << kept;
}

class SvgPlotTest : public testing::ScratchDirTest {
 protected:
  // Renders `plot` to a file and reads it back.
  SvgSummary RenderAndRead(const Plot& plot) {
    const std::string svg = RenderSvg(plot);
    EXPECT_FALSE(absl::StrContains(svg, "<script"));
    const std::string path = Path("plot.svg");
    std::ofstream(path) << svg;
    absl::StatusOr<SvgSummary> summary = SummarizeSvg(path);
    EXPECT_TRUE(summary.ok()) << summary.status();
    return summary.ok() ? *summary : SvgSummary{};
  }
};

TEST_F(SvgPlotTest, OnePolylinePerSeriesAndMarkersWhereTheirXIs) {
  PlotSeries loss;
  PlotSeries accuracy;
  for (int i = 0; i < 40; ++i) {
    // Batches of 50: the loss jumps at 1000, the accuracy falls.
    const double l = i < 20 ? 0.3 : 1.2;
    loss.Add(i * 50, (i + 1) * 50, 50, 50 * l);
    accuracy.Add(i * 50, (i + 1) * 50, 50, 50 * (i < 20 ? 0.9 : 0.1));
  }
  PlotMarkers markers;
  markers.Add({1000, MarkerKind::kDrift, "DRIFT_DETECTED version=21"});
  markers.Add({950, MarkerKind::kDriftWarning, "DRIFT_WARNING <&\"'>"});
  markers.Add({1500, MarkerKind::kRefused, "UPDATE_REFUSED"});
  Plot plot;
  plot.title = "model m: train a&b.csv";
  plot.x_label = "examples";
  plot.charts.push_back(
      {"progressive log loss",
       {{&loss, "loss", "mean", "#1f77b4", false},
        {&loss, "loss-running-mean", "running mean", "#0b3a66", true}},
       std::nullopt});
  plot.charts.push_back({"progressive accuracy",
                         {{&accuracy, "accuracy", "mean", "#2a9d8f", false}},
                         std::make_pair(0.0, 1.0)});
  plot.markers = &markers;
  plot.notes = {"40 points <none merged>"};
  const SvgSummary svg = RenderAndRead(plot);

  EXPECT_TRUE(svg.foreign.empty()) << svg.foreign[0];
  ASSERT_EQ(svg.series.size(), 3u);
  const auto& l = svg.series.at("loss");
  const auto& running = svg.series.at("loss-running-mean");
  const auto& a = svg.series.at("accuracy");
  ASSERT_EQ(l.size(), 40u);
  ASSERT_EQ(running.size(), 40u);
  ASSERT_EQ(a.size(), 40u);
  // SVG's y grows downwards: the loss jumps up (smaller y) at point 20, the
  // accuracy falls.
  EXPECT_GT(l[19].second, l[20].second);
  EXPECT_LT(a[19].second, a[20].second);
  // Evenly spaced x, increasing.
  for (size_t i = 1; i < l.size(); ++i) {
    EXPECT_NEAR(l[i].first - l[i - 1].first, l[1].first - l[0].first, 0.15);
  }
  // Each marker once per chart; its pixel is where x is: the running mean's
  // vertex i sits at x = 50 (i + 1).
  ASSERT_EQ(svg.markers.size(), 6u);
  for (const SvgSummary::Marker& m : svg.markers) {
    const size_t i = static_cast<size_t>(m.x / 50) - 1;
    EXPECT_NEAR(m.pixel_x, running[i].first, 0.15) << m.kind << " " << m.x;
  }
  EXPECT_EQ(svg.markers[0].kind, "drift");
  EXPECT_EQ(svg.markers[0].x, 1000);
  EXPECT_EQ(svg.markers[1].kind, "drift-warning");
  EXPECT_EQ(svg.markers[1].x, 950);
  EXPECT_EQ(svg.markers[2].kind, "refused");
  EXPECT_EQ(svg.markers[2].x, 1500);
  // Text comes back unescaped.
  EXPECT_THAT(svg.texts, ::testing::Contains(std::make_pair(
                             std::string("title"),
                             std::string("model m: train a&b.csv"))));
  EXPECT_THAT(svg.texts, ::testing::Contains(std::make_pair(
                             std::string("note"),
                             std::string("40 points <none merged>"))));
}

TEST_F(SvgPlotTest, AMergedSeriesDrawsItsPointsOnly) {
  PlotSeries loss(50);
  for (int i = 0; i < 1000; ++i) loss.Add(i, i + 1, 1, 0.5);
  Plot plot;
  plot.charts.push_back(
      {"loss", {{&loss, "loss", "mean", "#000000", false}}, std::nullopt});
  const SvgSummary svg = RenderAndRead(plot);
  EXPECT_EQ(svg.series.at("loss").size(), loss.points().size());
  EXPECT_LE(loss.points().size(), 51u);
  EXPECT_TRUE(svg.markers.empty());
}

TEST_F(SvgPlotTest, LongNotesWrapAtSpaces) {
  Plot plot;
  std::string note;
  for (int i = 0; i < 100; ++i)
    absl::StrAppend(&note, i == 0 ? "" : " ", "word");
  plot.notes = {note};
  const SvgSummary svg = RenderAndRead(plot);
  std::string joined;
  int lines = 0;
  for (const auto& [cls, text] : svg.texts) {
    if (cls != "note") continue;
    ++lines;
    EXPECT_LE(text.size(), 140u);
    absl::StrAppend(&joined, joined.empty() ? "" : " ", text);
  }
  EXPECT_EQ(lines, 4);  // 499 characters
  EXPECT_EQ(joined, note);
}

// The checker itself: what is not XML fails.
TEST_F(SvgPlotTest, TheCheckerRefusesBrokenXml) {
  const std::string path = Path("broken.svg");
  std::ofstream(path) << "<svg xmlns=\"http://www.w3.org/2000/svg\"><g></svg>";
  EXPECT_FALSE(SummarizeSvg(path).ok());
}

TEST_F(SvgPlotTest, EmptyPlotIsStillADocument) {
  PlotSeries empty;
  PlotMarkers none;
  Plot plot;
  plot.charts.push_back(
      {"loss", {{&empty, "loss", "mean", "#000000", false}}, std::nullopt});
  plot.markers = &none;
  const SvgSummary svg = RenderAndRead(plot);
  EXPECT_TRUE(svg.series.empty());
  EXPECT_TRUE(svg.markers.empty());
}

}  // namespace
}  // namespace lepton::client
