#include "core/store/memory_budget.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/learning/dense_kernels.h"
#include "core/learning/param_layout.h"

namespace lepton {
namespace {

ParamLayout LayoutOf(const ModelSpec& spec) {
  return ParamLayout::For(spec.num_features + 1, spec.num_outputs(),
                          ParamArrays(spec));
}

constexpr int64_t kFloat = sizeof(float);

}  // namespace

int64_t ReservedModelBytes(const ModelSpec& spec, int32_t retained_versions) {
  const ParamLayout layout = LayoutOf(spec);
  const int64_t all = layout.floats();
  // The writer's copy and its bitmap of the rows changed since a commit.
  const int64_t writer =
      (all + kPadFloats) * kFloat + (layout.rows + 63) / 64 * 8;
  if (layout.whole_copies()) {
    return writer + int64_t{std::max(retained_versions, 1)} *
                        (all + kPadFloats) * kFloat;
  }
  const int64_t weights = layout.array_floats();
  return writer + 2 * (weights + kPadFloats) * kFloat + all * kFloat;
}

int64_t UpdateBytesBound(const ModelSpec& spec,
                         absl::Span<const ExampleView> examples) {
  const ParamLayout layout = LayoutOf(spec);
  int64_t bytes = 0;
  int64_t rows = 1;  // the bias
  for (const ExampleView& e : examples) {
    int64_t named = 0;
    for (const NamespaceView& ns : e.features.namespaces) {
      named += static_cast<int64_t>(ns.features.size());
    }
    // Interactions add at most a pair per two named features.
    if (!spec.interactions.empty()) named += named * named;
    const int64_t entries = static_cast<int64_t>(e.features.dense.size() +
                                                 e.features.indices.size()) +
                            named;
    bytes += OwnedBytes(e) + named * (sizeof(uint32_t) + sizeof(float));
    rows += entries;
  }
  if (!layout.whole_copies()) {
    rows = std::min(rows, layout.rows);
    bytes += rows * (2 * layout.row_floats() * kFloat +
                     static_cast<int64_t>(sizeof(uint32_t)));
  }
  return bytes;
}

absl::Status CheckMemoryBudget(int64_t limit, int64_t used, int64_t more,
                               absl::string_view what) {
  if (limit <= 0 || used + more <= limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "memory budget: ", what, " needs up to ", more, " bytes, and ", used,
      " of the budget's ", limit,
      " bytes are in use (max_memory_bytes); delete models, or give the "
      "server more memory"));
}

MemoryLedger::Hold::Hold(Hold&& other) noexcept
    : ledger_(std::exchange(other.ledger_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

MemoryLedger::Hold& MemoryLedger::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    if (ledger_ != nullptr) ledger_->Release(bytes_);
    ledger_ = std::exchange(other.ledger_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

MemoryLedger::Hold::~Hold() {
  if (ledger_ != nullptr) ledger_->Release(bytes_);
}

absl::StatusOr<MemoryLedger::Hold> MemoryLedger::Reserve(
    int64_t limit, Recount recount, int64_t more, absl::string_view what) {
  if (limit <= 0) return Hold();
  MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (now - recounted_ >= recount_period_) {
    charges_.clear();
    charged_ = 0;
    for (const Charge& c : recount()) {
      charges_[c.owner] = c.bytes;
      charged_ += c.bytes;
    }
    recounted_ = now;
  }
  const absl::Status fits =
      CheckMemoryBudget(limit, charged_ + reserved_, more, what);
  if (!fits.ok()) return fits;
  reserved_ += more;
  return Hold(this, more);
}

void MemoryLedger::SetCharge(const void* owner,
                             absl::FunctionRef<int64_t()> charge) {
  MutexLock lock(&mu_);
  const int64_t bytes = charge();
  if (auto it = charges_.find(owner); it != charges_.end()) {
    charged_ -= it->second;
    charges_.erase(it);
  }
  if (bytes != 0) {
    charges_[owner] = bytes;
    charged_ += bytes;
  }
}

int64_t MemoryLedger::reserved() const {
  MutexLock lock(&mu_);
  return reserved_;
}

int64_t MemoryLedger::charged() const {
  MutexLock lock(&mu_);
  return charged_;
}

void MemoryLedger::Release(int64_t bytes) {
  MutexLock lock(&mu_);
  reserved_ -= bytes;
}

}  // namespace lepton
