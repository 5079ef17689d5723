#pragma once
/// \file quantizer.h
/// The VQ-VAE's vector quantiser (van den Oord, Vinyals & Kavukcuoglu 2017,
/// "Neural Discrete Representation Learning", arXiv:1711.00937, section 3.1)
/// and the documented choices for how its codebook learns, each recorded in
/// the results:
///
/// - the update: by the gradient of the codebook term ||sg[z_e] - e||^2 (the
///   paper's equation (3)), or as exponential moving averages of the encoder
///   outputs assigned to each code (vdO2017 appendix A.1: decay 0.99, with the
///   Laplace smoothing of the counts that DeepMind's Sonnet VectorQuantizerEMA
///   applies, epsilon 1e-5);
/// - the initialisation: U(-1/K, 1/K) as the paper's reference code, random
///   encoder outputs of the first training batch (openai/jukebox
///   vqvae/bottleneck.py, `init_k`), or k-means on that batch
///   (lucidrains/vector-quantize-pytorch, `kmeans_init`);
/// - dead-code restart: off, or every training step a code whose moving
///   average of assignments per step falls below a threshold is replaced by a
///   random encoder output of the current batch (Jukebox's `update_k`,
///   threshold 1; lucidrains' `threshold_ema_dead_code`).
///
/// The paper-faithful recipe (uniform, gradient, no restarts) leaves most of
/// a large codebook unused: Lancucki et al. 2020 (arXiv:2005.08520) document
/// the collapse, and every widely used implementation adds one of the above.
///
/// The statistics these choices keep (EMA sums and counts, the usage average,
/// the step count, the restarts) are registered buffers, so a module
/// checkpoint keeps them. The per-step update runs inside forward() when the
/// module is in training mode, so whichever loop trains the model updates it.
///
/// Shapes: B = batch, D = code dimension, K = codebook size, H x W = the code
/// grid, M = B * H * W vectors of a batch.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace vaerepro {

/// How the codebook vectors learn.
enum class CodebookUpdate {
  kGradient,  ///< Adam on the codebook term ||sg[z_e] - e||^2 (vdO2017 eq. 3)
  kEma,  ///< exponential moving averages of the assigned encoder outputs (vdO2017 appendix A.1)
};
/// "gradient" | "ema"; throws std::invalid_argument naming the choices.
CodebookUpdate parse_codebook_update(const std::string& name);
std::string to_string(CodebookUpdate u);  ///< "gradient" | "ema"

/// Where the codebook vectors start.
enum class CodebookInit {
  kUniform,  ///< U(-1/K, 1/K) at construction (the paper's reference code)
  kData,     ///< K random encoder outputs of the first training batch (Jukebox)
  kKmeans,   ///< k-means on the first training batch, started from kData (lucidrains)
};
/// "uniform" | "data" | "kmeans"; throws std::invalid_argument naming the choices.
CodebookInit parse_codebook_init(const std::string& name);
std::string to_string(CodebookInit i);  ///< "uniform" | "data" | "kmeans"

/// The codebook's learning choices beyond K and D.
struct CodebookOptions {
  CodebookUpdate update = CodebookUpdate::kGradient;
  double decay = 0.99;    ///< EMA decay gamma (vdO2017 appendix A.1)
  double epsilon = 1e-5;  ///< Laplace smoothing of the EMA counts (Sonnet's VectorQuantizerEMA)
  CodebookInit init = CodebookInit::kUniform;
  int64_t kmeans_iterations = 10;  ///< Lloyd iterations of kKmeans (lucidrains' default 10)
  /// Restart a code when its moving-average use per step falls below this
  /// (Jukebox: 1); 0 turns restarts off.
  double restart_threshold = 0;
  double usage_decay = 0.99;  ///< decay of the use average that restarts read (Jukebox's mu = 0.99)

  /// vdO2017 as written: uniform initialisation, gradient update, no restarts.
  static CodebookOptions as_written();
  /// The usual fixes: data initialisation, EMA (0.99, 1e-5), restarts below 1 use per step.
  static CodebookOptions usual_fixes();
  /// Every choice with its source, for the results.
  nlohmann::json to_json() const;
  /// Throws std::invalid_argument naming the field when a value is out of range.
  void validate() const;
};

/// Options of a VectorQuantizer: K codes of dimension D, and how they learn.
struct VectorQuantizerOptions {
  VectorQuantizerOptions(int64_t codes, int64_t dim) : codes_(codes), dim_(dim) {}
  TORCH_ARG(int64_t, codes);  ///< K
  TORCH_ARG(int64_t, dim);    ///< D
  TORCH_ARG(CodebookOptions, codebook) = CodebookOptions();
};

