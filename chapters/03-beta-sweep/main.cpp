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
#include <map>
#include <sstream>

#include "vaerepro/analysis.h"
#include "vaerepro/chapter.h"
#include "vaerepro/format.h"
#include "vaerepro/image.h"
#include "vaerepro/points.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace vaerepro;

namespace {

constexpr const char* kSlug = "03-beta-sweep";
constexpr const char* kProgram = "chapter-03";

struct Options {
  TrainingFlags training{"tanh", "adagrad", 0.02};  // seed 000 section 2: KW2013's model and optimizer
  std::string betas = "0.5,1,2,5,10,20,50";  // seed 000 Fig. 6: 1, 2, 5, 50; the rest for the rate/distortion curve
  std::string arch = "[500, 20]";             // seed 000 section 3.1: one hidden layer of 500, Nz = 20
  std::string traversal_betas = "1,5";        // seed 000 Figs. 14-15
  int64_t traversal_nz = 5;                   // seed 000 section 4.3
  int64_t appendix_nz = 0;                    // seed 000 appendix 7.2 (Nz = 10); 0 = skip
  std::string traversal_condition = "one-hot";  // the seed's traversals are of a CVAE, one row per label
  double samples = 0;                         // per model (profile)
  int64_t eval_points = 0;
  std::string only_point;                     // "beta=5" or "traversal-nz5-beta1": train that point, then stop
  bool list_points = false;                   // print the points not yet cached, then stop
};

void apply_profile(const std::string& profile, Options& o) {
  if (profile == "smoke") {
    o.betas = "1,5";
    o.traversal_betas = "5";
    o.samples = 2000;
    o.eval_points = 2;
    o.training.max_train = 1000;
    o.training.max_test = 500;
  } else if (profile == "quick") {  // within 10 minutes on 2 CPU cores
    o.samples = 6e5;
    o.eval_points = 6;
  } else {
    o.samples = 3e7;  // 500 epochs
    o.eval_points = 20;
    o.appendix_nz = 10;
  }
}

std::vector<double> parse_betas(const std::string& text, const std::string& option) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string tok;
  // "1,,5" and "1," are mistakes (an entry left out), not lists.
  if (!text.empty() && (text.back() == ',' || text.front() == ',')) {
    throw UsageError("--" + option + ": '" + text + "' has an empty entry (write e.g. 0.5,1,2)");
  }
  while (std::getline(ss, tok, ',')) {
    if (tok.empty()) throw UsageError("--" + option + ": '" + text + "' has an empty entry (write e.g. 0.5,1,2)");
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size() || !std::isfinite(v) || v <= 0 || v > 1e4) {
      throw UsageError("--" + option + ": '" + tok + "' is not a beta in (0, 1e4]");
    }
    for (double w : out) {
      if (w == v) throw UsageError("--" + option + ": " + tok + " is given twice");
    }
    out.push_back(v);
  }
  if (out.empty()) throw UsageError("--" + option + " is empty");
  std::sort(out.begin(), out.end());
  return out;
}

std::string beta_tag(double beta) {
  std::ostringstream os;
  os << beta;
  return os.str();
}

/// What a point is and how it was trained: its cache key.
struct PointSpec {
  std::string name;  ///< "beta-5" or "traversal-nz5-beta1"
  double beta = 1;
  Architecture arch;
  ConditionEncoding condition = ConditionEncoding::kNone;
  bool traversal = false;
};

struct Context {
  const Options& o;
  const ChapterSetup& setup;
  const TensorData& data;
  Activation activation;
  int64_t total;
  PointStore store;
};

nlohmann::json point_config(const Context& ctx, const PointSpec& p) {
  return {{"name", p.name},
          {"beta", p.beta},
          {"architecture", p.arch.to_string()},
          {"condition", to_string(p.condition)},
          {"activation", to_string(ctx.activation)},
          {"optimizer", {{"name", ctx.o.training.optimizer}, {"lr", ctx.o.training.lr}}},
          {"batch_size", ctx.o.training.batch_size},
          {"samples", ctx.total},
          {"eval_points", ctx.o.eval_points},
          {"dataset", ctx.setup.dataset_name},
          {"protocol", to_string(ctx.setup.protocol)},
          {"max_train", ctx.o.training.max_train},
          {"max_test", ctx.o.training.max_test},
          {"seed", ctx.setup.common.seed},
          {"device", ctx.setup.device.type() == torch::kCUDA ? "cuda" : "cpu"}};
}

