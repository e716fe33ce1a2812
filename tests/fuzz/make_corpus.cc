// make_fuzz_corpus DIR: writes the seed corpus of every fuzz target into
// DIR/<target>/ (tests/fuzz/corpus/ in the repository), made by the
// project's own writers: model states exported by a store, a model
// directory written by a store on a MemoryFileSystem, update records from
// AppendUpdateRecord, serialized requests, and files of each text format.
// Run it after a format changes and commit what it writes:
//
//   cmake --build --preset fuzz --target make_fuzz_corpus
//   build-fuzz/tests/fuzz/make_fuzz_corpus tests/fuzz/corpus
//
// The output is deterministic (fixed data, fixed timestamps), so a run that
// changes nothing leaves the files as they are. Each input's layout is the
// one its target's comment describes (flags first, then the bytes).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/learning/example.h"
#include "core/replication/log_entry.h"
#include "core/storage/model_files.h"
#include "core/storage/model_state.h"
#include "core/storage/update_journal.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_store.h"
#include "inference/grpc_predict_v2.pb.h"
#include "lepton/v1/lepton.pb.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/memory_file_system.h"

namespace lepton::fuzz {
namespace {

std::string out_dir;  // NOLINT: set once by main

void Write(const std::string& target, const std::string& name,
           const std::string& bytes) {
  const std::filesystem::path dir = std::filesystem::path(out_dir) / target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string Flagged(uint8_t flags, absl::string_view bytes) {
  std::string out(1, static_cast<char>(flags));
  out.append(bytes.data(), bytes.size());
  return out;
}

// A small deterministic stream of numbers.
class Numbers {
 public:
  explicit Numbers(uint32_t seed) : state_(seed * 2654435761u + 1) {}
  uint32_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  float Uniform() { return static_cast<float>(Next() % 2001) / 1000.0f - 1; }

 private:
  uint32_t state_;
};

// The specs of the seeds: one of each type and optimizer, with the
// adaptation features on.
std::vector<std::pair<std::string, ModelSpec>> Specs() {
  std::vector<std::pair<std::string, ModelSpec>> specs;
  ModelSpec a;
  a.type = ModelType::kLogisticRegression;
  a.num_features = 8;
  a.minibatch_size = 4;
  a.guardrail.policy = GuardrailPolicy::kQuarantine;
  a.guardrail.holdout_capacity = 40;
  a.guardrail.min_holdout = 5;
  a.guardrail.recheck_holdout = 5;
  a.drift.detector.kind = DriftDetectorKind::kAdwin;
  specs.emplace_back("logistic", a);
  ModelSpec b;
  b.type = ModelType::kSoftmaxRegression;
  b.num_classes = 3;
  b.num_features = 20;
  b.optimizer.kind = OptimizerKind::kFtrl;
  b.optimizer.l1 = 0.01f;
  b.interactions = {"ab", "aa"};
  b.hash_seed = 7;
  b.drift.detector.kind = DriftDetectorKind::kPageHinkley;
  b.drift.detector.min_observations = 5;
  b.drift.policy = DriftPolicy::kChallenger;
  b.drift.challenger_window = 10;
  b.drift.challenger_max_examples = 40;
  b.guardrail.policy = GuardrailPolicy::kReject;
  b.guardrail.holdout_capacity = 20;
  b.guardrail.min_holdout = 5;
  specs.emplace_back("softmax", b);
  ModelSpec c;
  c.type = ModelType::kLinearRegression;
  c.num_features = 4;
  c.optimizer.kind = OptimizerKind::kAdam;
  c.max_gradient_norm = 10;
  c.drift.policy = DriftPolicy::kBoost;
  c.drift.boost_examples = 10;
  specs.emplace_back("linear", c);
  ModelSpec d;
  d.type = ModelType::kSoftmaxRegression;
  d.num_classes = 4;
  d.num_features = 3;
  d.optimizer.kind = OptimizerKind::kSgd;
  d.drift.detector.kind = DriftDetectorKind::kNone;
  specs.emplace_back("tiny", d);
  return specs;
}

// Examples for `spec`: dense for small models, sparse otherwise; every
// fourth batch has holdout examples, and labels flip halfway (a drift).
std::vector<Example> Batch(const ModelSpec& spec, int round, Numbers& n) {
  std::vector<Example> batch(4 + round % 3);
  for (size_t i = 0; i < batch.size(); ++i) {
    Example& e = batch[i];
    if (spec.num_features <= 8) {
      for (int64_t j = 0; j < spec.num_features; ++j) {
        e.features.dense.push_back(n.Uniform());
      }
    } else {
      for (uint32_t j = 0; j < 3; ++j) {
        e.features.indices.push_back(j * 5 + n.Next() % 5);
        e.features.values.push_back(n.Uniform());
      }
    }
    const bool flipped = round > 20;
    switch (spec.type) {
      case ModelType::kLinearRegression:
        e.label = 2 * n.Uniform();
        break;
      case ModelType::kLogisticRegression:
        e.label = ((n.Next() % 4 == 0) != flipped) ? 1 : 0;
        break;
      default:
        e.label = static_cast<float>((n.Next() % 3 + (flipped ? 1 : 0)) %
                                     spec.num_classes);
        break;
    }
    if (i % 3 == 1) e.weight = 0.5f;
    e.holdout = round % 4 == 0 && i % 2 == 0;
  }
  return batch;
}

// The state's timestamps fixed, so that the seeds do not change run to run.
std::string Fixed(absl::string_view blob) {
  absl::StatusOr<ModelState> state = DecodeModelState(blob);
  if (!state.ok()) {
    std::fprintf(stderr, "%s\n", state.status().ToString().c_str());
    std::abort();
  }
  state->created = absl::FromUnixSeconds(1704067200);
  state->published = absl::FromUnixSeconds(1704067260);
  return EncodeModelState(*state);
}

void Learn(ModelStore& store, const std::string& name, const ModelSpec& spec,
           int rounds, uint32_t seed) {
  Numbers n(seed);
  for (int round = 0; round < rounds; ++round) {
    const std::vector<Example> batch = Batch(spec, round, n);
    const std::string id = round % 5 == 0 ? absl::StrCat("batch-", round) : "";
    UpdateOptions options;
    if (round % 7 == 3) options.learning_rate = 0.05f;
    if (round % 11 == 5) options.epochs = 2;
    // A refused update (guardrail) is part of the stream too.
    store.Update(name, Views(batch), options, id).IgnoreError();
  }
}

void ImportSeeds() {
  ModelStore store;
  int i = 0;
  for (const auto& [name, spec] : Specs()) {
    if (!store.CreateModel(name, spec).ok()) std::abort();
    // Version 1 of a fresh model, before any learning.
    if (i == 0) {
      Write("import_model_fuzzer", "seed-fresh",
            Flagged(0, Fixed(*store.ExportModel(name, 1))));
    }
    Learn(store, name, spec, 40, 11 + i);
    // A batch against the holdout set's labels, at a high rate: a guardrail
    // holds it back (QUARANTINE) or refuses it.
    std::vector<Example> poison = Batch(spec, 1, *std::make_unique<Numbers>(3));
    for (Example& e : poison) {
      e.label = spec.type == ModelType::kLinearRegression ? 50.0f : 0.0f;
      e.holdout = false;
    }
    UpdateOptions strong;
    strong.learning_rate = 5;
    store.Update(name, Views(poison), strong).IgnoreError();
    const std::string blob = Fixed(*store.ExportModel(name, 0));
    absl::StatusOr<ModelState> state = DecodeModelState(blob);
    std::fprintf(stderr,
                 "import seed %s: %zu bytes, holdout %zu, quarantine %zu, "
                 "challenger %d, recent updates %zu\n",
                 name.c_str(), blob.size(), state->adaptation.holdout.size(),
                 state->adaptation.quarantine.size(),
                 state->adaptation.has_challenger ? 1 : 0,
                 state->recent_updates.size());
    Write("import_model_fuzzer", absl::StrCat("seed-", name), Flagged(0, blob));
    if (spec.drift.policy == DriftPolicy::kChallenger &&
        spec.drift.detector.kind != DriftDetectorKind::kNone &&
        !state->adaptation.has_challenger) {
      // A challenger in the middle of its window, as a drift starts one.
      ModelState with = *state;
      AdaptationState& a = with.adaptation;
      a.has_challenger = true;
      a.challenger_params.assign(with.params.size(), 0.0f);
      a.challenger_steps = 3;
      a.challenger.started_at = with.counters.examples_seen - 12;
      a.challenger.examples = 12;
      a.challenger.champion_window.assign(spec.drift.challenger_window, 0.5f);
      a.challenger.challenger_window.assign(spec.drift.challenger_window,
                                            0.75f);
      a.challenger.champion_sum = 0.5 * spec.drift.challenger_window;
      a.challenger.challenger_sum = 0.75 * spec.drift.challenger_window;
      Write("import_model_fuzzer", absl::StrCat("seed-", name, "-challenger"),
            Flagged(0, EncodeModelState(with)));
    }
    Write("import_model_fuzzer", absl::StrCat("seed-", name, "-own-name"),
          Flagged(2, blob));
    ++i;
  }
}

// The files of model "m"'s directory as a checkpoint_fuzzer input.
std::string ModelDirInput(const MemoryFileSystem& fs, uint8_t flags,
                          bool torn_tail) {
  std::string input(1, static_cast<char>(flags));
  const std::string prefix = "/d/models/m/";
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& [path, content] : fs.Files()) {
    if (absl::StartsWith(path, prefix)) {
      files.emplace_back(path.substr(prefix.size()), content);
    }
  }
  for (size_t f = 0; f < files.size(); ++f) {
    const auto& [name, content] = files[f];
    uint64_t version = 0;
    uint8_t kind = 0;
    std::string bytes = content;
    if (ModelFiles::ParseCheckpointFileName(name, &version)) {
      kind = 0;
      bytes = Fixed(bytes);
    } else if (ParseSegmentFileName(name, &version)) {
      kind = 1;
      // The newest segment cut inside its last record: a crash mid-write.
      if (torn_tail && f + 1 == files.size() && bytes.size() > 40) {
        bytes.resize(bytes.size() - 7);
      }
    } else {
      continue;
    }
    input.push_back(static_cast<char>(kind));
    AppendFixed<uint64_t>(version, &input);
    AppendChunk(bytes, &input);
  }
  return input;
}

// A model directory written by a store: its checkpoints and log segments,
// as a crash leaves them (no final checkpoint) and after a clean close.
// Also feeds the update_log_fuzzer with the segments.
void CheckpointSeeds() {
  int i = 0;
  for (const auto& [name, spec] : Specs()) {
    MemoryFileSystem fs;
    StoreOptions options;
    options.data_dir = "/d";
    options.fs = &fs;
    options.fsync = FsyncPolicy::kNever;
    options.keep_checkpoints = 2;
    {
      absl::StatusOr<std::unique_ptr<ModelStore>> store =
          ModelStore::Open(options, nullptr);
      if (!store.ok() || !(*store)->CreateModel("m", spec).ok()) std::abort();
      Learn(**store, "m", spec, 12, 23 + i);
      if (!(*store)->Checkpoint(/*force=*/true).ok()) std::abort();
      Learn(**store, "m", spec, 9, 31 + i);
      // Crashed here: the last checkpoint and the log after it.
      Write("checkpoint_fuzzer", absl::StrCat("seed-", name, "-crashed"),
            ModelDirInput(fs, 0, false));
      Write("checkpoint_fuzzer", absl::StrCat("seed-", name, "-torn"),
            ModelDirInput(fs, 0, true));
      for (const auto& [path, content] : fs.Files()) {
        uint64_t first = 0;
        const std::string file = path.substr(path.rfind('/') + 1);
        if (!ParseSegmentFileName(file, &first) || content.size() <= 24) {
          continue;
        }
        Write("update_log_fuzzer",
              absl::StrCat("seed-", name, "-segment-", first),
              Flagged(0, content));
        Write("update_log_fuzzer",
              absl::StrCat("seed-", name, "-newest-", first),
              Flagged(2, content));
      }
      if (!(*store)->Close().ok()) std::abort();
    }
    Write("checkpoint_fuzzer", absl::StrCat("seed-", name, "-closed"),
          ModelDirInput(fs, 0, false));
    ++i;
  }
}

// Single records, and a segment of the older format 1.
void RecordSeeds() {
  Numbers n(5);
  for (int i = 0; i < 3; ++i) {
    const ModelSpec spec = Specs()[i].second;
    std::vector<Example> batch = Batch(spec, i, n);
    if (i == 1) batch[0].served_outputs = {0.5f, -0.25f, 1.0f};
    UpdateOptions options;
    if (i == 2) options.learning_rate = 0.125f;
    std::string record;
    AppendUpdateRecord(7 + i, i == 0 ? "retry-id" : "", options, Views(batch),
                       &record);
    Write("update_log_fuzzer", absl::StrCat("seed-record-", i),
          Flagged(4, record));
  }
  std::string old = EncodeSegmentHeader(3, /*format_version=*/1);
  const ModelSpec spec = Specs()[0].second;
  for (int i = 0; i < 3; ++i) {
    const std::vector<Example> batch = Batch(spec, i, n);
    AppendUpdateRecord(3 + i, "", {}, Views(batch), &old, 1);
  }
  Write("update_log_fuzzer", "seed-format-1", Flagged(0, old));
}

// log_entry_fuzzer: u8 flags ((flags >> 1) % 3: entry, snapshot,
// prediction) | the bytes: an entry of each kind, a snapshot, a prediction.
void LogEntrySeeds() {
  const ModelSpec spec = Specs()[1].second;
  ModelStore store;
  if (!store.CreateModel("m", spec).ok()) std::abort();
  const std::string state = *store.ExportModel("m", 0);
  Numbers n(9);
  std::string record;
  AppendUpdateRecord(0, "u-7", {}, Views(Batch(spec, 1, n)), &record);
  LogEntry entry;
  entry.model = "m";
  entry.origin = "node-a";
  entry.sequence = 42;
  const std::pair<LogEntryKind, const char*> kinds[] = {
      {LogEntryKind::kCreate, "create"},
      {LogEntryKind::kDelete, "delete"},
      {LogEntryKind::kUpdate, "update"},
      {LogEntryKind::kRollback, "rollback"},
      {LogEntryKind::kAddClasses, "add-classes"},
      {LogEntryKind::kImport, "import"}};
  for (const auto& [kind, name] : kinds) {
    entry.kind = kind;
    entry.spec = spec;
    entry.update_record = record;
    entry.version = 3;
    entry.num_classes = 5;
    entry.model_state = state;
    Write("log_entry_fuzzer", absl::StrCat("seed-", name),
          Flagged(0, EncodeLogEntry(entry)));
  }
  ModelSnapshot snapshot;
  snapshot.position = "1700000000000-0";
  snapshot.entries = 12;
  snapshot.model_state = state;
  Write("log_entry_fuzzer", "seed-snapshot",
        Flagged(2, EncodeModelSnapshot(snapshot)));
  RememberedPrediction prediction;
  prediction.features.indices = {1, 5};
  prediction.features.values = {0.5f, -1};
  prediction.outputs = {0.25f, -0.5f, 1};
  prediction.version = 9;
  Write("log_entry_fuzzer", "seed-prediction",
        Flagged(4, EncodeSharedPrediction(prediction,
                                          absl::FromUnixSeconds(1800000000))));
}

void AddDense(v1::Features* f, std::initializer_list<float> values) {
  for (float v : values) f->add_dense(v);
}

void AddNamed(v1::Features* f, const std::string& ns,
              std::initializer_list<std::pair<const char*, float>> features) {
  v1::Namespace* n = f->add_namespaces();
  n->set_name(ns);
  for (const auto& [name, value] : features) {
    v1::NamedFeature* nf = n->add_features();
    nf->set_name(name);
    if (value != 1) nf->set_value(value);
  }
}

// request_fuzzer inputs: u8 op | u32 length | request, op & 16 ModelInfer,
// else op & 1 update; (op >> 1) & 3 the model (dense, sparse, linear, wide).
void Append(uint8_t op, const google::protobuf::Message& m, std::string* in) {
  in->push_back(static_cast<char>(op));
  AppendChunk(m.SerializeAsString(), in);
}

void RequestSeeds() {
  // dense: predict, learn, predict with ids, learn from them.
  {
    std::string in;
    v1::PredictRequest p;
    AddDense(p.add_instances(), {1, 0, 0.5f, 0, 0, -1, 0, 2});
    v1::Features* sparse = p.add_instances();
    sparse->add_indices(3);
    sparse->add_values(1.5f);
    Append(0, p, &in);
    v1::UpdateRequest u;
    for (int i = 0; i < 6; ++i) {
      v1::Example* e = u.add_examples();
      AddDense(e->mutable_features(), {1, 0, 0.5f, 0, 0, -1, 0, 2.0f * i});
      e->set_label(i % 2);
      e->set_holdout(i % 3 == 0);
    }
    u.set_update_id("u-1");
    Append(1, u, &in);
    Append(1, u, &in);  // a retry
    p.set_return_prediction_ids(true);
    Append(0, p, &in);
    v1::UpdateRequest delayed;
    delayed.add_examples()->set_prediction_id(1);
    v1::Example* e = delayed.add_examples();
    e->set_prediction_id(2);
    e->set_label(1);
    e->set_weight(0.5f);
    delayed.set_epochs(2);
    delayed.set_learning_rate(0.1f);
    Append(1, delayed, &in);
    Write("request_fuzzer", "seed-dense", in);
  }
  // sparse: named features with interactions, explicit pairs, holdout.
  {
    std::string in;
    v1::UpdateRequest u;
    for (int i = 0; i < 8; ++i) {
      v1::Example* e = u.add_examples();
      v1::Features* f = e->mutable_features();
      AddNamed(f, "a", {{"x", 1}, {"y", 0.5f}});
      AddNamed(f, "b", {{"z", 2}});
      AddNamed(f, "", {{"bias", 1}});
      f->add_indices(7);
      f->add_values(0.25f);
      e->set_label(i % 3);
      e->set_holdout(i == 0);
    }
    Append(3, u, &in);
    v1::PredictRequest p;
    AddNamed(p.add_instances(), "a", {{"x", 1}, {"w", -1}});
    p.set_version(1);
    Append(2, p, &in);
    Write("request_fuzzer", "seed-sparse", in);
  }
  // linear: learn in epochs; wide: many classes, few instances.
  {
    std::string in;
    v1::UpdateRequest u;
    for (int i = 0; i < 5; ++i) {
      v1::Example* e = u.add_examples();
      AddDense(e->mutable_features(), {0.1f * i, 1, -1, 0});
      e->set_label(0.5f * i);
    }
    u.set_epochs(3);
    Append(5, u, &in);
    v1::PredictRequest p;
    AddDense(p.add_instances(), {0, 1, 0, 1});
    Append(4, p, &in);
    v1::PredictRequest wide;
    wide.add_instances()->add_indices(0);
    wide.mutable_instances(0)->add_values(1);
    wide.add_instances();
    Append(6, wide, &in);
    v1::UpdateRequest learn;
    v1::Example* e = learn.add_examples();
    e->mutable_features()->add_dense(1);
    e->set_label(65535);
    Append(7, learn, &in);
    Write("request_fuzzer", "seed-linear-wide", in);
  }
  // ModelInfer: predict and learn with fp32_contents on dense, raw
  // contents on linear, labels only on wide.
  {
    std::string in;
    inference::ModelInferRequest predict;
    auto* features = predict.add_inputs();
    features->set_name("features");
    features->set_datatype("FP32");
    features->add_shape(2);
    features->add_shape(8);
    for (int i = 0; i < 16; ++i) {
      features->mutable_contents()->add_fp32_contents(0.25f * (i % 5));
    }
    Append(16, predict, &in);
    inference::ModelInferRequest learn = predict;
    auto* label = learn.add_inputs();
    label->set_name("label");
    label->set_datatype("FP32");
    label->add_shape(2);
    label->mutable_contents()->add_fp32_contents(1);
    label->mutable_contents()->add_fp32_contents(0);
    auto* weight = learn.add_inputs();
    *weight = *label;
    weight->set_name("weight");
    learn.add_outputs()->set_name("version");
    (*learn.mutable_parameters())["update_id"].set_string_param("i-1");
    Append(16, learn, &in);
    Append(16, learn, &in);  // a retry
    inference::ModelInferRequest raw;
    auto* raw_features = raw.add_inputs();
    raw_features->set_name("features");
    raw_features->set_datatype("FP32");
    raw_features->add_shape(1);
    raw_features->add_shape(4);
    const float values[4] = {1, -1, 0.5f, 0};
    raw.add_raw_input_contents(reinterpret_cast<const char*>(values),
                               sizeof(values));
    raw.add_outputs()->set_name("value");
    Append(16 | 4, raw, &in);
    inference::ModelInferRequest wide;
    auto* one = wide.add_inputs();
    one->set_name("features");
    one->set_datatype("FP32");
    one->add_shape(1);
    one->add_shape(1);
    one->mutable_contents()->add_fp32_contents(1);
    wide.add_outputs()->set_name("label");
    wide.set_model_version("1");
    Append(16 | 6, wide, &in);
    Write("request_fuzzer", "seed-infer", in);
  }
}

// named_features_fuzzer: the spec, then instances (see the target).
void NamedFeatureSeeds() {
  std::string in;
  AppendFixed<uint32_t>(7, &in);         // hash seed
  AppendFixed<uint32_t>(2 * 1000, &in);  // d = 1001
  in.push_back(2);
  in += "abaa";  // interactions "ab", "aa"
  const auto name = [&in](absl::string_view s) {
    in.push_back(static_cast<char>(s.size()));
    in.append(s.data(), s.size());
  };
  const auto feature = [&](absl::string_view s, bool has_value, float v) {
    name(s);
    in.push_back(has_value ? 1 : 0);
    AppendFixed<float>(v, &in);
  };
  for (int instance = 0; instance < 2; ++instance) {
    in.push_back(3);  // namespaces
    name("a");
    in.push_back(2);
    feature("x", false, 0);
    feature("y", true, 0.5f);
    name("bee");
    in.push_back(1);
    feature("z", true, -2);
    name("");
    in.push_back(1);
    feature("bias", false, 0);
    in.push_back(1);  // explicit pairs
    AppendFixed<uint32_t>(5, &in);
    AppendFixed<float>(0.25f, &in);
  }
  Write("named_features_fuzzer", "seed-two-instances", in);
  std::string tiny;
  AppendFixed<uint32_t>(0, &tiny);
  AppendFixed<uint32_t>(7, &tiny);  // d = 4: collisions
  tiny.push_back(1);
  tiny += "cc";
  tiny.push_back(1);
  tiny.push_back(1);
  tiny += "c";
  tiny.push_back(3);
  for (const char* f : {"p", "q", "p"}) {
    tiny.push_back(1);
    tiny += f;
    tiny.push_back(0);
    AppendFixed<float>(0, &tiny);
  }
  tiny.push_back(0);
  Write("named_features_fuzzer", "seed-collisions", tiny);
}

void TokenSeeds() {
  Write("token_file_fuzzer", "seed-roles",
        "# tokens of the staging cluster\n"
        "\n"
        "r3ad3r-t0ken-0123456789 reader\n"
        "  wr1ter-t0ken-abcdefghij\twriter  \r\n"
        "adm1n-t0ken-ZYXWVUTSRQP admin\n");
  Write("token_file_fuzzer", "seed-one", "0123456789abcdef admin");
}

// csv_fuzzer, libsvm_fuzzer, vw_fuzzer: u8 options | u8 block | the file.
std::string TextInput(uint8_t options, uint8_t block, absl::string_view file) {
  std::string in;
  in.push_back(static_cast<char>(options));
  in.push_back(static_cast<char>(block));
  in.append(file.data(), file.size());
  return in;
}

void TextSeeds() {
  Write("csv_fuzzer", "seed-dense",
        TextInput(3 << 4, 0,
                  "1,0.5,0,0.25\n0,0,0,0\r\n2,1e-3,-4.5,+7\n\n3, 1 ,2,3\n"));
  Write("csv_fuzzer", "seed-header",
        TextInput(2, 40, "label,a,b\n1,0,1\n0,0.125,-0.0\n"));
  std::string wide = "7";
  for (int i = 0; i < 40; ++i)
    absl::StrAppend(&wide, ",", i % 3 == 0 ? "0" : "1.5");
  Write("csv_fuzzer", "seed-wide", TextInput(0, 8, wide + "\n" + wide + "\n"));
  Write("libsvm_fuzzer", "seed-zero-based",
        TextInput(2 << 4, 0, "1 0:0.5 3:1\n0 2:1e-2 15:-3\n-1\n1 5:1 1:2\n"));
  Write("libsvm_fuzzer", "seed-one-based",
        TextInput(1, 20, "1 1:0.5\t4:2\r\n0  2:1 3:+1.5e+2\n"));
  std::ifstream every(std::string(LEPTON_SOURCE_DIR) +
                      "/tests/client/data/every_form.vw");
  std::string vw((std::istreambuf_iterator<char>(every)),
                 std::istreambuf_iterator<char>());
  Write("vw_fuzzer", "seed-every-form", TextInput(0, 0, vw));
  Write("vw_fuzzer", "seed-logistic",
        TextInput(1 << 2, 30, "-1 |a x\n1 |a y:2\n"));
  Write("vw_fuzzer", "seed-multiclass",
        TextInput((2 << 2) | (3 << 4), 30, "3 |f a b\n1 2 'id |f c:0.5\n"));
}

}  // namespace
}  // namespace lepton::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  lepton::fuzz::out_dir = argv[1];
  lepton::fuzz::ImportSeeds();
  lepton::fuzz::CheckpointSeeds();
  lepton::fuzz::RecordSeeds();
  lepton::fuzz::LogEntrySeeds();
  lepton::fuzz::RequestSeeds();
  lepton::fuzz::NamedFeatureSeeds();
  lepton::fuzz::TokenSeeds();
  lepton::fuzz::TextSeeds();
  return 0;
}
