#include "core/learning/learner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>

#include "core/learning/loss.h"
#include "core/learning/optimizer.h"
#include "core/util/copy.h"
#include "core/util/mutex.h"

namespace lepton {
namespace {

constexpr int64_t kScoreChunk = 256;

// Sum of squares in double, in index order (deterministic).
double SumOfSquares(const float* g, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double{g[i]} * g[i];
  return sum;
}

void Scale(float* g, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) g[i] *= scale;
}

// The factor that brings a gradient of squared norm `sum_sq` down to
// `max_norm` (> 0), or 1. A non-finite norm is left alone: the step then
// fails the finiteness check and the update is rejected, as without
// clipping.
float ClipScale(double sum_sq, float max_norm) {
  const double norm = std::sqrt(sum_sq);
  if (!std::isfinite(norm) || norm <= max_norm) return 1.0f;
  return static_cast<float>(max_norm / norm);
}

// The working copy's weights for the forward pass. In row order a row's
// weights are followed by its optimizer state, so a dense block is gathered
// into contiguous rows for the kernels (the same values, so the same sums).
struct WorkingWeights {
  const float* data;
  int64_t rows;
  int32_t outputs;
  int64_t row_floats;
  int block_shift;
  AlignedFloats* block;

  const float* row(int64_t r) const { return data + r * row_floats; }
  template <typename F>
  void ForEachBlock(F&& f) const {
    const int64_t block_rows = int64_t{1} << block_shift;
    for (int64_t first = 0; first < rows; first += block_rows) {
      const int64_t count = std::min(block_rows, rows - first);
      if (row_floats == outputs) {
        f(first, count, row(first));
        continue;
      }
      float* out = Reserve(*block, count * outputs);
      CopyRows(out, outputs, row(first), row_floats, count, outputs);
      f(first, count, static_cast<const float*>(out));
    }
  }
};

}  // namespace

Learner::Learner(const ModelSpec& spec)
    : spec_(spec),
      num_features_(spec.num_features),
      outputs_(spec.num_outputs()),
      layout_(ParamLayout::For(spec.num_features + 1, spec.num_outputs(),
                               ParamArrays(spec))),
      array_floats_(layout_.array_floats()),
      row_floats_(layout_.row_floats()),
      row_order_(!layout_.whole_copies()),
      row_stride_(row_order_ ? row_floats_ : outputs_),
      array_stride_(row_order_ ? outputs_ : array_floats_),
      // Padded: the dense kernels read past the end (dense_kernels.h).
      params_(layout_.floats() + kPadFloats, 0.0f),
      published_(std::make_shared<VersionedParams>(layout_)) {
  // FTRL's z and n and Adam's moments start at 0, like the weights.
  if (spec.optimizer.kind == OptimizerKind::kAdagrad) {
    for (int64_t r = 0; r < layout_.rows; ++r) {
      std::fill_n(row(r) + array_stride_, outputs_,
                  spec.optimizer.initial_accumulator);
    }
  }
  bias_grad_.resize(outputs_);
}

Learner::~Learner() {
  if (published_ == nullptr) return;  // moved from
  last_commit_.reset();
  published_->DetachWorkingCopy();
}

Learner& Learner::operator=(Learner&& other) noexcept {
  // The member-wise move, after this learner's versions are detached.
  if (this != &other) {
    this->~Learner();
    new (this) Learner(std::move(other));
  }
  return *this;
}

void Learner::RegisterWorkingCopy() {
  WorkingCopy working;
  working.params = params_.data();
  working.committed = last_commit_ != nullptr ? last_commit_->version() : 0;
  working.all_changed = all_touched_;
  working.rows = touched_rows_;
  working.before = before_;
  published_->SetWorkingCopy(working);
}

int64_t Learner::memory_bytes() const {
  return static_cast<int64_t>((params_.capacity() + z_.capacity() +
                               sparse_grad_.capacity() + dense_out_.capacity() +
                               dense_grad_.capacity() +
                               dense_delta_.capacity() + before_.capacity()) *
                                  sizeof(float) +
                              touched_rows_.capacity() * sizeof(uint32_t));
}

bool Learner::Learn(absl::Span<const ExampleView> examples, int32_t epochs,
                    float learning_rate, uint64_t* steps,
                    BatchMetrics* metrics) {
  MutexLock lock(&published_->writer_mu());
  const bool finite =
      LearnLocked(examples, epochs, learning_rate, steps, metrics);
  RegisterWorkingCopy();
  return finite;
}

