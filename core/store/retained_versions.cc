#include "core/store/retained_versions.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lepton {

RetainedVersions::RetainedVersions(std::string model_name, int32_t capacity)
    : model_name_(std::move(model_name)),
      capacity_(static_cast<size_t>(std::max(1, capacity))) {}

void RetainedVersions::Publish(
    std::shared_ptr<const PublishedVersion> version) {
  // Readers of the live copies see it before it is listed.
  version->stored_params().Show();
  std::shared_ptr<const PublishedVersion> evicted;
  std::vector<std::function<void()>> ready;
  {
    MutexLock lock(&mu_);
    const uint64_t number = version->version();
    versions_.push_back(std::move(version));
    if (versions_.size() > capacity_) {
      evicted = std::move(versions_.front());
      versions_.pop_front();
    }
    const auto satisfied = waiters_.upper_bound({number, UINT64_MAX});
    for (auto it = waiters_.begin(); it != satisfied; ++it) {
      ready.push_back(std::move(it->second));
    }
    waiters_.erase(waiters_.begin(), satisfied);
  }
  // Outside the lock: the callbacks, and freeing the evicted version if no
  // reader holds it.
  for (std::function<void()>& r : ready) r();
}

absl::StatusOr<uint64_t> RetainedVersions::WhenPublished(
    uint64_t version, std::function<void()> ready) {
  MutexLock lock(&mu_);
  if (!versions_.empty() && versions_.back()->version() >= version) return 0;
  if (waiters_.size() >= kMaxWaiters) {
    return absl::ResourceExhaustedError(
        absl::StrCat("min_version: more than ", kMaxWaiters,
                     " calls wait for model \"", model_name_, "\""));
  }
  const uint64_t id = next_waiter_++;
  waiters_.emplace(std::make_pair(version, id), std::move(ready));
  return id;
}

bool RetainedVersions::CancelWait(uint64_t version, uint64_t id) {
  MutexLock lock(&mu_);
  return waiters_.erase({version, id}) > 0;
}

void RetainedVersions::WakeAll() {
  std::vector<std::function<void()>> ready;
  {
    MutexLock lock(&mu_);
    for (auto& [key, callback] : waiters_) ready.push_back(std::move(callback));
    waiters_.clear();
  }
  for (std::function<void()>& r : ready) r();
}

std::shared_ptr<const PublishedVersion> RetainedVersions::Latest() const {
  ReaderMutexLock lock(&mu_);
  return versions_.back();
}

absl::StatusOr<std::shared_ptr<const PublishedVersion>> RetainedVersions::Get(
    uint64_t version) const {
  ReaderMutexLock lock(&mu_);
  if (version == 0) return versions_.back();
  const uint64_t oldest = versions_.front()->version();
  const uint64_t newest = versions_.back()->version();
  if (version > newest) {
    return absl::NotFoundError(
        absl::StrCat("version ", version, " of model \"", model_name_,
                     "\" does not exist; the newest is ", newest));
  }
  if (version < oldest) {
    return absl::NotFoundError(
        absl::StrCat("version ", version, " of model \"", model_name_,
                     "\" is no longer retained; retained versions are ", oldest,
                     " to ", newest));
  }
  return versions_[version - oldest];
}

std::vector<std::shared_ptr<const PublishedVersion>> RetainedVersions::All()
    const {
  ReaderMutexLock lock(&mu_);
  return {versions_.begin(), versions_.end()};
}

}  // namespace lepton
