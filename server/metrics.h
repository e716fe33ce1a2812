// Metrics: what lepton_server exposes to Prometheus, kept in a prometheus-cpp
// registry (Debian's prometheus-cpp-dev, its core library only) and rendered
// by its TextSerializer (exposition format 0.0.4). No HTTP here:
// metrics_http.h serves the text, metrics_interceptor.h feeds the request
// series.
//
//   Metrics metrics;
//   metrics.Record(Metrics::MethodIndex("/lepton.v1.ModelService/Predict"),
//                  grpc::StatusCode::OK, absl::Microseconds(300));
//   ScrapeState state{.models = store.ListModels(), ...};
//   std::string text = metrics.Render(state);
//
// Two kinds of metric, by cost:
// - Per call (Record): a counter per method and gRPC status code and a
//   latency histogram per method. Every one of those series is created with
//   the object, so a call looks nothing up and allocates nothing: it bumps
//   prometheus-cpp's atomic counter and observes into the method's histogram
//   (which takes that series' own short mutex). Methods are the
//   lepton.v1.ModelService RPCs and the Open Inference Protocol's
//   (inference_service.h) but its probes; every other call (health checks,
//   reflection, ServerLive, ServerReady) counts as method="other", so that
//   no caller can make the label set grow. A request series appears in the text
//   once it is nonzero.
// - Per scrape (Render): the models' gauges and counters, read from the
//   store's ModelInfo when Prometheus asks, so updates pay nothing for them.
//   A model's series appear at the first scrape that lists the model and are
//   removed at the first that does not (a deleted model).
//
// Model counters never decrease. lepton_model_examples_seen_total and
// lepton_model_updates_total follow ModelInfo's totals, which a Rollback
// never takes back; the newest version's own figures, which it does, are
// the gauges lepton_model_version_examples_seen and
// lepton_model_version_updates. Each counter grows at each scrape by what its
// figure grew since the previous scrape, and by nothing if it shrank. A model
// deleted and created again (a new ModelInfo::created) starts from zero.
//
// Thread safety: Record() and the accessors may be called from any thread,
// concurrently with each other and with Render(); concurrent Render() calls
// take turns. A rendering taken while calls are recorded may count a call in
// one series and not yet in another (each number is itself exact).
#ifndef LEPTON_SERVER_METRICS_H_
#define LEPTON_SERVER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/store/store_types.h"
#include "core/util/mutex.h"

namespace lepton::server {

// What a scrape reads besides the request series.
struct ScrapeState {
  std::vector<ModelInfo> models;   // ModelStore::ListModels()
  int64_t update_queue_depth = 0;  // tasks waiting for an update worker
  // The same per model name (ModelService::QueuedByModel; absent: 0).
  absl::flat_hash_map<std::string, int64_t> model_queue_depth;
  int64_t resident_memory_bytes = 0;
  // The store's memory budget (0: none) and what the models are charged
  // against it (ModelStore::MemoryUsed()).
  int64_t memory_budget_bytes = 0;
  int64_t memory_used_bytes = 0;
  absl::Time now;  // for seconds since each model's last update
};

class Metrics {
 public:
  // The ModelService methods, the Open Inference Protocol's, then "other".
  static constexpr int kMethods = 17;
  static constexpr int kOther = kMethods - 1;
  // gRPC status codes 0 (OK) to 16 (UNAUTHENTICATED).
  static constexpr int kCodes = 17;
  // Upper bounds (seconds, inclusive) of the latency buckets; one more
  // bucket, +Inf, follows. From 100 us (an in-process Predict) to 10 s (a
  // large import or a slow disk).
  static constexpr std::array<double, 16> kBucketBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  static constexpr int kBuckets = kBucketBounds.size() + 1;

  // The index of a full gRPC method name ("/lepton.v1.ModelService/Predict",
  // "/inference.GRPCInferenceService/ModelInfer"); kOther for any other.
  static int MethodIndex(absl::string_view full_method);
  // "Predict", ..., "ModelInfer", "other".
  static absl::string_view MethodName(int method);
  // "OK", "INVALID_ARGUMENT", ...
  static absl::string_view CodeName(int code);
  // The bucket the histogram counts a latency in: the first whose bound is
  // >= it, else the +Inf bucket (kBuckets - 1).
  static int BucketIndex(double seconds);

  // Registers every metric in a registry of its own.
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One finished call. `method` outside 0..kMethods-1 counts as other, `code`
  // outside 0..16 as UNKNOWN (2), a negative latency as 0.
  void Record(int method, int code, absl::Duration latency);

  // The request series as recorded so far.
  uint64_t requests(int method, int code) const;
  // Calls in bucket `bucket` alone (not cumulative).
  uint64_t bucket_count(int method, int bucket) const;
  // The histogram's sum, rounded to nanoseconds.
  uint64_t latency_sum_nanos(int method) const;

  // Sets the per-scrape series from `state`, then renders every metric in
  // the text exposition format 0.0.4.
  std::string Render(const ScrapeState& state) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One model's series (owned by registry_), and the figures its counters
  // last grew to; in the order of the tables in metrics.cc.
  struct ModelSeries {
    absl::Time created;  // ModelInfo::created: which model of that name
    std::vector<prometheus::Gauge*> gauges;
    std::vector<prometheus::Counter*> counters;
    std::vector<uint64_t> last;  // per counter
  };

  ModelSeries NewModelSeries(const ModelInfo& info)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveModelSeries(const ModelSeries& series)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  prometheus::Registry registry_;
  // Request series, all created by the constructor; owned by registry_.
  std::array<std::array<prometheus::Counter*, kCodes>, kMethods> requests_;
  std::array<prometheus::Histogram*, kMethods> latency_;
  // Server-wide gauges.
  prometheus::Gauge* models_;
  prometheus::Gauge* update_queue_depth_;
  prometheus::Gauge* resident_memory_bytes_;
  prometheus::Gauge* memory_budget_bytes_;
  prometheus::Gauge* memory_used_bytes_;
  // Per-model families, in the order of the tables in metrics.cc.
  std::vector<prometheus::Family<prometheus::Gauge>*> model_gauges_;
  std::vector<prometheus::Family<prometheus::Counter>*> model_counters_;
  // Every family's name, in the order the text gives them.
  std::vector<std::string> family_order_;

  Mutex mu_;  // one Render() at a time
  absl::flat_hash_map<std::string, ModelSeries> model_series_
      ABSL_GUARDED_BY(mu_);
};

// The process's resident set size (/proc/self/statm), 0 if unreadable.
int64_t ResidentMemoryBytes();

}  // namespace lepton::server

#endif  // LEPTON_SERVER_METRICS_H_
