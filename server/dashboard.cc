#include "server/dashboard.h"

#include <grpcpp/support/string_ref.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lepton::server {
namespace embedded {
// cmake/EmbedFile.cmake, from server/dashboard/index.html.
extern const unsigned char kDashboardPage[];
extern const size_t kDashboardPage_size;
}  // namespace embedded

namespace {

constexpr absl::string_view kApiModels = "/api/models";

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

// A finite number, or null (JSON has no NaN or infinity), with `format`:
// "%.6g" for measures, "%.0f" for counts, "%.3f" for Unix seconds.
void AppendNumber(double v, std::string* out, const char* format = "%.6g") {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  char text[64];
  const int n = std::snprintf(text, sizeof(text), format, v);
  if (n > 0) out->append(text, std::min<size_t>(n, sizeof(text) - 1));
}

void AppendSeconds(absl::Time t, std::string* out) {
  AppendNumber(absl::ToDoubleMilliseconds(t - absl::UnixEpoch()) / 1000, out,
               "%.3f");
}

template <typename T>
void AppendList(const std::vector<T>& values, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, values[i]);
  }
  out->push_back(']');
}

// A column of the series: numbers, NaN written as null.
void AppendColumn(const char* name, const std::vector<double>& values,
                  std::string* out, const char* format = "%.6g") {
  absl::StrAppend(out, "\"", name, "\":[");
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendNumber(values[i], out, format);
  }
  out->push_back(']');
}

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse JsonError(int status, absl::string_view message) {
  std::string body = "{\"error\":";
  AppendJsonString(message, &body);
  body.push_back('}');
  return Json(status, std::move(body));
}

}  // namespace

Dashboard::Dashboard(ModelStore* store, const AccessControl* access,
                     absl::Duration sample_interval)
    : store_(store), access_(access), sample_interval_(sample_interval) {}

Dashboard::~Dashboard() { Stop(); }

void Dashboard::Start() {
  {
    MutexLock lock(&mu_);
    if (sampler_.joinable() || stopping_) return;
  }
  SampleNow();
  sampler_ = std::thread([this] { Run(); });
}

void Dashboard::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    wake_.SignalAll();
  }
  if (sampler_.joinable()) sampler_.join();
  std::map<std::string, Entry, std::less<>> ended;
  {
    MutexLock lock(&mu_);
    ended.swap(models_);
  }
  // The subscriptions end here, without mu_.
}

void Dashboard::Run() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (!stopping_) wake_.WaitWithTimeout(&mu_, sample_interval_);
      if (stopping_) return;
    }
    SampleNow();
  }
}

void Dashboard::SampleNow() {
  // Read without mu_: a round never holds the dashboard's lock while it
  // reads the store.
  const std::vector<ModelInfo> infos = store_->ListModels();
  const absl::Time now = absl::Now();
  // Declared before the lock: the subscriptions of deleted models end after
  // it is released.
  std::vector<std::unique_ptr<EventSubscription>> ended;
  MutexLock lock(&mu_);
  if (stopping_) return;
  std::map<std::string, Entry, std::less<>> next;
  for (const ModelInfo& info : infos) {
    auto found = models_.find(info.name);
    Entry entry;
    bool changed = true;
    // A model deleted and created again under its name starts afresh.
    if (found != models_.end() && found->second.info.created == info.created) {
      entry = std::move(found->second);
      models_.erase(found);
      const double seconds = absl::ToDoubleSeconds(now - entry.sampled);
      changed = info.version != entry.info.version;
      if (seconds > 0) {
        entry.updates_per_second =
            (info.updates_applied_total - entry.info.updates_applied_total) /
            seconds;
        entry.examples_per_second =
            (info.examples_learned_total - entry.info.examples_learned_total) /
            seconds;
      }
    } else {
      entry.history = std::make_shared<ModelHistory>();
      // The listener runs on the publishing thread, after the model's locks
      // are released: it copies the event into the history (a plain
      // version event returns at once) and never touches mu_.
      std::shared_ptr<ModelHistory> history = entry.history;
      absl::StatusOr<std::unique_ptr<EventSubscription>> subscription =
          store_->Watch(info.name, [history](const ModelEvent& event) {
            history->AddEvent(event);
          });
      if (subscription.ok()) entry.subscription = *std::move(subscription);
    }
    entry.info = info;
    entry.sampled = now;
    // One more sample after the model stops changing: its rate falls to 0.
    if (changed || entry.changed_last_round) {
      HistorySample s;
      s.time = now;
      s.version = info.version;
      s.examples_seen = info.counters.examples_seen;
      s.examples_total = info.examples_learned_total;
      s.updates_total = info.updates_applied_total;
      s.weight_seen = info.counters.weight_seen;
      s.loss_sum = info.counters.loss_sum;
      s.correct_weight = info.counters.correct_weight;
      s.validation_loss = info.adaptation.validation_loss;
      s.validation_accuracy = info.adaptation.validation_accuracy;
      s.holdout_examples = info.adaptation.holdout_examples;
      s.drift_state = info.adaptation.drift_state;
      entry.history->AddSample(s);
    }
    entry.changed_last_round = changed;
    next.emplace(info.name, std::move(entry));
  }
  // What is left of models_ was deleted.
  for (auto& [name, entry] : models_) {
    ended.push_back(std::move(entry.subscription));
  }
  models_.swap(next);
}

