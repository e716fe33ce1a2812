// RetainedVersions: the window of a model's newest published versions that
// predictions may pin (the newest `capacity`, consecutive numbers). A reader
// never waits for an update: the lock is held only to copy or swap a
// std::shared_ptr, and a version evicted while a reader holds it lives on
// until the reader drops it. Callers that want a version not yet published
// register a callback instead of waiting (WhenPublished).
//
// Thread safety: every method may be called from any thread.
#ifndef LEPTON_CORE_STORE_RETAINED_VERSIONS_H_
#define LEPTON_CORE_STORE_RETAINED_VERSIONS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "core/store/published_version.h"
#include "core/util/mutex.h"

namespace lepton {

class RetainedVersions {
 public:
  // Keeps the newest max(1, `capacity`) versions of model `model_name`
  // (named in error messages).
  RetainedVersions(std::string model_name, int32_t capacity);

  // Shows the next version's parameters (ParamsVersion::Show) and adds it;
  // the oldest beyond the capacity is evicted (and freed, unless a reader
  // holds it).
  void Publish(std::shared_ptr<const PublishedVersion> version)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The newest version; at least one must have been published.
  std::shared_ptr<const PublishedVersion> Latest() const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Version `version` (0 = the newest); NOT_FOUND naming the retained range
  // if it does not exist or is no longer retained.
  absl::StatusOr<std::shared_ptr<const PublishedVersion>> Get(
      uint64_t version) const ABSL_LOCKS_EXCLUDED(mu_);
  // Every retained version, oldest first.
  std::vector<std::shared_ptr<const PublishedVersion>> All() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Calls `ready` once, on the thread that publishes a version >= `version`
  // (after the lock is released), or from WakeAll. Returns 0 without keeping
  // `ready` if such a version is already published; otherwise an id for
  // CancelWait. RESOURCE_EXHAUSTED beyond kMaxWaiters waiting callbacks.
  absl::StatusOr<uint64_t> WhenPublished(uint64_t version,
                                         std::function<void()> ready)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets waiter `id` (registered for `version`) unless its callback has
  // been taken to run; true if it was forgotten (it will never run).
  bool CancelWait(uint64_t version, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Calls every waiting callback (the model was deleted: they look again).
  void WakeAll() ABSL_LOCKS_EXCLUDED(mu_);

  static constexpr size_t kMaxWaiters = 100000;

 private:
  const std::string model_name_;
  const size_t capacity_;
  mutable Mutex mu_;
  // Oldest first; consecutive version numbers.
  std::deque<std::shared_ptr<const PublishedVersion>> versions_
      ABSL_GUARDED_BY(mu_);
  // By (version, id): a publication takes only the waiters it satisfies.
  std::map<std::pair<uint64_t, uint64_t>, std::function<void()>> waiters_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_waiter_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_RETAINED_VERSIONS_H_
