/// \page chapter02 Chapter 2: the marginal likelihood on small and large training sets
///
/// **Claim** (Kingma & Welling 2013, Fig. 3 and appendix D; seed 000 section
/// 2.2): an MLP VAE with 100 tanh hidden units and Nz = 3, trained on the
/// first 1000 training points, overfits (the training likelihood keeps rising
/// while the test likelihood falls behind); trained on the first 50000 it does
/// not. KW2013's final AEVB values (digitised): N = 1000 train -109.1, test
/// -143.2; N = 50000 train -131.0, test -138.0.
///
/// **Estimators**: the importance-sampled bound
/// \f$\log \frac1K \sum_k p(x, z_k)/q(z_k|x)\f$ with K = 5000 (IWAE's
/// protocol), and KW2013 appendix D's HMC-based estimator, side by side; both
/// in src/vaerepro/estimators.cpp and validated in closed form on a
/// linear-Gaussian model (tests/estimators_test.cpp). Seed 000's estimator
/// (its appendix 7.1.2) flips the sign of the ||z||^2 term and exponentiates
/// without log-sum-exp; it is not reproduced.
///
/// The estimates along training come from the trainer's evaluation hook:
/// \snippet 02-marginal-likelihood/main.cpp curve-estimates
///
/// Results land in results/02-marginal-likelihood/ (layout: chapters/README.md).

#include <cmath>
#include <iostream>
#include <map>
#include <sstream>

#include "vaerepro/chapter.h"
#include "vaerepro/format.h"
#include "vaerepro/estimators.h"
#include "vaerepro/image.h"

namespace po = boost::program_options;
using namespace vaerepro;

