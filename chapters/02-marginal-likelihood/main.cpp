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

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>

#include "vaerepro/estimators.h"
#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/verdicts.h"

using namespace vaerepro;

namespace {

/// The overfitting verdicts, from the fresh curves and final estimates. Each
/// compares a difference with its standard error: every estimate is a mean
/// over a fixed set of points (the first 1000 of each set) and carries the
/// standard error of that mean (`standard_error_data`, about 1.5 nats on 1000
/// MNIST points); that of a sum or difference is root_sum_square (verdicts.h,
/// conservative). A difference "exceeds" another when it is larger by more
/// than two of those standard errors.
nlohmann::json compute_checks(const nlohmann::json& models, int64_t k_final) {
  nlohmann::json checks = nlohmann::json::array();
  std::map<int64_t, nlohmann::json> by_n;
  for (const auto& m : models) by_n[m["n_train"].get<int64_t>()] = m;
  if (by_n.size() < 2) return checks;
  const auto& [n_small, small] = *by_n.begin();
  const auto& [n_large, large] = *by_n.rbegin();
  const std::string ns = std::to_string(n_small), nl = std::to_string(n_large);
  auto final_iw = [&](const nlohmann::json& m, const char* split) {
    return estimate_from_json(m["final"][split]["importance_sampled"][std::to_string(k_final)]);
  };
  // How much the train-minus-test gap grew from the a-th to the b-th estimate along training.
  auto growth = [](const nlohmann::json& m, size_t a, size_t b) {
    auto at = [&](size_t i, const char* split) {
      return estimate_from_json(m["curve"][i]["extra"][split]);
    };
    return -difference_of_gaps(at(a, "train"), at(a, "test"), at(b, "train"), at(b, "test"));
  };
  const Estimate st = final_iw(small, "train"), se_ = final_iw(small, "test");
  const Estimate lt = final_iw(large, "train"), le = final_iw(large, "test");
  const double gap_small = st.mean - se_.mean, gap_large = lt.mean - le.mean;
  const Estimate gap_diff = difference_of_gaps(st, se_, lt, le);
  const size_t last_small = small["curve"].size() - 1, last_large = large["curve"].size() - 1;
  const Estimate growth_small = growth(small, 0, last_small);
  const Estimate growth_large = growth(large, last_large / 2, last_large);
  checks.push_back(schema::Check{
      "with N = " + ns + " the model overfits",
      "its final train-minus-test gap (K = " + std::to_string(k_final) +
          ") exceeds that of N = " + nl +
          " by more than two standard errors of the difference, and its gap grew along training by "
          "more than two standard errors of the growth (standard errors of the means over the "
          "scored points)",
      exceeds_two_se(gap_diff) && exceeds_two_se(growth_small),
      "gap " + format_fixed(gap_small) + " nats against " + format_fixed(gap_large) +
          " (difference " + plus_minus(gap_diff) + "); grew by " + plus_minus(growth_small) +
          " nats",
      gap_diff.se});
  checks.push_back(schema::Check{
      "with N = " + nl + " it does not",
      "over the second half of its estimates along training, the train-minus-test gap grows by "
      "less than two standard errors of that growth (the test estimate keeps up with the train "
      "estimate within the estimator's noise)",
      growth_large.mean < 2 * growth_large.se,
      "the gap changed by " + plus_minus(growth_large) + " nats", growth_large.se});
  const Estimate better = difference(le, se_);
  checks.push_back(
      schema::Check{"the larger training set generalises better",
                    "final test estimate with N = " + nl + " above that with N = " + ns +
                        " by more than two standard errors of the difference",
                    exceeds_two_se(better),
                    format_fixed(se_.mean) + " (N = " + ns + ") -> " + format_fixed(le.mean) +
                        " (N = " + nl + "): " + plus_minus(better) + " nats",
                    better.se});
  return checks;
}

class MarginalLikelihood : public Chapter {
 public:
  ChapterInfo info() const override {
    return {"chapter-02", "02-marginal-likelihood",
            "Marginal likelihood, small and large training sets (Kingma & Welling 2013, Fig. 3)",
            "mnist", Protocol::kBinarized};
  }

