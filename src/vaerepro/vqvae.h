#pragma once
/// \file vqvae.h
/// The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete
/// Representation Learning", arXiv:1711.00937; seed 000 section 3.3): a
/// convolutional encoder to a grid of vectors z_e, each replaced by its
/// nearest codebook vector (z_q), the straight-through estimator, and the
/// loss of the paper's equation (3)
/// \f[ L = \mathrm{rec}(x, \mathrm{dec}(z_q)) + \lVert sg[z_e] - e \rVert_2^2
///         + \beta \lVert z_e - sg[e] \rVert_2^2 . \f]
///
/// Shapes: B = batch, D = code dimension, K = codebook size, H x W = the code
/// grid (7 x 7 for 28 x 28 images), N = examples.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/checkpoint.h"
#include "vaerepro/models.h"
#include "vaerepro/quantizer.h"

namespace vaerepro {

/// What a VQ-VAE's decoder output means and how its reconstruction term is
/// scored.
enum class Reconstruction {
  kMse,        ///< the output is the mean image (no sigmoid), squared error (seed 000 section 4)
  kBernoulli,  ///< the output is per-pixel logits, binary cross-entropy
};
Reconstruction parse_reconstruction(const std::string& name);  ///< mse | bernoulli
std::string to_string(Reconstruction r);

struct VqVaeOptions {
  VqVaeOptions(int64_t codes, int64_t dim) : codes_(codes), dim_(dim) {}
  TORCH_ARG(int64_t, codes);                ///< K
  TORCH_ARG(int64_t, dim);                  ///< D
  TORCH_ARG(int64_t, channels) = 32;        ///< feature channels of encoder and decoder
  TORCH_ARG(int64_t, residual_blocks) = 2;  ///< vdO2017 section 4.1: two residual 3x3 blocks
  TORCH_ARG(double, beta) = 0.25;           ///< commitment weight, vdO2017 section 4.1
  TORCH_ARG(Reconstruction, reconstruction) = Reconstruction::kMse;  ///< seed 000 section 4: MSE
  /// How the codebook learns (quantizer.h); the default is vdO2017 as written.
  TORCH_ARG(CodebookOptions, codebook) = CodebookOptions();
};

/// One pass of the VQ-VAE.
struct VqVaeOutput {
  torch::Tensor z_e;  ///< [B, D, H, W] encoder output
  Quantized quantized;
  torch::Tensor output;  ///< [B, 1, 28, 28] mean image (kMse) or logits (kBernoulli)
};

/// The loss terms, one value per example.
struct VqVaeLoss {
  torch::Tensor reconstruction;  ///< [B] mean over pixels: squared error or binary cross-entropy
  torch::Tensor codebook;        ///< [B] ||sg[z_e] - e||^2, mean over elements
  torch::Tensor commitment;      ///< [B] ||z_e - sg[e]||^2, mean over elements
  torch::Tensor total;           ///< [B] reconstruction + codebook + beta * commitment
};

/// Encoder (28 -> 7), vector quantiser, decoder (7 -> 28).
class VqVaeImpl : public torch::nn::Module {
 public:
  explicit VqVaeImpl(const VqVaeOptions& options);
  /// x [B, 1, 28, 28] (or [B, 784]) in [0, 1].
  VqVaeOutput forward(const torch::Tensor& x);
  /// The loss of `out` for targets x [B, 1, 28, 28] (or [B, 784]).
  VqVaeLoss loss(const VqVaeOutput& out, const torch::Tensor& x) const;
  /// The code map of each image: [B, H, W] int64.
  torch::Tensor encode(const torch::Tensor& x);
  /// Decoder output (mean or logits) for code maps [B, H, W].
  torch::Tensor decode_codes(const torch::Tensor& codes);
  /// The mean image in [0, 1] of a decoder output (clamped for kMse,
  /// sigmoid for kBernoulli): [B, 1, 28, 28].
  torch::Tensor mean_image(const torch::Tensor& output) const;
  /// log p(x | z_q) per example [B], summed over pixels: Bernoulli in nats
  /// (a probability when x is binary), or a Gaussian density with per-pixel
  /// variance `sigma2` for kMse (a density on gray levels: see the chapter's caveats).
  torch::Tensor log_likelihood(const torch::Tensor& output, const torch::Tensor& x,
                               double sigma2) const;
  int64_t parameter_count() const;
  VqVaeOptions options;
  ConvEncoder encoder{nullptr};
  VectorQuantizer quantizer{nullptr};
  ConvDecoder decoder{nullptr};
};
TORCH_MODULE(VqVae);

/// How the codes are used: counts per code, the number used, and the
/// perplexity exp(H(counts / total)) (K when uniform, 1 when one code).
struct CodebookUsage {
  std::vector<int64_t> counts;  ///< [K]
  int64_t used = 0;
  double perplexity = 0;
  nlohmann::json to_json() const;
};
CodebookUsage codebook_usage(const torch::Tensor& codes, int64_t num_codes);
/// The same from counts per code (e.g. accumulated over minibatches).
CodebookUsage codebook_usage_of_counts(std::vector<int64_t> counts);

/// Means of the loss terms over a set, accumulated in float64.
struct VqSetMetrics {
  double reconstruction = 0;  ///< mean over examples of the per-pixel reconstruction term
  double codebook = 0;
  double commitment = 0;
  double mse_per_pixel = 0;  ///< of the mean image against the target, whatever the reconstruction
  double perplexity = 0;
  int64_t codes_used = 0;
  int64_t examples = 0;
  nlohmann::json to_json() const;
  /// The inverse of to_json (exact: doubles round-trip).
  static VqSetMetrics from_json(const nlohmann::json& j);
};

/// Evaluates a VQ-VAE on `x` [N, 784] in batches (no gradient, eval mode kept as is).
VqSetMetrics evaluate_vqvae(VqVaeImpl& model, const torch::Tensor& x, int64_t batch_size = 500);

/// One point of a VQ-VAE's training curve (seed 000 Fig. 16).
struct VqCurvePoint {
  int64_t samples_seen = 0;
  double epochs = 0;
  VqSetMetrics train;  ///< means of the minibatch terms since the previous point
  VqSetMetrics test;   ///< on the curve's test subset
  /// Mean over the steps since the previous point of each minibatch's code
  /// perplexity (bounded by the vectors in a batch: it understates the use
  /// of a large codebook; the test set's count does not).
  double batch_perplexity = 0;
  int64_t restarts = 0;    ///< dead-code restarts so far (quantizer.h)
  int64_t dead_codes = 0;  ///< codes whose use average is below max(restart threshold, 1) per step
  double wall_seconds = 0;
  /// samples_seen, epochs, train, test, batch_perplexity, restarts, dead_codes, wall_seconds.
  nlohmann::json to_json() const;
  /// The inverse of to_json (exact: doubles round-trip).
  static VqCurvePoint from_json(const nlohmann::json& j);
};
/// VqCurvePoint::to_json as nlohmann's ADL hook (so that a curve converts as an array).
inline void to_json(nlohmann::json& j, const VqCurvePoint& p) {
  j = p.to_json();
}

struct VqTrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 100;
  double lr = 2e-4;           ///< Adam, vdO2017 section 4.1
  int64_t curve_points = 10;  ///< evaluations along training
  int64_t curve_test_examples = 2000;
  std::string label;  ///< progress-line prefix
  double progress_seconds = 10;
  /// Divergence: a step whose loss per example exceeds this many times the
  /// first step's (at least 1 nat) stops the run (0: no such check).
  double divergence_factor = 1e3;
  /// Checkpoints (loop.h): resume from a matching one, save every
  /// every_seconds, on SIGINT/SIGTERM and at the end (a complete one is
  /// reused without training). Disabled when its path is empty.
  CheckpointOptions checkpoint;
};

