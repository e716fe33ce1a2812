// SummarizeSvg: reads an SVG file of `lepton_client --plot`
// (client/svg_plot.h) through tests/testing/svg_summary.py, which parses it
// with Python's XML parser, so a file that is not well-formed XML fails the
// test, and lists its series, markers, texts and anything that would reach
// outside the file.
//
//   absl::StatusOr<SvgSummary> svg = SummarizeSvg(path);
//   ASSERT_TRUE(svg.ok()) << svg.status();
//   EXPECT_EQ(svg->series.at("loss").size(), 80u);
//
// The script's path comes from LEPTON_SVG_SUMMARY (a compile definition of
// the tests that include this header); it runs under /usr/bin/python3.
//
// Thread safety: a free function; each call runs its own process.
#ifndef LEPTON_TESTS_TESTING_SVG_SUMMARY_H_
#define LEPTON_TESTS_TESTING_SVG_SUMMARY_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {

struct SvgSummary {
  // data-series -> its polyline's vertices, in pixels.
  std::map<std::string, std::vector<std::pair<double, double>>> series;
  struct Marker {
    std::string kind;  // drift, drift-warning, policy, refused, ...
    double x = 0;      // data-x: the x value
    double pixel_x = 0;
  };
  // One per marker and chart.
  std::vector<Marker> markers;
  // (class, text) of every <text>.
  std::vector<std::pair<std::string, std::string>> texts;
  // Scripts, images, style sheets, links: must stay empty.
  std::vector<std::string> foreign;
};

inline absl::StatusOr<SvgSummary> SummarizeSvg(const std::string& path) {
  const RunResult r = Run({"/usr/bin/python3", LEPTON_SVG_SUMMARY, path});
  if (r.exit_code != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "svg_summary.py ", path, ": exit ", r.exit_code, ": ", r.err));
  }
  SvgSummary summary;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (line.empty()) continue;
    // The kind, a name, then the rest (a series' vertices, a text's words).
    const std::vector<std::string> f =
        absl::StrSplit(line, absl::MaxSplits(' ', 2));
    const auto bad = [&] {
      return absl::InternalError(
          absl::StrCat("svg_summary.py: bad line \"", line, "\""));
    };
    if (f[0] == "series" && f.size() == 3) {
      std::vector<std::pair<double, double>>& v = summary.series[f[1]];
      for (absl::string_view xy : absl::StrSplit(f[2], ' ')) {
        const std::pair<std::string, std::string> p = absl::StrSplit(xy, ',');
        double x = 0;
        double y = 0;
        if (!absl::SimpleAtod(p.first, &x) || !absl::SimpleAtod(p.second, &y))
          return bad();
        v.emplace_back(x, y);
      }
    } else if (f[0] == "marker" && f.size() == 3) {
      SvgSummary::Marker m;
      m.kind = f[1];
      const std::pair<std::string, std::string> xs = absl::StrSplit(f[2], ' ');
      if (!absl::SimpleAtod(xs.first, &m.x) ||
          !absl::SimpleAtod(xs.second, &m.pixel_x))
        return bad();
      summary.markers.push_back(m);
    } else if (f[0] == "text" && f.size() >= 2) {
      summary.texts.emplace_back(f[1], f.size() > 2 ? f[2] : "");
    } else if (f[0] == "foreign" && f.size() == 2) {
      summary.foreign.push_back(f[1]);
    } else {
      return bad();
    }
  }
  return summary;
}

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_SVG_SUMMARY_H_
