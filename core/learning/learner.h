// Learner: the writer side of one model. It keeps a contiguous, mutable copy
// of the newest version's parameters, applies updates to it, and commits
// versions of it to its VersionedParams, which keeps them readable. It tracks
// the rows changed since the last commit (with their values before, for large
// models), so that a commit costs what the update changed.
//
// Learning semantics (docs/learning.md links here):
// - An update's examples are taken in order, `epochs` times over. Every
//   `minibatch_size` consecutive examples (the last group may be shorter) make
//   one optimizer step on the mean of their weighted gradients:
//   g = (1/m) sum_i weight_i * grad loss_i, all m scored with the weights as
//   they were before the step. minibatch_size = 1 is per-example SGD.
// - A step touches all weights when the group has a dense example, otherwise
//   only the rows of the features its sparse examples name (and the bias).
//   Untouched coordinates, their optimizer state included, do not change.
// - Clipping (ModelSpec::max_gradient_norm > 0): g, over every coordinate the
//   step touches, the bias included, is scaled down to that L2 norm if it is
//   longer, before any L2 term. The norm is summed in double, in a fixed
//   order.
// - L2 (lazy): a step adds l2 * w to the gradient of every weight it touches
//   (FTRL: l2 enters its closed form instead). The bias is not regularized,
//   nor L1-regularized by FTRL.
// - max_step > 0: the change of each weight in a step is clamped to
//   [-max_step, max_step] (see ModelSpec::max_step for FTRL).
// - A learning-rate override replaces the spec's base rate in the same rule
//   (SGD's decay schedule, AdaGrad's accumulators, FTRL's z and n, Adam's
//   moments and step count carry on as usual).
//
// Thread safety: none; the owning Model calls it under its update lock. It
// changes its working copy only under its VersionedParams' writer lock, since
// full reads of its versions take their optimizer state from it.
#ifndef LEPTON_CORE_LEARNING_LEARNER_H_
#define LEPTON_CORE_LEARNING_LEARNER_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/optimizer.h"
#include "core/learning/param_layout.h"
#include "core/learning/row_slots.h"
#include "core/learning/scoring.h"
#include "core/learning/versioned_params.h"

namespace lepton {

// Weighted progressive metrics of a batch.
struct BatchMetrics {
  double weight = 0;
  double loss_sum = 0;
  double correct_weight = 0;

  // Weighted means; 0 without weight.
  double mean_loss() const { return weight > 0 ? loss_sum / weight : 0; }
  double accuracy() const { return weight > 0 ? correct_weight / weight : 0; }
};

class Learner {
 public:
  // Every weight 0, the optimizer state at its initial value (AdaGrad:
  // initial_accumulator; FTRL, Adam: 0).
  explicit Learner(const ModelSpec& spec);
  // The working copy's buffers move with it (its VersionedParams reads them).
  Learner(Learner&&) = default;
  Learner& operator=(Learner&& other) noexcept;
  // Leaves the optimizer state of the last commit to the versions still held.
  ~Learner();

  const ParamLayout& layout() const { return layout_; }
  // Bytes of the working copy, the change tracking and scratch buffers.
  int64_t memory_bytes() const;

  // Scores the validated `examples` with the current weights (or, for an
  // example with served_outputs, with those) into *metrics (progressive
  // validation), then trains on them, counting steps in *steps.
  // Returns false if a step produced a non-finite weight or accumulator; the
  // working copy must then be restored with Restore().
  bool Learn(absl::Span<const ExampleView> examples, int32_t epochs,
             float learning_rate, uint64_t* steps, BatchMetrics* metrics);

  // The progressive losses of the examples of the last Learn() or
  // Evaluate(), one per example, in order (unweighted: the loss the
  // metrics multiply by the example's weight), each at most the largest
  // float (a larger squared loss saturates there). Valid until the next
  // call.
  absl::Span<const float> example_losses() const { return example_losses_; }
  // Scores `examples` (validated) with the current weights; changes nothing.
  BatchMetrics Evaluate(absl::Span<const ExampleView> examples);

  // Replaces the working copy with `params` (the layout of ModelState::params)
  // and counts every row as changed. `params` must have the spec's size.
  void Load(absl::Span<const float> params);
  // A copy of the working copy in ModelState::params layout.
  std::vector<float> params() const;

