// ReplicatedStore (core/replication/replicated_store.h): nodes that apply one
// shared log (here in memory) hold bit-identical models; bad changes are
// refused before they are appended; retries, deletions, an unreachable log
// and a diverged node behave as documented.
#include "core/replication/replicated_store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/replication/log_entry.h"
#include "core/storage/model_state.h"
#include "core/storage/update_log_format.h"
#include "tests/core/in_memory_shared_log.h"
#include "tests/core/test_support.h"
#include "tests/testing/scratch_dir.h"

namespace lepton {
namespace {

ModelSpec Logistic() {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 4;
  return spec;
}

// A node: its own store, following the shared log.
struct Node {
  Node(SharedLog* log, const std::string& id, int64_t digest_every = 0,
       const std::function<void(ReplicationOptions&)>& configure = nullptr)
      : store(std::make_unique<ModelStore>()) {
    ReplicationOptions options;
    options.node_id = id;
    options.read_wait = absl::Milliseconds(20);
    options.retry_delay = absl::Milliseconds(5);
    options.digest_every = digest_every;
    options.snapshot_every = 0;
    if (configure) configure(options);
    replicated = std::make_unique<ReplicatedStore>(store.get(), log, options);
  }
  // The store first: the node stops before its store goes.
  std::unique_ptr<ModelStore> store;
  std::unique_ptr<ReplicatedStore> replicated;
};

absl::StatusOr<ModelInfo> Create(ReplicatedStore& node, const std::string& name,
                                 const ModelSpec& spec = Logistic()) {
  std::promise<absl::StatusOr<ModelInfo>> p;
  node.CreateModel(name, spec,
                   [&p](absl::StatusOr<ModelInfo> r) { p.set_value(r); });
  return p.get_future().get();
}

absl::StatusOr<UpdateResult> Update(ReplicatedStore& node,
                                    const std::string& name,
                                    const std::vector<Example>& examples,
                                    const std::string& update_id = "") {
  std::promise<absl::StatusOr<UpdateResult>> p;
  node.StartUpdate(name, Views(examples), {}, update_id,
                   [&p](absl::StatusOr<UpdateResult> r) { p.set_value(r); });
  return p.get_future().get();
}

absl::Status Delete(ReplicatedStore& node, const std::string& name) {
  std::promise<absl::Status> p;
  node.DeleteModel(name, [&p](absl::Status s) { p.set_value(s); });
  return p.get_future().get();
}

// Waits until the node's model `name` has `version` (or 10 s pass).
bool WaitForVersion(ModelStore& store, const std::string& name,
                    uint64_t version) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    absl::StatusOr<ModelInfo> info = store.GetModel(name);
    if (info.ok() && info->version >= version) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return false;
}

// Waits until the node is in `state` (or 10 s pass).
bool WaitForState(ReplicatedStore& node, ReplicatedStore::State state) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (node.state() == state) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return false;
}

bool WaitForServing(ReplicatedStore& node) {
  return WaitForState(node, ReplicatedStore::State::kServing);
}

// The bits of a model's newest version: its number and parameters.
std::string Bits(ModelStore& store, const std::string& name) {
  absl::StatusOr<std::string> blob = store.ExportModel(name, 0);
  if (!blob.ok()) return blob.status().ToString();
  absl::StatusOr<ModelState> state = DecodeModelState(*blob);
  if (!state.ok()) return state.status().ToString();
  std::string bits = absl::StrCat(state->version, ":");
  bits.append(reinterpret_cast<const char*>(state->params.data()),
              state->params.size() * sizeof(float));
  return bits;
}

// A plain store fed the log's entries of model `name` in log order.
std::string ReplayedBits(InMemorySharedLog& log, const std::string& name) {
  ModelStore reference;
  for (const std::string& stream : log.Streams()) {
    if (!absl::StartsWith(stream, absl::StrCat("model:", name, ":"))) continue;
    EXPECT_TRUE(reference.CreateModel(name, Logistic()).ok());
    for (const LogRecord& r : log.Records(stream)) {
      absl::StatusOr<LogEntry> entry = DecodeLogEntry(r.payload);
      EXPECT_TRUE(entry.ok());
      absl::StatusOr<LoggedUpdate> u =
          DecodeUpdateRecord(entry->update_record, stream);
      EXPECT_TRUE(u.ok());
      std::vector<ExampleView> views;
      for (const Example& e : u->examples) views.push_back(e.view());
      reference.Update(name, views, u->options, u->update_id).IgnoreError();
    }
  }
  return Bits(reference, name);
}

