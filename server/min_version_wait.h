// MinVersionWait: a Predict with min_version (read your writes) that cannot
// be answered yet. It holds no thread while it waits: the model calls it
// back when it publishes a version (ModelStore::WhenVersion), an alarm hops
// from that thread to the call's polling thread, and it looks again. It ends
// with the first of: the version reached (the prediction is answered), the
// call's deadline (DEADLINE_EXCEEDED), the server's shutdown (UNAVAILABLE).
//
// Ownership and thread safety: the service owns it (a std::shared_ptr) until
// `ended` runs; the model's and the alarms' callbacks hold weak pointers.
// Every method may be called from any thread. The service must outlive it
// (its shutdown ends every wait).
#ifndef LEPTON_SERVER_MIN_VERSION_WAIT_H_
#define LEPTON_SERVER_MIN_VERSION_WAIT_H_

#include <functional>
#include <list>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "core/store/model_store.h"
#include "core/util/mutex.h"
#include "lepton/v1/lepton.pb.h"
#include "server/rpc/async_calls.h"

namespace lepton::server {

class MinVersionWait : public std::enable_shared_from_this<MinVersionWait> {
 public:
  // Answers the call: runs the prediction and returns its status.
  using Answer = std::function<absl::Status()>;
  // Called once the wait has ended, whichever way.
  using Ended = std::function<void(MinVersionWait*)>;

  // `call` answers the Predict `request`; both stay valid until the wait
  // finishes the call.
  MinVersionWait(ModelStore* store, rpc::UnaryResponder* call,
                 const v1::PredictRequest* request, Answer answer, Ended ended);
  MinVersionWait(const MinVersionWait&) = delete;
  MinVersionWait& operator=(const MinVersionWait&) = delete;

  // Looks once, then waits if it must.
  void Start() ABSL_LOCKS_EXCLUDED(mu_) { Look(); }
  // Ends the wait with UNAVAILABLE (the server is shutting down).
  void EndForShutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Answers if the model has the version; otherwise registers for the next
  // look (and, the first time, sets the deadline alarm).
  void Look() ABSL_LOCKS_EXCLUDED(mu_);
  // From the model's callback: look again on the polling thread.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);
  // Finishes the call once; cancels what still waits.
  void Finish(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  ModelStore* const store_;
  rpc::UnaryResponder* const call_;
  const v1::PredictRequest* const request_;
  const Answer answer_;
  const Ended ended_;

  Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<VersionWait> wait_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<rpc::PollerAlarm> deadline_ ABSL_GUARDED_BY(mu_);
  // One per hop to the polling thread; kept until the wait is destroyed.
  std::list<rpc::PollerAlarm> hops_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_MIN_VERSION_WAIT_H_
