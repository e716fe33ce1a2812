// Tests of the paged copy-on-write parameter storage
// (core/learning/page_arena.h): layouts, structural sharing between versions,
// memory accounting, and reclamation in every release order. Leaks are caught
// by the ASan build.
#include "core/learning/page_arena.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

// The arena keeps freed nodes for reuse, up to the larger of this and what
// its last publication allocated (PageArena::spare_limit_, documented on
// memory_bytes()).
constexpr int64_t kMinSpareCacheBytes = int64_t{4} << 20;

// ---------------------------------------------------------------- PageLayout

void ExpectConsistent(const PageLayout& l) {
  SCOPED_TRACE(::testing::Message() << "rows " << l.rows << " outputs "
                                    << l.outputs << " arrays " << l.arrays);
  ASSERT_GE(l.row_shift, 0);
  EXPECT_EQ(l.rows_per_page(), int64_t{1} << l.row_shift);
  EXPECT_EQ(l.block_floats(), l.rows_per_page() * l.outputs);
  EXPECT_EQ(l.page_floats(), l.block_floats() * l.arrays);
  // Just enough pages for the rows, just enough chunks for the pages.
  EXPECT_GE(l.num_pages * l.rows_per_page(), l.rows);
  EXPECT_LT((l.num_pages - 1) * l.rows_per_page(), l.rows);
  EXPECT_GE(l.num_chunks * PageLayout::kChunkPages, l.num_pages);
  EXPECT_LT((l.num_chunks - 1) * PageLayout::kChunkPages, l.num_pages);
  const int64_t total = l.rows * l.outputs * l.arrays;
  const int64_t row_floats = int64_t{l.outputs} * l.arrays;
  if (total <= (int64_t{1} << 16)) {
    EXPECT_EQ(l.num_pages, 1);
    EXPECT_EQ(l.num_chunks, 1);
    EXPECT_LT(l.rows_per_page(), 2 * l.rows);  // no more than twice the size
  } else if (const int64_t target = std::min<int64_t>(256, 64 * l.outputs);
             row_floats <= target) {
    // About min(256, 64 * outputs) floats a page: the largest power-of-two
    // row count that fits.
    EXPECT_LE(l.page_floats(), target);
    EXPECT_GT(l.page_floats(), target / 2);
  } else {
    EXPECT_EQ(l.rows_per_page(), 1);  // a row never spans pages
  }
}

TEST(PageLayoutTest, SmallModelsLiveInOnePage) {
  const PageLayout l = PageLayout::For(11, 1, 1);
  EXPECT_EQ(l.rows, 11);
  EXPECT_EQ(l.outputs, 1);
  EXPECT_EQ(l.arrays, 1);
  EXPECT_EQ(l.num_pages, 1);
  EXPECT_EQ(l.num_chunks, 1);
  EXPECT_GE(l.rows_per_page(), 11);
  ExpectConsistent(l);

  // Fashion-MNIST softmax with AdaGrad: 785 x 10 x 2 = 15700 floats.
  const PageLayout mnist = PageLayout::For(785, 10, 2);
  EXPECT_EQ(mnist.num_pages, 1);
  EXPECT_GE(mnist.rows_per_page(), 785);
  ExpectConsistent(mnist);

  // Exactly 64K floats is still one page.
  const PageLayout edge = PageLayout::For(int64_t{1} << 16, 1, 1);
  EXPECT_EQ(edge.num_pages, 1);
  ExpectConsistent(edge);
  ExpectConsistent(PageLayout::For(1, 1, 1));
}

TEST(PageLayoutTest, LargeModelsUseSmallPages) {
  // One output a row: 64 floats a page.
  const PageLayout l = PageLayout::For((int64_t{1} << 16) + 1, 1, 1);
  EXPECT_EQ(l.rows_per_page(), 64);
  EXPECT_EQ(l.page_floats(), 64);
  EXPECT_EQ(l.num_pages, 1025);
  EXPECT_EQ(l.num_chunks, 17);
  ExpectConsistent(l);

  // 20 floats a row: 8 rows (160 floats) a page.
  const PageLayout softmax = PageLayout::For(100001, 10, 2);
  EXPECT_EQ(softmax.rows_per_page(), 8);
  EXPECT_EQ(softmax.num_pages, 12501);
  EXPECT_EQ(softmax.num_chunks, 196);
  ExpectConsistent(softmax);

  // Rows wider than a page target: one row a page.
  const PageLayout wide = PageLayout::For(1000, 1000, 2);
  EXPECT_EQ(wide.rows_per_page(), 1);
  EXPECT_EQ(wide.num_pages, 1000);
  EXPECT_EQ(wide.num_chunks, 16);
  ExpectConsistent(wide);
}

