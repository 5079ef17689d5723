/// \page chapter03 Chapter 3: beta sweeps, rate and distortion, latent traversals
///
/// **Claim** (seed 000 sections 3.1 and 4.3, Figs. 6-8 and 14-15, appendix
/// 7.2): a beta-VAE (Higgins et al. 2017) with one hidden layer of 500 units
/// and Nz = 20, beta in {1, 2, 5, 50}: as beta grows the KL term falls and the
/// reconstruction loss rises; beta = 50 switches most latent dimensions off;
/// with beta = 5 single latent variables of a CVAE with Nz = 5 control single
/// factors of the digits (slant, width, thickness), less so with beta = 1.
///
/// **Beyond the seed's eyeballing**: per-dimension KL and active units
/// (Burda et al. 2015: Cov_x(E_q[z_j]) > 1e-2) for each beta, the
/// rate (KL) against distortion (reconstruction) curve with extra betas, and
/// the claims computed from the fresh numbers.
///
/// **The sweep is data**: each beta (and each traversal model) is a point
/// cached under OUT/.points/03-beta-sweep/ by a hash of its configuration;
/// `chapter-03 --only-point beta=5` trains one point alone (for `make -j` or a
/// cluster; `--list-points` prints the points not yet cached, which
/// `make chapter-03-points SCHEDULER=slurm` submits as a job array), and a
/// plain run assembles the cached points, training only what is missing:
/// \snippet 03-beta-sweep/main.cpp run-point
///
/// Results land in results/03-beta-sweep/ (layout: chapters/README.md).

#include <filesystem>
#include <iostream>
#include <sstream>

#include "vaerepro/analysis.h"
#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/pictures.h"
#include "vaerepro/sweep.h"
#include "vaerepro/verdicts.h"

namespace fs = std::filesystem;
using namespace vaerepro;

namespace {

std::string beta_tag(double beta) {
  std::ostringstream os;
  os << beta;
  return os.str();
}

/// What a point is: its name (its seed, its folder), its beta and model.
struct PointSpec {
  std::string name;  ///< "beta-5" or "traversal-nz5-beta1"
  double beta = 1;
  Architecture arch;
  ConditionEncoding condition = ConditionEncoding::kNone;
  bool traversal = false;
};

/// The verdicts, from the sweep's final test losses and active units.
nlohmann::json compute_checks(const std::vector<nlohmann::json>& sweep, int64_t nz) {
  nlohmann::json checks = nlohmann::json::array();
  if (sweep.size() < 2) return checks;
  std::vector<double> kl, rec;
  for (const auto& p : sweep) {
    kl.push_back(p["final"]["test"]["kl"].get<double>());
    rec.push_back(-p["final"]["test"]["log_likelihood"].get<double>());
  }
  checks.push_back(
      schema::Check{"the KL term falls as beta grows",
                    "the final test KL strictly decreases from each beta to the next larger one",
                    strictly_decreasing(kl), "KL " + arrow_chain(kl)});
  checks.push_back(schema::Check{
      "the reconstruction loss rises as beta grows",
      "the final test reconstruction loss strictly increases from each beta to the next",
      strictly_increasing(rec), "reconstruction " + arrow_chain(rec)});
  const auto& largest = sweep.back();
  const int64_t active = largest["active_units"].get<int64_t>();
  checks.push_back(
      schema::Check{"a large beta switches most latent dimensions off",
                    "at the largest beta fewer than half of the " + std::to_string(nz) +
                        " dimensions are active (Cov_x(E_q[z_j]) > 1e-2)",
                    2 * active < nz,
                    std::to_string(active) + " of " + std::to_string(nz) +
                        " active at beta = " + beta_tag(largest["beta"].get<double>())});
  return checks;
}

class BetaSweep : public Chapter {
 public:
  ChapterInfo info() const override {
    // Seed 000's protocol by default, so its figures compare; binarized is one option away.
    return {"chapter-03", "03-beta-sweep",
            "beta sweeps, rate and distortion, latent traversals (seed 000 sections 3.1, 4.3)",
            "mnist", Protocol::kGrayBce};
  }

