#pragma once
/// \file metrics.h
/// The results contract, part 2: the keys of each chapter's metrics.json and
/// of the run.json `config` entries the report reads (layout:
/// chapters/README.md, one section per chapter). Chapters write through these
/// constants, the report reads through them: renaming one renames both, and
/// a key removed from here fails to compile wherever it is still written or
/// read. Torch-free (the report links no LibTorch).
///
/// A new chapter adds a namespace `chNN` here with the keys its renderer
/// reads, uses key:: for the shared records (final bounds, curves, checks),
/// and records its budget with make_budget() (run_record.h).

#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace vaerepro::schema {

/// Keys shared by every chapter's metrics.json.
namespace key {
// The verdicts: metrics.json `checks[]`, each {claim, criterion, holds, detail}.
inline constexpr const char* kChecks = "checks";
inline constexpr const char* kClaim = "claim";
inline constexpr const char* kCriterion = "criterion";
inline constexpr const char* kHolds = "holds";  ///< bool
inline constexpr const char* kDetail = "detail";
/// name -> PNG path relative to the run's folder.
inline constexpr const char* kImages = "images";
// Bounds on a set (EvalResult::to_json, trainer.h): nats per example summed over pixels.
inline constexpr const char* kFinal = "final";  ///< {train, test} at the end of training
inline constexpr const char* kTrain = "train";
inline constexpr const char* kTest = "test";
inline constexpr const char* kElbo = "elbo";
inline constexpr const char* kLogLikelihood = "log_likelihood";  ///< minus the reconstruction loss
inline constexpr const char* kKl = "kl";
inline constexpr const char* kExamples = "examples";
// A training curve (curve_json, chapter.h): one row per evaluation point.
inline constexpr const char* kCurve = "curve";
inline constexpr const char* kSamplesSeen = "samples_seen";
inline constexpr const char* kEpochs = "epochs";
inline constexpr const char* kWallSeconds = "wall_seconds";
inline constexpr const char* kTrainSeconds =
    "train_seconds";  ///< a model's (or a point's) training time
inline constexpr const char* kExtra =
    "extra";  ///< a chapter's own numbers at that point ({train, test})
// An estimate over a set (SetEstimate::to_json, estimators.h).
inline constexpr const char* kMean = "mean";
inline constexpr const char* kStandardErrorData = "standard_error_data";
inline constexpr const char* kMeanMcStandardError = "mean_mc_standard_error";
// Names shared by several chapters' records.
inline constexpr const char* kName = "name";
inline constexpr const char* kArchitecture = "architecture";  ///< "[500, 20]"
inline constexpr const char* kBeta = "beta";
inline constexpr const char* kDir = "dir";  ///< a point's copy inside the run's folder
inline constexpr const char* kPointConfigHash = "config_hash";  ///< its PointStore::hash
inline constexpr const char* kModel = "model";  ///< a model's name ("vae", "cvae-one-hot")
inline constexpr const char* kStandardError = "standard_error";
}  // namespace key

/// One verdict a chapter computed from its fresh numbers (metrics.json
/// `checks[]`): what the paper claims, how the run decides it, whether it
/// holds, and the numbers that decided it.
struct Check {
  std::string claim;      ///< "Nz = 3 has the worst test bound"
  std::string criterion;  ///< "the final test ELBO at Nz = 3 is below that of every other Nz"
  bool holds = false;
  std::string detail;  ///< "Nz = 3: -151.3"
  double standard_error =
      NAN;  ///< of the criterion's statistic, when it has one (written only then)
};

/// Check as JSON (nlohmann's ADL hook): `checks.push_back(schema::Check{...})`.
inline void to_json(nlohmann::json& j, const Check& c) {
  j = nlohmann::json{{key::kClaim, c.claim},
                     {key::kCriterion, c.criterion},
                     {key::kHolds, c.holds},
                     {key::kDetail, c.detail}};
  if (std::isfinite(c.standard_error)) j[key::kStandardError] = c.standard_error;
}

/// Check from JSON; a missing key throws, naming it.
inline void from_json(const nlohmann::json& j, Check& c) {
  c.claim = j.at(key::kClaim).get<std::string>();
  c.criterion = j.at(key::kCriterion).get<std::string>();
  c.holds = j.at(key::kHolds).get<bool>();
  c.detail = j.at(key::kDetail).get<std::string>();
  const auto se = j.find(key::kStandardError);
  c.standard_error = se != j.end() && se->is_number() ? se->get<double>() : NAN;
}

