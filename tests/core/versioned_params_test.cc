// Tests of the published side of a model's parameters
// (core/learning/versioned_params.h) and of the layout (param_layout.h): whole
// copies for small models; for large ones, deltas, the two live copies, rebuilt
// versions in every order of showing and releasing, memory, and readers
// racing the writer (run under TSan too).
#include "core/learning/versioned_params.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "core/learning/param_layout.h"
#include "core/util/mutex.h"

namespace lepton {
namespace {

// ---------------------------------------------------------------- ParamLayout

TEST(ParamLayoutTest, SmallModelsAreOneBlockAndWholeCopies) {
  const ParamLayout mnist = ParamLayout::For(785, 10, 2);
  EXPECT_TRUE(mnist.whole_copies());
  EXPECT_GE(mnist.block_rows(), 785);
  EXPECT_LT(mnist.block_rows(), 2 * 785);
  EXPECT_EQ(mnist.floats(), 785 * 10 * 2);
  EXPECT_EQ(mnist.row_floats(), 20);

  const ParamLayout edge = ParamLayout::For(int64_t{1} << 16, 1, 1);
  EXPECT_TRUE(edge.whole_copies());
  EXPECT_FALSE(ParamLayout::For((int64_t{1} << 16) + 1, 1, 1).whole_copies());
}

TEST(ParamLayoutTest, LargeModelsSumInSmallBlocks) {
  // One output a row: 64 rows a block.
  EXPECT_EQ(ParamLayout::For((int64_t{1} << 16) + 1, 1, 1).block_rows(), 64);
  // 20 floats a row: 8 rows (160 floats) a block.
  EXPECT_EQ(ParamLayout::For(100001, 10, 2).block_rows(), 8);
  // Rows wider than the target: one row a block.
  EXPECT_EQ(ParamLayout::For(1000, 1000, 2).block_rows(), 1);
}

// ------------------------------------------------------------ VersionedParams

// A writer that drives a VersionedParams the way a Learner does: a working
// copy, changes tracked per row, and a reference copy of every version.
class Writer {
 public:
  explicit Writer(const ParamLayout& layout)
      : layout_(layout),
        params_(std::make_shared<VersionedParams>(layout)),
        working_(layout.floats(), 0.0f) {}

  VersionedParams& params() { return *params_; }
  const ParamLayout& layout() const { return layout_; }

  // Sets rows `rows` (every array, every output) to values drawn from the
  // version number, and commits `version`.
  std::shared_ptr<const ParamsVersion> Commit(uint64_t version,
                                              const std::vector<uint32_t>& rows,
                                              bool all = false) {
    MutexLock lock(&params_->writer_mu());
    ParamDelta delta;
    delta.all = all || first_;
    if (delta.all) {
      if (!first_) delta.before = working_;
      for (size_t i = 0; i < working_.size(); ++i) {
        working_[i] = Value(version, static_cast<int64_t>(i));
      }
      delta.after.assign(working_.begin(),
                         working_.begin() + layout_.array_floats());
    } else {
      delta.rows = rows;
      for (const uint32_t row : rows) {
        for (int32_t a = 0; a < layout_.arrays; ++a) {
          for (int32_t o = 0; o < layout_.outputs; ++o) {
            const int64_t i = Index(a, row, o);
            delta.before.push_back(working_[i]);
            working_[i] = Value(version, i);
            if (a == 0) delta.after.push_back(working_[i]);  // weights only
          }
        }
      }
    }
    first_ = false;
    reference_[version] = working_;
    std::shared_ptr<const ParamsVersion> committed =
        params_->Commit(version, working_, std::move(delta));
    WorkingCopy registered;
    registered.committed = version;
    Register(registered);
    return committed;
  }

