// The crash harness: the real lepton_server killed (-9) and restarted on
// data directories it keeps, checked against the core in-process. The
// durability promise it checks is that once Update has answered
// (--fsync=always), the update survives a kill -9 and a restart, and the
// model comes back bit-identical.
//
//   TestScratchDir dir("lepton-crash-test");
//   Harness h(dir.path(), {"--fsync=always"});
//   ASSERT_NO_FATAL_FAILURE(h.Start());
//   ASSERT_NO_FATAL_FAILURE(h.Create({"lr", v1::LOGISTIC_REGRESSION, 20, 0},
//                                    v1::ModelSpec{}));
//   Workload workload(seed, h.shapes(), "r0");
//   RoundHooks hooks;
//   hooks.wait_for_kill = [] { absl::SleepFor(absl::Milliseconds(50)); };
//   RoundStats stats;
//   h.KillRound(workload, hooks, &stats);  // updates, kill, restart, compare
//
// The reference for "bit-identical" is a memory-only lepton::ModelStore with
// the same spec, fed exactly the updates the recovered model holds; requests
// reach it through the server's own conversions (server/convert.h), so that
// it learns from what the server's core learns from. The server's
// predictions on fixed probes, its exported weights and optimizer state, and
// its counters are compared with the reference's bit for bit
// (ExpectSameModel).
//
// Seeds: BaseSeed() is LEPTON_CRASH_SEED or random (printed); a test derives
// its rounds' seeds from it, so a failure is reproduced by setting it.
// Workloads draw from Rng (splitmix64), the same stream on every platform.
//
// Thread safety: Conn may be used by two threads at once (a sender and the
// test); everything else belongs to the test's thread.
#ifndef LEPTON_TESTS_INTEGRATION_CRASH_HARNESS_H_
#define LEPTON_TESTS_INTEGRATION_CRASH_HARNESS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/store/model_store.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {

// ---------------------------------------------------------------------------
// Seeds and randomness.

// The unsigned integer in environment variable `name`, or `fallback`.
uint64_t EnvU64(const char* name, uint64_t fallback);

// The base seed of every test in this process: LEPTON_CRASH_SEED or random.
uint64_t BaseSeed();

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

// Names in `dir`, sorted (readdir, so that files vanishing meanwhile are no
// error).
std::vector<std::string> ListDir(const std::string& dir);
// The names in `dir` ending in ".tmp": checkpoints being written.
std::vector<std::string> TmpFiles(const std::string& dir);
std::string ModelDir(const std::string& data_dir, const std::string& model);
// "3 ckpt, 2 wal, 1 tmp".
std::string DescribeFiles(const std::string& dir);

// ---------------------------------------------------------------------------
// The server over its generated stubs (Rollback, ExportModel and ImportModel
// are not in the client library). Each call has a deadline of 30 s.
// stub() is for the calls Conn has no method for (StreamUpdate).

class Conn {
 public:
  explicit Conn(const std::string& target);

  absl::StatusOr<v1::ModelInfo> Create(const std::string& name,
                                       const v1::ModelSpec& spec);
  absl::StatusOr<v1::ModelInfo> Get(const std::string& name);
  absl::StatusOr<v1::UpdateResponse> Update(const v1::UpdateRequest& request);
  absl::StatusOr<v1::PredictResponse> Predict(
      const std::string& name, const std::vector<v1::Features>& instances,
      uint64_t version = 0);
  absl::StatusOr<v1::ModelInfo> Rollback(const std::string& name,
                                         uint64_t version);
  absl::StatusOr<v1::ExportModelResponse> Export(const std::string& name,
                                                 uint64_t version = 0);
  absl::StatusOr<v1::ModelInfo> Import(const std::string& name,
                                       const std::string& blob);
  absl::Status Delete(const std::string& name);
  absl::StatusOr<v1::ListModelsResponse> List();

  v1::ModelService::Stub& stub() { return *stub_; }

 private:
  template <typename Response, typename Fn>
  absl::StatusOr<Response> Call(Fn fn);

  std::unique_ptr<v1::ModelService::Stub> stub_;
};

// ---------------------------------------------------------------------------
// The reference: the core in-process, memory only.

bool SameBits(double a, double b);
bool SameBits(float a, float b);

class Reference {
 public:
  explicit Reference(int32_t retained_versions = 8);

  // The model the server created (its answer to CreateModel, every default
  // of the spec filled in), created here too.
  void Create(const v1::ModelInfo& created);
  // The newest version of `name`; 0 if there is no such model.
  uint64_t Version(const std::string& name) const;

  // Applies `request`; with `expected` (the server's answer to it), checks
  // that the reference answers the same, bit for bit.
  std::optional<UpdateResult> Apply(const v1::UpdateRequest& request,
                                    const v1::UpdateResponse* expected);

  static void ExpectSameResult(const v1::UpdateResponse& server,
                               const UpdateResult& ref);

  ModelStore& store() { return store_; }

 private:
  ModelStore store_;
};

// The first index where two float arrays differ in bits, or -1.
int64_t FirstDifference(const float* a, const float* b, size_t n);

// The server's model `server_name` (its newest version) against the
// reference's `ref_name` at `ref_version` (0: its newest): version, counters,
// predictions on `probes`, and the whole exported state, bit for bit.
void ExpectSameModel(Conn& conn, const std::string& server_name, Reference& ref,
                     const std::string& ref_name, uint64_t ref_version,
                     const std::vector<v1::Features>& probes);

// ---------------------------------------------------------------------------
// Workloads.

struct Shape {
  std::string name;
  v1::ModelType type;
  int64_t num_features;
  int32_t num_classes;  // softmax only
};

// Seeded Update requests over some models: batches of 1..8 examples, dense
// and sparse mixed (dense only for small D), occasional importance weights,
// epochs = 2 and learning-rate overrides. Every request carries an
// update_id, so an unanswered one can be retried after the restart.
class Workload {
 public:
  Workload(uint64_t seed, std::vector<Shape> shapes, std::string id_prefix);

  // The fixed probe features of `shape`: index i of its hot set.
  static uint32_t HotIndex(const Shape& s, int i);

  v1::UpdateRequest Next();

 private:
  Rng rng_;
  std::vector<Shape> shapes_;
  std::vector<std::vector<uint32_t>> hot_;
  std::string prefix_;
  int64_t count_ = 0;
};

// Fixed probes: dense, sparse over the hot indices and random ones, empty.
std::vector<v1::Features> Probes(const Shape& s);

// ---------------------------------------------------------------------------
// Kill rounds.

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
  Harness(const std::string& data_dir, std::vector<std::string> flags);

  // Starts (or restarts) the server; a fatal failure if it does not serve.
  void Start();
  // Creates `shape` with `spec` on the server and in the reference.
  void Create(const Shape& shape, v1::ModelSpec spec);
  // Every model of the server against the reference (ExpectSameModel).
  void ExpectInStep();

  // Updates from one thread; SIGKILL when hooks.wait_for_kill returns;
  // restart on the same directory; the recovered models must hold every
  // acknowledged update (and the one unanswered request, or not), bit for
  // bit. Then the unanswered request is retried under its update_id, so
  // the models hold every request sent exactly once.
  void KillRound(Workload& workload, const RoundHooks& hooks,
                 RoundStats* stats);

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

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_INTEGRATION_CRASH_HARNESS_H_
