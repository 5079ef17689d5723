/// \page chapter01 Chapter 1: the ELBO against the latent size
///
/// **Claim** (Kingma & Welling 2013, Fig. 2; seed 000 sections 2.1, 2.3, 2.4):
/// an MLP VAE with 500 tanh hidden units and a Bernoulli decoder, trained by
/// Adagrad on minibatches of 100 with one latent sample per example, reaches a
/// better variational lower bound with more latent variables, and more latent
/// variables do not overfit: at 1e8 training samples KW2013 read (digitised)
/// train/test bounds of -130.3/-133.4 (Nz = 3), -116.5/-119.1 (5),
/// -100.7/-103.7 (10), -98.2/-100.2 (20), -98.4/-100.3 (200).
///
/// **What this program does**: for each Nz it trains one model, scores the
/// ELBO on the whole training and test sets at points log-spaced in training
/// samples seen, and writes the curves, the final bounds, reconstructions
/// (seed Fig. 4), samples (seed Fig. 5) and, for Nz = 2, the learned manifold
/// (a decoded grid over the prior's quantiles). Beside each final bound it
/// estimates the marginal log-likelihood log p(x) by importance sampling
/// (K = 5000 on the first test points, IWAE's estimator, Burda et al. 2015),
/// so the numbers can be set beside IWAE-style tables (whose architecture
/// differs: two hidden layers of 200 and Nz = 50). Frey Face (KW2013 Fig. 2,
/// right) runs when its data is present; otherwise the run records why not.
///
/// The training loop, from the library (src/vaerepro/trainer.cpp), is driven
/// here per latent size:
/// \snippet 01-elbo-vs-latent/main.cpp train-one
///
/// Results land in results/01-elbo-vs-latent/ (layout: chapters/README.md).

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

#include "vaerepro/datasets.h"
#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/image.h"
#include "vaerepro/pictures.h"

using namespace vaerepro;

namespace {

/// The verdicts this chapter can decide from its own numbers, criteria written
/// out. `gap` is the final train-minus-test ELBO per Nz.
nlohmann::json compute_checks(const std::map<int64_t, double>& test_bound,
                              const std::map<int64_t, double>& gap) {
  nlohmann::json checks = nlohmann::json::array();
  auto has = [&](int64_t k) { return test_bound.count(k) > 0; };
  auto fmt = [](double v) { return format_fixed(v, 1); };
  if (test_bound.size() >= 2 && has(3)) {
    bool worst = true;
    for (const auto& [k, v] : test_bound) {
      if (k != 3 && v <= test_bound.at(3)) worst = false;
    }
    checks.push_back(schema::Check{"Nz = 3 has the worst test bound",
                                   "the final test ELBO at Nz = 3 is below that of every other Nz",
                                   worst, "Nz = 3: " + fmt(test_bound.at(3))});
  }
  if (has(3) && has(20)) {
    checks.push_back(schema::Check{"the test bound improves from Nz = 3 to Nz = 20",
                                   "final test ELBO(Nz = 20) > final test ELBO(Nz = 3)",
                                   test_bound.at(20) > test_bound.at(3),
                                   fmt(test_bound.at(3)) + " -> " + fmt(test_bound.at(20))});
  }
  if (has(3) && has(10) && has(20) && has(200)) {
    const double hi = std::max({test_bound.at(10), test_bound.at(20), test_bound.at(200)});
    const double lo = std::min({test_bound.at(10), test_bound.at(20), test_bound.at(200)});
    const double spread_gap = hi - test_bound.at(3);
    checks.push_back(schema::Check{
        "Nz = 10, 20 and 200 end close together",
        "the spread of their final test ELBOs is less than a third of the gap between Nz = 3 and "
        "the best of them",
        (hi - lo) < spread_gap / 3.0,
        "spread " + fmt(hi - lo) + " nats, gap to Nz = 3 " + fmt(spread_gap) + " nats"});
  }
  if (gap.size() >= 2) {
    const auto smallest = gap.begin(), largest = std::prev(gap.end());
    checks.push_back(schema::Check{
        "more latent variables do not overfit",
        "the train-minus-test gap of the largest Nz exceeds that of the smallest by less than 2 "
        "nats",
        largest->second - smallest->second < 2.0,
        "gap " + fmt(smallest->second) + " nats at Nz = " + std::to_string(smallest->first) + ", " +
            fmt(largest->second) + " nats at Nz = " + std::to_string(largest->first)});
  }
  return checks;
}

class ElboVsLatent : public Chapter {
 public:
  ChapterInfo info() const override {
    // KW2013's numbers are for MNIST; the default protocol gives proper nats.
    return {"chapter-01", "01-elbo-vs-latent",
            "ELBO against latent size (Kingma & Welling 2013, Fig. 2)", "mnist",
            Protocol::kBinarized};
  }

