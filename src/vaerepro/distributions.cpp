#include "vaerepro/distributions.h"

#include <cmath>

namespace vaerepro {
namespace {
constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)
}  // namespace

torch::Tensor gaussian_log_prob(const torch::Tensor& x, const torch::Tensor& mean,
                                const torch::Tensor& logvar) {
  auto sq = (x - mean).pow(2) * torch::exp(-logvar);
  return -0.5 * (sq + logvar + kLog2Pi).sum(-1);
}

torch::Tensor standard_normal_log_prob(const torch::Tensor& z) {
  return -0.5 * (z.pow(2) + kLog2Pi).sum(-1);
}

torch::Tensor bernoulli_log_prob(const torch::Tensor& logits, const torch::Tensor& x) {
  // x * l - softplus(l) = x log sigmoid(l) + (1 - x) log(1 - sigmoid(l)).
  return (x * logits - torch::nn::functional::softplus(logits)).sum(-1);
}

torch::Tensor gaussian_kl_to_standard_normal(const torch::Tensor& mu, const torch::Tensor& logvar) {
  return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(-1);
}

torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar) {
  return mu + torch::exp(0.5 * logvar) * torch::randn_like(mu);
}

}  // namespace vaerepro
