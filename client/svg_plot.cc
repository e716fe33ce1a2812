#include "client/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace lepton::client {
namespace {

// The layout, in SVG user units (pixels at 100 %).
constexpr double kWidth = 960;
constexpr double kLeft = 70;          // y tick labels
constexpr double kRight = 32;         // room for the last x tick label
constexpr double kHeader = 60;        // title and subtitle
constexpr double kChartTop = 26;      // a chart's title and legend
constexpr double kChartHeight = 220;  // its plot area
constexpr double kChartBottom = 30;   // its x tick labels
constexpr double kLineHeight = 18;
constexpr char kFont[] = "font-family=\"sans-serif\"";

struct MarkerStyle {
  const char* color;
  const char* dash;  // empty: solid
  double width;
};

MarkerStyle StyleOf(MarkerKind kind) {
  switch (kind) {
    case MarkerKind::kDrift:
      return {"#d62728", "", 1.6};
    case MarkerKind::kDriftWarning:
      return {"#ff7f0e", "4,3", 1};
    case MarkerKind::kPolicy:
      return {"#2ca02c", "2,2", 1.2};
    case MarkerKind::kRefused:
      return {"#9467bd", "", 2};
    case MarkerKind::kQuarantined:
      return {"#8c564b", "6,2", 1.2};
    case MarkerKind::kOther:
      break;
  }
  return {"#7f7f7f", "1,2", 1};
}

// A step of 1, 2 or 5 times a power of ten giving about `target` ticks.
double NiceStep(double range, int target) {
  const double raw = range / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
}

// Tick labels: 25k, 1.5M, 0.25.
std::string FormatTick(double v) {
  if (v == 0) v = 0;  // not "-0"
  const double a = std::fabs(v);
  if (a >= 1e6) return absl::StrFormat("%gM", v / 1e6);
  if (a >= 1e4) return absl::StrFormat("%gk", v / 1e3);
  return absl::StrFormat("%g", v);
}

std::string FormatX(double x) { return absl::StrFormat("%.15g", x); }

// The vertices of a line: a point's mean at its interval's middle, or the
// running mean at its end.
std::vector<std::pair<double, double>> Vertices(const PlotLine& line) {
  std::vector<std::pair<double, double>> v;
  if (line.series == nullptr) return v;
  v.reserve(line.series->points().size());
  double weight = 0;
  double sum = 0;
  for (const PlotPoint& p : line.series->points()) {
    if (line.running_mean) {
      weight += p.weight;
      sum += p.sum;
      v.emplace_back(p.x_end, sum / weight);
    } else {
      v.emplace_back((p.x_begin + p.x_end) / 2, p.mean());
    }
  }
  return v;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

class Writer {
 public:
  explicit Writer(const Plot& plot) : plot_(plot) {}

  std::string Render() {
    Range x;
    for (const PlotChart& chart : plot_.charts) {
      for (const PlotLine& line : chart.lines) {
        if (line.series == nullptr || line.series->empty()) continue;
        x.Add(line.series->points().front().x_begin);
        x.Add(line.series->end());
      }
    }
    if (plot_.markers != nullptr) {
      for (const PlotMarker& m : plot_.markers->markers()) x.Add(m.x);
    }
    if (x.empty()) x = {0, 1};
    if (x.hi <= x.lo) x.hi = x.lo + 1;
    // A little room on the right, so that a marker at the last example (a
    // refusal that ended a run) is not hidden by the frame.
    x.hi += (x.hi - x.lo) * 0.015;
    x_ = x;

    std::vector<std::string> note_lines;
    for (const std::string& note : plot_.notes) Wrap(note, &note_lines);
    const double charts_height =
        plot_.charts.size() * (kChartTop + kChartHeight + kChartBottom);
    const int legend_lines = plot_.markers != nullptr ? 1 : 0;
    const double height = kHeader + charts_height +
                          kLineHeight * (1 + legend_lines + note_lines.size()) +
                          10;
    absl::StrAppendFormat(
        &out_,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
        "width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\">\n"
        "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
        kWidth, height, kWidth, height);
    Text(kLeft, 24, 16, "bold", "title", plot_.title);
    Text(kLeft, 44, 12, "normal", "subtitle", plot_.subtitle);
    double top = kHeader;
    for (const PlotChart& chart : plot_.charts) {
      DrawChart(chart, top);
      top += kChartTop + kChartHeight + kChartBottom;
    }
    top += kLineHeight - 6;
    TextAnchored(kLeft + PlotWidth() / 2, top, "middle", "x-label",
                 plot_.x_label);
    if (plot_.markers != nullptr) {
      top += kLineHeight;
      DrawMarkerLegend(top);
    }
    for (const std::string& line : note_lines) {
      top += kLineHeight;
      Text(kLeft, top, 11, "normal", "note", line);
    }
    out_ += "</svg>\n";
    return std::move(out_);
  }

 private:
  static double PlotWidth() { return kWidth - kLeft - kRight; }

  // Splits `text` at spaces into lines that fit the width (at 11 units a
  // character is about 6 wide).
  static void Wrap(absl::string_view text, std::vector<std::string>* lines) {
    constexpr size_t kMaxChars = 140;
    std::string line;
    for (absl::string_view word : absl::StrSplit(text, ' ')) {
      if (!line.empty() && line.size() + 1 + word.size() > kMaxChars) {
        lines->push_back(std::move(line));
        line.clear();
      }
      absl::StrAppend(&line, line.empty() ? "" : " ", word);
    }
    lines->push_back(std::move(line));
  }
  double X(double x) const {
    return kLeft + (x - x_.lo) / (x_.hi - x_.lo) * PlotWidth();
  }

  void Text(double x, double y, int size, const char* weight, const char* cls,
            absl::string_view text) {
    if (text.empty()) return;
    absl::StrAppendFormat(&out_,
                          "<text class=\"%s\" x=\"%g\" y=\"%g\" %s "
                          "font-size=\"%d\" font-weight=\"%s\" "
                          "fill=\"#222222\">%s</text>\n",
                          cls, x, y, kFont, size, weight, XmlEscape(text));
  }
  void TextAnchored(double x, double y, const char* anchor, const char* cls,
                    absl::string_view text) {
    if (text.empty()) return;
    absl::StrAppendFormat(&out_,
                          "<text class=\"%s\" x=\"%.1f\" y=\"%.1f\" %s "
                          "font-size=\"11\" text-anchor=\"%s\" "
                          "fill=\"#444444\">%s</text>\n",
                          cls, x, y, kFont, anchor, XmlEscape(text));
  }

  void DrawChart(const PlotChart& chart, double top) {
    absl::StrAppendFormat(&out_, "<g class=\"chart\">\n");
    Text(kLeft, top + 16, 13, "bold", "chart-title", chart.title);
    // The legend, after the title.
    double lx = kLeft + 10 + 8.0 * chart.title.size();
    for (const PlotLine& line : chart.lines) {
      absl::StrAppendFormat(
          &out_,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "stroke=\"%s\" stroke-width=\"2\"%s/>\n",
          lx, top + 12, lx + 18, top + 12, XmlEscape(line.color),
          line.running_mean ? " stroke-dasharray=\"6,3\"" : "");
      TextAnchored(lx + 22, top + 16, "start", "legend", line.label);
      lx += 40 + 6.0 * line.label.size();
    }

    const double y0 = top + kChartTop;  // the plot area's top
    const double y1 = y0 + kChartHeight;
    std::vector<std::vector<std::pair<double, double>>> vertices;
    Range y;
    for (const PlotLine& line : chart.lines) {
      vertices.push_back(Vertices(line));
      for (const auto& [vx, vy] : vertices.back()) y.Add(vy);
    }
    if (chart.y_range.has_value()) {
      y = {chart.y_range->first, chart.y_range->second};
    } else if (y.empty()) {
      y = {0, 1};
    } else {
      y.lo = std::min(y.lo, 0.0);
    }
    if (y.hi <= y.lo) y.hi = y.lo + 1;
    const double y_step = NiceStep(y.hi - y.lo, 5);
    if (!chart.y_range.has_value()) {
      y.hi = std::ceil(y.hi / y_step - 1e-9) * y_step;
      y.lo = std::floor(y.lo / y_step + 1e-9) * y_step;
    }
    auto Y = [&](double v) {
      const double py = y1 - (v - y.lo) / (y.hi - y.lo) * kChartHeight;
      return std::clamp(py, y0, y1);
    };

    absl::StrAppendFormat(
        &out_,
        "<rect x=\"%g\" y=\"%.1f\" width=\"%g\" "
        "height=\"%g\" fill=\"#fbfbfb\" stroke=\"#cccccc\"/>\n",
        kLeft, y0, PlotWidth(), kChartHeight);
    // Grid and tick labels.
    for (double v = std::ceil(y.lo / y_step - 1e-9) * y_step;
         v <= y.hi + y_step * 1e-9; v += y_step) {
      const double py = Y(v);
      absl::StrAppendFormat(&out_,
                            "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" "
                            "stroke=\"#e4e4e4\"/>\n",
                            kLeft, py, kLeft + PlotWidth(), py);
      TextAnchored(kLeft - 6, py + 4, "end", "y-tick",
                   FormatTick(std::fabs(v) < y_step * 1e-9 ? 0 : v));
    }
    const double x_step = NiceStep(x_.hi - x_.lo, 8);
    for (double v = std::ceil(x_.lo / x_step - 1e-9) * x_step;
         v <= x_.hi + x_step * 1e-9; v += x_step) {
      const double px = X(v);
      absl::StrAppendFormat(&out_,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                            "y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                            px, y0, px, y1);
      TextAnchored(px, y1 + 14, "middle", "x-tick", FormatTick(v));
    }
    // Markers behind the lines.
    if (plot_.markers != nullptr) {
      for (const PlotMarker& m : plot_.markers->markers()) {
        const MarkerStyle style = StyleOf(m.kind);
        const double px = X(m.x);
        absl::StrAppendFormat(
            &out_,
            "<line class=\"marker %s\" data-x=\"%s\" x1=\"%.1f\" y1=\"%.1f\" "
            "x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%g\"%s>"
            "<title>%s</title></line>\n",
            MarkerKindName(m.kind), FormatX(m.x), px, y0, px, y1, style.color,
            style.width,
            *style.dash == '\0'
                ? std::string()
                : absl::StrCat(" stroke-dasharray=\"", style.dash, "\""),
            XmlEscape(m.label));
      }
    }
    for (size_t i = 0; i < chart.lines.size(); ++i) {
      const PlotLine& line = chart.lines[i];
      if (vertices[i].empty()) continue;
      std::string points;
      for (const auto& [vx, vy] : vertices[i]) {
        absl::StrAppendFormat(&points, "%s%.1f,%.1f", points.empty() ? "" : " ",
                              X(vx), Y(vy));
      }
      absl::StrAppendFormat(
          &out_,
          "<polyline class=\"series\" data-series=\"%s\" fill=\"none\" "
          "stroke=\"%s\" stroke-width=\"%s\" stroke-linejoin=\"round\"%s "
          "points=\"%s\"/>\n",
          XmlEscape(line.name), XmlEscape(line.color),
          line.running_mean ? "1.2" : "1.5",
          line.running_mean ? " stroke-dasharray=\"6,3\"" : "", points);
    }
    out_ += "</g>\n";
  }

  void DrawMarkerLegend(double y) {
    double lx = kLeft;
    bool any = false;
    for (int k = 0; k < kMarkerKinds; ++k) {
      const MarkerKind kind = static_cast<MarkerKind>(k);
      const int64_t n = plot_.markers->count(kind);
      if (n == 0) continue;
      any = true;
      const MarkerStyle style = StyleOf(kind);
      absl::StrAppendFormat(
          &out_,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "stroke=\"%s\" stroke-width=\"%g\"%s/>\n",
          lx, y - 12, lx, y + 2, style.color, style.width,
          *style.dash == '\0'
              ? std::string()
              : absl::StrCat(" stroke-dasharray=\"", style.dash, "\""));
      const std::string label =
          absl::StrCat(MarkerKindName(kind), " (", n, ")");
      TextAnchored(lx + 6, y, "start", "marker-legend", label);
      lx += 20 + 6.5 * label.size();
    }
    std::string text = any ? "" : "no drift, policy or guardrail events";
    if (plot_.markers->omitted() > 0) {
      absl::StrAppend(&text, any ? "; " : "", plot_.markers->omitted(),
                      " more not drawn (at most ", PlotMarkers::kMaxPerKind,
                      " of each kind)");
    }
    TextAnchored(lx, y, "start", "marker-legend", text);
  }

  const Plot& plot_;
  Range x_;
  std::string out_;
};

}  // namespace

PlotSeries::PlotSeries(int max_points) : max_points_(std::max(max_points, 2)) {
  points_.reserve(max_points_ + 1);
}

void PlotSeries::Add(double x_begin, double x_end, double weight, double sum) {
  if (!(weight > 0) || !(x_end >= x_begin) || x_begin < end()) return;
  if (!points_.empty()) {
    PlotPoint& last = points_.back();
    if (last.x_end == x_begin && last.x_end - last.x_begin < min_span_) {
      last.x_end = x_end;
      last.weight += weight;
      last.sum += sum;
      return;
    }
  }
  points_.push_back({x_begin, x_end, weight, sum});
  if (static_cast<int>(points_.size()) > max_points_) Halve();
}

void PlotSeries::Halve() {
  size_t kept = 0;
  for (size_t i = 0; i < points_.size(); i += 2) {
    PlotPoint p = points_[i];
    if (i + 1 < points_.size()) {
      const PlotPoint& q = points_[i + 1];
      p.x_end = q.x_end;
      p.weight += q.weight;
      p.sum += q.sum;
    }
    points_[kept++] = p;
  }
  points_.resize(kept);
  double span = 0;
  for (const PlotPoint& p : points_) span += p.x_end - p.x_begin;
  min_span_ = std::max(min_span_, span / points_.size());
}

double PlotSeries::total_weight() const {
  double w = 0;
  for (const PlotPoint& p : points_) w += p.weight;
  return w;
}

double PlotSeries::total_sum() const {
  double s = 0;
  for (const PlotPoint& p : points_) s += p.sum;
  return s;
}

absl::string_view MarkerKindName(MarkerKind kind) {
  switch (kind) {
    case MarkerKind::kDrift:
      return "drift";
    case MarkerKind::kDriftWarning:
      return "drift-warning";
    case MarkerKind::kPolicy:
      return "policy";
    case MarkerKind::kRefused:
      return "refused";
    case MarkerKind::kQuarantined:
      return "quarantined";
    case MarkerKind::kOther:
      break;
  }
  return "other";
}

void PlotMarkers::Add(PlotMarker marker) {
  int64_t& n = counts_[static_cast<int>(marker.kind)];
  if (++n > kMaxPerKind) {
    ++omitted_;
    return;
  }
  if (marker.label.size() > kMaxLabelBytes) {
    // Cut at a character's start, never inside a UTF-8 sequence.
    size_t cut = kMaxLabelBytes - 3;
    while (cut > 0 &&
           (static_cast<unsigned char>(marker.label[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    marker.label.resize(cut);
    marker.label += "...";
  }
  markers_.push_back(std::move(marker));
}

std::string RenderSvg(const Plot& plot) { return Writer(plot).Render(); }

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no control characters but tab and newline.
        out += (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
                   ? ' '
                   : c;
    }
  }
  return out;
}

}  // namespace lepton::client
