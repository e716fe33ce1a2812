// PublishedVersion: a version of a model as the store publishes it, its
// weights (a ModelVersion) together with the model's drift, challenger and
// holdout state as of that version, so that a checkpoint of any retained
// version is complete. Readers that need only the weights hold it as a
// std::shared_ptr<const ModelVersion>.
//
// Thread safety: immutable after construction.
#ifndef LEPTON_CORE_STORE_PUBLISHED_VERSION_H_
#define LEPTON_CORE_STORE_PUBLISHED_VERSION_H_

#include <memory>
#include <string>
#include <utility>

#include "core/adaptation/model_adaptation.h"
#include "core/learning/model_version.h"
#include "core/storage/model_state.h"

namespace lepton {

class PublishedVersion final : public ModelVersion {
 public:
  PublishedVersion(std::shared_ptr<const ParamsVersion> params,
                   std::shared_ptr<const ModelSpec> spec,
                   const ModelCounters& counters, absl::Time published,
                   std::shared_ptr<const AdaptationSnapshot> adaptation)
      : ModelVersion(std::move(params), std::move(spec), counters, published),
        adaptation_(std::move(adaptation)) {}

  const AdaptationSnapshot& adaptation() const { return *adaptation_; }
  // Everything of this version but the remembered update ids, as the model
  // `name` created at `created`.
  ModelState State(const std::string& name, absl::Time created) const;

 private:
  const std::shared_ptr<const AdaptationSnapshot> adaptation_;  // never null
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_PUBLISHED_VERSION_H_
