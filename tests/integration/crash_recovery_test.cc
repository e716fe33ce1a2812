// Crash recovery of the real lepton_server binary: the durability promise is
// that once Update has answered (--fsync=always), the update survives a
// kill -9 and a restart, and the model comes back bit-identical.
//
// Each test owns its data directories and restarts the server on them. The
// reference for "bit-identical" is the core in-process (a memory-only
// lepton::ModelStore with the same spec) fed exactly the updates the
// recovered model holds; the server's predictions on fixed probes, its
// exported weights and optimizer state, and its counters are compared with
// the reference's bit for bit.
//
//   KillNineRounds: >= 20 rounds of "updates from one thread, SIGKILL at a
//     seeded random moment, restart, compare", on one data directory, so
//     later rounds recover from the logs and checkpoints earlier recoveries
//     left. Every 4th round runs long enough for the server's checkpointer
//     (it looks once a second) to write checkpoints mid-run.
//   KillDuringCheckpoint: a 2^20-feature model (8 MB checkpoints) with a
//     checkpoint after every update; the kill lands while a checkpoint's
//     temporary file is being written (or just after).
//   KillDuringRollbackCheckpoint: the same while a Rollback writes its
//     checkpoint, followed by updates, a checkpoint and another kill.
//   RollbackExportImportAndRetry: Rollback, ExportModel/ImportModel between
//     two servers, a graceful restart, idempotent retries across a kill -9.
//
// Environment: LEPTON_CRASH_SEED fixes the base seed (random otherwise; it
// is printed), LEPTON_CRASH_ROUNDS raises the round count of KillNineRounds.
// Round r of a test uses seed base + r; a round depends on the rounds before
// it, so reproduce with the same base seed and at least r + 1 rounds.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/storage/model_files.h"
#include "core/storage/model_state.h"
#include "core/store/model_store.h"
#include "gtest/gtest.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

// ---------------------------------------------------------------------------
// Seeds and randomness.

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  uint64_t parsed = 0;
  if (value != nullptr && absl::SimpleAtoi(value, &parsed)) return parsed;
  return fallback;
}

// The base seed of every test in this process: LEPTON_CRASH_SEED or random.
uint64_t BaseSeed() {
  static const uint64_t seed = [] {
    const uint64_t s = EnvU64("LEPTON_CRASH_SEED", std::random_device{}());
    std::fprintf(stderr,
                 "crash_recovery_test: base seed %llu (rerun with "
                 "LEPTON_CRASH_SEED=%llu)\n",
                 static_cast<unsigned long long>(s),
                 static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

// splitmix64: the same stream on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  float Uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(Next() >> 40) /
                    static_cast<float>(uint64_t{1} << 24);
  }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------------------
// Files.

// Names in `dir` (readdir, so that files vanishing meanwhile are no error).
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> TmpFiles(const std::string& dir) {
  std::vector<std::string> tmp;
  for (const std::string& n : ListDir(dir)) {
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0) {
      tmp.push_back(n);
    }
  }
  return tmp;
}

std::string ModelDir(const std::string& data_dir, const std::string& model) {
  return absl::StrCat(data_dir, "/models/", model);
}

// "3 ckpt, 2 wal, 1 tmp".
std::string DescribeFiles(const std::string& dir) {
  int ckpt = 0, wal = 0, tmp = 0, other = 0;
  for (const std::string& n : ListDir(dir)) {
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0) {
      ++tmp;
    } else if (n.rfind("checkpoint-", 0) == 0) {
      ++ckpt;
    } else if (n.rfind("wal-", 0) == 0) {
      ++wal;
    } else {
      ++other;
    }
  }
  return absl::StrCat(ckpt, " ckpt, ", wal, " wal, ", tmp, " tmp",
                      other > 0 ? absl::StrCat(", ", other, " other") : "");
}

// ---------------------------------------------------------------------------
// The server over its generated stubs (Rollback, ExportModel and ImportModel
// are not in the client library).

class Conn {
 public:
  explicit Conn(const std::string& target) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    stub_ = v1::ModelService::NewStub(grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), args));
  }

  absl::StatusOr<v1::ModelInfo> Create(const std::string& name,
                                       const v1::ModelSpec& spec) {
    v1::CreateModelRequest request;
    request.set_name(name);
    *request.mutable_spec() = spec;
    return Call<v1::ModelInfo>(
        [&](auto* c, auto* r) { return stub_->CreateModel(c, request, r); });
  }
  absl::StatusOr<v1::ModelInfo> Get(const std::string& name) {
    v1::GetModelRequest request;
    request.set_name(name);
    return Call<v1::ModelInfo>(
        [&](auto* c, auto* r) { return stub_->GetModel(c, request, r); });
  }
  absl::StatusOr<v1::UpdateResponse> Update(const v1::UpdateRequest& request) {
    return Call<v1::UpdateResponse>(
        [&](auto* c, auto* r) { return stub_->Update(c, request, r); });
  }
  absl::StatusOr<v1::PredictResponse> Predict(
      const std::string& name, const std::vector<v1::Features>& instances,
      uint64_t version = 0) {
    v1::PredictRequest request;
    request.set_model(name);
    request.set_version(version);
    for (const v1::Features& f : instances) *request.add_instances() = f;
    return Call<v1::PredictResponse>(
        [&](auto* c, auto* r) { return stub_->Predict(c, request, r); });
  }
  absl::StatusOr<v1::ModelInfo> Rollback(const std::string& name,
                                         uint64_t version) {
    v1::RollbackRequest request;
    request.set_name(name);
    request.set_version(version);
    return Call<v1::ModelInfo>(
        [&](auto* c, auto* r) { return stub_->Rollback(c, request, r); });
  }
  absl::StatusOr<v1::ExportModelResponse> Export(const std::string& name,
                                                 uint64_t version = 0) {
    v1::ExportModelRequest request;
    request.set_name(name);
    request.set_version(version);
    return Call<v1::ExportModelResponse>(
        [&](auto* c, auto* r) { return stub_->ExportModel(c, request, r); });
  }
  absl::StatusOr<v1::ModelInfo> Import(const std::string& name,
                                       const std::string& blob) {
    v1::ImportModelRequest request;
    request.set_name(name);
    request.set_model(blob);
    return Call<v1::ModelInfo>(
        [&](auto* c, auto* r) { return stub_->ImportModel(c, request, r); });
  }

 private:
  template <typename Response, typename Fn>
  absl::StatusOr<Response> Call(Fn fn) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    Response response;
    const grpc::Status status = fn(&context, &response);
    if (!status.ok()) return client::FromGrpcStatus(status);
    return response;
  }

  std::unique_ptr<v1::ModelService::Stub> stub_;
};

