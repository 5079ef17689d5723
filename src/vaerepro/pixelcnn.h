#pragma once
/// \file pixelcnn.h
/// A gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation
/// with PixelCNN Decoders", arXiv:1606.05328, section 2) over maps of discrete
/// codes: the prior of a VQ-VAE (vdO2017 section 3.2; seed 000 section 4.2).
///
/// The order is raster order: position (r, c) comes before (r', c') when
/// r < r', or r = r' and c < c'. Two stacks remove the blind spot of a plain
/// stack of masked convolutions:
/// - the vertical stack at (r, c) sees only rows above r (every column its
///   kernels reach, so also up and to the right);
/// - the horizontal stack at (r, c) sees row r left of c, plus the vertical
///   stack at (r, c).
/// The first layer is "type A" (excludes the centre: the output at a position
/// never sees that position's input); later layers are "type B" (include the
/// centre, which by then carries only earlier inputs). Causality is enforced
/// by multiplying each kernel with a fixed 0/1 mask, and checked by gradients
/// in tests/pixelcnn_test.cpp.
///
/// Shapes: B = batch, K = codes (classes per position), C = channels,
/// H x W = the map (7 x 7 here).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/checkpoint.h"

namespace vaerepro {

/// Which inputs a masked kernel may see, relative to its centre (cr, cc).
enum class CausalMask {
  kRasterA,      ///< rows < cr, and row cr left of cc (PixelCNN type A)
  kRasterB,      ///< kRasterA plus the centre (type B)
  kVerticalA,    ///< rows < cr, every column (the vertical stack's first layer)
  kVerticalB,    ///< rows <= cr, every column (later vertical layers)
  kHorizontalA,  ///< row cr, columns < cc (the horizontal stack's first layer)
  kHorizontalB,  ///< row cr, columns <= cc (later horizontal layers)
};

/// The 0/1 mask [kh, kw] of a kernel (odd sizes).
torch::Tensor causal_mask(CausalMask type, int64_t kh, int64_t kw);

struct MaskedConv2dOptions {
  MaskedConv2dOptions(int64_t in, int64_t out, int64_t kh, int64_t kw, CausalMask mask)
      : in_(in), out_(out), kh_(kh), kw_(kw), mask_(mask) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, kh);  ///< odd
  TORCH_ARG(int64_t, kw);  ///< odd
  TORCH_ARG(CausalMask, mask);
};

