#pragma once
/// \file vq_record.h
/// What chapter 5 keeps of one VQ-VAE and its prior: the measures of a
/// trained model (stage 2), and its entry of metrics.json with the files
/// beside it (curves and code counts as CSV, reconstructions, code-use bars,
/// samples), from the stages' results. Every key here is one the report reads.
///
/// Shapes: N = training images, M = test images, P = pixels (784), S =
/// samples, H x W = the code grid (7 x 7).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/protocol.h"
#include "vaerepro/results.h"
#include "vaerepro/vq_metrics.h"
#include "vaerepro/vq_settings.h"

namespace vaerepro {

/// Stage 2: a trained VQ-VAE measured on its data.
struct VqMeasured {
  torch::Tensor train_codes;  ///< [N, H, W] the codes of the training set as scored (train_eval)
  torch::Tensor test_codes;   ///< [M, H, W]
  VqSetMetrics train;         ///< on the first 10,000 training images as scored
  VqSetMetrics test;          ///< on the whole test set
  torch::Tensor gray_fixed;   ///< [n, P] gray levels of the first n test images (seed Table 1: 100)
  torch::Tensor
      recon_fixed;       ///< [n, P] their reconstructions (vq_reconstruct of the scored images)
  Table1Metrics table1;  ///< recon_fixed against gray_fixed
  CodebookUsage usage_train, usage_test;
};
/// Measures `model` (in eval mode) on `data`, seed Table 1 on the first
/// `n_fixed` test images (at most M).
VqMeasured measure_vqvae(VqVaeImpl& model, const TensorData& data, int64_t n_fixed);

/// The entry of the model `name` (setting `s`, arm `arm`) after stages 1-2,
/// and its files: curves/vqvae-NAME.csv (vq_curve_table),
/// images/reconstructions-NAME.png (up to ten originals above their
/// reconstructions, then the next ten), images/codebook-usage-NAME.png
/// (usage_bars of the test codes). Keys: name, setting, arm, arm_title,
/// codes, dim, lr, source, quantizer, images, parameters, vqvae {samples_seen,
/// train_seconds, final {train, test}, table1, restarts, dead_codes (below
/// max(1, the restart threshold) per step), curve, curve_csv}, usage {train, test}.
nlohmann::json record_vqvae(const RunWriter& writer, const std::string& name, const VqSetting& s,
                            const VqArm& arm, VqVaeImpl& model, const VqTrainResult& trained,
                            const VqMeasured& m);

/// Stages 3-4 and the bound: a prior trained on a model's codes, its
/// samples beside uniformly random code maps, both decoded.
struct VqPriorOutcome {
  std::vector<PriorCurvePoint> curve;  ///< one point per epoch
  int64_t parameters = 0;
  double sample_seconds = 0;
  torch::Tensor prior_images;    ///< [S, P] decoded prior samples
  torch::Tensor uniform_images;  ///< [S, P] decoded uniform code maps
  PriorMetrics test;             ///< the prior's NLL of the test codes
  PriorMetrics uniform_maps;     ///< its NLL of as many uniformly random code maps
  double sigma2 = 1;             ///< the Gaussian decoder's variance (MSE decoder)
  VqBound bound;
  CodebookUsage usage;  ///< of the prior samples' codes
};
/// Adds the prior's part to `r` and writes its files: curves/prior-NAME.csv
/// (prior_curve_table), images/prior-samples-NAME.png and
/// images/uniform-samples-NAME.png (ten a row). Keys: images.prior_samples,
/// images.uniform_samples, usage.prior_samples, prior {parameters, final
/// {train, test}, uniform {nats_per_map, bits_per_dim}, nll_of_uniform_maps,
/// train_seconds, sample_seconds, samples, curve, curve_csv}, bound
/// (vq_bound_record).
void record_prior(const RunWriter& writer, const std::string& name, const VqPriorOutcome& p,
                  Reconstruction reconstruction, Protocol protocol, nlohmann::json& r);

/// Writes codebook/NAME.csv (codebook_table; the prior samples' counts when
/// `prior_samples` is not null) and records it as usage.codebook_csv.
void record_codebook(const RunWriter& writer, const std::string& name, const VqMeasured& m,
                     const CodebookUsage* prior_samples, nlohmann::json& r);

}  // namespace vaerepro