void Dashboard::AppendSummary(const Entry& entry, std::string* out) {
  const ModelInfo& info = entry.info;
  const bool classifier = info.spec.type != ModelType::kLinearRegression;
  out->append("\"name\":");
  AppendJsonString(info.name, out);
  out->append(",\"type\":");
  AppendJsonString(ModelTypeName(info.spec.type), out);
  absl::StrAppend(out, ",\"classifier\":", classifier ? "true" : "false",
                  ",\"version\":", info.version,
                  ",\"examples_seen\":", info.counters.examples_seen,
                  ",\"updates\":", info.counters.updates,
                  ",\"updates_per_second\":");
  AppendNumber(entry.updates_per_second, out);
  out->append(",\"examples_per_second\":");
  AppendNumber(entry.examples_per_second, out);
  out->append(",\"drift_state\":");
  AppendJsonString(DriftStateName(info.adaptation.drift_state), out);
  out->append(",\"update_log_error\":");
  if (info.update_log_error.ok()) {
    out->append("null");
  } else {
    AppendJsonString(info.update_log_error.message(), out);
  }
  absl::StrAppend(out, ",\"drifts\":", info.adaptation.drifts,
                  ",\"drift_detector\":");
  AppendJsonString(DriftDetectorKindName(info.spec.drift.detector.kind), out);
  out->append(",\"drift_policy\":");
  AppendJsonString(DriftPolicyName(info.spec.drift.policy), out);
  out->append(",\"progressive_loss\":");
  AppendNumber(info.counters.progressive_loss(), out);
  out->append(",\"progressive_accuracy\":");
  if (classifier) {
    AppendNumber(info.counters.progressive_accuracy(), out);
  } else {
    out->append("null");
  }
  out->append(",\"validation_loss\":");
  AppendNumber(info.adaptation.validation_loss, out);
  absl::StrAppend(out,
                  ",\"holdout_examples\":", info.adaptation.holdout_examples,
                  ",\"refused_updates\":", info.adaptation.refused_updates,
                  ",\"quarantine_held\":", info.adaptation.quarantine_held,
                  ",\"updated\":");
  AppendSeconds(info.updated, out);
}

std::string Dashboard::RenderModelList() {
  std::string out = "{\"models\":[";
  MutexLock lock(&mu_);
  bool first = true;
  for (const auto& [name, entry] : models_) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('{');
    AppendSummary(entry, &out);
    out.push_back('}');
  }
  absl::StrAppend(&out, "],\"sample_interval_ms\":",
                  absl::ToInt64Milliseconds(sample_interval_), "}");
  return out;
}