TEST(PageLayoutTest, ManyShapesAreConsistent) {
  for (int64_t rows :
       {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{64}, int64_t{65},
        int64_t{1000}, int64_t{32769}, int64_t{65537}, int64_t{100001},
        int64_t{1} << 20, (int64_t{1} << 26) + 1}) {
    for (int32_t outputs : {1, 2, 3, 10, 100, 300}) {
      for (int32_t arrays : {1, 2}) {
        ExpectConsistent(PageLayout::For(rows, outputs, arrays));
      }
    }
  }
}

// ---------------------------------------------------------------- PageArena

// Distinct, exactly representable content for (version, page, offset).
float Content(uint64_t version, int64_t p, int64_t i, int64_t page_floats) {
  return static_cast<float>(version * (int64_t{1} << 20) +
                            (p * page_floats + i) % (int64_t{1} << 20));
}

struct Filler {
  uint64_t version;
  int64_t page_floats;
  std::vector<int64_t>* filled;  // pages filled, in order

  void operator()(int64_t p, float* dst) const {
    if (filled != nullptr) filled->push_back(p);
    for (int64_t i = 0; i < page_floats; ++i) {
      dst[i] = Content(version, p, i, page_floats);
    }
  }
};

ParamTable PublishVersion(PageArena& arena, uint64_t version,
                          const ParamTable* base,
                          const std::vector<int64_t>& dirty,
                          std::vector<int64_t>* filled = nullptr) {
  const Filler fill{version, arena.layout().page_floats(), filled};
  return arena.Publish(version, base, dirty,
                       [&fill](int64_t p, float* dst) { fill(p, dst); });
}

// True if page p of `t` holds exactly the content `version` wrote.
bool PageHolds(const ParamTable& t, int64_t p, uint64_t version) {
  const int64_t n = t.layout().page_floats();
  const float* page = t.page(p);
  for (int64_t i = 0; i < n; ++i) {
    if (page[i] != Content(version, p, i, n)) return false;
  }
  return true;
}

// Bytes of one version's nodes when nothing is shared.
int64_t FullVersionBytes(const PageLayout& l) {
  return l.num_pages * l.page_floats() * int64_t{sizeof(float)} +
         l.num_chunks * PageLayout::kChunkPages * int64_t{sizeof(float*)} +
         l.num_chunks * int64_t{sizeof(float**)};
}

TEST(PageArenaTest, FirstVersionFillsEveryPage) {
  const PageLayout layout = PageLayout::For(int64_t{1} << 17, 1, 2);
  ASSERT_EQ(layout.page_floats(), 64);
  ASSERT_EQ(layout.num_pages, 4096);
  PageArena arena(layout);
  EXPECT_EQ(arena.memory_bytes(), 0);
  std::vector<int64_t> filled;
  const ParamTable t1 = PublishVersion(arena, 1, nullptr, {}, &filled);
  std::sort(filled.begin(), filled.end());
  ASSERT_EQ(filled.size(), 4096u);
  for (int64_t p = 0; p < 4096; ++p) {
    ASSERT_EQ(filled[p], p);
    ASSERT_TRUE(PageHolds(t1, p, 1)) << p;
  }
  // row() addresses rows within pages and arrays within pages.
  const int64_t rpp = layout.rows_per_page();
  for (int64_t r :
       {int64_t{0}, int64_t{1}, rpp - 1, rpp, 5 * rpp + 7, layout.rows - 1}) {
    const int64_t p = r / rpp;
    EXPECT_EQ(t1.row(r, 0), t1.page(p) + (r % rpp)) << r;
    EXPECT_EQ(t1.row(r, 1), t1.page(p) + layout.block_floats() + (r % rpp))
        << r;
  }
  const int64_t full = FullVersionBytes(layout);
  EXPECT_GE(arena.memory_bytes(), full);
  EXPECT_LE(arena.memory_bytes(), full + full / 8);
  arena.Release(1);
}

