// soak_test: the real lepton_server under a mixed load for minutes, killed
// (-9) or stopped (SIGTERM) at random moments and restarted on the same data
// directory, checked against the core in-process after every restart
// (tests/integration/crash_harness.h). scripts/soak.sh MINUTES runs it;
// CTest's soak_smoke (label `load`) runs it for one minute.
//
// The load, all at once on one server: 3 threads sending Update and 1
// sending StreamUpdate (each request with an update_id), 2 predicting (the
// newest version, or one pinned), and 1 admin thread that creates models of
// six kinds (logistic, linear and softmax; SGD, AdaGrad, FTRL with L1, Adam;
// dense with D <= 200 and sparse with D up to 2^18; drift policies BOOST and
// CHALLENGER), imports exports of them under new names, deletes them (4 to
// 10 live), rolls them back to retained or checkpointed versions, exports
// them and lists them. Each server runs a random --fsync (always, interval or
// never) with checkpoints every 40 updates.
//
// What it checks, failing with a message that names the model and version:
// - Every acknowledged change is in the recovered model, and nothing else
//   is: after each restart, each update sent but not answered is retried
//   under its update_id (the server answers the original if it recovered it,
//   or applies it now), a create, import or delete left unanswered is looked
//   up, and then every version of every model must be claimed by exactly one
//   call: an answered update (its UpdateResponse.version), a rollback (the
//   version it answered, or for one left unanswered by a kill, the one
//   version after it was sent that no update claims), or the creation. A
//   version answered but not recovered is "lost"; a version recovered that
//   no call made is "unexplained". --fsync changes none of
//   this: under every setting an answered update's record is in the page
//   cache before the answer, and a kill -9 loses no page cache (a power loss
//   would; docs/durability.md).
// - The reference, a memory-only ModelStore fed those calls in version
//   order (the same updates, rollbacks and imported blobs), answers each
//   update as the server did and holds the same model, bit for bit:
//   counters, predictions on fixed probes, the exported weights and
//   optimizer state (ExpectSameModel). Predict answers sampled during the
//   load (their version too: a version served must be recovered) and exports
//   made during it are compared with the reference as its replay passes
//   their versions. (The reference keeps 256 versions per model, so rollback
//   targets are at most 128 versions old.)
// - No model is corrupt: each restart logs recovery_done with failed=0 and
//   no line at level=error, and every model answers GetModel; a deleted
//   model stays deleted; ListModels names exactly the live models.
// - No call gets an unexpected code. Expected are UNAVAILABLE once the
//   server is being killed or stopped; CANCELLED once it is stopped by
//   SIGTERM (a few calls get it during a drain: docs/operations.md#drain;
//   a change so cancelled is unanswered, like one cut off by a kill);
//   NOT_FOUND on a model whose DeleteModel was sent, and for a version asked
//   for (pinned Predict, Rollback, ExportModel) that is no longer kept.
//   Everything else fails, DEADLINE_EXCEEDED (30 s) included.
// - Every SIGTERM exits 0, every SIGKILL kills.
// - Memory: the server's RSS (/proc/PID/status, every 200 ms) is printed as a
//   curve; the peak of the run's last third must stay below 1.5 x the peak
//   of its middle third + 32 MiB (restarts reset the process, so a leak
//   shows as peaks that climb from one third to the next).
//
// It prints one line per server life (its --fsync, start-up time, models
// checked, versions replayed, RSS and data directory size at the start; how
// long the load ran, how it ended, calls left unanswered), then the calls by
// kind and code, kills, recoveries, models created and deleted, what was
// compared and the RSS curve. A failed run keeps its data directory.
// Environment: LEPTON_SOAK_SECONDS (60), LEPTON_CRASH_SEED (random, printed;
// replays the run's choices, not the machine's timing).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "core/learning/model_version.h"
#include "core/storage/model_state.h"
#include "core/store/model_store.h"
#include "gtest/gtest.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "server/convert.h"
#include "tests/integration/crash_harness.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

constexpr int kMinModels = 4;
constexpr int kMaxModels = 10;
// Versions the reference keeps per model: rollback targets, sampled
// predictions and exports must be within this many versions of its newest.
constexpr int kReferenceVersions = 256;
// Rollback targets are at most this far behind the newest version, so that
// the reference still keeps them when it replays the rollback.
constexpr uint64_t kRollbackReach = 128;
constexpr size_t kSamplesPerModelAndLife = 40;
// Exports kept per server life to compare (a blob of the 2^18 model is 3 MB).
constexpr int kExportsPerLife = 16;

enum CallKind {
  kCreate,
  kImport,
  kDelete,
  kUpdate,
  kStream,
  kPredict,
  kRollback,
  kExport,
  kGet,
  kList,
  kNumCallKinds
};
constexpr const char* kCallNames[kNumCallKinds] = {
    "CreateModel", "ImportModel",           "DeleteModel",
    "Update",      "StreamUpdate requests", "Predict",
    "Rollback",    "ExportModel",           "GetModel",
    "ListModels"};

// Why an error was expected: a column of the report.
enum Expected {
  kServerDown,
  kCancelledAtShutdown,
  kModelDeleted,
  kVersionGone,
  kNumExpected
};
constexpr const char* kExpectedNames[kNumExpected] = {
    "UNAVAILABLE once the server is being killed or stopped",
    "CANCELLED once it is stopped (SIGTERM): a few calls get it during a "
    "drain",
    "NOT_FOUND on a model whose DeleteModel was sent",
    "NOT_FOUND for a version asked for that is no longer kept"};

struct ModelKind {
  const char* what;
  v1::ModelType type;
  int64_t num_features;
  int32_t num_classes;
  void (*tune)(v1::ModelSpec*);
};

const std::vector<ModelKind>& Kinds() {
  static const auto* kinds = new std::vector<ModelKind>{
      {"logistic D=20 AdaGrad", v1::LOGISTIC_REGRESSION, 20, 0,
       [](v1::ModelSpec*) {}},
      {"logistic D=2^18 FTRL L1", v1::LOGISTIC_REGRESSION, 1 << 18, 0,
       [](v1::ModelSpec* s) {
         s->mutable_optimizer()->set_kind(v1::FTRL);
         s->mutable_optimizer()->set_l1(0.5f);
       }},
      {"softmax D=50 K=4 SGD minibatch 2", v1::SOFTMAX_REGRESSION, 50, 4,
       [](v1::ModelSpec* s) {
         s->mutable_optimizer()->set_kind(v1::SGD);
         s->mutable_optimizer()->set_learning_rate(0.1f);
         s->mutable_optimizer()->set_power_t(0.5f);
         s->set_minibatch_size(2);
       }},
      {"linear D=200 Adam clipped", v1::LINEAR_REGRESSION, 200, 0,
       [](v1::ModelSpec* s) {
         s->mutable_optimizer()->set_kind(v1::ADAM);
         s->mutable_optimizer()->set_learning_rate(0.01f);
         s->set_max_gradient_norm(5.0f);
       }},
      {"softmax D=2^16 K=3 AdaGrad drift BOOST", v1::SOFTMAX_REGRESSION,
       1 << 16, 3,
       [](v1::ModelSpec* s) {
         s->mutable_drift()->set_detector(v1::PAGE_HINKLEY);
         s->mutable_drift()->set_policy(v1::BOOST);
       }},
      {"logistic D=100 SGD L2 drift CHALLENGER", v1::LOGISTIC_REGRESSION, 100,
       0,
       [](v1::ModelSpec* s) {
         s->mutable_optimizer()->set_kind(v1::SGD);
         s->set_l2(1e-4f);
         s->mutable_drift()->set_policy(v1::CHALLENGER);
       }},
  };
  return *kinds;
}