TEST(ReplicatedStoreTest, NodesFedConcurrentlyHoldBitIdenticalModels) {
  InMemorySharedLog log;
  Node a(&log, "a"), b(&log, "b"), c(&log, "c");
  ASSERT_TRUE(WaitForServing(*a.replicated));
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 1));
  ASSERT_TRUE(WaitForVersion(*c.store, "m", 1));

  // Four writers spread 200 updates over the three nodes.
  Node* nodes[] = {&a, &b, &c};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) {
        Node& node = *nodes[(w + i) % 3];
        absl::StatusOr<UpdateResult> r =
            Update(*node.replicated, "m", RuleExamples(3, w * 1000 + i));
        EXPECT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (std::thread& t : writers) t.join();
  for (Node* n : nodes) ASSERT_TRUE(WaitForVersion(*n->store, "m", 201));
  const std::string bits = Bits(*a.store, "m");
  EXPECT_EQ(bits.substr(0, 4), "201:");
  EXPECT_EQ(Bits(*b.store, "m"), bits);
  EXPECT_EQ(Bits(*c.store, "m"), bits);
  EXPECT_EQ(ReplayedBits(log, "m"), bits);

  std::optional<ReplicationPosition> position = b.replicated->PositionOf("m");
  ASSERT_TRUE(position.has_value());
  const std::vector<LogRecord> records = log.Records(
      ReplicatedStore::ModelStream("m", log.Records("catalog")[0].id));
  ASSERT_EQ(records.size(), 200u);
  EXPECT_EQ(position->log_position, records.back().id);
}

TEST(ReplicatedStoreTest, TheAnswerIsTheVersionTheEntryProducedEverywhere) {
  InMemorySharedLog log;
  Node a(&log, "a"), b(&log, "b");
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 1));
  absl::StatusOr<UpdateResult> r =
      Update(*b.replicated, "m", RuleExamples(5, 1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(r->examples, 5);
  // B answered once it applied; A has the same version once it has too.
  ASSERT_TRUE(WaitForVersion(*a.store, "m", 2));
  EXPECT_EQ(Bits(*a.store, "m"), Bits(*b.store, "m"));
}

TEST(ReplicatedStoreTest, BadChangesAreRefusedBeforeTheyAreAppended) {
  InMemorySharedLog log;
  Node a(&log, "a"), b(&log, "b");
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 1));
  const int64_t appended = log.appended();

  std::vector<Example> bad = {Dense({1, 2, 3})};  // 3 features, not 4
  absl::StatusOr<UpdateResult> r = Update(*b.replicated, "m", bad);
  EXPECT_TRUE(IsInvalid(r.status(), "examples[0].features")) << r.status();
  EXPECT_EQ(Update(*b.replicated, "nope", RuleExamples(1, 1)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Create(*b.replicated, "m").status().code(),
            absl::StatusCode::kAlreadyExists);
  ModelSpec no_features = Logistic();
  no_features.num_features = 0;
  EXPECT_EQ(Create(*b.replicated, "n", no_features).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(*b.replicated, "bad name!").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Delete(*b.replicated, "nope").code(), absl::StatusCode::kNotFound);
  std::promise<absl::StatusOr<ModelInfo>> rollback;
  b.replicated->Rollback(
      "m", 7, [&](absl::StatusOr<ModelInfo> i) { rollback.set_value(i); });
  EXPECT_EQ(rollback.get_future().get().status().code(),
            absl::StatusCode::kNotFound);
  std::promise<absl::StatusOr<ModelInfo>> imported;
  b.replicated->ImportModel(
      "x", "not a model",
      [&](absl::StatusOr<ModelInfo> i) { imported.set_value(i); });
  EXPECT_TRUE(IsInvalid(imported.get_future().get().status(), "model: "));

  EXPECT_EQ(log.appended(), appended);
  EXPECT_EQ(a.store->GetModel("m")->version, 1u);
  EXPECT_EQ(b.store->GetModel("m")->version, 1u);
}

