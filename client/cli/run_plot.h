// RunPlot: what `lepton_client train`, `eval` and `watch` draw with
// --plot=FILE.svg (client/svg_plot.h): the progressive loss and accuracy over
// the examples, and a marker per drift, drift warning, policy action and
// guardrail event. Only values the client receives are drawn:
//
//   train  each UpdateResponse's loss_before and accuracy_before (the batch's
//          mean under the model before it learned the batch), weighted by the
//          examples it trained on; markers from a WatchModel call opened
//          before the first request, at ModelEvent.example minus the model's
//          examples_seen when the run started.
//   eval   the command's own log loss and accuracy (squared error for a
//          linear model) of each Predict batch, all by one version; no
//          markers, since nothing learns.
//   watch  GetModel at each VERSION_PUBLISHED event (AddModelInfo): the
//          model's progressive totals (progressive_loss times weight_seen)
//          differ between two calls by exactly the examples learned in
//          between; markers at ModelEvent.example.
//
// Thread safety: every method may be called from any thread (one mutex), so
// a watch's thread can add events while the caller adds batches.
#ifndef LEPTON_CLIENT_CLI_RUN_PLOT_H_
#define LEPTON_CLIENT_CLI_RUN_PLOT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "client/svg_plot.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

// The marker of an event; none for VERSION_PUBLISHED and MODEL_DELETED.
std::optional<MarkerKind> MarkerKindOf(v1::ModelEventKind kind);

// --plot's value: a file name (not "-": the commands print on stdout).
// INVALID_ARGUMENT otherwise.
absl::Status CheckPlotPath(absl::string_view path);

class RunPlot {
 public:
  struct Options {
    std::string title;
    std::string subtitle;
    std::string x_label;
    bool classifier = true;     // false: no accuracy chart
    std::string loss_name;      // "log loss", "squared error", ...
    bool progressive = true;    // the charts' titles say "progressive"
    std::string running_label;  // the running mean's legend
    bool markers = true;        // false: no marker legend (eval)
    int max_points = PlotSeries::kDefaultMaxPoints;
  };

  explicit RunPlot(Options options);

  // The examples of (x_begin, x_end]: their weight and the weighted sums of
  // the loss and of correct predictions (classifiers). Ignored when
  // weight <= 0.
  void AddInterval(double x_begin, double x_end, double weight, double loss_sum,
                   std::optional<double> correct_sum) ABSL_LOCKS_EXCLUDED(mu_);
  // The model as GetModel described it: adds the interval since the last
  // call's examples_seen, if the model has learned since. After a rollback
  // (examples_seen went back) points resume once the model has passed the
  // examples already drawn.
  void AddModelInfo(const v1::ModelInfo& info) ABSL_LOCKS_EXCLUDED(mu_);
  // A marker at event.example - origin, if the event's kind has one.
  void AddEvent(const v1::ModelEvent& event) ABSL_LOCKS_EXCLUDED(mu_);
  void SetEventOrigin(int64_t origin) ABSL_LOCKS_EXCLUDED(mu_);
  void AddNote(std::string note) ABSL_LOCKS_EXCLUDED(mu_);

  // Counts every change: a writer rewrites the file only when it moved.
  uint64_t generation() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);
  // Render() to `path` through PATH.tmp and a rename (WriteBlobFile), so a
  // reader never sees a partial file.
  absl::Status Write(const std::string& path) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Totals {
    double examples = 0;
    double weight = 0;
    double loss_sum = 0;
    double correct_sum = 0;
  };

  void AddIntervalLocked(double x_begin, double x_end, double weight,
                         double loss_sum, std::optional<double> correct_sum)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  PlotSeries loss_ ABSL_GUARDED_BY(mu_);
  PlotSeries accuracy_ ABSL_GUARDED_BY(mu_);
  PlotMarkers markers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> notes_ ABSL_GUARDED_BY(mu_);
  int64_t origin_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<Totals> last_info_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_CLI_RUN_PLOT_H_
