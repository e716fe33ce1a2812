// The memory budget of a store (StoreOptions::max_memory_bytes): what a model
// is charged, what a change may add, and the check before it.
//
// A model is charged the larger of what it holds (Model::MemoryBytes: its
// versions' parameters, the writer's copy, holdout set, held updates and
// remembered predictions) and what its spec reserves (ReservedModelBytes:
// the parameters it holds once its retained versions are published). A
// change that may grow memory (CreateModel, ImportModel, AddClasses, an
// update) is checked before it starts: the charges of all models plus what
// it may add must stay within the budget, or it is RESOURCE_EXHAUSTED and
// nothing is applied. Changes checked at the same time may together cross
// the budget by what each adds; the server's default budget (80% of the
// memory limit) leaves room for that and for what is not counted (gRPC's
// buffers, the program).
//
// Thread safety: pure functions.
#ifndef LEPTON_CORE_STORE_MEMORY_BUDGET_H_
#define LEPTON_CORE_STORE_MEMORY_BUDGET_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"

namespace lepton {

// Bytes of the parameters of a model of `spec` with `retained_versions`
// versions published: the writer's working copy, and a whole copy per
// version (models of up to ParamLayout::kWholeCopyFloats floats) or two live
// copies of the weights, one of the optimizer state and the first version's
// delta (versioned_params.h).
int64_t ReservedModelBytes(const ModelSpec& spec, int32_t retained_versions);

// At most what an update of `examples` adds to a model of `spec`: the delta
// of the rows it may change (their values before and after; none for whole
// copies, which the reservation covers), and a copy of each example, which
// the holdout set or the quarantine may keep.
int64_t UpdateBytesBound(const ModelSpec& spec,
                         absl::Span<const ExampleView> examples);

// OK if `more` bytes fit: used + more <= limit; a limit of 0 is no budget.
// Otherwise RESOURCE_EXHAUSTED naming the budget, what is in use and `what`
// needs ("creating model \"m\"").
absl::Status CheckMemoryBudget(int64_t limit, int64_t used, int64_t more,
                               absl::string_view what);

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_MEMORY_BUDGET_H_