  // Changes rows `rows` of the working copy without committing them, as a
  // learner does during an update (every row if `all`). A row listed again
  // is noted with its changed values, as a learner's later step notes it.
  void ChangeUncommitted(const std::vector<uint32_t>& rows, bool all = false) {
    MutexLock lock(&params_->writer_mu());
    const std::vector<float>& committed = reference_.rbegin()->second;
    before_.clear();
    if (all) before_ = committed;
    std::set<uint32_t> noted;
    for (const uint32_t row : rows) {
      const bool again = !noted.insert(row).second;
      for (int32_t a = 0; a < layout_.arrays; ++a) {
        for (int32_t o = 0; o < layout_.outputs; ++o) {
          const float c = committed[Index(a, row, o)];
          before_.push_back(again ? -c - 1 : c);
        }
      }
    }
    for (size_t i = 0; i < working_.size(); ++i)
      working_[i] = -committed[i] - 1;
    uncommitted_ = rows;
    WorkingCopy registered;
    registered.committed = reference_.rbegin()->first;
    registered.all_changed = all;
    registered.rows = uncommitted_;
    registered.before = before_;
    Register(registered);
  }
  // The writer goes away, its working copy with it.
  void Detach() {
    params_->DetachWorkingCopy();
    std::fill(working_.begin(), working_.end(), -1.0f);
    std::fill(row_order_.begin(), row_order_.end(), -1.0f);
  }

  // True if `pin` holds exactly version `version`'s weights (every array,
  // for small models).
  bool Holds(const ParamsPin& pin, uint64_t version) const {
    const std::vector<float>& want = reference_.at(version);
    const int64_t n =
        layout_.whole_copies() ? layout_.floats() : layout_.array_floats();
    for (int64_t i = 0; i < n; ++i) {
      if (pin.data()[i] != want[i]) return false;
    }
    return true;
  }
  // True if `all` is exactly version `version`'s parameters.
  bool HoldsAll(const std::vector<float>& all, uint64_t version) const {
    return all == reference_.at(version);
  }
  // Reads `held` both ways: its weights (Read) and every parameter (CopyAll).
  void ExpectReadsBack(const ParamsVersion& held) const {
    ParamsPin pin = held.Read();
    ASSERT_TRUE(pin);
    EXPECT_TRUE(Holds(pin, held.version())) << held.version();
    EXPECT_TRUE(HoldsAll(held.CopyAll(), held.version())) << held.version();
  }

  int64_t Index(int32_t a, int64_t row, int32_t o) const {
    return a * layout_.array_floats() + row * layout_.outputs + o;
  }
  static float Value(uint64_t version, int64_t i) {
    return static_cast<float>(version * 1000003 + i % 1000003);
  }