TEST(PageArenaTest, SecondVersionSharesUnchangedPages) {
  const PageLayout layout = PageLayout::For(int64_t{1} << 17, 1, 2);
  ASSERT_EQ(layout.num_pages, 4096);
  ASSERT_EQ(layout.num_chunks, 64);
  PageArena arena(layout);
  const ParamTable t1 = PublishVersion(arena, 1, nullptr, {});
  const int64_t bytes1 = arena.memory_bytes();

  // Pages 0 and 1 share chunk 0; 700 is in chunk 10; 1023 in chunk 15.
  const std::vector<int64_t> dirty = {0, 1, 700, 1023};
  const std::set<int64_t> dirty_set(dirty.begin(), dirty.end());
  const std::set<int64_t> touched_chunks = {0, 10, 15};
  std::vector<int64_t> filled;
  const ParamTable t2 = PublishVersion(arena, 2, &t1, dirty, &filled);
  std::sort(filled.begin(), filled.end());
  EXPECT_EQ(filled, dirty);  // only the dirty pages are written

  for (int64_t p = 0; p < layout.num_pages; ++p) {
    if (dirty_set.contains(p)) {
      EXPECT_NE(t2.page(p), t1.page(p)) << p;
      EXPECT_TRUE(PageHolds(t2, p, 2)) << p;
    } else {
      ASSERT_EQ(t2.page(p), t1.page(p)) << p;
    }
    // Version 1 is immutable: it still holds its own content everywhere.
    ASSERT_TRUE(PageHolds(t1, p, 1)) << p;
  }
  EXPECT_NE(t2.root(), t1.root());
  for (int64_t c = 0; c < layout.num_chunks; ++c) {
    if (touched_chunks.contains(c)) {
      EXPECT_NE(t2.root()[c], t1.root()[c]) << c;
    } else {
      EXPECT_EQ(t2.root()[c], t1.root()[c]) << c;
    }
  }

  // The new version costs its dirty pages, touched chunks and root; not a
  // full copy.
  const int64_t growth = arena.memory_bytes() - bytes1;
  const int64_t page_bytes = layout.page_floats() * int64_t{sizeof(float)};
  const int64_t chunk_bytes = PageLayout::kChunkPages * int64_t{sizeof(float*)};
  const int64_t root_bytes = layout.num_chunks * int64_t{sizeof(float**)};
  const int64_t expected = 4 * page_bytes + 3 * chunk_bytes + root_bytes;
  EXPECT_GE(growth, expected);
  EXPECT_LE(growth, expected + 8 * 64);  // allowance for per-node rounding
  EXPECT_LT(growth, bytes1 / 20);

  // A third version based on the second keeps sharing what neither changed.
  const ParamTable t3 = PublishVersion(arena, 3, &t2, {700, 5});
  EXPECT_EQ(t3.page(0), t2.page(0));
  EXPECT_EQ(t3.page(1023), t2.page(1023));
  EXPECT_EQ(t3.page(6), t1.page(6));
  EXPECT_NE(t3.page(700), t2.page(700));
  EXPECT_NE(t3.page(5), t2.page(5));
  EXPECT_TRUE(PageHolds(t3, 700, 3));
  EXPECT_TRUE(PageHolds(t3, 5, 3));
  EXPECT_TRUE(PageHolds(t2, 700, 2));
  EXPECT_TRUE(PageHolds(t2, 5, 1));

  for (uint64_t v : {1, 2, 3}) arena.Release(v);
}

TEST(PageArenaTest, SinglePageModelCopiesItsPage) {
  const PageLayout layout = PageLayout::For(101, 3, 2);
  ASSERT_EQ(layout.num_pages, 1);
  PageArena arena(layout);
  const ParamTable t1 = PublishVersion(arena, 1, nullptr, {});
  const ParamTable t2 = PublishVersion(arena, 2, &t1, {0});
  EXPECT_NE(t1.page(0), t2.page(0));
  EXPECT_TRUE(PageHolds(t1, 0, 1));
  EXPECT_TRUE(PageHolds(t2, 0, 2));
  // No dirty page: a new root, every page shared.
  const ParamTable t3 = PublishVersion(arena, 3, &t2, {});
  EXPECT_EQ(t3.page(0), t2.page(0));
  EXPECT_NE(t3.root(), t2.root());
  arena.Release(1);
  arena.Release(2);
  EXPECT_TRUE(PageHolds(t3, 0, 2));
  arena.Release(3);
}

// Reclamation. The arena may keep freed nodes in a cache for reuse, so a
// release does not always lower memory_bytes(); what it must do is make the
// retired nodes available again. That is measured without assuming the
// cache's size: after releases that reclaim r generations of retired nodes
// (each the size X of one publication), publishing r + 1 more versions of
// the same shape costs exactly X more bytes than before the releases: the r
// generations are reused (from the cache, or from the heap after a drop of
// memory_bytes) and only the last one is new.