TEST(ReplicatedStoreTest, ARetryOnAnyNodeAppliesNothingTwice) {
  InMemorySharedLog log;
  Node a(&log, "a"), b(&log, "b");
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 1));
  const std::vector<Example> examples = RuleExamples(4, 9);
  absl::StatusOr<UpdateResult> first =
      Update(*a.replicated, "m", examples, "u1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(WaitForVersion(*b.store, "m", first->version));
  absl::StatusOr<UpdateResult> retry =
      Update(*b.replicated, "m", examples, "u1");
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->version, first->version);
  EXPECT_EQ(b.store->GetModel("m")->version, first->version);
  // Two retries in flight at once on two nodes: both appended, one applied.
  std::promise<absl::StatusOr<UpdateResult>> pa, pb;
  a.replicated->StartUpdate(
      "m", Views(examples), {}, "u2",
      [&](absl::StatusOr<UpdateResult> r) { pa.set_value(r); });
  b.replicated->StartUpdate(
      "m", Views(examples), {}, "u2",
      [&](absl::StatusOr<UpdateResult> r) { pb.set_value(r); });
  absl::StatusOr<UpdateResult> ra = pa.get_future().get();
  absl::StatusOr<UpdateResult> rb = pb.get_future().get();
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->version, rb->version);
  ASSERT_TRUE(WaitForVersion(*a.store, "m", ra->version));
  ASSERT_TRUE(WaitForVersion(*b.store, "m", ra->version));
  EXPECT_EQ(a.store->GetModel("m")->version, first->version + 1);
  EXPECT_EQ(Bits(*a.store, "m"), Bits(*b.store, "m"));
}

TEST(ReplicatedStoreTest, ANodeThatJoinsLateCatchesUpBeforeItServes) {
  InMemorySharedLog log;
  Node a(&log, "a");
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(Create(*a.replicated, "gone").ok());
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(2, i)).ok());
    ASSERT_TRUE(Update(*a.replicated, "gone", RuleExamples(2, i)).ok());
  }
  // Deleted and created again: the new model starts from version 1, and the
  // old one's updates are not applied to it.
  ASSERT_TRUE(Delete(*a.replicated, "gone").ok());
  absl::StatusOr<ModelInfo> again = Create(*a.replicated, "gone");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, 1u);

  Node late(&log, "late");
  EXPECT_TRUE(WaitForServing(*late.replicated));
  EXPECT_TRUE(late.replicated->ServingStatus().ok());
  EXPECT_EQ(late.store->GetModel("m")->version, 31u);
  EXPECT_EQ(late.store->GetModel("gone")->version, 1u);
  EXPECT_EQ(Bits(*late.store, "m"), Bits(*a.store, "m"));
  EXPECT_EQ(Bits(*late.store, "gone"), Bits(*a.store, "gone"));
}

TEST(ReplicatedStoreTest, EntriesNoNodeWroteArePassedOverByEveryNode) {
  InMemorySharedLog log;
  Node a(&log, "a"), b(&log, "b");
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(2, 1)).ok());  // v2
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 2));
  const std::string stream = log.Streams()[1];
  ASSERT_TRUE(absl::StartsWith(stream, "model:m:"));
  LogEntry elsewhere = *DecodeLogEntry(log.Records(stream)[0].payload);
  elsewhere.model = "other";
  LogEntry create = elsewhere;
  create.kind = LogEntryKind::kCreate;
  create.model = "m";
  log.Append({{stream, "not an entry"},
              {stream, EncodeLogEntry(elsewhere)},
              {stream, EncodeLogEntry(create)},
              {"catalog", log.Records(stream)[0].payload}});
  absl::StatusOr<UpdateResult> r =
      Update(*b.replicated, "m", RuleExamples(2, 2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 3u);
  ASSERT_TRUE(WaitForVersion(*a.store, "m", 3));
  EXPECT_EQ(Bits(*a.store, "m"), Bits(*b.store, "m"));
  EXPECT_EQ(a.store->ListModels().size(), 1u);
  EXPECT_EQ(b.replicated->PositionOf("m")->log_position,
            log.Records(stream).back().id);
}

