// Latent usage and traversals on models whose answer is known by construction.
#include <gtest/gtest.h>

#include <cmath>

#include "vaerepro/analysis.h"
#include "vaerepro/protocol.h"

namespace {
using namespace vaerepro;

// A linear encoder built by hand: mu_j = a_j * x_0, logvar_j = b_j, so that
// Cov_x(mu_j) = a_j^2 Var(x_0) and KL_j = E[0.5 (a_j^2 x_0^2 + e^b_j - 1 - b_j)].
TEST(LatentUsage, ActiveUnitsAndKlOfAHandBuiltEncoder) {
  Vae vae(VaeOptions(4, Architecture{{}, 3}).init_std(0.0));
  const std::vector<double> a = {1.0, 0.05, 0.0}, b = {-2.0, 0.0, 0.0};
  {
    torch::NoGradGuard no_grad;
    for (auto& p : vae->parameters()) p.zero_();
    for (int j = 0; j < 3; ++j) {
      vae->encoder->mu_head->weight[j][0] = a[j];
      vae->encoder->logvar_head->bias[j] = b[j];
    }
  }
  auto x = torch::zeros({1000, 4});
  x.select(1, 0).copy_(torch::linspace(-1, 1, 1000));
  auto u = latent_usage(*vae, x);
  const double var_x = torch::linspace(-1, 1, 1000).to(torch::kDouble).var(0, false).item<double>();
  const double mean_x2 =
      torch::linspace(-1, 1, 1000).to(torch::kDouble).pow(2).mean().item<double>();
  ASSERT_EQ(u.activity.size(), 3u);
  for (int j = 0; j < 3; ++j) {
    EXPECT_NEAR(u.activity[j], a[j] * a[j] * var_x, 1e-6);
    EXPECT_NEAR(u.kl_per_dim[j], 0.5 * (a[j] * a[j] * mean_x2 + std::exp(b[j]) - 1 - b[j]), 1e-5);
  }
  EXPECT_EQ(u.active_units, 1);  // 0.336 > 1e-2 > 0.05^2 * 0.336 = 8.4e-4 > 0
}

TEST(LatentTraversal, GeometryOrderAndHeatMap) {
  // A decoder whose first pixel is sigmoid(z_0) and second sigmoid(z_1): the
  // traversal of dimension 0 moves pixel 0 only, in increasing order.
  Vae vae(VaeOptions(2, Architecture{{}, 2}).init_std(0.0).condition_dim(3));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : vae->parameters()) p.zero_();
    vae->decoder->loc_head->weight[0][0] = 1.0;
    vae->decoder->loc_head->weight[1][1] = 1.0;
  }
  const auto values = traversal_values(2.0, 5);
  ASSERT_EQ(values, (std::vector<double>{-2, -1, 0, 1, 2}));
  auto base = torch::zeros({3, 2});
  auto cond = torch::eye(3);
  auto grid = latent_traversal(*vae, base, cond, 0, values);
  ASSERT_EQ(grid.sizes(), torch::IntArrayRef({3, 6, 2}));  // rows x (values + heat map) x pixels
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 5; ++j) {
      EXPECT_NEAR(grid[r][j][0].item<double>(), 1.0 / (1.0 + std::exp(-values[j])), 1e-6);
      EXPECT_NEAR(grid[r][j][1].item<double>(), 0.5, 1e-6);
    }
    EXPECT_NEAR(grid[r][5][0].item<double>(), 1.0, 1e-6);  // the heat map, scaled to its peak
    EXPECT_NEAR(grid[r][5][1].item<double>(), 0.0, 1e-6);
  }
  EXPECT_THROW(latent_traversal(*vae, base, cond, 2, values), c10::Error);
}

TEST(LatentTraversal, RowsAreLabelsAtThePriorsMeanOrTheFirstTestImages) {
  TensorData data;
  data.height = 2;
  data.width = 2;
  data.test = torch::rand({12, 4});
  data.test_labels = torch::arange(12) % 10;
  Vae cvae(VaeOptions(4, Architecture{{3}, 2}).condition_dim(10));
  const auto c = traversal_rows(*cvae, data, ConditionEncoding::kOneHot);
  EXPECT_TRUE(torch::equal(c.base, torch::zeros({10, 2})));
  EXPECT_TRUE(torch::equal(c.condition, torch::eye(10)));  // one row per label, in order
  EXPECT_EQ(c.description, "labels 0-9 (CVAE), other latents at the prior's mean");
  Vae vae(VaeOptions(4, Architecture{{3}, 2}));
  const auto u = traversal_rows(*vae, data, ConditionEncoding::kNone);
  EXPECT_FALSE(u.condition.defined());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(u.base, vae->encoder->forward(data.test.narrow(0, 0, 10)).mu));
  EXPECT_EQ(u.description, "the first ten test images' posterior means");
}

}  // namespace

#include "vaerepro/classifier.h"
#include "vaerepro/pictures.h"
#include "vaerepro/schema/metrics.h"

namespace {
using namespace vaerepro;

TEST(ConditionalAccuracy, RightForAKnownMockClassifier) {
  // The mock "classifies" an image as the value of its first pixel; samples
  // for labels 0..2, three each, with known hits: label 0: 3/3, 1: 1/3, 2: 0/3.
  auto labels = torch::tensor({0, 0, 0, 1, 1, 1, 2, 2, 2}, torch::kLong);
  auto first = torch::tensor({0, 0, 0, 1, 2, 0, 1, 1, 0}, torch::kFloat);
  auto samples = torch::zeros({9, 4});
  samples.select(1, 0).copy_(first);
  auto mock = [](const torch::Tensor& x) {
    return torch::one_hot(x.select(1, 0).to(torch::kLong), 3).to(torch::kFloat);  // logits [N, 3]
  };
  auto a = conditional_accuracy(mock, samples, labels, 3);
  ASSERT_EQ(a.per_label.size(), 3u);
  EXPECT_DOUBLE_EQ(a.per_label[0], 1.0);
  EXPECT_NEAR(a.per_label[1], 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(a.per_label[2], 0.0);
  EXPECT_NEAR(a.overall, 4.0 / 9, 1e-12);
  EXPECT_NEAR(a.standard_error, std::sqrt((4.0 / 9) * (5.0 / 9) / 9), 1e-12);
  EXPECT_EQ(a.per_label_count, (std::vector<int64_t>{3, 3, 3}));
  // Written under chapter 4's schema keys, which its report reads.
  const nlohmann::json j = a.to_json();
  EXPECT_EQ(j.at(schema::ch04::kPerLabelCount), (std::vector<int64_t>{3, 3, 3}));
  EXPECT_NEAR(j.at(schema::ch04::kOverall).get<double>(), 4.0 / 9, 1e-12);
  EXPECT_EQ(j.at(schema::ch04::kPerLabel).size(), 3u);
  EXPECT_EQ(j.at(schema::key::kStandardError).get<double>(), a.standard_error);
  EXPECT_EQ(j.size(), 4u);
}

TEST(LatentScatter, RowsAreTheFirstTwoMeansAndTheLabel) {
  const auto mu = torch::tensor({{0.5, -1.0, 9.0}, {2.0, 3.0, 9.0}}, torch::kFloat);
  const auto rows = latent_scatter_rows(mu, torch::tensor({7, 2}, torch::kLong));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<double>{0.5, -1.0, 7.0}));
  EXPECT_EQ(rows[1], (std::vector<double>{2.0, 3.0, 2.0}));
}

}  // namespace
