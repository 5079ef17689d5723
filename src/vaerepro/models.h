#pragma once
/// \file models.h
/// Encoders, decoders and the VAE that combines them.
///
/// Shapes: B = batch, D = observed dimensions (784), C = condition size
/// (0 when unconditional), Z = latent size, H = hidden width.
///
/// Architectures use seed 000's notation (Definition 4.1): `[h1, ..., hn]`
/// means hidden layers h1..h(n-1) in the encoder (mirrored in the decoder) and
/// latent size hn. `[500, 20]` is Kingma & Welling's MNIST model.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace vaerepro {

/// Hidden-layer nonlinearity.
enum class Activation { kTanh, kRelu, kSoftplus, kSigmoid };

/// The decoder's observation model p(x | z).
enum class Likelihood {
  kBernoulli,  ///< logits; x in {0, 1} (or gray levels under gray-bce)
  kGaussian,   ///< mean (sigmoid, as KW2013's Frey Face model) and log-variance
};

/// How a Gaussian decoder gets its variance.
enum class VarianceMode {
  kPerPixelHead,  ///< a second output head, as in KW2013 appendix C.2
  kFixed,         ///< a constant log-variance, not trained
};

Activation parse_activation(const std::string& name);  ///< tanh|relu|softplus|sigmoid
std::string to_string(Activation a);
Likelihood parse_likelihood(const std::string& name);  ///< bernoulli|gaussian
std::string to_string(Likelihood l);

/// `[h1, ..., hn]`: hidden widths and the latent size (seed 000, Def. 4.1).
struct Architecture {
  std::vector<int64_t> hidden;    ///< h1 .. h(n-1); may be empty (a linear model)
  int64_t latent = 0;             ///< hn
  std::string to_string() const;  ///< "[500, 20]"
};

/// Parses "[500,500,3]", "500,500,3" or "500 500 3". Throws
/// std::invalid_argument naming the text and the rule it broke (every entry a
/// positive integer, at least the latent size).
Architecture parse_architecture(const std::string& text);
/// parse_architecture for the command-line option `option` ("arch"): throws
/// UsageError (cli.h) "--arch: ..." instead.
Architecture parse_architecture_option(const std::string& text, const std::string& option);

/// Applies an activation function.
torch::Tensor activate(const torch::Tensor& x, Activation a);

/// Initialises every parameter of a module from N(0, std^2): KW2013 section 5,
/// "parameters initialized by random sampling from N(0, 0.01)"; we read 0.01 as
/// the standard deviation, as their published code does.
void init_normal_(torch::nn::Module& module, double std = 0.01);

/// Encodes integer labels [B] as a condition [B, C]: one-hot (C = num_classes)
/// or the raw label value as one float (C = 1), seed 000 section 3.2.
enum class ConditionEncoding { kNone, kOneHot, kRaw };
ConditionEncoding parse_condition_encoding(const std::string& name);  ///< none|one-hot|raw
std::string to_string(ConditionEncoding e);
int64_t condition_dim(ConditionEncoding e, int64_t num_classes);
torch::Tensor encode_condition(const torch::Tensor& labels, ConditionEncoding e,
                               int64_t num_classes);

/// A stack of Linear + activation layers (no activation after the last).
struct MlpOptions {
  MlpOptions(int64_t in_features, std::vector<int64_t> widths)
      : in_features_(in_features), widths_(std::move(widths)) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(std::vector<int64_t>, widths);
  TORCH_ARG(Activation, activation) = Activation::kTanh;
};

/// Hidden layers of an MLP: every layer is followed by the activation.
class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const MlpOptions& options);
  torch::Tensor forward(torch::Tensor x);  ///< [B, in] -> [B, out]
  int64_t out_features() const { return out_features_; }
  /// The Linear layers, input side first.
  const std::vector<torch::nn::Linear>& layers() const { return layers_; }
  MlpOptions options;

 private:
  std::vector<torch::nn::Linear> layers_;
  int64_t out_features_;
};
TORCH_MODULE(Mlp);

/// q(z | x, c) = N(mu, diag exp(logvar)).
struct GaussianPosterior {
  torch::Tensor mu;      ///< [B, Z]
  torch::Tensor logvar;  ///< [B, Z]
};

struct GaussianEncoderOptions {
  GaussianEncoderOptions(int64_t input_dim, Architecture arch)
      : input_dim_(input_dim), arch_(std::move(arch)) {}
  TORCH_ARG(int64_t, input_dim);
  TORCH_ARG(Architecture, arch);
  TORCH_ARG(int64_t, condition_dim) = 0;
  TORCH_ARG(Activation, activation) = Activation::kTanh;
};

/// Stores `layer`'s weight [out, in] input major in memory (as its
/// transpose [in, out] would be) without changing its values or shape; the
/// module's parameter keeps its identity. Products with it run as before.
void store_input_major(const torch::nn::Linear& layer);

/// MLP encoder x (+ c) -> hidden layers -> (mu, logvar).
class GaussianEncoderImpl : public torch::nn::Module {
 public:
  explicit GaussianEncoderImpl(const GaussianEncoderOptions& options);
  /// x [B, D], c [B, C] or undefined.
  GaussianPosterior forward(const torch::Tensor& x, const torch::Tensor& c = {});
  GaussianEncoderOptions options;
  Mlp body{nullptr};
  torch::nn::Linear mu_head{nullptr};
  torch::nn::Linear logvar_head{nullptr};
};
TORCH_MODULE(GaussianEncoder);

/// The decoder's output: the parameters of p(x | z, c).
struct DecoderOutput {
  torch::Tensor loc;     ///< [.., D] logits (Bernoulli) or mean (Gaussian)
  torch::Tensor logvar;  ///< [.., D] Gaussian log-variance; undefined for Bernoulli
};

