// ModelService: the lepton.v1.ModelService RPCs, served with gRPC's async
// API from the server's polling thread (rpc/call_poller.h) over a core
// ModelStore.
//
// Each RPC checks what only the wire can get wrong (batch size against
// --max_batch, enum values), converts the request (convert.h; named
// features are hashed there with the model's spec, looked up first) and calls
// the store; the store's absl::Status becomes the RPC's status in one place
// (status_mapping.h). Small RPCs run on the polling thread and finish
// before returning. The rest go to worker pools of their own
// (worker_pool.h): the learning of Update and StreamUpdate, and the calls
// that create, delete, change or copy a whole model (CreateModel,
// DeleteModel, Rollback, AddClasses, ExportModel, ImportModel), to the
// update workers, which apply each and answer its call (a cluster node's
// CreateModel and DeleteModel only queue a change); a Predict of more
// than kInlinePredictInstances instances to the prediction workers. So a
// small Predict never waits on the polling thread behind an update.
//
// StreamUpdate applies one request at a time, in order (see
// stream_update_reactor.h). Once BeginShutdown() is called, open streams end
// with UNAVAILABLE after the request in progress, or at once if they are
// waiting for one, and open WatchModel calls (watch_model_reactor.h) end with
// UNAVAILABLE after the event being written, so that a graceful shutdown
// waits neither for clients that keep streaming nor for idle ones or
// watchers.
//
// From BeginShutdown() on, a new call ends at once with UNAVAILABLE (the
// server is draining: clients retry elsewhere); WaitForUpdates() waits for
// the accepted updates to be applied. Once the grpc::Server's Shutdown()
// returned (every call has ended), DrainUpdates() runs what is still queued
// and joins the workers; the destructor does it too.
//
// Access control: with an AccessControl (access_control.h), every RPC first
// checks the caller's bearer token and role, before any other work (after
// the draining check), and a
// refused call ends with UNAUTHENTICATED or PERMISSION_DENIED having done
// nothing.
//
// Ownership and thread safety: the service borrows the store (and the
// AccessControl, if any), which must
// outlive it (and the grpc::Server it is registered with), and owns the
// update workers, which therefore outlive every call that may submit to
// them. Every method may be called concurrently; its own state is the
// draining flag and the set of open streams, guarded by streams_mu_, and the
// executor (thread-safe itself).
#ifndef LEPTON_SERVER_MODEL_SERVICE_H_
#define LEPTON_SERVER_MODEL_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/replication/replicated_store.h"
#include "core/store/model_store.h"
#include "core/util/mutex.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "server/access_control.h"
#include "server/log_events.h"
#include "server/rpc/async_calls.h"
#include "server/worker_pool.h"

namespace lepton::server {

class StreamUpdateReactor;
class WatchModelReactor;
class MinVersionWait;

struct ServiceOptions {
  // Most instances in one Predict, or examples in one Update request;
  // RESOURCE_EXHAUSTED above it.
  int32_t max_batch = 16384;
  // The largest response (the server's --max_message_bytes): a Predict
  // whose outputs could not fit is refused before it is computed
  // (PredictOptions::max_output_bytes).
  int32_t max_message_bytes = 64 << 20;
  // Worker threads that apply Update and StreamUpdate requests: updates to
  // one model are serialized by the core anyway, but more than one lets
  // updates to different models use several cores.
  int32_t update_threads = 2;
  // How much nicer (0 to 19) those workers are than the process. 0 by
  // default: a higher value slows updates without making predictions
  // faster (docs/benchmarks.md).
  int32_t update_nice = 0;
  // Worker threads that compute the Predict calls of more than
  // kInlinePredictInstances instances, so that the polling thread serves
  // other calls meanwhile and batches use more than one core.
  int32_t predict_threads = 2;
};

class ModelService final {
 public:
  // A Predict (or ModelInfer) of at most this many instances is computed on
  // the polling thread; a larger one on a prediction worker (one more
  // thread hop).
  static constexpr int kInlinePredictInstances = 16;

  // `access_control`: null for no access control; otherwise it must outlive
  // the service. `cluster`: null for a single server; a node of a cluster
  // otherwise (replicated_store.h), which must outlive the service: every
  // call that changes a model goes through it, and every call is refused
  // while it is not serving (catching up: UNAVAILABLE; diverged:
  // FAILED_PRECONDITION).
  ModelService(ModelStore* store, const ServiceOptions& options,
               const AccessControl* access_control = nullptr,
               ReplicatedStore* cluster = nullptr);