namespace {

constexpr const char* kSlug = "02-marginal-likelihood";
constexpr const char* kProgram = "chapter-02";

/// The experiment's options; defaults depend on the profile.
struct Options {
  TrainingFlags training{"tanh", "adagrad", 0.02};  // KW2013 section 5 (seed 000's code: Adagrad 3e-3 for N = 1000)
  std::string n_train = "1000,50000";  // KW2013 Fig. 3
  int64_t hidden = 100;                // KW2013 Fig. 3: 100 hidden units
  int64_t nz = 3;                      // KW2013 Fig. 3: 3 latent variables
  double weight_decay = -1;            // -1: KW2013's N(0, I) weight prior = 1 / N
  double samples_small = 0;            // training samples for N = 1000 (profile)
  double samples_large = 0;            // training samples for N = 50000 (profile)
  int64_t eval_points = 0;             // estimates along training
  int64_t eval_examples = 1000;        // "the first 1000 points of each set", as KW
  int64_t k_curve = 0;                 // importance samples along training (profile)
  int64_t k_final = 5000;              // IWAE's protocol for the final models
  int64_t hmc_examples = 0;            // examples of each set for the HMC estimator (profile)
  int64_t hmc_burn_in = 0, hmc_samples = 0, hmc_thin = 1, hmc_leapfrog = 10;
};

void apply_profile(const std::string& profile, Options& o) {
  if (profile == "smoke") {
    o.n_train = "200,1000";
    o.samples_small = o.samples_large = 2000;
    o.eval_points = 2;
    o.eval_examples = 100;
    o.k_curve = 10;
    o.k_final = 50;
    o.hmc_examples = 10;
    o.hmc_burn_in = 20;
    o.hmc_samples = 20;
  } else if (profile == "quick") {  // within 10 minutes on 2 CPU cores
    o.samples_small = 8e6;          // 8000 epochs of 1000 points: long enough to overfit
    o.samples_large = 6e6;          // 120 epochs of 50000 points
    o.eval_points = 8;
    o.k_curve = 200;
    o.k_final = 5000;
    o.hmc_examples = 100;
    o.hmc_burn_in = 200;
    o.hmc_samples = 200;
  } else {  // full: KW2013's budget (about 6e7 samples)
    o.samples_small = 6e7;
    o.samples_large = 6.7e7;
    o.eval_points = 20;
    o.k_curve = 5000;
    o.k_final = 5000;
    o.hmc_examples = 1000;
    o.hmc_burn_in = 300;
    o.hmc_samples = 400;
    o.hmc_thin = 2;
  }
}

int64_t model_seed(int64_t seed, int64_t n) { return seed * 1000003 + n; }

/// The overfitting verdicts, from the fresh curves and final estimates. Each
/// compares a difference with its standard error: every estimate is a mean
/// over a fixed set of points (the first 1000 of each set) and carries the
/// standard error of that mean (`standard_error_data`, about 1.5 nats on 1000
/// MNIST points); the standard error of a sum or difference of estimates is
/// taken as the root sum of their squares (treated as independent, which
/// overstates it for estimates on the same points: conservative). A
/// difference "exceeds" another when it is larger by more than two of those
/// standard errors.
nlohmann::json compute_checks(const nlohmann::json& models, int64_t k_final) {
  nlohmann::json checks = nlohmann::json::array();
  std::map<int64_t, nlohmann::json> by_n;
  for (const auto& m : models) by_n[m["n_train"].get<int64_t>()] = m;
  if (by_n.size() < 2) return checks;
  const auto& small = by_n.begin()->second;
  const auto& large = std::prev(by_n.end())->second;
  const int64_t n_small = by_n.begin()->first, n_large = std::prev(by_n.end())->first;
  struct Value {
    double mean, se;
  };
  auto final_iw = [&](const nlohmann::json& m, const char* split) {
    const auto& e = m["final"][split]["importance_sampled"][std::to_string(k_final)];
    return Value{e["mean"].get<double>(), e.value("standard_error_data", 0.0)};
  };
  auto curve_value = [](const nlohmann::json& m, size_t i, const char* split) {
    const auto& e = m["curve"][i]["extra"][split];
    return Value{e["mean"].get<double>(), e.value("standard_error_data", 0.0)};
  };
  auto rss = [](std::initializer_list<double> se) {
    double s2 = 0;
    for (double v : se) s2 += v * v;
    return std::sqrt(s2);
  };
  // The train-minus-test gap at a point of the curve, and its change between two points.
  auto growth = [&](const nlohmann::json& m, size_t a, size_t b) {
    const Value tra = curve_value(m, a, "train"), tea = curve_value(m, a, "test");
    const Value trb = curve_value(m, b, "train"), teb = curve_value(m, b, "test");
    return Value{(trb.mean - teb.mean) - (tra.mean - tea.mean), rss({tra.se, tea.se, trb.se, teb.se})};
  };
  const Value st = final_iw(small, "train"), se_ = final_iw(small, "test");
  const Value lt = final_iw(large, "train"), le = final_iw(large, "test");
  const double gap_small = st.mean - se_.mean, gap_large = lt.mean - le.mean;
  const double gap_diff_se = rss({st.se, se_.se, lt.se, le.se});
  const size_t last_small = small["curve"].size() - 1, last_large = large["curve"].size() - 1;
  const Value growth_small = growth(small, 0, last_small);
  const Value growth_large = growth(large, last_large / 2, last_large);
  const std::string ns = std::to_string(n_small), nl = std::to_string(n_large);
  auto pm = [](const Value& v) { return format_fixed(v.mean) + " +- " + format_fixed(v.se); };
  checks.push_back(
      {{"claim", "with N = " + ns + " the model overfits"},
       {"criterion", "its final train-minus-test gap (K = " + std::to_string(k_final) +
                         ") exceeds that of N = " + nl + " by more than two standard errors of the difference, "
                         "and its gap grew along training by more than two standard errors of the growth "
                         "(standard errors of the means over the scored points)"},
       {"holds", gap_small - gap_large > 2 * gap_diff_se && growth_small.mean > 2 * growth_small.se},
       {"detail", "gap " + format_fixed(gap_small) + " nats against " + format_fixed(gap_large) + " (difference " +
                      pm(Value{gap_small - gap_large, gap_diff_se}) + "); grew by " + pm(growth_small) + " nats"},
       {"standard_error", gap_diff_se}});
  checks.push_back(
      {{"claim", "with N = " + nl + " it does not"},
       {"criterion", "over the second half of its estimates along training, the train-minus-test gap grows by "
                     "less than two standard errors of that growth (the test estimate keeps up with the train "
                     "estimate within the estimator's noise)"},
       {"holds", growth_large.mean < 2 * growth_large.se},
       {"detail", "the gap changed by " + pm(growth_large) + " nats"},
       {"standard_error", growth_large.se}});
  const Value better{le.mean - se_.mean, rss({le.se, se_.se})};
  checks.push_back({{"claim", "the larger training set generalises better"},
                    {"criterion", "final test estimate with N = " + nl + " above that with N = " + ns +
                                      " by more than two standard errors of the difference"},
                    {"holds", better.mean > 2 * better.se},
                    {"detail", format_fixed(se_.mean) + " (N = " + ns + ") -> " + format_fixed(le.mean) + " (N = " +
                                   nl + "): " + pm(better) + " nats"},
                    {"standard_error", better.se}});
  return checks;
}

int run(int argc, char** argv) {
  CommonOptions common;
  Options o;
  auto generic = generic_options(common);
  po::options_description experiment("Experiment (defaults depend on --profile)");
  add_training_flags(experiment, o.training, false);
  experiment.add_options()
      ("n-train", po::value(&o.n_train), "training-set sizes (the first N points), e.g. 1000,50000")
      ("hidden", po::value(&o.hidden), "hidden units (100)")
      ("nz", po::value(&o.nz), "latent size (3; the HMC estimator needs < 5)")
      ("weight-decay", po::value(&o.weight_decay), "L2 weight decay; -1 = KW2013's N(0,I) prior, 1/N (-1)")
      ("samples-small", po::value(&o.samples_small), "training samples for the smaller set (quick 8e6, full 6e7)")
      ("samples-large", po::value(&o.samples_large), "training samples for the larger set (quick 6e6, full 6.7e7)")
      ("eval-points", po::value(&o.eval_points), "estimates along training (quick 8, full 20)")
      ("eval-examples", po::value(&o.eval_examples), "estimate on the first N points of each set (1000, as KW)")
      ("k-curve", po::value(&o.k_curve), "importance samples along training (quick 200, full 5000)")
      ("k-final", po::value(&o.k_final), "importance samples for the final models (5000, IWAE)")
      ("hmc-examples", po::value(&o.hmc_examples), "examples per set for the HMC estimator (quick 100, full 1000; 0 = off)")
      ("hmc-burn-in", po::value(&o.hmc_burn_in), "HMC transitions before sampling")
      ("hmc-samples", po::value(&o.hmc_samples), "HMC samples L, for the fit and for the estimate")
      ("hmc-thin", po::value(&o.hmc_thin), "keep every n-th HMC transition")
      ("hmc-leapfrog", po::value(&o.hmc_leapfrog), "leapfrog steps per HMC transition (10)");
  if (!parse_chapter_command_line(argc, argv,
                                  "chapter-02: marginal likelihood, small vs large training set "
                                "(Kingma & Welling 2013, Fig. 3)\nusage: chapter-02 [options]",
                                  generic, experiment,
                                  [&](const std::string& profile) { apply_profile(profile, o); })) {
    return 0;
  }
  const auto n_list = parse_positive_list(o.n_train, "n-train");
  require_range("hidden", static_cast<double>(o.hidden), 1, 100000);
  require_range("nz", static_cast<double>(o.nz), 1, 4096);
  if (o.weight_decay != -1) require_range("weight-decay", o.weight_decay, 0, 1);
  require_range("samples-small", o.samples_small, 1, 1e12);
  require_range("samples-large", o.samples_large, 1, 1e12);
  require_range("eval-points", static_cast<double>(o.eval_points), 1, 10000);
  require_range("eval-examples", static_cast<double>(o.eval_examples), 1, 1e7);
  require_range("k-curve", static_cast<double>(o.k_curve), 1, 1e6);
  require_range("k-final", static_cast<double>(o.k_final), 1, 1e6);
  require_range("hmc-examples", static_cast<double>(o.hmc_examples), 0, 1e6);
  require_range("hmc-burn-in", static_cast<double>(o.hmc_burn_in), 0, 1e6);
  require_range("hmc-samples", static_cast<double>(o.hmc_samples), 2, 1e6);
  require_range("hmc-thin", static_cast<double>(o.hmc_thin), 1, 1000);
  require_range("hmc-leapfrog", static_cast<double>(o.hmc_leapfrog), 1, 1000);
  if (o.hmc_examples > 0 && o.nz >= 5) {
    std::cerr << kProgram << ": warning: KW2013 found the HMC estimator unreliable for Nz >= 5\n";
  }
  const Activation activation = validate_training_flags(o.training);

  const ChapterSetup setup =
      start_chapter(kProgram, kSlug, common, Protocol::kBinarized, "mnist", argc, argv);
  for (auto n : n_list) {
    if (n > setup.dataset.train.size()) {
      throw UsageError("--n-train " + std::to_string(n) + " exceeds the " +
                       std::to_string(setup.dataset.train.size()) + " training examples of " +
                       setup.dataset_name);
    }
  }
  RunWriter writer(common.out, kSlug);
  nlohmann::json run = setup.run_json(
      "Marginal likelihood, small and large training sets (Kingma & Welling 2013, Fig. 3)");
  writer.write_json("run.json", run);

  return run_staged(writer, run, kProgram, [&]() -> int {
    const auto t_start = std::chrono::steady_clock::now();
    HmcOptions hmc;
    hmc.burn_in = o.hmc_burn_in;
    hmc.samples = o.hmc_samples;
    hmc.thin = o.hmc_thin;
    hmc.leapfrog_steps = o.hmc_leapfrog;
    nlohmann::json config = {
        {"n_train", n_list},
        {"architecture", Architecture{{o.hidden}, o.nz}.to_string()},
        {"activation", to_string(activation)},
        {"likelihood", "bernoulli"},
        {"optimizer", {{"name", o.training.optimizer}, {"lr", o.training.lr}, {"weight_decay", o.weight_decay < 0 ? "1/N" : std::to_string(o.weight_decay)}}},
        {"batch_size", o.training.batch_size},
        {"samples", {{"small", o.samples_small}, {"large", o.samples_large}}},
        {"eval_points", o.eval_points},
        {"eval_examples", o.eval_examples},
        {"k_curve", o.k_curve},
        {"k_final", o.k_final},
        {"hmc_examples", o.hmc_examples},
        {"hmc", hmc.to_json()},
        {"init", "N(0, 0.01^2) for every parameter (KW2013 section 5)"}};
    run["config"] = config;
    const RunCheckpoints checkpoints(setup, config);  // each model checkpoints; a finished run is not redone
    if (!checkpoints.start(writer)) return 0;
    run["budget"] = "N = smaller set: " + std::to_string(static_cast<int64_t>(o.samples_small)) +
                    " training samples, larger set: " + std::to_string(static_cast<int64_t>(o.samples_large)) +
                    " (KW2013 Fig. 3: about 6e7); curve estimates with K = " + std::to_string(o.k_curve) +
                    ", final with K = " + std::to_string(o.k_final);
    writer.write_json("run.json", run);

    nlohmann::json models = nlohmann::json::array();
    const int64_t largest = *std::max_element(n_list.begin(), n_list.end());
    for (int64_t n : n_list) {
      torch::manual_seed(static_cast<uint64_t>(model_seed(common.seed, n)));
      const TensorData data = prepare_tensors(setup.dataset, setup.protocol, setup.device, n, 0);
      const int64_t m_train = std::min(o.eval_examples, data.train_eval.size(0));
      const int64_t m_test = std::min(o.eval_examples, data.test.size(0));
      const auto x_train = data.train_eval.narrow(0, 0, m_train);  // the first points, as KW
      const auto x_test = data.test.narrow(0, 0, m_test);
      const double weight_decay = o.weight_decay < 0 ? 1.0 / n : o.weight_decay;
      const double samples = n == largest && n_list.size() > 1 ? o.samples_large : o.samples_small;
      const auto total = static_cast<int64_t>(std::llround(samples));

      Vae vae(VaeOptions(data.dim(), Architecture{{o.hidden}, o.nz}).activation(activation));
      vae->to(setup.device);
      auto optimizer = make_optimizer(vae->parameters(), {o.training.optimizer, o.training.lr, weight_decay});
      TrainOptions train;
      train.total_samples = total;
      train.batch_size = o.training.batch_size;
      train.eval_at = log_spaced_marks(std::max<int64_t>(o.training.batch_size, total / 100), total,
                                       o.eval_points, o.training.batch_size);
      train.label = std::string(kProgram) + " N=" + std::to_string(n);
      train.checkpoint = checkpoints.model("n-" + std::to_string(n));
      // [curve-estimates]
      train.evaluate_extra = [&](VaeImpl& model) -> nlohmann::json {
        return {{"k", o.k_curve},
                {"train", importance_sampled_on_set(model, x_train, o.k_curve).to_json()},
                {"test", importance_sampled_on_set(model, x_test, o.k_curve).to_json()}};
      };
      // [curve-estimates]
      TrainResult result = train_vae(*vae, *optimizer, data, train);
      throw_if_stopped(train.label);  // before the long final estimates (the model's checkpoint is complete)

      // The final model: ELBO, the importance-sampled bound at K = 1, 50 and
      // k_final (the gap shows how loose the ELBO is), and the HMC estimator.
      // They check the stop flag as they go (SIGINT/SIGTERM: exit 130/143);
      // the trained model's checkpoint is kept, and a resumed run estimates
      // again from the start (an estimate keeps no partial state).
      std::cout << train.label << ": final estimates (K = " << o.k_final << " on " << m_train << " + " << m_test
                << " examples" << (o.hmc_examples > 0 ? ", HMC on " + std::to_string(o.hmc_examples) + " per set" : "")
                << ")\n" << std::flush;
      const auto e0 = std::chrono::steady_clock::now();
      nlohmann::json final_json = nlohmann::json::object();
      for (const auto& [split, x] : {std::pair{"train", x_train}, std::pair{"test", x_test}}) {
        nlohmann::json f;
        f["elbo"] = evaluate_elbo(*vae, x, {}).to_json();
        for (int64_t k : {int64_t{1}, int64_t{50}}) {
          f["importance_sampled"][std::to_string(k)] = importance_sampled_on_set(*vae, x, k).to_json();
        }
        const auto per = importance_sampled_per_example(*vae, x, o.k_final);
        f["importance_sampled"][std::to_string(o.k_final)] = summarize(per).to_json();
        if (o.hmc_examples > 0) {
          double acceptance = 0;
          const auto xh = x.narrow(0, 0, std::min(o.hmc_examples, x.size(0)));
          auto h = hmc_on_set(*vae, xh, hmc, 100, &acceptance).to_json();
          h["acceptance"] = acceptance;
          h["importance_sampled_same_examples"] =
              summarize({per.log_px.narrow(0, 0, xh.size(0)), per.standard_error.narrow(0, 0, xh.size(0))})
                  .to_json();
          f["hmc"] = h;
        }
        final_json[split] = f;
      }
      const double final_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
      const auto& fj = final_json;
      std::cout << kProgram << ": N=" << n << " done: log p(x) (K = " << o.k_final << ") train "
                << format_fixed(fj["train"]["importance_sampled"][std::to_string(o.k_final)]["mean"].get<double>())
                << ", test "
                << format_fixed(fj["test"]["importance_sampled"][std::to_string(o.k_final)]["mean"].get<double>())
                << " nats (" << to_string(setup.protocol) << ", " << setup.dataset_name << ")\n";

      write_curve_csv(writer, "curves/n-" + std::to_string(n) + ".csv", result);
      std::vector<std::vector<double>> rows;
      for (const auto& p : result.curve) {
        rows.push_back({static_cast<double>(p.samples_seen), p.extra["train"]["mean"].get<double>(),
                        p.extra["train"]["standard_error_data"].get<double>(),
                        p.extra["test"]["mean"].get<double>(),
                        p.extra["test"]["standard_error_data"].get<double>()});
      }
      writer.write_csv("curves/n-" + std::to_string(n) + "-log-px.csv",
                       {"samples_seen", "train_log_px", "train_se", "test_log_px", "test_se"}, rows);
      models.push_back({{"n_train", n},
                        {"samples_seen", result.samples_seen},
                        {"final", final_json},
                        {"curve", curve_json(result)},
                        {"train_seconds", result.train_seconds},
                        {"eval_seconds", result.eval_seconds + final_seconds},
                        {"step", result.step}});
    }

    nlohmann::json metrics = {
        {"models", models},
        {"k_final", o.k_final},
        {"checks", compute_checks(models, o.k_final)},
        {"checks_budget",
         {{"provisional", o.samples_small < 6e7},
          {"note", o.samples_small < 6e7 ? "decided at a fraction of KW2013's budget, with one seed: provisional"
                                         : "decided at KW2013's budget, with one seed"}}},
        {"estimator_notes",
         {{"importance_sampled", "log (1/K) sum p(x,z_k)/q(z_k|x), z_k ~ q(z|x); a lower bound in expectation; "
                                 "standard_error_data: over examples; mean_mc_standard_error: Monte Carlo"},
          {"hmc", "KW2013 appendix D: HMC posterior samples, a Gaussian fitted to them, and the "
                  "harmonic-mean-type ratio on fresh samples; not a bound; reliable for Nz < 5"}}}};
    finish_chapter(writer, run, metrics, kProgram, t_start, &checkpoints);
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return run_program(kProgram, argc, argv, run);
}