  void declare(OptionTable& o) override {
    // KW2013 section 5 (seed 000's code: Adagrad 3e-3 for N = 1000)
    add_training_options(o, training_, false);
    o.add("n-train", n_train_, {"200,1000", "1000,50000", "1000,50000"},
          "training-set sizes (the first N points; KW2013 Fig. 3)");
    o.add("hidden", hidden_, int64_t{100}, "hidden units (KW2013 Fig. 3)").range(1, 100000).key("");
    o.add("nz", nz_, int64_t{3}, "latent size (KW2013 Fig. 3; the HMC estimator needs < 5)")
        .range(1, 4096)
        .key("");
    add_weight_decay_option(o, weight_decay_).key("");
    // quick: 8000 epochs of 1000 points (long enough to overfit), 120 epochs of 50000;
    // full: KW2013's budget (about 6e7 samples).
    o.add("samples-small", samples_small_, {2e3, 8e6, 6e7}, "training samples for the smaller set")
        .range(1, 1e12)
        .key("");
    o.add("samples-large", samples_large_, {2e3, 6e6, 6.7e7}, "training samples for the larger set")
        .range(1, 1e12)
        .key("");
    o.add("eval-points", eval_points_, {2, 8, 20}, "estimates along training").range(1, 10000);
    o.add("eval-examples", eval_examples_, {100, 1000, 1000},
          "estimate on the first N points of each set (as KW)")
        .range(1, 1e7);
    o.add("k-curve", k_curve_, {10, 200, 5000}, "importance samples along training").range(1, 1e6);
    o.add("k-final", k_final_, {50, 5000, 5000}, "importance samples for the final models (IWAE)")
        .range(1, 1e6);
    o.add("hmc-examples", hmc_examples_, {10, 100, 1000},
          "examples per set for the HMC estimator (0 = off)")
        .range(0, 1e6);
    o.add("hmc-burn-in", hmc_.burn_in, {20, 200, 300}, "HMC transitions before sampling")
        .range(0, 1e6)
        .key("");
    o.add("hmc-samples", hmc_.samples, {20, 200, 400},
          "HMC samples L, for the fit and for the estimate")
        .range(2, 1e6)
        .key("");
    o.add("hmc-thin", hmc_.thin, {1, 1, 2}, "keep every n-th HMC transition")
        .range(1, 1000)
        .key("");
    o.add("hmc-leapfrog", hmc_.leapfrog_steps, int64_t{10}, "leapfrog steps per HMC transition")
        .range(1, 1000)
        .key("");
  }

  void validate() override {
    n_list_ = parse_positive_list(n_train_, "n-train");
    if (hmc_examples_ > 0 && nz_ >= 5) {
      std::cerr << "chapter-02: warning: KW2013 found the HMC estimator unreliable for Nz >= 5\n";
    }
  }

