// Dashboard: the live page of the metrics port and its JSON API
// (docs/dashboard.md):
//
//   GET /                  the page (one HTML file with its script and
//                          style, embedded in the binary at build time)
//   GET /api/models        every model: type, version, examples seen, update
//                          rate, drift state, progressive and holdout loss
//   GET /api/models/NAME   one model: the above, its retained and
//                          checkpointed versions, its sampled series and
//                          its events (ModelHistory)
//
//   Dashboard dashboard(&store, access_control_or_null);
//   dashboard.Start();   // the sampler thread
//   MetricsHttpServer::Start(listen, render,
//       [&](const HttpRequest& r) { return dashboard.Handle(r); });
//
// Where the series come from: a sampler thread of its own reads every
// model's published counters (ModelStore::ListModels, what a /metrics scrape
// reads) every `sample_interval`, and keeps a sample of each model whose
// version changed (plus one after it stops, so that its rate falls to 0).
// The events come from a listener on each model's event stream
// (ModelStore::Watch), called after the model's locks are released. So the
// update path takes no lock of the dashboard and writes nothing for it; the
// history is in memory only, never in the update log (model_history.h has
// its bound).
//
// Access: with access control, /api/ needs a reader's token, sent as gRPC
// takes it (`Authorization: Bearer TOKEN`): 401 without or with an unknown
// one, 403 below reader. The page itself holds no data and is open; it asks
// for a token when the API answers 401.
//
// Thread safety: Handle() may be called from any threads at once, and
// concurrently with the sampler. The store and access control must outlive
// the dashboard (Stop() or the destructor ends the sampler and the
// subscriptions).
#ifndef LEPTON_SERVER_DASHBOARD_H_
#define LEPTON_SERVER_DASHBOARD_H_

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/store/model_store.h"
#include "core/util/mutex.h"
#include "server/access_control.h"
#include "server/metrics_http.h"
#include "server/model_history.h"

namespace lepton::server {

class Dashboard {
 public:
  static constexpr absl::Duration kDefaultSampleInterval =
      absl::Milliseconds(500);

  // `access` may be null (no access control).
  Dashboard(ModelStore* store, const AccessControl* access,
            absl::Duration sample_interval = kDefaultSampleInterval);
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // Starts the sampler thread (one sample at once, then every interval).
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends it and every subscription. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // One round of the sampler, now (tests; the thread calls it).
  void SampleNow() ABSL_LOCKS_EXCLUDED(mu_);

  // The HTTP side (metrics_http.h): the page, the API, 404 otherwise.
  HttpResponse Handle(const HttpRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

  // The API's JSON documents.
  std::string RenderModelList() ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND for a model the sampler has not seen.
  absl::StatusOr<std::string> RenderModel(absl::string_view name)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::shared_ptr<ModelHistory> history;
    std::unique_ptr<EventSubscription> subscription;
    ModelInfo info;  // as of the last round
    absl::Time sampled;
    // Over the last round.
    double updates_per_second = 0;
    double examples_per_second = 0;
    bool changed_last_round = false;
  };

  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // The JSON object of one model's summary (without braces' contents of
  // the series).
  static void AppendSummary(const Entry& entry, std::string* out);

  ModelStore* const store_;
  const AccessControl* const access_;
  const absl::Duration sample_interval_;

  Mutex mu_;
  std::map<std::string, Entry, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  CondVar wake_;
  std::thread sampler_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_DASHBOARD_H_
