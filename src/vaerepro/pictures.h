#pragma once
/// \file pictures.h
/// What a trained MLP VAE is looked at with: reconstructions (seed 000
/// Fig. 4), samples from the prior (Fig. 5) and the learned 2-D manifold
/// (KW2013 Fig. 4), as images with values in [0, 1], and log p(x) beside the
/// bound on the first test points. In eval mode, without gradients.
///
/// Shapes: N = images, D = pixels, Nz = latent size.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/analysis.h"
#include "vaerepro/models.h"
#include "vaerepro/protocol.h"

namespace vaerepro {

/// The decoder's mean at the posterior mean of each of x [N, D] (c: the
/// condition [N, C] or undefined): [N, D].
torch::Tensor reconstruct(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c = {});

/// The decoder's mean at `n` draws from the prior N(0, I) (the global torch
/// generator): [n, D].
torch::Tensor sample_images(VaeImpl& vae, int64_t n, const torch::TensorOptions& options);

/// The decoder's mean over a `g` x `g` grid of a 2-D latent space at the
/// prior's quantiles 0.05 ... 0.95 (rows: z_1 from high to low, columns: z_2
/// from low to high), row-major: [g*g, D]. Throws std::invalid_argument unless Nz = 2.
torch::Tensor manifold_grid(VaeImpl& vae, int64_t g, const torch::TensorOptions& options);

/// Seed 000 Fig. 4 as a PNG at `path`: the images x [N, D] in one row above
/// their reconstructions (tiles of data.height x data.width).
void write_reconstructions_png(const std::string& path, VaeImpl& vae, const torch::Tensor& x,
                               const TensorData& data);

/// Seed 000 Fig. 5 as a PNG at `path`: `n` samples from the prior
/// (sample_images, the global generator), ten a row.
void write_samples_png(const std::string& path, VaeImpl& vae, int64_t n, const TensorData& data);

/// One traversal grid per latent dimension j (latent_traversal of `rows` at
/// `values`, rows x (values + heat map) tiles) as DIR/images/traversal-dimJ.png,
/// J = j + 1; returns their paths relative to `dir`.
std::vector<std::string> write_traversal_pngs(VaeImpl& vae, const TraversalRows& rows,
                                              const std::vector<double>& values,
                                              const TensorData& data, const std::string& dir);

/// log p(x) by importance sampling with `k` samples on the first `points`
/// examples of `test` (all of them when fewer), beside the single-sample
/// bound (k = 1) on the same points: {"k", "examples", "points" (in words),
/// "log_px", "elbo_same_points", "wall_seconds"}; null when points is 0.
nlohmann::json marginal_on_first_points(VaeImpl& vae, const torch::Tensor& test, int64_t k,
                                        int64_t points);

/// The rows of a 2-D latent scatter: {z_1, z_2, label} for each row of the
/// posterior means `mu` [N, >= 2] and its `labels` [N] (int64).
std::vector<std::vector<double>> latent_scatter_rows(const torch::Tensor& mu,
                                                     const torch::Tensor& labels);

}  // namespace vaerepro
