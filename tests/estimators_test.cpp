// Marginal-likelihood estimators against the closed-form log p(x) of a
// linear-Gaussian model.
#include <gtest/gtest.h>

#include <cmath>

#include "linear_gaussian.h"
#include "vaerepro/estimators.h"

namespace {
using namespace vaerepro;
using vaerepro::testing::LinearGaussian;

void worsen_encoder(Vae& vae) {  // shifted, and twice as wide as the posterior
  torch::NoGradGuard no_grad;
  vae->encoder->mu_head->bias.add_(0.4);
  vae->encoder->logvar_head->bias.add_(std::log(2.0));
}

TEST_F(LinearGaussian, ImportanceSampledIsExactWithTheExactPosterior) {
  auto x = data(5);
  auto e = importance_sampled_log_marginal(*vae, x, {}, 500, 4 * 5 * 64);  // several chunks
  auto truth = exact_log_px(x);
  EXPECT_LT((e.log_px - truth).abs().max().item<double>(), 1e-4);
  EXPECT_LT(e.standard_error.max().item<double>(), 1e-3);
}

TEST_F(LinearGaussian, ImportanceSampledApproachesLogPxFromBelowWithItsStatedError) {
  worsen_encoder(vae);
  auto x = data(4);
  auto truth = exact_log_px(x);
  // Repeated estimates at K = 20: their mean is below log p(x), their spread
  // matches the stated (delta-method) standard error.
  std::vector<torch::Tensor> reps;
  torch::Tensor se_sum = torch::zeros({4}, torch::kDouble);
  for (int r = 0; r < 300; ++r) {
    auto e = importance_sampled_log_marginal(*vae, x, {}, 20);
    reps.push_back(e.log_px);
    se_sum += e.standard_error;
  }
  auto all = torch::stack(reps);  // [R, B]
  auto spread = all.std(0), stated = se_sum / 300.0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_LT(all.mean(0)[i].item<double>(), truth[i].item<double>());
    EXPECT_NEAR(spread[i].item<double>() / stated[i].item<double>(), 1.0, 0.35);
  }
  // Large K: close to log p(x), within the stated error.
  auto big = importance_sampled_log_marginal(*vae, x, {}, 20000);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(big.log_px[i].item<double>(), truth[i].item<double>(),
                4 * big.standard_error[i].item<double>() + 2e-3);
  }
}

TEST_F(LinearGaussian, HmcEstimatorLandsWithinItsStatedError) {
  worsen_encoder(vae);  // the chains start away from the posterior mean
  auto x = data(6);
  auto truth = exact_log_px(x);
  HmcOptions o;
  o.burn_in = 200;
  o.samples = 300;
  auto h = hmc_log_marginal(*vae, x, {}, o);
  for (int i = 0; i < 6; ++i) {
    const double se = h.estimate.standard_error[i].item<double>();
    EXPECT_GT(se, 0.0);
    EXPECT_LT(se, 0.05) << "the estimator should be informative here";
    EXPECT_NEAR(h.estimate.log_px[i].item<double>(), truth[i].item<double>(), 4 * se + 0.02)
        << "example " << i << " (stated error " << se << ")";
    EXPECT_GT(h.acceptance[i].item<double>(), 0.5);
  }
}

TEST(SetEstimate, SummarizesMeansAndErrors) {
  LogMarginalEstimate e{torch::tensor({-1.0, -3.0}, torch::kDouble),
                        torch::tensor({0.1, 0.3}, torch::kDouble)};
  auto s = summarize(e);
  EXPECT_DOUBLE_EQ(s.mean, -2.0);
  EXPECT_NEAR(s.standard_error_data, std::sqrt(2.0) / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(s.mean_mc_standard_error, 0.2, 1e-12);
  EXPECT_EQ(s.examples, 2);
}

TEST(ImportanceSampled, LogWeightsNearMinus1e4KeepTheAnswerAndTheError) {
  torch::manual_seed(5);
  Vae vae(VaeOptions(784, Architecture{{}, 2}).init_std(0.0));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : vae->parameters()) p.zero_();
    vae->decoder->loc_head->bias.fill_(13.0);
  }
  auto e = importance_sampled_log_marginal(*vae, torch::zeros({2, 784}), {}, 64, 784 * 2 * 5);
  const double expected = -784.0 * std::log1p(std::exp(13.0));
  ASSERT_TRUE(torch::isfinite(e.log_px).all().item<bool>());
  EXPECT_NEAR(e.log_px[0].item<double>(), expected, 0.05);
  EXPECT_LT(e.standard_error.max().item<double>(), 1e-6);  // every weight equal
}

}  // namespace
