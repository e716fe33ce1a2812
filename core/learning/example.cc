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

}  // namespace lepton
