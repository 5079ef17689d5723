#pragma once
// A small data set for training tests: `train` (256) 8x8 images, noisy copies of four
// random binary prototypes (the label is the prototype), the first `test` (64)
// binarised once as the test set; seeded.

#include <torch/torch.h>

#include "vaerepro/protocol.h"

namespace vaerepro::test {

inline TensorData four_prototypes(int64_t train = 256, int64_t test = 64) {
  torch::manual_seed(4);
  TensorData d;
  auto protos = (torch::rand({4, 64}) > 0.5).to(torch::kFloat);
  auto labels = torch::randint(0, 4, {train}, torch::kLong);
  d.train = protos.index_select(0, labels) * 0.9 + 0.05;
  d.train_eval = d.train.bernoulli();
  d.test = d.train.narrow(0, 0, test).bernoulli();
  d.train_labels = labels;
  d.test_labels = labels.narrow(0, 0, test);
  d.num_classes = 4;
  d.height = 8;
  d.width = 8;
  return d;
}

}  // namespace vaerepro::test
