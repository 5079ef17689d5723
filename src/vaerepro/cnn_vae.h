#pragma once
/// \file cnn_vae.h
/// The convolutional VAE of seed 002 (Sumba et al. 2019, section 4.2.2 and
/// appendix A.2): two convolutional layers in the encoder, two transposed
/// ones in the decoder, batch normalisation between every two layers, Leaky
/// ReLU in the encoder, ReLU in the decoder, a sigmoid (Bernoulli) output.
///
/// The appendix gives the filter sizes, strides and padding only in a figure
/// that the text does not carry, so they are chosen here and said: 4x4
/// filters of stride 2 and padding 1 (28 -> 14 -> 7, as chapter 5's
/// convolutional blocks in vqvae.h / models.h, which have no batch
/// normalisation and residual blocks, so they are not reused), 32 then 64
/// channels, a linear map between the 64 x 7 x 7 features and the latent
/// code, Leaky ReLU slope 0.2.
///
///   encoder  x [B, 1, 28, 28] -> conv 4x4/2 (C1) -> BN -> LeakyReLU
///            -> conv 4x4/2 (C2) -> BN -> LeakyReLU -> flatten -> (mu, logvar) [B, Z]
///   decoder  z [B, Z] -> linear -> [B, C2, 7, 7] -> BN -> ReLU
///            -> convT 4x4/2 (C1) -> BN -> ReLU -> convT 4x4/2 (1) -> logits [B, 784]
///
/// In training mode batch normalisation uses the minibatch's statistics, in
/// eval mode its running averages (every number the chapter reports is taken
/// in eval mode, so an example's score does not depend on its batch).
///
/// Shapes: B = batch, K = importance samples, Z = latent size, D = 784.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vaerepro/latent_model.h"

namespace vaerepro {

struct CnnVaeOptions {
  explicit CnnVaeOptions(int64_t latent) : latent_(latent) {}
  TORCH_ARG(int64_t, latent);          ///< Z
  TORCH_ARG(int64_t, channels1) = 32;  ///< C1
  TORCH_ARG(int64_t, channels2) = 64;  ///< C2
  TORCH_ARG(int64_t, height) = 28;     ///< the image (a multiple of 4)
  TORCH_ARG(int64_t, width) = 28;
  TORCH_ARG(double, leaky_slope) = 0.2;
};

/// The convolutional VAE.
class CnnVaeImpl : public torch::nn::Module, public LatentModel {
 public:
  explicit CnnVaeImpl(const CnnVaeOptions& options);
  /// q(z | x): x [B, D] (flattened images) -> mu, logvar [B, Z].
  GaussianPosterior encode(const torch::Tensor& x);
  /// Bernoulli logits of p(x | z): z [.., Z] -> [.., D].
  torch::Tensor decode(const torch::Tensor& z);
  torch::Tensor log_weights(const torch::Tensor& x_in, const torch::Tensor& x,
                            const torch::Tensor& c, int64_t k) override;
  ElboTerms elbo_terms(const torch::Tensor& x_in, const torch::Tensor& x,
                       const torch::Tensor& c) override;
  std::vector<torch::Tensor> posterior_means(const torch::Tensor& x,
                                             const torch::Tensor& c) override;
  torch::Tensor reconstruct(const torch::Tensor& x, const torch::Tensor& c) override;
  torch::Tensor sample(int64_t n, const torch::Tensor& c) override;
  torch::nn::Module& module() override { return *this; }
  std::vector<int64_t> latent_sizes() const override { return {options.latent()}; }
  std::string describe() const override;
  CnnVaeOptions options;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d enc_bn1{nullptr}, enc_bn2{nullptr}, dec_bn0{nullptr}, dec_bn1{nullptr};
  torch::nn::Linear mu_head{nullptr}, logvar_head{nullptr}, dec_in{nullptr};
  torch::nn::ConvTranspose2d deconv1{nullptr}, deconv2{nullptr};
};
TORCH_MODULE(CnnVae);

}  // namespace vaerepro
