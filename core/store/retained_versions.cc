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
  std::shared_ptr<const PublishedVersion> evicted;
  {
    MutexLock lock(&mu_);
    versions_.push_back(std::move(version));
    if (versions_.size() > capacity_) {
      evicted = std::move(versions_.front());
      versions_.pop_front();
    }
  }
  // If no reader holds it, the evicted version is freed here, outside the
  // lock.
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