struct VqTrainResult {
  std::vector<VqCurvePoint> curve;
  int64_t samples_seen = 0;
  double train_seconds = 0;         ///< optimisation only
  double eval_seconds = 0;          ///< the curve's evaluations
  std::vector<int64_t> resumed_at;  ///< samples seen at each resumption from a checkpoint
};

/// Trains with Adam on minibatches drawn by `batch(idx)` from `n_train`
/// examples (so the caller decides the protocol: gray levels or dynamic
/// binarisation), evaluating on `test` [M, 784], in the suite's training
/// loop (loop.h). Each step writes its four float64 sums (reconstruction,
/// codebook, commitment, pixel MSE) and adds its codes to a usage count on
/// the device; the host reads them every kLossCheckSteps steps. A checkpoint
/// holds the model's parameters and buffers (a quantizer's EMA statistics
/// among them), Adam's state, the data order, the generators and the
/// curve's window. Throws std::runtime_error naming the terms and step when
/// a loss becomes non-finite or explodes (divergence_factor); checks the
/// stop flag every step (Interrupted, stop.h). Leaves the model in eval mode.
VqTrainResult train_vqvae(VqVaeImpl& model, int64_t n_train,
                          const std::function<torch::Tensor(const torch::Tensor&)>& batch,
                          const torch::Tensor& test, const VqTrainOptions& options);

}  // namespace vaerepro
