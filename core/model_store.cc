#include "core/model_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace lepton {

ModelStore::ModelStore(const StoreOptions& options) : options_(options) {}

absl::StatusOr<ModelInfo> ModelStore::CreateModel(absl::string_view name,
                                                  const ModelSpec& spec) {
  LEPTON_RETURN_IF_ERROR(ValidateModelName(name));
  LEPTON_RETURN_IF_ERROR(ValidateModelSpec(spec));
  {
    ReaderMutexLock lock(&mu_);
    if (models_.contains(name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("model \"", name, "\" already exists"));
    }
  }
  // Allocating the weights can take a while for a large model: outside mu_.
  auto model = std::make_shared<Model>(std::string(name), spec,
                                       options_.retained_versions);
  MutexLock lock(&mu_);
  auto [it, inserted] = models_.emplace(std::string(name), model);
  if (!inserted) {  // lost a race with another CreateModel of the same name
    return absl::AlreadyExistsError(
        absl::StrCat("model \"", name, "\" already exists"));
  }
  return model->Info();
}

absl::StatusOr<std::shared_ptr<Model>> ModelStore::Find(
    absl::string_view name) const {
  ReaderMutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model \"", name, "\" not found"));
  }
  return it->second;
}

absl::StatusOr<ModelInfo> ModelStore::GetModel(absl::string_view name) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Info();
}

std::vector<ModelInfo> ModelStore::ListModels() const {
  std::vector<std::shared_ptr<Model>> models;
  {
    ReaderMutexLock lock(&mu_);
    for (const auto& [name, model] : models_) models.push_back(model);
  }
  std::vector<ModelInfo> infos;
  infos.reserve(models.size());
  for (const auto& m : models) infos.push_back(m->Info());
  return infos;
}

absl::Status ModelStore::DeleteModel(absl::string_view name) {
  std::shared_ptr<Model> doomed;  // destroyed outside the lock
  MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model \"", name, "\" not found"));
  }
  doomed = std::move(it->second);
  models_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<Predictions> ModelStore::Predict(
    absl::string_view name, absl::Span<const FeaturesView> instances,
    uint64_t version) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Predict(instances, version);
}

absl::StatusOr<UpdateResult> ModelStore::Update(
    absl::string_view name, absl::Span<const ExampleView> examples,
    const UpdateOptions& options) {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Update(examples, options);
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelStore::AcquireVersion(
    absl::string_view name, uint64_t version) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Version(version);
}

}  // namespace lepton