// One versioned change of a model, answered and not yet in the reference.
struct Op {
  v1::UpdateRequest request;
  v1::UpdateResponse response;
};

// A rollback: its version is the one in [lo, hi] that no update claims.
// Answered, lo == hi == the version it answered; in flight when the server
// went down, hi is the recovered model's version.
struct Rollback {
  uint64_t target = 0;
  uint64_t lo = 0;
  uint64_t hi = 0;
};

enum class Life { kLive, kDeleting, kDeleted };

struct Model {
  std::string name;
  int kind = 0;
  Shape shape;
  std::vector<v1::Features> probes;
  std::unique_ptr<Workload> workload;
  Life life = Life::kLive;
  // How the reference makes it: CreateModel's answer, or an imported blob.
  v1::ModelInfo created;
  std::string imported_blob;
  uint64_t base_version = 1;
  bool in_reference = false;
  // The reference holds every version up to this one.
  uint64_t ref_version = 0;
  std::map<uint64_t, Op> ops;                  // by version
  std::vector<Rollback> rollbacks;             // in the order answered
  std::vector<v1::UpdateRequest> in_flight;    // unanswered at a kill
  std::optional<Rollback> rollback_in_flight;  // hi unknown
  uint64_t seen_version = 0;  // newest version a Predict answered with
  // Served during the load, compared when the replay reaches their version:
  // Predict answers (this life's first kSamplesPerModelAndLife sampled) and
  // exports, by version.
  std::multimap<uint64_t, v1::PredictResponse> samples;
  std::map<uint64_t, std::string> exports;
};

enum class AdminOp { kNone, kCreate, kImport, kDelete };

struct Tally {
  std::array<int64_t, kNumCallKinds> ok{};
  std::array<std::array<int64_t, kNumExpected>, kNumCallKinds> expected{};
  std::array<int64_t, kNumCallKinds> unexpected{};
};

struct RssSample {
  double seconds;
  int64_t kib;
};

// An expected error after which a change may or may not have been applied:
// the server went down (UNAVAILABLE), or a drain cancelled the call
// (CANCELLED). Such a change is retried, or looked up, after the restart.
bool OutcomeUnknown(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kCancelled;
}

double Mib(int64_t kib) { return static_cast<double>(kib) / 1024.0; }

// The bytes of the files under `dir`.
int64_t DirBytes(const std::string& dir) {
  std::error_code error;
  int64_t bytes = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator();
       it.increment(error)) {
    if (it->is_regular_file(error)) {
      bytes += static_cast<int64_t>(it->file_size(error));
    }
  }
  return bytes;
}

class Soak {
 public:
  Soak(uint64_t seed, absl::Duration duration)
      : rng_(seed), duration_(duration), ref_(kReferenceVersions) {}

  void Run();

 private:
  // --- the load (worker threads) ---
  void Updater(std::string target, uint64_t seed);
  void Streamer(std::string target, uint64_t seed);
  void Predictor(std::string target, uint64_t seed);
  void Admin(std::string target, uint64_t seed);
  void CreateOne(Conn& conn, Rng& rng);
  void ImportOne(Conn& conn, Rng& rng);
  void DeleteOne(Conn& conn, Rng& rng);
  void RollbackOne(Conn& conn, Rng& rng);
  void ExportOne(Conn& conn, Rng& rng);
  void ListOne(Conn& conn);
  // A version of `m` listed by GetModel (retained or checkpointed, within
  // kRollbackReach of the newest, not the newest), or 0; `info` gets the
  // answer.
  uint64_t ListedVersion(Conn& conn, Rng& rng, Model* m, v1::ModelInfo* info);