TEST(ReplicatedStoreTest, AnUnreachableLogRefusesChangesAndKeepsTheModels) {
  InMemorySharedLog log;
  Node a(&log, "a");
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(2, 1)).ok());
  log.SetDown(true);
  absl::StatusOr<UpdateResult> r =
      Update(*a.replicated, "m", RuleExamples(2, 2));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "same update_id"));
  EXPECT_EQ(a.store->GetModel("m")->version, 2u);
  // Reads go on from the last applied state; the lag shows the outage.
  const Example probe = Dense({1, 0, 0, 0});
  const FeaturesView probe_view = probe.features.view();
  EXPECT_TRUE(a.store->Predict("m", {&probe_view, 1}).ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_GT(a.replicated->PositionOf("m")->lag_seconds, 0.1);
  log.SetDown(false);
  r = Update(*a.replicated, "m", RuleExamples(2, 2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 3u);
}

// A log as a node built differently would read it: every update's labels
// flipped (the learner then computes other weights, as a node of another
// build can).
class FlippingLog : public InMemorySharedLog {
 public:
  explicit FlippingLog(InMemorySharedLog* log) : log_(log) {}
  std::vector<absl::StatusOr<std::string>> Append(
      absl::Span<const LogAppend> records) override {
    return log_->Append(records);
  }
  absl::StatusOr<std::vector<StreamRecords>> Read(
      absl::Span<const std::pair<std::string, std::string>> after,
      int32_t max_per_stream, absl::Duration wait) override {
    absl::StatusOr<std::vector<StreamRecords>> read =
        log_->Read(after, max_per_stream, wait);
    if (!read.ok()) return read;
    for (StreamRecords& s : *read) {
      for (LogRecord& r : s.records) {
        absl::StatusOr<LogEntry> entry = DecodeLogEntry(r.payload);
        if (!entry.ok() || entry->kind != LogEntryKind::kUpdate) continue;
        absl::StatusOr<LoggedUpdate> u =
            DecodeUpdateRecord(entry->update_record, s.stream);
        if (!u.ok()) continue;
        for (Example& e : u->examples) e.label = 1 - e.label;
        entry->update_record.clear();
        AppendUpdateRecord(0, u->update_id, u->options, Views(u->examples),
                           &entry->update_record);
        r.payload = EncodeLogEntry(*entry);
      }
    }
    return read;
  }
  absl::StatusOr<StreamHead> Head(absl::string_view stream) override {
    return log_->Head(stream);
  }
  absl::StatusOr<std::string> PutIfAbsent(absl::string_view key,
                                          absl::string_view value,
                                          absl::Duration ttl) override {
    return log_->PutIfAbsent(key, value, ttl);
  }

 private:
  InMemorySharedLog* const log_;
};

TEST(ReplicatedStoreTest, ADivergedNodeIsDetectedAndStopsServing) {
  InMemorySharedLog log;
  Node a(&log, "a", /*digest_every=*/2);
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(2, i)).ok());
  }
  FlippingLog flipped(&log);
  Node b(&flipped, "b", /*digest_every=*/2);
  EXPECT_TRUE(WaitForState(*b.replicated, ReplicatedStore::State::kDiverged));
  const absl::Status status = b.replicated->ServingStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  // The first digest, after the model's second entry.
  const std::string second_entry = log.Records(ReplicatedStore::ModelStream(
      "m", log.Records("catalog")[0].id))[1]
                                       .id;
  EXPECT_TRUE(absl::StrContains(status.message(),
                                absl::StrCat("after log entry ", second_entry)))
      << status;
  EXPECT_EQ(a.replicated->state(), ReplicatedStore::State::kServing)
      << a.replicated->ServingStatus();
  // A node built like A agrees.
  Node c(&log, "c", /*digest_every=*/2);
  ASSERT_TRUE(WaitForServing(*c.replicated));
  EXPECT_EQ(c.replicated->state(), ReplicatedStore::State::kServing);
}

