// Causality of the gated PixelCNN, checked by gradients over the whole
// stacked network's receptive field: the logits at position i have exactly
// zero gradient with respect to the input at i and every later position
// (raster order), and a nonzero gradient with respect to every earlier
// position, including those up and to the right of i that a plain stack of
// masked convolutions never sees (its blind spot, vdO2016 section 2.2).
// Then the prior's NLL bookkeeping and its autoregressive sampling.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "vaerepro/pixelcnn.h"

using namespace vaerepro;

namespace {

constexpr int64_t kH = 7, kW = 7, kC = 6;

/// |d sum(f(x)[:, :, r, c]) / d x| summed over batch and channels: [H, W].
torch::Tensor gradient_map(const std::function<torch::Tensor(const torch::Tensor&)>& f, int64_t r,
                           int64_t c) {
  auto x = torch::randn({2, kC, kH, kW}, torch::kFloat64).requires_grad_(true);
  auto y = f(x);  // [2, K, H, W]
  y.select(3, c).select(2, r).sum().backward();
  return x.grad().abs().sum(torch::IntArrayRef{0, 1});  // [H, W]
}

bool before(int64_t r2, int64_t c2, int64_t r, int64_t c) {
  return r2 < r || (r2 == r && c2 < c);
}

TEST(CausalMask, ShapesByHand) {
  auto a = causal_mask(CausalMask::kRasterA, 3, 3);
  EXPECT_TRUE(
      torch::equal(a, torch::tensor({1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f}).view({3, 3})));
  auto b = causal_mask(CausalMask::kRasterB, 3, 3);
  EXPECT_TRUE(
      torch::equal(b, torch::tensor({1.f, 1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f}).view({3, 3})));
  auto v = causal_mask(CausalMask::kVerticalA, 3, 3);
  EXPECT_TRUE(
      torch::equal(v, torch::tensor({1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}).view({3, 3})));
  auto h = causal_mask(CausalMask::kHorizontalB, 1, 5);
  EXPECT_TRUE(torch::equal(h, torch::tensor({1.f, 1.f, 1.f, 0.f, 0.f}).view({1, 5})));
  EXPECT_THROW(causal_mask(CausalMask::kRasterA, 2, 3), std::invalid_argument);
}

TEST(MaskedConv, TypeAExcludesTheCentreAndEverythingLater) {
  torch::manual_seed(1);
  MaskedConv2d conv(MaskedConv2dOptions(kC, 4, 5, 5, CausalMask::kRasterA));
  conv->to(torch::kFloat64);
  for (int64_t r = 0; r < kH; ++r) {
    for (int64_t c = 0; c < kW; ++c) {
      auto g = gradient_map([&](const torch::Tensor& x) { return conv->forward(x); }, r, c);
      for (int64_t r2 = 0; r2 < kH; ++r2) {
        for (int64_t c2 = 0; c2 < kW; ++c2) {
          const double v = g[r2][c2].item<double>();
          const bool in_kernel = std::abs(r2 - r) <= 2 && std::abs(c2 - c) <= 2;
          if (!before(r2, c2, r, c)) {
            EXPECT_EQ(v, 0.0) << "output (" << r << "," << c << ") sees input (" << r2 << "," << c2
                              << ")";
          } else if (in_kernel) {
            EXPECT_GT(v, 0.0) << "output (" << r << "," << c << ") misses earlier input (" << r2
                              << "," << c2 << ")";
          }
        }
      }
    }
  }
}

TEST(MaskedConv, TypeBIncludesTheCentreButNothingLater) {
  torch::manual_seed(2);
  MaskedConv2d conv(MaskedConv2dOptions(kC, 4, 3, 3, CausalMask::kRasterB));
  conv->to(torch::kFloat64);
  for (int64_t r = 0; r < kH; ++r) {
    for (int64_t c = 0; c < kW; ++c) {
      auto g = gradient_map([&](const torch::Tensor& x) { return conv->forward(x); }, r, c);
      EXPECT_GT(g[r][c].item<double>(), 0.0)
          << "type B must see its own position (" << r << "," << c << ")";
      for (int64_t r2 = 0; r2 < kH; ++r2) {
        for (int64_t c2 = 0; c2 < kW; ++c2) {
          if (before(r2, c2, r, c) || (r2 == r && c2 == c)) continue;
          EXPECT_EQ(g[r2][c2].item<double>(), 0.0)
              << "(" << r << "," << c << ") sees later (" << r2 << "," << c2 << ")";
        }
      }
    }
  }
}

TEST(GatedPixelCnn, WholeNetworkIsCausalAndHasNoBlindSpot) {
  // A 7x7 type-A first layer and three gated blocks reach every earlier
  // position of a 7x7 map; each must be seen, no later one (nor i itself).
  torch::manual_seed(3);
  GatedPixelCnn net(GatedPixelCnnOptions(5).channels(kC).blocks(3).first_kernel(7).kernel(3));
  net->to(torch::kFloat64);
  for (int64_t r = 0; r < kH; ++r) {
    for (int64_t c = 0; c < kW; ++c) {
      auto g = gradient_map([&](const torch::Tensor& x) { return net->forward_embedded(x); }, r, c);
      for (int64_t r2 = 0; r2 < kH; ++r2) {
        for (int64_t c2 = 0; c2 < kW; ++c2) {
          const double v = g[r2][c2].item<double>();
          if (before(r2, c2, r, c)) {
            EXPECT_GT(v, 0.0) << "blind spot: output (" << r << "," << c << ") misses earlier ("
                              << r2 << "," << c2 << ")";
          } else {
            EXPECT_EQ(v, 0.0) << "leak: output (" << r << "," << c << ") sees (" << r2 << "," << c2
                              << ")";
          }
        }
      }
    }
  }
}

TEST(GatedPixelCnn, PlainMaskedStackHasTheBlindSpotTheTwoStacksRemove) {
  // A plain stack (type A then type B 3x3 raster masks) never reaches the
  // input one row up and two columns right, whatever its depth; the gated
  // network of the same depth does.
  torch::manual_seed(4);
  torch::nn::Sequential plain;
  plain->push_back(MaskedConv2d(MaskedConv2dOptions(kC, kC, 3, 3, CausalMask::kRasterA)));
  for (int i = 0; i < 5; ++i) {
    plain->push_back(torch::nn::Functional([](const torch::Tensor& t) { return torch::tanh(t); }));
    plain->push_back(MaskedConv2d(MaskedConv2dOptions(kC, kC, 3, 3, CausalMask::kRasterB)));
  }
  plain->to(torch::kFloat64);
  GatedPixelCnn gated(GatedPixelCnnOptions(5).channels(kC).blocks(5).first_kernel(3).kernel(3));
  gated->to(torch::kFloat64);
  const int64_t r = 3, c = 3;
  auto gp = gradient_map([&](const torch::Tensor& x) { return plain->forward(x); }, r, c);
  auto gg = gradient_map([&](const torch::Tensor& x) { return gated->forward_embedded(x); }, r, c);
  for (auto [r2, c2] : {std::pair<int64_t, int64_t>{2, 5}, {2, 6}, {1, 6}}) {
    EXPECT_EQ(gp[r2][c2].item<double>(), 0.0)
        << "the plain stack was expected to miss (" << r2 << "," << c2 << ")";
    EXPECT_GT(gg[r2][c2].item<double>(), 0.0)
        << "the gated network misses (" << r2 << "," << c2 << ")";
  }
  // Both see the position just up-right, and neither sees the centre.
  EXPECT_GT(gp[2][4].item<double>(), 0.0);
  EXPECT_EQ(gp[r][c].item<double>(), 0.0);
  EXPECT_EQ(gg[r][c].item<double>(), 0.0);
}

TEST(GatedPixelCnn, NllIsTheSumOfPerPositionCrossEntropies) {
  torch::manual_seed(5);
  GatedPixelCnn net(GatedPixelCnnOptions(4).channels(8).blocks(2));
  auto codes = torch::randint(4, {3, kH, kW}, torch::kInt64);
  auto logits = net->forward(codes);  // [3, 4, 7, 7]
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, 4, kH, kW}));
  auto logp = torch::log_softmax(logits, 1).gather(1, codes.unsqueeze(1)).squeeze(1);  // [3, 7, 7]
  EXPECT_TRUE(torch::allclose(net->nll(codes), -logp.sum(torch::IntArrayRef{1, 2}), 1e-5, 1e-4));
  auto m = evaluate_prior(*net, codes);
  EXPECT_NEAR(m.bits_per_dim, m.nats_per_map / (kH * kW * std::log(2.0)), 1e-12);
  EXPECT_EQ(m.maps, 3);
}