  // With mu_ held. Counts `s` for `kind`; false (and a failure) unless it
  // is OK or expected (see the opening comment).
  bool Judge(CallKind kind, const absl::Status& s, const Model* m,
             bool version_asked) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Model* PickLive(Rng& rng) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Model* AddModel(const std::string& name, int kind, uint64_t base,
                  uint64_t seed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordUpdate(Model* m, const v1::UpdateRequest& request,
                    const v1::UpdateResponse& response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Fail(std::string message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- after each restart (main thread, no load running) ---
  void Verify(Conn& conn);
  void ResolveAdmin(Conn& conn);
  void VerifyModel(Conn& conn, Model* m);
  // The Predict answers and exports `m` served at version `v`, against
  // the reference's `v`.
  void CheckServed(Model* m, uint64_t v,
                   std::multimap<uint64_t, v1::PredictResponse>& samples,
                   std::map<uint64_t, std::string>& exports);
  void CheckList(Conn& conn);

  // --- the end ---
  void Report(const std::vector<RssSample>& rss);

  Rng rng_;
  const absl::Duration duration_;
  Reference ref_;  // main thread only

  std::atomic<bool> going_down_{false};
  std::atomic<bool> terminating_{false};  // going down by SIGTERM
  std::atomic<bool> stop_{false};

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Model>> models_ ABSL_GUARDED_BY(mu_);
  std::vector<Model*> live_ ABSL_GUARDED_BY(mu_);
  int next_model_ ABSL_GUARDED_BY(mu_) = 0;
  AdminOp admin_op_ ABSL_GUARDED_BY(mu_) = AdminOp::kNone;
  Model* admin_model_ ABSL_GUARDED_BY(mu_) = nullptr;
  int exports_this_life_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  Tally tally_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> deleted_last_life_ ABSL_GUARDED_BY(mu_);
  int64_t created_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t imported_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t deleted_ ABSL_GUARDED_BY(mu_) = 0;

  // What the checks covered (main thread).
  int64_t restarts_ = 0, kills_ = 0, terms_ = 0;
  std::array<int, 3> fsync_lives_{};
  int64_t model_recoveries_ = 0, models_compared_ = 0;
  int64_t updates_replayed_ = 0, rollbacks_replayed_ = 0;
  int64_t retried_ = 0, retried_recovered_ = 0;
  int64_t rollbacks_unanswered_ = 0, rollbacks_unanswered_recovered_ = 0;
  int64_t admin_unanswered_ = 0;
  int64_t samples_checked_ = 0, samples_skipped_ = 0;
  int64_t exports_checked_ = 0, exports_skipped_ = 0;
  std::vector<double> restart_seconds_;
};

void Soak::Fail(std::string message) {
  if (failures_.size() < 50) failures_.push_back(std::move(message));
}

bool Soak::Judge(CallKind kind, const absl::Status& s, const Model* m,
                 bool version_asked) {
  if (s.ok()) {
    ++tally_.ok[kind];
    return true;
  }
  Expected why = kNumExpected;
  if (s.code() == absl::StatusCode::kUnavailable && going_down_.load()) {
    why = kServerDown;
  } else if (s.code() == absl::StatusCode::kCancelled && terminating_.load()) {
    why = kCancelledAtShutdown;
  } else if (s.code() == absl::StatusCode::kNotFound && m != nullptr &&
             m->life != Life::kLive) {
    why = kModelDeleted;
  } else if (s.code() == absl::StatusCode::kNotFound && version_asked &&
             absl::StrContains(s.message(), "version")) {
    why = kVersionGone;
  }
  if (why != kNumExpected) {
    ++tally_.expected[kind][why];
    return true;
  }
  ++tally_.unexpected[kind];
  Fail(absl::StrCat(kCallNames[kind], m != nullptr ? " on " : "",
                    m != nullptr ? m->name : "", ": unexpected ",
                    s.ToString()));
  return false;
}

Model* Soak::PickLive(Rng& rng) {
  if (live_.empty()) return nullptr;
  return live_[rng.Below(live_.size())];
}

Model* Soak::AddModel(const std::string& name, int kind, uint64_t base,
                      uint64_t seed) {
  auto m = std::make_unique<Model>();
  const ModelKind& k = Kinds()[kind];
  m->name = name;
  m->kind = kind;
  m->shape = Shape{name, k.type, k.num_features, k.num_classes};
  m->probes = Probes(m->shape);
  m->workload =
      std::make_unique<Workload>(seed, std::vector<Shape>{m->shape}, name);
  m->base_version = base;
  m->ref_version = base;
  m->seen_version = base;
  models_.push_back(std::move(m));
  live_.push_back(models_.back().get());
  return models_.back().get();
}

void Soak::RecordUpdate(Model* m, const v1::UpdateRequest& request,
                        const v1::UpdateResponse& response) {
  if (m->life == Life::kDeleted) return;
  const uint64_t v = response.version();
  if (v <= m->ref_version || m->ops.count(v) > 0) {
    Fail(absl::StrCat("model ", m->name, ": update ", request.update_id(),
                      " was answered with version ", v,
                      ", which another call already had"));
    return;
  }
  m->ops[v] = Op{request, response};
}

// ---------------------------------------------------------------------------
// The load.

void Soak::Updater(std::string target, uint64_t seed) {
  Conn conn(target);
  Rng rng(seed);
  while (!stop_.load()) {
    Model* m;
    v1::UpdateRequest request;
    {
      absl::MutexLock lock(&mu_);
      m = PickLive(rng);
      if (m != nullptr) request = m->workload->Next();
    }
    if (m == nullptr) {
      absl::SleepFor(absl::Milliseconds(20));
      continue;
    }
    absl::StatusOr<v1::UpdateResponse> r = conn.Update(request);
    absl::MutexLock lock(&mu_);
    if (r.ok()) {
      ++tally_.ok[kUpdate];
      RecordUpdate(m, request, *r);
      continue;
    }
    if (Judge(kUpdate, r.status(), m, false) && OutcomeUnknown(r.status()) &&
        m->life != Life::kDeleted) {
      m->in_flight.push_back(request);  // applied or not: retried later
    }
    if (going_down_.load()) return;
  }
}

void Soak::Streamer(std::string target, uint64_t seed) {
  Conn conn(target);
  Rng rng(seed);
  while (!stop_.load()) {
    Model* m;
    {
      absl::MutexLock lock(&mu_);
      m = PickLive(rng);
    }
    if (m == nullptr) {
      absl::SleepFor(absl::Milliseconds(20));
      continue;
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    auto stream = conn.stub().StreamUpdate(&context);
    std::optional<v1::UpdateRequest> unanswered;
    const int n = 1 + static_cast<int>(rng.Below(16));
    for (int i = 0; i < n && !stop_.load(); ++i) {
      v1::UpdateRequest request;
      {
        absl::MutexLock lock(&mu_);
        if (m->life != Life::kLive) break;
        request = m->workload->Next();
      }
      v1::UpdateResponse response;
      if (!stream->Write(request) || !stream->Read(&response)) {
        unanswered = std::move(request);
        break;
      }
      absl::MutexLock lock(&mu_);
      ++tally_.ok[kStream];
      RecordUpdate(m, request, response);
    }
    stream->WritesDone();
    const absl::Status s = client::FromGrpcStatus(stream->Finish());
    absl::MutexLock lock(&mu_);
    if (unanswered.has_value()) {
      if (s.ok()) {
        Fail(absl::StrCat("StreamUpdate on ", m->name,
                          ": ended OK with request ", unanswered->update_id(),
                          " unanswered"));
      } else {
        if (Judge(kStream, s, m, false) && OutcomeUnknown(s) &&
            m->life != Life::kDeleted) {
          m->in_flight.push_back(*unanswered);
        }
      }
    } else if (!s.ok()) {
      Judge(kStream, s, m, false);
    }
    if (!s.ok() && going_down_.load()) return;
  }
}

void Soak::Predictor(std::string target, uint64_t seed) {
  Conn conn(target);
  Rng rng(seed);
  while (!stop_.load()) {
    Model* m;
    uint64_t pin = 0;
    {
      absl::MutexLock lock(&mu_);
      m = PickLive(rng);
      if (m != nullptr && rng.OneIn(4)) {
        const uint64_t back = rng.Below(6);
        pin = m->seen_version >= m->base_version + back ? m->seen_version - back
                                                        : m->base_version;
      }
    }
    if (m == nullptr) {
      absl::SleepFor(absl::Milliseconds(20));
      continue;
    }
    absl::StatusOr<v1::PredictResponse> r =
        conn.Predict(m->name, m->probes, pin);
    absl::MutexLock lock(&mu_);
    if (!Judge(kPredict, r.status(), m, pin != 0) || !r.ok()) {
      if (going_down_.load()) return;
      continue;
    }
    if (pin != 0 && r->version() != pin) {
      Fail(absl::StrCat("Predict on ", m->name, " pinned to version ", pin,
                        " answered with version ", r->version()));
    }
    if (r->predictions_size() != static_cast<int>(m->probes.size())) {
      Fail(absl::StrCat("Predict on ", m->name, ": ", r->predictions_size(),
                        " predictions for ", m->probes.size(), " instances"));
    }
    m->seen_version = std::max(m->seen_version, r->version());
    if (m->samples.size() < kSamplesPerModelAndLife && rng.OneIn(8)) {
      const uint64_t v = r->version();
      m->samples.emplace(v, *std::move(r));
    }
  }
}

uint64_t Soak::ListedVersion(Conn& conn, Rng& rng, Model* m,
                             v1::ModelInfo* info) {
  absl::StatusOr<v1::ModelInfo> got = conn.Get(m->name);
  {
    absl::MutexLock lock(&mu_);
    if (!Judge(kGet, got.status(), m, false) || !got.ok()) return 0;
  }
  *info = *got;
  std::vector<uint64_t> listed;
  for (uint64_t v : got->retained_versions()) listed.push_back(v);
  for (uint64_t v : got->checkpointed_versions()) listed.push_back(v);
  std::vector<uint64_t> targets;
  for (uint64_t v : listed) {
    if (v != got->version() && v + kRollbackReach >= got->version()) {
      targets.push_back(v);
    }
  }
  if (targets.empty()) return 0;
  return targets[rng.Below(targets.size())];
}

void Soak::CreateOne(Conn& conn, Rng& rng) {
  const int kind = static_cast<int>(rng.Below(Kinds().size()));
  const ModelKind& k = Kinds()[kind];
  v1::ModelSpec spec;
  spec.set_type(k.type);
  spec.set_num_features(k.num_features);
  spec.set_num_classes(k.num_classes);
  k.tune(&spec);
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    name = absl::StrCat("m", next_model_++, "-k", kind);
    admin_op_ = AdminOp::kCreate;
    admin_model_ = nullptr;
  }
  absl::StatusOr<v1::ModelInfo> info = conn.Create(name, spec);
  absl::MutexLock lock(&mu_);
  if (!Judge(kCreate, info.status(), nullptr, false)) return;
  if (!info.ok()) {
    // Unanswered: ResolveAdmin looks the name up after the restart.
    admin_model_ = AddModel(name, kind, 1, rng.Next());
    admin_model_->life = Life::kDeleting;  // not picked meanwhile
    live_.pop_back();
    admin_model_->created.set_name(name);
    *admin_model_->created.mutable_spec() = spec;
    return;
  }
  admin_op_ = AdminOp::kNone;
  if (info->version() != 1) {
    Fail(absl::StrCat("CreateModel ", name, " answered version ",
                      info->version()));
  }
  Model* m = AddModel(name, kind, 1, rng.Next());
  m->created = *info;
  ++created_;
}

void Soak::ImportOne(Conn& conn, Rng& rng) {
  Model* src;
  {
    absl::MutexLock lock(&mu_);
    src = PickLive(rng);
  }
  if (src == nullptr) return;
  uint64_t version = 0;
  v1::ModelInfo info;
  if (rng.OneIn(2)) {
    version = ListedVersion(conn, rng, src, &info);
    if (going_down_.load()) return;
  }
  absl::StatusOr<v1::ExportModelResponse> e = conn.Export(src->name, version);
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    if (!Judge(kExport, e.status(), src, version != 0) || !e.ok()) return;
    if (exports_this_life_ < kExportsPerLife) {
      ++exports_this_life_;
      src->exports[e->version()] = e->model();
    }
    // The source's own number only: a chain of imports of imports would
    // outgrow the update_ids made from the name (at most 128 bytes).
    name = absl::StrCat("m", next_model_++, "-k", src->kind, "-from-",
                        src->name.substr(0, src->name.find('-')));
    admin_op_ = AdminOp::kImport;
    admin_model_ = nullptr;
  }
  absl::StatusOr<v1::ModelInfo> imported = conn.Import(name, e->model());
  absl::MutexLock lock(&mu_);
  if (!Judge(kImport, imported.status(), nullptr, false)) return;
  Model* m = AddModel(name, src->kind, e->version(), rng.Next());
  m->imported_blob = e->model();
  if (!imported.ok()) {
    admin_model_ = m;
    m->life = Life::kDeleting;
    live_.pop_back();
    return;
  }
  admin_op_ = AdminOp::kNone;
  ++imported_;
  if (imported->version() != e->version()) {
    Fail(absl::StrCat("ImportModel ", name, " answered version ",
                      imported->version(), " for a blob of version ",
                      e->version()));
  }
}

void Soak::DeleteOne(Conn& conn, Rng& rng) {
  Model* m;
  {
    absl::MutexLock lock(&mu_);
    m = PickLive(rng);
    if (m == nullptr) return;
    m->life = Life::kDeleting;
    live_.erase(std::find(live_.begin(), live_.end(), m));
    admin_op_ = AdminOp::kDelete;
    admin_model_ = m;
  }
  const absl::Status s = conn.Delete(m->name);
  absl::MutexLock lock(&mu_);
  if (!Judge(kDelete, s, nullptr, false) || !s.ok()) return;
  admin_op_ = AdminOp::kNone;
  m->life = Life::kDeleted;
  deleted_last_life_.push_back(m->name);
  ++deleted_;
}

void Soak::RollbackOne(Conn& conn, Rng& rng) {
  Model* m;
  {
    absl::MutexLock lock(&mu_);
    m = PickLive(rng);
  }
  if (m == nullptr) return;
  v1::ModelInfo info;
  const uint64_t target = ListedVersion(conn, rng, m, &info);
  if (target == 0) return;
  {
    absl::MutexLock lock(&mu_);
    m->rollback_in_flight = Rollback{target, info.version() + 1, 0};
  }
  absl::StatusOr<v1::ModelInfo> r = conn.Rollback(m->name, target);
  absl::MutexLock lock(&mu_);
  const bool expected = Judge(kRollback, r.status(), m, true);
  if (!r.ok()) {
    // The server went down: the rollback may be in the recovered model
    // (VerifyModel decides). Otherwise nothing was applied.
    if (!expected || !OutcomeUnknown(r.status())) {
      m->rollback_in_flight.reset();
    }
    return;
  }
  Rollback done = *m->rollback_in_flight;
  m->rollback_in_flight.reset();
  if (r->version() < done.lo) {
    Fail(absl::StrCat("Rollback of ", m->name, " answered version ",
                      r->version(), ", but the model was at ", done.lo - 1,
                      " before"));
    return;
  }
  done.lo = done.hi = r->version();
  m->rollbacks.push_back(done);
}

void Soak::ExportOne(Conn& conn, Rng& rng) {
  Model* m;
  {
    absl::MutexLock lock(&mu_);
    m = PickLive(rng);
  }
  if (m == nullptr) return;
  v1::ModelInfo info;
  const uint64_t version =
      rng.OneIn(2) ? ListedVersion(conn, rng, m, &info) : 0;
  absl::StatusOr<v1::ExportModelResponse> e = conn.Export(m->name, version);
  absl::MutexLock lock(&mu_);
  if (!Judge(kExport, e.status(), m, version != 0) || !e.ok()) return;
  if (version != 0 && e->version() != version) {
    Fail(absl::StrCat("ExportModel of ", m->name, " version ", version,
                      " answered version ", e->version()));
  }
  if (exports_this_life_ < kExportsPerLife) {
    ++exports_this_life_;
    m->exports[e->version()] = e->model();
  }
}

void Soak::ListOne(Conn& conn) {
  absl::StatusOr<v1::ListModelsResponse> list = conn.List();
  absl::MutexLock lock(&mu_);
  if (!Judge(kList, list.status(), nullptr, false) || !list.ok()) return;
  // Only this thread creates and deletes: the live set cannot change
  // under the call.
  std::set<std::string> want, got;
  for (const Model* m : live_) want.insert(m->name);
  for (const v1::ModelInfo& info : list->models()) got.insert(info.name());
  if (want != got) {
    Fail(absl::StrCat("ListModels named {", absl::StrJoin(got, ","),
                      "}, the live models are {", absl::StrJoin(want, ","),
                      "}"));
  }
}

void Soak::Admin(std::string target, uint64_t seed) {
  Conn conn(target);
  Rng rng(seed);
  while (!stop_.load() && !going_down_.load()) {
    absl::SleepFor(absl::Milliseconds(10 + rng.Below(60)));
    int live;
    {
      absl::MutexLock lock(&mu_);
      live = static_cast<int>(live_.size());
    }
    const uint64_t r = rng.Below(100);
    if (live < kMinModels || (live < kMaxModels && r < 10)) {
      if (live > 0 && rng.OneIn(3)) {
        ImportOne(conn, rng);
      } else {
        CreateOne(conn, rng);
      }
    } else if (live > kMinModels && r < 18) {
      DeleteOne(conn, rng);
    } else if (r < 45) {
      RollbackOne(conn, rng);
    } else if (r < 70) {
      ExportOne(conn, rng);
    } else if (r < 85) {
      v1::ModelInfo info;
      Model* m;
      {
        absl::MutexLock lock(&mu_);
        m = PickLive(rng);
      }
      if (m != nullptr) ListedVersion(conn, rng, m, &info);
    } else {
      ListOne(conn);
    }
  }
}

// ---------------------------------------------------------------------------
// After a restart.

void Soak::ResolveAdmin(Conn& conn) {
  Model* m;
  AdminOp op;
  {
    absl::MutexLock lock(&mu_);
    m = admin_model_;
    op = admin_op_;
    admin_op_ = AdminOp::kNone;
    admin_model_ = nullptr;
  }
  if (op == AdminOp::kNone || m == nullptr) return;
  ++admin_unanswered_;
  absl::StatusOr<v1::ModelInfo> info = conn.Get(m->name);
  ASSERT_TRUE(info.ok() || info.status().code() == absl::StatusCode::kNotFound)
      << "GetModel " << m->name << " after the restart: " << info.status();
  // An unanswered delete: done or not, delete it now.
  const absl::Status deleted = op == AdminOp::kDelete && info.ok()
                                   ? conn.Delete(m->name)
                                   : absl::OkStatus();
  ASSERT_TRUE(deleted.ok())
      << "DeleteModel " << m->name << " again: " << deleted;
  absl::MutexLock lock(&mu_);
  if (op == AdminOp::kDelete) {
    m->life = Life::kDeleted;
    deleted_last_life_.push_back(m->name);
    ++deleted_;
    return;
  }
  // An unanswered create or import: there at its first version, or not at
  // all.
  if (!info.ok()) {
    m->life = Life::kDeleted;
    return;
  }
  if (info->version() != m->base_version) {
    ADD_FAILURE() << (op == AdminOp::kCreate ? "CreateModel " : "ImportModel ")
                  << m->name << ", unanswered, recovered at version "
                  << info->version() << ", expected " << m->base_version;
    return;
  }
  if (op == AdminOp::kCreate) {
    m->created = *info;
    ++created_;
  } else {
    ++imported_;
  }
  m->life = Life::kLive;
  live_.push_back(m);
}

void Soak::VerifyModel(Conn& conn, Model* m) {
  SCOPED_TRACE(
      absl::StrCat("model ", m->name, " (", Kinds()[m->kind].what, ")"));
  if (!m->in_reference) {
    if (m->imported_blob.empty()) {
      ASSERT_NO_FATAL_FAILURE(ref_.Create(m->created));
    } else {
      absl::StatusOr<ModelInfo> info =
          ref_.store().ImportModel(m->name, m->imported_blob);
      ASSERT_TRUE(info.ok()) << info.status();
      ASSERT_EQ(info->version, m->base_version);
      m->imported_blob.clear();
    }
    m->in_reference = true;
  }
  absl::StatusOr<v1::ModelInfo> info = conn.Get(m->name);
  ASSERT_TRUE(info.ok()) << "not recovered: " << info.status();
  const uint64_t recovered = info->version();
  // The updates sent but not answered, again under their update_ids: the
  // original answer if the model recovered them, else applied now.
  for (const v1::UpdateRequest& request : m->in_flight) {
    absl::StatusOr<v1::UpdateResponse> r = conn.Update(request);
    ASSERT_TRUE(r.ok()) << "retry of update " << request.update_id() << ": "
                        << r.status();
    ++retried_;
    if (r->version() <= recovered) ++retried_recovered_;
    absl::MutexLock lock(&mu_);
    RecordUpdate(m, request, *r);
  }
  m->in_flight.clear();
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& f : failures_) ADD_FAILURE() << f;
    failures_.clear();
  }
  ASSERT_FALSE(::testing::Test::HasFailure());
  info = conn.Get(m->name);
  ASSERT_TRUE(info.ok()) << info.status();
  const uint64_t newest = info->version();
  if (!m->ops.empty()) {
    ASSERT_LE(m->ops.rbegin()->first, newest)
        << "an ACKNOWLEDGED update was lost: update "
        << m->ops.rbegin()->second.request.update_id()
        << " was answered with version " << m->ops.rbegin()->first
        << ", the recovered model is at version " << newest;
  }
  // The versions no update claims are the rollbacks', in order.
  std::vector<uint64_t> unclaimed;
  for (uint64_t v = m->ref_version + 1; v <= newest; ++v) {
    if (m->ops.count(v) == 0) unclaimed.push_back(v);
  }
  std::vector<Rollback> rollbacks = m->rollbacks;
  if (m->rollback_in_flight.has_value()) {
    ++rollbacks_unanswered_;
    if (unclaimed.size() == rollbacks.size() + 1) {
      ++rollbacks_unanswered_recovered_;
      rollbacks.push_back(*m->rollback_in_flight);
      rollbacks.back().hi = newest;
    }
  }
  ASSERT_EQ(unclaimed.size(), rollbacks.size())
      << "versions no answered call explains: {"
      << absl::StrJoin(unclaimed, ",") << "} for " << rollbacks.size()
      << " rollbacks, model at version " << newest;
  for (size_t i = 0; i < rollbacks.size(); ++i) {
    ASSERT_TRUE(unclaimed[i] >= rollbacks[i].lo &&
                unclaimed[i] <= rollbacks[i].hi)
        << "rollback to " << rollbacks[i].target << " answered in ["
        << rollbacks[i].lo << ", " << rollbacks[i].hi
        << "], the free version is " << unclaimed[i];
  }
  // What was served at versions the reference had before this replay.
  std::multimap<uint64_t, v1::PredictResponse> samples;
  std::map<uint64_t, std::string> exports;
  {
    absl::MutexLock lock(&mu_);
    samples.swap(m->samples);
    exports.swap(m->exports);
  }
  std::set<uint64_t> old;
  for (const auto& [v, unused] : samples) {
    if (v <= m->ref_version) old.insert(v);
  }
  for (const auto& [v, unused] : exports) {
    if (v <= m->ref_version) old.insert(v);
  }
  for (uint64_t v : old) {
    ASSERT_NO_FATAL_FAILURE(CheckServed(m, v, samples, exports));
  }
  // Into the reference, in version order; what was served at each version
  // compared as the replay passes it.
  size_t next_rollback = 0;
  for (uint64_t v = m->ref_version + 1; v <= newest; ++v) {
    auto op = m->ops.find(v);
    if (op != m->ops.end()) {
      SCOPED_TRACE(absl::StrCat("update ", op->second.request.update_id(),
                                " at version ", v));
      ASSERT_TRUE(
          ref_.Apply(op->second.request, &op->second.response).has_value());
      ++updates_replayed_;
    } else {
      const uint64_t target = rollbacks[next_rollback++].target;
      absl::StatusOr<ModelInfo> r = ref_.store().Rollback(m->name, target);
      ASSERT_TRUE(r.ok()) << "reference rollback to " << target << ": "
                          << r.status();
      ASSERT_EQ(r->version, v);
      ++rollbacks_replayed_;
    }
    ASSERT_FALSE(::testing::Test::HasFailure());
    ASSERT_NO_FATAL_FAILURE(CheckServed(m, v, samples, exports));
  }
  if (!samples.empty()) {
    FAIL() << "Predict answered with version " << samples.rbegin()->first
           << ", which the recovered model (at " << newest << ") does not have";
  }
  if (!exports.empty()) {
    FAIL() << "ExportModel answered version " << exports.rbegin()->first
           << ", which the recovered model (at " << newest << ") does not have";
  }
  m->ref_version = newest;
  m->ops.clear();
  m->rollbacks.clear();
  m->rollback_in_flight.reset();
  ExpectSameModel(conn, m->name, ref_, m->name, 0, m->probes);
  ++models_compared_;
}

