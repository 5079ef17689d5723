#pragma once
/// \file iwae.h
/// The two-stochastic-layer network of Burda, Grosse & Salakhutdinov 2015
/// (IWAE, section 5 and appendix C), as seed 002 (Sumba et al. 2019,
/// section 4.2.4) uses it: tanh throughout, a sigmoid (Bernoulli) output.
///
///   generative  h2 ~ N(0, I);  h1 | h2 ~ N(mu, diag sigma^2) from h2-H2-H2;
///               x | h1 ~ Bernoulli from h1-H1-H1
///   inference   h1 | x ~ N from x-H1-H1;  h2 | h1 ~ N from h1-H2-H2
///
/// with H1 = 200 and H2 = 100 deterministic units ("h1 = 200 and h2 = 100
/// hidden units", seed 002 section 4.2.4; Burda et al.'s x-200-200-100-100-100-50).
/// The seed varies "the latent space" N_z without saying which layer it is;
/// here it is the top layer h2 (the one samples start from), and h1 keeps
/// Burda et al.'s 100 units unless set otherwise. Its k-sample objective is
/// iwae_bound (latent_model.h); the same network trained with the plain ELBO
/// separates the objective's effect from the architecture's.
///
/// Seed 002's appendix A.3 writes log w with both log N(h1 | mu_p1, sigma_p1)
/// and log N(h1 | 0, I) (a prior on h1 counted twice) and the sign of its
/// q terms flipped in the expanded form; log_weights below uses
/// log w = log p(h2) + log p(h1 | h2) + log p(x | h1) - log q(h1 | x) - log q(h2 | h1).
///
/// Shapes: B = batch, D = pixels, K = importance samples, Z1, Z2 = the
/// stochastic layers' sizes.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vaerepro/latent_model.h"
#include "vaerepro/models.h"

namespace vaerepro {

struct TwoLayerVaeOptions {
  TwoLayerVaeOptions(int64_t input_dim, int64_t z1, int64_t z2)
      : input_dim_(input_dim), z1_(z1), z2_(z2) {}
  TORCH_ARG(int64_t, input_dim);  ///< D
  TORCH_ARG(int64_t, z1);         ///< first stochastic layer (Burda et al.: 100)
  TORCH_ARG(int64_t, z2);         ///< second (top) stochastic layer (Burda et al.: 50; here N_z)
  TORCH_ARG(int64_t, hidden1) = 200;  ///< the two deterministic layers between x and h1
  TORCH_ARG(int64_t, hidden2) = 100;  ///< the two deterministic layers between h1 and h2
  TORCH_ARG(Activation, activation) = Activation::kTanh;
};

/// A diagonal Gaussian layer: an MLP body and two linear heads.
class GaussianLayerImpl : public torch::nn::Module {
 public:
  GaussianLayerImpl(int64_t in, std::vector<int64_t> hidden, int64_t out, Activation activation);
  GaussianPosterior forward(const torch::Tensor& h);  ///< [.., in] -> mu, logvar [.., out]
  Mlp body{nullptr};
  torch::nn::Linear mu_head{nullptr}, logvar_head{nullptr};
};
TORCH_MODULE(GaussianLayer);

/// One draw of both stochastic layers from q, with the densities log_weights needs.
struct TwoLayerSample {
  torch::Tensor h1, h2;          ///< [K, B, Z1], [K, B, Z2]
  torch::Tensor log_q;           ///< [K, B] log q(h1 | x) + log q(h2 | h1)
  torch::Tensor log_prior;       ///< [K, B] log p(h2) + log p(h1 | h2)
  torch::Tensor log_likelihood;  ///< [K, B] log p(x | h1)
};

/// The two-stochastic-layer VAE / IWAE network.
class TwoLayerVaeImpl : public torch::nn::Module, public LatentModel {
 public:
  explicit TwoLayerVaeImpl(const TwoLayerVaeOptions& options);
  /// K reparameterised draws (h1, h2) ~ q(. | x_in) and every density at them.
  TwoLayerSample draw(const torch::Tensor& x_in, const torch::Tensor& x, int64_t k);
  torch::Tensor log_weights(const torch::Tensor& x_in, const torch::Tensor& x,
                            const torch::Tensor& c, int64_t k) override;
  /// One sample: log_likelihood = log p(x | h1), kl = log q(h1, h2 | x) - log p(h1, h2).
  ElboTerms elbo_terms(const torch::Tensor& x_in, const torch::Tensor& x,
                       const torch::Tensor& c) override;
  /// E_q[h1 | x] = mu_q1(x); E_q[h2 | x] = E_{q(h1|x)} mu_q2(h1) by 16 draws of h1.
  std::vector<torch::Tensor> posterior_means(const torch::Tensor& x,
                                             const torch::Tensor& c) override;
  torch::Tensor reconstruct(const torch::Tensor& x, const torch::Tensor& c) override;
  /// h2 ~ N(0, I), h1 ~ p(h1 | h2), then the Bernoulli means of p(x | h1).
  torch::Tensor sample(int64_t n, const torch::Tensor& c) override;
  torch::nn::Module& module() override { return *this; }
  std::vector<int64_t> latent_sizes() const override { return {options.z1(), options.z2()}; }
  std::string describe() const override;
  TwoLayerVaeOptions options;
  GaussianLayer q1{nullptr}, q2{nullptr}, p1{nullptr};
  Mlp px_body{nullptr};
  torch::nn::Linear px_logits{nullptr};
};
TORCH_MODULE(TwoLayerVae);

/// The LatentModel behind a TwoLayerVae holder (the module's own object).
inline LatentModel& as_latent(TwoLayerVae& m) {
  return *m;
}

}  // namespace vaerepro