// Pages 0, 1 (chunk 0), 100 (chunk 1), 500 (chunk 7) and 1023 (chunk 15).
const std::vector<int64_t> kDirty = {0, 1, 100, 500, 1023};

struct ReleaseScenario {
  std::vector<uint64_t> releases;  // in this order, after versions 1, 2, 3
  int reclaimed;  // generations of retired nodes that become free
};

void PrintTo(const ReleaseScenario& s, std::ostream* os) {
  *os << "release";
  for (uint64_t v : s.releases) *os << "_" << v;
}

class PageArenaReleaseTest : public ::testing::TestWithParam<ReleaseScenario> {
};

TEST_P(PageArenaReleaseTest, RetiredNodesAreFreedOnlyWhenNoOlderVersionLives) {
  const ReleaseScenario& s = GetParam();
  const PageLayout layout = PageLayout::For(int64_t{1} << 17, 1, 2);
  PageArena arena(layout);
  std::vector<ParamTable> tables = {ParamTable(),
                                    PublishVersion(arena, 1, nullptr, {})};
  int64_t before = arena.memory_bytes();
  tables.push_back(PublishVersion(arena, 2, &tables[1], kDirty));
  const int64_t x = arena.memory_bytes() - before;  // one publication
  ASSERT_GT(x, 0);
  before = arena.memory_bytes();
  tables.push_back(PublishVersion(arena, 3, &tables[2], kDirty));
  ASSERT_EQ(arena.memory_bytes() - before, x);

  const int64_t before_releases = arena.memory_bytes();
  for (uint64_t v : s.releases) arena.Release(v);
  // Releasing never allocates; if nothing is reclaimed, nothing changes.
  EXPECT_LE(arena.memory_bytes(), before_releases);
  if (s.reclaimed == 0) {
    EXPECT_EQ(arena.memory_bytes(), before_releases);
  }

  // Every version still alive is intact.
  std::set<uint64_t> released(s.releases.begin(), s.releases.end());
  for (uint64_t v = 1; v <= 3; ++v) {
    if (released.contains(v)) continue;
    for (int64_t p : {int64_t{0}, int64_t{500}, int64_t{1023}, int64_t{7}}) {
      EXPECT_TRUE(PageHolds(tables[v], p, p == 7 ? 1 : v))
          << "version " << v << " page " << p;
    }
  }

  for (int i = 0; i <= s.reclaimed; ++i) {
    const uint64_t v = tables.size();
    tables.push_back(PublishVersion(arena, v, &tables.back(), kDirty));
    EXPECT_TRUE(PageHolds(tables.back(), 500, v));
  }
  EXPECT_EQ(arena.memory_bytes() - before_releases, x)
      << "expected " << s.reclaimed << " generations of " << x
      << " bytes to be reused";
}

INSTANTIATE_TEST_SUITE_P(
    Orders, PageArenaReleaseTest,
    ::testing::Values(
        // Oldest first: each release frees what the next version replaced.
        ReleaseScenario{{1}, 1}, ReleaseScenario{{1, 2}, 2},
        ReleaseScenario{{1, 2, 3}, 2},
        // A younger version first: nothing while version 1 lives.
        ReleaseScenario{{2}, 0}, ReleaseScenario{{3}, 0},
        ReleaseScenario{{2, 3}, 0}, ReleaseScenario{{3, 2}, 0},
        ReleaseScenario{{2, 1}, 2}, ReleaseScenario{{3, 2, 1}, 2},
        // Version 2 still alive: only what version 2 replaced goes.
        ReleaseScenario{{3, 1}, 1}, ReleaseScenario{{1, 3}, 1}),
    [](const ::testing::TestParamInfo<ReleaseScenario>& info) {
      std::string name = "release";
      for (uint64_t v : info.param.releases) absl::StrAppend(&name, "_", v);
      return name;
    });