/// Keys of run.json `config` shared by the chapters that train VAEs.
namespace config_key {
inline constexpr const char* kActivation = "activation";
inline constexpr const char* kArchitecture = "architecture";
inline constexpr const char* kBatchSize = "batch_size";
inline constexpr const char* kInit = "init";
inline constexpr const char* kOptimizer = "optimizer";  ///< {name, lr, weight_decay}
inline constexpr const char* kOptimizerName = "name";
inline constexpr const char* kLr = "lr";
inline constexpr const char* kWeightDecay = "weight_decay";
inline constexpr const char* kSamplesPerModel = "samples_per_model";
inline constexpr const char* kEvalPoints = "eval_points";
}  // namespace config_key

/// Chapter 1, 01-elbo-vs-latent.
namespace ch01 {
inline constexpr const char* kSlug = "01-elbo-vs-latent";
inline constexpr const char* kModels = "models";  ///< one per trained model
inline constexpr const char* kNz = "nz";
inline constexpr const char* kRole = "role";  ///< kRoleSweep or "manifold"
inline constexpr const char* kRoleSweep = "sweep";
inline constexpr const char* kMarginal = "marginal";  ///< null with --marginal-points 0
inline constexpr const char* kK = "k";
inline constexpr const char* kPoints = "points";  ///< which test points, in words
inline constexpr const char* kLogPx = "log_px";   ///< an estimate (key::kMean, ...)
inline constexpr const char* kReconstructionRows = "reconstruction_rows";
inline constexpr const char* kFreyFace = "frey_face";  ///< {status, reason}
inline constexpr const char* kStatus = "status";
inline constexpr const char* kReason = "reason";
/// images: the reconstructions grid and the manifold grid.
inline constexpr const char* kImageReconstructions = "reconstructions";
inline constexpr const char* kImageManifold = "manifold_nz-2";
/// images: the prior samples of the model with latent size `nz`.
inline std::string image_samples(const std::string& nz) {
  return "samples_nz-" + nz;
}
inline std::string image_samples(int64_t nz) {
  return image_samples(std::to_string(nz));
}
/// config
inline constexpr const char* kConfigHidden = "hidden";
}  // namespace ch01

/// Chapter 2, 02-marginal-likelihood.
namespace ch02 {
inline constexpr const char* kSlug = "02-marginal-likelihood";
inline constexpr const char* kModels = "models";  ///< one per training-set size
inline constexpr const char* kNTrain = "n_train";
inline constexpr const char* kKFinal = "k_final";
/// final.{train,test}: `elbo` (a bound record), `importance_sampled.{"1","50",K}`, `hmc`.
inline constexpr const char* kImportanceSampled = "importance_sampled";
inline constexpr const char* kHmc = "hmc";
inline constexpr const char* kAcceptance = "acceptance";
inline constexpr const char* kImportanceSampledSameExamples = "importance_sampled_same_examples";
/// config
inline constexpr const char* kConfigEvalExamples = "eval_examples";
inline constexpr const char* kConfigKCurve = "k_curve";
inline constexpr const char* kConfigKFinal = "k_final";
inline constexpr const char* kConfigHmcExamples = "hmc_examples";
}  // namespace ch02

/// Chapter 3, 03-beta-sweep: each record of `sweep` and `traversals` is a point.
namespace ch03 {
inline constexpr const char* kSlug = "03-beta-sweep";
inline constexpr const char* kSweep = "sweep";
inline constexpr const char* kTraversals = "traversals";  ///< the points, and in each its grids
inline constexpr const char* kCondition = "condition";
inline constexpr const char* kKlPerDim = "kl_per_dim";
inline constexpr const char* kActivity = "activity";
inline constexpr const char* kActiveUnits = "active_units";
inline constexpr const char* kTraversalRows = "traversal_rows";
inline constexpr const char* kConfigHash = "config_hash";
/// a traversal grid: {dim, image, kl, activity}
inline constexpr const char* kDim = "dim";
inline constexpr const char* kImage = "image";
/// a sweep point's images
inline constexpr const char* kImageReconstructions = "reconstructions";
inline constexpr const char* kImageSamples = "samples";
/// config
inline constexpr const char* kConfigTraversalNz = "traversal_nz";
inline constexpr const char* kConfigAppendixNz = "appendix_nz";
inline constexpr const char* kConfigTraversalCondition = "traversal_condition";
inline constexpr const char* kConfigTraversalBetas = "traversal_betas";
}  // namespace ch03