  nlohmann::json run(ChapterRun& run) override {
    const int64_t available = run.setup().dataset.train.size();
    for (auto n : n_list_) {
      if (n > available) {
        throw UsageError("--n-train " + std::to_string(n) + " exceeds the " +
                         std::to_string(available) + " training examples of " + run.dataset_name());
      }
    }
    const Architecture arch{{hidden_}, nz_};
    namespace cfg = schema::config_key;
    auto& config = run.config();
    config["n_train"] = n_list_;
    config[cfg::kArchitecture] = arch.to_string();
    config["likelihood"] = "bernoulli";
    config[cfg::kOptimizer] = {
        {cfg::kOptimizerName, training_.optimizer},
        {cfg::kLr, training_.lr},
        {cfg::kWeightDecay, weight_decay_ < 0 ? "1/N" : std::to_string(weight_decay_)}};
    config["samples"] = {{"small", samples_small_}, {"large", samples_large_}};
    config["hmc"] = hmc_.to_json();
    config[cfg::kInit] = "N(0, 0.01^2) for every parameter (KW2013 section 5)";
    auto count = [](double samples) { return std::to_string(static_cast<int64_t>(samples)); };
    run.begin(
        nlohmann::json::object(),
        run.budget(samples_small_, 6e7, "training samples on the smaller training set",
                   "KW2013 Fig. 3: about 6e7 samples (6.7e7 on the larger set)",
                   "N = smaller set: " + count(samples_small_) +
                       " training samples, larger set: " + count(samples_large_) +
                       " (KW2013 Fig. 3: about 6e7); curve estimates with K = " +
                       std::to_string(k_curve_) + ", final with K = " + std::to_string(k_final_)));

    nlohmann::json models = nlohmann::json::array();
    const int64_t largest = *std::max_element(n_list_.begin(), n_list_.end());
    for (int64_t n : n_list_) {
      const std::string name = "n-" + std::to_string(n);
      const TensorData data = run.tensors(n, 0);
      // The first points of each set, as KW.
      const auto x_train = first_rows(data.train_eval, eval_examples_);
      const auto x_test = first_rows(data.test, eval_examples_);
      const double samples = n == largest && n_list_.size() > 1 ? samples_large_ : samples_small_;
      TrainOptions train =
          training_schedule(std::llround(samples), training_.batch_size, eval_points_);
      train.label = run.info().program + " N=" + std::to_string(n);
      // [curve-estimates]
      train.evaluate_extra = [&](VaeImpl& model) -> nlohmann::json {
        return {
            {"k", k_curve_},
            {schema::key::kTrain, importance_sampled_on_set(model, x_train, k_curve_).to_json()},
            {schema::key::kTest, importance_sampled_on_set(model, x_test, k_curve_).to_json()}};
      };
      // [curve-estimates]
      const OptimizerOptions optimizer{training_.optimizer, training_.lr,
                                       weight_decay_for(weight_decay_, n)};
      const auto model =
          VaeOptions(data.dim(), arch).activation(parse_activation(training_.activation));
      auto [vae, result] = run.train_vae(name, model, optimizer, data, train);
      // Before the long final estimates (the model's checkpoint is complete).
      throw_if_stopped(train.label);

      // The final model: ELBO, the importance-sampled bound at K = 1, 50 and
      // k_final (the gap shows how loose the ELBO is), and the HMC estimator.
      // They check the stop flag as they go; a resumed run estimates again
      // from the start (an estimate keeps no partial state).
      const std::string hmc_note =
          hmc_examples_ > 0 ? ", HMC on " + std::to_string(hmc_examples_) + " per set" : "";
      std::cout << train.label << ": final estimates (K = " << k_final_ << " on " << x_train.size(0)
                << " + " << x_test.size(0) << " examples" << hmc_note << ")\n"
                << std::flush;
      const auto e0 = std::chrono::steady_clock::now();
      const nlohmann::json final_json = {
          {schema::key::kTrain, score_on_set(*vae, x_train, k_final_, hmc_examples_, hmc_)},
          {schema::key::kTest, score_on_set(*vae, x_test, k_final_, hmc_examples_, hmc_)}};
      const double final_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
      const std::string k = std::to_string(k_final_);
      auto final_mean = [&](const char* split) {
        return format_fixed(final_json[split]["importance_sampled"][k]["mean"].get<double>());
      };
      std::cout << run.prefix() << "N=" << n << " done: log p(x) (K = " << k << ") train "
                << final_mean("train") << ", test " << final_mean("test") << " nats ("
                << to_string(run.protocol()) << ", " << run.dataset_name() << ")\n";

      write_curve_csv(run.writer(), "curves/" + name + ".csv", result);
      write_curve_estimates_csv(run.writer(), "curves/" + name + "-log-px.csv", result, "log_px");
      nlohmann::json record = training_record(result);
      record[schema::ch02::kNTrain] = n;
      record[schema::key::kFinal] = final_json;
      record["eval_seconds"] = result.eval_seconds + final_seconds;
      models.push_back(record);
    }
    return {{schema::ch02::kModels, models},
            {schema::ch02::kKFinal, k_final_},
            {schema::key::kChecks, compute_checks(models, k_final_)},
            {"estimator_notes", score_on_set_notes()}};
  }

 private:
  TrainingFlags training_{"tanh", "adagrad", 0.02};
  std::string n_train_;
  int64_t hidden_ = 100, nz_ = 3, eval_points_ = 0, eval_examples_ = 1000, k_curve_ = 0,
          k_final_ = 0, hmc_examples_ = 0;
  double weight_decay_ = -1, samples_small_ = 0, samples_large_ = 0;
  HmcOptions hmc_;
  std::vector<int64_t> n_list_;
};

}  // namespace

int main(int argc, char** argv) {
  return chapter_main<MarginalLikelihood>(argc, argv);
}
