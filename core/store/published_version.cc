#include "core/store/published_version.h"

namespace lepton {

ModelState PublishedVersion::State(const std::string& name,
                                   absl::Time created) const {
  ModelState state;
  state.name = name;
  state.spec = spec();
  state.version = version();
  state.counters = counters();
  state.created = created;
  state.published = published();
  state.params = params();
  state.adaptation = CaptureAdaptation(*adaptation_);
  return state;
}

}  // namespace lepton