/// Chapter 4, 04-cvae-labels.
namespace ch04 {
inline constexpr const char* kSlug = "04-cvae-labels";
inline constexpr const char* kClassifierAccuracy = "classifier_accuracy";
inline constexpr const char* kConditionalAccuracy =
    "conditional_accuracy";  ///< model name -> record
inline constexpr const char* kPerLabel = "per_label";
inline constexpr const char* kPerLabelCount = "per_label_count";
inline constexpr const char* kOverall = "overall";
inline constexpr const char* kBenchmark = "benchmark";  ///< key::kModel, key::kTest, ...
inline constexpr const char* kReconstructionMsePerPixel = "reconstruction_mse_per_pixel";
inline constexpr const char* kReconstructionCrossEntropy = "reconstruction_cross_entropy";
inline constexpr const char* kTrainMinutes = "train_minutes";
inline constexpr const char* kScatter = "scatter";  ///< {model, csv}
inline constexpr const char* kCsv = "csv";
/// The models of the accuracy table.
inline constexpr const char* kModelCvaeRaw = "cvae-raw";
inline constexpr const char* kModelCvaeOneHot = "cvae-one-hot";
inline constexpr const char* kModelVae = "vae";
/// images: the generation grid of a model.
inline std::string image_generation(const std::string& model) {
  return "generation_" + model;
}
/// config
inline constexpr const char* kConfigBetaBvae = "beta_bvae";
inline constexpr const char* kConfigClassifier = "classifier";
inline constexpr const char* kConfigClassifierEpochs = "classifier_epochs";
inline constexpr const char* kConfigPerLabel = "per_label";
}  // namespace ch04

/// Chapter 5, 05-vqvae-pixelcnn: the keys other chapters read (chapter 4's
/// benchmark row) and the top level; its renderer reads the rest by name
/// while the chapter is being rewritten.
namespace ch05 {
inline constexpr const char* kSlug = "05-vqvae-pixelcnn";
inline constexpr const char* kSettings = "settings";
inline constexpr const char* kCodes = "codes";
inline constexpr const char* kVqvae = "vqvae";
inline constexpr const char* kTable1 = "table1";
inline constexpr const char* kMsePerPixel = "mse_per_pixel";
inline constexpr const char* kCrossEntropy = "cross_entropy";
inline constexpr const char* kClassifierAccuracy = "classifier_accuracy";
inline constexpr const char* kTable1Note = "table1_note";
}  // namespace ch05

/// Chapter 6, 06-architecture-search.
namespace ch06 {
inline constexpr const char* kSlug = "06-architecture-search";
inline constexpr const char* kTable7 =
    "table7";  ///< key::kArchitecture, kReconstruction, key::kKl, kElboLoss
inline constexpr const char* kReconstruction = "reconstruction";
inline constexpr const char* kElboLoss = "elbo_loss";
inline constexpr const char* kSeconds = "seconds";
inline constexpr const char* kSearches = "searches";
inline constexpr const char* kMode = "mode";  ///< kModeSeed or "noise-aware"
inline constexpr const char* kModeSeed = "seed";
inline constexpr const char* kSearch = "search";  ///< "depth 2", "depth 3", "eased (Table 6)"
inline constexpr const char* kUpper = "upper";
inline constexpr const char* kGood =
    "good";  ///< the thresholds {max_reconstruction, max_kl}; a probe's verdict (bool)
inline constexpr const char* kMaxReconstruction = "max_reconstruction";
inline constexpr const char* kMaxKl = "max_kl";
inline constexpr const char* kFound = "found";
inline constexpr const char* kOutcome = "outcome";
inline constexpr const char* kLog = "log";  ///< a search's probes
inline constexpr const char* kReconstructionSe = "reconstruction_se";
inline constexpr const char* kKlSe = "kl_se";
inline constexpr const char* kRepeats = "repeats";
inline constexpr const char* kNote = "note";
inline constexpr const char* kMonotonicity = "monotonicity";  ///< {probes, pairs, violations}
inline constexpr const char* kProbes = "probes";
inline constexpr const char* kPairs = "pairs";
inline constexpr const char* kViolations = "violations";
inline constexpr const char* kProbesTrained = "probes_trained";
inline constexpr const char* kProbesReused = "probes_reused";
inline constexpr const char* kThresholds = "thresholds";  ///< kThresholdsSeed or "relative"
inline constexpr const char* kThresholdsSeed = "seed";
inline constexpr const char* kThresholdNote = "threshold_note";
/// config
inline constexpr const char* kConfigMeasuredOn = "measured_on";
inline constexpr const char* kConfigSamplesPerProbe = "samples_per_probe";
}  // namespace ch06

}  // namespace vaerepro::schema
