#include "server/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/strip.h"

namespace lepton::server {
namespace {

constexpr absl::string_view kServicePrefix = "/lepton.v1.ModelService/";
constexpr absl::string_view kInferencePrefix =
    "/inference.GRPCInferenceService/";
// The ModelService methods are kMethodNames[0, kFirstInference), the Open
// Inference Protocol's (but its probes ServerLive and ServerReady, counted
// as other like health checks) the rest up to kOther.
constexpr int kFirstInference = 12;

constexpr std::array<absl::string_view, Metrics::kMethods> kMethodNames = {
    "CreateModel",    "GetModel",      "ListModels",   "DeleteModel",
    "Predict",        "Update",        "StreamUpdate", "Rollback",
    "AddClasses",     "ExportModel",   "ImportModel",  "WatchModel",
    "ServerMetadata", "ModelMetadata", "ModelReady",   "ModelInfer",
    "other"};

constexpr std::array<absl::string_view, Metrics::kCodes> kCodeNames = {
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

constexpr char kRequests[] = "lepton_requests_total";
constexpr char kLatency[] = "lepton_request_duration_seconds";

// The per-model gauges: name, help, value.
struct ModelGauge {
  const char* name;
  const char* help;
  double (*value)(const ModelInfo&, const ScrapeState&);
};

constexpr ModelGauge kModelGauges[] = {
    {"lepton_model_version", "The model's newest version.",
     [](const ModelInfo& i, const ScrapeState&) {
       return static_cast<double>(i.version);
     }},
    {"lepton_model_version_examples_seen",
     "Examples the model's newest version has learned from (a rollback takes "
     "them back).",
     [](const ModelInfo& i, const ScrapeState&) {
       return static_cast<double>(i.counters.examples_seen);
     }},
    {"lepton_model_version_updates",
     "Updates applied to reach the model's newest version (a rollback takes "
     "them back).",
     [](const ModelInfo& i, const ScrapeState&) {
       return static_cast<double>(i.counters.updates);
     }},
    {"lepton_model_progressive_loss",
     "Mean loss of every example, scored before the model learned it.",
     [](const ModelInfo& i, const ScrapeState&) {
       return i.counters.progressive_loss();
     }},
    {"lepton_model_seconds_since_update",
     "Seconds since the model's newest version was published.",
     [](const ModelInfo& i, const ScrapeState& s) {
       return std::max(0.0, absl::ToDoubleSeconds(s.now - i.updated));
     }},
    {"lepton_model_drift_state",
     "Drift detector state: 0 stable, 1 warning, 2 drift.",
     [](const ModelInfo& i, const ScrapeState&) {
       return static_cast<double>(static_cast<int>(i.adaptation.drift_state));
     }},
    {"lepton_model_update_log_failed",
     "1 once the model's update log has failed (a failed fsync): it takes no "
     "change until the server restarts.",
     [](const ModelInfo& i, const ScrapeState&) {
       return i.update_log_error.ok() ? 0.0 : 1.0;
     }},
    {"lepton_model_update_queue_depth",
     "The model's update calls waiting for an update worker.",
     [](const ModelInfo& i, const ScrapeState& s) {
       auto it = s.model_queue_depth.find(i.name);
       return static_cast<double>(it == s.model_queue_depth.end() ? 0
                                                                  : it->second);
     }},
    {"lepton_model_quarantine_held",
     "Updates held back now, waiting for their second check.",
     [](const ModelInfo& i, const ScrapeState&) {
       return static_cast<double>(i.adaptation.quarantine_held);
     }},
    {"lepton_model_holdout_examples", "Examples in the model's holdout set.",
     [](const ModelInfo& i, const ScrapeState&) {
       return static_cast<double>(i.adaptation.holdout_examples);
     }},
    {"lepton_model_memory_bytes",
     "Memory the model holds: its live versions' parameters, holdout "
     "set, held updates and remembered predictions.",
     [](const ModelInfo& i, const ScrapeState&) {
       return static_cast<double>(i.memory_bytes);
     }},
};

// The per-model counters: name, help, and the model's figure they follow,
// which never decreases (metrics.h).
struct ModelCounter {
  const char* name;
  const char* help;
  uint64_t (*figure)(const ModelInfo&);
};

constexpr ModelCounter kModelCounters[] = {
    {"lepton_model_examples_seen_total",
     "Examples the model has learned from (a rollback does not take them "
     "back).",
     [](const ModelInfo& i) { return i.examples_learned_total; }},
    {"lepton_model_updates_total",
     "Updates applied to the model (a rollback does not take them back).",
     [](const ModelInfo& i) { return i.updates_applied_total; }},
    {"lepton_model_drifts_total", "Drifts the model's detector has flagged.",
     [](const ModelInfo& i) { return i.adaptation.drifts; }},
    {"lepton_model_guardrail_refusals_total",
     "Updates the guardrail refused since the server started.",
     [](const ModelInfo& i) { return i.adaptation.refused_updates; }},
    {"lepton_model_quarantined_updates_total",
     "Updates the QUARANTINE guardrail held back.",
     [](const ModelInfo& i) { return i.adaptation.quarantined_updates; }},
    {"lepton_model_quarantine_released_total",
     "Held updates learned after passing their second check.",
     [](const ModelInfo& i) { return i.adaptation.quarantine_released; }},
    {"lepton_model_quarantine_dropped_total",
     "Held updates dropped (failed their second check, or displaced).",
     [](const ModelInfo& i) { return i.adaptation.quarantine_dropped; }},
    {"lepton_model_promotions_total", "Challengers promoted after a drift.",
     [](const ModelInfo& i) { return i.adaptation.promotions; }},
    {"lepton_model_disk_full_refusals_total",
     "Updates refused because the disk of the model's update log was full.",
     [](const ModelInfo& i) { return i.disk_full_refusals; }},
};

prometheus::Labels ModelLabel(const std::string& name) {
  return {{"model", name}};
}

}  // namespace

int Metrics::MethodIndex(absl::string_view full_method) {
  int first = 0, end = 0;
  if (absl::ConsumePrefix(&full_method, kServicePrefix)) {
    end = kFirstInference;
  } else if (absl::ConsumePrefix(&full_method, kInferencePrefix)) {
    first = kFirstInference;
    end = kOther;
  }
  for (int i = first; i < end; ++i) {
    if (full_method == kMethodNames[i]) return i;
  }
  return kOther;
}

absl::string_view Metrics::MethodName(int method) {
  return kMethodNames[method];
}

absl::string_view Metrics::CodeName(int code) { return kCodeNames[code]; }

int Metrics::BucketIndex(double seconds) {
  // As prometheus::Histogram::Observe: the first bound >= seconds.
  return static_cast<int>(
      std::lower_bound(kBucketBounds.begin(), kBucketBounds.end(), seconds) -
      kBucketBounds.begin());
}

Metrics::Metrics() {
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name(kRequests)
          .Help("Finished gRPC calls by method and status code.")
          .Register(registry_);
  prometheus::Family<prometheus::Histogram>& latency =
      prometheus::BuildHistogram()
          .Name(kLatency)
          .Help(
              "Time from a call's start to its status, by method (a stream's "
              "whole life for StreamUpdate and WatchModel).")
          .Register(registry_);
  const prometheus::Histogram::BucketBoundaries bounds(kBucketBounds.begin(),
                                                       kBucketBounds.end());
  for (int m = 0; m < kMethods; ++m) {
    const std::string method(kMethodNames[m]);
    for (int c = 0; c < kCodes; ++c) {
      requests_[m][c] = &requests.Add(
          {{"method", method}, {"code", std::string(kCodeNames[c])}});
    }
    latency_[m] = &latency.Add({{"method", method}}, bounds);
  }

  models_ = &prometheus::BuildGauge()
                 .Name("lepton_models")
                 .Help("Models the server holds.")
                 .Register(registry_)
                 .Add({});
  update_queue_depth_ =
      &prometheus::BuildGauge()
           .Name("lepton_update_queue_depth")
           .Help(
               "Updates (and rollbacks, exports, imports) waiting for an "
               "update worker, all models together.")
           .Register(registry_)
           .Add({});
  resident_memory_bytes_ = &prometheus::BuildGauge()
                                .Name("process_resident_memory_bytes")
                                .Help("Resident memory size in bytes.")
                                .Register(registry_)
                                .Add({});
  memory_budget_bytes_ =
      &prometheus::BuildGauge()
           .Name("lepton_memory_budget_bytes")
           .Help("The models' memory budget, --max_memory_bytes (0: none).")
           .Register(registry_)
           .Add({});
  memory_used_bytes_ =
      &prometheus::BuildGauge()
           .Name("lepton_memory_used_bytes")
           .Help(
               "What the models are charged against the memory budget: each "
               "model's lepton_model_memory_bytes, or what its spec reserves "
               "if more.")
           .Register(registry_)
           .Add({});

  for (const ModelGauge& g : kModelGauges) {
    model_gauges_.push_back(
        &prometheus::BuildGauge().Name(g.name).Help(g.help).Register(
            registry_));
  }
  for (const ModelCounter& c : kModelCounters) {
    model_counters_.push_back(
        &prometheus::BuildCounter().Name(c.name).Help(c.help).Register(
            registry_));
  }
  family_order_ = {kRequests,
                   kLatency,
                   "lepton_models",
                   "lepton_update_queue_depth",
                   "process_resident_memory_bytes",
                   "lepton_memory_budget_bytes",
                   "lepton_memory_used_bytes"};
  for (const ModelGauge& g : kModelGauges) family_order_.push_back(g.name);
  for (const ModelCounter& c : kModelCounters) family_order_.push_back(c.name);
}

Metrics::~Metrics() = default;

void Metrics::Record(int method, int code, absl::Duration latency) {
  if (method < 0 || method >= kMethods) method = kOther;
  if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
  requests_[method][code]->Increment();
  latency_[method]->Observe(std::max(0.0, absl::ToDoubleSeconds(latency)));
}

uint64_t Metrics::requests(int method, int code) const {
  return static_cast<uint64_t>(requests_[method][code]->Value());
}

uint64_t Metrics::bucket_count(int method, int bucket) const {
  const prometheus::ClientMetric::Histogram h =
      latency_[method]->Collect().histogram;
  const uint64_t below =
      bucket == 0 ? 0 : h.bucket[bucket - 1].cumulative_count;
  return h.bucket[bucket].cumulative_count - below;
}

uint64_t Metrics::latency_sum_nanos(int method) const {
  return static_cast<uint64_t>(
      std::llround(latency_[method]->Collect().histogram.sample_sum * 1e9));
}

Metrics::ModelSeries Metrics::NewModelSeries(const ModelInfo& info) {
  ModelSeries series;
  series.created = info.created;
  const prometheus::Labels labels = ModelLabel(info.name);
  for (prometheus::Family<prometheus::Gauge>* family : model_gauges_) {
    series.gauges.push_back(&family->Add(labels));
  }
  for (prometheus::Family<prometheus::Counter>* family : model_counters_) {
    series.counters.push_back(&family->Add(labels));
  }
  series.last.assign(series.counters.size(), 0);
  return series;
}

void Metrics::RemoveModelSeries(const ModelSeries& series) {
  for (size_t i = 0; i < series.gauges.size(); ++i) {
    model_gauges_[i]->Remove(series.gauges[i]);
  }
  for (size_t i = 0; i < series.counters.size(); ++i) {
    model_counters_[i]->Remove(series.counters[i]);
  }
}

std::string Metrics::Render(const ScrapeState& state) {
  MutexLock lock(&mu_);
  models_->Set(static_cast<double>(state.models.size()));
  update_queue_depth_->Set(static_cast<double>(state.update_queue_depth));
  resident_memory_bytes_->Set(static_cast<double>(state.resident_memory_bytes));
  memory_budget_bytes_->Set(static_cast<double>(state.memory_budget_bytes));
  memory_used_bytes_->Set(static_cast<double>(state.memory_used_bytes));

  absl::flat_hash_set<absl::string_view> listed;
  for (const ModelInfo& info : state.models) {
    listed.insert(info.name);
    auto it = model_series_.find(info.name);
    if (it != model_series_.end() && it->second.created != info.created) {
      // Deleted and created again since the last scrape: a new model.
      RemoveModelSeries(it->second);
      model_series_.erase(it);
      it = model_series_.end();
    }
    if (it == model_series_.end()) {
      it = model_series_.emplace(info.name, NewModelSeries(info)).first;
    }
    ModelSeries& series = it->second;
    for (size_t i = 0; i < series.gauges.size(); ++i) {
      series.gauges[i]->Set(kModelGauges[i].value(info, state));
    }
    for (size_t i = 0; i < series.counters.size(); ++i) {
      const uint64_t figure = kModelCounters[i].figure(info);
      if (figure > series.last[i]) {
        series.counters[i]->Increment(
            static_cast<double>(figure - series.last[i]));
      }
      series.last[i] = figure;
    }
  }
  for (auto it = model_series_.begin(); it != model_series_.end();) {
    if (listed.contains(it->first)) {
      ++it;
      continue;
    }
    RemoveModelSeries(it->second);
    model_series_.erase(it++);
  }

  std::vector<prometheus::MetricFamily> families = registry_.Collect();
  absl::flat_hash_set<std::string> present;
  for (prometheus::MetricFamily& family : families) {
    present.insert(family.name);
    std::vector<prometheus::ClientMetric>& series = family.metric;
    // Request series appear once nonzero.
    if (family.name == kRequests) {
      std::erase_if(series, [](const prometheus::ClientMetric& m) {
        return m.counter.value == 0;
      });
    } else if (family.name == kLatency) {
      std::erase_if(series, [](const prometheus::ClientMetric& m) {
        return m.histogram.sample_count == 0;
      });
    }
  }
  // prometheus-cpp leaves out a family without series; ours are named
  // (HELP and TYPE) even with no model.
  for (const ModelGauge& g : kModelGauges) {
    if (!present.contains(g.name)) {
      families.push_back({g.name, g.help, prometheus::MetricType::Gauge, {}});
    }
  }
  for (const ModelCounter& c : kModelCounters) {
    if (!present.contains(c.name)) {
      families.push_back({c.name, c.help, prometheus::MetricType::Counter, {}});
    }
  }
  // The registry groups families by type; the text keeps ours in one order.
  auto rank = [this](const prometheus::MetricFamily& f) {
    return std::find(family_order_.begin(), family_order_.end(), f.name) -
           family_order_.begin();
  };
  std::stable_sort(
      families.begin(), families.end(),
      [&rank](const prometheus::MetricFamily& a,
              const prometheus::MetricFamily& b) { return rank(a) < rank(b); });
  return prometheus::TextSerializer().Serialize(families);
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