 private:
  // Registers the working copy, which a learner keeps in row order.
  void Register(WorkingCopy& registered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(params_->writer_mu()) {
    row_order_.resize(working_.size());
    ToRowOrder(layout_, working_.data(), row_order_.data());
    registered.params = row_order_.data();
    params_->SetWorkingCopy(registered);
  }

  const ParamLayout layout_;
  std::shared_ptr<VersionedParams> params_;
  std::vector<float> working_;  // in array order
  std::vector<float> row_order_;
  std::vector<uint32_t> uncommitted_;
  std::vector<float> before_;
  std::map<uint64_t, std::vector<float>> reference_;
  bool first_ = true;
};

std::vector<uint32_t> RandomRows(std::mt19937& rng, int64_t rows, int count) {
  std::vector<uint32_t> out;
  std::vector<bool> seen(rows, false);
  std::uniform_int_distribution<int64_t> pick(0, rows - 1);
  while (static_cast<int>(out.size()) < count) {
    const int64_t r = pick(rng);
    if (!seen[r]) {
      seen[r] = true;
      out.push_back(static_cast<uint32_t>(r));
    }
  }
  return out;
}

const ParamLayout kLarge = ParamLayout::For(100001, 1, 2);

TEST(VersionedParamsTest, SmallModelsKeepAWholeCopyPerVersion) {
  Writer w(ParamLayout::For(101, 3, 2));
  auto v1 = w.Commit(1, {});
  auto v2 = w.Commit(2, {5, 100});
  // Whole copies need no showing and are always live.
  ParamsPin p1 = v1->ReadIfLive();
  ParamsPin p2 = v2->ReadIfLive();
  ASSERT_TRUE(p1);
  ASSERT_TRUE(p2);
  EXPECT_TRUE(w.Holds(p1, 1));
  EXPECT_TRUE(w.Holds(p2, 2));
  const int64_t copy = 101 * 3 * 2 * int64_t{sizeof(float)};
  EXPECT_GE(w.params().memory_bytes(), 2 * copy);
  p1 = ParamsPin();
  v1.reset();
  EXPECT_LT(w.params().memory_bytes(), 2 * copy);
}

TEST(VersionedParamsTest, TheShownVersionAndThePreviousOneAreLive) {
  Writer w(kLarge);
  std::mt19937 rng(1);
  auto v1 = w.Commit(1, {});
  v1->Show();
  auto v2 = w.Commit(2, RandomRows(rng, kLarge.rows, 50));
  // Committed, not shown: not live, but readable (rebuilt forward).
  EXPECT_FALSE(v2->ReadIfLive());
  {
    ParamsPin p1 = v1->ReadIfLive();
    ASSERT_TRUE(p1);
    EXPECT_TRUE(w.Holds(p1, 1));
  }
  v2->Show();
  auto v3 = w.Commit(3, RandomRows(rng, kLarge.rows, 50));
  v3->Show();
  ParamsPin p3 = v3->ReadIfLive();
  ParamsPin p2 = v2->ReadIfLive();
  ASSERT_TRUE(p3);
  ASSERT_TRUE(p2);
  EXPECT_TRUE(w.Holds(p3, 3));
  EXPECT_TRUE(w.Holds(p2, 2));
  // Version 1's copy now holds 3: version 1 is rebuilt from it.
  EXPECT_FALSE(v1->ReadIfLive());
  ParamsPin p1 = v1->Read();
  EXPECT_TRUE(w.Holds(p1, 1));
}

TEST(VersionedParamsTest, EveryHeldVersionReadsExactlyWhatWasCommitted) {
  Writer w(kLarge);
  std::mt19937 rng(7);
  std::vector<std::shared_ptr<const ParamsVersion>> held;
  held.push_back(w.Commit(1, {}));
  held.back()->Show();
  for (uint64_t v = 2; v <= 30; ++v) {
    // Mostly sparse versions, some of every row (a dense step, a Load).
    held.push_back(v % 11 == 0
                       ? w.Commit(v, {}, /*all=*/true)
                       : w.Commit(v, RandomRows(rng, kLarge.rows, 200)));
    // Shown late and in bursts, as a store that waits for fsyncs does.
    if (v % 3 == 0) held.back()->Show();
  }
  // Read in a scrambled order, each twice (the second from the rebuilt copy).
  std::vector<size_t> order(held.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (int pass = 0; pass < 2; ++pass) {
    // The optimizer state too, which lags the weights between reads.
    for (const size_t i : order) w.ExpectReadsBack(*held[i]);
  }
}

TEST(VersionedParamsTest, ARowListedAgainTakesItsFirstValuesBack) {
  // A learner notes a row at each step that changes it; Commit lists a row
  // again with the values its earlier entry already changed.
  Writer w(kLarge);
  std::mt19937 rng(5);
  std::vector<std::shared_ptr<const ParamsVersion>> held;
  held.push_back(w.Commit(1, {}));
  held.back()->Show();
  for (uint64_t v = 2; v <= 12; ++v) {
    std::vector<uint32_t> rows = RandomRows(rng, kLarge.rows, 200);
    for (int i = 0; i < 100; ++i) rows.push_back(rows[rng() % rows.size()]);
    held.push_back(w.Commit(v, rows));
    if (v % 2 == 0) held.back()->Show();
  }
  // ChangeUncommitted changes every row: each listed, some twice.
  std::vector<uint32_t> again(kLarge.rows);
  for (uint32_t r = 0; r < again.size(); ++r) again[r] = r;
  for (const uint32_t r : RandomRows(rng, kLarge.rows, 50)) again.push_back(r);
  w.ChangeUncommitted(again);
  // Rebuilds take the deltas back from the front copy, full reads from the
  // writer's working copy: each must end on a row's first values.
  for (const auto& h : held) w.ExpectReadsBack(*h);
}

TEST(VersionedParamsTest, FullReadsTakeTheStateFromTheWritersCommittedCopy) {
  // ChangeUncommitted changes every value of the working copy, so it is told
  // that every row changed.
  const ParamLayout layout = ParamLayout::For(70001, 2, 2);
  Writer w(layout);
  std::mt19937 rng(11);
  std::vector<std::shared_ptr<const ParamsVersion>> held;
  held.push_back(w.Commit(1, {}));
  held.back()->Show();
  for (uint64_t v = 2; v <= 6; ++v) {
    held.push_back(w.Commit(v, RandomRows(rng, layout.rows, 300)));
    if (v % 2 == 0) held.back()->Show();
  }
  auto all_read_back = [&] {
    for (const auto& h : held) {
      if (!w.HoldsAll(h->CopyAll(), h->version())) return false;
    }
    return true;
  };
  EXPECT_TRUE(all_read_back());
  std::vector<uint32_t> every_row(layout.rows);
  for (uint32_t r = 0; r < every_row.size(); ++r) every_row[r] = r;
  w.ChangeUncommitted(every_row);
  EXPECT_TRUE(all_read_back());
  w.ChangeUncommitted({}, /*all=*/true);
  EXPECT_TRUE(all_read_back());
  // Once the writer is gone, the held versions keep its committed state.
  const int64_t before_detach = w.params().memory_bytes();
  w.Detach();
  EXPECT_TRUE(all_read_back());
  EXPECT_GE(w.params().memory_bytes(),
            before_detach + (layout.floats() - layout.array_floats()) *
                                int64_t{sizeof(float)});
}

TEST(VersionedParamsTest, ReleasedVersionsFreeTheirDeltasAndRebuilds) {
  Writer w(kLarge);
  std::mt19937 rng(3);
  const int64_t copy = kLarge.floats() * int64_t{sizeof(float)};
  std::vector<std::shared_ptr<const ParamsVersion>> window;
  int64_t most = 0;
  for (uint64_t v = 1; v <= 200; ++v) {
    window.push_back(v == 1 ? w.Commit(1, {})
                            : w.Commit(v, RandomRows(rng, kLarge.rows, 100)));
    window.back()->Show();
    // Keep 8, and read the oldest (a rebuild) now and then.
    if (window.size() > 8) window.erase(window.begin());
    if (v % 20 == 0) {
      EXPECT_TRUE(w.Holds(window.front()->Read(), v - 7));
    }
    // (Version 1's delta, a whole copy, is held until version 2 is shown.)
    if (v > 2) most = std::max(most, w.params().memory_bytes());
  }
  // Two live copies of the weights (half a copy each: two arrays), at most
  // one rebuild of the weights, and the deltas of 8 versions; no copy of the
  // state.
  const int64_t deltas = 10 * 100 * 5 * int64_t{sizeof(float)};
  EXPECT_LT(most, copy + copy / 2 + deltas + copy / 8);
  EXPECT_TRUE(w.HoldsAll(window.back()->CopyAll(), 200));
  window.clear();
  EXPECT_LT(w.params().memory_bytes(), copy + deltas);
}

TEST(VersionedParamsTest, ReadersSeeWholeVersionsWhileTheWriterShows) {
  // Every version sets the same rows to its own number; a reader of a pinned
  // copy must find one number in all of them.
  const ParamLayout layout = ParamLayout::For(70001, 1, 1);
  auto params = std::make_shared<VersionedParams>(layout);
  std::vector<uint32_t> rows;
  for (uint32_t r = 0; r < 70001; r += 97) rows.push_back(r);
  std::vector<float> working(layout.floats(), 0.0f);
  std::shared_ptr<const ParamsVersion> newest;
  std::mutex mu;  // guards `newest` only, never held while reading
  auto commit = [&](uint64_t v) {
    ParamDelta d;
    d.all = v == 1;
    if (!d.all) d.rows = rows;
    for (const uint32_t r : rows) {
      if (!d.all) d.before.push_back(working[r]);
      working[r] = static_cast<float>(v);
      if (!d.all) d.after.push_back(working[r]);
    }
    if (d.all) d.after = working;
    auto version = params->Commit(v, working, std::move(d));
    version->Show();
    std::lock_guard<std::mutex> lock(mu);
    newest = version;
  };
  commit(1);
  std::atomic<bool> done{false};
  std::atomic<int64_t> reads{0};
  std::atomic<int64_t> torn{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        std::shared_ptr<const ParamsVersion> v;
        {
          std::lock_guard<std::mutex> lock(mu);
          v = newest;
        }
        const ParamsPin pin = v->Read();
        const float want = static_cast<float>(v->version());
        for (const uint32_t r : rows) {
          if (pin.data()[r] != want) {
            torn.fetch_add(1);
            break;
          }
        }
        reads.fetch_add(1);
      }
    });
  }
  // Until the readers have read a while (they may start late).
  for (uint64_t v = 2; v <= 400 || (reads.load() < 2000 && v < 200000); ++v) {
    commit(v);
  }
  done.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(torn.load(), 0);
}

}  // namespace
}  // namespace lepton