/// Trains one point and writes its files into the point store; returns point.json.
nlohmann::json train_point(const Context& ctx, const PointSpec& p) {
  const auto config = point_config(ctx, p);
  // A finished point is reused (--force trains it again); one in training checkpoints.
  const auto checkpoint = point_checkpoint(ctx.setup, ctx.store, p.name, config);
  if (auto cached = reusable_point(ctx.setup, ctx.store, p.name, config)) {
    std::cout << kProgram << ": " << p.name << ": reusing " << ctx.store.dir(p.name, config) << "\n";
    return *cached;
  }
  const std::string staging = ctx.store.begin(p.name, config);
  torch::manual_seed(static_cast<uint64_t>(ctx.setup.common.seed * 1000003 + std::llround(p.beta * 1000) +
                                           p.arch.latent * 7 + (p.traversal ? 13 : 0)));
  const TensorData& data = ctx.data;
  const int64_t c_dim = condition_dim(p.condition, data.num_classes);
  Vae vae(VaeOptions(data.dim(), p.arch).activation(ctx.activation).condition_dim(c_dim));
  vae->to(ctx.setup.device);
  auto optimizer = make_optimizer(vae->parameters(), {ctx.o.training.optimizer, ctx.o.training.lr, 0.0});
  TrainOptions train;
  train.total_samples = ctx.total;
  train.batch_size = ctx.o.training.batch_size;
  train.beta = p.beta;
  train.condition = p.condition;
  train.eval_at = log_spaced_marks(std::max<int64_t>(ctx.o.training.batch_size, ctx.total / 100), ctx.total,
                                   ctx.o.eval_points, ctx.o.training.batch_size);
  train.label = std::string(kProgram) + " " + p.name;
  train.checkpoint = checkpoint;
  TrainResult result = train_vae(*vae, *optimizer, data, train);
  vae->eval();
  torch::NoGradGuard no_grad;

  const auto test_c = encode_condition(data.test_labels, p.condition, data.num_classes);
  const auto usage = latent_usage(*vae, data.test, test_c);
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
  std::vector<std::vector<double>> rows;
  for (const auto& q : result.curve) {
    rows.push_back({static_cast<double>(q.samples_seen), -q.train.log_likelihood, q.train.kl,
                    -q.test.log_likelihood, q.test.kl});
  }
  {
    std::ostringstream csv;
    csv << "samples_seen,train_reconstruction,train_kl,test_reconstruction,test_kl\n";
    for (const auto& r : rows) csv << r[0] << ',' << r[1] << ',' << r[2] << ',' << r[3] << ',' << r[4] << '\n';
    write_file_atomic((dir / "curve.csv").string(), csv.str());
  }
  const int64_t h = data.height, w = data.width;
  if (!p.traversal) {
    const int64_t n = std::min<int64_t>(10, data.test.size(0));
    auto x = data.test.narrow(0, 0, n);
    auto recon = vae->decoder->mean(vae->decoder->forward(vae->encoder->forward(x).mu));  // [n, D]
    write_image_grid((dir / "images/reconstructions.png").string(), torch::cat({x, recon}), n, h, w);
    auto z = torch::randn({100, p.arch.latent}, x.options());
    write_image_grid((dir / "images/samples.png").string(), vae->decoder->mean(vae->decoder->forward(z)), 10, h, w);
    point["images"] = {{"reconstructions", "images/reconstructions.png"}, {"samples", "images/samples.png"}};
  } else {
    // One grid per latent dimension: rows = labels 0..9 (a CVAE) or the first
    // ten test images (a VAE), columns = -2..+2 sd, then the heat map.
    torch::Tensor base, cond;
    if (p.condition != ConditionEncoding::kNone) {
      auto labels = torch::arange(data.num_classes, data.test_labels.options());
      cond = encode_condition(labels, p.condition, data.num_classes);
      base = torch::zeros({data.num_classes, p.arch.latent}, data.test.options());  // the prior's mean
    } else {
      base = vae->encoder->forward(data.test.narrow(0, 0, 10)).mu;  // anchors' posterior means
    }
    const auto values = traversal_values(2.0, 9);
    nlohmann::json grids = nlohmann::json::array();
    for (int64_t j = 0; j < p.arch.latent; ++j) {
      auto grid = latent_traversal(*vae, base, cond, j, values);  // [R, V + 1, D]
      const std::string rel = "images/traversal-dim" + std::to_string(j + 1) + ".png";
      write_image_grid((dir / rel).string(), grid.reshape({-1, data.dim()}), grid.size(1), h, w);
      grids.push_back({{"dim", j + 1}, {"image", rel}, {"kl", usage.kl_per_dim[j]}, {"activity", usage.activity[j]}});
    }
    point["traversals"] = grids;
    point["traversal_values"] = values;
    point["traversal_rows"] = p.condition != ConditionEncoding::kNone ? "labels 0-9 (CVAE), other latents at the prior's mean"
                                                                       : "the first ten test images' posterior means";
  }
  ctx.store.commit(staging, p.name, config, point);
  remove_point_checkpoint(checkpoint);
  return *ctx.store.load(p.name, config);
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

int run(int argc, char** argv) {
  CommonOptions common;
  Options o;
  auto generic = generic_options(common);
  po::options_description experiment("Experiment (defaults depend on --profile)");
  add_training_flags(experiment, o.training, true);
  experiment.add_options()
      ("betas", po::value(&o.betas), "the sweep, e.g. 0.5,1,2,5,10,20,50 (smoke: 1,5)")
      ("arch", po::value(&o.arch), "the sweep's architecture [h1, ..., Nz] ([500, 20])")
      ("traversal-betas", po::value(&o.traversal_betas), "betas of the traversal models (1,5)")
      ("traversal-nz", po::value(&o.traversal_nz), "latent size of the traversal models (5; 0 = none)")
      ("appendix-nz", po::value(&o.appendix_nz), "a second traversal latent size, seed appendix 7.2 (full: 10; 0 = none)")
      ("traversal-condition", po::value(&o.traversal_condition), "one-hot (a CVAE, one row per label) | none (rows = test images)")
      ("samples", po::value(&o.samples), "training samples per model (smoke 2e3, quick 6e5, full 3e7)")
      ("eval-points", po::value(&o.eval_points), "whole-set evaluations per model")
      ("only-point", po::value(&o.only_point), "train one point and stop: beta=B or traversal-nzN-betaB")
      ("list-points", po::bool_switch(&o.list_points),
       "print the points not yet trained for this configuration (lines 'pending-point NAME', for --only-point), and stop");
  if (!parse_chapter_command_line(argc, argv,
                                  "chapter-03: beta sweeps, rate/distortion and latent traversals (seed 000 sections 3.1, 4.3)\n"
                                "usage: chapter-03 [options]",
                                  generic, experiment,
                                  [&](const std::string& profile) { apply_profile(profile, o); })) {
    return 0;
  }
  const auto betas = parse_betas(o.betas, "betas");
  const auto traversal_betas = parse_betas(o.traversal_betas, "traversal-betas");
  Architecture arch;
  try {
    arch = parse_architecture(o.arch);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--arch: ") + e.what());
  }
  require_range("traversal-nz", static_cast<double>(o.traversal_nz), 0, 64);
  require_range("appendix-nz", static_cast<double>(o.appendix_nz), 0, 64);
  require_range("samples", o.samples, 1, 1e12);
  require_range("eval-points", static_cast<double>(o.eval_points), 1, 10000);
  ConditionEncoding traversal_condition;
  try {
    traversal_condition = parse_condition_encoding(o.traversal_condition);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--traversal-condition: ") + e.what());
  }
  if (traversal_condition == ConditionEncoding::kRaw) {
    throw UsageError("--traversal-condition: use one-hot or none (raw labels are chapter 4's subject)");
  }
  const Activation activation = validate_training_flags(o.training);
  if (o.list_points && !o.only_point.empty()) throw UsageError("--list-points and --only-point exclude each other");

  // Seed 000's protocol by default, so its figures compare; binarized is one option away.
  const ChapterSetup setup = start_chapter(kProgram, kSlug, common, Protocol::kGrayBce, "mnist", argc, argv);
  torch::manual_seed(static_cast<uint64_t>(common.seed));
  const TensorData data = prepare_tensors(setup.dataset, setup.protocol, setup.device, o.training.max_train, o.training.max_test);
  const auto total = static_cast<int64_t>(std::llround(o.samples));
  Context ctx{o, setup, data, activation, total, PointStore(common.out, kSlug, setup.dataset.fingerprint)};

  std::vector<PointSpec> sweep_specs, traversal_specs;
  for (double b : betas) sweep_specs.push_back({"beta-" + beta_tag(b), b, arch, ConditionEncoding::kNone, false});
  for (int64_t nz : {o.traversal_nz, o.appendix_nz}) {
    if (nz <= 0) continue;
    for (double b : traversal_betas) {
      traversal_specs.push_back({"traversal-nz" + std::to_string(nz) + "-beta" + beta_tag(b), b,
                                 Architecture{arch.hidden, nz}, traversal_condition, true});
    }
  }

  // [run-point]
  if (o.list_points) {  // for a scheduler: what is left to train (scripts/slurm_points.sh)
    for (const auto& specs : {sweep_specs, traversal_specs}) {
      for (const auto& p : specs) {
        if (!reusable_point(setup, ctx.store, p.name, point_config(ctx, p))) std::cout << "pending-point " << p.name << "\n";
      }
    }
    return 0;
  }
  if (!o.only_point.empty()) {
    for (const auto& specs : {sweep_specs, traversal_specs}) {
      for (const auto& p : specs) {
        if (o.only_point == p.name || o.only_point == "beta=" + beta_tag(p.beta) && !p.traversal) {
          train_point(ctx, p);
          std::cout << kProgram << ": point " << p.name << " is in " << ctx.store.dir(p.name, point_config(ctx, p)) << "\n";
          return 0;
        }
      }
    }
    throw UsageError("--only-point '" + o.only_point + "' is not a point of this sweep (e.g. beta=" +
                     beta_tag(betas.front()) + (traversal_specs.empty() ? "" : " or " + traversal_specs.front().name) + ")");
  }
  // [run-point]

  RunWriter writer(common.out, kSlug);
  nlohmann::json run = setup.run_json("beta sweeps, rate and distortion, latent traversals (seed 000 sections 3.1, 4.3)");
  writer.write_json("run.json", run);
  return run_staged(writer, run, kProgram, [&]() -> int {
    const auto t_start = std::chrono::steady_clock::now();
    run["data"] = data.to_json();
    run["config"] = {{"betas", betas},
                     {"architecture", arch.to_string()},
                     {"traversal_betas", traversal_betas},
                     {"traversal_nz", o.traversal_nz},
                     {"appendix_nz", o.appendix_nz},
                     {"traversal_condition", to_string(traversal_condition)},
                     {"activation", to_string(activation)},
                     {"optimizer", {{"name", o.training.optimizer}, {"lr", o.training.lr}}},
                     {"batch_size", o.training.batch_size},
                     {"samples_per_model", total},
                     {"eval_points", o.eval_points},
                     {"max_train", o.training.max_train},
                     {"max_test", o.training.max_test}};
    run["budget"] = "each model sees " + std::to_string(total) + " training samples (seed 000: 1000 epochs, 6e7)";
    const RunCheckpoints checkpoints(setup, run["config"]);
    if (!checkpoints.start(writer)) return 0;
    writer.write_json("run.json", run);

    auto collect = [&](const std::vector<PointSpec>& specs) {
      std::vector<nlohmann::json> points;
      for (const auto& p : specs) {
        auto point = train_point(ctx, p);
        const fs::path src = ctx.store.dir(p.name, point_config(ctx, p));
        fs::create_directories(writer.path("points/" + p.name));
        fs::copy(src, writer.path("points/" + p.name), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
        point["dir"] = "points/" + p.name;
        point["config_hash"] = ctx.store.hash(point_config(ctx, p));
        points.push_back(point);
        std::cout << kProgram << ": " << p.name << ": test reconstruction "
                  << format_fixed(-point["final"]["test"]["log_likelihood"].get<double>()) << ", KL "
                  << format_fixed(point["final"]["test"]["kl"].get<double>()) << ", active units "
                  << point["active_units"].get<int64_t>() << "\n";
      }
      return points;
    };
    const auto sweep = collect(sweep_specs);
    const auto traversals = collect(traversal_specs);
    nlohmann::json metrics = {{"sweep", sweep},
                              {"traversals", traversals},
                              {"checks", compute_checks(sweep, arch.latent)},
                              {"checks_budget", {{"provisional", total < 6e7},
                                                 {"note", "seed 000 trained for 1000 epochs (6e7 samples)"}}},
                              {"loss_note", to_string(setup.protocol) == "gray-bce"
                                                ? "reconstruction = binary cross-entropy of gray levels (seed 000's protocol), not a likelihood"
                                                : "reconstruction = -log p(x|z) of dynamically binarised data, nats"}};
    finish_chapter(writer, run, metrics, kProgram, t_start, &checkpoints);
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return run_program(kProgram, argc, argv, run);
}
