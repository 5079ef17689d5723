#pragma once
/// \file vq_metrics.h
/// The measures chapter 5 reports for a VQ-VAE and its prior, here so that
/// tests reach them: the sample judge (a classifier's view of images), seed
/// 000's Table 1 reconstruction metrics, the bound log p(x | z_q) + log p(z_q)
/// of vdO2017 section 3.2 with its Gaussian variance, the codes of a set and
/// the code-use bar chart; and what the chapter records of them: the bound
/// with its caveats, seed Fig. 16's trend of the terms, the curves and code
/// counts as CSV tables.
///
/// Shapes: N = examples, P = pixels (784), C = classes, K = codebook size.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/classifier.h"
#include "vaerepro/pixelcnn.h"
#include "vaerepro/protocol.h"
#include "vaerepro/vqvae.h"

namespace vaerepro {

/// How a classifier sees a set of images.
struct SampleJudge {
  double mean_confidence = 0;   ///< mean of the largest class probability
  double standard_error = 0;    ///< of that mean: sample sd / sqrt(N) (0 for N = 1)
  double class_perplexity = 0;  ///< exp of the entropy of the predicted classes' frequencies: C
                                ///< when balanced, 1 when one class
  /// exp(H[p(y)] - E_x H[p(y | x)]): the Inception score of Salimans et al.
  /// 2016 with this classifier; in [1, C], high when each image is
  /// confidently one class and the classes are diverse.
  double classifier_score = 0;
  int64_t examples = 0;
  nlohmann::json to_json() const;
};

/// The judge of class probabilities `p` [N, C] (rows summing to 1), in float64.
SampleJudge judge_probabilities(const torch::Tensor& p);
/// The judge of images `x` [N, P]: softmax of `classifier`'s logits, then judge_probabilities.
SampleJudge judge_images(ClassifierImpl& classifier, const torch::Tensor& x);

/// Seed 000's Table 1 reconstruction metrics (section 4, "we randomly chose
/// 100 samples for reconstruction"): its MSE (of gray levels; the seed does
/// not say how it normalises it: here the mean per pixel) and its binary
/// cross-entropy of the output clipped to [0, 1] (the seed set outputs above
/// 1 to 1; both ends are kept 1e-7 inside so that the logarithms are finite),
/// summed over pixels and averaged over images.
struct Table1Metrics {
  double mse_per_pixel = 0;
  double cross_entropy = 0;  ///< nats per image, summed over pixels
  int64_t examples = 0;
  nlohmann::json to_json() const;
};
/// Table 1's metrics of reconstructions `recon` [N, P] (the decoder's mean
/// image, any range) against gray-level targets `gray` [N, P] in [0, 1].
Table1Metrics table1_metrics(const torch::Tensor& recon, const torch::Tensor& gray);

/// The mean images [N, P] of the reconstructions of `x` [N, P] (the
/// straight-through pass, VqVaeImpl::forward), no gradient.
torch::Tensor vq_reconstruct(VqVaeImpl& model, const torch::Tensor& x);
/// The mean images [N, P] decoded from code maps `codes` [N, H, W], no gradient.
torch::Tensor vq_decode(VqVaeImpl& model, const torch::Tensor& codes);

/// The codes of `x` [N, P] in batches, no gradient: [N, H, W] int64.
torch::Tensor encode_all(VqVaeImpl& model, const torch::Tensor& x, int64_t batch_size = 1000);

/// The maximum-likelihood per-pixel variance of a Gaussian decoder
/// N(x; dec(z_q), sigma2 I): the mean over `x` [N, P] and pixels of
/// (dec(z_q(x)) - x)^2, the unclamped decoder output, in float64.
double fitted_variance(VqVaeImpl& model, const torch::Tensor& x, int64_t batch_size = 1000);

/// The mean over `x` [N, P] of log p(x | z_q(x)) (VqVaeImpl::log_likelihood,
/// nats per image summed over pixels), float64.
double mean_log_likelihood(VqVaeImpl& model, const torch::Tensor& x, double sigma2,
                           int64_t batch_size = 1000);

/// The bound log p(x) >= log p(x | z_q) + log p(z_q) (vdO2017 section 3.2:
/// q(z | x) is a point mass at z_q, so there is no entropy term), per test image.
struct VqBound {
  double log_p_x_given_z = 0;      ///< mean log p(x | z_q)
  double log_p_z = 0;              ///< minus the prior's mean NLL of the test code maps
  double total = 0;                ///< log_p_x_given_z + log_p_z
  double total_uniform_prior = 0;  ///< with log p(z) = -positions * ln K
  double uniform_nats = 0;         ///< positions * ln K
};
/// The bound from its parts: `prior_nats_per_map` is the prior's mean NLL of
/// a code map of `positions` codes from a codebook of `codes`.
VqBound vq_bound(double log_p_x_given_z, double prior_nats_per_map, int64_t positions,
                 int64_t codes);

/// Whether the bound is a lower bound on log p(x) in nats: only for a
/// Bernoulli decoder on dynamically binarised data.
bool vq_bound_is_likelihood(Reconstruction reconstruction, Protocol protocol);
/// The caveats of the bound for this decoder (`proper`: vq_bound_is_likelihood):
/// two for every decoder (the prior fitted afterwards; a point-mass q), then
/// one on what the numbers are for the decoder and protocol.
nlohmann::json vq_bound_caveats(Reconstruction reconstruction, bool proper);
/// The bound as the chapter records it: {"log_p_x_given_z", "log_p_z",
/// "total", "total_uniform_prior", "decoder" ("gaussian" | "bernoulli"),
/// "sigma2" (the Gaussian's variance; null for Bernoulli), "proper_likelihood",
/// "units", "caveats"}.
nlohmann::json vq_bound_record(const VqBound& bound, Reconstruction reconstruction,
                               Protocol protocol, double sigma2);

/// Seed Fig. 16's trend of a VQ-VAE's training terms along its curve: the
/// reconstruction term's first and last values, the codebook term's peak
/// (the first of equal maxima) and last value.
struct VqTermTrend {
  double first_reconstruction = 0, last_reconstruction = 0;
  double peak_codebook = 0, last_codebook = 0;
  size_t peak_at = 0;  ///< the peak's index in the curve
  size_t points = 0;
  /// Both terms fall: the last reconstruction below the first, and the last
  /// codebook term below the peak.
  bool falls() const {
    return last_reconstruction < first_reconstruction && last_codebook < peak_codebook;
  }
};
/// The trend of the training terms (VqCurvePoint::train) of `curve`; throws
/// std::invalid_argument for fewer than two points.
VqTermTrend vq_term_trend(const std::vector<VqCurvePoint>& curve);

/// A CSV's header and rows, as RunWriter::write_csv takes them.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;
};
/// A VQ-VAE's curve, one row per point: samples_seen, epochs, the training
/// terms (reconstruction, codebook, commitment, mse_per_pixel, perplexity),
/// batch_perplexity, train_codes_used, the test terms, test_codes_used,
/// dead_codes, restarts, wall_seconds.
CsvTable vq_curve_table(const std::vector<VqCurvePoint>& curve);
/// A prior's curve, one row per epoch: epochs, nats per map and bits per
/// dimension of training and test set, wall_seconds.
CsvTable prior_curve_table(const std::vector<PriorCurvePoint>& curve);
/// One row per code: code, train_count, test_count, prior_sample_count (NaN
/// when `prior_samples` is null).
CsvTable codebook_table(const CodebookUsage& train, const CodebookUsage& test,
                        const CodebookUsage* prior_samples);

/// A bar chart of code frequencies `counts` [K], most used first, as a
/// [120, K * max(1, 400 / K) + 2] image in [0, 1]: dark bars (0.15) on white,
/// the tallest 120 pixels, each bar's height proportional to its count.
torch::Tensor usage_bars(const std::vector<int64_t>& counts);

}  // namespace vaerepro
