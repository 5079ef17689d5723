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

#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "vaerepro/analysis.h"
#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/image.h"
#include "vaerepro/pictures.h"

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

/// One grid per latent dimension of a traversal model: rows = labels 0..9 (a
/// CVAE) or the first ten test images (a VAE), columns = -2..+2 sd.
nlohmann::json write_traversals(VaeImpl& vae, const PointSpec& p, const TensorData& data, const LatentUsage& usage,
                                const fs::path& dir) {
  torch::NoGradGuard no_grad;
  torch::Tensor base, cond;
  if (p.condition != ConditionEncoding::kNone) {
    auto labels = torch::arange(data.num_classes, data.test_labels.options());
    cond = encode_condition(labels, p.condition, data.num_classes);
    base = torch::zeros({data.num_classes, p.arch.latent}, data.test.options());  // the prior's mean
  } else {
    base = vae.encoder->forward(data.test.narrow(0, 0, 10)).mu;  // anchors' posterior means
  }
  nlohmann::json grids = nlohmann::json::array();
  for (int64_t j = 0; j < p.arch.latent; ++j) {
    auto grid = latent_traversal(vae, base, cond, j, traversal_values(2.0, 9));  // [R, V + 1, D]
    const std::string rel = "images/traversal-dim" + std::to_string(j + 1) + ".png";
    write_image_grid((dir / rel).string(), grid.reshape({-1, data.dim()}), grid.size(1), data.height, data.width);
    grids.push_back({{"dim", j + 1}, {"image", rel}, {"kl", usage.kl_per_dim[j]}, {"activity", usage.activity[j]}});
  }
  return grids;
}

nlohmann::json compute_checks(const std::vector<nlohmann::json>& sweep, int64_t nz) {
  nlohmann::json checks = nlohmann::json::array();
  if (sweep.size() < 2) return checks;
  auto rec = [](const nlohmann::json& p) { return -p["final"]["test"]["log_likelihood"].get<double>(); };
  auto kl = [](const nlohmann::json& p) { return p["final"]["test"]["kl"].get<double>(); };
  bool kl_falls = true, rec_rises = true;
  std::string kls, recs;
  for (size_t i = 0; i < sweep.size(); ++i) {
    if (i > 0 && kl(sweep[i]) >= kl(sweep[i - 1])) kl_falls = false;
    if (i > 0 && rec(sweep[i]) <= rec(sweep[i - 1])) rec_rises = false;
    kls += (i ? " -> " : "") + format_fixed(kl(sweep[i]));
    recs += (i ? " -> " : "") + format_fixed(rec(sweep[i]));
  }
  checks.push_back({{"claim", "the KL term falls as beta grows"},
                    {"criterion", "the final test KL strictly decreases from each beta to the next larger one"},
                    {"holds", kl_falls},
                    {"detail", "KL " + kls}});
  checks.push_back({{"claim", "the reconstruction loss rises as beta grows"},
                    {"criterion", "the final test reconstruction loss strictly increases from each beta to the next"},
                    {"holds", rec_rises},
                    {"detail", "reconstruction " + recs}});
  const auto& largest = sweep.back();
  const int64_t active = largest["active_units"].get<int64_t>();
  checks.push_back({{"claim", "a large beta switches most latent dimensions off"},
                    {"criterion", "at the largest beta fewer than half of the " + std::to_string(nz) +
                                      " dimensions are active (Cov_x(E_q[z_j]) > 1e-2)"},
                    {"holds", 2 * active < nz},
                    {"detail", std::to_string(active) + " of " + std::to_string(nz) + " active at beta = " +
                                   beta_tag(largest["beta"].get<double>())}});
  return checks;
}

class BetaSweep : public Chapter {
 public:
  ChapterInfo info() const override {
    // Seed 000's protocol by default, so its figures compare; binarized is one option away.
    return {"chapter-03", "03-beta-sweep",
            "beta sweeps, rate and distortion, latent traversals (seed 000 sections 3.1, 4.3)", "mnist",
            Protocol::kGrayBce};
  }

