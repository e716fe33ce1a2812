// ArrayAllocator: the allocator of the core's float arrays (AlignedFloats).
//
// Small arrays are aligned for SIMD (64 bytes). Arrays of kHugeArrayBytes or
// more are aligned to 2 MiB and advised as transparent huge pages before
// anything touches them: a large model's sparse steps, its live copies and
// its predictions read rows scattered over tens of MiB, and with 4 KiB pages
// almost every row would also miss the TLB. Where the kernel keeps huge
// pages to madvise() or never uses them, the advice changes nothing but the
// alignment.
//
// Thread safety: stateless.
#ifndef LEPTON_CORE_UTIL_ARRAY_ALLOCATOR_H_
#define LEPTON_CORE_UTIL_ARRAY_ALLOCATOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace lepton {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;
// Smaller arrays would waste up to a huge page each on rounding.
inline constexpr size_t kHugeArrayBytes = 4 * kHugePageBytes;

template <typename T>
struct ArrayAllocator {
  using value_type = T;

  ArrayAllocator() = default;
  template <typename U>
  ArrayAllocator(const ArrayAllocator<U>&) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugeArrayBytes) {
      return static_cast<T*>(::operator new (bytes, std::align_val_t{64}));
    }
    const size_t rounded = (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
    void* p = std::aligned_alloc(kHugePageBytes, rounded);
    if (p == nullptr) throw std::bad_alloc();
    madvise(p, rounded, MADV_HUGEPAGE);  // advice: its failure changes nothing
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHugeArrayBytes) {
      ::operator delete (p, std::align_val_t{64});
    } else {
      std::free(p);
    }
  }

  template <typename U>
  bool operator==(const ArrayAllocator<U>&) const {
    return true;
  }
};

}  // namespace lepton

#endif  // LEPTON_CORE_UTIL_ARRAY_ALLOCATOR_H_