  void declare(OptionTable& o) override {
    add_training_options(o, training_);  // seed 000 section 2: KW2013's model and optimizer
    // Seed 000 Fig. 6: 1, 2, 5, 50; the rest for the rate/distortion curve.
    o.add("betas", betas_text_, {"1,5", "0.5,1,2,5,10,20,50", "0.5,1,2,5,10,20,50"},
          "the sweep's betas")
        .key("");
    o.add("arch", arch_text_, std::string("[500, 20]"),
          "the sweep's architecture [h1, ..., Nz] (seed 000 section 3.1)")
        .check([this] { arch_ = parse_architecture(arch_text_); })
        .key("");
    o.add("traversal-betas", traversal_betas_text_, {"5", "1,5", "1,5"},
          "betas of the traversal models (seed 000 Figs. 14-15)")
        .key("");
    o.add("traversal-nz", traversal_nz_, int64_t{5},
          "latent size of the traversal models (seed 000 section 4.3; 0 = none)")
        .range(0, 64);
    o.add("appendix-nz", appendix_nz_, {0, 0, 10},
          "a second traversal latent size (seed 000 appendix 7.2; 0 = none)")
        .range(0, 64);
    o.add("traversal-condition", traversal_condition_, std::string("one-hot"),
          "one-hot (a CVAE, one row per label, as the seed's) | none (rows = test images)")
        .one_of({"one-hot", "none"});
    // full: the seed's 1000 epochs.
    o.add("samples", samples_, {2e3, 6e5, 6e7}, "training samples per model")
        .range(1, 1e12)
        .key("");
    o.add("eval-points", eval_points_, {2, 6, 20}, "whole-set evaluations per model")
        .range(1, 10000);
    declare_point_modes(o, modes_, "train one point and stop: beta=B or traversal-nzN-betaB");
  }

  void validate() override {
    betas_ = parse_positive_reals(betas_text_, "betas", 1e4);
    traversal_betas_ = parse_positive_reals(traversal_betas_text_, "traversal-betas", 1e4);
  }

  nlohmann::json run(ChapterRun& run) override {
    const TensorData data = run.tensors(training_.max_train, training_.max_test);
    const auto total = static_cast<int64_t>(std::llround(samples_));
    std::vector<PointSpec> specs;
    for (double b : betas_) specs.push_back({"beta-" + beta_tag(b), b, arch_});
    for (int64_t nz : {traversal_nz_, appendix_nz_}) {
      if (nz <= 0) continue;
      for (double b : traversal_betas_) {
        specs.push_back({"traversal-nz" + std::to_string(nz) + "-beta" + beta_tag(b), b,
                         Architecture{arch_.hidden, nz},
                         parse_condition_encoding(traversal_condition_), true});
      }
    }
    std::vector<SweepPoint> points;
    for (const auto& p : specs) {
      points.push_back(
          {p.name, point_config(p, total), [this, &run, &data, p, total](const PointStaging& s) {
             return train_point(run, data, p, total, s);
           }});
      if (!p.traversal) points.back().aliases = {"beta=" + beta_tag(p.beta)};
    }
    // [run-point]
    const PointSweep sweep(run);
    const std::string example = "beta=" + beta_tag(betas_.front()) +
                                (specs.back().traversal ? " or " + specs[betas_.size()].name : "");
    if (sweep.run_mode(modes_, points, example)) return nullptr;
    // [run-point]

    auto& config = run.config();
    config["betas"] = betas_;
    config[schema::config_key::kArchitecture] = arch_.to_string();
    config[schema::ch03::kConfigTraversalBetas] = traversal_betas_;
    config[schema::config_key::kSamplesPerModel] = total;
    run.begin(data.to_json(), run.samples_budget(total, 6e7, "model",
                                                 "seed 000: 1000 epochs, 6e7 samples per model",
                                                 "seed 000: 1000 epochs, 6e7"));
    std::vector<nlohmann::json> sweep_json, traversals;
    for (size_t i = 0; i < points.size(); ++i) {
      const auto point = sweep.assemble(points[i]);
      const auto& test = point["final"]["test"];
      std::cout << run.prefix() << points[i].name << ": test reconstruction "
                << format_fixed(-test["log_likelihood"].get<double>()) << ", KL "
                << format_fixed(test["kl"].get<double>()) << ", active units "
                << point["active_units"].get<int64_t>() << "\n";
      (specs[i].traversal ? traversals : sweep_json).push_back(point);
    }
    return {
        {schema::ch03::kSweep, sweep_json},
        {schema::ch03::kTraversals, traversals},
        {schema::key::kChecks, compute_checks(sweep_json, arch_.latent)},
        {"loss_note", run.protocol() == Protocol::kGrayBce
                          ? "reconstruction = binary cross-entropy of gray levels (seed 000's "
                            "protocol), not a likelihood"
                          : "reconstruction = -log p(x|z) of dynamically binarised data, nats"}};
  }