void Soak::CheckServed(Model* m, uint64_t v,
                       std::multimap<uint64_t, v1::PredictResponse>& samples,
                       std::map<uint64_t, std::string>& exports) {
  auto [first, last] = samples.equal_range(v);
  auto e = exports.find(v);
  if (first == last && e == exports.end()) return;
  absl::StatusOr<std::shared_ptr<const ModelVersion>> want =
      ref_.store().AcquireVersion(m->name, v);
  if (!want.ok()) {  // older than the reference keeps
    samples_skipped_ += std::distance(first, last);
    exports_skipped_ += e != exports.end() ? 1 : 0;
  }
  if (want.ok() && first != last) {
    server::NamedFeatureViews named;
    std::vector<FeaturesView> views;
    for (const v1::Features& f : m->probes) {
      views.push_back(server::FeaturesOf(f, &named));
    }
    const Predictions p = (*want)->Predict(views);
    const int32_t k = p.num_outputs;
    for (auto it = first; it != last; ++it) {
      for (size_t i = 0; i < p.size(); ++i) {
        const v1::Prediction& g = it->second.predictions(static_cast<int>(i));
        const bool same =
            k > 1 ? g.probabilities_size() == k &&
                        FirstDifference(g.probabilities().data(),
                                        p.probabilities(i).data(),
                                        static_cast<size_t>(k)) == -1
                  : SameBits(g.value(), p.value(i));
        ASSERT_TRUE(same) << "Predict answered at version " << v << ", probe "
                          << i
                          << ", differs from the reference at that version";
      }
      ++samples_checked_;
    }
  }
  if (want.ok() && e != exports.end()) {
    absl::StatusOr<std::string> want_blob =
        ref_.store().ExportModel(m->name, v);
    ASSERT_TRUE(want_blob.ok()) << want_blob.status();
    absl::StatusOr<ModelState> got_state = DecodeModelState(e->second);
    absl::StatusOr<ModelState> want_state = DecodeModelState(*want_blob);
    ASSERT_TRUE(got_state.ok()) << got_state.status();
    ASSERT_TRUE(want_state.ok()) << want_state.status();
    ASSERT_EQ(got_state->version, v);
    ASSERT_EQ(got_state->params.size(), want_state->params.size());
    EXPECT_EQ(
        FirstDifference(got_state->params.data(), want_state->params.data(),
                        want_state->params.size()),
        -1)
        << "the export of version " << v << " differs from the reference's";
    EXPECT_EQ(got_state->counters.examples_seen,
              want_state->counters.examples_seen);
    EXPECT_TRUE(
        SameBits(got_state->counters.loss_sum, want_state->counters.loss_sum));
    ++exports_checked_;
  }
  samples.erase(first, last);
  if (e != exports.end()) exports.erase(e);
}