TEST(ReplicatedStoreTest, RollbacksAndAddedClassesReplicate) {
  InMemorySharedLog log;
  Node a(&log, "a"), b(&log, "b");
  ModelSpec softmax;
  softmax.type = ModelType::kSoftmaxRegression;
  softmax.num_features = 4;
  softmax.num_classes = 2;
  ASSERT_TRUE(Create(*a.replicated, "m", softmax).ok());
  ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(3, 1)).ok());  // v2
  ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(3, 2)).ok());  // v3
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 3));
  const auto info_of = [](auto call) {
    std::promise<absl::StatusOr<ModelInfo>> answered;
    call([&](absl::StatusOr<ModelInfo> i) { answered.set_value(i); });
    return answered.get_future().get();
  };
  absl::StatusOr<ModelInfo> rolled =
      info_of([&](auto done) { b.replicated->Rollback("m", 2, done); });
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->version, 4u);
  absl::StatusOr<ModelInfo> grown =
      info_of([&](auto done) { a.replicated->AddClasses("m", 3, done); });
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(grown->version, 5u);
  EXPECT_EQ(grown->spec.num_classes, 3);
  // Fewer classes is refused before it is appended.
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 5));
  const int64_t appended = log.appended();
  absl::StatusOr<ModelInfo> shrunk =
      info_of([&](auto done) { b.replicated->AddClasses("m", 2, done); });
  EXPECT_EQ(log.appended(), appended);
  EXPECT_TRUE(IsInvalid(shrunk.status(), "num_classes")) << shrunk.status();
  ASSERT_TRUE(Update(*b.replicated, "m", RuleExamples(3, 3)).ok());  // v6
  ASSERT_TRUE(WaitForVersion(*a.store, "m", 6));
  EXPECT_EQ(a.store->GetModel("m")->spec.num_classes, 3);
  EXPECT_EQ(Bits(*a.store, "m"), Bits(*b.store, "m"));
}

TEST(ReplicatedStoreTest, APredictionMadeOnOneNodeIsLabeledOnAnotherOnce) {
  InMemorySharedLog log;
  Node a(&log, "a"), b(&log, "b");
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(3, 1)).ok());  // v2
  ASSERT_TRUE(WaitForVersion(*b.store, "m", 2));
  PredictOptions remember;
  remember.remember = true;
  const std::vector<Example> served = RuleExamples(2, 7);
  std::vector<FeaturesView> instances;
  for (const Example& e : served) instances.push_back(e.features.view());
  absl::StatusOr<Predictions> p = a.store->Predict("m", instances, 0, remember);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(a.replicated->SharePredictions("m", p->prediction_ids).ok());
  std::vector<Example> labels(2);
  for (int i = 0; i < 2; ++i) {
    labels[i].prediction_id = p->prediction_ids[i];
    labels[i].label = served[i].label;
  }
  // A failed update gives its ids back.
  log.SetDown(true);
  EXPECT_EQ(Update(*b.replicated, "m", labels).status().code(),
            absl::StatusCode::kUnavailable);
  log.SetDown(false);
  absl::StatusOr<UpdateResult> labeled = Update(*b.replicated, "m", labels);
  ASSERT_TRUE(labeled.ok()) << labeled.status();
  EXPECT_EQ(labeled->examples, 2);
  // Used, on either node.
  absl::StatusOr<UpdateResult> again = Update(*a.replicated, "m", labels);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(
      absl::StartsWith(again.status().message(), "examples[0].prediction_id"))
      << again.status();
  // The same as learning the served features with the served outputs.
  ASSERT_TRUE(WaitForVersion(*a.store, "m", 3));
  EXPECT_EQ(Bits(*a.store, "m"), Bits(*b.store, "m"));
  ModelStore reference;
  ASSERT_TRUE(reference.CreateModel("m", Logistic()).ok());
  ASSERT_TRUE(reference.Update("m", Views(RuleExamples(3, 1)), {}).ok());
  absl::StatusOr<Predictions> same =
      reference.Predict("m", instances, 0, remember);
  ASSERT_TRUE(same.ok());
  std::vector<Example> local(2);
  for (int i = 0; i < 2; ++i) {
    local[i].prediction_id = same->prediction_ids[i];
    local[i].label = served[i].label;
  }
  ASSERT_TRUE(reference.Update("m", Views(local), {}).ok());
  EXPECT_EQ(Bits(reference, "m"), Bits(*a.store, "m"));
}

