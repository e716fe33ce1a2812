// ModelStore: the named models of one server, and the core's public API.
// Every call a service needs is here and returns absl::Status or
// absl::StatusOr<T>:
//
//   ModelStore store(StoreOptions{.retained_versions = 8});
//   ModelSpec spec;
//   spec.type = ModelType::kLogisticRegression;
//   spec.num_features = 1 << 20;
//   LEPTON_RETURN_IF_ERROR(store.CreateModel("ctr", spec).status());
//   absl::StatusOr<UpdateResult> r = store.Update("ctr", Views(examples));
//   absl::StatusOr<Predictions> p = store.Predict("ctr", Views(instances));
//
// Errors: INVALID_ARGUMENT (message starts with the field path, e.g.
// "examples[7].features.dense[0]: not finite"), NOT_FOUND (no such model, or
// a version no longer retained), ALREADY_EXISTS (CreateModel on a taken name).
// A rejected call changes nothing.
//
// Thread safety: every method may be called concurrently from any threads.
// mu_ guards only the name -> model map and is held for a lookup or an
// insert/erase, never during learning or prediction. Updates to one model are
// serialized by that model; updates to different models run in parallel;
// predictions never wait for updates (see model.h).
#ifndef LEPTON_CORE_MODEL_STORE_H_
#define LEPTON_CORE_MODEL_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/example.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/model_version.h"
#include "core/mutex.h"

namespace lepton {

struct StoreOptions {
  // Versions of each model kept available for pinned predictions, >= 1.
  int32_t retained_versions = 8;
};

class ModelStore {
 public:
  explicit ModelStore(const StoreOptions& options = {});

  absl::StatusOr<ModelInfo> CreateModel(absl::string_view name,
                                        const ModelSpec& spec)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<ModelInfo> GetModel(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // All models, ordered by name.
  std::vector<ModelInfo> ListModels() const ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the model. Calls already holding it finish normally.
  absl::Status DeleteModel(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_);

  // Predictions from `version` (0 = the newest).
  absl::StatusOr<Predictions> Predict(absl::string_view name,
                                      absl::Span<const FeaturesView> instances,
                                      uint64_t version = 0) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Learns from `examples` and publishes a new version; all or nothing.
  absl::StatusOr<UpdateResult> Update(absl::string_view name,
                                      absl::Span<const ExampleView> examples,
                                      const UpdateOptions& options = {})
      ABSL_LOCKS_EXCLUDED(mu_);
  // A handle on one version (0 = the newest), alive as long as it is held.
  absl::StatusOr<std::shared_ptr<const ModelVersion>> AcquireVersion(
      absl::string_view name, uint64_t version = 0) const
      ABSL_LOCKS_EXCLUDED(mu_);

  const StoreOptions& options() const { return options_; }

 private:
  absl::StatusOr<std::shared_ptr<Model>> Find(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);

  const StoreOptions options_;
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Model>, std::less<>> models_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton

#endif  // LEPTON_CORE_MODEL_STORE_H_
