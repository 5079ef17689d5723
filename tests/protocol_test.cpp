// The protocols: dynamic binarisation for training, a fixed binarisation of
// the test set, gray levels untouched under gray-bce.
#include <gtest/gtest.h>

#include "vaerepro/protocol.h"

namespace {
using namespace vaerepro;

Dataset tiny() {
  return make_synthetic(64, 32, 3);
}

TEST(Protocol, TestSetIsBinarisedOnceIndependentlyOfTheRunSeed) {
  const auto data = tiny();
  torch::manual_seed(1);
  auto a = prepare_tensors(data, Protocol::kBinarized, torch::kCPU);
  torch::manual_seed(2);
  auto b = prepare_tensors(data, Protocol::kBinarized, torch::kCPU);
  EXPECT_TRUE(torch::equal(a.test, b.test));
  EXPECT_TRUE(torch::equal(a.train_eval, b.train_eval));
  EXPECT_TRUE(((a.test == 0) | (a.test == 1)).all().item<bool>());
  EXPECT_TRUE(((a.train_eval == 0) | (a.train_eval == 1)).all().item<bool>());
  // The binarised test set follows the intensities: pixels that are 0 stay 0.
  auto gray = data.test.images.reshape({32, -1}).to(torch::kFloat) / 255.0;
  EXPECT_TRUE((a.test.masked_select(gray == 0) == 0).all().item<bool>());
  EXPECT_TRUE((a.test.masked_select(gray == 1) == 1).all().item<bool>());
}

TEST(Protocol, TrainingPixelsAreResampledAtEveryUse) {
  auto d = prepare_tensors(tiny(), Protocol::kBinarized, torch::kCPU);
  auto idx = torch::arange(16);
  auto first = d.train_batch(idx), second = d.train_batch(idx);
  EXPECT_TRUE(((first == 0) | (first == 1)).all().item<bool>());
  EXPECT_FALSE(torch::equal(first, second));
  auto mean = torch::zeros_like(first);
  const int reps = 2000;
  for (int r = 0; r < reps; ++r) mean += d.train_batch(idx);
  mean /= reps;
  EXPECT_LT((mean - d.train.index_select(0, idx)).abs().max().item<double>(), 0.06);
}

TEST(Protocol, GrayBceLeavesGrayLevels) {
  const auto data = tiny();
  auto d = prepare_tensors(data, Protocol::kGrayBce, torch::kCPU);
  auto gray = data.test.images.reshape({32, -1}).to(torch::kFloat) / 255.0;
  EXPECT_TRUE(torch::allclose(d.test, gray));
  auto idx = torch::arange(8);
  EXPECT_TRUE(torch::equal(d.train_batch(idx), d.train.index_select(0, idx)));
  EXPECT_GT(((d.test > 0) & (d.test < 1)).sum().item<int64_t>(), 0);
}

TEST(Protocol, SubsetsAreThePrefixes) {
  const auto data = tiny();
  auto full = prepare_tensors(data, Protocol::kBinarized, torch::kCPU);
  auto part = prepare_tensors(data, Protocol::kBinarized, torch::kCPU, 10, 5);
  EXPECT_EQ(part.train.size(0), 10);
  EXPECT_EQ(part.test.size(0), 5);
  EXPECT_TRUE(torch::equal(part.train, full.train.narrow(0, 0, 10)));
  EXPECT_TRUE(torch::equal(part.train_labels, full.train_labels.narrow(0, 0, 10)));
}

TEST(Protocol, NamesRoundTrip) {
  EXPECT_EQ(parse_protocol("binarized"), Protocol::kBinarized);
  EXPECT_EQ(to_string(parse_protocol("gray-bce")), "gray-bce");
  EXPECT_THROW(parse_protocol("gray"), std::invalid_argument);
}

}  // namespace