  // Commits the working copy as `version` (above every version committed
  // before) and starts tracking changes afresh. The first commit of a learner
  // holds every row.
  std::shared_ptr<const ParamsVersion> Commit(uint64_t version);
  // Undoes every change since the last Commit().
  void Restore();
  // Where this learner's versions live (identifies the learner).
  const VersionedParams* published() const { return published_.get(); }

 private:
  // Lists the batch's dense examples in dense_rows_.
  void FindDenseRows(absl::Span<const ExampleView> examples);
  // Raw outputs of examples[begin, begin + count) into z_.
  void Forward(absl::Span<const ExampleView> examples, int64_t begin,
               int64_t count);
  // The dense rows among examples[begin, begin + count).
  DenseRows DenseRange(int64_t begin, int64_t count) const;
  BatchMetrics Score(absl::Span<const ExampleView> examples);
  // One optimizer step, step number t, on examples[begin, begin + count).
  // With `outputs_ready` (begin must be 0), z_ and dense_index_ already hold
  // the outputs of examples[0, count) or more with the current weights, and
  // the forward pass is skipped.
  bool Step(absl::Span<const ExampleView> examples, int64_t begin,
            int64_t count, float learning_rate, uint64_t t, bool outputs_ready);
  // Called before row `r` of the working copy changes: notes the row with
  // its values (TouchAll: every row).
  void Touch(int64_t r) {
    if (all_touched_) return;
    // Notes beyond one per row (many epochs over the same rows) would cost
    // more than a whole copy of the values before.
    if (static_cast<int64_t>(touched_rows_.size()) >= layout_.rows) {
      TouchAll();
      return;
    }
    touched_rows_.push_back(static_cast<uint32_t>(r));
    if (!row_order_) return;  // whole copies: restored from last_commit_
    const float* v = row(r);
    for (int64_t i = 0; i < row_floats_; ++i) before_.push_back(v[i]);
  }
  bool LearnLocked(absl::Span<const ExampleView> examples, int32_t epochs,
                   float learning_rate, uint64_t* steps, BatchMetrics* metrics);
  // Tells published_ what the working copy holds; before its lock is let go.
  void RegisterWorkingCopy()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(published_->writer_mu());
  void TouchAll();
  void ClearTouched();
  // Row `r`'s weights in the working copy (its state: + a * array_stride_).
  float* row(int64_t r) { return params_.data() + r * row_stride_; }

  // Not const, so that a learner can be replaced by one of a grown spec
  // (Model::AddClasses move-assigns a new one).
  ModelSpec spec_;
  int64_t num_features_;
  int32_t outputs_;
  ParamLayout layout_;
  int64_t array_floats_;  // rows * outputs
  int64_t row_floats_;    // arrays * outputs
  // The weights and the optimizer's state arrays (ParamArrays, model_spec.h).
  // Array a of row r is at params_ + r * row_stride_ + a * array_stride_.
  // Large models keep row order (param_layout.h): a sparse step on a row
  // touches one place. Small ones keep array order, which their versions
  // copy whole and dense products and steps run over contiguously.
  bool row_order_;
  int64_t row_stride_;
  int64_t array_stride_;
  AlignedFloats params_;

  std::shared_ptr<VersionedParams> published_;
  std::shared_ptr<const ParamsVersion> last_commit_;
  // The changes since the last commit: the rows noted, in order, with their
  // values when noted (large models; small ones restore from last_commit_),
  // or every row. A row changed by several steps is noted by each, which
  // costs less than finding out whether it was: its first note holds its
  // values before, so they are put back in reverse order.
  std::vector<uint32_t> touched_rows_;
  std::vector<float> before_;
  bool all_touched_ = true;  // the first commit holds every row

  // Scratch, kept between calls to avoid reallocation.
  std::vector<const float*> dense_rows_;  // the batch's dense examples
  std::vector<int64_t> dense_before_;     // [i]: dense examples before i
  std::vector<int64_t> dense_index_;
  AlignedFloats dense_out_;
  AlignedFloats weight_block_;  // one block of weights, gathered
  AlignedFloats z_;             // outputs, then d loss / d outputs
  std::vector<float> bias_grad_;
  AlignedFloats dense_delta_;
  AlignedFloats dense_grad_;
  RowSlots row_slots_;                 // the rows of a sparse step
  std::vector<float> sparse_grad_;     // slot x outputs
  std::vector<float> example_losses_;  // of the last Learn() or Evaluate()
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_LEARNER_H_
