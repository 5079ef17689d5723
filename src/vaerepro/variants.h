#pragma once
/// \file variants.h
/// Seed 002's table of VAE variants (Sumba et al. 2019, "Improving
/// Variational Autoencoders", section 4 and Table 1): for each row its
/// network, activation, optimizer, learning rate at a latent size N_z,
/// objective, input corruption and condition; the model and optimizer built
/// from a row, behind the LatentModel interface (latent_model.h); what a
/// trained one reports (its bounds, estimates of log p(x), active units); and
/// its pictures (seed 002 Figs. 5-6).
///
/// Shapes: N = test points, D = pixels.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/latent_model.h"
#include "vaerepro/latent_train.h"
#include "vaerepro/models.h"
#include "vaerepro/protocol.h"

namespace vaerepro {

/// The network a variant uses.
enum class VariantFamily {
  kMlp,       ///< KW2013's MLP VAE (models.h): one hidden layer
  kCnn,       ///< the convolutional VAE (cnn_vae.h)
  kTwoLayer,  ///< two stochastic layers (iwae.h; Burda et al. 2015)
};
std::string to_string(VariantFamily f);  ///< "mlp" | "cnn" | "two-layer"

/// One row of the grid: seed 002's settings for it (section 4).
struct Variant {
  std::string name;  ///< vae, vae-tuned, cnn, iwae, iwae-elbo, dvae, beta-vae, cvae
  std::string row;   ///< the Table 1 row it reproduces
  VariantFamily family = VariantFamily::kMlp;
  Activation activation = Activation::kTanh;
  std::string optimizer = "adagrad";  ///< adagrad | adam
  ObjectiveOptions objective;
  double corruption = 0;  ///< salt-and-pepper level of the encoder's input (0: none)
  ConditionEncoding condition = ConditionEncoding::kNone;
  double init_std = 0.01;  ///< N(0, std^2) weights of the MLP VAE (KW2013); 0: torch's default
  bool conditional() const { return condition != ConditionEncoding::kNone; }
};

/// The variants' names in Table 1's order (iwae-elbo beside iwae).
const std::vector<std::string>& variant_names();
/// variant_names() joined by commas.
std::string all_variants();

/// The settings a run may change: the IWAE's k (section 4.2.4: 50), the
/// DVAE's noise (section 4.2.5: 0.05) and the beta-VAE's beta (section
/// 4.2.6: 4).
struct VariantSettings {
  int64_t iwae_k = 50;
  double noise = 0.05;
  double beta = 4;
};

/// The row `name`; std::invalid_argument naming the choices when unknown.
Variant make_variant(const std::string& name, const VariantSettings& settings);
/// "vae,iwae" -> those rows, in the order given; std::invalid_argument for an
/// unknown, empty or repeated entry.
std::vector<Variant> parse_variants(const std::string& text, const VariantSettings& settings);

/// Seed 002's learning rate of `v` at N_z = `nz`: Adagrad 0.02 (KW2013
/// section 5, section 4.1), the two-layer network's Adam 1e-3 (section
/// 4.2.4), the CNN's 1e-2 below N_z = 200 and 1e-3 at 200 (section 4.2.2),
/// the tuned MLP's 1e-2 at N_z <= 3 and 1e-3 above (section 4.2.1).
double learning_rate(const Variant& v, int64_t nz);

/// The configuration of `v` at `nz` as recorded: {variant, nz, family,
/// hidden, iwae_z1 (null unless two-layer), activation, optimizer {name, lr},
/// objective {name, beta, k}, corruption, condition, init_std}.
nlohmann::json variant_config(const Variant& v, int64_t nz, int64_t hidden, int64_t iwae_z1);

/// A variant's model behind the LatentModel interface, with its optimizer.
struct VariantModel {
  std::shared_ptr<LatentModel> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};

/// Builds `v` at `nz` for images of `data` (its size and classes) on
/// `device`, with the global generator: an MLP of `hidden` units, the CNN,
/// or the two-layer network with `iwae_z1` units in its first stochastic
/// layer (N_z is the top one). Its optimizer: Adagrad; Adam (0.9, 0.999)
/// with eps 1e-4 for the two-layer network (Burda et al. 2015 section 5);
/// Adam (0.9, 0.99) otherwise (seed 002 section 4.2.1); at learning_rate(v, nz).
VariantModel build_variant(const Variant& v, int64_t nz, const TensorData& data, int64_t hidden,
                           int64_t iwae_z1, torch::Device device);

/// One point of the grid: a variant at one latent size under one protocol.
struct VariantPoint {
  Variant variant;
  int64_t nz = 0;
  Protocol protocol = Protocol::kThreshold;
  bool primary = true;  ///< under the run's protocol (else a second one: its name says it)
  /// "iwae-nz10", or "iwae-nz10-binarized" under a second protocol: its seed and its folder.
  std::string name() const;
};
/// The grid, protocol by protocol (the first is the primary), variant by
/// variant, latent size by latent size.
std::vector<VariantPoint> variant_grid(const std::vector<Variant>& variants,
                                       const std::vector<int64_t>& nzs,
                                       const std::vector<Protocol>& protocols);

/// The training options `v` fixes: its objective, corruption and condition.
LatentTrainOptions variant_training(const Variant& v);
/// What a trained variant is, for its record: {"row", "architecture",
/// "parameters", "latent_sizes", "samples_seen", "train_seconds",
/// "resumed_at", "curve"}.
nlohmann::json describe_trained(const Variant& v, LatentModel& model, const LatentTrainResult& r);

/// What a trained variant is scored with.
struct VariantEvaluation {
  int64_t marginal_k = 5000;    ///< importance samples of log p(x) (Burda et al. 2015 section 5)
  int64_t marginal_points = 0;  ///< the first test points it scores (0: all)
  int64_t bound_k = 50;         ///< the two-layer rows' bound (seed 002's k)
};

/// Everything a trained variant reports, in eval mode without gradients:
/// "test" (the one-sample ELBO on the whole test set), "elbo_same_points",
/// "marginal" {k, points, examples, log_px, quantity[, label_marginal]},
/// "iwae_bound" (two-layer rows), "denoising_elbo" (a corrupting variant),
/// "layers" [{activity, active_units}], "active_units", "eval_seconds".
/// A conditional variant's log p(x | y) uses the true labels; its
/// label-marginal log p(x) = log (1/C) sum_y p(x | y) uses K / C samples
/// per label.
nlohmann::json evaluate_variant(const Variant& v, LatentModel& model, const TensorData& data,
                                const VariantEvaluation& e);

/// Seed 002 Figs. 5-6: reconstructions of the first ten test images and 100
/// samples (a conditional variant's conditioned on the digit 1, as the
/// seed's) as `dir`/images/{reconstructions,samples}.png, and as tensors
/// (`dir`/reconstructions.pt [10, D], samples.pt [10, D]) for composite
/// figures. Returns {"reconstructions", "samples", "samples_condition"}.
nlohmann::json write_variant_pictures(const Variant& v, LatentModel& model, const TensorData& data,
                                      const std::string& dir);

}  // namespace vaerepro