// ---------------------------------------------------------------------------
// Wire messages as the core's types, for the reference.

ModelSpec CoreSpec(const v1::ModelSpec& p) {  // p: every default filled in
  ModelSpec s;
  s.type = static_cast<ModelType>(p.type());
  s.num_features = p.num_features();
  s.num_classes = p.num_classes();
  s.l2 = p.l2();
  s.minibatch_size = p.minibatch_size();
  s.optimizer.kind = static_cast<OptimizerKind>(p.optimizer().kind());
  s.optimizer.learning_rate = p.optimizer().learning_rate();
  s.optimizer.power_t = p.optimizer().power_t();
  s.optimizer.epsilon = p.optimizer().epsilon();
  s.optimizer.initial_accumulator = p.optimizer().initial_accumulator();
  return s;
}

Features CoreFeatures(const v1::Features& f) {
  Features out;
  out.dense.assign(f.dense().begin(), f.dense().end());
  out.indices.assign(f.indices().begin(), f.indices().end());
  out.values.assign(f.values().begin(), f.values().end());
  return out;
}

std::vector<Example> CoreExamples(const v1::UpdateRequest& request) {
  std::vector<Example> out;
  for (const v1::Example& e : request.examples()) {
    out.push_back({CoreFeatures(e.features()), e.label(),
                   e.has_weight() ? e.weight() : 1.0f});
  }
  return out;
}