absl::StatusOr<std::string> Dashboard::RenderModel(absl::string_view name) {
  std::string out = "{";
  std::shared_ptr<ModelHistory> history;
  {
    MutexLock lock(&mu_);
    auto found = models_.find(name);
    if (found == models_.end()) {
      return absl::NotFoundError(absl::StrCat("model \"", name,
                                              "\" not found (or not sampled "
                                              "yet)"));
    }
    AppendSummary(found->second, &out);
    out.append(",\"retained_versions\":");
    AppendList(found->second.info.retained_versions, &out);
    out.append(",\"checkpointed_versions\":");
    AppendList(found->second.info.checkpointed_versions, &out);
    history = found->second.history;
  }
  const bool classifier = !absl::StrContains(out, "\"classifier\":false");
  const std::vector<HistorySample> samples = history->Samples();
  // The series, one column each. loss and accuracy: the progressive mean
  // between a sample and the one before it (exact after thinning: the
  // counters are cumulative); null where no example was learned between
  // them or a rollback took the counters back.
  const size_t n = samples.size();
  std::vector<double> t(n), version(n), examples(n), loss(n), accuracy(n),
      progressive_loss(n), validation_loss(n), updates_per_second(n),
      examples_per_second(n);
  const double kNull = std::nan("");
  for (size_t i = 0; i < n; ++i) {
    const HistorySample& s = samples[i];
    t[i] = absl::ToDoubleMilliseconds(s.time - absl::UnixEpoch()) / 1000;
    version[i] = static_cast<double>(s.version);
    examples[i] = static_cast<double>(s.examples_seen);
    progressive_loss[i] =
        s.weight_seen > 0 ? s.loss_sum / s.weight_seen : kNull;
    validation_loss[i] = s.holdout_examples > 0 ? s.validation_loss : kNull;
    loss[i] = accuracy[i] = kNull;
    updates_per_second[i] = examples_per_second[i] = kNull;
    if (i == 0) {
      loss[i] = progressive_loss[i];
      if (classifier && s.weight_seen > 0) {
        accuracy[i] = s.correct_weight / s.weight_seen;
      }
      continue;
    }
    const HistorySample& p = samples[i - 1];
    const double dw = s.weight_seen - p.weight_seen;
    if (s.examples_seen > p.examples_seen && dw > 0) {
      loss[i] = (s.loss_sum - p.loss_sum) / dw;
      if (classifier) accuracy[i] = (s.correct_weight - p.correct_weight) / dw;
    }
    const double seconds = absl::ToDoubleSeconds(s.time - p.time);
    if (seconds > 0) {
      updates_per_second[i] =
          static_cast<double>(s.updates_total - p.updates_total) / seconds;
      examples_per_second[i] =
          static_cast<double>(s.examples_total - p.examples_total) / seconds;
    }
  }
  out.append(",\"series\":{");
  AppendColumn("t", t, &out, "%.3f");
  out.push_back(',');
  AppendColumn("version", version, &out, "%.0f");
  out.push_back(',');
  AppendColumn("examples", examples, &out, "%.0f");
  out.push_back(',');
  AppendColumn("loss", loss, &out);
  out.push_back(',');
  AppendColumn("accuracy", accuracy, &out);
  out.push_back(',');
  AppendColumn("progressive_loss", progressive_loss, &out);
  out.push_back(',');
  AppendColumn("validation_loss", validation_loss, &out);
  out.push_back(',');
  AppendColumn("updates_per_second", updates_per_second, &out);
  out.push_back(',');
  AppendColumn("examples_per_second", examples_per_second, &out);
  out.append("},\"events\":[");
  const std::vector<HistoryEvent> events = history->Events();
  for (size_t i = 0; i < events.size(); ++i) {
    const HistoryEvent& e = events[i];
    if (i > 0) out.push_back(',');
    out.append("{\"kind\":");
    // A version event kept is a rollback's (model_history.h).
    AppendJsonString(e.kind == ModelEvent::Kind::kVersion
                         ? absl::string_view("ROLLBACK")
                         : ModelEventKindName(e.kind),
                     &out);
    absl::StrAppend(&out, ",\"version\":", e.version,
                    ",\"example\":", e.example, ",\"t\":");
    AppendSeconds(e.time, &out);
    out.append(",\"detail\":");
    AppendJsonString(e.detail, &out);
    out.push_back('}');
  }
  absl::StrAppend(&out, "],\"dropped_events\":", history->dropped_events(),
                  ",\"thinned_samples\":", history->thinned_samples(),
                  ",\"max_samples\":", ModelHistory::kMaxSamples,
                  ",\"max_events\":", ModelHistory::kMaxEvents, "}");
  return out;
}

HttpResponse Dashboard::Handle(const HttpRequest& request) {
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = JsonError(405, "only GET and HEAD");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  const std::string& path = request.path;
  if (path == "/" || path == "/index.html") {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body.assign(reinterpret_cast<const char*>(embedded::kDashboardPage),
                  embedded::kDashboardPage_size);
    // The page loads nothing from elsewhere, and may not.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; script-src 'unsafe-inline'; "
                           "style-src 'unsafe-inline'; img-src 'self' data:");
    return r;
  }
  if (path != kApiModels && !absl::StartsWith(path, "/api/models/")) {
    return JsonError(404, absl::StrCat("no such page: ", path));
  }
  const bool one = path != kApiModels;
  if (access_ != nullptr) {
    std::multimap<grpc::string_ref, grpc::string_ref> metadata;
    if (!request.authorization.empty()) {
      metadata.emplace("authorization", request.authorization);
    }
    const absl::Status allowed = access_->Authorize(
        metadata, one ? Method::kGetModel : Method::kListModels);
    if (absl::IsUnauthenticated(allowed)) {
      HttpResponse r = JsonError(401, allowed.message());
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    if (!allowed.ok()) return JsonError(403, allowed.message());
  }
  if (!one) return Json(200, RenderModelList());
  const absl::string_view name =
      absl::string_view(path).substr(kApiModels.size() + 1);
  absl::StatusOr<std::string> body = RenderModel(name);
  if (!body.ok()) return JsonError(404, body.status().message());
  return Json(200, *std::move(body));
}

}  // namespace lepton::server
