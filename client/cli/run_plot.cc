#include "client/cli/run_plot.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/commands.h"

namespace lepton::client {

std::optional<MarkerKind> MarkerKindOf(v1::ModelEventKind kind) {
  switch (kind) {
    case v1::DRIFT_DETECTED:
      return MarkerKind::kDrift;
    case v1::DRIFT_WARNING:
      return MarkerKind::kDriftWarning;
    case v1::BOOST_STARTED:
    case v1::CHALLENGER_STARTED:
    case v1::CHALLENGER_PROMOTED:
    case v1::CHALLENGER_DROPPED:
      return MarkerKind::kPolicy;
    case v1::UPDATE_REFUSED:
      return MarkerKind::kRefused;
    case v1::UPDATE_QUARANTINED:
      return MarkerKind::kQuarantined;
    case v1::QUARANTINE_RELEASED:
    case v1::QUARANTINE_DROPPED:
    case v1::CLASSES_ADDED:
      return MarkerKind::kOther;
    default:
      return std::nullopt;
  }
}

absl::Status CheckPlotPath(absl::string_view path) {
  if (path.empty() || path == "-") {
    return absl::InvalidArgumentError(
        absl::StrCat("a file name is needed, got \"", path, "\""));
  }
  return absl::OkStatus();
}

RunPlot::RunPlot(Options options)
    : options_(std::move(options)),
      loss_(options_.max_points),
      accuracy_(options_.max_points) {}

void RunPlot::AddInterval(double x_begin, double x_end, double weight,
                          double loss_sum, std::optional<double> correct_sum) {
  absl::MutexLock lock(&mu_);
  AddIntervalLocked(x_begin, x_end, weight, loss_sum, correct_sum);
}

void RunPlot::AddIntervalLocked(double x_begin, double x_end, double weight,
                                double loss_sum,
                                std::optional<double> correct_sum) {
  if (!(weight > 0)) return;
  loss_.Add(x_begin, x_end, weight, loss_sum);
  if (options_.classifier && correct_sum.has_value()) {
    accuracy_.Add(x_begin, x_end, weight, *correct_sum);
  }
  ++generation_;
}

void RunPlot::AddModelInfo(const v1::ModelInfo& info) {
  Totals now;
  now.examples = static_cast<double>(info.examples_seen());
  now.weight = info.weight_seen();
  now.loss_sum = info.progressive_loss() * now.weight;
  now.correct_sum = info.progressive_accuracy() * now.weight;
  absl::MutexLock lock(&mu_);
  if (last_info_.has_value() && now.examples > last_info_->examples &&
      last_info_->examples >= loss_.end()) {
    AddIntervalLocked(last_info_->examples, now.examples,
                      now.weight - last_info_->weight,
                      now.loss_sum - last_info_->loss_sum,
                      now.correct_sum - last_info_->correct_sum);
  }
  last_info_ = now;
}

void RunPlot::AddEvent(const v1::ModelEvent& event) {
  const std::optional<MarkerKind> kind = MarkerKindOf(event.kind());
  if (!kind.has_value()) return;
  std::string label =
      absl::StrCat(v1::ModelEventKind_Name(event.kind()),
                   " version=", event.version(), " example=", event.example());
  if (!event.detail().empty()) absl::StrAppend(&label, ": ", event.detail());
  absl::MutexLock lock(&mu_);
  markers_.Add({static_cast<double>(event.example()) - origin_, *kind,
                std::move(label)});
  ++generation_;
}

void RunPlot::SetEventOrigin(int64_t origin) {
  absl::MutexLock lock(&mu_);
  origin_ = origin;
}

void RunPlot::AddNote(std::string note) {
  absl::MutexLock lock(&mu_);
  notes_.push_back(std::move(note));
  ++generation_;
}

uint64_t RunPlot::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

std::string RunPlot::Render() const {
  absl::MutexLock lock(&mu_);
  Plot plot;
  plot.title = options_.title;
  plot.subtitle = options_.subtitle;
  plot.x_label = options_.x_label;
  auto chart = [&](std::string title, const PlotSeries* series,
                   std::string name, std::string color,
                   std::string running_color) {
    PlotChart c;
    c.title = std::move(title);
    c.lines.push_back({series, name, "mean over each point's examples",
                       std::move(color), false});
    c.lines.push_back({series, absl::StrCat(name, "-running-mean"),
                       options_.running_label, std::move(running_color), true});
    return c;
  };
  const absl::string_view prefix = options_.progressive ? "progressive " : "";
  plot.charts.push_back(chart(absl::StrCat(prefix, options_.loss_name), &loss_,
                              "loss", "#1f77b4", "#0b3a66"));
  if (options_.classifier) {
    plot.charts.push_back(chart(absl::StrCat(prefix, "accuracy"), &accuracy_,
                                "accuracy", "#2a9d8f", "#145c53"));
    plot.charts.back().y_range = std::make_pair(0.0, 1.0);
  }
  if (options_.markers) plot.markers = &markers_;
  std::string points = absl::StrCat(loss_.points().size(),
                                    " points of at most ", loss_.max_points());
  if (loss_.min_span() > 0) {
    absl::StrAppendFormat(&points,
                          ", each at least %.0f examples (neighbours merged "
                          "in pairs when the points ran out)",
                          loss_.min_span());
  } else {
    absl::StrAppend(&points, ", none merged");
  }
  plot.notes.push_back(absl::StrCat(points, "."));
  for (const std::string& note : notes_) plot.notes.push_back(note);
  return RenderSvg(plot);
}

absl::Status RunPlot::Write(const std::string& path) const {
  return WriteBlobFile(path, Render());
}

}  // namespace lepton::client
