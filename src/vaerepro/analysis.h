#pragma once
/// \file analysis.h
/// What a trained VAE's latent space does: per-dimension KL, active units,
/// and latent traversals with their heat maps.
///
/// Shapes: N = examples, D = pixels, Z = latent size, R = rows (anchors or
/// labels), V = values along one latent, C = condition size.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vaerepro/models.h"
#include "vaerepro/protocol.h"

namespace vaerepro {

/// Per-dimension statistics of q(z|x) over a set.
struct LatentUsage {
  std::vector<double> kl_per_dim;  ///< E_x KL(q(z_j|x) || N(0,1)), nats
  std::vector<double> activity;    ///< Cov_x(E_q[z_j | x]), Burda et al. 2015
  int64_t active_units = 0;        ///< dimensions with activity > threshold
  double threshold = 1e-2;
};

/// Per-dimension KL and active units (Burda et al. 2015, section 5.2: a unit
/// is active when Cov_x(E_{q(z|x)}[z_j]) > 1e-2) over x [N, D] (and c [N, C]
/// for a conditional model), in batches; variances in float64.
LatentUsage latent_usage(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c = {},
                         double threshold = 1e-2, int64_t batch_size = 1000);

/// A latent traversal (seed 000 Figs. 14-15): for each row r (an anchor's
/// latent code and, for a CVAE, its condition) and each value v of `values`,
/// decode the code with dimension `dim` set to v; then a last column, the heat
/// map |decode(+1) - decode(-1)| per pixel (values +1 and -1 along `dim`),
/// scaled to [0, 1] by its row's maximum.
/// `base` [R, Z] are the codes to vary (e.g. zeros, the prior's mean, or the
/// posterior means of anchor images); `condition` [R, C] or undefined.
/// Returns [R, V + 1, D] decoder means (row-major: row r, column j).
torch::Tensor latent_traversal(VaeImpl& vae, const torch::Tensor& base,
                               const torch::Tensor& condition, int64_t dim,
                               const std::vector<double>& values);

/// `count` values evenly spaced from -limit to +limit standard deviations.
std::vector<double> traversal_values(double limit = 2.0, int64_t count = 9);

/// The rows of a traversal figure (seed 000 Figs. 14-15), what
/// latent_traversal varies: for a conditional model (`condition` not kNone)
/// one row per label, its encoded condition, with every latent at the prior's
/// mean (zero); for an unconditional one, the posterior means of the first
/// ten test images. In eval mode, without gradients.
struct TraversalRows {
  torch::Tensor base;       ///< [R, Z]
  torch::Tensor condition;  ///< [R, C], or undefined
  std::string description;  ///< the rows in words ("labels 0-9 (CVAE), ...")
};
TraversalRows traversal_rows(VaeImpl& vae, const TensorData& data, ConditionEncoding condition);

}  // namespace vaerepro