/// A 2-D convolution ("same" padding) whose kernel is multiplied by a causal
/// mask on every forward pass, so masked weights neither act nor learn.
class MaskedConv2dImpl : public torch::nn::Module {
 public:
  explicit MaskedConv2dImpl(const MaskedConv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  ///< [B, in, H, W] -> [B, out, H, W]
  MaskedConv2dOptions options;
  torch::nn::Conv2d conv{nullptr};
  torch::Tensor mask;  ///< buffer [1, 1, kh, kw]
};
TORCH_MODULE(MaskedConv2d);

/// tanh(a) * sigmoid(b) of the two halves of the channels: [B, 2C, ..] -> [B, C, ..].
torch::Tensor gated_activation(const torch::Tensor& x);

/// The vertical and horizontal stacks' features after a layer.
struct Stacks {
  torch::Tensor vertical;    ///< [B, C, H, W]
  torch::Tensor horizontal;  ///< [B, C, H, W]
};

struct GatedBlockOptions {
  GatedBlockOptions(int64_t in, int64_t channels, int64_t kernel, bool first)
      : in_(in), channels_(channels), kernel_(kernel), first_(first) {}
  TORCH_ARG(int64_t, in);        ///< input channels (the embedding for the first block)
  TORCH_ARG(int64_t, channels);  ///< C
  TORCH_ARG(int64_t, kernel);    ///< odd
  TORCH_ARG(bool, first);        ///< type A masks and no residual connection
};

/// One gated layer with both stacks (vdO2016 Figure 2):
///   v' = gate(Vconv(v)),  h' = h + 1x1(gate(Hconv(h) + 1x1(Vconv(v)))).
class GatedBlockImpl : public torch::nn::Module {
 public:
  explicit GatedBlockImpl(const GatedBlockOptions& options);
  Stacks forward(const Stacks& in);
  GatedBlockOptions options;
  MaskedConv2d vertical{nullptr}, horizontal{nullptr};
  torch::nn::Conv2d vertical_to_horizontal{nullptr}, horizontal_out{nullptr};
};
TORCH_MODULE(GatedBlock);

struct GatedPixelCnnOptions {
  explicit GatedPixelCnnOptions(int64_t codes) : codes_(codes) {}
  TORCH_ARG(int64_t, codes);             ///< K
  TORCH_ARG(int64_t, channels) = 64;     ///< C, also the code embedding's size
  TORCH_ARG(int64_t, blocks) = 15;       ///< gated layers after the first; seed 000's code: 15
  TORCH_ARG(int64_t, first_kernel) = 7;  ///< vdO2016: a 7x7 type-A first layer
  TORCH_ARG(int64_t, kernel) = 3;
  TORCH_ARG(int64_t, height) = 7;
  TORCH_ARG(int64_t, width) = 7;
};

/// An unconditional gated PixelCNN over [H, W] maps of codes in [0, K).
class GatedPixelCnnImpl : public torch::nn::Module {
 public:
  explicit GatedPixelCnnImpl(const GatedPixelCnnOptions& options);
  /// codes [B, H, W] int64 -> logits [B, K, H, W] of p(code at (r,c) | earlier codes).
  torch::Tensor forward(const torch::Tensor& codes);
  /// The same from an already embedded input [B, C, H, W] (differentiable:
  /// the causality tests take gradients with respect to it).
  torch::Tensor forward_embedded(const torch::Tensor& x);
  /// -log p(codes) per map [B] in nats (sum over the H*W positions).
  torch::Tensor nll(const torch::Tensor& codes);
  /// Draws `n` maps autoregressively: H*W sequential steps, each one forward
  /// pass over the whole batch, on `device`. Returns [n, H, W] int64.
  torch::Tensor sample(int64_t n, torch::Device device, double temperature = 1.0);
  int64_t parameter_count() const;
  GatedPixelCnnOptions options;
  torch::nn::Embedding embedding{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Conv2d head1{nullptr}, head2{nullptr};
};
TORCH_MODULE(GatedPixelCnn);

/// Means over a set of maps, accumulated in float64.
struct PriorMetrics {
  double nats_per_map = 0;
  double bits_per_dim = 0;  ///< nats_per_map / (H * W * ln 2)
  int64_t maps = 0;
  nlohmann::json to_json() const;
  /// The inverse of to_json (exact: doubles round-trip).
  static PriorMetrics from_json(const nlohmann::json& j);
};

/// The prior's NLL on `codes` [N, H, W] in batches (no gradient).
PriorMetrics evaluate_prior(GatedPixelCnnImpl& prior, const torch::Tensor& codes,
                            int64_t batch_size = 500);

/// One epoch of the prior's training curve.
struct PriorCurvePoint {
  double epochs = 0;
  PriorMetrics train;  ///< mean of the minibatch NLLs over the epoch
  PriorMetrics test;
  double wall_seconds = 0;  ///< since the start of training, after this epoch's evaluation
  /// epochs, train, test, wall_seconds.
  nlohmann::json to_json() const;
  /// The inverse of to_json (exact: doubles round-trip).
  static PriorCurvePoint from_json(const nlohmann::json& j);
};
/// PriorCurvePoint::to_json as nlohmann's ADL hook (so that a curve converts as an array).
inline void to_json(nlohmann::json& j, const PriorCurvePoint& p) {
  j = p.to_json();
}

struct PriorTrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 100;
  double lr = 1e-3;  ///< Adam
  std::string label;
  double progress_seconds = 10;
  /// Divergence: a minibatch NLL per map above this many times a uniform
  /// guess's (H * W * log K nats) stops the run (0: no such check).
  double divergence_factor = 10;
  /// Checkpoints (loop.h): resume from a matching one, save every
  /// every_seconds, on SIGINT/SIGTERM and at the end (a complete one is
  /// reused without training). Disabled when its path is empty.
  CheckpointOptions checkpoint;
};

/// The outcome of train_prior.
struct PriorTrainResult {
  std::vector<PriorCurvePoint> curve;  ///< one point per epoch
  int64_t samples_seen = 0;            ///< maps trained on (epochs x N)
  double train_seconds = 0;            ///< optimisation only
  double eval_seconds = 0;             ///< the test set's NLL after each epoch
  std::vector<int64_t> resumed_at;     ///< samples seen at each resumption from a checkpoint
};

/// Trains the prior by maximum likelihood on `train` [N, H, W] with Adam,
/// evaluating `test` after every epoch, in the suite's training loop
/// (loop.h: checkpoints, the stop flag, the NLL read from the device every
/// kLossCheckSteps steps). Throws std::runtime_error on a non-finite or
/// exploding loss (divergence_factor); checks the stop flag every step
/// (Interrupted, stop.h). Leaves the prior in eval mode.
PriorTrainResult train_prior(GatedPixelCnnImpl& prior, const torch::Tensor& train,
                             const torch::Tensor& test, const PriorTrainOptions& options);

}  // namespace vaerepro