bool Learner::LearnLocked(absl::Span<const ExampleView> examples,
                          int32_t epochs, float learning_rate, uint64_t* steps,
                          BatchMetrics* metrics) {
  FindDenseRows(examples);
  *metrics = Score(examples);
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t m = spec_.minibatch_size;
  // A batch scored in one chunk leaves its outputs, computed with the
  // weights the first step starts from, in z_: that step's forward pass.
  bool outputs_ready = n <= kScoreChunk;
  for (int32_t epoch = 0; epoch < epochs; ++epoch) {
    for (int64_t begin = 0; begin < n; begin += m) {
      if (!Step(examples, begin, std::min(m, n - begin), learning_rate, *steps,
                outputs_ready)) {
        return false;
      }
      outputs_ready = false;
      ++*steps;
    }
  }
  return true;
}

void Learner::FindDenseRows(absl::Span<const ExampleView> examples) {
  const int64_t n = static_cast<int64_t>(examples.size());
  dense_before_.resize(n + 1);
  dense_rows_.clear();
  for (int64_t i = 0; i < n; ++i) {
    dense_before_[i] = static_cast<int64_t>(dense_rows_.size());
    if (examples[i].features.is_dense()) {
      dense_rows_.push_back(examples[i].features.dense.data());
    }
  }
  dense_before_[n] = static_cast<int64_t>(dense_rows_.size());
}

DenseRows Learner::DenseRange(int64_t begin, int64_t count) const {
  const int64_t first = dense_before_[begin];
  return DenseRows{dense_rows_.data() + first,
                   dense_before_[begin + count] - first};
}

void Learner::Forward(absl::Span<const ExampleView> examples, int64_t begin,
                      int64_t count) {
  const WorkingWeights w{params_.data(), layout_.rows,        outputs_,
                         row_stride_,    layout_.block_shift, &weight_block_};
  z_.resize(count * outputs_);
  SparseOutputs(
      w, num_features_, outputs_, count,
      [&](int64_t i) -> const FeaturesView& {
        return examples[begin + i].features;
      },
      &dense_index_, z_.data());
  AddDenseOutputs(w, num_features_, outputs_, DenseRange(begin, count),
                  dense_index_, &dense_out_, z_.data());
}

BatchMetrics Learner::Evaluate(absl::Span<const ExampleView> examples) {
  FindDenseRows(examples);
  return Score(examples);
}

BatchMetrics Learner::Score(absl::Span<const ExampleView> examples) {
  BatchMetrics m;
  const int64_t n = static_cast<int64_t>(examples.size());
  example_losses_.resize(n);
  for (int64_t begin = 0; begin < n; begin += kScoreChunk) {
    const int64_t count = std::min(kScoreChunk, n - begin);
    Forward(examples, begin, count);
    for (int64_t i = 0; i < count; ++i) {
      const ExampleView& e = examples[begin + i];
      // A delayed label is scored by what was served for it, possibly by an
      // older version: the loss the client actually incurred.
      const float* z = e.served_outputs.empty() ? z_.data() + i * outputs_
                                                : e.served_outputs.data();
      const ExampleLoss l =
          ComputeLoss(spec_.type, z, outputs_, e.label, nullptr);
      // A squared loss can pass the float range (a label near its end):
      // saturated, so that the drift detector and the challenger, which
      // keep these, stay finite and the model's state can be checkpointed.
      example_losses_[begin + i] = static_cast<float>(
          std::min(l.loss, double{std::numeric_limits<float>::max()}));
      m.weight += e.weight;
      m.loss_sum += e.weight * l.loss;
      if (l.correct) m.correct_weight += e.weight;
    }
  }
  return m;
}

