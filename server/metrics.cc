#include "server/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace lepton::server {
namespace {

constexpr absl::string_view kServicePrefix = "/lepton.v1.ModelService/";

constexpr std::array<absl::string_view, RequestMetrics::kMethods> kMethodNames =
    {"CreateModel", "GetModel",    "ListModels",   "DeleteModel",
     "Predict",     "Update",      "StreamUpdate", "Rollback",
     "ExportModel", "ImportModel", "WatchModel",   "other"};

constexpr std::array<absl::string_view, RequestMetrics::kCodes> kCodeNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED"};

// A float as Prometheus parses it: NaN, +Inf, -Inf, else the shortest of
// 15 to 17 significant digits that reads back as the same double ("0.00025",
// not "0.00025000000000000001").
std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::string s;
  for (int digits = 15; digits <= 17; ++digits) {
    s = absl::StrFormat("%.*g", digits, v);
    if (std::strtod(s.c_str(), nullptr) == v) break;
  }
  return s;
}

// A label value: backslash, double quote and newline escaped (0.0.4).
std::string Escape(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string* out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
}

// One series per model of `name`, valued by `value`.
template <typename F>
void PerModel(std::string* out, const ScrapeState& state,
              absl::string_view name, absl::string_view type,
              absl::string_view help, F value) {
  Header(out, name, type, help);
  for (const ModelInfo& info : state.models) {
    absl::StrAppend(out, name, "{model=\"", Escape(info.name), "\"} ",
                    value(info), "\n");
  }
}

}  // namespace

int RequestMetrics::MethodIndex(absl::string_view full_method) {
  if (!absl::ConsumePrefix(&full_method, kServicePrefix)) return kOther;
  for (int i = 0; i < kOther; ++i) {
    if (full_method == kMethodNames[i]) return i;
  }
  return kOther;
}

absl::string_view RequestMetrics::MethodName(int method) {
  return kMethodNames[method];
}

absl::string_view RequestMetrics::CodeName(int code) {
  return kCodeNames[code];
}

int RequestMetrics::BucketIndex(double seconds) {
  for (size_t i = 0; i < kBucketBounds.size(); ++i) {
    if (seconds <= kBucketBounds[i]) return static_cast<int>(i);
  }
  return kBuckets - 1;
}

void RequestMetrics::Record(int method, int code, absl::Duration latency) {
  if (method < 0 || method >= kMethods) method = kOther;
  if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
  requests_[method][code].fetch_add(1, std::memory_order_relaxed);
  Histogram& h = latency_[method];
  h.buckets[BucketIndex(absl::ToDoubleSeconds(latency))].fetch_add(
      1, std::memory_order_relaxed);
  const int64_t nanos = absl::ToInt64Nanoseconds(latency);
  h.sum_nanos.fetch_add(nanos > 0 ? static_cast<uint64_t>(nanos) : 0,
                        std::memory_order_relaxed);
}

