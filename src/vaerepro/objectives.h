#pragma once
/// \file objectives.h
/// The ELBO and the importance-weighted bound, one value per example in nats
/// summed over pixels. The caller reduces.
///
/// Shapes: B = batch, D = observed dimensions, C = condition size,
/// Z = latent size, K = importance samples.

#include <cstdint>

#include <torch/torch.h>

#include "vaerepro/models.h"

namespace vaerepro {

/// The ELBO and its two terms for each example, with one sample z ~ q(z | x)
/// (L = 1, as KW2013 section 5).
struct ElboTerms {
  torch::Tensor elbo;            ///< [B] log p(x|z) - KL
  torch::Tensor log_likelihood;  ///< [B] log p(x | z), one-sample estimate of E_q log p(x|z)
  torch::Tensor kl;              ///< [B] KL(q(z|x) || p(z)), analytic
};

/// \f[ \mathcal{L}(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)] - KL(q(z|x)\,\|\,p(z)) \f]
/// with the analytic KL (Kingma & Welling 2013, eq. 10 and appendix B).
ElboTerms elbo(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c = {});

/// The minibatch training loss: the mean over the batch of
/// \f$-(\log p(x|z) - \beta\,KL)\f$ (beta = 1 is the VAE; Higgins et al. 2017
/// otherwise). A scalar.
torch::Tensor negative_beta_elbo_loss(const ElboTerms& terms, double beta = 1.0);

/// The importance-weighted bound (Burda et al. 2015, eq. 8):
/// \f[ \mathcal{L}_K(x) = \log \frac1K \sum_{k=1}^K \frac{p(x, z_k)}{q(z_k|x)},
///     \quad z_k \sim q(z|x), \f]
/// computed with log-sum-exp over float64 log-weights, every Gaussian
/// constant included. Samples are drawn in chunks so that at most
/// `max_chunk_elements` decoder outputs (chunk x B x D) live at once.
/// Returns [B] float64. K = 1 gives a one-sample ELBO estimate.
torch::Tensor importance_weighted_bound(VaeImpl& vae, const torch::Tensor& x,
                                        const torch::Tensor& c, int64_t k,
                                        int64_t max_chunk_elements = int64_t{1} << 22);

/// Log-weights log p(x, z_k) - log q(z_k | x) for K samples: [K, B] float64.
/// The building block of importance_weighted_bound, exposed for tests and for
/// estimators that need the weights themselves.
torch::Tensor importance_log_weights(VaeImpl& vae, const torch::Tensor& x,
                                     const torch::Tensor& c, int64_t k);

}  // namespace vaerepro
