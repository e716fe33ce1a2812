// Throughput of Lepton's core through its public API (ModelStore::Update and
// ModelStore::Predict), plus plain-Eigen baselines of the same math measured
// in the same run, so that scripts/bench.sh can print Lepton / baseline
// ratios.
//
//   BM_DenseSoftmaxLearn/B       Update, batches of B dense examples
//   BM_DenseSoftmaxPredict/B     Predict, batches of B dense instances
//   BM_DenseWideLogisticLearn/B  Update, batches of B dense examples of 2^17
//                                features: a large model walked whole
//   BM_SparseLogisticLearn/B     Update, batches of B sparse examples, D = 2^22
//   BM_SparseFtrlLearn/B         the same with FTRL-Proximal
//   BM_SparseLearnStages/B       the stages of an update of B sparse
//                                examples, timed one by one
//   BM_SparseLogisticPredict/B   Predict, batches of B sparse instances
//   BM_SparseUpdateVsD/L         Update of 1 sparse example, D = 2^L
//   BM_SparseUpdateVsNonzeros/N  Update of 1 sparse example with its first N
//                                nonzeros, D = 2^22
//   BM_UpdateAmongModels/N/B     Update of 1 sparse example (D = 2^10) to one
//                                of N models in a store with a memory budget
//                                (B = 1) or without one (B = 0)
//   BM_BaselineEigenSoftmaxStep/B  one minibatch SGD step of B rows, bare Eigen
//   BM_BaselineEigenPredict/B      X W + b and softmax over B rows, bare Eigen
//   BM_BaselineSparseAdaGrad/B     the sparse logistic model's AdaGrad steps
//                                  over batches of B examples on two flat
//                                  arrays: no versions, no validation
//   BM_BaselineSparseAdaGradRowOrder/B  the same on one array with each
//                                  weight beside its accumulator
//   BM_BaselineSparseFtrl/B        the same with FTRL-Proximal (three arrays)
//   BM_AdwinAdd                  DriftDetector::Add of one loss, ADWIN
//   BM_PageHinkleyAdd            DriftDetector::Add of one loss, Page-Hinkley
//
// Every benchmark runs on one thread and reports items_per_second = examples
// (or instances) per second. All data is synthetic, drawn from fixed seeds
// before any timed loop: dense examples have values in [0, 1) and labels from
// a fixed random linear teacher; sparse examples have 40 distinct ascending
// indices, values 1.0 or uniform in [0, 1), and labels from a hashed linear
// teacher. Update benchmarks cycle through a pool of 1024 examples (3 MB dense,
// in cache like the examples of a request the server has just parsed).
//
// Models live in one ModelStore with the default options (8 retained
// versions). A benchmark's model is created the first time the benchmark
// runs, outside the timed loop, and reused by its later runs (Google Benchmark
// calls a benchmark function several times while it settles the iteration
// count), so learning carries on from run to run.

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/types/span.h"
#include "benchmark/benchmark.h"
#include "core/adaptation/drift_detector.h"
#include "core/learning/example.h"
#include "core/learning/learner.h"
#include "core/learning/model_spec.h"
#include "core/learning/scoring.h"
#include "core/learning/validation.h"
#include "core/learning/versioned_params.h"
#include "core/store/model_store.h"

