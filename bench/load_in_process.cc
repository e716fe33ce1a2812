#include "bench/load_in_process.h"

#include <cstdint>
#include <string>

#include "core/store/model_store.h"
#include "core/util/status_macros.h"
#include "server/convert.h"

namespace lepton::bench {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status Apply(ModelStore& store, const std::string& model,
                   const v1::UpdateRequest& request) {
  server::NamedFeatureViews named;
  const std::vector<ExampleView> examples = server::ExamplesOf(request, &named);
  return store
      .Update(model, examples, server::UpdateOptionsOf(request),
              request.update_id())
      .status();
}

}  // namespace

absl::StatusOr<double> InProcessUpdateRate(
    const v1::CreateModelRequest& create,
    const std::vector<v1::UpdateRequest>& pretrain,
    const std::vector<v1::UpdateRequest>& updates,
    std::chrono::nanoseconds warmup, std::chrono::nanoseconds duration) {
  LEPTON_ASSIGN_OR_RETURN(ModelSpec spec, server::SpecFromProto(create.spec()));
  ModelStore store;
  const std::string& model = create.name();
  LEPTON_RETURN_IF_ERROR(store.CreateModel(model, spec).status());
  for (const v1::UpdateRequest& request : pretrain) {
    LEPTON_RETURN_IF_ERROR(Apply(store, model, request));
  }
  const Clock::time_point warm_until = Clock::now() + warmup;
  size_t next = 0;
  auto apply_next = [&]() -> absl::Status {
    const v1::UpdateRequest& request = updates[next];
    next = (next + 1) % updates.size();
    return Apply(store, model, request);
  };
  while (Clock::now() < warm_until) LEPTON_RETURN_IF_ERROR(apply_next());
  const Clock::time_point start = Clock::now();
  Clock::time_point now = start;
  int64_t examples = 0;
  while (now - start < duration) {
    examples += updates[next].examples_size();
    LEPTON_RETURN_IF_ERROR(apply_next());
    now = Clock::now();
  }
  return static_cast<double>(examples) /
         std::chrono::duration<double>(now - start).count();
}

}  // namespace lepton::bench
