#pragma once
/// \file objectives.h
/// The ELBO and the importance-weighted bound, one value per example in nats
/// summed over pixels. The caller reduces.
///
/// Shapes: B = batch, D = observed dimensions, C = condition size,
/// Z = latent size, K = importance samples.

#include <cstdint>
#include <vector>

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

/// What a training step needs from the objective, reduced over the batch.
struct TrainingLoss {
  torch::Tensor loss;            ///< scalar: mean over the batch of -(log p(x|z) - beta KL)
  torch::Tensor log_likelihood;  ///< scalar, detached: sum over the batch of log p(x|z)
  torch::Tensor kl;              ///< scalar, detached: sum over the batch of KL(q(z|x) || p(z))
};

/// negative_beta_elbo_loss(elbo(vae, x, c), beta) computed with fewer
/// operations: the reparameterised sample and the analytic KL are one autograd
/// node (one loop forward, one backward), and the Bernoulli log-likelihood is
/// one node whose gradient is the closed form (x - sigmoid(logits)) g. The same
/// random numbers are drawn in the same order (one randn_like(mu)), so a run
/// sees the same z as through elbo(); values agree to float rounding
/// (tests/models_test.cpp, FusedTrainingLoss*). Gaussian decoders use their
/// log_prob unchanged.
TrainingLoss training_loss(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c,
                           double beta = 1.0);

/// The two fused nodes, exposed for tests.
/// z = mu + exp(logvar / 2) eps and KL summed over the batch [scalar]
/// (KW2013 appendix B: -1/2 sum(1 + logvar - mu^2 - exp(logvar))).
std::vector<torch::Tensor> fused_sample_and_kl(const torch::Tensor& mu, const torch::Tensor& logvar,
                                               const torch::Tensor& eps);
/// sum over the batch and pixels of x l - softplus(l) (Bernoulli log-likelihood
/// of logits l), as one node; a scalar.
torch::Tensor fused_bernoulli_log_prob_sum(const torch::Tensor& logits, const torch::Tensor& x);

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
torch::Tensor importance_log_weights(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c,
                                     int64_t k);

}  // namespace vaerepro