/// The result of quantising z_e [B, D, H, W].
struct Quantized {
  torch::Tensor straight_through;  ///< [B, D, H, W] z_e + sg(z_q - z_e): the value of z_q, the
                                   ///< gradient of z_e
  torch::Tensor
      z_q;  ///< [B, D, H, W] the nearest codebook vectors (gradient reaches a kGradient codebook)
  torch::Tensor codes;          ///< [B, H, W] int64 indices in [0, K)
  torch::Tensor codebook_loss;  ///< [B] mean over H, W, D of (sg[z_e] - e)^2: trains only a
                                ///< kGradient codebook
  torch::Tensor
      commitment_loss;  ///< [B] mean over H, W, D of (z_e - sg[e])^2: trains only the encoder
  torch::Tensor batch_perplexity;  ///< [] exp of the entropy of this batch's code frequencies (at
                                   ///< most min(K, M))
};

/// The codebook and nearest-code assignment (vdO2017 section 3.1, equations
/// (1)-(2)), with the learning choices of CodebookOptions.
class VectorQuantizerImpl : public torch::nn::Module {
 public:
  explicit VectorQuantizerImpl(const VectorQuantizerOptions& options);
  /// z_e [B, D, H, W] -> codes, z_q, the straight-through value and both loss
  /// terms. In training mode it first initialises the codebook from this
  /// batch (kData, kKmeans; once, at step 0), and after the assignment
  /// applies update() to this batch. z_q holds the codebook before that update.
  Quantized forward(const torch::Tensor& z_e);
  /// Nearest codebook index for each row of `flat` [M, D] (squared Euclidean
  /// distance, ties to the lowest index): [M] int64.
  torch::Tensor nearest(const torch::Tensor& flat) const;
  /// The codebook vectors of `codes` [B, H, W]: [B, D, H, W].
  torch::Tensor lookup(const torch::Tensor& codes) const;
  /// One training step's codebook statistics for the batch `flat` [M, D]
  /// assigned to `codes` [M] (no gradient): the use average
  /// u <- mu u + (1 - mu) n, then for kEma (vdO2017 appendix A.1)
  /// N <- gamma N + (1 - gamma) n, m <- gamma m + (1 - gamma) sum_j z_j,
  /// e = m / N~ with N~_i = (N_i + eps) / (sum N + K eps) * sum N; then, with
  /// restarts on, every code with u < threshold gets a random row of `flat`,
  /// u = threshold and (kEma) N = threshold, m = threshold * e. Other codes
  /// are left bit-identical by the restart.
  void update(const torch::Tensor& flat, const torch::Tensor& codes);
  /// Initialises the codebook from the rows of `flat` [M, D] (kData: K rows
  /// drawn without replacement when M >= K, with replacement otherwise;
  /// kKmeans: then Lloyd iterations, an empty cluster keeping its vector) and
  /// sets the EMA statistics to N = 1, m = e (Jukebox's init_k).
  void initialise_from(const torch::Tensor& flat);
  /// Codes whose use average is below `threshold`: the count (a sync).
  int64_t codes_below(double threshold) const;
  /// The number of restarts so far (a sync).
  int64_t restarts() const;

  VectorQuantizerOptions options;
  torch::Tensor codebook;   ///< [K, D]; a parameter (kGradient) or a buffer (kEma)
  torch::Tensor ema_count;  ///< [K] N_i of appendix A.1 (buffer; ones at start)
  torch::Tensor ema_sum;    ///< [K, D] m_i of appendix A.1 (buffer; the codebook at start)
  torch::Tensor
      usage;  ///< [K] moving average of assignments per step (buffer; the threshold at start)
  torch::Tensor steps;          ///< [] int64 training steps seen (buffer)
  torch::Tensor restart_count;  ///< [] int64 codes restarted so far (buffer)

 private:
  bool init_checked_ = false;  // steps was read once: initialise_from runs at most at step 0
};
TORCH_MODULE(VectorQuantizer);

/// The straight-through estimator: the value of `quantized`, the gradient of
/// `continuous` (the identity Jacobian). Bengio et al. 2013; vdO2017 eq. (3).
torch::Tensor straight_through(const torch::Tensor& continuous, const torch::Tensor& quantized);

/// exp of the entropy of the frequencies of `codes` (any shape, int64 in
/// [0, K)) as a 0-dim float tensor on their device: 1 for one code, K when
/// all are equally used. No sync.
torch::Tensor code_perplexity(const torch::Tensor& codes, int64_t num_codes);

}  // namespace vaerepro
