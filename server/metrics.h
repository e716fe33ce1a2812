// Metrics: what lepton_server exposes to Prometheus, and its text rendering
// (exposition format 0.0.4). No HTTP here: metrics_http.h serves the text,
// metrics_interceptor.h feeds the request counters.
//
//   RequestMetrics requests;
//   requests.Record(RequestMetrics::MethodIndex("/lepton.v1.ModelService/Predict"),
//                   grpc::StatusCode::OK, absl::Microseconds(300));
//   ScrapeState state{.models = store.ListModels(), ...};
//   std::string text = RenderMetrics(requests, state);
//
// Two kinds of metric, by cost:
// - Per call (RequestMetrics): a count per method and gRPC status code and a
//   latency histogram per method, in fixed arrays of relaxed atomics indexed
//   by a small method number, so the hot path takes no lock and allocates
//   nothing. Methods are the lepton.v1.ModelService RPCs; every other
//   service's calls (health checks, reflection) count as method="other", so
//   that no caller can make the label set grow.
// - Per scrape (ScrapeState): the models' gauges and counters, read from the
//   store's ModelInfo when Prometheus asks, so updates pay nothing for them.
//
// Thread safety: Record() and the accessors may be called from any thread
// concurrently; a rendering taken while calls are recorded may count a call
// in one series and not yet in another (each number is itself exact).
#ifndef LEPTON_SERVER_METRICS_H_
#define LEPTON_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/store/store_types.h"

namespace lepton::server {

class RequestMetrics {
 public:
  // The ModelService methods, then "other".
  static constexpr int kMethods = 12;
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

  // The index of a full gRPC method name ("/lepton.v1.ModelService/Predict");
  // kOther for any other.
  static int MethodIndex(absl::string_view full_method);
  // "Predict", ..., "other".
  static absl::string_view MethodName(int method);
  // "OK", "INVALID_ARGUMENT", ...
  static absl::string_view CodeName(int code);
  // The bucket of a latency: the first whose bound is >= it, else the +Inf
  // bucket (kBuckets - 1).
  static int BucketIndex(double seconds);

  // One finished call. `code` outside 0..16 counts as UNKNOWN (2).
  void Record(int method, int code, absl::Duration latency);

  uint64_t requests(int method, int code) const {
    return requests_[method][code].load(std::memory_order_relaxed);
  }
  // Calls in bucket `bucket` alone (not cumulative).
  uint64_t bucket_count(int method, int bucket) const {
    return latency_[method].buckets[bucket].load(std::memory_order_relaxed);
  }
  uint64_t latency_sum_nanos(int method) const {
    return latency_[method].sum_nanos.load(std::memory_order_relaxed);
  }

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets> buckets{};
    std::atomic<uint64_t> sum_nanos{0};
  };
  std::array<std::array<std::atomic<uint64_t>, kCodes>, kMethods> requests_{};
  std::array<Histogram, kMethods> latency_{};
};

// What a scrape reads besides the request counters.
struct ScrapeState {
  std::vector<ModelInfo> models;   // ModelStore::ListModels()
  int64_t update_queue_depth = 0;  // tasks waiting for an update worker
  // The same per model name (ModelService::QueuedByModel; absent: 0).
  absl::flat_hash_map<std::string, int64_t> model_queue_depth;
  int64_t resident_memory_bytes = 0;
  absl::Time now;  // for seconds since each model's last update
};

// The text exposition format 0.0.4 of every metric. Request series appear
// once their count is nonzero; model series once per model.
std::string RenderMetrics(const RequestMetrics& requests,
                          const ScrapeState& state);

// The process's resident set size (/proc/self/statm), 0 if unreadable.
int64_t ResidentMemoryBytes();

}  // namespace lepton::server

#endif  // LEPTON_SERVER_METRICS_H_