void Soak::CheckList(Conn& conn) {
  absl::StatusOr<v1::ListModelsResponse> list = conn.List();
  ASSERT_TRUE(list.ok()) << list.status();
  std::set<std::string> want, got;
  {
    absl::MutexLock lock(&mu_);
    for (const Model* m : live_) want.insert(m->name);
  }
  for (const v1::ModelInfo& info : list->models()) got.insert(info.name());
  EXPECT_EQ(got, want) << "ListModels after the restart";
}

void Soak::Verify(Conn& conn) {
  ASSERT_NO_FATAL_FAILURE(ResolveAdmin(conn));
  std::vector<std::string> deleted;
  std::vector<Model*> live;
  {
    absl::MutexLock lock(&mu_);
    deleted.swap(deleted_last_life_);
    live = live_;
  }
  for (const std::string& name : deleted) {
    EXPECT_EQ(conn.Get(name).status().code(), absl::StatusCode::kNotFound)
        << "deleted model " << name << " came back";
    ref_.store().DeleteModel(name).IgnoreError();
  }
  for (Model* m : live) {
    ASSERT_NO_FATAL_FAILURE(VerifyModel(conn, m));
    ++model_recoveries_;
  }
  {
    absl::MutexLock lock(&mu_);
    // The deleted models are forgotten (no worker runs now to hold one).
    for (const std::unique_ptr<Model>& m : models_) {
      if (m->life != Life::kDeleted) continue;
      samples_skipped_ += static_cast<int64_t>(m->samples.size());
      exports_skipped_ += static_cast<int64_t>(m->exports.size());
      if (m->in_reference) ref_.store().DeleteModel(m->name).IgnoreError();
    }
    models_.erase(std::remove_if(models_.begin(), models_.end(),
                                 [](const std::unique_ptr<Model>& m) {
                                   return m->life == Life::kDeleted;
                                 }),
                  models_.end());
  }
  ASSERT_NO_FATAL_FAILURE(CheckList(conn));
  absl::MutexLock lock(&mu_);
  exports_this_life_ = 0;
}

