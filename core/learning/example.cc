#include "core/learning/example.h"

namespace lepton {

std::vector<FeaturesView> Views(const std::vector<Features>& owned) {
  std::vector<FeaturesView> views;
  views.reserve(owned.size());
  for (const Features& f : owned) views.push_back(f.view());
  return views;
}

std::vector<ExampleView> Views(const std::vector<Example>& owned) {
  std::vector<ExampleView> views;
  views.reserve(owned.size());
  for (const Example& e : owned) views.push_back(e.view());
  return views;
}

int64_t OwnedBytes(const ExampleView& v) {
  const FeaturesView& f = v.features;
  return static_cast<int64_t>(
      sizeof(Example) +
      (f.dense.size() + f.values.size() + v.served_outputs.size()) *
          sizeof(float) +
      f.indices.size() * sizeof(uint32_t));
}

}  // namespace lepton
