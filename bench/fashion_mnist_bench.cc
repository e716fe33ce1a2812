// Quality and speed on real data: trains a softmax model online on
// Fashion-MNIST's 60,000 training images (one pass, batches as a client would
// send them) with the default spec, then evaluates it on the 10,000 test
// images. Prints test accuracy, progressive (predict-then-learn) accuracy,
// learning and prediction throughput, and the model version.
//
//   fashion_mnist_bench [--batch=256] [--minibatch=N] [--learning_rate=X]
//                       [--data_dir=/usr/share/datasets/fashion-mnist]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "core/store/model_store.h"
#include "tools/idx.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lepton;
  size_t batch = 256;
  std::string dir = "/usr/share/datasets/fashion-mnist";
  ModelSpec spec;
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_classes = 10;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      return absl::StartsWith(arg, flag) ? argv[i] + std::string(flag).size()
                                         : nullptr;
    };
    bool ok = true;
    if (const char* v = value("--batch=")) {
      ok = absl::SimpleAtoi(v, &batch) && batch > 0;
    } else if (const char* v = value("--minibatch=")) {
      ok = absl::SimpleAtoi(v, &spec.minibatch_size);
    } else if (const char* v = value("--learning_rate=")) {
      ok = absl::SimpleAtof(v, &spec.optimizer.learning_rate);
    } else if (const char* v = value("--data_dir=")) {
      dir = v;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "fashion_mnist_bench: bad argument %s\n", argv[i]);
      return 2;
    }
  }

  absl::StatusOr<LabeledImages> train = ReadFashionMnist("train", dir);
  absl::StatusOr<LabeledImages> test = ReadFashionMnist("t10k", dir);
  if (!train.ok() || !test.ok()) {
    std::fprintf(
        stderr, "fashion_mnist_bench: %s\n",
        (!train.ok() ? train.status() : test.status()).ToString().c_str());
    return 1;
  }
  spec.num_features = train->pixels;

  ModelStore store;
  if (absl::Status s = store.CreateModel("fashion-mnist", spec).status();
      !s.ok()) {
    std::fprintf(stderr, "fashion_mnist_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::vector<ExampleView> examples = DenseExamples(*train);
  const auto learn_start = Clock::now();
  for (size_t i = 0; i < examples.size(); i += batch) {
    const size_t n = std::min(batch, examples.size() - i);
    auto r = store.Update("fashion-mnist",
                          absl::MakeConstSpan(examples).subspan(i, n));
    if (!r.ok()) {
      std::fprintf(stderr, "fashion_mnist_bench: %s\n",
                   r.status().ToString().c_str());
      return 1;
    }
  }
  const double learn_seconds = Seconds(learn_start);

  std::vector<FeaturesView> instances;
  for (const ExampleView& e : DenseExamples(*test)) {
    instances.push_back(e.features);
  }
  int64_t correct = 0;
  uint64_t version = 0;
  const auto predict_start = Clock::now();
  for (size_t i = 0; i < instances.size(); i += batch) {
    const size_t n = std::min(batch, instances.size() - i);
    auto p = store.Predict("fashion-mnist",
                           absl::MakeConstSpan(instances).subspan(i, n));
    if (!p.ok()) {
      std::fprintf(stderr, "fashion_mnist_bench: %s\n",
                   p.status().ToString().c_str());
      return 1;
    }
    version = p->version;
    for (size_t j = 0; j < n; ++j)
      correct += p->labels[j] == test->labels[i + j];
  }
  const double predict_seconds = Seconds(predict_start);
  const ModelInfo info = *store.GetModel("fashion-mnist");

  std::printf(
      "Fashion-MNIST, softmax, one pass, batch %zu, minibatch %d, "
      "%s lr %g\n",
      batch, spec.minibatch_size,
      std::string(OptimizerKindName(spec.optimizer.kind)).c_str(),
      spec.optimizer.learning_rate);
  std::printf("  test accuracy          %.4f  (10,000 test images)\n",
              correct / static_cast<double>(instances.size()));
  std::printf("  progressive accuracy   %.4f  progressive log loss %.4f\n",
              info.counters.progressive_accuracy(),
              info.counters.progressive_loss());
  std::printf(
      "  learning               %.0f examples/s (%zu examples, "
      "including validation and progressive scoring)\n",
      examples.size() / learn_seconds, examples.size());
  std::printf("  prediction             %.0f examples/s\n",
              instances.size() / predict_seconds);
  std::printf("  model version          %llu\n",
              static_cast<unsigned long long>(version));
  return 0;
}