  // Refuses new calls (UNAVAILABLE) and ends every open StreamUpdate call:
  // at once if it is waiting for a request, after its current request
  // otherwise (stream_update_reactor.h); and every open WatchModel call,
  // after the event being written.
  // Predict calls waiting for a min_version end with UNAVAILABLE at once.
  void BeginShutdown() ABSL_LOCKS_EXCLUDED(streams_mu_);
  bool draining() const { return draining_.load(); }
  // Waits until the accepted updates (and the other work on the update
  // workers) are done, or `deadline`; false if the deadline came first.
  bool WaitForUpdates(absl::Time deadline) {
    return updates_.WaitIdle(deadline);
  }
  // Runs the updates still queued and joins the workers; call once the
  // grpc::Server's Shutdown() returned. Idempotent.
  void DrainUpdates() {
    predictions_.Shutdown();
    updates_.Shutdown();
  }

  // The gRPC service to register with the grpc::ServerBuilder.
  grpc::Service* grpc_service() { return &async_; }
  // Serves every method on `poller`'s queue (rpc/call_poller.h), once the
  // grpc::Server is built.
  void Serve(rpc::CallPoller* poller);

  // The methods, each run on the poller's thread (rpc/async_calls.h).
  void CreateModel(rpc::UnaryCall<v1::CreateModelRequest, v1::ModelInfo>* call);
  void GetModel(rpc::UnaryCall<v1::GetModelRequest, v1::ModelInfo>* call);
  void ListModels(
      rpc::UnaryCall<v1::ListModelsRequest, v1::ListModelsResponse>* call);
  void DeleteModel(
      rpc::UnaryCall<v1::DeleteModelRequest, v1::DeleteModelResponse>* call);
  void Predict(rpc::UnaryCall<v1::PredictRequest, v1::PredictResponse>* call);
  void Update(rpc::UnaryCall<v1::UpdateRequest, v1::UpdateResponse>* call);
  void StreamUpdate(rpc::BidiCall<v1::UpdateRequest, v1::UpdateResponse>* call);
  void Rollback(rpc::UnaryCall<v1::RollbackRequest, v1::ModelInfo>* call);
  // On the update executor, like Rollback: it copies the whole model.
  void AddClasses(rpc::UnaryCall<v1::AddClassesRequest, v1::ModelInfo>* call);
  void ExportModel(
      rpc::UnaryCall<v1::ExportModelRequest, v1::ExportModelResponse>* call);
  void ImportModel(rpc::UnaryCall<v1::ImportModelRequest, v1::ModelInfo>* call);
  // A stream of the model's events (watch_model_reactor.h).
  void WatchModel(rpc::WriterCall<v1::WatchModelRequest, v1::ModelEvent>* call);

  // The work of one Predict once its batch size is checked and any
  // min_version reached: fills *response (the fuzz target of requests,
  // tests/fuzz/request_fuzzer.cc, calls it as Predict does).
  absl::Status PredictNow(const v1::PredictRequest& request,
                          v1::PredictResponse* response);
  // The work of one Update, shared by Update and StreamUpdate: fills
  // *response and calls `done`, on this thread or, with --fsync=always, on
  // the log syncer's once the update is durable. `request` and `response`
  // must stay valid until then.
  void ApplyUpdate(const v1::UpdateRequest& request,
                   v1::UpdateResponse* response,
                   std::function<void(absl::Status)> done);
  // Learns `examples` into model `model`: the store's StartUpdate, or on a
  // node of a cluster the node's (through the cluster's log). `done` is
  // called once, as ModelStore::StartUpdate says; the examples' arrays are
  // used only until this returns. For ApplyUpdate and the Open Inference
  // Protocol's online_learning extension (inference_service.h).
  void StartUpdate(const std::string& model,
                   absl::Span<const ExampleView> examples,
                   const UpdateOptions& options, absl::string_view update_id,
                   UpdateCallback done);
  // Runs `task` on an update worker, counted as waiting for model `model`
  // until it starts; false (task dropped) once DrainUpdates() began, which
  // only happens after every call has ended.
  bool SubmitUpdate(const std::string& model, std::function<void()> task)
      ABSL_LOCKS_EXCLUDED(queued_mu_);
  // Runs `task` on a prediction worker; false (task dropped) once
  // DrainUpdates() began.
  bool SubmitPrediction(std::function<void()> task) {
    return predictions_.Submit(std::move(task));
  }
  // Runs `work` (which fills the response) on a prediction worker and
  // finishes the call with its status: for a Predict or ModelInfer of more
  // than kInlinePredictInstances instances. A call that ended while it
  // waited computes nothing; once draining, UNAVAILABLE.
  void PredictOnWorker(rpc::UnaryResponder* call,
                       std::function<absl::Status()> work);
  // A cluster node created or deleted model `name` by applying the log: its
  // drift and guardrail events are logged from now on, or no longer.
  void OnCatalogChange(const std::string& name, bool exists);
  // Tasks waiting for an update worker, all together and per model name
  // (metrics; a model with none waiting is absent).
  int64_t UpdateQueueDepth() const { return updates_.QueueDepth(); }
  absl::flat_hash_map<std::string, int64_t> QueuedByModel() const
      ABSL_LOCKS_EXCLUDED(queued_mu_);