  void declare(OptionTable& o) override {
    add_training_options(
        o, training_);  // tanh, Adagrad 0.02, M = 100: KW2013 section 5 (seed 000 used 0.02)
    o.add("nz", nz_, {"3,20", "3,5,10,20,200", "3,5,10,20,200"},
          "latent sizes to train (KW2013 Fig. 2)");
    o.add("manifold-nz", manifold_nz_, int64_t{2},
          "latent size of the 2-D manifold figure (KW2013 Fig. 4; 0 = none)")
        .range(0, 2)
        .check([this] {
          if (manifold_nz_ == 1)
            throw UsageError("--manifold-nz must be 2 (a 2-D grid) or 0 (none)");
        });
    o.add("hidden", hidden_, int64_t{500}, "hidden units of encoder and decoder (KW2013 section 5)")
        .range(1, 100000);
    o.add("weight-decay", weight_decay_, -1.0,
          "L2 weight decay; -1 = KW2013's N(0,I) weight prior, 1/N")
        .check([this] {
          if (weight_decay_ != -1) require_range("weight-decay", weight_decay_, 0, 1);
        })
        .key("");
    // quick: the chapter in about half an hour on 2 CPU cores; full: KW2013's budget.
    o.add("samples", samples_, {3e3, 1.5e6, 1e8}, "training samples per model")
        .range(1, 1e12)
        .key("");
    o.add("eval-points", eval_points_, {3, 8, 30}, "whole-set evaluations per model")
        .range(1, 10000);
    o.add(
         "k-marginal", k_marginal_, {50, 5000, 5000},
         "importance samples K of the final log p(x) estimate (IWAE, Burda et al. 2015, section 5)")
        .range(1, 1e6);
    o.add("marginal-points", marginal_points_, {100, 1000, 10000},
          "first test points scored by log p(x) (10000 = the whole test set, as IWAE's Table 1)")
        .range(0, 1e7);
  }

  void validate() override {
    nz_list_ = parse_positive_list(nz_, "nz");
    for (auto nz : nz_list_) require_range("nz", static_cast<double>(nz), 1, 4096);
  }

