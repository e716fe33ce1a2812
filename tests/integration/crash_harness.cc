#include "tests/integration/crash_harness.h"

#include <dirent.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/storage/model_state.h"
#include "gtest/gtest.h"
#include "server/convert.h"

namespace lepton::testing {

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  uint64_t parsed = 0;
  if (value != nullptr && absl::SimpleAtoi(value, &parsed)) return parsed;
  return fallback;
}

uint64_t BaseSeed() {
  static const uint64_t seed = [] {
    const uint64_t s = EnvU64("LEPTON_CRASH_SEED", std::random_device{}());
    std::fprintf(stderr,
                 "crash test: base seed %llu (rerun with "
                 "LEPTON_CRASH_SEED=%llu)\n",
                 static_cast<unsigned long long>(s),
                 static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

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

Conn::Conn(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  stub_ = v1::ModelService::NewStub(grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args));
}

template <typename Response, typename Fn>
absl::StatusOr<Response> Conn::Call(Fn fn) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  Response response;
  const grpc::Status status = fn(&context, &response);
  if (!status.ok()) return client::FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelInfo> Conn::Create(const std::string& name,
                                           const v1::ModelSpec& spec) {
  v1::CreateModelRequest request;
  request.set_name(name);
  *request.mutable_spec() = spec;
  return Call<v1::ModelInfo>(
      [&](auto* c, auto* r) { return stub_->CreateModel(c, request, r); });
}

absl::StatusOr<v1::ModelInfo> Conn::Get(const std::string& name) {
  v1::GetModelRequest request;
  request.set_name(name);
  return Call<v1::ModelInfo>(
      [&](auto* c, auto* r) { return stub_->GetModel(c, request, r); });
}

absl::StatusOr<v1::UpdateResponse> Conn::Update(
    const v1::UpdateRequest& request) {
  return Call<v1::UpdateResponse>(
      [&](auto* c, auto* r) { return stub_->Update(c, request, r); });
}

absl::StatusOr<v1::PredictResponse> Conn::Predict(
    const std::string& name, const std::vector<v1::Features>& instances,
    uint64_t version) {
  v1::PredictRequest request;
  request.set_model(name);
  request.set_version(version);
  for (const v1::Features& f : instances) *request.add_instances() = f;
  return Call<v1::PredictResponse>(
      [&](auto* c, auto* r) { return stub_->Predict(c, request, r); });
}

absl::StatusOr<v1::ModelInfo> Conn::Rollback(const std::string& name,
                                             uint64_t version) {
  v1::RollbackRequest request;
  request.set_name(name);
  request.set_version(version);
  return Call<v1::ModelInfo>(
      [&](auto* c, auto* r) { return stub_->Rollback(c, request, r); });
}

absl::StatusOr<v1::ExportModelResponse> Conn::Export(const std::string& name,
                                                     uint64_t version) {
  v1::ExportModelRequest request;
  request.set_name(name);
  request.set_version(version);
  return Call<v1::ExportModelResponse>(
      [&](auto* c, auto* r) { return stub_->ExportModel(c, request, r); });
}

absl::StatusOr<v1::ModelInfo> Conn::Import(const std::string& name,
                                           const std::string& blob) {
  v1::ImportModelRequest request;
  request.set_name(name);
  request.set_model(blob);
  return Call<v1::ModelInfo>(
      [&](auto* c, auto* r) { return stub_->ImportModel(c, request, r); });
}

absl::Status Conn::Delete(const std::string& name) {
  v1::DeleteModelRequest request;
  request.set_name(name);
  return Call<v1::DeleteModelResponse>([&](auto* c, auto* r) {
           return stub_->DeleteModel(c, request, r);
         })
      .status();
}

absl::StatusOr<v1::ListModelsResponse> Conn::List() {
  v1::ListModelsRequest request;
  return Call<v1::ListModelsResponse>(
      [&](auto* c, auto* r) { return stub_->ListModels(c, request, r); });
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

namespace {

StoreOptions MemoryOnly(int32_t retained_versions) {
  StoreOptions options;  // data_dir empty: memory only
  options.retained_versions = retained_versions;
  return options;
}

}  // namespace

Reference::Reference(int32_t retained_versions)
    : store_(MemoryOnly(retained_versions)) {}

void Reference::Create(const v1::ModelInfo& created) {
  absl::StatusOr<ModelSpec> spec = server::SpecFromProto(created.spec());
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<ModelInfo> info = store_.CreateModel(created.name(), *spec);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->version, created.version());
}

uint64_t Reference::Version(const std::string& name) const {
  absl::StatusOr<ModelInfo> info = store_.GetModel(name);
  return info.ok() ? info->version : 0;
}

std::optional<UpdateResult> Reference::Apply(
    const v1::UpdateRequest& request, const v1::UpdateResponse* expected) {
  // The server's own reading of the request (ModelService::ApplyUpdate),
  // without the update id: the reference applies each update once.
  server::NamedFeatureViews named;
  const std::vector<ExampleView> examples = server::ExamplesOf(request, &named);
  absl::StatusOr<UpdateResult> result = store_.Update(
      request.model(), examples, server::UpdateOptionsOf(request));
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return std::nullopt;
  if (expected != nullptr) ExpectSameResult(*expected, *result);
  return *result;
}

void Reference::ExpectSameResult(const v1::UpdateResponse& server,
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

int64_t FirstDifference(const float* a, const float* b, size_t n) {
  if (std::memcmp(a, b, n * sizeof(float)) == 0) return -1;
  for (size_t i = 0; i < n; ++i) {
    if (!SameBits(a[i], b[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

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
  server::NamedFeatureViews named;
  std::vector<FeaturesView> views;
  for (const v1::Features& f : probes) {
    views.push_back(server::FeaturesOf(f, &named));
  }
  const Predictions p = want.Predict(views);
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

namespace {

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
}  // namespace

Workload::Workload(uint64_t seed, std::vector<Shape> shapes,
                   std::string id_prefix)
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

uint32_t Workload::HotIndex(const Shape& s, int i) {
  return static_cast<uint32_t>((uint64_t{2654435761u} * (i + 1)) %
                               static_cast<uint64_t>(s.num_features));
}

v1::UpdateRequest Workload::Next() {
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

namespace {

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
}  // namespace

Harness::Harness(const std::string& data_dir, std::vector<std::string> flags)
    : data_dir_(data_dir), flags_(std::move(flags)) {
  flags_.insert(flags_.begin(), absl::StrCat("--data_dir=", data_dir));
}
void Harness::Start() {
  absl::Status s = server_.Start(flags_);
  ASSERT_TRUE(s.ok()) << s;
  conn_ = std::make_unique<Conn>(server_.target());
}

void Harness::Create(const Shape& shape, v1::ModelSpec spec) {
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

void Harness::ExpectInStep() {
  for (size_t i = 0; i < shapes_.size(); ++i) {
    ExpectSameModel(*conn_, shapes_[i].name, ref_, shapes_[i].name, 0,
                    probes_[i]);
  }
}

void Harness::KillRound(Workload& workload, const RoundHooks& hooks,
                        RoundStats* stats) {
  std::vector<Sent> sent;
  std::atomic<bool> stop{false};
  std::thread sender([&] { SendUntilFailure(*conn_, workload, stop, &sent); });
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
    ASSERT_TRUE(info.ok()) << "model " << shape.name
                           << " after the restart: " << info.status();
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

}  // namespace lepton::testing
