#include "core/util/array_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/learning/dense_kernels.h"

namespace lepton {
namespace {

uintptr_t Address(const float* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(ArrayAllocatorTest, SmallArraysAreAlignedForSimd) {
  for (const size_t n : {1, 17, 1000, 100000}) {
    AlignedFloats a(n, 1.5f);
    EXPECT_EQ(Address(a.data()) % 64, 0u) << n;
    EXPECT_EQ(a[n - 1], 1.5f);
  }
}

TEST(ArrayAllocatorTest, LargeArraysStartOnAHugePageAndHoldTheirValues) {
  const size_t n = kHugeArrayBytes / sizeof(float) + 3;  // not a whole page
  AlignedFloats a(n, 0.0f);
  EXPECT_EQ(Address(a.data()) % kHugePageBytes, 0u);
  for (size_t i = 0; i < n; i += 4099) EXPECT_EQ(a[i], 0.0f) << i;
  a[n - 1] = 2.0f;
  // Growing moves the values, small to large and back through a copy.
  AlignedFloats small(16, 3.0f);
  small.resize(n, 4.0f);
  EXPECT_EQ(Address(small.data()) % kHugePageBytes, 0u);
  EXPECT_EQ(small[15], 3.0f);
  EXPECT_EQ(small[n - 1], 4.0f);
  const AlignedFloats copy = a;
  EXPECT_EQ(copy[n - 1], 2.0f);
  small.clear();
  small.shrink_to_fit();
  EXPECT_EQ(small.capacity(), 0u);
}

}  // namespace
}  // namespace lepton