bool Learner::Step(absl::Span<const ExampleView> examples, int64_t begin,
                   int64_t n, float learning_rate, uint64_t t,
                   bool outputs_ready) {
  const absl::Span<const ExampleView> batch = examples.subspan(begin, n);
  const int32_t k = outputs_;
  if (outputs_ready) {
    // z_ and dense_index_ hold examples[0, >= n): keep the first n.
    z_.resize(n * k);
    while (!dense_index_.empty() && dense_index_.back() >= n) {
      dense_index_.pop_back();
    }
  } else {
    Forward(examples, begin, n);
  }

  // z_ becomes the scaled output gradient: weight_i / n * d loss_i / d z_i.
  std::fill(bias_grad_.begin(), bias_grad_.end(), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    float* zi = z_.data() + i * k;
    ComputeLoss(spec_.type, zi, k, batch[i].label, zi);
    const float scale = batch[i].weight / static_cast<float>(n);
    for (int32_t o = 0; o < k; ++o) {
      zi[o] *= scale;
      bias_grad_[o] += zi[o];
    }
  }

  StepRule rule = RuleForStep(spec_.optimizer, learning_rate, t);
  rule.max_step = spec_.max_step;
  const int64_t bias_offset = num_features_ * k;
  const int32_t arrays = layout_.arrays;
  // One row's step: its weights, and its state array_stride_ apart.
  auto step_row = [&](const StepRule& row_rule, float l2, int64_t r,
                      const float* g) {
    float* w = row(r);
    return ApplyStep(row_rule, l2, k, g, w,
                     arrays > 1 ? w + array_stride_ : nullptr,
                     arrays > 2 ? w + 2 * array_stride_ : nullptr);
  };
  const float max_norm = spec_.max_gradient_norm;
  bool finite = true;

  const int64_t nd = static_cast<int64_t>(dense_index_.size());
  if (nd > 0) {
    // A dense example touches every weight: one full-matrix step.
    float* delta = Reserve(dense_delta_, nd * k);
    for (int64_t r = 0; r < nd; ++r) {
      CopyFloats(delta + r * k, z_.data() + dense_index_[r] * k, k);
    }
    float* grad = Reserve(dense_grad_, num_features_ * k);
    SetWeightsGradient(DenseRange(begin, n).rows, nd, delta, num_features_, k,
                       grad);
    for (int64_t i = 0; i < n; ++i) {
      const FeaturesView& f = batch[i].features;
      const float* dz = z_.data() + i * k;
      for (size_t j = 0; j < f.indices.size(); ++j) {
        float* g = grad + int64_t{f.indices[j]} * k;
        for (int32_t o = 0; o < k; ++o) g[o] += f.values[j] * dz[o];
      }
    }
    if (max_norm > 0) {  // the norm costs a pass: only when asked for
      const float clip = ClipScale(
          SumOfSquares(grad, bias_offset) + SumOfSquares(bias_grad_.data(), k),
          max_norm);
      if (clip != 1.0f) {
        Scale(grad, bias_offset, clip);
        Scale(bias_grad_.data(), k, clip);
      }
    }
    TouchAll();
    float* w = row(0);
    float* s1 = arrays > 1 ? w + array_stride_ : nullptr;
    float* s2 = arrays > 2 ? w + 2 * array_stride_ : nullptr;
    if (row_stride_ == k) {  // each array is contiguous
      finite &= ApplyStep(rule, spec_.l2, bias_offset, grad, w, s1, s2);
    } else {
      finite &= ApplyStepToRows(rule, spec_.l2, num_features_, k, row_stride_,
                                grad, w, s1, s2);
    }
  } else {
    // Sparse only: gather the gradient of the named rows, in first-touch
    // order, and step those rows alone.
    row_slots_.Clear();
    sparse_grad_.clear();
    for (int64_t i = 0; i < n; ++i) {
      const FeaturesView& f = batch[i].features;
      const float* dz = z_.data() + i * k;
      for (size_t j = 0; j < f.indices.size(); ++j) {
        const int64_t slot = row_slots_.Slot(f.indices[j]);
        if (slot * k == static_cast<int64_t>(sparse_grad_.size())) {
          sparse_grad_.resize(sparse_grad_.size() + k, 0.0f);
        }
        float* g = sparse_grad_.data() + slot * k;
        for (int32_t o = 0; o < k; ++o) g[o] += f.values[j] * dz[o];
      }
    }
    if (max_norm > 0) {
      const int64_t touched = static_cast<int64_t>(sparse_grad_.size());
      const float clip = ClipScale(SumOfSquares(sparse_grad_.data(), touched) +
                                       SumOfSquares(bias_grad_.data(), k),
                                   max_norm);
      if (clip != 1.0f) {
        Scale(sparse_grad_.data(), touched, clip);
        Scale(bias_grad_.data(), k, clip);
      }
    }
    const std::vector<uint32_t>& rows = row_slots_.rows();
    constexpr size_t kAhead = 8;  // rows are scattered: fetch a few ahead
    for (size_t r = 0; r < rows.size(); ++r) {
      if (r + kAhead < rows.size()) {
        __builtin_prefetch(row(rows[r + kAhead]), 1);
      }
      Touch(rows[r]);
      finite &= step_row(rule, spec_.l2, rows[r], sparse_grad_.data() + r * k);
    }
  }
  Touch(num_features_);
  finite &= step_row(BiasRule(rule), 0.0f, num_features_, bias_grad_.data());
  return finite;
}