  void declare(OptionTable& o) override {
    add_training_options(o, training_);  // seed 000 section 2: KW2013's model and optimizer
    // Seed 000 Fig. 6: 1, 2, 5, 50; the rest for the rate/distortion curve.
    o.add("betas", betas_text_, {"1,5", "0.5,1,2,5,10,20,50", "0.5,1,2,5,10,20,50"}, "the sweep's betas").key("");
    o.add("arch", arch_text_, std::string("[500, 20]"),
          "the sweep's architecture [h1, ..., Nz] (seed 000 section 3.1)").key("");
    o.add("traversal-betas", traversal_betas_text_, {"5", "1,5", "1,5"},
          "betas of the traversal models (seed 000 Figs. 14-15)").key("");
    o.add("traversal-nz", traversal_nz_, int64_t{5}, "latent size of the traversal models (seed 000 section 4.3; 0 = none)")
        .range(0, 64);
    o.add("appendix-nz", appendix_nz_, {0, 0, 10}, "a second traversal latent size (seed 000 appendix 7.2; 0 = none)")
        .range(0, 64);
    o.add("traversal-condition", traversal_condition_, std::string("one-hot"),
          "one-hot (a CVAE, one row per label, as the seed's) | none (rows = test images)")
        .one_of({"one-hot", "none"});
    // full: the seed's 1000 epochs.
    o.add("samples", samples_, {2e3, 6e5, 6e7}, "training samples per model").range(1, 1e12).key("");
    o.add("eval-points", eval_points_, {2, 6, 20}, "whole-set evaluations per model").range(1, 10000);
    o.add("only-point", only_point_, std::string(), "train one point and stop: beta=B or traversal-nzN-betaB").key("");
    o.flag("list-points", list_points_,
           "print the points not yet trained for this configuration (lines 'pending-point NAME', for "
           "--only-point), and stop")
        .key("");
  }

  void validate() override {
    betas_ = parse_positive_reals(betas_text_, "betas", 1e4);
    traversal_betas_ = parse_positive_reals(traversal_betas_text_, "traversal-betas", 1e4);
    try {
      arch_ = parse_architecture(arch_text_);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--arch: ") + e.what());
    }
    if (list_points_ && !only_point_.empty()) throw UsageError("--list-points and --only-point exclude each other");
  }

