// Quality on real data: softmax regression trained online, one pass over
// Fashion-MNIST's 60,000 training images with the default spec, then scored
// on the 10,000 test images.
#include <gtest/gtest.h>

#include "core/store/model_store.h"
#include "tools/idx.h"

namespace lepton {
namespace {

TEST(FashionMnistTest, OnePassSoftmaxReachesFloorAccuracy) {
  absl::StatusOr<LabeledImages> train = ReadFashionMnist("train");
  absl::StatusOr<LabeledImages> test = ReadFashionMnist("t10k");
  ASSERT_TRUE(train.ok()) << train.status();
  ASSERT_TRUE(test.ok()) << test.status();
  ASSERT_EQ(train->count, 60000);
  ASSERT_EQ(test->count, 10000);

  ModelStore store;
  ModelSpec spec;
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_features = train->pixels;
  spec.num_classes = 10;
  ASSERT_TRUE(store.CreateModel("fmnist", spec).ok());

  const std::vector<ExampleView> examples = DenseExamples(*train);
  constexpr size_t kBatch = 256;  // as a client streaming batches would
  for (size_t i = 0; i < examples.size(); i += kBatch) {
    const size_t n = std::min(kBatch, examples.size() - i);
    auto r =
        store.Update("fmnist", absl::MakeConstSpan(examples).subspan(i, n));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  const std::vector<ExampleView> test_examples = DenseExamples(*test);
  std::vector<FeaturesView> instances;
  for (const ExampleView& e : test_examples) instances.push_back(e.features);
  absl::StatusOr<Predictions> p = store.Predict("fmnist", instances);
  ASSERT_TRUE(p.ok()) << p.status();
  int correct = 0;
  for (size_t i = 0; i < instances.size(); ++i) {
    correct += p->labels[i] == test->labels[i];
  }
  const double accuracy = correct / 10000.0;
  auto info = store.GetModel("fmnist");
  ASSERT_TRUE(info.ok());
  std::printf("fashion-mnist one pass: test accuracy %.4f, progressive %.4f\n",
              accuracy, info->counters.progressive_accuracy());
  EXPECT_GE(accuracy, 0.80);
  EXPECT_EQ(info->counters.examples_seen, 60000u);
}

}  // namespace
}  // namespace lepton
