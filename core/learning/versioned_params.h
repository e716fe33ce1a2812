// VersionedParams: the published side of one learner's parameters. The
// Learner changes a working copy of its own; each version it commits stays
// readable here, by any thread, for as long as something holds it.
//
// Two representations, chosen by size (ParamLayout::whole_copies):
// - Small models: each version is a whole, immutable copy.
// - Large models: each version is a delta, the rows its update changed with
//   their values before and after. Readers read the weights (array 0) from
//   one of two contiguous copies (the left-right technique). Showing version
//   v waits until no reader is left on the older copy, brings it up to v
//   with the deltas' "after" values, and makes it the front. The optimizer
//   state (the other arrays) has no copy here: a full read (CopyAll) takes
//   it from the writer's working copy, registered with SetWorkingCopy, and
//   takes the deltas back to the version asked for. Another version's
//   weights, once neither copy holds them, are rebuilt from the front copy
//   and the deltas in between, and kept until the version is released.
// So publishing a sparse update costs time and memory in proportion to the
// rows it changed: no step walks the model, and any number of retained
// versions cost two copies of the weights and the deltas.
//
// Committed is not yet shown: a store that answers an update only once it is
// durable shows versions later, in order (RetainedVersions::Publish does).
//
// Thread safety: Commit calls are serialized by the caller (the learner's
// owner, under its update lock), each with a version above the last. The
// writer changes its working copy only while it holds writer_mu(), and
// registers what it holds before it lets go. Show, reads and releases may
// come from any thread at any time.
#ifndef LEPTON_CORE_LEARNING_VERSIONED_PARAMS_H_
#define LEPTON_CORE_LEARNING_VERSIONED_PARAMS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/types/span.h"
#include "core/learning/dense_kernels.h"
#include "core/learning/param_layout.h"
#include "core/util/mutex.h"

namespace lepton {

// What one committed version changed against the version before it.
struct ParamDelta {
  // Every row (the first version, a dense step, a Load): `before` is a whole
  // parameter set (empty for a VersionedParams' first) and `after` a whole
  // array 0.
  bool all = false;
  // Otherwise the rows changed. A row may be listed more than once: its
  // first entry's `before` holds its values before the version, and every
  // entry's `after` its values after.
  std::vector<uint32_t> rows;
  // Per entry of `rows`: before, its ParamLayout::row_floats() values (array
  // 0's outputs, then array 1's, ...); after, array 0's outputs alone (the
  // weights are brought forward; the state is only taken back).
  std::vector<float> before;
  std::vector<float> after;

  int64_t bytes() const;
};

// Read access to one version's weights (array 0 of the ParamLayout order,
// padded by kPadFloats; small models: every array). Movable; they stay valid
// and unchanged while it lives, which must be within the life of the
// ParamsVersion it came from. Cheap, but hold it only while reading: a pin on
// a live copy makes the showing of the second version after it wait.
class ParamsPin {
 public:
  ParamsPin() = default;
  ParamsPin(ParamsPin&& other) noexcept { *this = std::move(other); }
  ParamsPin& operator=(ParamsPin&& other) noexcept;
  ~ParamsPin() { Unpin(); }

  explicit operator bool() const { return data_ != nullptr; }
  const float* data() const { return data_; }

 private:
  friend class VersionedParams;
  friend class ParamsVersion;
  void Unpin();

  const float* data_ = nullptr;
  std::shared_ptr<const AlignedFloats> held_;  // a whole or rebuilt copy
  std::atomic<int32_t>* readers_ = nullptr;    // a live copy's count
};

class VersionedParams;

// The writer's working copy as VersionedParams reads it (large models):
// every parameter, in row order (param_layout.h), which are version
// `committed`'s except for the changes made since (the values before them, to
// take them back).
struct WorkingCopy {
  const float* params = nullptr;
  uint64_t committed = 0;
  // Every row changed since: `before` is a whole parameter set, in array
  // order.
  bool all_changed = false;
  // Otherwise the rows changed since, with their ParamLayout::row_floats()
  // values before, in the order of `rows`; a row listed more than once has
  // its values before in its first entry.
  absl::Span<const uint32_t> rows;
  absl::Span<const float> before;
};

// One committed version's parameters. Immutable; held by the ModelVersion
// that carries it.
class ParamsVersion {
 public:
  ParamsVersion(std::shared_ptr<VersionedParams> owner, uint64_t version,
                std::shared_ptr<const AlignedFloats> whole);
  ~ParamsVersion();
  ParamsVersion(const ParamsVersion&) = delete;
  ParamsVersion& operator=(const ParamsVersion&) = delete;

  uint64_t version() const { return version_; }
  const ParamLayout& layout() const;
  // Identifies the learner that committed it.
  const VersionedParams* owner() const { return owner_.get(); }

