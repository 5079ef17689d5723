#pragma once
/// \file vq_settings.h
/// Chapter 5's grid of models: VQ-VAE settings (K codes of dimension D and
/// Adam's learning rate) crossed with codebook arms (vdO2017 as written; with
/// the usual fixes, quantizer.h), parsed from --settings, --arms and
/// --prior-arms, and recorded in the run's configuration as JSON.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vaerepro/quantizer.h"

namespace vaerepro {

/// One VQ-VAE configuration (--settings picks them by name: cli.h's select_by_name).
struct VqSetting {
  std::string name;    ///< "seed" | "paper"
  int64_t codes = 0;   ///< K
  int64_t dim = 0;     ///< D
  double lr = 0;       ///< Adam's learning rate
  std::string source;  ///< where K, D and the rate come from
};
/// {"name", "codes", "dim", "lr", "source"} (nlohmann's ADL hook).
void to_json(nlohmann::json& j, const VqSetting& s);

/// One way of learning the codebook: an arm of the chapter.
struct VqArm {
  std::string name;   ///< "faithful" | "fixed"
  std::string title;  ///< "as written" | "with the usual fixes"
  CodebookOptions codebook;
  bool prior = false;  ///< its codes get a PixelCNN prior (--prior-arms)
};
/// {"name", "title", "codebook" (CodebookOptions::to_json), "prior"} (ADL hook).
void to_json(nlohmann::json& j, const VqArm& a);

/// The arms that `arms` names (--arms: faithful, fixed; each once, at least
/// one), in its order: "faithful" is vdO2017 as written
/// (CodebookOptions::as_written), "fixed" is `fixed` with the initialisation
/// `fixed_init` (parse_codebook_init), checked only when the fixed arm is
/// named. An arm is marked `prior` when `prior_arms` (--prior-arms: the same
/// names, each once; may be empty) names it. Throws UsageError naming the
/// option: an unknown or repeated name, an empty --arms, a bad --fixed-init,
/// or fixed options that CodebookOptions::validate rejects (--ema-decay,
/// --ema-epsilon or --restart-threshold).
std::vector<VqArm> parse_vq_arms(const std::string& arms, const std::string& prior_arms,
                                 const std::string& fixed_init, const CodebookOptions& fixed);

}  // namespace vaerepro