// At scale, released memory goes back to the heap: far more is retired than
// a reuse cache holds.
TEST(PageArenaTest, ReleasingManyVersionsLowersMemory) {
  const PageLayout layout = PageLayout::For(int64_t{1} << 21, 1, 1);
  ASSERT_EQ(layout.num_pages, 32768);
  PageArena arena(layout);
  ParamTable newest = PublishVersion(arena, 1, nullptr, {});
  const int64_t first = arena.memory_bytes();
  constexpr uint64_t kVersions = 41;
  for (uint64_t v = 2; v <= kVersions; ++v) {
    // 1024 pages spread over all 512 chunks (page 32767 never changes).
    std::vector<int64_t> dirty;
    for (int64_t i = 0; i < 1024; ++i) dirty.push_back(i * 32 + v % 16);
    newest = PublishVersion(arena, v, &newest, dirty);
    // While version 1 lives nothing retired can go, whatever else is
    // released.
    if (v > 2) {
      const int64_t before = arena.memory_bytes();
      arena.Release(v - 1);
      EXPECT_EQ(arena.memory_bytes(), before) << "version " << v - 1;
    }
  }
  const int64_t retired = arena.memory_bytes() - first;
  ASSERT_GT(retired, 12 << 20);  // 40 publications of ~516 KB
  arena.Release(1);
  // Everything but the newest version's nodes is free; at most a small
  // share of it stays cached for reuse.
  EXPECT_LT(arena.memory_bytes(), first + retired / 2);
  EXPECT_GE(arena.memory_bytes(), first);
  EXPECT_TRUE(PageHolds(newest, 32767, 1));
  EXPECT_TRUE(PageHolds(newest, 32 * 7 + kVersions % 16, kVersions));
  arena.Release(kVersions);
}

// A steady stream of updates with a window of live versions costs a bounded
// amount of memory, not one more publication per update.
TEST(PageArenaTest, SlidingWindowOfVersionsStaysBounded) {
  const PageLayout layout = PageLayout::For(int64_t{1} << 17, 1, 2);
  PageArena arena(layout);
  std::vector<ParamTable> tables = {ParamTable(),
                                    PublishVersion(arena, 1, nullptr, {})};
  const int64_t first = arena.memory_bytes();
  int64_t x = 0;
  int64_t peak_early = 0;
  constexpr uint64_t kWindow = 3;
  for (uint64_t v = 2; v <= 200; ++v) {
    const int64_t before = arena.memory_bytes();
    tables.push_back(PublishVersion(arena, v, &tables.back(), kDirty));
    if (v == 2) x = arena.memory_bytes() - before;
    if (v > kWindow) arena.Release(v - kWindow);
    if (v == 20) peak_early = arena.memory_bytes();
    ASSERT_TRUE(PageHolds(tables.back(), 1023, v));
  }
  // Without reclamation this would be first + 199 x.
  EXPECT_LE(arena.memory_bytes(), peak_early);
  EXPECT_LT(arena.memory_bytes(), first + 50 * x);
  for (uint64_t v = 200 - kWindow + 1; v <= 200; ++v) {
    EXPECT_TRUE(PageHolds(tables[v], 0, v));
    EXPECT_TRUE(PageHolds(tables[v], 2, 1));
  }
}

// Destroying an arena with versions still registered, retired nodes and
// spares must free everything (checked by LeakSanitizer in the ASan build).
TEST(PageArenaTest, DestructionWithLiveStateFreesEverything) {
  const PageLayout layout = PageLayout::For(int64_t{1} << 17, 1, 2);
  {
    auto arena = std::make_unique<PageArena>(layout);
    ParamTable t = PublishVersion(*arena, 1, nullptr, {});
    for (uint64_t v = 2; v <= 6; ++v) {
      t = PublishVersion(*arena, v, &t, {0, static_cast<int64_t>(v * 100)});
    }
    arena->Release(1);  // some retired nodes become spares
    arena->Release(4);  // the rest stay retired
    EXPECT_GT(arena->memory_bytes(), 0);
    EXPECT_TRUE(PageHolds(t, 600, 6));
  }
  {
    // Nothing ever released.
    auto arena = std::make_unique<PageArena>(layout);
    ParamTable t = PublishVersion(*arena, 1, nullptr, {});
    t = PublishVersion(*arena, 2, &t, {1});
    EXPECT_TRUE(PageHolds(t, 1, 2));
  }
  {
    // Everything released, spares and the newest remain.
    auto arena = std::make_unique<PageArena>(layout);
    ParamTable t = PublishVersion(*arena, 1, nullptr, {});
    t = PublishVersion(*arena, 2, &t, {1, 2, 3});
    arena->Release(2);
    arena->Release(1);
    EXPECT_GT(arena->memory_bytes(), 0);
  }
  {
    // Never published.
    PageArena arena(layout);
    EXPECT_EQ(arena.memory_bytes(), 0);
  }
}

}  // namespace
}  // namespace lepton