// ---------------------------------------------------------------------------
// The run.

void Soak::Run() {
  absl::StatusOr<ScratchDir> dir = ScratchDir::Create("lepton-soak");
  ASSERT_TRUE(dir.ok()) << dir.status();
  ServerProcess server(kServerPath);
  std::atomic<pid_t> pid{0};
  std::atomic<bool> sampling{true};
  std::mutex rss_mu;
  std::vector<RssSample> rss;
  const absl::Time start = absl::Now();
  std::thread sampler([&] {
    while (sampling.load()) {
      const pid_t p = pid.load();
      if (p > 0) {
        const int64_t kib = RssKib(p);
        if (kib > 0) {
          std::lock_guard<std::mutex> lock(rss_mu);
          rss.push_back({absl::ToDoubleSeconds(absl::Now() - start), kib});
        }
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  });
  struct StopSampler {
    std::atomic<bool>* sampling;
    std::thread* sampler;
    ~StopSampler() {
      sampling->store(false);
      sampler->join();
    }
  } stop_sampler{&sampling, &sampler};

  const absl::Time deadline = start + duration_;
  const absl::Duration mean_life =
      std::clamp(duration_ / 12, absl::Seconds(3), absl::Seconds(12));
  constexpr const char* kFsync[] = {"always", "interval", "never"};
  for (int life = 0;; ++life) {
    const int fsync = static_cast<int>(rng_.Below(3));
    ++fsync_lives_[fsync];
    const std::vector<std::string> flags = {
        absl::StrCat("--data_dir=", dir->path()),
        absl::StrCat("--fsync=", kFsync[fsync]),
        "--metrics_listen=",
        "--checkpoint_every_updates=40",
        "--keep_checkpoints=3",
        "--retained_versions=8"};
    const absl::Time t0 = absl::Now();
    const absl::Status started = server.Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    const double restart = absl::ToDoubleSeconds(absl::Now() - t0);
    if (life > 0) {
      ++restarts_;
      restart_seconds_.push_back(restart);
    }
    pid.store(server.pid());
    const int64_t rss_start = RssKib(server.pid());
    {
      const std::string err = server.err_text();
      EXPECT_TRUE(absl::StrContains(err, "event=recovery_done") &&
                  absl::StrContains(err, " failed=0"))
          << "start-up log:\n"
          << err;
    }
    const int64_t replayed_before = updates_replayed_ + rollbacks_replayed_;
    {
      Conn conn(server.target());
      Verify(conn);
    }
    if (::testing::Test::HasFailure()) {
      std::printf("soak: FAILED in the checks after start %d\n", life);
      break;
    }
    int live;
    {
      absl::MutexLock lock(&mu_);
      live = static_cast<int>(live_.size());
    }
    // Printed whole at the end of the life, so that a failure's message
    // does not split it.
    const std::string line = absl::StrFormat(
        "life %3d: fsync=%-8s start %.2f s, %2d models in step (%d versions "
        "replayed), RSS %.1f MiB, data %.1f MiB",
        life, kFsync[fsync], restart, live,
        updates_replayed_ + rollbacks_replayed_ - replayed_before,
        Mib(rss_start), Mib(DirBytes(dir->path()) / 1024));
    if (absl::Now() >= deadline) {
      std::printf("%s; the end: SIGTERM\n", line.c_str());
      break;
    }

    // The load, until a kill or a SIGTERM at a random moment.
    going_down_.store(false);
    terminating_.store(false);
    stop_.store(false);
    std::vector<std::thread> workers;
    const std::string target = server.target();
    for (int i = 0; i < 3; ++i) {
      workers.emplace_back(&Soak::Updater, this, target, rng_.Next());
    }
    workers.emplace_back(&Soak::Streamer, this, target, rng_.Next());
    for (int i = 0; i < 2; ++i) {
      workers.emplace_back(&Soak::Predictor, this, target, rng_.Next());
    }
    workers.emplace_back(&Soak::Admin, this, target, rng_.Next());
    const absl::Duration run =
        std::min(mean_life * (0.2 + 1.6 * rng_.Uniform(0.0f, 1.0f)),
                 std::max(deadline - absl::Now(), absl::Milliseconds(500)));
    absl::SleepFor(run);
    const bool graceful = rng_.OneIn(5);
    going_down_.store(true);
    std::optional<int> code;
    if (graceful) {
      ++terms_;
      terminating_.store(true);
      stop_.store(true);
      server.process().Signal(SIGTERM);
      for (std::thread& t : workers) t.join();
      code = server.process().Wait(absl::Seconds(60));
      EXPECT_EQ(code, std::optional<int>(0))
          << "SIGTERM: the server's exit status\n"
          << server.err_text();
    } else {
      ++kills_;
      server.process().Signal(SIGKILL);
      code = server.process().Wait(absl::Seconds(20));
      EXPECT_EQ(code, std::optional<int>(-SIGKILL));
      stop_.store(true);
      for (std::thread& t : workers) t.join();
    }
    pid.store(0);
    const std::string err = server.err_text();
    EXPECT_FALSE(absl::StrContains(err, "level=error"))
        << "the server logged errors:\n"
        << err;
    int unanswered = 0;
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& f : failures_) ADD_FAILURE() << f;
      failures_.clear();
      for (const std::unique_ptr<Model>& m : models_) {
        unanswered += static_cast<int>(m->in_flight.size()) +
                      (m->rollback_in_flight.has_value() ? 1 : 0);
      }
      unanswered += admin_op_ != AdminOp::kNone ? 1 : 0;
    }
    std::printf("%s; %.1f s of load, %s, %d calls unanswered\n", line.c_str(),
                absl::ToDoubleSeconds(run), graceful ? "SIGTERM" : "kill -9",
                unanswered);
    std::fflush(stdout);
    if (::testing::Test::HasFailure()) break;
  }
  if (!::testing::Test::HasFailure()) {
    absl::StatusOr<int> code = server.Terminate(absl::Seconds(60));
    EXPECT_TRUE(code.ok() && *code == 0)
        << "the last SIGTERM: "
        << (code.ok() ? absl::StrCat("exit ", *code) : code.status().ToString())
        << "\n"
        << server.err_text();
  }
  pid.store(0);
  if (::testing::Test::HasFailure()) {
    dir->Keep();
    std::printf("soak: the data directory is kept: %s\n", dir->path().c_str());
  }
  std::vector<RssSample> curve;
  {
    std::lock_guard<std::mutex> lock(rss_mu);
    curve = rss;
  }
  Report(curve);
}

