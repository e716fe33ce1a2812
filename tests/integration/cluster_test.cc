// Cluster mode end to end: real lepton_server nodes (--cluster) sharing a
// redis-server the test starts on a free loopback port with a directory of
// its own (AOF, appendfsync always), killed and restarted; every node's
// predictions checked bit for bit against each other and against the core
// fed the log's entries in log order.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "core/replication/log_entry.h"
#include "core/replication/replicated_store.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_store.h"
#include "core/util/file_system.h"
#include "gtest/gtest.h"
#include "server/cluster/redis_client.h"
#include "tests/testing/binaries.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/redis_test.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/server_process.h"

namespace lepton {
namespace {

using ::lepton::client::Client;
using ::lepton::client::ClientOptions;
using ::lepton::server::RedisClient;
using ::lepton::server::StreamEntry;
using ::lepton::testing::RedisServer;
using ::lepton::testing::ScratchDir;
using ::lepton::testing::ServerProcess;

constexpr int kFeatures = 64;
constexpr char kCluster[] = "t";

v1::ModelSpec Spec() {
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(kFeatures);
  return spec;
}

// A sparse instance of 5 distinct features drawn from `rng`.
void RandomFeatures(std::mt19937_64& rng, v1::Features* f) {
  std::uniform_int_distribution<uint32_t> offset(0, kFeatures / 5 - 1);
  std::normal_distribution<float> value;
  for (uint32_t j = 0; j < 5; ++j) {
    f->add_indices(j * (kFeatures / 5) + offset(rng));
    f->add_values(value(rng));
  }
}

v1::UpdateRequest RandomUpdate(uint64_t seed, const std::string& update_id) {
  std::mt19937_64 rng(seed);
  v1::UpdateRequest request;
  request.set_model("m");
  request.set_update_id(update_id);
  v1::Example* e = request.add_examples();
  RandomFeatures(rng, e->mutable_features());
  e->set_label(static_cast<float>(rng() % 2));
  return request;
}

v1::PredictRequest Probes() {
  std::mt19937_64 rng(4242);
  v1::PredictRequest request;
  request.set_model("m");
  for (int i = 0; i < 100; ++i) RandomFeatures(rng, request.add_instances());
  return request;
}

// The probes' scores, bit for bit, and the version that gave them.
std::string ScoreBits(const v1::PredictResponse& r) {
  std::string bits = absl::StrCat(r.version(), ":");
  for (const v1::Prediction& p : r.predictions()) {
    const float v = p.value();
    bits.append(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  return bits;
}

class ClusterTest : public ::lepton::testing::RedisTest {
 protected:
  std::string ClusterFlag() const {
    return absl::StrCat("--cluster=redis://127.0.0.1:", redis_->port(), "/",
                        kCluster);
  }

  // Starts a node and waits until it serves (has caught up with the log);
  // its index.
  // `snapshot_every` 0: the log keeps every entry (for ReplayedScoreBits).
  int StartNode(int snapshot_every = 0) {
    nodes_.push_back(std::make_unique<ServerProcess>(testing::kServerPath));
    const int node = static_cast<int>(nodes_.size()) - 1;
    snapshot_every_.push_back(snapshot_every);
    StartAgain(node);
    return node;
  }
  // Each node keeps its checkpoints in a data directory of its own
  // (ServerProcess's), kept across restarts.
  void StartAgain(int node) {
    absl::Status s =
        nodes_[node]->Start({ClusterFlag(), "--cluster_digest_every=50",
                             absl::StrCat("--cluster_snapshot_every_updates=",
                                          snapshot_every_[node]),
                             "--checkpoint_every_updates=40"});
    ASSERT_TRUE(s.ok()) << s;
    std::unique_ptr<Client> client = ClientOf(node);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> h =
          client->Health();
      if (h.ok() && *h == grpc::health::v1::HealthCheckResponse::SERVING) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    FAIL() << "node " << node << " never became SERVING";
  }

  std::unique_ptr<Client> ClientOf(int node) {
    ClientOptions options;
    options.deadline = absl::Seconds(10);
    return std::make_unique<Client>(nodes_[node]->target(), options);
  }

  // A client spreading its calls over every node (round_robin).
  std::unique_ptr<Client> RoundRobinClient() {
    std::vector<std::string> addresses;
    for (const auto& n : nodes_) addresses.push_back(n->target());
    ClientOptions options;
    options.deadline = absl::Seconds(10);
    return std::make_unique<Client>(
        absl::StrCat("ipv4:", absl::StrJoin(addresses, ",")), options);
  }

  // Waits until node `node` serves model m at `version` or later.
  absl::StatusOr<v1::ModelInfo> WaitForVersion(int node, uint64_t version) {
    std::unique_ptr<Client> client = ClientOf(node);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    absl::StatusOr<v1::ModelInfo> info;
    while (absl::Now() < deadline) {
      info = client->GetModel("m");
      if (info.ok() && info->version() >= version) return info;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return info.ok() ? absl::DeadlineExceededError(absl::StrCat(
                           "version ", info->version(), " < ", version))
                     : info.status();
  }

  std::unique_ptr<RedisClient> Redis() {
    RedisClient::Options o;
    o.port = redis_->port();
    absl::StatusOr<std::unique_ptr<RedisClient>> c = RedisClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // Every entry of model m's stream, in log order.
  std::vector<StreamEntry> ModelEntries() {
    std::unique_ptr<RedisClient> redis = Redis();
    absl::StatusOr<std::vector<StreamEntry>> catalog =
        redis->XRange(absl::StrCat(kCluster, ":catalog"), "0-0", 1000);
    EXPECT_TRUE(catalog.ok() && !catalog->empty());
    if (!catalog.ok() || catalog->empty()) return {};
    const std::string stream = absl::StrCat(
        kCluster, ":", ReplicatedStore::ModelStream("m", catalog->back().id));
    std::vector<StreamEntry> all;
    std::string after = "0-0";
    while (true) {
      absl::StatusOr<std::vector<StreamEntry>> part =
          redis->XRange(stream, after, 1000);
      EXPECT_TRUE(part.ok()) << part.status();
      if (!part.ok() || part->empty()) return all;
      after = part->back().id;
      all.insert(all.end(), part->begin(), part->end());
    }
  }

  // The probes' scores from the core, fed model m's log in log order.
  std::string ReplayedScoreBits() {
    ModelStore store;
    ModelSpec spec;
    spec.type = ModelType::kLogisticRegression;
    spec.num_features = kFeatures;
    EXPECT_TRUE(store.CreateModel("m", spec).ok());
    for (const StreamEntry& e : ModelEntries()) {
      absl::StatusOr<LogEntry> entry = DecodeLogEntry(e.fields[0].second);
      EXPECT_TRUE(entry.ok()) << entry.status();
      absl::StatusOr<LoggedUpdate> u =
          DecodeUpdateRecord(entry->update_record, e.id);
      EXPECT_TRUE(u.ok()) << u.status();
      std::vector<ExampleView> views;
      for (const Example& x : u->examples) views.push_back(x.view());
      store.Update("m", views, u->options, u->update_id).IgnoreError();
    }
    std::vector<Example> probes;
    const v1::PredictRequest request = Probes();
    for (const v1::Features& f : request.instances()) {
      Example& x = probes.emplace_back();
      x.features.indices.assign(f.indices().begin(), f.indices().end());
      x.features.values.assign(f.values().begin(), f.values().end());
    }
    std::vector<FeaturesView> views;
    for (const Example& x : probes) views.push_back(x.features.view());
    absl::StatusOr<Predictions> p = store.Predict("m", views);
    EXPECT_TRUE(p.ok()) << p.status();
    std::string bits = absl::StrCat(p->version, ":");
    for (size_t i = 0; i < p->size(); ++i) {
      const float v = p->value(i);
      bits.append(reinterpret_cast<const char*>(&v), sizeof(v));
    }
    return bits;
  }

  // Creates model m through node 0 and waits until every node has it.
  ::testing::AssertionResult Create() {
    absl::StatusOr<v1::ModelInfo> created =
        ClientOf(0)->CreateModel("m", Spec());
    if (!created.ok()) return ::testing::AssertionFailure() << created.status();
    for (int n = 1; n < static_cast<int>(nodes_.size()); ++n) {
      absl::StatusOr<v1::ModelInfo> info = WaitForVersion(n, 1);
      if (!info.ok()) return ::testing::AssertionFailure() << info.status();
    }
    return ::testing::AssertionSuccess();
  }

  std::string NodeScoreBits(int node) {
    absl::StatusOr<v1::PredictResponse> r = ClientOf(node)->Predict(Probes());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? ScoreBits(*r) : r.status().ToString();
  }

  std::vector<std::unique_ptr<ServerProcess>> nodes_;
  std::vector<int> snapshot_every_;
};

TEST_F(ClusterTest, ConcurrentClientsOverThreeNodesLeaveThemBitIdentical) {
  for (int i = 0; i < 3; ++i) StartNode();
  ASSERT_TRUE(Create());
  constexpr int kClients = 4;
  constexpr int kUpdatesEach = 500;
  std::vector<std::thread> clients;
  std::atomic<int> acknowledged{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::unique_ptr<Client> client = RoundRobinClient();
      for (int i = 0; i < kUpdatesEach; ++i) {
        absl::StatusOr<v1::UpdateResponse> r = client->Update(
            RandomUpdate(c * 100000 + i, absl::StrCat("c", c, "-", i)));
        EXPECT_TRUE(r.ok()) << r.status();
        if (r.ok()) ++acknowledged;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  ASSERT_EQ(acknowledged.load(), kClients * kUpdatesEach);
  const uint64_t newest = 1 + kClients * kUpdatesEach;
  for (int n = 0; n < 3; ++n) {
    absl::StatusOr<v1::ModelInfo> info = WaitForVersion(n, newest);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->version(), newest);
    EXPECT_FALSE(info->log_position().empty());
    EXPECT_EQ(info->lag_entries(), 0u);
  }
  // Every node's calls reached: round_robin spread them.
  const std::string bits = NodeScoreBits(0);
  EXPECT_EQ(bits.substr(0, bits.find(':')), absl::StrCat(newest));
  EXPECT_EQ(NodeScoreBits(1), bits);
  EXPECT_EQ(NodeScoreBits(2), bits);
  EXPECT_EQ(ReplayedScoreBits(), bits);
  // Each node's weights were also checked against the others' (digests
  // every 50 entries): all still serve.
  for (int n = 0; n < 3; ++n) {
    absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> h =
        ClientOf(n)->Health();
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(*h, grpc::health::v1::HealthCheckResponse::SERVING);
  }
  // A node stops cleanly on SIGTERM.
  absl::StatusOr<int> exit_status = nodes_[2]->Terminate(absl::Seconds(30));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
}

TEST_F(ClusterTest, AKilledNodeCatchesUpWhenItComesBack) {
  for (int i = 0; i < 3; ++i) StartNode();
  ASSERT_TRUE(Create());
  std::unique_ptr<Client> a = ClientOf(0), b = ClientOf(1);
  for (int i = 0; i < 300; ++i) {
    if (i == 100) nodes_[2]->Kill();  // kill -9 in the middle of the stream
    if (i == 200) StartAgain(2);
    Client& client = i % 2 == 0 ? *a : *b;
    absl::StatusOr<v1::UpdateResponse> r =
        client.Update(RandomUpdate(i, absl::StrCat("u", i)));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Restarted, it loaded its checkpoint (of entry 80) and replayed the rest.
  absl::StatusOr<std::vector<std::string>> checkpoints =
      PosixFileSystem()->ListDirectory(
          JoinPath(nodes_[2]->data_dir(), absl::StrCat("cluster-", kCluster)));
  ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
  EXPECT_EQ(checkpoints->size(), 1u);
  // Node 0 applies the last update (sent to node 1) from the log, too.
  for (int n : {0, 2}) {
    absl::StatusOr<v1::ModelInfo> info = WaitForVersion(n, 301);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->version(), 301u);
  }
  const std::string bits = NodeScoreBits(0);
  EXPECT_EQ(NodeScoreBits(2), bits);
  EXPECT_EQ(ReplayedScoreBits(), bits);
}

TEST_F(ClusterTest, ReadYourWritesOnAnotherNodeWithMinVersion) {
  for (int i = 0; i < 2; ++i) StartNode();
  ASSERT_TRUE(Create());
  std::unique_ptr<Client> a = ClientOf(0), b = ClientOf(1);
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<v1::UpdateResponse> written = a->Update(RandomUpdate(i, ""));
    ASSERT_TRUE(written.ok()) << written.status();
    v1::PredictRequest read = Probes();
    read.set_min_version(written->version());
    absl::StatusOr<v1::PredictResponse> r = b->Predict(read);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_GE(r->version(), written->version());
  }
  // A version the log does not hold: the wait ends at the deadline.
  ClientOptions shortly;
  shortly.deadline = absl::Milliseconds(300);
  Client impatient(nodes_[1]->target(), shortly);
  v1::PredictRequest future = Probes();
  future.set_min_version(1000);
  EXPECT_EQ(impatient.Predict(future).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  // A model this node has not seen created is waited for the same way.
  future.set_model("never");
  future.set_min_version(1);
  EXPECT_EQ(impatient.Predict(future).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClusterTest, APredictionMadeOnOneNodeIsLabeledThroughAnother) {
  for (int i = 0; i < 2; ++i) StartNode();
  ASSERT_TRUE(Create());
  v1::PredictRequest asked = Probes();
  asked.set_return_prediction_ids(true);
  absl::StatusOr<v1::PredictResponse> served = ClientOf(0)->Predict(asked);
  ASSERT_TRUE(served.ok()) << served.status();
  v1::UpdateRequest labels;
  labels.set_model("m");
  for (int i = 0; i < 3; ++i) {
    v1::Example* e = labels.add_examples();
    e->set_prediction_id(served->predictions(i).prediction_id());
    e->set_label(1);
  }
  absl::StatusOr<v1::UpdateResponse> learned = ClientOf(1)->Update(labels);
  ASSERT_TRUE(learned.ok()) << learned.status();
  EXPECT_EQ(learned->examples(), 3);
  // Each label once, whichever node it is sent to.
  for (int n = 0; n < 2; ++n) {
    absl::StatusOr<v1::UpdateResponse> again = ClientOf(n)->Update(labels);
    EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound)
        << again.status();
  }
  ASSERT_TRUE(WaitForVersion(0, 2).ok());
  EXPECT_EQ(NodeScoreBits(0), NodeScoreBits(1));
}

TEST_F(ClusterTest, ABadUpdateToAnyNodeIsRefusedBeforeItIsAppended) {
  for (int i = 0; i < 2; ++i) StartNode();
  ASSERT_TRUE(Create());
  ASSERT_TRUE(ClientOf(1)->Update(RandomUpdate(1, "")).ok());
  ASSERT_TRUE(WaitForVersion(0, 2).ok());
  const size_t entries = ModelEntries().size();
  for (int n = 0; n < 2; ++n) {
    v1::UpdateRequest bad = RandomUpdate(2, "");
    bad.mutable_examples(0)->mutable_features()->set_indices(0, kFeatures + 7);
    absl::StatusOr<v1::UpdateResponse> r = ClientOf(n)->Update(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << r.status();
    EXPECT_TRUE(absl::StartsWith(r.status().message(), "examples[0].features"))
        << r.status();
  }
  EXPECT_EQ(ModelEntries().size(), entries);
  for (int n = 0; n < 2; ++n) {
    absl::StatusOr<v1::ModelInfo> info = ClientOf(n)->GetModel("m");
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->version(), 2u);
  }
}

TEST_F(ClusterTest, WhileRedisIsDownUpdatesFailAndPredictionsGoOn) {
  for (int i = 0; i < 2; ++i) StartNode();
  ASSERT_TRUE(Create());
  std::unique_ptr<Client> a = ClientOf(0), b = ClientOf(1);
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 60; ++i) {
    if (i == 20) redis_->Kill();  // kill -9 in the middle of the stream
    if (i == 40) {
      ASSERT_TRUE(redis_->Restart().ok());
    }
    const std::string id = absl::StrCat("u", i);
    absl::StatusOr<v1::UpdateResponse> r =
        (i % 2 == 0 ? a : b)->Update(RandomUpdate(i, id));
    if (i >= 20 && i < 40) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable)
          << r.status();
      // Reads go on from the last state applied.
      EXPECT_TRUE((i % 2 == 0 ? b : a)->Predict(Probes()).ok());
    }
    if (r.ok()) acknowledged.push_back(id);
  }
  // The first update after the restart may fail while the nodes reconnect;
  // everything acknowledged is in the log, and applied by both.
  std::unique_ptr<RedisClient> redis = Redis();
  std::vector<StreamEntry> entries = ModelEntries();
  std::vector<std::string> logged;
  for (const StreamEntry& e : entries) {
    absl::StatusOr<LogEntry> entry = DecodeLogEntry(e.fields[0].second);
    ASSERT_TRUE(entry.ok());
    logged.push_back(DecodeUpdateRecord(entry->update_record, e.id)->update_id);
  }
  for (const std::string& id : acknowledged) {
    EXPECT_NE(std::find(logged.begin(), logged.end(), id), logged.end()) << id;
  }
  EXPECT_GE(acknowledged.size(), 38u);
  absl::StatusOr<v1::ModelInfo> info0 = WaitForVersion(0, 1 + logged.size());
  absl::StatusOr<v1::ModelInfo> info1 = WaitForVersion(1, 1 + logged.size());
  ASSERT_TRUE(info0.ok() && info1.ok());
  EXPECT_EQ(NodeScoreBits(0), NodeScoreBits(1));
  EXPECT_EQ(ReplayedScoreBits(), NodeScoreBits(0));
}

TEST_F(ClusterTest, ANewNodeJoinsFromASnapshotAfterTheLogWasTrimmed) {
  for (int i = 0; i < 3; ++i) StartNode(/*snapshot_every=*/100);
  ASSERT_TRUE(Create());
  std::unique_ptr<Client> client = RoundRobinClient();
  for (int i = 0; i < 350; ++i) {
    ASSERT_TRUE(client->Update(RandomUpdate(i, "")).ok());
  }
  // Snapshots after entries 100, 200 and 300; the log keeps the entries
  // from the one before the newest on.
  const std::vector<StreamEntry> kept = ModelEntries();
  EXPECT_EQ(kept.size(), 151u);
  // A fourth node with an empty data directory.
  const int late = StartNode(/*snapshot_every=*/100);
  // Its first answer already has everything the log held when it started.
  absl::StatusOr<v1::ModelInfo> info = WaitForVersion(late, 1);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), 351u);
  EXPECT_EQ(info->log_position(), kept.back().id);
  EXPECT_EQ(NodeScoreBits(late), NodeScoreBits(0));
  // And it learns on alike.
  ASSERT_TRUE(ClientOf(late)->Update(RandomUpdate(1000, "")).ok());
  ASSERT_TRUE(WaitForVersion(0, 352).ok());
  EXPECT_EQ(NodeScoreBits(late), NodeScoreBits(0));
}

}  // namespace
}  // namespace lepton