struct DecoderOptions {
  DecoderOptions(int64_t output_dim, Architecture arch)
      : output_dim_(output_dim), arch_(std::move(arch)) {}
  TORCH_ARG(int64_t, output_dim);
  TORCH_ARG(Architecture, arch);  ///< the encoder's; the decoder mirrors it
  TORCH_ARG(int64_t, condition_dim) = 0;
  TORCH_ARG(Activation, activation) = Activation::kTanh;
  TORCH_ARG(Likelihood, likelihood) = Likelihood::kBernoulli;
  TORCH_ARG(VarianceMode, variance) = VarianceMode::kPerPixelHead;
  TORCH_ARG(double, fixed_logvar) = 0.0;  ///< used with VarianceMode::kFixed
  TORCH_ARG(bool, sigmoid_mean) = true;   ///< Gaussian mean through a sigmoid (KW2013 Frey Face)
};

/// MLP decoder z (+ c) -> mirrored hidden layers -> parameters of p(x | z).
class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const DecoderOptions& options);
  /// z [.., Z], c [.., C] or undefined.
  DecoderOutput forward(const torch::Tensor& z, const torch::Tensor& c = {});
  /// log p(x | z) summed over D: [..].
  torch::Tensor log_prob(const DecoderOutput& out, const torch::Tensor& x) const;
  /// The mean image E[x | z] in [0, 1] (for pictures).
  torch::Tensor mean(const DecoderOutput& out) const;
  DecoderOptions options;
  Mlp body{nullptr};
  torch::nn::Linear loc_head{nullptr};
  torch::nn::Linear logvar_head{nullptr};
};
TORCH_MODULE(Decoder);

struct VaeOptions {
  VaeOptions(int64_t input_dim, Architecture arch)
      : input_dim_(input_dim), arch_(std::move(arch)) {}
  TORCH_ARG(int64_t, input_dim);
  TORCH_ARG(Architecture, arch);
  TORCH_ARG(int64_t, condition_dim) = 0;
  TORCH_ARG(Activation, activation) = Activation::kTanh;
  TORCH_ARG(Likelihood, likelihood) = Likelihood::kBernoulli;
  TORCH_ARG(VarianceMode, variance) = VarianceMode::kPerPixelHead;
  TORCH_ARG(double, fixed_logvar) = 0.0;
  TORCH_ARG(bool, sigmoid_mean) = true;  ///< Gaussian decoder: mean through a sigmoid
  TORCH_ARG(double, init_std) = 0.01;    ///< KW2013 section 5; <= 0 keeps torch's default
};

/// One pass of the VAE: posterior, sample, decoder output.
struct VaeOutput {
  GaussianPosterior posterior;
  torch::Tensor z;        ///< [B, Z] one reparameterised sample
  DecoderOutput decoded;  ///< parameters of p(x | z)
};

/// A (conditional) VAE with a Gaussian encoder and a Bernoulli or Gaussian
/// decoder. The encoder's first hidden layer's weight is stored input major
/// (store_input_major, after the initialisation), so that each input
/// pixel's row is contiguous: the hand-written step (mlp_step.h) sums those
/// rows for binary inputs.
class VaeImpl : public torch::nn::Module {
 public:
  explicit VaeImpl(const VaeOptions& options);
  VaeOutput forward(const torch::Tensor& x, const torch::Tensor& c = {});
  int64_t latent_dim() const { return options.arch().latent; }
  int64_t parameter_count() const;
  VaeOptions options;
  GaussianEncoder encoder{nullptr};
  Decoder decoder{nullptr};
};
TORCH_MODULE(Vae);

}  // namespace vaerepro

namespace vaerepro {

/// Convolutional building blocks for 28x28 images (VQ-VAE, CNN VAEs):
/// two stride-2 4x4 convolutions (28 -> 14 -> 7) then residual 3x3 blocks
/// (ReLU, 3x3 conv, ReLU, 1x1 conv), as van den Oord et al. 2017 section 4.1;
/// the decoder mirrors it with transposed convolutions.
///
/// Shapes: B = batch, C = channels of the image (1), F = feature channels,
/// E = output channels of the encoder (the code dimension for a VQ-VAE).
struct ConvOptions {
  ConvOptions(int64_t channels, int64_t out_channels)
      : channels_(channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, channels);      ///< F
  TORCH_ARG(int64_t, out_channels);  ///< E
  TORCH_ARG(int64_t, image_channels) = 1;
  TORCH_ARG(int64_t, residual_blocks) = 2;
};

/// ReLU, 3x3 conv, ReLU, 1x1 conv, added to the input.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  explicit ResidualBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);  ///< [B, F, h, w] -> same
  torch::nn::Conv2d conv3{nullptr}, conv1{nullptr};
};
TORCH_MODULE(ResidualBlock);

/// [B, C, 28, 28] -> [B, E, 7, 7].
class ConvEncoderImpl : public torch::nn::Module {
 public:
  explicit ConvEncoderImpl(const ConvOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  ConvOptions options;
  torch::nn::Conv2d down1{nullptr}, down2{nullptr}, out{nullptr};
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(ConvEncoder);

/// [B, E, 7, 7] -> [B, C, 28, 28] (unnormalised: logits or means).
class ConvDecoderImpl : public torch::nn::Module {
 public:
  explicit ConvDecoderImpl(const ConvOptions& options);
  torch::Tensor forward(const torch::Tensor& z);
  ConvOptions options;
  torch::nn::Conv2d in{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::ConvTranspose2d up1{nullptr}, up2{nullptr};
};
TORCH_MODULE(ConvDecoder);

}  // namespace vaerepro