  // The weights. Always succeeds; may rebuild them (a copy of the weights) if
  // neither live copy holds this version.
  ParamsPin Read() const;
  // Empty instead of rebuilding.
  ParamsPin ReadIfLive() const;
  // Every parameter, in ParamLayout order: a copy of the whole model.
  std::vector<float> CopyAll() const;
  // Makes this version the one readers of the live copies see. Versions of
  // one VersionedParams are shown in order; showing an older one than the
  // newest shown does nothing.
  void Show() const;

 private:
  const std::shared_ptr<VersionedParams> owner_;
  const uint64_t version_;
  const std::shared_ptr<const AlignedFloats> whole_;  // small models only
};

class VersionedParams : public std::enable_shared_from_this<VersionedParams> {
 public:
  explicit VersionedParams(const ParamLayout& layout);
  VersionedParams(const VersionedParams&) = delete;
  VersionedParams& operator=(const VersionedParams&) = delete;

  const ParamLayout& layout() const { return layout_; }

  // Commits `version`, whose parameters are `params` (ParamLayout order) and
  // which changed `delta` against the previous commit (unused for whole
  // copies). The first commit's delta must be `all`.
  std::shared_ptr<const ParamsVersion> Commit(uint64_t version,
                                              absl::Span<const float> params,
                                              ParamDelta delta)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Held by the writer while it changes its working copy (large models).
  Mutex& writer_mu() ABSL_LOCK_RETURNED(writer_mu_) { return writer_mu_; }
  // Registers the writer's working copy, whose buffers must stay as they are
  // until the next call (or DetachWorkingCopy) and be changed only under
  // writer_mu(). Called after each Commit, before writer_mu() is released.
  void SetWorkingCopy(const WorkingCopy& working)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // The writer is going away: keeps its committed optimizer state if a
  // version is still held (CopyAll needs it), and forgets its buffers.
  void DetachWorkingCopy() ABSL_LOCKS_EXCLUDED(writer_mu_, mu_);

  // Bytes of the copies, deltas and rebuilt versions held.
  int64_t memory_bytes() const {
    return bytes_.load(std::memory_order_relaxed);
  }

 private:
  friend class ParamsVersion;

  ParamsPin PinLive(uint64_t version) const;
  ParamsPin Rebuild(uint64_t version) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<float> CopyAll(uint64_t version) const ABSL_LOCKS_EXCLUDED(mu_);
  void Show(uint64_t version) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(uint64_t version, int64_t whole_bytes) ABSL_LOCKS_EXCLUDED(mu_);

  // Applies the "after" values of the deltas of versions (from, to] to
  // array 0 (`first_array` 0, `end_array` 1), or the "before" values of
  // (to, from] downwards to arrays [first_array, end_array) if to < from;
  // `dst` starts at first_array.
  void Replay(uint64_t from, uint64_t to, int first_array, int end_array,
              float* dst) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Arrays [1, arrays) of the writer's newest committed version into `dst`;
  // returns that version.
  uint64_t CopyCommittedState(float* dst) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // Drops the deltas no copy, held version or rebuild needs any more.
  void Prune() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ParamLayout layout_;
  mutable std::atomic<int64_t> bytes_{0};

  // Taken before mu_ when both are held.
  mutable Mutex writer_mu_;
  WorkingCopy working_ ABSL_GUARDED_BY(writer_mu_);
  // Once the writer is gone: arrays [1, arrays) of its last commit.
  std::vector<float> detached_state_ ABSL_GUARDED_BY(writer_mu_);
  uint64_t detached_version_ ABSL_GUARDED_BY(writer_mu_) = 0;

  mutable Mutex mu_;
  std::map<uint64_t, std::shared_ptr<const ParamDelta>> deltas_
      ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> held_ ABSL_GUARDED_BY(mu_);  // versions not yet released
  mutable std::map<uint64_t, std::shared_ptr<const AlignedFloats>> rebuilt_
      ABSL_GUARDED_BY(mu_);
  uint64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t shown_ ABSL_GUARDED_BY(mu_) = 0;

  // The two live copies of the weights (large models), allocated at the
  // first Show. Written only by Show, under mu_, while readable_ is 0 and no
  // reader is counted.
  AlignedFloats copy_[2];
  uint64_t copy_version_[2] ABSL_GUARDED_BY(mu_) = {0, 0};
  // The version a reader may pin in each copy; 0 while it is being written.
  std::atomic<uint64_t> readable_[2] = {0, 0};
  mutable std::atomic<int32_t> readers_[2] = {0, 0};
  std::atomic<int> front_{0};
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_VERSIONED_PARAMS_H_
