// Paged, copy-on-write storage of a model's parameters, shared by versions.
//
// A model's parameters are `arrays` matrices of `rows` x `outputs` floats:
// array 0 holds the weights (row j = feature j, the last row = the bias), the
// others the optimizer's per-coordinate state. Rows are grouped into pages of
// 2^row_shift rows; a page holds, for its rows, one block per array. Pages are
// grouped 64 to a chunk, and a version's root lists its chunks:
//
//   root[num_chunks] -> chunk[64] -> page[rows_per_page * outputs * arrays]
//
// A published ParamTable is immutable. Publishing a new version copies the
// root, the chunks that hold a changed page, and the changed pages; every other
// node is shared with the previous version. So a sparse update costs time and
// memory in proportion to the pages it touches (plus the root, one pointer
// per 64 pages), not to the model size, and N retained versions cost one full
// copy plus what each changed.
//
// Ownership and reclamation: the PageArena owns every node. Nodes are freed
// without reference counts (no atomic operation per page): a node replaced
// when version v is published ("retired at v") can be reached only from
// versions older than v, so it is freed once no version older than v is
// alive. Each version registers itself in Publish() and calls Release() when
// it is destroyed. Versions hold a std::shared_ptr to the arena, so the arena
// and the nodes outlive every reader.
//
// Thread safety: Publish() calls must be serialized by the caller (the model's
// update lock); Release(), memory_bytes() and reads of published ParamTables
// may happen from any thread at any time.
#ifndef LEPTON_CORE_LEARNING_PAGE_ARENA_H_
#define LEPTON_CORE_LEARNING_PAGE_ARENA_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "core/util/mutex.h"

namespace lepton {

struct PageLayout {
  static constexpr int kChunkShift = 6;  // 64 pages per chunk
  static constexpr int64_t kChunkPages = int64_t{1} << kChunkShift;

  int64_t rows = 0;
  int32_t outputs = 0;
  int32_t arrays = 0;
  int row_shift = 0;
  int64_t num_pages = 0;
  int64_t num_chunks = 0;

  // Models of up to 64K floats live in one page (copying it per update is
  // cheaper than any bookkeeping and keeps dense math in one block); larger
  // ones use pages of about min(256, 64 * outputs) floats, so a sparse update
  // copies little.
  static PageLayout For(int64_t rows, int32_t outputs, int32_t arrays);

  int64_t rows_per_page() const { return int64_t{1} << row_shift; }
  // Floats of one array's block within a page.
  int64_t block_floats() const { return rows_per_page() * outputs; }
  int64_t page_floats() const { return block_floats() * arrays; }
};

// An immutable view of one version's parameters. Cheap to copy; valid while
// the version that published it is alive.
class ParamTable {
 public:
  ParamTable() = default;
  ParamTable(const PageLayout& layout, float* const* const* root)
      : layout_(layout), root_(root) {}

  const PageLayout& layout() const { return layout_; }
  const float* page(int64_t p) const {
    return root_[p >> PageLayout::kChunkShift]
                [p & (PageLayout::kChunkPages - 1)];
  }
  // The `outputs` floats of row r of array a.
  const float* row(int64_t r, int a = 0) const {
    return page(r >> layout_.row_shift) + a * layout_.block_floats() +
           (r & (layout_.rows_per_page() - 1)) * layout_.outputs;
  }
  float* const* const* root() const { return root_; }

 private:
  PageLayout layout_;
  float* const* const* root_ = nullptr;
};

class PageArena {
 public:
  explicit PageArena(const PageLayout& layout);
  ~PageArena();
  PageArena(const PageArena&) = delete;
  PageArena& operator=(const PageArena&) = delete;

  const PageLayout& layout() const { return layout_; }

  // Writes the content of page `p` (layout().page_floats() floats).
  using PageFiller = absl::FunctionRef<void(int64_t p, float* dst)>;

  // Publishes `version`: a table equal to `base` except for `dirty_pages`,
  // whose content `fill` writes. With base == nullptr (the first version)
  // every page is filled. `version` must exceed every version published
  // before. The caller serializes Publish calls.
  ParamTable Publish(uint64_t version, const ParamTable* base,
                     absl::Span<const int64_t> dirty_pages, PageFiller fill);

  // Called once when the version published as `version` is destroyed.
  void Release(uint64_t version);

  // Bytes of all nodes currently held, including a small cache of free nodes
  // kept for reuse (see spare_limit_).
  int64_t memory_bytes() const {
    return bytes_.load(std::memory_order_relaxed);
  }

 private:
  // Node types: a root is an array of chunks, a chunk an array of pages.
  using Chunk = float**;
  using Root = Chunk*;
  struct Nodes {
    std::vector<float*> pages;
    std::vector<Chunk> chunks;
    std::vector<Root> roots;
  };

  // Allocate from `spare` first, then from the heap.
  float* NewPage(Nodes& spare);
  Chunk NewChunk(Nodes& spare);
  Root NewRoot(Nodes& spare);
  // Moves nodes into spare_ while it holds less than spare_limit_.
  void KeepSpare(Nodes& nodes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Free(Nodes& nodes);

  static constexpr int64_t kMinSpareBytes = int64_t{4} << 20;
  // With several outputs the dense kernels read past a block's end
  // (dense_kernels.h), so pages carry that many floats more.
  const int64_t page_pad_floats_;
  const int64_t page_bytes_;
  const int64_t chunk_bytes_;
  const int64_t root_bytes_;

  const PageLayout layout_;
  std::atomic<int64_t> bytes_{0};

  Mutex mu_;
  std::set<uint64_t> alive_ ABSL_GUARDED_BY(mu_);
  // Keyed by the version whose publication retired the nodes.
  std::map<uint64_t, Nodes> retired_ ABSL_GUARDED_BY(mu_);
  Root newest_root_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Freed nodes kept for reuse: publishing then rarely asks the heap (and the
  // kernel, for page faults) for memory.
  Nodes spare_ ABSL_GUARDED_BY(mu_);
  int64_t spare_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // What the last Publish allocated, at least kMinSpareBytes: enough that a
  // steady stream of updates of one size reuses the nodes that evictions
  // free, instead of going back to malloc for each.
  int64_t spare_limit_ ABSL_GUARDED_BY(mu_) = kMinSpareBytes;
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_PAGE_ARENA_H_