  nlohmann::json run(ChapterRun& run) override {
    const TensorData data = run.tensors(training_.max_train, training_.max_test);
    const double weight_decay = weight_decay_ < 0 ? 1.0 / data.train.size(0) : weight_decay_;
    const OptimizerOptions optimizer{training_.optimizer, training_.lr, weight_decay};
    const auto total = static_cast<int64_t>(std::llround(samples_));
    auto& config = run.config();
    config["nz"] = nz_list_;
    config["likelihood"] = "bernoulli";
    config[schema::config_key::kOptimizer] = optimizer.to_json();
    config[schema::config_key::kSamplesPerModel] = total;
    config["latent_samples_per_example"] = 1;
    config[schema::config_key::kInit] = "N(0, 0.01^2) for every parameter (KW2013 section 5)";
    run.begin(data.to_json(),
              run.budget(static_cast<double>(total), 1e8, "training samples per model",
                         "KW2013 Fig. 2: 1e8 samples per model",
                         "each model sees " + std::to_string(total) +
                             " training samples (KW2013 Fig. 2 runs to 1e8)"));

    std::vector<int64_t> to_train = nz_list_;
    if (manifold_nz_ > 0 &&
        std::find(to_train.begin(), to_train.end(), manifold_nz_) == to_train.end()) {
      to_train.push_back(manifold_nz_);
    }
    const TrainOptions train = training_schedule(total, training_.batch_size, eval_points_);
    nlohmann::json models = nlohmann::json::array(), images = nlohmann::json::object();
    std::map<int64_t, double> test_bound, gap;
    const int64_t n_show = std::min<int64_t>(10, data.test.size(0));
    const auto originals = data.test.narrow(0, 0, n_show);  // [10, D] as scored
    std::vector<torch::Tensor> recon_rows = {originals};
    std::string table;
    for (int64_t nz : to_train) {
      // [train-one]
      const std::string name = "nz-" + std::to_string(nz);
      const auto model = VaeOptions(data.dim(), Architecture{{hidden_}, nz})
                             .activation(parse_activation(training_.activation))
                             .likelihood(Likelihood::kBernoulli);
      auto [vae, result] = run.train_vae(name, model, optimizer, data, train);
      // [train-one]
      const auto& last = result.curve.back();
      std::cout << run.prefix() << "Nz=" << nz << " done: train ELBO " << last.train.elbo
                << ", test ELBO " << last.test.elbo << " nats (" << to_string(run.protocol())
                << ", " << run.dataset_name() << "), " << result.train_seconds << " s training + "
                << result.eval_seconds << " s evaluation\n";
      // [marginal] log p(x) by importance sampling on the first test points, beside the bound
      // there.
      const auto marginal =
          marginal_on_first_points(*vae, data.test, k_marginal_, marginal_points_);
      // [marginal]
      if (!marginal.is_null()) {
        std::cout << run.prefix() << "Nz=" << nz << " log p(x) (K = " << k_marginal_ << ", "
                  << marginal["points"].get<std::string>() << ") "
                  << format_fixed(marginal["log_px"]["mean"].get<double>())
                  << " nats (ELBO on the same points "
                  << format_fixed(marginal["elbo_same_points"]["mean"].get<double>()) << "), "
                  << format_fixed(marginal["wall_seconds"].get<double>(), 1) << " s\n";
      }
      write_curve_csv(run.writer(), "curves/" + name + ".csv", result);
      const bool in_sweep = std::find(nz_list_.begin(), nz_list_.end(), nz) != nz_list_.end();
      if (in_sweep) {
        test_bound[nz] = last.test.elbo;
        gap[nz] = last.train.elbo - last.test.elbo;
      }
      namespace k = schema::key;
      namespace c1 = schema::ch01;
      models.push_back(
          {{c1::kNz, nz},
           {k::kArchitecture, Architecture{{hidden_}, nz}.to_string()},
           {c1::kRole, in_sweep ? c1::kRoleSweep : "manifold"},
           {"parameters", vae->parameter_count()},
           {k::kSamplesSeen, result.samples_seen},
           {k::kFinal, {{k::kTrain, last.train.to_json()}, {k::kTest, last.test.to_json()}}},
           {k::kCurve, curve_json(result)},
           {"curve_csv", "curves/" + name + ".csv"},
           {k::kTrainSeconds, result.train_seconds},
           {"eval_seconds", result.eval_seconds},
           {c1::kMarginal, marginal},
           {"step", result.step}});
      // Pictures: reconstructions (seed Fig. 4), samples (seed Fig. 5), the 2-D manifold (KW2013
      // Fig. 4).
      recon_rows.push_back(reconstruct(*vae, originals));
      write_image_grid(run.writer().path("images/samples-" + name + ".png"),
                       sample_images(*vae, 100, originals.options()), 10, data.height, data.width);
      images[schema::ch01::image_samples(nz)] = "images/samples-" + name + ".png";
      if (nz == 2 && manifold_nz_ == 2) {
        write_image_grid(run.writer().path("images/manifold-nz-2.png"),
                         manifold_grid(*vae, 20, originals.options()), 20, data.height, data.width);
        images[schema::ch01::kImageManifold] = "images/manifold-nz-2.png";
      }
      char line[128];
      std::snprintf(line, sizeof(line), "%5lld %12.2f %12.2f\n", static_cast<long long>(nz),
                    last.train.elbo, last.test.elbo);
      table += line;
    }
    write_image_grid(run.writer().path("images/reconstructions.png"), torch::cat(recon_rows, 0),
                     n_show, data.height, data.width);
    images[schema::ch01::kImageReconstructions] = "images/reconstructions.png";
    std::cout << "\n"
              << run.prefix() << "final bounds, nats per example (" << run.dataset_name() << ", "
              << to_string(run.protocol()) << ", " << total
              << " samples per model)\n   Nz   train ELBO    test ELBO\n"
              << table;

    const nlohmann::json frey = frey_face_status(run.common().data_dir);
    namespace c1 = schema::ch01;
    run.record()[c1::kFreyFace] = frey;
    return {{c1::kModels, models},
            {schema::key::kChecks, compute_checks(test_bound, gap)},
            {c1::kReconstructionRows,
             "original test images, then Nz = " + nlohmann::json(to_train).dump()},
            {schema::key::kImages, images},
            {c1::kFreyFace, frey}};
  }

 private:
  TrainingFlags training_{"tanh", "adagrad", 0.02};
  std::string nz_;
  int64_t manifold_nz_ = 2, hidden_ = 500, eval_points_ = 0, k_marginal_ = 0, marginal_points_ = 0;
  double weight_decay_ = -1, samples_ = 0;
  std::vector<int64_t> nz_list_;
};

}  // namespace

int main(int argc, char** argv) {
  return chapter_main<ElboVsLatent>(argc, argv);
}
