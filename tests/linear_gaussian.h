#pragma once
// A test fixture shared by the estimator tests.
//
// Shapes: B = batch, D = observed, Z = latent.
#include <gtest/gtest.h>

#include <cmath>

#include "vaerepro/models.h"

namespace vaerepro::testing {

// A linear-Gaussian model: z ~ N(0, I_Z), x | z ~ N(W z + b, s^2 I_D), with the
// columns of W orthogonal so that the exact posterior is diagonal:
//   Sigma = diag(1 / (1 + |w_j|^2 / s^2)),  mu(x) = Sigma W^T (x - b) / s^2,
// and log p(x) = log N(x; b, W W^T + s^2 I).
class LinearGaussian : public ::testing::Test {
 protected:
  static constexpr int64_t kD = 4, kZ = 2;
  const double s2 = 0.3;
  torch::Tensor W, b;
  Vae vae{nullptr};

  void SetUp() override {
    torch::manual_seed(11);
    W = torch::tensor({{1.0, 0.0}, {0.0, 2.0}, {1.0, 0.0}, {0.0, -1.0}});  // [D, Z], W^T W diagonal
    b = torch::tensor({0.5, -0.2, 0.1, 0.3});
    vae = Vae(VaeOptions(kD, Architecture{{}, kZ})
                  .likelihood(Likelihood::kGaussian)
                  .variance(VarianceMode::kFixed)
                  .fixed_logvar(std::log(s2))
                  .sigmoid_mean(false)
                  .init_std(0.0));
    torch::NoGradGuard no_grad;
    vae->decoder->loc_head->weight.copy_(W);
    vae->decoder->loc_head->bias.copy_(b);
    set_exact_posterior();
  }

  void set_exact_posterior() {
    torch::NoGradGuard no_grad;
    auto col_sq = W.pow(2).sum(0);             // [Z]
    auto sigma = 1.0 / (1.0 + col_sq / s2);    // [Z]
    auto A = sigma.unsqueeze(1) * W.t() / s2;  // [Z, D]
    vae->encoder->mu_head->weight.copy_(A);
    vae->encoder->mu_head->bias.copy_(-A.matmul(b));
    vae->encoder->logvar_head->weight.zero_();
    vae->encoder->logvar_head->bias.copy_(sigma.log());
  }

  torch::Tensor exact_log_px(const torch::Tensor& x) {  // [B] float64
    auto Wd = W.to(torch::kDouble);
    auto cov = Wd.matmul(Wd.t()) + s2 * torch::eye(kD, torch::kDouble);  // [D, D]
    auto diff = x.to(torch::kDouble) - b.to(torch::kDouble);             // [B, D]
    auto sol = torch::linalg_solve(cov, diff.t()).t();                   // [B, D]
    auto maha = (diff * sol).sum(-1);
    return -0.5 * (kD * std::log(2 * M_PI) + torch::logdet(cov) + maha);
  }

  torch::Tensor data(int64_t n) {  // samples from the model itself
    return torch::randn({n, kZ}).matmul(W.t()) + b + std::sqrt(s2) * torch::randn({n, kD});
  }
};

}  // namespace vaerepro::testing