 private:
  /// A point's cache key besides the run's identity (seed, data, protocol, device, profile).
  nlohmann::json point_config(const PointSpec& p, int64_t total) const {
    return {{"name", p.name},
            {"beta", p.beta},
            {"architecture", p.arch.to_string()},
            {"condition", to_string(p.condition)},
            {"activation", training_.activation},
            {"optimizer", {{"name", training_.optimizer}, {"lr", training_.lr}}},
            {"batch_size", training_.batch_size},
            {"samples", total},
            {"eval_points", eval_points_},
            {"max_train", training_.max_train},
            {"max_test", training_.max_test}};
  }

  /// Trains one point into its staging folder; returns its point.json.
  nlohmann::json train_point(const ChapterRun& run, const TensorData& data, const PointSpec& p,
                             int64_t total, const PointStaging& staging) const {
    TrainOptions train = training_schedule(total, training_.batch_size, eval_points_);
    train.beta = p.beta;
    train.condition = p.condition;
    train.checkpoint = staging.checkpoint;
    const auto model = VaeOptions(data.dim(), p.arch)
                           .activation(parse_activation(training_.activation))
                           .condition_dim(condition_dim(p.condition, data.num_classes));
    auto [vae, result] =
        run.train_vae(p.name, model, {training_.optimizer, training_.lr, 0.0}, data, train);
    vae->eval();
    torch::NoGradGuard no_grad;
    const auto usage = latent_usage(
        *vae, data.test, encode_condition(data.test_labels, p.condition, data.num_classes));
    namespace k = schema::key;
    namespace c3 = schema::ch03;
    nlohmann::json point = training_record(result);
    point.update({{k::kName, p.name},
                  {k::kBeta, p.beta},
                  {k::kArchitecture, p.arch.to_string()},
                  {c3::kCondition, to_string(p.condition)},
                  {c3::kKlPerDim, usage.kl_per_dim},
                  {c3::kActivity, usage.activity},
                  {c3::kActiveUnits, usage.active_units},
                  {"active_threshold", usage.threshold}});
    const fs::path dir(staging.dir);
    fs::create_directories(dir / "images");
    write_rate_distortion_csv((dir / "curve.csv").string(), result);
    if (!p.traversal) {
      write_reconstructions_png((dir / "images/reconstructions.png").string(), *vae,
                                first_rows(data.test, 10), data);
      write_samples_png((dir / "images/samples.png").string(), *vae, 100, data);
      point[k::kImages] = {{c3::kImageReconstructions, "images/reconstructions.png"},
                           {c3::kImageSamples, "images/samples.png"}};
    } else {
      // One grid per latent dimension: rows = labels 0..9 (a CVAE) or the first ten
      // test images (a VAE), columns = -2..+2 sd.
      const auto rows = traversal_rows(*vae, data, p.condition);
      const auto values = traversal_values(2.0, 9);
      const auto pngs = write_traversal_pngs(*vae, rows, values, data, staging.dir);
      nlohmann::json grids = nlohmann::json::array();
      for (int64_t j = 0; j < static_cast<int64_t>(pngs.size()); ++j) {
        grids.push_back({{c3::kDim, j + 1},
                         {c3::kImage, pngs[j]},
                         {k::kKl, usage.kl_per_dim[j]},
                         {c3::kActivity, usage.activity[j]}});
      }
      point[c3::kTraversals] = grids;
      point["traversal_values"] = values;
      point[c3::kTraversalRows] = rows.description;
    }
    return point;
  }

  TrainingFlags training_{"tanh", "adagrad", 0.02};
  std::string betas_text_, arch_text_, traversal_betas_text_, traversal_condition_;
  int64_t traversal_nz_ = 5, appendix_nz_ = 0, eval_points_ = 0;
  double samples_ = 0;
  PointModes modes_;
  std::vector<double> betas_, traversal_betas_;
  Architecture arch_;
};

}  // namespace

int main(int argc, char** argv) {
  return chapter_main<BetaSweep>(argc, argv);
}
