#pragma once
/// \file distributions.h
/// Log-densities and divergences, each with every constant, one value per
/// example. The caller reduces.
///
/// Shapes: B = batch, D = observed dimensions (784 pixels), Z = latent size.
/// Every function sums over the last dimension and returns [...] = the
/// leading dimensions (usually [B]); inputs broadcast as torch does.

#include <torch/torch.h>

namespace vaerepro {

/// \f$\log \mathcal{N}(x; \mu, \mathrm{diag}\,e^{\ell})
///   = -\tfrac12 \sum_d \big(\log 2\pi + \ell_d + (x_d-\mu_d)^2 e^{-\ell_d}\big)\f$,
/// summed over the last dimension.
torch::Tensor gaussian_log_prob(const torch::Tensor& x, const torch::Tensor& mean,
                                const torch::Tensor& logvar);

/// \f$\log \mathcal{N}(z; 0, I) = -\tfrac12 \sum_j (\log 2\pi + z_j^2)\f$.
torch::Tensor standard_normal_log_prob(const torch::Tensor& z);

/// Bernoulli log-likelihood from logits,
/// \f$\sum_d x_d \log \sigma(l_d) + (1-x_d)\log(1-\sigma(l_d)) = \sum_d x_d l_d -
/// \mathrm{softplus}(l_d)\f$, computed stably. For x in {0, 1} this is a normalised log-probability
/// in nats; for gray levels in [0, 1] (seed 000's "gray-bce" protocol) it is minus the binary
/// cross-entropy, which is NOT a log-likelihood of the data.
torch::Tensor bernoulli_log_prob(const torch::Tensor& logits, const torch::Tensor& x);

/// Analytic \f$KL(\mathcal{N}(\mu, e^{\ell}) \,\|\, \mathcal{N}(0, I))
///   = -\tfrac12 \sum_j (1 + \ell_j - \mu_j^2 - e^{\ell_j})\f$
/// (Kingma & Welling 2013, appendix B).
torch::Tensor gaussian_kl_to_standard_normal(const torch::Tensor& mu, const torch::Tensor& logvar);

/// The reparameterisation trick: \f$z = \mu + e^{\ell/2} \odot \epsilon\f$ with
/// \f$\epsilon \sim \mathcal{N}(0, I)\f$ drawn in mu's shape.
torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar);

}  // namespace vaerepro