UpdateOptions CoreOptions(const v1::UpdateRequest& request) {
  UpdateOptions options;
  if (request.epochs() != 0) options.epochs = request.epochs();
  if (request.learning_rate() != 0) {
    options.learning_rate = request.learning_rate();
  }
  return options;
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// ---------------------------------------------------------------------------
// The reference: the core in-process, memory only.

class Reference {
 public:
  explicit Reference(int32_t retained_versions = 8)
      : store_(Options(retained_versions)) {}

  void Create(const v1::ModelInfo& created) {
    absl::StatusOr<ModelInfo> info =
        store_.CreateModel(created.name(), CoreSpec(created.spec()));
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_EQ(info->version, created.version());
  }

  uint64_t Version(const std::string& name) const {
    absl::StatusOr<ModelInfo> info = store_.GetModel(name);
    return info.ok() ? info->version : 0;
  }

  // Applies `request`; with `expected` (the server's answer to it), checks
  // that the reference answers the same, bit for bit.
  std::optional<UpdateResult> Apply(const v1::UpdateRequest& request,
                                    const v1::UpdateResponse* expected) {
    const std::vector<Example> examples = CoreExamples(request);
    absl::StatusOr<UpdateResult> result =
        store_.Update(request.model(), Views(examples), CoreOptions(request));
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return std::nullopt;
    if (expected != nullptr) ExpectSameResult(*expected, *result);
    return *result;
  }

  static void ExpectSameResult(const v1::UpdateResponse& server,
                               const UpdateResult& ref) {
    EXPECT_EQ(server.version(), ref.version);
    EXPECT_EQ(server.examples(), ref.examples);
    EXPECT_TRUE(SameBits(server.loss_before(), ref.loss_before))
        << absl::StrFormat("loss_before: server %a, reference %a",
                           server.loss_before(), ref.loss_before);
    EXPECT_EQ(server.has_accuracy_before(), ref.accuracy_before.has_value());
    if (server.has_accuracy_before() && ref.accuracy_before.has_value()) {
      EXPECT_TRUE(SameBits(server.accuracy_before(), *ref.accuracy_before));
    }
  }

  ModelStore& store() { return store_; }

 private:
  static StoreOptions Options(int32_t retained_versions) {
    StoreOptions options;  // data_dir empty: memory only
    options.retained_versions = retained_versions;
    return options;
  }

  ModelStore store_;
};

// The first index where two float arrays differ in bits, or -1.
int64_t FirstDifference(const float* a, const float* b, size_t n) {
  if (std::memcmp(a, b, n * sizeof(float)) == 0) return -1;
  for (size_t i = 0; i < n; ++i) {
    if (!SameBits(a[i], b[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

// The server's model `server_name` (its newest version) against the
// reference's `ref_name` at `ref_version` (0: its newest): version, counters,
// predictions on `probes`, and the whole exported state, bit for bit.
void ExpectSameModel(Conn& conn, const std::string& server_name, Reference& ref,
                     const std::string& ref_name, uint64_t ref_version,
                     const std::vector<v1::Features>& probes) {
  SCOPED_TRACE(absl::StrCat("server model \"", server_name,
                            "\" vs reference \"", ref_name, "\""));
  absl::StatusOr<std::shared_ptr<const ModelVersion>> rv =
      ref.store().AcquireVersion(ref_name, ref_version);
  ASSERT_TRUE(rv.ok()) << rv.status();
  const ModelVersion& want = **rv;

  absl::StatusOr<v1::ModelInfo> info = conn.Get(server_name);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->version(), want.version());
  const ModelCounters& c = want.counters();
  EXPECT_EQ(info->examples_seen(), c.examples_seen);
  EXPECT_EQ(info->updates(), c.updates);
  EXPECT_EQ(info->steps(), c.steps);
  EXPECT_TRUE(SameBits(info->weight_seen(), c.weight_seen)) << absl::StrFormat(
      "weight_seen %a vs %a", info->weight_seen(), c.weight_seen);
  EXPECT_TRUE(SameBits(info->progressive_loss(), c.progressive_loss()))
      << absl::StrFormat("progressive_loss %a vs %a", info->progressive_loss(),
                         c.progressive_loss());
  EXPECT_TRUE(
      SameBits(info->progressive_accuracy(),
               want.spec().is_classifier() ? c.progressive_accuracy() : 0.0));

  // Predictions on the probes.
  absl::StatusOr<v1::PredictResponse> got = conn.Predict(server_name, probes);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version(), want.version());
  std::vector<Features> owned;
  for (const v1::Features& f : probes) owned.push_back(CoreFeatures(f));
  const Predictions p = want.Predict(Views(owned));
  ASSERT_EQ(got->predictions_size(), static_cast<int>(p.size()));
  const int32_t k = p.num_outputs;
  for (size_t i = 0; i < p.size(); ++i) {
    const v1::Prediction& g = got->predictions(static_cast<int>(i));
    if (want.spec().is_classifier()) {
      EXPECT_EQ(g.label(), p.labels[i]) << "probe " << i;
    }
    if (k > 1) {
      ASSERT_EQ(g.probabilities_size(), k);
      const int64_t at =
          FirstDifference(g.probabilities().data(), p.probabilities(i).data(),
                          static_cast<size_t>(k));
      EXPECT_EQ(at, -1) << absl::StrFormat(
          "probe %d class %d: server %a, reference %a", i, at,
          g.probabilities(static_cast<int>(std::max<int64_t>(at, 0))),
          p.probabilities(i)[std::max<int64_t>(at, 0)]);
    } else {
      EXPECT_TRUE(SameBits(g.value(), p.value(i))) << absl::StrFormat(
          "probe %d: server %a, reference %a", i, g.value(), p.value(i));
    }
  }

  // The whole state: weights, optimizer state, counters.
  absl::StatusOr<v1::ExportModelResponse> exported = conn.Export(server_name);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->version(), want.version());
  absl::StatusOr<ModelState> server_state = DecodeModelState(exported->model());
  ASSERT_TRUE(server_state.ok()) << server_state.status();
  absl::StatusOr<std::string> ref_blob =
      ref.store().ExportModel(ref_name, want.version());
  ASSERT_TRUE(ref_blob.ok()) << ref_blob.status();
  absl::StatusOr<ModelState> ref_state = DecodeModelState(*ref_blob);
  ASSERT_TRUE(ref_state.ok()) << ref_state.status();
  EXPECT_EQ(server_state->version, ref_state->version);
  ASSERT_EQ(server_state->params.size(), ref_state->params.size());
  const int64_t at =
      FirstDifference(server_state->params.data(), ref_state->params.data(),
                      ref_state->params.size());
  EXPECT_EQ(at, -1) << absl::StrFormat(
      "parameter %d of %d: server %a, reference %a", at,
      ref_state->params.size(), server_state->params[std::max<int64_t>(at, 0)],
      ref_state->params[std::max<int64_t>(at, 0)]);
  EXPECT_TRUE(
      SameBits(server_state->counters.loss_sum, ref_state->counters.loss_sum));
  EXPECT_TRUE(SameBits(server_state->counters.correct_weight,
                       ref_state->counters.correct_weight));
}

// ---------------------------------------------------------------------------
// Workloads.

struct Shape {
  std::string name;
  v1::ModelType type;
  int64_t num_features;
  int32_t num_classes;  // softmax only
};

v1::Features RandomFeatures(Rng& rng, int64_t d, bool allow_dense,
                            const std::vector<uint32_t>& hot) {
  v1::Features f;
  if (allow_dense && rng.OneIn(2)) {
    for (int64_t j = 0; j < d; ++j) {
      f.add_dense(rng.OneIn(5) ? 0.0f : rng.Uniform(-1.0f, 1.0f));
    }
    return f;
  }
  if (rng.OneIn(25)) return f;  // no nonzero feature
  const int n = 1 + static_cast<int>(rng.Below(std::min<int64_t>(d, 6)));
  std::vector<uint32_t> indices;
  while (static_cast<int>(indices.size()) < n) {
    const uint32_t i = !hot.empty() && rng.OneIn(2)
                           ? hot[rng.Below(hot.size())]
                           : static_cast<uint32_t>(rng.Below(d));
    if (std::find(indices.begin(), indices.end(), i) == indices.end()) {
      indices.push_back(i);
    }
  }
  for (uint32_t i : indices) {
    f.add_indices(i);
    f.add_values(rng.Uniform(-2.0f, 2.0f));
  }
  return f;
}

// Seeded Update requests over some models: batches of 1..8 examples, dense
// and sparse mixed (dense only for small D), occasional importance weights,
// epochs = 2 and learning-rate overrides. Every request carries an
// update_id, so an unanswered one can be retried after the restart.
class Workload {
 public:
  Workload(uint64_t seed, std::vector<Shape> shapes, std::string id_prefix)
      : rng_(seed), shapes_(std::move(shapes)), prefix_(std::move(id_prefix)) {
    Rng hot_rng(seed ^ 0x5bd1e995);
    for (const Shape& s : shapes_) {
      std::vector<uint32_t> hot;
      if (s.num_features > 64) {
        for (int i = 0; i < 64; ++i) hot.push_back(HotIndex(s, i));
      }
      hot_.push_back(std::move(hot));
    }
  }

  // The fixed probe features of `shape`: index i of its hot set.
  static uint32_t HotIndex(const Shape& s, int i) {
    return static_cast<uint32_t>((uint64_t{2654435761u} * (i + 1)) %
                                 static_cast<uint64_t>(s.num_features));
  }

  v1::UpdateRequest Next() {
    const size_t m = rng_.Below(shapes_.size());
    const Shape& s = shapes_[m];
    v1::UpdateRequest request;
    request.set_model(s.name);
    request.set_update_id(absl::StrCat(prefix_, "-", count_++));
    const int n = 1 + static_cast<int>(rng_.Below(8));
    const bool allow_dense = s.num_features <= 1024;
    for (int i = 0; i < n; ++i) {
      v1::Example* e = request.add_examples();
      *e->mutable_features() =
          RandomFeatures(rng_, s.num_features, allow_dense, hot_[m]);
      e->set_label(s.type == v1::SOFTMAX_REGRESSION
                       ? static_cast<float>(rng_.Below(s.num_classes))
                       : static_cast<float>(rng_.Below(2)));
      if (rng_.OneIn(6)) e->set_weight(rng_.Uniform(0.25f, 2.5f));
      if (rng_.OneIn(40)) e->set_weight(0.0f);
    }
    if (rng_.OneIn(8)) request.set_epochs(2);
    if (rng_.OneIn(8)) request.set_learning_rate(rng_.Uniform(0.01f, 0.3f));
    return request;
  }

 private:
  Rng rng_;
  std::vector<Shape> shapes_;
  std::vector<std::vector<uint32_t>> hot_;
  std::string prefix_;
  int64_t count_ = 0;
};

// Fixed probes: dense, sparse over the hot indices and random ones, empty.
std::vector<v1::Features> Probes(const Shape& s) {
  Rng rng(12345);
  std::vector<v1::Features> probes;
  for (int i = 0; i < 12; ++i) {
    v1::Features f;
    if (s.num_features <= 1024 && i < 4) {
      for (int64_t j = 0; j < s.num_features; ++j) {
        f.add_dense(rng.Uniform(-1.5f, 1.5f));
      }
    } else if (i < 11) {
      for (int j = 0; j < 5; ++j) {
        const uint32_t index =
            s.num_features > 64
                ? Workload::HotIndex(s, (i * 5 + j) % 64)
                : static_cast<uint32_t>((i * 7 + j * 3) % s.num_features);
        if (std::find(f.indices().begin(), f.indices().end(), index) !=
            f.indices().end()) {
          continue;
        }
        f.add_indices(index);
        f.add_values(rng.Uniform(-2.0f, 2.0f));
      }
    }  // i == 11: no nonzero feature (the bias alone)
    probes.push_back(std::move(f));
  }
  return probes;
}

// ---------------------------------------------------------------------------
// Kill rounds.

struct Sent {
  v1::UpdateRequest request;
  bool acked = false;
  v1::UpdateResponse response;
  absl::Status error;
};

// One thread, blocking unary calls: the send order is the version order.
// Stops at the first failure (kept, unacknowledged, as the last entry) or
// when `stop` is set.
void SendUntilFailure(Conn& conn, Workload& workload,
                      const std::atomic<bool>& stop, std::vector<Sent>* sent) {
  while (!stop.load()) {
    Sent s;
    s.request = workload.Next();
    absl::StatusOr<v1::UpdateResponse> r = conn.Update(s.request);
    if (r.ok()) {
      s.acked = true;
      s.response = *std::move(r);
      sent->push_back(std::move(s));
    } else {
      s.error = r.status();
      sent->push_back(std::move(s));
      return;
    }
  }
}

struct RoundHooks {
  // Blocks until the kill is due.
  std::function<void()> wait_for_kill;
  // After the kill, before the restart (the files as the crash left them).
  std::function<void()> after_kill;
  // Right after the restart, given how long it took.
  std::function<void(absl::Duration)> after_restart;
};

struct RoundStats {
  size_t acked = 0;
  bool in_flight = false;          // one request sent but unanswered
  bool in_flight_applied = false;  // ... which the recovered model holds
  absl::Duration restart;
};

// A server on a data directory it keeps across restarts, the models on it,
// and the reference in step with them.
class Harness {
 public:
  Harness(const std::string& data_dir, std::vector<std::string> flags)
      : data_dir_(data_dir), flags_(std::move(flags)) {
    flags_.insert(flags_.begin(), absl::StrCat("--data_dir=", data_dir));
  }
  void Start() {
    absl::Status s = server_.Start(flags_);
    ASSERT_TRUE(s.ok()) << s;
    conn_ = std::make_unique<Conn>(server_.target());
  }

  void Create(const Shape& shape, v1::ModelSpec spec) {
    spec.set_type(shape.type);
    spec.set_num_features(shape.num_features);
    spec.set_num_classes(shape.num_classes);
    absl::StatusOr<v1::ModelInfo> info = conn_->Create(shape.name, spec);
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_EQ(info->version(), 1u);
    ASSERT_NO_FATAL_FAILURE(ref_.Create(*info));
    shapes_.push_back(shape);
    probes_.push_back(Probes(shape));
  }

  void ExpectInStep() {
    for (size_t i = 0; i < shapes_.size(); ++i) {
      ExpectSameModel(*conn_, shapes_[i].name, ref_, shapes_[i].name, 0,
                      probes_[i]);
    }
  }

  // Updates from one thread; SIGKILL when hooks.wait_for_kill returns;
  // restart on the same directory; the recovered models must hold every
  // acknowledged update (and the one unanswered request, or not), bit for
  // bit. Then the unanswered request is retried under its update_id, so
  // the models hold every request sent exactly once.
  void KillRound(Workload& workload, const RoundHooks& hooks,
                 RoundStats* stats) {
    std::vector<Sent> sent;
    std::atomic<bool> stop{false};
    std::thread sender(
        [&] { SendUntilFailure(*conn_, workload, stop, &sent); });
    hooks.wait_for_kill();
    server_.process().Signal(SIGKILL);
    const std::optional<int> code = server_.process().Wait(absl::Seconds(20));
    stop.store(true);
    sender.join();
    ASSERT_TRUE(code.has_value()) << "the server outlived SIGKILL";
    EXPECT_EQ(*code, -SIGKILL);
    if (hooks.after_kill) hooks.after_kill();

    // The acknowledged updates, in send order, into the reference.
    const Sent* in_flight = nullptr;
    for (const Sent& s : sent) {
      if (!s.acked) {
        in_flight = &s;
        break;
      }
      ++stats->acked;
      SCOPED_TRACE(absl::StrCat("acknowledged update ", s.request.update_id(),
                                " of model ", s.request.model()));
      ASSERT_EQ(s.response.version(), ref_.Version(s.request.model()) + 1)
          << "one sender: a model's acknowledged versions are consecutive";
      ref_.Apply(s.request, &s.response);
      ASSERT_FALSE(::testing::Test::HasFailure());
    }
    stats->in_flight = in_flight != nullptr;
    if (in_flight != nullptr) {
      // The kill, not the request, must be what failed it.
      EXPECT_EQ(in_flight->error.code(), absl::StatusCode::kUnavailable)
          << in_flight->error;
    }

    const absl::Time restart = absl::Now();
    ASSERT_NO_FATAL_FAILURE(Start());
    stats->restart = absl::Now() - restart;
    if (hooks.after_restart) hooks.after_restart(stats->restart);

    std::optional<UpdateResult> in_flight_result;
    for (const Shape& shape : shapes_) {
      absl::StatusOr<v1::ModelInfo> info = conn_->Get(shape.name);
      ASSERT_TRUE(info.ok())
          << "model " << shape.name << " after the restart: " << info.status();
      const uint64_t acked = ref_.Version(shape.name);
      ASSERT_GE(info->version(), acked)
          << "model " << shape.name << ": an ACKNOWLEDGED update was lost: "
          << "recovered version " << info->version() << " < last acknowledged "
          << acked;
      if (in_flight != nullptr && in_flight->request.model() == shape.name) {
        ASSERT_LE(info->version(), acked + 1)
            << "model " << shape.name << ": more versions than updates sent";
        if (info->version() == acked + 1) {
          stats->in_flight_applied = true;
          in_flight_result = ref_.Apply(in_flight->request, nullptr);
          ASSERT_TRUE(in_flight_result.has_value());
        }
      } else {
        ASSERT_EQ(info->version(), acked)
            << "model " << shape.name << ": more versions than updates sent";
      }
    }
    ExpectInStep();
    if (::testing::Test::HasFailure()) return;

    if (in_flight != nullptr) {
      SCOPED_TRACE(absl::StrCat("retry of ", in_flight->request.update_id()));
      const std::string& model = in_flight->request.model();
      const uint64_t before = ref_.Version(model);
      absl::StatusOr<v1::UpdateResponse> retry =
          conn_->Update(in_flight->request);
      ASSERT_TRUE(retry.ok()) << retry.status();
      if (in_flight_result.has_value()) {
        // Recovered with the model: answered from memory, not applied again.
        Reference::ExpectSameResult(*retry, *in_flight_result);
        absl::StatusOr<v1::ModelInfo> info = conn_->Get(model);
        ASSERT_TRUE(info.ok()) << info.status();
        EXPECT_EQ(info->version(), before) << "the retry was applied again";
      } else {
        EXPECT_EQ(retry->version(), before + 1);
        ref_.Apply(in_flight->request, &*retry);
      }
      ExpectInStep();
    }
  }

  Conn& conn() { return *conn_; }
  ServerProcess& server() { return server_; }
  Reference& ref() { return ref_; }
  const std::vector<Shape>& shapes() const { return shapes_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  const std::string data_dir_;
  std::vector<std::string> flags_;
  ServerProcess server_{kServerPath};
  std::unique_ptr<Conn> conn_;
  Reference ref_;
  std::vector<Shape> shapes_;
  std::vector<std::vector<v1::Features>> probes_;
};

// ---------------------------------------------------------------------------

TEST(CrashRecoveryTest, KillNineRounds) {
  const uint64_t base = BaseSeed();
  const int rounds = static_cast<int>(
      std::max<uint64_t>(20, EnvU64("LEPTON_CRASH_ROUNDS", 20)));
  TestScratchDir dir("lepton-crash-test");
  ASSERT_FALSE(dir.path().empty());
  Harness h(dir.path(), {"--fsync=always", "--checkpoint_every_updates=7",
                         "--keep_checkpoints=3"});
  ASSERT_NO_FATAL_FAILURE(h.Start());

  v1::ModelSpec logistic;  // SGD with a decaying rate, pure online
  logistic.mutable_optimizer()->set_kind(v1::SGD);
  logistic.mutable_optimizer()->set_learning_rate(0.1f);
  logistic.mutable_optimizer()->set_power_t(0.5f);
  logistic.set_l2(0.001f);
  logistic.set_minibatch_size(1);
  ASSERT_NO_FATAL_FAILURE(
      h.Create({"lr", v1::LOGISTIC_REGRESSION, 20, 0}, logistic));
  v1::ModelSpec softmax;  // AdaGrad, minibatches of 3
  softmax.mutable_optimizer()->set_kind(v1::ADAGRAD);
  softmax.mutable_optimizer()->set_initial_accumulator(0.1f);
  softmax.set_l2(0.01f);
  softmax.set_minibatch_size(3);
  ASSERT_NO_FATAL_FAILURE(
      h.Create({"sm", v1::SOFTMAX_REGRESSION, 20, 4}, softmax));

  size_t total_acked = 0;
  int applied_unacked = 0;
  uint64_t newest_checkpoint = 1;
  const absl::Time start = absl::Now();
  for (int round = 0; round < rounds; ++round) {
    const uint64_t seed = base + static_cast<uint64_t>(round);
    SCOPED_TRACE(absl::StrCat("round ", round, " seed ", seed,
                              " (LEPTON_CRASH_SEED=", base, ")"));
    Rng rng(seed);
    // Mostly a few to ~100 ms; every 4th round past the checkpointer's
    // one-second tick, so checkpoints are written mid-run.
    const absl::Duration delay = round % 4 == 3
                                     ? absl::Milliseconds(1100 + rng.Below(500))
                                     : absl::Milliseconds(3 + rng.Below(98));
    Workload workload(rng.Next(), h.shapes(), absl::StrCat("r", round));
    RoundStats stats;
    RoundHooks hooks;
    hooks.wait_for_kill = [&] { absl::SleepFor(delay); };
    h.KillRound(workload, hooks, &stats);
    total_acked += stats.acked;
    applied_unacked += stats.in_flight_applied ? 1 : 0;
    std::string checkpoints;
    for (const Shape& s : h.shapes()) {
      absl::StatusOr<v1::ModelInfo> info = h.conn().Get(s.name);
      if (!info.ok()) continue;
      absl::StrAppend(&checkpoints, " ", s.name, "@v", info->version(),
                      " ckpts[",
                      absl::StrJoin(info->checkpointed_versions(), ","), "] (",
                      DescribeFiles(ModelDir(h.data_dir(), s.name)), ")");
      if (!info->checkpointed_versions().empty()) {
        newest_checkpoint = std::max<uint64_t>(
            newest_checkpoint, *info->checkpointed_versions().rbegin());
      }
    }
    std::fprintf(
        stderr,
        "crash_recovery_test: round %d seed %llu: kill after %lld ms, "
        "%zu acked, in flight: %s, restart %lld ms;%s\n",
        round, static_cast<unsigned long long>(seed),
        static_cast<long long>(absl::ToInt64Milliseconds(delay)), stats.acked,
        !stats.in_flight          ? "none"
        : stats.in_flight_applied ? "applied"
                                  : "not applied",
        static_cast<long long>(absl::ToInt64Milliseconds(stats.restart)),
        checkpoints.c_str());
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "stopped at round " << round << "; reproduce with "
                    << "LEPTON_CRASH_SEED=" << base
                    << " LEPTON_CRASH_ROUNDS=" << std::max(20, round + 1);
      return;
    }
  }
  std::fprintf(
      stderr,
      "crash_recovery_test: %d rounds, %zu acknowledged updates, %d "
      "applied but unanswered, newest checkpoint v%llu, %lld ms\n",
      rounds, total_acked, applied_unacked,
      static_cast<unsigned long long>(newest_checkpoint),
      static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start)));
  EXPECT_GT(total_acked, 0u);
  // The long rounds made the server checkpoint (and rotate its log) mid-run.
  EXPECT_GT(newest_checkpoint, 1u) << "no checkpoint was written after v1";
}

TEST(CrashRecoveryTest, KillDuringCheckpoint) {
  const uint64_t base = BaseSeed() ^ 0xc0ffee;
  TestScratchDir dir("lepton-crash-test");
  ASSERT_FALSE(dir.path().empty());
  // A checkpoint per update (the checkpointer looks once a second); 8 MB
  // each, so one takes long enough to be caught in progress.
  Harness h(dir.path(), {"--fsync=always", "--checkpoint_every_updates=1",
                         "--keep_checkpoints=2"});
  ASSERT_NO_FATAL_FAILURE(h.Start());
  const Shape big{"big", v1::LOGISTIC_REGRESSION, int64_t{1} << 20, 0};
  ASSERT_NO_FATAL_FAILURE(h.Create(big, v1::ModelSpec{}));
  const std::string model_dir = ModelDir(dir.path(), big.name);

  int killed_mid_write = 0;
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t seed = base + static_cast<uint64_t>(round);
    SCOPED_TRACE(absl::StrCat("checkpoint round ", round, " seed ", seed,
                              " (LEPTON_CRASH_SEED=", BaseSeed(), ")"));
    Rng rng(seed);
    // Round 0 kills as soon as the checkpoint's temporary file shows up;
    // later ones a little later (during its fsync, the rename, the removal
    // of the old segments and checkpoints).
    const absl::Duration extra =
        round == 0 ? absl::ZeroDuration()
                   : absl::Microseconds(rng.Below(round * 40000));
    Workload workload(rng.Next(), {big}, absl::StrCat("c", round));
    std::vector<std::string> tmp_seen, tmp_after_kill;
    RoundStats stats;
    RoundHooks hooks;
    hooks.wait_for_kill = [&] {
      const absl::Time deadline = absl::Now() + absl::Seconds(5);
      while (absl::Now() < deadline) {
        tmp_seen = TmpFiles(model_dir);
        if (!tmp_seen.empty()) break;
        std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      if (extra > absl::ZeroDuration()) absl::SleepFor(extra);
    };
    hooks.after_kill = [&] { tmp_after_kill = TmpFiles(model_dir); };
    hooks.after_restart = [&](absl::Duration took) {
      // Start-up removes what the unfinished checkpoint left. (Unless start-up
      // took so long that the checkpointer already started a new one.)
      const std::vector<std::string> left = TmpFiles(model_dir);
      if (took < absl::Milliseconds(800)) {
        EXPECT_TRUE(left.empty())
            << "left after start-up: " << absl::StrJoin(left, ", ");
      }
    };
    h.KillRound(workload, hooks, &stats);
    EXPECT_FALSE(tmp_seen.empty())
        << "no checkpoint started within 5 s of the updates";
    killed_mid_write += tmp_after_kill.empty() ? 0 : 1;
    std::fprintf(
        stderr,
        "crash_recovery_test: checkpoint round %d seed %llu: kill "
        "%lld us after %s appeared, %zu acked, in flight: %s, "
        "restart %lld ms; after the kill: [%s]; now %s\n",
        round, static_cast<unsigned long long>(seed),
        static_cast<long long>(absl::ToInt64Microseconds(extra)),
        tmp_seen.empty() ? "(none)" : tmp_seen.front().c_str(), stats.acked,
        !stats.in_flight          ? "none"
        : stats.in_flight_applied ? "applied"
                                  : "not applied",
        static_cast<long long>(absl::ToInt64Milliseconds(stats.restart)),
        absl::StrJoin(tmp_after_kill, ", ").c_str(),
        DescribeFiles(model_dir).c_str());
    if (::testing::Test::HasFailure()) return;
  }
  // At least the immediate kill found the temporary file still there.
  EXPECT_GE(killed_mid_write, 1);
}

// A kill while a Rollback writes its checkpoint, then updates while the
// checkpointer writes one, then another kill: every acknowledged update
// must come back. Attempts repeat the sequence: the second kill matters
// most when that checkpoint was taken with an update still being synced.
//
// A regression test: when Rollback rotated the log to wal-<V+2> before
// writing checkpoint V+1, a kill between the two left wal-<V+2> behind,
// unknown to the reopened journal; after a later checkpoint C > V+1 taken
// with update C+1 in flight, the next start-up skipped wal-<V+1> (holding
// C+1) because of it, and the model was DATA_LOSS ("record produces version
// C+2 but the model is at version C").
TEST(CrashRecoveryTest, KillDuringRollbackCheckpoint) {
  const uint64_t base = BaseSeed() ^ 0xbadc0de;
  TestScratchDir dir("lepton-crash-test");
  ASSERT_FALSE(dir.path().empty());
  Harness h(dir.path(), {"--fsync=always", "--checkpoint_every_updates=1"});
  ASSERT_NO_FATAL_FAILURE(h.Start());
  // 8 MB per checkpoint: the rollback's takes long enough to be caught.
  const Shape big{"big", v1::LOGISTIC_REGRESSION, int64_t{1} << 20, 0};
  ASSERT_NO_FATAL_FAILURE(h.Create(big, v1::ModelSpec{}));
  const std::string model_dir = ModelDir(dir.path(), big.name);
  Workload workload(base, {big}, "k");

  constexpr int kAttempts = 4;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    SCOPED_TRACE(absl::StrCat("attempt ", attempt,
                              " (LEPTON_CRASH_SEED=", BaseSeed(), ")"));
    for (int i = 0; i < 10; ++i) {
      v1::UpdateRequest request = workload.Next();
      absl::StatusOr<v1::UpdateResponse> r = h.conn().Update(request);
      ASSERT_TRUE(r.ok()) << r.status();
      h.ref().Apply(request, &*r);
    }
    const uint64_t head = h.ref().Version(big.name);
    // Rollback to head - 1 publishes head + 1 once its checkpoint is
    // written: kill while its temporary file is there.
    const std::string rollback_tmp =
        absl::StrCat(ModelFiles::CheckpointFileName(head + 1), ".tmp");
    std::thread rollback(
        [&] { h.conn().Rollback(big.name, head - 1).IgnoreError(); });
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    bool seen = false;
    while (!seen && absl::Now() < deadline) {
      for (const std::string& n : TmpFiles(model_dir)) {
        seen |= n == rollback_tmp;
      }
      if (!seen) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    h.server().process().Signal(SIGKILL);
    ASSERT_TRUE(h.server().process().Wait(absl::Seconds(20)).has_value());
    rollback.join();
    ASSERT_TRUE(seen) << "the rollback's checkpoint was not seen";
    std::fprintf(stderr,
                 "crash_recovery_test: attempt %d: killed during the "
                 "rollback's checkpoint (v%llu): %s\n",
                 attempt, static_cast<unsigned long long>(head + 1),
                 absl::StrJoin(ListDir(model_dir), " ").c_str());
    ASSERT_NO_FATAL_FAILURE(h.Start());
    absl::StatusOr<v1::ModelInfo> info = h.conn().Get(big.name);
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_GE(info->version(), head);
    ASSERT_LE(info->version(), head + 1);
    if (info->version() == head + 1) {  // the kill came after the rename
      ASSERT_TRUE(h.ref().store().Rollback(big.name, head - 1).ok());
    }
    h.ExpectInStep();

    // Updates until the checkpointer has written one checkpoint; kill.
    RoundStats stats;
    RoundHooks hooks;
    hooks.wait_for_kill = [&] {
      const absl::Time until = absl::Now() + absl::Seconds(5);
      bool started = false;
      while (absl::Now() < until) {
        const bool tmp = !TmpFiles(model_dir).empty();
        if (started && !tmp) break;  // written
        started |= tmp;
        std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      absl::SleepFor(absl::Milliseconds(20));
    };
    hooks.after_kill = [&] {
      std::fprintf(stderr, "crash_recovery_test: attempt %d: killed: %s\n",
                   attempt, absl::StrJoin(ListDir(model_dir), " ").c_str());
    };
    h.KillRound(workload, hooks, &stats);
    std::fprintf(stderr, "crash_recovery_test: attempt %d: %zu acked\n",
                 attempt, stats.acked);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(CrashRecoveryTest, RollbackExportImportAndRetry) {
  SCOPED_TRACE(absl::StrCat("LEPTON_CRASH_SEED=", BaseSeed()));
  Rng rng(BaseSeed() ^ 0xfeed);
  TestScratchDir dir_a("lepton-crash-test"), dir_b("lepton-crash-test");
  ASSERT_FALSE(dir_a.path().empty());
  ASSERT_FALSE(dir_b.path().empty());
  const std::vector<std::string> flags_a = {
      absl::StrCat("--data_dir=", dir_a.path()), "--fsync=always",
      "--retained_versions=4"};
  const std::vector<std::string> flags_b = {
      absl::StrCat("--data_dir=", dir_b.path()), "--fsync=always"};
  ServerProcess a(kServerPath), b(kServerPath);
  ASSERT_TRUE(a.Start(flags_a).ok());
  auto ca = std::make_unique<Conn>(a.target());
  Reference ref(/*retained_versions=*/1000);

  const Shape shape{"m", v1::SOFTMAX_REGRESSION, 20, 3};
  const std::vector<v1::Features> probes = Probes(shape);
  v1::ModelSpec spec;
  spec.set_type(shape.type);
  spec.set_num_features(shape.num_features);
  spec.set_num_classes(shape.num_classes);
  spec.set_minibatch_size(2);
  absl::StatusOr<v1::ModelInfo> created = ca->Create("m", spec);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_NO_FATAL_FAILURE(ref.Create(*created));

  // The server's own predictions at every version, to compare rollbacks with.
  std::map<uint64_t, v1::PredictResponse> at;
  auto snapshot = [&](Conn& conn) {
    absl::StatusOr<v1::PredictResponse> p = conn.Predict("m", probes);
    ASSERT_TRUE(p.ok()) << p.status();
    at[p->version()] = *p;
  };
  auto same_predictions = [](const v1::PredictResponse& x,
                             const v1::PredictResponse& y) {
    ASSERT_EQ(x.predictions_size(), y.predictions_size());
    for (int i = 0; i < x.predictions_size(); ++i) {
      const v1::Prediction& p = x.predictions(i);
      const v1::Prediction& q = y.predictions(i);
      EXPECT_EQ(p.label(), q.label());
      ASSERT_EQ(p.probabilities_size(), q.probabilities_size());
      EXPECT_EQ(
          FirstDifference(p.probabilities().data(), q.probabilities().data(),
                          p.probabilities_size()),
          -1)
          << "probe " << i;
    }
  };
  Workload workload(rng.Next(), {shape}, "w");
  auto update = [&](Conn& conn, v1::UpdateRequest request) {
    request.clear_update_id();
    absl::StatusOr<v1::UpdateResponse> r = conn.Update(request);
    ASSERT_TRUE(r.ok()) << r.status();
    ref.Apply(request, &*r);
  };

  ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  for (int i = 0; i < 11; ++i) {
    ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));
    ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  }
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  absl::StatusOr<v1::ModelInfo> info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->version(), 12u);
  EXPECT_EQ(std::vector<uint64_t>(info->retained_versions().begin(),
                                  info->retained_versions().end()),
            (std::vector<uint64_t>{9, 10, 11, 12}));
  EXPECT_EQ(std::vector<uint64_t>(info->checkpointed_versions().begin(),
                                  info->checkpointed_versions().end()),
            (std::vector<uint64_t>{1}));

  // Rollback to a retained version: published as 13, predicting as 10 did.
  absl::StatusOr<v1::ModelInfo> rolled = ca->Rollback("m", 10);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->version(), 13u);
  ASSERT_TRUE(ref.store().Rollback("m", 10).ok());
  ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  same_predictions(at[13], at[10]);
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  // To a version only checkpointed (1, all zeros): published as 14.
  rolled = ca->Rollback("m", 1);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->version(), 14u);
  EXPECT_EQ(rolled->examples_seen(), 0u);
  ASSERT_TRUE(ref.store().Rollback("m", 1).ok());
  ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  same_predictions(at[14], at[1]);
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  // Neither retained nor checkpointed: NOT_FOUND, nothing changes.
  EXPECT_EQ(ca->Rollback("m", 5).status().code(), absl::StatusCode::kNotFound);
  // Learning goes on from the rolled-back state.
  ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));
  ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 16u);
  EXPECT_EQ(std::vector<uint64_t>(info->checkpointed_versions().begin(),
                                  info->checkpointed_versions().end()),
            (std::vector<uint64_t>{1, 13, 14}))
      << "a rollback is recorded as a checkpoint";

  // Export the newest (16) and a checkpointed version (13) from A, import
  // both into B: same versions, same bits.
  absl::StatusOr<v1::ExportModelResponse> newest = ca->Export("m");
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(newest->version(), 16u);
  absl::StatusOr<v1::ExportModelResponse> old = ca->Export("m", 13);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->version(), 13u);
  ASSERT_TRUE(b.Start(flags_b).ok());
  auto cb = std::make_unique<Conn>(b.target());
  absl::StatusOr<v1::ModelInfo> imported = cb->Import("", newest->model());
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->name(), "m");
  EXPECT_EQ(imported->version(), 16u);
  imported = cb->Import("m13", old->model());
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->version(), 13u);
  EXPECT_EQ(cb->Import("m", newest->model()).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto check_b = [&] {
    ExpectSameModel(*cb, "m", ref, "m", 0, probes);
    ExpectSameModel(*cb, "m13", ref, "m", 13, probes);
    absl::StatusOr<v1::PredictResponse> p13 = cb->Predict("m13", probes);
    ASSERT_TRUE(p13.ok()) << p13.status();
    same_predictions(*p13, at[10]);
  };
  ASSERT_NO_FATAL_FAILURE(check_b());

  // B restarts gracefully (SIGTERM: exit status 0) and keeps both. The
  // channel goes first: with an idle client connection still open, the
  // server's shutdown waits out most of --shutdown_grace (~5 s here).
  cb.reset();
  b.process().Signal(SIGTERM);
  EXPECT_EQ(b.process().Wait(absl::Seconds(30)), std::optional<int>(0));
  ASSERT_TRUE(b.Start(flags_b).ok());
  cb = std::make_unique<Conn>(b.target());
  ASSERT_NO_FATAL_FAILURE(check_b());
  // The imported model learns as the original does (same optimizer state).
  const v1::UpdateRequest same = workload.Next();
  {
    v1::UpdateRequest r = same;
    r.clear_update_id();
    absl::StatusOr<v1::UpdateResponse> on_b = cb->Update(r);
    ASSERT_TRUE(on_b.ok()) << on_b.status();
    ASSERT_NO_FATAL_FAILURE(update(*ca, same));
    absl::StatusOr<std::shared_ptr<const ModelVersion>> v =
        ref.store().AcquireVersion("m");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(on_b->version(), (*v)->version());
    ExpectSameModel(*cb, "m", ref, "m", 0, probes);
    ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  }

  // Idempotent retries: "u1" twice, one version.
  v1::UpdateRequest u1 = workload.Next();
  u1.set_update_id("u1");
  absl::StatusOr<v1::UpdateResponse> first = ca->Update(u1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 18u);
  ref.Apply(u1, &*first);
  absl::StatusOr<v1::UpdateResponse> again = ca->Update(u1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version(), 18u);
  EXPECT_TRUE(SameBits(again->loss_before(), first->loss_before()));
  info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 18u) << "the retry was applied again";
  ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));  // 19
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);

  // kill -9 A: it comes back at 19, bit-identical, and still knows "u1".
  a.process().Signal(SIGKILL);
  EXPECT_EQ(a.process().Wait(absl::Seconds(20)), std::optional<int>(-SIGKILL));
  ASSERT_TRUE(a.Start(flags_a).ok());
  ca = std::make_unique<Conn>(a.target());
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  absl::StatusOr<v1::UpdateResponse> after = ca->Update(u1);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version(), 18u);
  EXPECT_EQ(after->examples(), first->examples());
  EXPECT_TRUE(SameBits(after->loss_before(), first->loss_before()));
  info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 19u) << "the retry after the restart was applied";
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
}

}  // namespace
}  // namespace lepton::testing