  // OK while the call may still be answered; DEADLINE_EXCEEDED once its
  // deadline passed, CANCELLED once the client cancelled it. The update
  // workers check it just before they apply a call's work, so a call that
  // waited in the queue past its deadline applies nothing. (Work that has
  // begun is finished: an update is all or nothing.)
  static absl::Status CallAlive(const grpc::ServerContextBase& context);

  // Open StreamUpdate calls, so that BeginShutdown() can reach them. A
  // stream registers when it starts and unregisters in its OnDone().
  void RegisterStream(StreamUpdateReactor* stream)
      ABSL_LOCKS_EXCLUDED(streams_mu_);
  void UnregisterStream(StreamUpdateReactor* stream)
      ABSL_LOCKS_EXCLUDED(streams_mu_);
  // Open WatchModel calls, likewise: BeginShutdown() ends them at once.
  void RegisterWatch(WatchModelReactor* watch) ABSL_LOCKS_EXCLUDED(streams_mu_);
  void UnregisterWatch(WatchModelReactor* watch)
      ABSL_LOCKS_EXCLUDED(streams_mu_);

  // The gate of every call (of this service and of inference_service.h):
  // UNAVAILABLE once draining; a cluster node's ServingStatus(); then OK
  // without access control, otherwise AccessControl::Authorize() on the
  // call's metadata.
  absl::Status Admit(const grpc::ServerContextBase* context,
                     Method method) const;
  // RESOURCE_EXHAUSTED "<field>: N items exceed the server's limit of M
  // (--max_batch)" when size > max_batch.
  absl::Status CheckBatch(absl::string_view field, int64_t size) const;

 private:
  // InfoToProto, and a cluster node's position in the model's stream.
  void FillInfo(const ModelInfo& info, v1::ModelInfo* proto) const;
  // Runs `change` with a callback and waits for it (for the RPCs that run
  // on an update worker: a cluster answers them once applied).
  static absl::StatusOr<ModelInfo> Await(
      const std::function<void(ReplicatedStore::InfoCallback)>& change);
  // A Predict with min_version: answered once the model has that version
  // (min_version_wait.h), without holding a thread meanwhile.
  void WaitForVersion(
      rpc::UnaryCall<v1::PredictRequest, v1::PredictResponse>* call)
      ABSL_LOCKS_EXCLUDED(streams_mu_);
  // Runs `work` (which fills the response) on an update worker and finishes
  // the call with its status: for the RPCs that create, delete, change or
  // copy a whole model (CreateModel, DeleteModel, Rollback, AddClasses,
  // ExportModel, ImportModel), which must not hold the polling thread.
  void OnWorker(rpc::UnaryResponder* call, const std::string& model,
                std::function<absl::Status()> work);

  ModelStore* const store_;
  const ServiceOptions options_;
  const AccessControl* const access_control_;
  ReplicatedStore* const cluster_;
  v1::ModelService::AsyncService async_;
  std::atomic<bool> draining_{false};
  // Lock order: streams_mu_ before a stream's own lock. gRPC calls a
  // stream's OnDone() on its own threads, never inside Finish(), so a stream
  // cannot unregister (and be deleted) while BeginShutdown() walks the set.
  Mutex streams_mu_;
  absl::flat_hash_set<StreamUpdateReactor*> streams_
      ABSL_GUARDED_BY(streams_mu_);
  absl::flat_hash_set<WatchModelReactor*> watches_ ABSL_GUARDED_BY(streams_mu_);
  // Predict calls waiting for a version (min_version), owned here until they
  // end.
  absl::flat_hash_map<MinVersionWait*, std::shared_ptr<MinVersionWait>> waits_
      ABSL_GUARDED_BY(streams_mu_);
  // Logs every model's drift and guardrail events (log_events.h); before
  // updates_, whose tasks publish them.
  ModelEventLogger event_logger_;
  // Tasks submitted and not yet started, per model name; before updates_,
  // whose tasks count themselves out.
  mutable Mutex queued_mu_;
  absl::flat_hash_map<std::string, int64_t> queued_ ABSL_GUARDED_BY(queued_mu_);
  // Last, so that they are destroyed (their queues run and their workers
  // joined) while everything their tasks use is still there.
  WorkerPool updates_;
  // The large Predict calls (the same kind of pool, at the process's
  // priority).
  WorkerPool predictions_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_MODEL_SERVICE_H_
