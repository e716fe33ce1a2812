#include "core/learning/versioned_params.h"

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <utility>

#include "core/util/copy.h"

namespace lepton {
namespace {

int64_t BufferBytes(const AlignedFloats& b) {
  return static_cast<int64_t>(b.capacity() * sizeof(float));
}

// A whole parameter set with the dense kernels' padding (zero, never used).
std::shared_ptr<AlignedFloats> NewCopy(absl::Span<const float> params) {
  auto copy = std::make_shared<AlignedFloats>(params.size() + kPadFloats, 0.0f);
  CopyFloats(copy->data(), params.data(), static_cast<int64_t>(params.size()));
  return copy;
}

}  // namespace

int64_t ParamDelta::bytes() const {
  return static_cast<int64_t>(rows.capacity() * sizeof(uint32_t) +
                              (before.capacity() + after.capacity()) *
                                  sizeof(float));
}

ParamsPin& ParamsPin::operator=(ParamsPin&& other) noexcept {
  if (this != &other) {
    Unpin();
    data_ = std::exchange(other.data_, nullptr);
    held_ = std::move(other.held_);
    readers_ = std::exchange(other.readers_, nullptr);
  }
  return *this;
}

void ParamsPin::Unpin() {
  if (readers_ != nullptr) readers_->fetch_sub(1);
  readers_ = nullptr;
  held_.reset();
  data_ = nullptr;
}

ParamsVersion::ParamsVersion(std::shared_ptr<VersionedParams> owner,
                             uint64_t version,
                             std::shared_ptr<const AlignedFloats> whole)
    : owner_(std::move(owner)), version_(version), whole_(std::move(whole)) {}

ParamsVersion::~ParamsVersion() {
  owner_->Release(version_, whole_ != nullptr ? BufferBytes(*whole_) : 0);
}

const ParamLayout& ParamsVersion::layout() const { return owner_->layout(); }

ParamsPin ParamsVersion::ReadIfLive() const {
  if (whole_ != nullptr) {
    ParamsPin pin;
    pin.data_ = whole_->data();
    pin.held_ = whole_;
    return pin;
  }
  return owner_->PinLive(version_);
}

std::vector<float> ParamsVersion::CopyAll() const {
  if (whole_ != nullptr) {
    return std::vector<float>(whole_->begin(),
                              whole_->begin() + layout().floats());
  }
  return owner_->CopyAll(version_);
}

ParamsPin ParamsVersion::Read() const {
  ParamsPin pin = ReadIfLive();
  if (pin) return pin;
  return owner_->Rebuild(version_);
}

void ParamsVersion::Show() const {
  if (whole_ == nullptr) owner_->Show(version_);
}

VersionedParams::VersionedParams(const ParamLayout& layout) : layout_(layout) {}

std::shared_ptr<const ParamsVersion> VersionedParams::Commit(
    uint64_t version, absl::Span<const float> params, ParamDelta delta) {
  if (layout_.whole_copies()) {
    std::shared_ptr<AlignedFloats> whole = NewCopy(params);
    bytes_.fetch_add(BufferBytes(*whole), std::memory_order_relaxed);
    return std::make_shared<const ParamsVersion>(shared_from_this(), version,
                                                 std::move(whole));
  }
  {
    MutexLock lock(&mu_);
    if (version <= committed_ || (committed_ == 0 && !delta.all)) std::abort();
    committed_ = version;
    held_.insert(version);
    bytes_.fetch_add(delta.bytes(), std::memory_order_relaxed);
    deltas_[version] = std::make_shared<const ParamDelta>(std::move(delta));
  }
  return std::make_shared<const ParamsVersion>(shared_from_this(), version,
                                               nullptr);
}

ParamsPin VersionedParams::PinLive(uint64_t version) const {
  const int front = front_.load();
  for (const int i : {front, 1 - front}) {
    readers_[i].fetch_add(1);
    // Show sets readable_ to 0 before it waits for the count to drop, so
    // either it sees this reader or this reader sees the 0.
    if (readable_[i].load() == version) {
      ParamsPin pin;
      pin.data_ = copy_[i].data();
      pin.readers_ = &readers_[i];
      return pin;
    }
    readers_[i].fetch_sub(1);
  }
  return ParamsPin();
}

ParamsPin VersionedParams::Rebuild(uint64_t version) const {
  MutexLock lock(&mu_);
  std::shared_ptr<const AlignedFloats>& rebuilt = rebuilt_[version];
  if (rebuilt == nullptr) {
    // Show cannot run meanwhile (mu_), so the front copy holds still.
    const int front = front_.load();
    const uint64_t base = copy_version_[front];
    auto copy = std::make_shared<AlignedFloats>(
        layout_.array_floats() + kPadFloats, 0.0f);
    if (base > 0) {
      CopyFloats(copy->data(), copy_[front].data(), layout_.array_floats());
    }
    Replay(base, version, 0, 1, copy->data());
    bytes_.fetch_add(BufferBytes(*copy), std::memory_order_relaxed);
    rebuilt = std::move(copy);
  }
  ParamsPin pin;
  pin.data_ = rebuilt->data();
  pin.held_ = rebuilt;
  return pin;
}

std::vector<float> VersionedParams::CopyAll(uint64_t version) const {
  std::vector<float> all(layout_.floats(), 0.0f);
  float* state = all.data() + layout_.array_floats();
  uint64_t state_version = 0;
  if (layout_.arrays > 1) {
    MutexLock lock(&writer_mu_);
    state_version = CopyCommittedState(state);
  }
  MutexLock lock(&mu_);
  const int front = front_.load();
  const uint64_t base = copy_version_[front];
  if (base > 0) {
    CopyFloats(all.data(), copy_[front].data(), layout_.array_floats());
  }
  Replay(base, version, 0, 1, all.data());
  // The writer's newest commit is at or above `version`, whose deltas stay
  // while it is held: take them back.
  if (layout_.arrays > 1) {
    Replay(state_version, version, 1, layout_.arrays, state);
  }
  return all;
}

uint64_t VersionedParams::CopyCommittedState(float* dst) const {
  const int64_t state_floats = layout_.floats() - layout_.array_floats();
  if (working_.params == nullptr) {
    if (detached_version_ == 0) std::abort();  // nothing was ever committed
    CopyFloats(dst, detached_state_.data(), state_floats);
    return detached_version_;
  }
  const int64_t array_floats = layout_.array_floats();
  if (working_.all_changed) {
    CopyFloats(dst, working_.before.data() + array_floats, state_floats);
    return working_.committed;
  }
  ToArrayOrder(layout_, working_.params, 1, layout_.arrays, dst);
  const int64_t k = layout_.outputs;
  const int64_t row_floats = layout_.row_floats();
  for (size_t i = working_.rows.size(); i-- > 0;) {  // first notes last
    const float* v = working_.before.data() + i * row_floats + k;
    for (int a = 1; a < layout_.arrays; ++a, v += k) {
      CopyRowFloats(
          dst + (a - 1) * array_floats + int64_t{working_.rows[i]} * k, v, k);
    }
  }
  return working_.committed;
}

void VersionedParams::SetWorkingCopy(const WorkingCopy& working) {
  working_ = working;
}

void VersionedParams::DetachWorkingCopy() {
  MutexLock writer(&writer_mu_);
  if (working_.params == nullptr) return;
  bool held;
  {
    MutexLock lock(&mu_);
    held = !held_.empty();
  }
  if (held && layout_.arrays > 1 && working_.committed > 0) {
    detached_state_.resize(layout_.floats() - layout_.array_floats());
    detached_version_ = CopyCommittedState(detached_state_.data());
    bytes_.fetch_add(
        static_cast<int64_t>(detached_state_.capacity() * sizeof(float)),
        std::memory_order_relaxed);
  }
  working_ = WorkingCopy();
}

void VersionedParams::Show(uint64_t version) {
  MutexLock lock(&mu_);
  if (version <= shown_) return;
  if (copy_[0].empty()) {
    for (AlignedFloats& copy : copy_) {
      copy.assign(layout_.array_floats() + kPadFloats, 0.0f);
      bytes_.fetch_add(BufferBytes(copy), std::memory_order_relaxed);
    }
  }
  const int back = 1 - front_.load();
  readable_[back].store(0);
  // Readers pin for the length of one read; wait for them to leave.
  while (readers_[back].load() != 0) std::this_thread::yield();
  Replay(copy_version_[back], version, 0, 1, copy_[back].data());
  copy_version_[back] = version;
  readable_[back].store(version);
  front_.store(back);
  shown_ = version;
  Prune();
}

void VersionedParams::Release(uint64_t version, int64_t whole_bytes) {
  if (whole_bytes > 0) {
    bytes_.fetch_sub(whole_bytes, std::memory_order_relaxed);
    return;
  }
  MutexLock lock(&mu_);
  held_.erase(version);
  if (auto it = rebuilt_.find(version); it != rebuilt_.end()) {
    if (it->second != nullptr) {
      bytes_.fetch_sub(BufferBytes(*it->second), std::memory_order_relaxed);
    }
    rebuilt_.erase(it);
  }
  Prune();
}

void VersionedParams::Replay(uint64_t from, uint64_t to, int first_array,
                             int end_array, float* dst) const {
  const int64_t k = layout_.outputs;
  const int64_t array_floats = layout_.array_floats();
  const bool forward = from < to;
  if (forward && (first_array != 0 || end_array != 1)) std::abort();
  // Values per row in the delta, and the first one to copy.
  const int64_t stride = forward ? k : layout_.row_floats();
  const int64_t skip = first_array * k;
  auto apply = [&](const ParamDelta& d) {
    const std::vector<float>& values = forward ? d.after : d.before;
    if (d.all) {
      CopyFloats(dst, values.data() + first_array * array_floats,
                 (end_array - first_array) * array_floats);
      return;
    }
    // Backwards, a row's first note (its values before) must land last.
    const int64_t n = static_cast<int64_t>(d.rows.size());
    const int64_t dir = forward ? 1 : -1;
    constexpr int64_t kAhead = 8;  // rows are scattered: fetch a few ahead
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = forward ? i : n - 1 - i;
      if (i + kAhead < n) {
        const int64_t ahead = int64_t{d.rows[r + dir * kAhead]} * k;
        for (int a = first_array; a < end_array; ++a) {
          __builtin_prefetch(dst + (a - first_array) * array_floats + ahead, 1);
        }
      }
      const float* v = values.data() + r * stride + skip;
      for (int a = first_array; a < end_array; ++a) {
        float* out =
            dst + (a - first_array) * array_floats + int64_t{d.rows[r]} * k;
        for (int64_t o = 0; o < k; ++o) out[o] = *v++;
      }
    }
  };
  if (forward) {
    for (auto it = deltas_.upper_bound(from);
         it != deltas_.end() && it->first <= to; ++it) {
      apply(*it->second);
    }
  } else {
    for (auto it = deltas_.upper_bound(from); it != deltas_.begin();) {
      --it;
      if (it->first <= to) break;
      apply(*it->second);
    }
  }
}

void VersionedParams::Prune() {
  // A copy at version c needs the deltas above c; a held version h needs
  // those above h (between h and the front copy, and h and the writer).
  uint64_t keep_above = std::min(copy_version_[0], copy_version_[1]);
  if (!held_.empty()) keep_above = std::min(keep_above, *held_.begin());
  while (!deltas_.empty() && deltas_.begin()->first <= keep_above) {
    bytes_.fetch_sub(deltas_.begin()->second->bytes(),
                     std::memory_order_relaxed);
    deltas_.erase(deltas_.begin());
  }
}

}  // namespace lepton