std::string ModelStreamOf(InMemorySharedLog& log, const std::string& name) {
  for (const std::string& stream : log.Streams()) {
    if (absl::StartsWith(stream, absl::StrCat("model:", name, ":"))) {
      return stream;
    }
  }
  return "";
}

TEST(ReplicatedStoreTest, SnapshotsTrimTheLogAndANewNodeStartsFromOne) {
  InMemorySharedLog log;
  const auto every_10 = [](ReplicationOptions& o) { o.snapshot_every = 10; };
  Node a(&log, "a", 0, every_10);
  ASSERT_TRUE(WaitForServing(*a.replicated));
  ASSERT_TRUE(Create(*a.replicated, "m").ok());
  for (int i = 0; i < 35; ++i) {
    ASSERT_TRUE(Update(*a.replicated, "m", RuleExamples(2, i)).ok());
  }
  const std::string stream = ModelStreamOf(log, "m");
  // Snapshots after entries 10, 20 and 30; the stream is trimmed below the
  // previous one (entry 20).
  const std::vector<LogRecord> kept = log.Records(stream);
  ASSERT_EQ(kept.size(), 16u);
  Node b(&log, "b", 0, every_10);
  ASSERT_TRUE(WaitForServing(*b.replicated));
  EXPECT_EQ(b.store->GetModel("m")->version, 36u);
  EXPECT_EQ(Bits(*b.store, "m"), Bits(*a.store, "m"));
  EXPECT_EQ(b.replicated->PositionOf("m")->log_position, kept.back().id);
  EXPECT_EQ(b.replicated->PositionOf("m")->lag_entries, 0u);
  // Both go on learning alike from there.
  ASSERT_TRUE(Update(*b.replicated, "m", RuleExamples(3, 99)).ok());
  ASSERT_TRUE(WaitForVersion(*a.store, "m", 37));
  EXPECT_EQ(Bits(*b.store, "m"), Bits(*a.store, "m"));

  // A node that cannot load a snapshot finds the gap and stops serving.
  Node c(&log, "c");
  EXPECT_TRUE(WaitForState(*c.replicated, ReplicatedStore::State::kDiverged));
  EXPECT_TRUE(
      absl::StrContains(c.replicated->ServingStatus().message(), "fell behind"))
      << c.replicated->ServingStatus();
}

TEST(ReplicatedStoreTest, ARestartLoadsItsCheckpointAndReplaysTheTail) {
  absl::StatusOr<testing::ScratchDir> dir =
      testing::ScratchDir::Create("lepton-replicated-checkpoints");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string checkpoints = dir->Path("checkpoints");
  ASSERT_TRUE(PosixFileSystem()->CreateDirectories(checkpoints).ok());
  const auto with_checkpoints = [&](ReplicationOptions& o) {
    o.checkpoint_dir = checkpoints;
    o.checkpoint_every = 10;
  };
  InMemorySharedLog log;
  Node writer(&log, "w");
  ASSERT_TRUE(Create(*writer.replicated, "m").ok());
  std::string before_restart;
  {
    Node a(&log, "a", 0, with_checkpoints);
    for (int i = 0; i < 25; ++i) {
      ASSERT_TRUE(Update(*writer.replicated, "m", RuleExamples(2, i)).ok());
    }
    ASSERT_TRUE(WaitForVersion(*a.store, "m", 26));
    before_restart = Bits(*a.store, "m");
  }
  for (int i = 25; i < 30; ++i) {
    ASSERT_TRUE(Update(*writer.replicated, "m", RuleExamples(2, i)).ok());
  }
  // The entries the checkpoint holds (the first 20) are gone from the log:
  // only the checkpoint can stand for them.
  const std::string stream = ModelStreamOf(log, "m");
  ASSERT_TRUE(log.TrimBefore(stream, log.Records(stream)[20].id).ok());
  Node restarted(&log, "a", 0, with_checkpoints);
  ASSERT_TRUE(WaitForServing(*restarted.replicated));
  EXPECT_EQ(restarted.store->GetModel("m")->version, 31u);
  EXPECT_EQ(Bits(*restarted.store, "m"), Bits(*writer.store, "m"));
  EXPECT_NE(before_restart, Bits(*writer.store, "m"));
}

}  // namespace
}  // namespace lepton