void Soak::Report(const std::vector<RssSample>& rss) {
  absl::MutexLock lock(&mu_);
  std::printf("\nsoak: %.0f s, seed %llu\n", absl::ToDoubleSeconds(duration_),
              static_cast<unsigned long long>(BaseSeed()));
  std::printf(
      "server lives: %lld restarts after %lld kill -9 and %lld SIGTERM "
      "(fsync always %d, interval %d, never %d lives)\n",
      static_cast<long long>(restarts_), static_cast<long long>(kills_),
      static_cast<long long>(terms_), fsync_lives_[0], fsync_lives_[1],
      fsync_lives_[2]);
  if (!restart_seconds_.empty()) {
    std::vector<double> s = restart_seconds_;
    std::sort(s.begin(), s.end());
    std::printf("start-up with recovery: median %.2f s, max %.2f s\n",
                s[s.size() / 2], s.back());
  }
  std::printf("\n%-22s %10s %10s %10s %10s %10s %10s\n", "calls", "ok", "down",
              "cancelled", "deleted", "gone", "unexpected");
  for (int k = 0; k < kNumCallKinds; ++k) {
    std::printf("%-22s %10lld", kCallNames[k],
                static_cast<long long>(tally_.ok[k]));
    for (int e = 0; e < kNumExpected; ++e) {
      std::printf(" %10lld", static_cast<long long>(tally_.expected[k][e]));
    }
    std::printf(" %10lld\n", static_cast<long long>(tally_.unexpected[k]));
  }
  std::printf(
      "expected errors: down = %s;\n  cancelled = %s;\n  deleted = %s;\n  "
      "gone = %s\n",
      kExpectedNames[kServerDown], kExpectedNames[kCancelledAtShutdown],
      kExpectedNames[kModelDeleted], kExpectedNames[kVersionGone]);
  std::printf(
      "\nmodels: %lld created, %lld imported, %lld deleted, %zu live at the "
      "end\n",
      static_cast<long long>(created_), static_cast<long long>(imported_),
      static_cast<long long>(deleted_), live_.size());
  std::printf(
      "recoveries: %lld models recovered and compared bit for bit with the "
      "reference (%lld comparisons)\n",
      static_cast<long long>(model_recoveries_),
      static_cast<long long>(models_compared_));
  std::printf(
      "replayed into the reference: %lld answered updates, %lld rollbacks\n",
      static_cast<long long>(updates_replayed_),
      static_cast<long long>(rollbacks_replayed_));
  std::printf(
      "unanswered at a kill or SIGTERM: %lld updates retried by update_id "
      "(%lld had been recovered), %lld rollbacks (%lld recovered), %lld "
      "creates/imports/deletes\n",
      static_cast<long long>(retried_),
      static_cast<long long>(retried_recovered_),
      static_cast<long long>(rollbacks_unanswered_),
      static_cast<long long>(rollbacks_unanswered_recovered_),
      static_cast<long long>(admin_unanswered_));
  std::printf(
      "served during the load, compared with the reference at their "
      "versions: %lld Predict answers (%lld not: the model deleted), %lld "
      "exports (%lld not)\n",
      static_cast<long long>(samples_checked_),
      static_cast<long long>(samples_skipped_),
      static_cast<long long>(exports_checked_),
      static_cast<long long>(exports_skipped_));

  // The RSS curve: one row per slice of the run, the peak as a bar.
  if (rss.empty()) {
    ADD_FAILURE() << "no RSS sample";
    return;
  }
  const double total = rss.back().seconds;  // the run may outlast duration_
  const int rows = 20;
  int64_t top = 0;
  for (const RssSample& s : rss) top = std::max(top, s.kib);
  std::printf(
      "\nRSS of lepton_server, MiB (sampled every 200 ms; each row the low "
      "and the peak of its slice, the bar the peak):\n");
  for (int r = 0; r < rows; ++r) {
    const double lo = total * r / rows, hi = total * (r + 1) / rows;
    int64_t low = -1, peak = -1;
    for (const RssSample& s : rss) {
      if (s.seconds >= lo && (s.seconds < hi || r == rows - 1)) {
        low = low < 0 ? s.kib : std::min(low, s.kib);
        peak = std::max(peak, s.kib);
      }
    }
    if (peak < 0) {
      std::printf("%6.0f-%6.0f s  (no server running)\n", lo, hi);
      continue;
    }
    const int bar = static_cast<int>(50.0 * peak / top + 0.5);
    std::printf("%6.0f-%6.0f s %7.1f %7.1f |%s\n", lo, hi, Mib(low), Mib(peak),
                std::string(bar, '#').c_str());
  }
  auto peak_in = [&](double from, double to) {
    int64_t peak = 0;
    for (const RssSample& s : rss) {
      if (s.seconds >= from && s.seconds < to) peak = std::max(peak, s.kib);
    }
    return peak;
  };
  const int64_t middle = peak_in(total / 3, 2 * total / 3);
  const int64_t last = peak_in(2 * total / 3, 1e18);
  const int64_t bound = middle * 3 / 2 + 32 * 1024;
  std::printf(
      "RSS peak: middle third %.1f MiB, last third %.1f MiB (bound: 1.5 x "
      "middle + 32 = %.1f MiB)\n",
      Mib(middle), Mib(last), Mib(bound));
  EXPECT_GT(middle, 0) << "no RSS sample in the middle third of the run";
  EXPECT_LE(last, bound) << "the server's memory grew: RSS peak " << Mib(last)
                         << " MiB in the last third of the "
                         << "run, " << Mib(middle) << " MiB in the middle";
  int64_t unexpected = 0;
  for (int64_t u : tally_.unexpected) unexpected += u;
  std::printf("unexpected errors: %lld\n", static_cast<long long>(unexpected));
  std::fflush(stdout);
}

TEST(SoakTest, KillRestartAndCompareWithTheReference) {
  const absl::Duration duration =
      absl::Seconds(EnvU64("LEPTON_SOAK_SECONDS", 60));
  Soak soak(BaseSeed(), duration);
  soak.Run();
}

}  // namespace
}  // namespace lepton::testing