  nlohmann::json run(ChapterRun& run) override {
    const TensorData data = run.tensors(training_.max_train, training_.max_test);
    const auto total = static_cast<int64_t>(std::llround(samples_));
    const PointStore store = run.point_store();
    std::vector<PointSpec> sweep_specs, traversal_specs;
    for (double b : betas_) sweep_specs.push_back({"beta-" + beta_tag(b), b, arch_, ConditionEncoding::kNone, false});
    for (int64_t nz : {traversal_nz_, appendix_nz_}) {
      if (nz <= 0) continue;
      for (double b : traversal_betas_) {
        traversal_specs.push_back({"traversal-nz" + std::to_string(nz) + "-beta" + beta_tag(b), b,
                                   Architecture{arch_.hidden, nz}, parse_condition_encoding(traversal_condition_), true});
      }
    }
    // [run-point]
    if (list_points_) {  // for a scheduler: what is left to train (scripts/slurm_points.sh)
      for (const auto& specs : {sweep_specs, traversal_specs}) {
        for (const auto& p : specs) {
          if (!reusable_point(run.setup(), store, p.name, point_config(p, total))) std::cout << "pending-point " << p.name << "\n";
        }
      }
      return nullptr;
    }
    if (!only_point_.empty()) {
      for (const auto& specs : {sweep_specs, traversal_specs}) {
        for (const auto& p : specs) {
          if (only_point_ == p.name || (only_point_ == "beta=" + beta_tag(p.beta) && !p.traversal)) {
            train_point(run, store, data, p, total);
            std::cout << run.prefix() << "point " << p.name << " is in " << store.dir(p.name, point_config(p, total)) << "\n";
            return nullptr;
          }
        }
      }
      throw UsageError("--only-point '" + only_point_ + "' is not a point of this sweep (e.g. beta=" +
                       beta_tag(betas_.front()) + (traversal_specs.empty() ? "" : " or " + traversal_specs.front().name) + ")");
    }
    // [run-point]

    auto& config = run.config();
    config["betas"] = betas_;
    config["architecture"] = arch_.to_string();
    config["traversal_betas"] = traversal_betas_;
    config["samples_per_model"] = total;
    run.begin(data.to_json(), "each model sees " + std::to_string(total) + " training samples (seed 000: 1000 epochs, 6e7)");
    auto collect = [&](const std::vector<PointSpec>& specs) {
      std::vector<nlohmann::json> points;
      for (const auto& p : specs) {
        auto point = train_point(run, store, data, p, total);
        const fs::path src = store.dir(p.name, point_config(p, total));
        fs::create_directories(run.writer().path("points/" + p.name));
        fs::copy(src, run.writer().path("points/" + p.name), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
        point["dir"] = "points/" + p.name;
        point["config_hash"] = store.hash(point_config(p, total));
        points.push_back(point);
        std::cout << run.prefix() << p.name << ": test reconstruction "
                  << format_fixed(-point["final"]["test"]["log_likelihood"].get<double>()) << ", KL "
                  << format_fixed(point["final"]["test"]["kl"].get<double>()) << ", active units "
                  << point["active_units"].get<int64_t>() << "\n";
      }
      return points;
    };
    const auto sweep = collect(sweep_specs);
    const auto traversals = collect(traversal_specs);
    return {{"sweep", sweep},
            {"traversals", traversals},
            {"checks", compute_checks(sweep, arch_.latent)},
            {"checks_budget", {{"provisional", total < 6e7}, {"note", "seed 000 trained for 1000 epochs (6e7 samples)"}}},
            {"loss_note", run.protocol() == Protocol::kGrayBce
                              ? "reconstruction = binary cross-entropy of gray levels (seed 000's protocol), not a likelihood"
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

  /// Trains one point (or reuses it) and writes its files into the point store; returns point.json.
  nlohmann::json train_point(const ChapterRun& run, const PointStore& store, const TensorData& data,
                             const PointSpec& p, int64_t total) const {
    const auto config = point_config(p, total);
    // A finished point is reused (--force trains it again); one in training checkpoints.
    const auto checkpoint = point_checkpoint(run.setup(), store, p.name, config);
    if (auto cached = reusable_point(run.setup(), store, p.name, config)) {
      std::cout << run.prefix() << p.name << ": reusing " << store.dir(p.name, config) << "\n";
      return *cached;
    }
    const std::string staging = store.begin(p.name, config);
    TrainOptions train;
    train.total_samples = total;
    train.batch_size = training_.batch_size;
    train.beta = p.beta;
    train.condition = p.condition;
    train.eval_at = log_spaced_marks(std::max<int64_t>(training_.batch_size, total / 100), total, eval_points_,
                                     training_.batch_size);
    train.checkpoint = checkpoint;
    const auto model = VaeOptions(data.dim(), p.arch)
                           .activation(parse_activation(training_.activation))
                           .condition_dim(condition_dim(p.condition, data.num_classes));
    auto [vae, result] = run.train_vae(p.name, model, {training_.optimizer, training_.lr, 0.0}, data, train);
    vae->eval();
    torch::NoGradGuard no_grad;
    const auto usage = latent_usage(*vae, data.test, encode_condition(data.test_labels, p.condition, data.num_classes));
    nlohmann::json point = {{"name", p.name},
                            {"beta", p.beta},
                            {"architecture", p.arch.to_string()},
                            {"condition", to_string(p.condition)},
                            {"samples_seen", result.samples_seen},
                            {"final", {{"train", result.curve.back().train.to_json()},
                                       {"test", result.curve.back().test.to_json()}}},
                            {"kl_per_dim", usage.kl_per_dim},
                            {"activity", usage.activity},
                            {"active_units", usage.active_units},
                            {"active_threshold", usage.threshold},
                            {"curve", curve_json(result)},
                            {"train_seconds", result.train_seconds},
                            {"eval_seconds", result.eval_seconds},
                            {"step", result.step}};
    const fs::path dir(staging);
    fs::create_directories(dir / "images");
    std::ostringstream csv;
    csv << "samples_seen,train_reconstruction,train_kl,test_reconstruction,test_kl\n";
    for (const auto& q : result.curve) {
      csv << q.samples_seen << ',' << -q.train.log_likelihood << ',' << q.train.kl << ',' << -q.test.log_likelihood
          << ',' << q.test.kl << '\n';
    }
    write_file_atomic((dir / "curve.csv").string(), csv.str());
    if (!p.traversal) {
      const auto x = data.test.narrow(0, 0, std::min<int64_t>(10, data.test.size(0)));
      write_image_grid((dir / "images/reconstructions.png").string(), torch::cat({x, reconstruct(*vae, x)}), x.size(0),
                       data.height, data.width);
      write_image_grid((dir / "images/samples.png").string(), sample_images(*vae, 100, x.options()), 10, data.height,
                       data.width);
      point["images"] = {{"reconstructions", "images/reconstructions.png"}, {"samples", "images/samples.png"}};
    } else {
      point["traversals"] = write_traversals(*vae, p, data, usage, dir);
      point["traversal_values"] = traversal_values(2.0, 9);
      point["traversal_rows"] = p.condition != ConditionEncoding::kNone
                                    ? "labels 0-9 (CVAE), other latents at the prior's mean"
                                    : "the first ten test images' posterior means";
    }
    store.commit(staging, p.name, config, point);
    remove_point_checkpoint(checkpoint);
    return *store.load(p.name, config);
  }

  TrainingFlags training_{"tanh", "adagrad", 0.02};
  std::string betas_text_, arch_text_, traversal_betas_text_, traversal_condition_, only_point_;
  int64_t traversal_nz_ = 5, appendix_nz_ = 0, eval_points_ = 0;
  double samples_ = 0;
  bool list_points_ = false;
  std::vector<double> betas_, traversal_betas_;
  Architecture arch_;
};

}  // namespace

int main(int argc, char** argv) { return chapter_main<BetaSweep>(argc, argv); }