std::string RenderMetrics(const RequestMetrics& requests,
                          const ScrapeState& state) {
  std::string out;
  using R = RequestMetrics;

  Header(&out, "lepton_requests_total", "counter",
         "Finished gRPC calls by method and status code.");
  for (int m = 0; m < R::kMethods; ++m) {
    for (int c = 0; c < R::kCodes; ++c) {
      const uint64_t n = requests.requests(m, c);
      if (n == 0) continue;
      absl::StrAppend(&out, "lepton_requests_total{method=\"", R::MethodName(m),
                      "\",code=\"", R::CodeName(c), "\"} ", n, "\n");
    }
  }

  Header(&out, "lepton_request_duration_seconds", "histogram",
         "Time from a call's start to its status, by method (a stream's "
         "whole life for StreamUpdate and WatchModel).");
  for (int m = 0; m < R::kMethods; ++m) {
    // Read once, so that the buckets are cumulative and _count is +Inf's.
    std::array<uint64_t, R::kBuckets> counts;
    uint64_t total = 0;
    for (int b = 0; b < R::kBuckets; ++b) {
      counts[b] = requests.bucket_count(m, b);
      total += counts[b];
    }
    if (total == 0) continue;
    const absl::string_view method = R::MethodName(m);
    uint64_t cumulative = 0;
    for (int b = 0; b < R::kBuckets; ++b) {
      cumulative += counts[b];
      const std::string le = b + 1 < R::kBuckets ? Number(R::kBucketBounds[b])
                                                 : std::string("+Inf");
      absl::StrAppend(&out, "lepton_request_duration_seconds_bucket{method=\"",
                      method, "\",le=\"", le, "\"} ", cumulative, "\n");
    }
    absl::StrAppend(
        &out, "lepton_request_duration_seconds_sum{method=\"", method, "\"} ",
        Number(static_cast<double>(requests.latency_sum_nanos(m)) * 1e-9), "\n",
        "lepton_request_duration_seconds_count{method=\"", method, "\"} ",
        total, "\n");
  }

  Header(&out, "lepton_models", "gauge", "Models the server holds.");
  absl::StrAppend(&out, "lepton_models ", state.models.size(), "\n");
  Header(&out, "lepton_update_queue_depth", "gauge",
         "Updates (and rollbacks, exports, imports) waiting for an update "
         "worker, all models together.");
  absl::StrAppend(&out, "lepton_update_queue_depth ", state.update_queue_depth,
                  "\n");
  Header(&out, "process_resident_memory_bytes", "gauge",
         "Resident memory size in bytes.");
  absl::StrAppend(&out, "process_resident_memory_bytes ",
                  state.resident_memory_bytes, "\n");

  PerModel(&out, state, "lepton_model_version", "gauge",
           "The model's newest version.",
           [](const ModelInfo& i) { return absl::StrCat(i.version); });
  PerModel(&out, state, "lepton_model_examples_seen_total", "counter",
           "Examples the model has learned from.", [](const ModelInfo& i) {
             return absl::StrCat(i.counters.examples_seen);
           });
  PerModel(&out, state, "lepton_model_updates_total", "counter",
           "Updates applied to the model.",
           [](const ModelInfo& i) { return absl::StrCat(i.counters.updates); });
  PerModel(
      &out, state, "lepton_model_progressive_loss", "gauge",
      "Mean loss of every example, scored before the model learned it.",
      [](const ModelInfo& i) { return Number(i.counters.progressive_loss()); });
  PerModel(&out, state, "lepton_model_seconds_since_update", "gauge",
           "Seconds since the model's newest version was published.",
           [&state](const ModelInfo& i) {
             return Number(
                 std::max(0.0, absl::ToDoubleSeconds(state.now - i.updated)));
           });
  PerModel(&out, state, "lepton_model_drift_state", "gauge",
           "Drift detector state: 0 stable, 1 warning, 2 drift.",
           [](const ModelInfo& i) {
             return absl::StrCat(static_cast<int>(i.adaptation.drift_state));
           });
  PerModel(&out, state, "lepton_model_update_queue_depth", "gauge",
           "The model's update calls waiting for an update worker.",
           [&state](const ModelInfo& i) {
             auto it = state.model_queue_depth.find(i.name);
             return absl::StrCat(
                 it == state.model_queue_depth.end() ? 0 : it->second);
           });
  PerModel(&out, state, "lepton_model_drifts_total", "counter",
           "Drifts the model's detector has flagged.", [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.drifts);
           });
  PerModel(&out, state, "lepton_model_guardrail_refusals_total", "counter",
           "Updates the guardrail refused since the server started.",
           [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.refused_updates);
           });
  PerModel(&out, state, "lepton_model_quarantined_updates_total", "counter",
           "Updates the QUARANTINE guardrail held back.",
           [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.quarantined_updates);
           });
  PerModel(&out, state, "lepton_model_quarantine_released_total", "counter",
           "Held updates learned after passing their second check.",
           [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.quarantine_released);
           });
  PerModel(&out, state, "lepton_model_quarantine_dropped_total", "counter",
           "Held updates dropped (failed their second check, or displaced).",
           [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.quarantine_dropped);
           });
  PerModel(&out, state, "lepton_model_quarantine_held", "gauge",
           "Updates held back now, waiting for their second check.",
           [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.quarantine_held);
           });
  PerModel(&out, state, "lepton_model_promotions_total", "counter",
           "Challengers promoted after a drift.", [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.promotions);
           });
  PerModel(&out, state, "lepton_model_holdout_examples", "gauge",
           "Examples in the model's holdout set.", [](const ModelInfo& i) {
             return absl::StrCat(i.adaptation.holdout_examples);
           });
  PerModel(&out, state, "lepton_model_memory_bytes", "gauge",
           "Parameter memory of the model's live versions.",
           [](const ModelInfo& i) { return absl::StrCat(i.memory_bytes); });
  return out;
}

int64_t ResidentMemoryBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long long size = 0, resident = 0;
  const int read = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (read != 2) return 0;
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

}  // namespace lepton::server
