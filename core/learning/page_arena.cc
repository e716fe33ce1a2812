#include "core/learning/page_arena.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/learning/dense_kernels.h"
#include "core/util/copy.h"

namespace lepton {
namespace {

constexpr int64_t kSinglePageFloats = int64_t{1} << 16;
// Floats a page aims at, per output of a row: a sparse update copies a whole
// page for each row it touches, so pages are small; rows of several outputs
// keep at least a few rows a page for the dense kernels.
constexpr int64_t kPageFloatsPerOutput = 64;
constexpr int64_t kMaxPageFloatsTarget = 256;
constexpr size_t kAlign = 64;

int CeilLog2(int64_t n) {
  int s = 0;
  while ((int64_t{1} << s) < n) ++s;
  return s;
}

int FloorLog2(int64_t n) {
  int s = 0;
  while ((int64_t{2} << s) <= n) ++s;
  return s;
}

void* AlignedAlloc(size_t bytes) {
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

PageLayout PageLayout::For(int64_t rows, int32_t outputs, int32_t arrays) {
  PageLayout l;
  l.rows = rows;
  l.outputs = outputs;
  l.arrays = arrays;
  const int64_t row_floats = int64_t{outputs} * arrays;
  if (rows * row_floats <= kSinglePageFloats) {
    l.row_shift = CeilLog2(rows);
  } else {
    const int64_t target =
        std::min(kMaxPageFloatsTarget, kPageFloatsPerOutput * outputs);
    l.row_shift = FloorLog2(std::max<int64_t>(1, target / row_floats));
  }
  l.num_pages = (rows + l.rows_per_page() - 1) >> l.row_shift;
  l.num_chunks = (l.num_pages + kChunkPages - 1) >> kChunkShift;
  return l;
}

PageArena::PageArena(const PageLayout& layout)
    : page_pad_floats_(layout.outputs > 1 ? kPadFloats : 0),
      page_bytes_((layout.page_floats() + page_pad_floats_) * sizeof(float)),
      chunk_bytes_(PageLayout::kChunkPages * sizeof(float*)),
      root_bytes_(layout.num_chunks * sizeof(Chunk)),
      layout_(layout) {}

float* PageArena::NewPage(Nodes& spare) {
  if (!spare.pages.empty()) {
    float* page = spare.pages.back();
    spare.pages.pop_back();
    return page;
  }
  bytes_.fetch_add(page_bytes_, std::memory_order_relaxed);
  float* page = static_cast<float*>(AlignedAlloc(page_bytes_));
  float* pad = page + layout_.page_floats();
  std::fill(pad, pad + page_pad_floats_, 0.0f);  // read, never used
  return page;
}

PageArena::Chunk PageArena::NewChunk(Nodes& spare) {
  Chunk chunk;
  if (!spare.chunks.empty()) {
    chunk = spare.chunks.back();
    spare.chunks.pop_back();
  } else {
    bytes_.fetch_add(chunk_bytes_, std::memory_order_relaxed);
    chunk = static_cast<Chunk>(AlignedAlloc(chunk_bytes_));
  }
  std::fill(chunk, chunk + PageLayout::kChunkPages, nullptr);
  return chunk;
}

PageArena::Root PageArena::NewRoot(Nodes& spare) {
  if (!spare.roots.empty()) {
    Root root = spare.roots.back();
    spare.roots.pop_back();
    return root;
  }
  bytes_.fetch_add(root_bytes_, std::memory_order_relaxed);
  return static_cast<Root>(AlignedAlloc(root_bytes_));
}

ParamTable PageArena::Publish(uint64_t version, const ParamTable* base,
                              absl::Span<const int64_t> dirty_pages,
                              PageFiller fill) {
  Nodes spare;
  {
    MutexLock lock(&mu_);
    std::swap(spare, spare_);
    spare_bytes_ = 0;
  }
  Root root = NewRoot(spare);
  Nodes retired;

  if (base == nullptr) {
    for (int64_t c = 0; c < layout_.num_chunks; ++c) root[c] = NewChunk(spare);
    for (int64_t p = 0; p < layout_.num_pages; ++p) {
      float* page = NewPage(spare);
      fill(p, page);
      root[p >> PageLayout::kChunkShift][p & (PageLayout::kChunkPages - 1)] =
          page;
    }
  } else {
    // The base's nodes were allocated mutable by this arena; they are only
    // read here and, once retired, freed.
    const Root base_root = const_cast<Root>(base->root());
    CopyPointers(root, base_root, layout_.num_chunks);
    retired.roots.push_back(base_root);
    for (int64_t p : dirty_pages) {
      const int64_t c = p >> PageLayout::kChunkShift;
      const int64_t slot = p & (PageLayout::kChunkPages - 1);
      if (root[c] == base_root[c]) {  // first change in this chunk
        Chunk chunk = NewChunk(spare);
        CopyPointers(chunk, base_root[c], PageLayout::kChunkPages);
        retired.chunks.push_back(base_root[c]);
        root[c] = chunk;
      }
      if (root[c][slot] == base_root[c][slot]) {  // first change of this page
        float* page = NewPage(spare);
        fill(p, page);
        retired.pages.push_back(base_root[c][slot]);
        root[c][slot] = page;
      }
    }
  }

  MutexLock lock(&mu_);
  alive_.insert(version);
  newest_root_ = root;
  if (base != nullptr) {
    // What this publication allocated equals what it retired.
    const int64_t allocated =
        static_cast<int64_t>(retired.pages.size()) * page_bytes_ +
        static_cast<int64_t>(retired.chunks.size()) * chunk_bytes_ +
        root_bytes_;
    spare_limit_ = std::max(kMinSpareBytes, allocated);
    retired_.emplace(version, std::move(retired));
  }
  KeepSpare(spare);
  Free(spare);  // beyond the cache; rare, and quick
  return ParamTable(layout_, root);
}

void PageArena::Release(uint64_t version) {
  Nodes to_free;
  {
    MutexLock lock(&mu_);
    alive_.erase(version);
    // Nodes retired at w are reachable only from versions older than w.
    const uint64_t oldest_alive = alive_.empty() ? UINT64_MAX : *alive_.begin();
    while (!retired_.empty() && retired_.begin()->first <= oldest_alive) {
      Nodes& r = retired_.begin()->second;
      KeepSpare(r);
      to_free.pages.insert(to_free.pages.end(), r.pages.begin(), r.pages.end());
      to_free.chunks.insert(to_free.chunks.end(), r.chunks.begin(),
                            r.chunks.end());
      to_free.roots.insert(to_free.roots.end(), r.roots.begin(), r.roots.end());
      retired_.erase(retired_.begin());
    }
  }
  Free(to_free);  // outside the lock
}

void PageArena::KeepSpare(Nodes& nodes) {
  auto keep = [this](auto& from, auto& to,
                     int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!from.empty() && spare_bytes_ + bytes <= spare_limit_) {
      to.push_back(from.back());
      from.pop_back();
      spare_bytes_ += bytes;
    }
  };
  keep(nodes.roots, spare_.roots, root_bytes_);
  keep(nodes.chunks, spare_.chunks, chunk_bytes_);
  keep(nodes.pages, spare_.pages, page_bytes_);
}

void PageArena::Free(Nodes& r) {
  for (float* p : r.pages) std::free(p);
  for (Chunk c : r.chunks) std::free(c);
  for (Root root : r.roots) std::free(root);
  bytes_.fetch_sub(static_cast<int64_t>(r.pages.size()) * page_bytes_ +
                       static_cast<int64_t>(r.chunks.size()) * chunk_bytes_ +
                       static_cast<int64_t>(r.roots.size()) * root_bytes_,
                   std::memory_order_relaxed);
  r = Nodes();
}

PageArena::~PageArena() {
  MutexLock lock(&mu_);
  for (auto& [version, retired] : retired_) Free(retired);
  Free(spare_);
  if (newest_root_ != nullptr) {
    // Every node is either in the newest version or retired exactly once.
    Nodes newest;
    newest.roots.push_back(newest_root_);
    for (int64_t c = 0; c < layout_.num_chunks; ++c) {
      Chunk chunk = newest_root_[c];
      for (int64_t s = 0; s < PageLayout::kChunkPages; ++s) {
        if (chunk[s] != nullptr) newest.pages.push_back(chunk[s]);
      }
      newest.chunks.push_back(chunk);
    }
    Free(newest);
  }
}

}  // namespace lepton