TEST(GatedPixelCnn, SamplingFollowsTheLearnedConditionals) {
  // Maps that are constant (all 0 or all 1, equally often): the first
  // position is a coin flip, every later one copies it. A trained prior's
  // samples must be constant maps of both kinds, and its NLL near ln 2.
  torch::manual_seed(6);
  auto bits = torch::randint(2, {256}, torch::kInt64);
  auto maps = bits.view({256, 1, 1}).expand({256, kH, kW}).contiguous();
  GatedPixelCnn net(GatedPixelCnnOptions(2).channels(16).blocks(2));
  PriorTrainOptions o;
  o.epochs = 40;
  o.batch_size = 64;
  o.lr = 1e-2;
  o.progress_seconds = 0;
  auto curve = train_prior(*net, maps, maps, o).curve;
  EXPECT_LT(curve.back().test.nats_per_map, std::log(2.0) + 0.3);
  auto s = net->sample(200, torch::kCPU);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{200, kH, kW}));
  auto first = s.select(2, 0).select(1, 0);                          // [200]
  auto constant = (s == first.view({200, 1, 1})).flatten(1).all(1);  // [200]
  EXPECT_GE(constant.sum().item<int64_t>(), 190);
  const auto ones = first.sum().item<int64_t>();
  EXPECT_GT(ones, 50);  // both kinds, near half each
  EXPECT_LT(ones, 150);
}

}  // namespace
