// Learner: the writer side of one model. It keeps a contiguous, mutable copy
// of the newest version's parameters, applies updates to it, and tells the
// model which pages changed so that only those are published.
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
// Thread safety: none; the owning Model calls it under its update lock.
#ifndef LEPTON_CORE_LEARNING_LEARNER_H_
#define LEPTON_CORE_LEARNING_LEARNER_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/page_arena.h"
#include "core/learning/scoring.h"

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
  Learner(Learner&&) = default;
  Learner& operator=(Learner&&) = default;

  const PageLayout& layout() const { return layout_; }
  // Bytes of the working copy and scratch buffers.
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
  // metrics multiply by the example's weight). Valid until the next call.
  absl::Span<const float> example_losses() const { return example_losses_; }
  // Scores `examples` (validated) with the current weights; changes nothing.
  BatchMetrics Evaluate(absl::Span<const ExampleView> examples);

  // Replaces the working copy with `params` (the layout of ModelState::params)
  // and marks every page dirty. `params` must have the spec's size.
  void Load(absl::Span<const float> params);
  // The working copy in ModelState::params layout.
  absl::Span<const float> params() const {
    return absl::MakeConstSpan(params_.data(), layout_.arrays * array_floats_);
  }

  // Pages changed since the last ClearDirty(), each once.
  absl::Span<const int64_t> dirty_pages() const { return dirty_list_; }
  void ClearDirty();
  // Writes page p of the working copy in the arena's page format.
  void FillPage(int64_t p, float* dst) const;
  // Copies the dirty pages back from `table` (the newest published version)
  // and clears the dirty set: undoes everything since the last ClearDirty().
  void Restore(const ParamTable& table);

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
  void MarkRowDirty(int64_t row);
  void MarkAllDirty();
  float* array(int a) { return params_.data() + a * array_floats_; }

  // Not const, so that a learner can be replaced by one of a grown spec
  // (Model::AddClasses move-assigns a new one).
  ModelSpec spec_;
  int64_t num_features_;
  int32_t outputs_;
  PageLayout layout_;
  int64_t array_floats_;  // rows * outputs
  // arrays x rows x outputs: the weights, then the optimizer's state arrays
  // (ParamArrays, model_spec.h).
  AlignedFloats params_;

  std::vector<uint8_t> page_dirty_;
  std::vector<int64_t> dirty_list_;
  bool all_dirty_ = false;

  // Scratch, kept between calls to avoid reallocation.
  std::vector<const float*> dense_rows_;  // the batch's dense examples
  std::vector<int64_t> dense_before_;     // [i]: dense examples before i
  std::vector<int64_t> dense_index_;
  AlignedFloats dense_out_;
  AlignedFloats z_;  // outputs, then d loss / d outputs
  std::vector<float> bias_grad_;
  AlignedFloats dense_delta_;
  AlignedFloats dense_grad_;
  absl::flat_hash_map<uint32_t, uint32_t> sparse_slot_;  // row -> slot
  std::vector<uint32_t> sparse_rows_;                    // first-touch order
  std::vector<float> sparse_grad_;                       // slot x outputs
  std::vector<float> example_losses_;  // of the last Learn() or Evaluate()
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_LEARNER_H_
