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

}  // namespace

Learner::Learner(const ModelSpec& spec)
    : spec_(spec),
      num_features_(spec.num_features),
      outputs_(spec.num_outputs()),
      layout_(ParamLayout::For(spec.num_features + 1, spec.num_outputs(),
                               ParamArrays(spec))),
      array_floats_(layout_.array_floats()),
      // Padded: the dense kernels read past the end (dense_kernels.h).
      params_(layout_.floats() + kPadFloats, 0.0f),
      published_(std::make_shared<VersionedParams>(layout_)),
      touched_bits_((layout_.rows + 63) / 64, 0) {
  // FTRL's z and n and Adam's moments start at 0, like the weights.
  if (spec.optimizer.kind == OptimizerKind::kAdagrad) {
    std::fill(params_.begin() + array_floats_,
              params_.begin() + 2 * array_floats_,
              spec.optimizer.initial_accumulator);
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
                              touched_bits_.capacity() * sizeof(uint64_t) +
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
  const ContiguousWeights w{params_.data(), layout_.rows, outputs_,
                            layout_.block_shift};
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
  float* weights = array(0);
  float* s1 = layout_.arrays > 1 ? array(1) : nullptr;
  float* s2 = layout_.arrays > 2 ? array(2) : nullptr;
  // The state of the coordinates at `offset`.
  auto state = [](float* s, int64_t offset) {
    return s != nullptr ? s + offset : nullptr;
  };
  const int64_t bias_offset = num_features_ * k;
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
    finite &= ApplyStep(rule, spec_.l2, bias_offset, grad, weights, s1, s2);
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
        const int64_t ahead = int64_t{rows[r + kAhead]} * k;
        __builtin_prefetch(weights + ahead, 1);
        if (s1 != nullptr) __builtin_prefetch(s1 + ahead, 1);
        if (s2 != nullptr) __builtin_prefetch(s2 + ahead, 1);
      }
      const int64_t offset = int64_t{rows[r]} * k;
      Touch(rows[r]);
      finite &=
          ApplyStep(rule, spec_.l2, k, sparse_grad_.data() + r * k,
                    weights + offset, state(s1, offset), state(s2, offset));
    }
  }
  Touch(num_features_);
  finite &= ApplyStep(BiasRule(rule), 0.0f, k, bias_grad_.data(),
                      weights + bias_offset, state(s1, bias_offset),
                      state(s2, bias_offset));
  return finite;
}

void Learner::Load(absl::Span<const float> params) {
  MutexLock lock(&published_->writer_mu());
  TouchAll();
  CopyFloats(params_.data(), params.data(), layout_.floats());
  RegisterWorkingCopy();
}

void Learner::TouchFirst(int64_t row, uint64_t& word, uint64_t bit) {
  word |= bit;
  touched_rows_.push_back(static_cast<uint32_t>(row));
  if (layout_.whole_copies()) return;  // restored from last_commit_
  for (int32_t a = 0; a < layout_.arrays; ++a) {
    const float* v = array(a) + row * outputs_;
    for (int32_t o = 0; o < outputs_; ++o) before_.push_back(v[o]);
  }
}

void Learner::TouchAll() {
  if (all_touched_) return;
  if (!layout_.whole_copies()) {
    // Every row's value before: the working copy, with the rows already
    // changed put back.
    std::vector<float> before(params_.begin(),
                              params_.begin() + layout_.floats());
    const float* v = before_.data();
    for (const uint32_t row : touched_rows_) {
      for (int32_t a = 0; a < layout_.arrays; ++a, v += outputs_) {
        CopyFloats(before.data() + a * array_floats_ + int64_t{row} * outputs_,
                   v, outputs_);
      }
    }
    before_ = std::move(before);
  }
  all_touched_ = true;
}

void Learner::ClearTouched() {
  if (all_touched_) {
    std::fill(touched_bits_.begin(), touched_bits_.end(), 0);
  } else {
    for (const uint32_t row : touched_rows_) touched_bits_[row >> 6] = 0;
  }
  touched_rows_.clear();
  before_.clear();
  all_touched_ = false;
}

std::shared_ptr<const ParamsVersion> Learner::Commit(uint64_t version) {
  MutexLock lock(&published_->writer_mu());
  ParamDelta delta;
  if (!layout_.whole_copies()) {
    delta.all = all_touched_;
    delta.before = std::move(before_);
    if (delta.all) {
      delta.after.assign(params_.begin(), params_.begin() + array_floats_);
    } else {
      // The weights alone: versions are brought forward only by them.
      delta.rows = touched_rows_;
      delta.after.resize(touched_rows_.size() * outputs_);
      float* out = delta.after.data();
      const float* weights = array(0);
      constexpr size_t kAhead = 8;  // rows are scattered: fetch a few ahead
      for (size_t r = 0; r < touched_rows_.size(); ++r) {
        if (r + kAhead < touched_rows_.size()) {
          __builtin_prefetch(weights +
                             int64_t{touched_rows_[r + kAhead]} * outputs_);
        }
        CopyFloats(out, weights + int64_t{touched_rows_[r]} * outputs_,
                   outputs_);
        out += outputs_;
      }
    }
  }
  last_commit_ = published_->Commit(version, params(), std::move(delta));
  ClearTouched();
  RegisterWorkingCopy();
  return last_commit_;
}

void Learner::Restore() {
  if (last_commit_ == nullptr) return;  // nothing to go back to
  MutexLock lock(&published_->writer_mu());
  if (!layout_.whole_copies()) {
    if (all_touched_) {
      CopyFloats(params_.data(), before_.data(), layout_.floats());
    } else {
      const float* v = before_.data();
      for (const uint32_t row : touched_rows_) {
        for (int32_t a = 0; a < layout_.arrays; ++a) {
          float* dst = array(a) + int64_t{row} * outputs_;
          for (int32_t o = 0; o < outputs_; ++o) dst[o] = *v++;
        }
      }
    }
  } else {
    const ParamsPin committed = last_commit_->Read();
    if (all_touched_) {
      CopyFloats(params_.data(), committed.data(), layout_.floats());
    } else {
      for (const uint32_t row : touched_rows_) {
        for (int32_t a = 0; a < layout_.arrays; ++a) {
          const int64_t offset = a * array_floats_ + int64_t{row} * outputs_;
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