namespace lepton {
namespace {

using RowMatrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr uint32_t kSeed = 20240611;
constexpr int64_t kPoolSize = 1024;  // a multiple of every batch size
constexpr int64_t kDenseFeatures = 784;
constexpr int32_t kDenseClasses = 10;
constexpr int kSparseNonzeros = 40;
constexpr int kSparseLogFeatures = 22;
// The baselines' SGD rate: the spec's default base rate.
constexpr float kBaselineLearningRate = 0.05f;

// ---------------------------------------------------------------------------
// Synthetic data.

struct DensePool {
  RowMatrix x;  // kPoolSize x kDenseFeatures, values in [0, 1)
  std::vector<int32_t> labels;
  std::vector<ExampleView> examples;  // views into x
  std::vector<FeaturesView> instances;
};

// The dense pool, built on first use. Labels are arg max_k (x - 0.5) . t_k for
// a fixed teacher t with N(0, 1) entries: a linear rule the model can learn,
// with roughly balanced classes.
const DensePool& GetDensePool() {
  static const DensePool* const pool = [] {
    auto* p = new DensePool;
    std::mt19937 rng(kSeed);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    RowMatrix teacher(kDenseFeatures, kDenseClasses);
    for (int64_t j = 0; j < teacher.size(); ++j)
      teacher.data()[j] = normal(rng);
    p->x.resize(kPoolSize, kDenseFeatures);
    for (int64_t j = 0; j < p->x.size(); ++j) p->x.data()[j] = uniform(rng);
    p->labels.resize(kPoolSize);
    p->examples.resize(kPoolSize);
    p->instances.resize(kPoolSize);
    for (int64_t i = 0; i < kPoolSize; ++i) {
      Eigen::RowVectorXf scores =
          (p->x.row(i).array() - 0.5f).matrix() * teacher;
      Eigen::Index best;
      scores.maxCoeff(&best);
      p->labels[i] = static_cast<int32_t>(best);
      const FeaturesView f{
          absl::MakeConstSpan(p->x.row(i).data(), kDenseFeatures), {}, {}};
      p->instances[i] = f;
      p->examples[i] = ExampleView{f, static_cast<float>(best), 1.0f};
    }
    return p;
  }();
  return *pool;
}

struct SparsePool {
  std::vector<uint32_t> indices;  // kPoolSize x kSparseNonzeros, rows ascending
  std::vector<float> values;
  std::vector<ExampleView> examples;  // views into indices and values
  std::vector<FeaturesView> instances;
};

// SplitMix64: a fixed hash, so the sparse teacher needs no table of D weights.
uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The teacher's weight of feature j, uniform in [-1, 1).
float TeacherWeight(uint32_t j) {
  return static_cast<float>(Mix(uint64_t{j} ^ kSeed) >> 40) * 0x1p-23f - 1.0f;
}

// The pool of sparse examples over 2^log_features features, built on first use
// and kept for the rest of the run (about 7 MB each).
const SparsePool& GetSparsePool(int log_features) {
  static auto* const pools = new std::map<int, std::unique_ptr<SparsePool>>;
  std::unique_ptr<SparsePool>& slot = (*pools)[log_features];
  if (slot != nullptr) return *slot;
  slot = std::make_unique<SparsePool>();
  SparsePool& p = *slot;
  std::mt19937 rng(kSeed + log_features);
  std::uniform_int_distribution<uint32_t> index(
      0, static_cast<uint32_t>((int64_t{1} << log_features) - 1));
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::bernoulli_distribution binary(0.5);
  p.indices.resize(kPoolSize * kSparseNonzeros);
  p.values.resize(kPoolSize * kSparseNonzeros);
  p.examples.resize(kPoolSize);
  p.instances.resize(kPoolSize);
  for (int64_t i = 0; i < kPoolSize; ++i) {
    uint32_t* idx = p.indices.data() + i * kSparseNonzeros;
    float* val = p.values.data() + i * kSparseNonzeros;
    for (int k = 0; k < kSparseNonzeros; ++k) {
      uint32_t j;
      do {
        j = index(rng);
      } while (std::find(idx, idx + k, j) != idx + k);
      idx[k] = j;
    }
    std::sort(idx, idx + kSparseNonzeros);
    float z = 0;
    for (int k = 0; k < kSparseNonzeros; ++k) {
      val[k] = binary(rng) ? 1.0f : uniform(rng);
      z += val[k] * TeacherWeight(idx[k]);
    }
    p.instances[i] =
        FeaturesView{.dense = {},
                     .indices = absl::MakeConstSpan(idx, kSparseNonzeros),
                     .values = absl::MakeConstSpan(val, kSparseNonzeros)};
    p.examples[i] = ExampleView{p.instances[i], z > 0 ? 1.0f : 0.0f, 1.0f};
  }
  return p;
}

ModelSpec DenseSoftmaxSpec() {
  ModelSpec spec;
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_features = kDenseFeatures;
  spec.num_classes = kDenseClasses;
  return spec;  // default optimizer (AdaGrad) and minibatch_size
}

ModelSpec SparseLogisticSpec(int log_features) {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = int64_t{1} << log_features;
  return spec;
}

// The same with FTRL-Proximal (its default alpha, beta, l1 and l2).
ModelSpec SparseFtrlSpec(int log_features) {
  ModelSpec spec = SparseLogisticSpec(log_features);
  spec.optimizer.kind = OptimizerKind::kFtrl;
  return spec;
}

// ---------------------------------------------------------------------------
// Models.

ModelStore& Store() {
  static auto* const store = new ModelStore();  // default StoreOptions
  return *store;
}

// The model of the benchmark running now.
struct ActiveModel {
  std::string name;
  int64_t cursor = 0;  // next pool position to learn from
};

// Returns the active model, switched to `name`. Asking again for the active
// name returns the same model and the position its cursor reached. Asking for
// a new name deletes the previous model (so only one large model is alive at
// a time), creates this one from `spec`, and runs `init` (not timed: called
// before the benchmark's loop).
absl::StatusOr<ActiveModel*> Acquire(const std::string& name,
                                     const ModelSpec& spec,
                                     absl::FunctionRef<absl::Status()> init) {
  static auto* const active = new ActiveModel;
  if (active->name == name) return active;
  if (!active->name.empty()) {
    if (absl::Status s = Store().DeleteModel(active->name); !s.ok()) return s;
    active->name.clear();
  }
  if (absl::Status s = Store().CreateModel(name, spec).status(); !s.ok()) {
    return s;
  }
  active->name = name;
  active->cursor = 0;
  if (absl::Status s = init(); !s.ok()) return s;
  return active;
}

absl::Status NoInit() { return absl::OkStatus(); }

// One pass over `examples` in batches of 256, so that predictions come from a
// trained model with a full window of retained versions.
absl::Status TrainOnePass(const std::string& name,
                          absl::Span<const ExampleView> examples) {
  for (size_t i = 0; i < examples.size(); i += 256) {
    absl::StatusOr<UpdateResult> r =
        Store().Update(name, examples.subspan(i, 256));
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Lepton benchmarks.

// Updates the model `model` with batches of `batch` examples from `pool`,
// continuing from the model's cursor.
void RunUpdates(benchmark::State& state, ActiveModel& model,
                absl::Span<const ExampleView> pool, int64_t batch) {
  for (auto _ : state) {
    absl::StatusOr<UpdateResult> r =
        Store().Update(model.name, pool.subspan(model.cursor, batch));
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(*r);
    model.cursor = (model.cursor + batch) % kPoolSize;
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// Predicts batches of `batch` instances from `pool`, cycling through it.
void RunPredictions(benchmark::State& state, const std::string& name,
                    absl::Span<const FeaturesView> pool, int64_t batch) {
  int64_t cursor = 0;
  for (auto _ : state) {
    absl::StatusOr<Predictions> p =
        Store().Predict(name, pool.subspan(cursor, batch));
    if (!p.ok()) {
      state.SkipWithError(p.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(*p);
    cursor = (cursor + batch) % kPoolSize;
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// Reports the model's progressive accuracy (over every example it has learned
// from, in all runs of the benchmark) and, if `memory`, its memory.
void ReportModel(benchmark::State& state, const std::string& name,
                 bool memory) {
  absl::StatusOr<ModelInfo> info = Store().GetModel(name);
  if (!info.ok()) {
    state.SkipWithError(info.status().ToString().c_str());
    return;
  }
  state.counters["prog_acc"] = info->counters.progressive_accuracy();
  if (memory) {
    const ModelSpec& spec = info->spec;
    const int64_t arrays = ParamArrays(spec);
    const double one_copy = static_cast<double>(spec.num_features + 1) *
                            spec.num_outputs() * sizeof(float) * arrays;
    state.counters["mem_MB"] = info->memory_bytes / 1e6;
    state.counters["mem_vs_one_copy"] = info->memory_bytes / one_copy;
  }
}

// An update benchmark: model PREFIX-B with `spec`, learning batches of B
// examples from `pool`.
void LearnBenchmark(benchmark::State& state, absl::string_view prefix,
                    const ModelSpec& spec, absl::Span<const ExampleView> pool,
                    bool memory) {
  const int64_t batch = state.range(0);
  absl::StatusOr<ActiveModel*> model =
      Acquire(absl::StrCat(prefix, batch), spec, NoInit);
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  RunUpdates(state, **model, pool, batch);
  ReportModel(state, (*model)->name, memory);
}

void BM_DenseSoftmaxLearn(benchmark::State& state) {
  LearnBenchmark(state, "dense-softmax-learn-", DenseSoftmaxSpec(),
                 GetDensePool().examples, /*memory=*/false);
}
BENCHMARK(BM_DenseSoftmaxLearn)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// The same with minibatch_size = the batch: one optimizer step per update,
// as a batch SGD step is (the plain-Eigen baseline at the same size).
void BM_DenseSoftmaxLearnOneStep(benchmark::State& state) {
  ModelSpec spec = DenseSoftmaxSpec();
  spec.minibatch_size = static_cast<int32_t>(state.range(0));
  LearnBenchmark(state, "dense-softmax-learn-one-step-", spec,
                 GetDensePool().examples, /*memory=*/false);
}
BENCHMARK(BM_DenseSoftmaxLearnOneStep)->Arg(256)->Unit(benchmark::kMicrosecond);

// A large dense model: logistic over kWideFeatures dense features (AdaGrad:
// 256K floats, past whole copies, so its learner keeps row order). Every
// step walks the whole model. The pool repeats 16 distinct rows (8 MB).
constexpr int64_t kWideFeatures = int64_t{1} << 17;

const std::vector<ExampleView>& GetWidePool() {
  static const std::vector<ExampleView>* const pool = [] {
    auto* rows = new std::vector<std::vector<float>>(16);
    std::mt19937 rng(kSeed);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (std::vector<float>& row : *rows) {
      row.resize(kWideFeatures);
      for (float& v : row) v = uniform(rng);
    }
    auto* p = new std::vector<ExampleView>(kPoolSize);
    for (int64_t i = 0; i < kPoolSize; ++i) {
      const std::vector<float>& row = (*rows)[i % rows->size()];
      (*p)[i] = ExampleView{FeaturesView{row, {}, {}},
                            static_cast<float>(row[i % 7] > 0.5f), 1.0f};
    }
    return p;
  }();
  return *pool;
}

void BM_DenseWideLogisticLearn(benchmark::State& state) {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = kWideFeatures;
  LearnBenchmark(state, "dense-wide-logistic-learn-", spec, GetWidePool(),
                 /*memory=*/false);
}
BENCHMARK(BM_DenseWideLogisticLearn)->Arg(16)->Unit(benchmark::kMicrosecond);

void BM_DenseSoftmaxPredict(benchmark::State& state) {
  const DensePool& pool = GetDensePool();
  const std::string name = "dense-softmax-predict";  // shared by every batch
  absl::StatusOr<ActiveModel*> model = Acquire(name, DenseSoftmaxSpec(), [&] {
    return TrainOnePass(name, pool.examples);
  });
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  RunPredictions(state, name, pool.instances, state.range(0));
}
BENCHMARK(BM_DenseSoftmaxPredict)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

void BM_SparseLogisticLearn(benchmark::State& state) {
  LearnBenchmark(state, "sparse-logistic-learn-",
                 SparseLogisticSpec(kSparseLogFeatures),
                 GetSparsePool(kSparseLogFeatures).examples, /*memory=*/true);
}
BENCHMARK(BM_SparseLogisticLearn)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// BM_SparseLogisticLearn with a listener on the model's events, as the
// dashboard (server/dashboard.h) keeps on every model: with a listener, each
// update also builds and publishes its version event (model_events.h), which
// the listener drops at once. The difference with BM_SparseLogisticLearn is
// what the dashboard costs the update path.
void BM_SparseLogisticLearnWatched(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const SparsePool& pool = GetSparsePool(kSparseLogFeatures);
  absl::StatusOr<ActiveModel*> model =
      Acquire(absl::StrCat("sparse-logistic-learn-", batch),
              SparseLogisticSpec(kSparseLogFeatures), NoInit);
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  std::atomic<uint64_t> kept{0};
  absl::StatusOr<std::unique_ptr<EventSubscription>> watch =
      Store().Watch((*model)->name, [&kept](const ModelEvent& e) {
        if (e.kind == ModelEvent::Kind::kVersion && e.detail.empty()) return;
        kept.fetch_add(1, std::memory_order_relaxed);
      });
  if (!watch.ok()) {
    state.SkipWithError(watch.status().ToString().c_str());
    return;
  }
  RunUpdates(state, **model, pool.examples, batch);
  ReportModel(state, (*model)->name, /*memory=*/true);
}
BENCHMARK(BM_SparseLogisticLearnWatched)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// One model of N learns while N - 1 sit idle in the same store, as on a
// server of many small models. With a budget (the server's default), every
// update reserves its share against what all the models are charged.
void BM_UpdateAmongModels(benchmark::State& state) {
  const int64_t models = state.range(0);
  StoreOptions options;
  options.max_memory_bytes = state.range(1) != 0 ? int64_t{1} << 40 : 0;
  ModelStore store(options);
  const ModelSpec spec = SparseLogisticSpec(10);
  for (int64_t m = 0; m < models; ++m) {
    if (absl::Status s = store.CreateModel(absl::StrCat("m", m), spec).status();
        !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  const SparsePool& pool = GetSparsePool(10);
  int64_t cursor = 0;
  for (auto _ : state) {
    // As the server learns: StartUpdate, answered through the callback.
    absl::Status status;
    absl::Notification answered;
    store.StartUpdate("m0", absl::MakeConstSpan(&pool.examples[cursor], 1), {},
                      "", [&](absl::StatusOr<UpdateResult> r) {
                        status = r.status();
                        answered.Notify();
                      });
    answered.WaitForNotification();
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
    cursor = (cursor + 1) % kPoolSize;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UpdateAmongModels)
    ->ArgsProduct({{1, 100, 1000}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

void BM_SparseFtrlLearn(benchmark::State& state) {
  LearnBenchmark(state, "sparse-ftrl-learn-",
                 SparseFtrlSpec(kSparseLogFeatures),
                 GetSparsePool(kSparseLogFeatures).examples, /*memory=*/true);
}
BENCHMARK(BM_SparseFtrlLearn)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// The stages of BM_SparseLogisticLearn/B, timed one by one on the core's
// parts as the store calls them (without the store's lock, guardrail and
// drift detector): validation, the learner's progressive scoring pass and
// optimizer steps, the commit (the delta), showing the version (replaying
// it into a live copy) and releasing the version that leaves a window of 8.
// Counters: microseconds per update. `score_us` is an extra scoring pass
// over the same examples before learning, which the learner also runs
// inside `learn_us`.
void BM_SparseLearnStages(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  const int64_t batch = state.range(0);
  const SparsePool& pool = GetSparsePool(kSparseLogFeatures);
  const ModelSpec spec = SparseLogisticSpec(kSparseLogFeatures);
  Learner learner(spec);
  std::deque<std::shared_ptr<const ParamsVersion>> window;
  uint64_t version = 1;
  window.push_back(learner.Commit(version));
  window.back()->Show();
  uint64_t steps = 0;
  int64_t cursor = 0;
  double validate = 0, score = 0, learn = 0, commit = 0, show = 0, release = 0;
  auto seconds_since = [](Clock::time_point& t) {
    const Clock::time_point now = Clock::now();
    const double s = std::chrono::duration<double>(now - t).count();
    t = now;
    return s;
  };
  for (auto _ : state) {
    const absl::Span<const ExampleView> examples =
        absl::MakeConstSpan(pool.examples).subspan(cursor, batch);
    Clock::time_point t = Clock::now();
    benchmark::DoNotOptimize(ValidateExamples(spec, examples));
    validate += seconds_since(t);
    benchmark::DoNotOptimize(learner.Evaluate(examples));
    score += seconds_since(t);
    BatchMetrics metrics;
    learner.Learn(examples, 1, spec.optimizer.learning_rate, &steps, &metrics);
    learn += seconds_since(t);
    window.push_back(learner.Commit(++version));
    commit += seconds_since(t);
    window.back()->Show();
    show += seconds_since(t);
    if (window.size() > 8) window.pop_front();
    release += seconds_since(t);
    cursor = (cursor + batch) % kPoolSize;
  }
  const auto per_update = benchmark::Counter::kAvgIterations;
  state.counters["validate_us"] =
      benchmark::Counter(validate * 1e6, per_update);
  state.counters["score_us"] = benchmark::Counter(score * 1e6, per_update);
  state.counters["learn_us"] = benchmark::Counter(learn * 1e6, per_update);
  state.counters["commit_us"] = benchmark::Counter(commit * 1e6, per_update);
  state.counters["show_us"] = benchmark::Counter(show * 1e6, per_update);
  state.counters["release_us"] = benchmark::Counter(release * 1e6, per_update);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_SparseLearnStages)
    ->Arg(1)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

void BM_SparseLogisticPredict(benchmark::State& state) {
  const SparsePool& pool = GetSparsePool(kSparseLogFeatures);
  const std::string name = "sparse-logistic-predict";  // shared by every batch
  absl::StatusOr<ActiveModel*> model =
      Acquire(name, SparseLogisticSpec(kSparseLogFeatures),
              [&] { return TrainOnePass(name, pool.examples); });
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  RunPredictions(state, name, pool.instances, state.range(0));
}
BENCHMARK(BM_SparseLogisticPredict)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// Batch-1 updates as D grows: the time should track the 40 nonzeros, not D.
void BM_SparseUpdateVsD(benchmark::State& state) {
  const int log_features = static_cast<int>(state.range(0));
  const SparsePool& pool = GetSparsePool(log_features);
  absl::StatusOr<ActiveModel*> model =
      Acquire(absl::StrCat("sparse-update-vs-d-", log_features),
              SparseLogisticSpec(log_features), NoInit);
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  RunUpdates(state, **model, pool.examples, /*batch=*/1);
  ReportModel(state, (*model)->name, /*memory=*/true);
}
BENCHMARK(BM_SparseUpdateVsD)
    ->DenseRange(16, 24, 2)
    ->Unit(benchmark::kMicrosecond);

// Batch-1 sparse updates with each drift detector: what watching the loss
// stream costs an update (a detector observation per example and a copy of
// the detector's state per version). Arg: 0 none, 1 ADWIN, 2 Page-Hinkley;
// compare with the none line of the same run.
void BM_SparseUpdateDriftDetector(benchmark::State& state) {
  const auto kind = static_cast<DriftDetectorKind>(state.range(0));
  const SparsePool& pool = GetSparsePool(kSparseLogFeatures);
  ModelSpec spec = SparseLogisticSpec(kSparseLogFeatures);
  spec.drift.detector.kind = kind;
  absl::StatusOr<ActiveModel*> model = Acquire(
      absl::StrCat("sparse-update-detector-", state.range(0)), spec, NoInit);
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  RunUpdates(state, **model, pool.examples, /*batch=*/1);
}
BENCHMARK(BM_SparseUpdateDriftDetector)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond);

void BM_SparseUpdateVsNonzeros(benchmark::State& state) {
  const int64_t nonzeros = state.range(0);
  const SparsePool& pool = GetSparsePool(kSparseLogFeatures);
  std::vector<ExampleView> examples = pool.examples;
  for (ExampleView& e : examples) {
    e.features.indices = e.features.indices.subspan(0, nonzeros);
    e.features.values = e.features.values.subspan(0, nonzeros);
  }
  absl::StatusOr<ActiveModel*> model =
      Acquire(absl::StrCat("sparse-update-vs-nonzeros-", nonzeros),
              SparseLogisticSpec(kSparseLogFeatures), NoInit);
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  RunUpdates(state, **model, examples, /*batch=*/1);
}
BENCHMARK(BM_SparseUpdateVsNonzeros)
    ->Arg(5)
    ->Arg(10)
    ->Arg(20)
    ->Arg(40)
    ->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------------------
// Baselines: the bare math in plain Eigen, on contiguous matrices, with no
// store, versions, validation or progressive metrics.

// Turns each row of z into its softmax, in place.
void SoftmaxRows(RowMatrix& z) {
  for (Eigen::Index i = 0; i < z.rows(); ++i) {
    auto row = z.row(i);
    row.array() -= row.maxCoeff();
    row = row.array().exp().matrix();
    row /= row.sum();
  }
}

// One minibatch SGD step per iteration on `batch` consecutive pool rows:
// Z = X W + b, P = softmax(Z), G = X^T (P - Y) / batch, W -= lr G (and the
// bias likewise).
void BM_BaselineEigenSoftmaxStep(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const DensePool& pool = GetDensePool();
  RowMatrix w = RowMatrix::Zero(kDenseFeatures, kDenseClasses);
  Eigen::RowVectorXf b = Eigen::RowVectorXf::Zero(kDenseClasses);
  RowMatrix z(batch, kDenseClasses);
  RowMatrix g(kDenseFeatures, kDenseClasses);
  int64_t cursor = 0;
  for (auto _ : state) {
    const auto x = pool.x.middleRows(cursor, batch);
    z.noalias() = x * w;
    z.rowwise() += b;
    SoftmaxRows(z);
    for (int64_t i = 0; i < batch; ++i) z(i, pool.labels[cursor + i]) -= 1.0f;
    z *= 1.0f / static_cast<float>(batch);  // mean gradient
    g.noalias() = x.transpose() * z;
    w.noalias() -= kBaselineLearningRate * g;
    b.noalias() -= kBaselineLearningRate * z.colwise().sum();
    benchmark::ClobberMemory();
    cursor = (cursor + batch) % kPoolSize;
  }
  benchmark::DoNotOptimize(w.data());
  benchmark::DoNotOptimize(b.data());
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_BaselineEigenSoftmaxStep)
    ->Arg(16)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// The math of BM_SparseLogisticLearn/B (and BM_SparseFtrlLearn/B) on bare
// arrays: for each minibatch of the default 16 examples, the logistic
// gradients (scored with the weights before the minibatch), averaged per
// coordinate, then the optimizer's step on every coordinate touched and the
// bias. Flat arrays of D + 1 weights and of each state; nothing is copied,
// validated or published. The arrays are AlignedFloats, allocated as the
// model's are (huge pages for large ones). `step(j, g)` applies gradient g to
// coordinate j,
// whose weight is w[j * stride].
template <typename Step>
void BareSparseLoop(benchmark::State& state, Step&& step, AlignedFloats& w,
                    int64_t stride = 1) {
  const int64_t batch = state.range(0);
  const SparsePool& pool = GetSparsePool(kSparseLogFeatures);
  const int64_t d = int64_t{1} << kSparseLogFeatures;
  const int64_t minibatch = ModelSpec().minibatch_size;
  AlignedFloats grad(d + 1, 0.0f);
  std::vector<uint32_t> touched;
  std::vector<float> dz(minibatch);
  int64_t cursor = 0;
  for (auto _ : state) {
    for (int64_t begin = 0; begin < batch; begin += minibatch) {
      const int64_t m = std::min(minibatch, batch - begin);
      float bias_grad = 0;
      for (int64_t i = 0; i < m; ++i) {
        const ExampleView& e =
            pool.examples[(cursor + begin + i) % pool.examples.size()];
        float z = w[d * stride];
        for (size_t k = 0; k < e.features.indices.size(); ++k) {
          z += w[e.features.indices[k] * stride] * e.features.values[k];
        }
        const float p = 1.0f / (1.0f + std::exp(-z));
        dz[i] = (p - e.label) * e.weight / static_cast<float>(m);
        bias_grad += dz[i];
      }
      touched.clear();
      for (int64_t i = 0; i < m; ++i) {
        const ExampleView& e =
            pool.examples[(cursor + begin + i) % pool.examples.size()];
        for (size_t k = 0; k < e.features.indices.size(); ++k) {
          const uint32_t j = e.features.indices[k];
          if (grad[j] == 0) touched.push_back(j);
          grad[j] += e.features.values[k] * dz[i];
        }
      }
      for (uint32_t j : touched) {
        step(j, grad[j]);
        grad[j] = 0;
      }
      step(d, bias_grad);
    }
    cursor = (cursor + batch) % static_cast<int64_t>(pool.examples.size());
    benchmark::DoNotOptimize(w.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_BaselineSparseAdaGrad(benchmark::State& state) {
  const ModelSpec spec = SparseLogisticSpec(kSparseLogFeatures);
  const int64_t d = spec.num_features;
  const float lr = spec.optimizer.learning_rate;
  const float eps = spec.optimizer.epsilon;
  AlignedFloats w(d + 1, 0.0f), acc(d + 1, 0.0f);
  BareSparseLoop(
      state,
      [&](int64_t j, float g) {
        acc[j] += g * g;
        w[j] -= lr * g / (std::sqrt(acc[j]) + eps);
      },
      w);
}
BENCHMARK(BM_BaselineSparseAdaGrad)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// The same on one flat array with each weight beside its accumulator, the
// order a large model's learner keeps (param_layout.h): one cache miss per
// coordinate instead of two.
void BM_BaselineSparseAdaGradRowOrder(benchmark::State& state) {
  const ModelSpec spec = SparseLogisticSpec(kSparseLogFeatures);
  const int64_t d = spec.num_features;
  const float lr = spec.optimizer.learning_rate;
  const float eps = spec.optimizer.epsilon;
  AlignedFloats w_acc(2 * (d + 1), 0.0f);
  BareSparseLoop(
      state,
      [&](int64_t j, float g) {
        float& acc = w_acc[2 * j + 1];
        acc += g * g;
        w_acc[2 * j] -= lr * g / (std::sqrt(acc) + eps);
      },
      w_acc, 2);
}
BENCHMARK(BM_BaselineSparseAdaGradRowOrder)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// FTRL-Proximal's closed form on flat arrays of z and n (the bias, like the
// model's, without L1).
void BM_BaselineSparseFtrl(benchmark::State& state) {
  const ModelSpec spec = SparseFtrlSpec(kSparseLogFeatures);
  const int64_t d = spec.num_features;
  const float alpha = spec.optimizer.learning_rate;
  const float beta = spec.optimizer.beta;
  const float l1 = spec.optimizer.l1;
  const float l2 = spec.l2;
  AlignedFloats w(d + 1, 0.0f), z(d + 1, 0.0f), n(d + 1, 0.0f);
  BareSparseLoop(
      state,
      [&](int64_t j, float g) {
        const float n_new = n[j] + g * g;
        const float root = std::sqrt(n_new);
        const float sigma = (root - std::sqrt(n[j])) / alpha;
        z[j] += g - sigma * w[j];
        n[j] = n_new;
        const float l = j == d ? 0.0f : l1;
        w[j] = std::fabs(z[j]) <= l ? 0.0f
                                    : -(z[j] - std::copysign(l, z[j])) /
                                          ((beta + root) / alpha + l2);
      },
      w);
}
BENCHMARK(BM_BaselineSparseFtrl)
    ->Arg(1)
    ->Arg(32)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

// Softmax probabilities of `batch` consecutive pool rows per iteration.
void BM_BaselineEigenPredict(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const DensePool& pool = GetDensePool();
  std::mt19937 rng(kSeed);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  RowMatrix w(kDenseFeatures, kDenseClasses);
  for (int64_t j = 0; j < w.size(); ++j) w.data()[j] = normal(rng);
  Eigen::RowVectorXf b = Eigen::RowVectorXf::Zero(kDenseClasses);
  RowMatrix z(batch, kDenseClasses);
  int64_t cursor = 0;
  for (auto _ : state) {
    z.noalias() = pool.x.middleRows(cursor, batch) * w;
    z.rowwise() += b;
    SoftmaxRows(z);
    benchmark::DoNotOptimize(z.data());
    benchmark::ClobberMemory();
    cursor = (cursor + batch) % kPoolSize;
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_BaselineEigenPredict)->Arg(256)->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------------------
// Drift detectors at their defaults on a stationary log-loss stream (the
// usual case: no drift, so ADWIN's window only grows): the losses -log q or
// -log(1 - q) of a calibrated prediction q ~ U(0.7, 0.95), a pool of 4096
// cycled. One item = one Add.

const std::vector<double>& GetLossPool() {
  static const std::vector<double>* const pool = [] {
    auto* p = new std::vector<double>;
    std::mt19937 rng(kSeed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (int i = 0; i < 4096; ++i) {
      const double q = 0.7 + 0.25 * uniform(rng);
      p->push_back(uniform(rng) < q ? -std::log(q) : -std::log1p(-q));
    }
    return p;
  }();
  return *pool;
}

void RunDriftAdd(benchmark::State& state, DriftDetectorKind kind) {
  const std::vector<double>& pool = GetLossPool();
  DriftDetectorConfig config;
  config.kind = kind;
  std::unique_ptr<DriftDetector> detector = DriftDetector::Create(config);
  size_t i = 0;
  int64_t drifts = 0;
  for (auto _ : state) {
    drifts += detector->Add(pool[i]) == DriftState::kDrift;
    i = (i + 1) & (pool.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["drifts"] = static_cast<double>(drifts);
  state.counters["memory_bytes"] =
      static_cast<double>(detector->memory_bytes());
}

void BM_AdwinAdd(benchmark::State& state) {
  RunDriftAdd(state, DriftDetectorKind::kAdwin);
}
BENCHMARK(BM_AdwinAdd);

void BM_PageHinkleyAdd(benchmark::State& state) {
  RunDriftAdd(state, DriftDetectorKind::kPageHinkley);
}
BENCHMARK(BM_PageHinkleyAdd);

}  // namespace
}  // namespace lepton

int main(int argc, char** argv) {
  // What the console's "Library was built as DEBUG" line does not say: it is
  // about the prebuilt Google Benchmark library, not about this binary.
#ifdef NDEBUG
  benchmark::AddCustomContext("lepton_build", "NDEBUG (release)");
#else
  benchmark::AddCustomContext("lepton_build", "assertions on (debug)");
#endif
  // Eigen::SimdInstructionSetsInUse() reports AVX2 + FMA builds as "AVX".
  std::string simd = "SSE4.2";
#ifdef EIGEN_VECTORIZE_AVX
  simd += " AVX";
#endif
#ifdef EIGEN_VECTORIZE_AVX2
  simd += " AVX2";
#endif
#ifdef EIGEN_VECTORIZE_FMA
  simd += " FMA";
#endif
#ifdef EIGEN_VECTORIZE_AVX512
  simd += " AVX512";
#endif
  benchmark::AddCustomContext("eigen_vectorize", simd);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
