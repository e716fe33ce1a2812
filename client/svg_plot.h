// svg_plot: a run's progressive metrics as one self-contained SVG file, for
// `lepton_client train|eval|watch --plot=FILE.svg` (docs/api.md).
//
//   PlotSeries loss;                    // at most kDefaultMaxPoints points
//   loss.Add(0, 256, 256, 256 * 0.69);  // a batch: examples (0, 256], their
//                                       // weight and the weighted loss sum
//   PlotMarkers markers;
//   markers.Add({2176, MarkerKind::kDrift, "DRIFT_DETECTED version=10"});
//   Plot plot;
//   plot.title = "model fm: train";
//   plot.charts.push_back({"loss", {{&loss, "loss", "per point", "#1f77b4"}}});
//   plot.markers = &markers;
//   std::string svg = RenderSvg(plot);
//
// Series: a point stands for an interval (x_begin, x_end] of the x axis (the
// examples of one or more batches) and keeps their total weight and the
// weighted sum of one value, so its mean is exact however many batches it
// merged, and so is a running mean computed from the points.
//
// Bounded memory: a series holds at most max_points + 1 points. Each new
// interval is merged into the last point while that point covers fewer than
// min_span() units of x; when a new point makes max_points + 1, neighbours
// are merged in pairs and min_span() becomes the points' mean span. So every
// point covers about the same span (one batch, until the run outgrows
// max_points batches), and a run of any length costs the same. Markers are
// bounded too: at most PlotMarkers::kMaxPerKind of each kind, the later ones
// counted (omitted()) and not drawn.
//
// The SVG: SVG 1.1 elements with presentation attributes only: no script, no
// style sheet, no external font (the generic sans-serif), image or link, so
// it looks the same in a browser, an image viewer or a document, and can be
// mailed or attached to a ticket. Charts are stacked and share the x axis.
// For tests and scripts, each drawn series is one
//   <polyline class="series" data-series="NAME" points="x,y ..."/>
// with one vertex per point (a point at its interval's middle; a running
// mean at the interval's end), and each marker one
//   <line class="marker KIND" data-x="X" ...><title>LABEL</title></line>
// per chart, KIND one of MarkerKindName() and X its x value.
//
// Thread safety: none; one thread uses a series, a marker set or a Plot.
#ifndef LEPTON_CLIENT_SVG_PLOT_H_
#define LEPTON_CLIENT_SVG_PLOT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace lepton::client {

struct PlotPoint {
  double x_begin = 0;
  double x_end = 0;
  double weight = 0;  // > 0
  double sum = 0;     // weighted sum of the value

  double mean() const { return sum / weight; }
};

class PlotSeries {
 public:
  static constexpr int kDefaultMaxPoints = 1000;

  // `max_points` >= 2.
  explicit PlotSeries(int max_points = kDefaultMaxPoints);

  // The examples of (x_begin, x_end]: their total weight and the weighted
  // sum of the value. Ignored unless weight > 0, x_end >= x_begin and
  // x_begin >= end() (a series only grows to the right; a gap is allowed).
  void Add(double x_begin, double x_end, double weight, double sum);

  const std::vector<PlotPoint>& points() const { return points_; }
  bool empty() const { return points_.empty(); }
  // The last point's x_end; 0 when empty.
  double end() const { return points_.empty() ? 0 : points_.back().x_end; }
  double min_span() const { return min_span_; }
  int max_points() const { return max_points_; }
  // Totals over every point (what merging must keep).
  double total_weight() const;
  double total_sum() const;

 private:
  // Merges neighbours in pairs, in place.
  void Halve();

  const int max_points_;
  double min_span_ = 0;
  std::vector<PlotPoint> points_;
};

enum class MarkerKind {
  kDrift,         // the drift detector flagged a drift
  kDriftWarning,  // it entered its warning zone
  kPolicy,        // a drift policy acted: boost, challenger started, ...
  kRefused,       // the guardrail refused an update
  kQuarantined,   // the guardrail held an update back
  kOther,         // quarantine released or dropped, classes added
};
inline constexpr int kMarkerKinds = 6;

// "drift", "drift-warning", "policy", "refused", "quarantined", "other".
absl::string_view MarkerKindName(MarkerKind kind);

struct PlotMarker {
  double x = 0;
  MarkerKind kind = MarkerKind::kOther;
  std::string label;  // the tooltip; cut to kMaxLabelBytes
};

class PlotMarkers {
 public:
  static constexpr int kMaxPerKind = 200;
  static constexpr size_t kMaxLabelBytes = 200;

  void Add(PlotMarker marker);

  const std::vector<PlotMarker>& markers() const { return markers_; }
  // Markers of `kind` added, drawn or not.
  int64_t count(MarkerKind kind) const {
    return counts_[static_cast<int>(kind)];
  }
  // Markers added beyond kMaxPerKind, not kept.
  int64_t omitted() const { return omitted_; }

 private:
  std::vector<PlotMarker> markers_;
  std::array<int64_t, kMarkerKinds> counts_{};
  int64_t omitted_ = 0;
};

// One line of a chart: a series' point means, or its running mean (the mean
// over every point up to each point's end).
struct PlotLine {
  const PlotSeries* series = nullptr;
  std::string name;   // data-series; unique in the plot
  std::string label;  // the legend
  std::string color;  // an SVG color: "#1f77b4"
  bool running_mean = false;
};

struct PlotChart {
  std::string title;
  std::vector<PlotLine> lines;
  // The y axis; unset: from 0 (or the lowest value, if negative) to the
  // highest value.
  std::optional<std::pair<double, double>> y_range;
};

struct Plot {
  std::string title;
  std::string subtitle;
  std::string x_label;
  std::vector<PlotChart> charts;
  const PlotMarkers* markers = nullptr;  // drawn on every chart; may be null
  // Text under the charts, one paragraph each, wrapped at spaces.
  std::vector<std::string> notes;
};

// The plot as a complete SVG document. The x axis spans every series'
// points and every marker.
std::string RenderSvg(const Plot& plot);

// `text` with &, <, >, " and ' escaped for XML text and attributes.
std::string XmlEscape(absl::string_view text);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_SVG_PLOT_H_