std::vector<float> Learner::params() const {
  if (!row_order_) {
    return std::vector<float>(params_.begin(),
                              params_.begin() + layout_.floats());
  }
  std::vector<float> all(layout_.floats());
  ToArrayOrder(layout_, params_.data(), 0, layout_.arrays, all.data());
  return all;
}

void Learner::Load(absl::Span<const float> params) {
  MutexLock lock(&published_->writer_mu());
  TouchAll();
  if (row_order_) {
    ToRowOrder(layout_, params.data(), params_.data());
  } else {
    CopyFloats(params_.data(), params.data(), layout_.floats());
  }
  RegisterWorkingCopy();
}

void Learner::TouchAll() {
  if (all_touched_) return;
  if (row_order_) {
    // Every row's value before, in array order: the working copy, with the
    // rows noted put back (first notes last).
    std::vector<float> before = params();
    for (size_t i = touched_rows_.size(); i-- > 0;) {
      const float* v = before_.data() + i * row_floats_;
      for (int32_t a = 0; a < layout_.arrays; ++a, v += outputs_) {
        CopyRowFloats(before.data() + a * array_floats_ +
                          int64_t{touched_rows_[i]} * outputs_,
                      v, outputs_);
      }
    }
    before_ = std::move(before);
  }
  all_touched_ = true;
}

void Learner::ClearTouched() {
  touched_rows_.clear();
  before_.clear();
  all_touched_ = false;
}

std::shared_ptr<const ParamsVersion> Learner::Commit(uint64_t version) {
  MutexLock lock(&published_->writer_mu());
  ParamDelta delta;
  if (row_order_) {
    delta.all = all_touched_;
    delta.before = std::move(before_);
    // The weights alone: versions are brought forward only by them.
    if (delta.all) {
      delta.after.resize(array_floats_);
      ToArrayOrder(layout_, params_.data(), 0, 1, delta.after.data());
    } else {
      delta.rows = touched_rows_;
      delta.after.resize(touched_rows_.size() * outputs_);
      float* out = delta.after.data();
      constexpr size_t kAhead = 8;  // rows are scattered: fetch a few ahead
      for (size_t r = 0; r < touched_rows_.size(); ++r) {
        if (r + kAhead < touched_rows_.size()) {
          __builtin_prefetch(row(touched_rows_[r + kAhead]));
        }
        CopyRowFloats(out, row(touched_rows_[r]), outputs_);
        out += outputs_;
      }
    }
  }
  // A whole copy is of the working copy (array order); a delta carries its
  // own values.
  last_commit_ = published_->Commit(
      version, absl::MakeConstSpan(params_.data(), layout_.floats()),
      std::move(delta));
  ClearTouched();
  RegisterWorkingCopy();
  return last_commit_;
}

void Learner::Restore() {
  if (last_commit_ == nullptr) return;  // nothing to go back to
  MutexLock lock(&published_->writer_mu());
  if (row_order_) {
    if (all_touched_) {
      ToRowOrder(layout_, before_.data(), params_.data());
    } else {
      for (size_t i = touched_rows_.size(); i-- > 0;) {  // first notes last
        CopyRowFloats(row(touched_rows_[i]), before_.data() + i * row_floats_,
                      row_floats_);
      }
    }
  } else {  // array order, like the committed copy
    const ParamsPin committed = last_commit_->Read();
    if (all_touched_) {
      CopyFloats(params_.data(), committed.data(), layout_.floats());
    } else {
      for (const uint32_t r : touched_rows_) {
        for (int32_t a = 0; a < layout_.arrays; ++a) {
          const int64_t offset = a * array_floats_ + int64_t{r} * outputs_;
          CopyFloats(params_.data() + offset, committed.data() + offset,
                     outputs_);
        }
      }
    }
  }
  ClearTouched();
  RegisterWorkingCopy();
}

}  // namespace lepton
