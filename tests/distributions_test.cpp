// Log-densities and the KL against hand computations with every constant.
#include <gtest/gtest.h>

#include <cmath>

#include "vaerepro/distributions.h"

namespace {
using namespace vaerepro;
constexpr double kLog2Pi = 1.8378770664093453;

double to_double(const torch::Tensor& t) {
  return t.item<double>();
}

// (x, mean, variance) for a 1-D Gaussian, checked against the textbook formula.
struct GaussCase {
  double x, mean, var;
};
class GaussianLogProbTest : public ::testing::TestWithParam<GaussCase> {};

TEST_P(GaussianLogProbTest, MatchesHandComputation) {
  const auto c = GetParam();
  auto lp = gaussian_log_prob(torch::tensor({c.x}, torch::kDouble),
                              torch::tensor({c.mean}, torch::kDouble),
                              torch::tensor({std::log(c.var)}, torch::kDouble));
  const double expected =
      -0.5 * std::log(2 * M_PI * c.var) - (c.x - c.mean) * (c.x - c.mean) / (2 * c.var);
  EXPECT_NEAR(to_double(lp), expected, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Table, GaussianLogProbTest,
                         ::testing::Values(GaussCase{0, 0, 1}, GaussCase{1, 0, 1},
                                           GaussCase{1.0, 0.5, 2.0}, GaussCase{-0.5, 0.5, 0.5},
                                           GaussCase{3, -2, 1e-2}));

TEST(GaussianLogProb, SumsOverLastDimension) {
  auto x = torch::tensor({{1.0, -0.5}}, torch::kDouble);
  auto m = torch::tensor({{0.5, 0.5}}, torch::kDouble);
  auto lv = torch::tensor({{std::log(2.0), std::log(0.5)}}, torch::kDouble);
  const double expected =
      -0.5 * (kLog2Pi + std::log(2.0) + 0.25 / 2.0) - 0.5 * (kLog2Pi + std::log(0.5) + 1.0 / 0.5);
  auto lp = gaussian_log_prob(x, m, lv);
  ASSERT_EQ(lp.sizes(), torch::IntArrayRef({1}));
  EXPECT_NEAR(lp[0].item<double>(), expected, 1e-12);
}

TEST(StandardNormal, ConstantAtZero) {
  auto lp = standard_normal_log_prob(torch::zeros({2, 3}, torch::kDouble));
  EXPECT_NEAR(lp[0].item<double>(), -1.5 * kLog2Pi, 1e-12);
  EXPECT_NEAR(lp[1].item<double>(), -1.5 * kLog2Pi, 1e-12);
}

TEST(Bernoulli, MatchesHandComputation) {
  auto logits = torch::tensor({0.0, 2.0, -3.0}, torch::kDouble);
  auto x = torch::tensor({1.0, 0.0, 1.0}, torch::kDouble);
  auto sig = [](double l) { return 1.0 / (1.0 + std::exp(-l)); };
  const double expected = std::log(sig(0.0)) + std::log(1 - sig(2.0)) + std::log(sig(-3.0));
  EXPECT_NEAR(to_double(bernoulli_log_prob(logits, x)), expected, 1e-12);
}

TEST(Bernoulli, StableAtExtremeLogits) {
  auto logits = torch::tensor({100.0, 100.0, -100.0}, torch::kFloat);
  auto lp_one = bernoulli_log_prob(logits.narrow(0, 0, 1), torch::ones({1}));
  auto lp_zero = bernoulli_log_prob(logits.narrow(0, 1, 1), torch::zeros({1}));
  auto lp_wrong = bernoulli_log_prob(logits.narrow(0, 2, 1), torch::ones({1}));
  EXPECT_NEAR(lp_one.item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(lp_zero.item<double>(), -100.0, 1e-4);
  EXPECT_NEAR(lp_wrong.item<double>(), -100.0, 1e-4);
}

TEST(Bernoulli, GrayLevelsGiveMinusBinaryCrossEntropy) {
  auto logits = torch::tensor({0.3, -1.2}, torch::kDouble);
  auto x = torch::tensor({0.25, 0.8}, torch::kDouble);
  auto bce = torch::binary_cross_entropy_with_logits(logits, x, {}, {}, at::Reduction::Sum);
  EXPECT_NEAR(to_double(bernoulli_log_prob(logits, x)), -to_double(bce), 1e-12);
}

TEST(KL, ZeroForTheStandardNormal) {
  EXPECT_NEAR(to_double(gaussian_kl_to_standard_normal(torch::zeros({4}), torch::zeros({4}))), 0.0,
              1e-7);
}

TEST(KL, AnalyticMatchesHandComputation) {
  // KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2 per dimension.
  auto mu = torch::tensor({1.5, -0.5}, torch::kDouble);
  auto var = torch::tensor({0.25, 4.0}, torch::kDouble);
  double expected = 0;
  for (int i = 0; i < 2; ++i) {
    const double m = mu[i].item<double>(), v = var[i].item<double>();
    expected += -0.5 * std::log(v) + 0.5 * (v + m * m) - 0.5;
  }
  EXPECT_NEAR(to_double(gaussian_kl_to_standard_normal(mu, var.log())), expected, 1e-12);
}

TEST(KL, AnalyticEqualsMonteCarlo) {
  torch::manual_seed(7);
  auto mu = torch::tensor({{0.7, -1.1, 0.2}}, torch::kDouble);
  auto logvar = torch::tensor({{-1.0, 0.5, 0.0}}, torch::kDouble);
  const int64_t n = 400000;
  auto z = reparameterize(mu.expand({n, 3}), logvar.expand({n, 3}));           // [n, 3]
  auto diff = gaussian_log_prob(z, mu, logvar) - standard_normal_log_prob(z);  // [n]
  const double mc = diff.mean().item<double>();
  const double se = diff.std().item<double>() / std::sqrt(static_cast<double>(n));
  const double analytic = gaussian_kl_to_standard_normal(mu, logvar)[0].item<double>();
  EXPECT_NEAR(mc, analytic, 5 * se);
  EXPECT_LT(se, 0.01);
}

TEST(Reparameterize, HasTheRightMoments) {
  torch::manual_seed(3);
  auto mu = torch::full({200000, 1}, 2.0, torch::kDouble);
  auto logvar = torch::full({200000, 1}, std::log(0.09), torch::kDouble);
  auto z = reparameterize(mu, logvar);
  EXPECT_NEAR(z.mean().item<double>(), 2.0, 0.005);
  EXPECT_NEAR(z.std().item<double>(), 0.3, 0.005);
}

}  // namespace
