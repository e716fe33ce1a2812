#include "core/learning/row_slots.h"

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace lepton {
namespace {

// Slots of one step, checked against a map: first-touch order, one slot per
// row, and nothing left over from the step before.
void CheckStep(RowSlots& slots, const std::vector<uint32_t>& touches) {
  std::map<uint32_t, uint32_t> want;
  std::vector<uint32_t> order;
  for (const uint32_t row : touches) {
    auto [it, added] = want.emplace(row, static_cast<uint32_t>(order.size()));
    if (added) order.push_back(row);
    ASSERT_EQ(slots.Slot(row), it->second) << "row " << row;
  }
  EXPECT_EQ(slots.rows(), order);
  slots.Clear();
  EXPECT_TRUE(slots.rows().empty());
}

TEST(RowSlotsTest, SlotsFollowFirstTouchAndClearForgetsThem) {
  RowSlots slots;
  CheckStep(slots, {7, 3, 7, 0, 3, 4294967294u, 7});
  // The same rows again start from slot 0.
  CheckStep(slots, {3, 7, 3});
  CheckStep(slots, {});
  CheckStep(slots, {0});
}

TEST(RowSlotsTest, GrowsPastItsFirstTableAndKeepsEverySlot) {
  RowSlots slots;
  std::vector<uint32_t> touches;
  for (uint32_t i = 0; i < 5000; ++i) touches.push_back(i * 2654435761u);
  for (uint32_t i = 0; i < 5000; i += 3) touches.push_back(i * 2654435761u);
  CheckStep(slots, touches);
  CheckStep(slots, {1, 2, 1});
}

TEST(RowSlotsTest, ManyStepsOfCollidingRows) {
  // Rows that share table positions, over many generations: a row from an
  // earlier step must never be found again.
  RowSlots slots;
  std::mt19937 rng(7);
  for (int step = 0; step < 2000; ++step) {
    std::vector<uint32_t> touches;
    const int n = 1 + static_cast<int>(rng() % 700);
    for (int i = 0; i < n; ++i) touches.push_back((rng() % 64) * 1024);
    CheckStep(slots, touches);
  }
}

TEST(RowSlotsTest, TheGenerationWrapsWithoutReusingOldEntries) {
  RowSlots slots(0xFFFFFFFEu);
  CheckStep(slots, {5, 6, 7});  // the last generation but one
  CheckStep(slots, {6, 8});     // the last; Clear wraps
  CheckStep(slots, {5, 6, 7, 8});
  CheckStep(slots, {8, 5});
}

}  // namespace
}  // namespace lepton
