/// \page chapter05 Chapter 5: VQ-VAE with a gated PixelCNN prior, end to end
///
/// **Claim** (seed 000 sections 3.3 and 4.1-4.2, Table 1, Figs. 11-12 and 16;
/// van den Oord, Vinyals & Kavukcuoglu 2017, arXiv:1711.00937): a VQ-VAE
/// encodes an image into a 7x7 grid of discrete codes and reconstructs it
/// sharply (seed Table 1: MSE 5.9e-5, against 2.7e-4 to 3.4e-4 for its MLP
/// VAEs; cross-entropy 169.8, worse than the VAEs' 110.6-125.8 because the
/// output has no sigmoid); its codebook and reconstruction terms fall
/// together after the codebook term rises briefly (Fig. 16); and a gated
/// PixelCNN trained afterwards on the codes generates new images (Fig. 12),
/// which uniformly random code maps cannot.
///
/// **Two settings**: the seed's K = 10 codes of dimension D = 2, and a
/// paper-like K = 512 (D = 64). **Two arms** of each: "as written" (vdO2017:
/// codebook U(-1/K, 1/K), learnt by the gradient of the codebook term, no
/// restarts), whose large codebook collapses onto a few codes (Lancucki et
/// al. 2020, arXiv:2005.08520), and "with the usual fixes" (codebook from
/// encoder outputs of the first batch as openai/jukebox, EMA updates as
/// vdO2017 appendix A.1 and Sonnet's VectorQuantizerEMA, dead codes restarted
/// on batch vectors as Jukebox; src/vaerepro/quantizer.h). Each model is
/// trained (both arms of a setting from the same weights and batches):
/// \snippet 05-vqvae-pixelcnn/main.cpp train-one
/// its codes are extracted; a prior is trained on the fixed arm's codes (and
/// the faithful arm's where `--prior-arms` says so) and sampled:
/// \snippet 05-vqvae-pixelcnn/main.cpp stages
///
/// **The bound** log p(x) >= log p(x | z_q) + log p(z_q) (vdO2017 section
/// 3.2: q(z | x) is one-hot, so its entropy is zero) is computed with its
/// caveats: the prior is fitted after the decoder, the MSE decoder is a
/// Gaussian density on gray levels (not a probability), and only under
/// `--reconstruction bernoulli --protocol binarized` is it a bound in nats
/// comparable with chapters 1-2:
/// \snippet 05-vqvae-pixelcnn/main.cpp bound
///
/// The measures, the bound's record and the files of each model are library
/// code with unit tests (src/vaerepro/vq_metrics.h, vq_record.h; the settings
/// and arms: vq_settings.h). Results land in results/05-vqvae-pixelcnn/
/// (layout: chapters/README.md).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/vq_record.h"

using namespace vaerepro;

namespace {

using nlohmann::json;

/// The verdicts of one model `r`: its prior against uniform code maps, its
/// samples against decoded uniform maps (with a judge), seed Fig. 16's trend.
void model_checks(const json& r, const std::vector<VqCurvePoint>& curve, int64_t classes,
                  json& checks) {
  const std::string k = "K = " + r["codes"].dump() + ", " + r["arm_title"].get<std::string>();
  if (r.contains("prior")) {
    const auto &test = r["prior"]["final"]["test"], &uni = r["prior"]["uniform"];
    const double nats = test["nats_per_map"].get<double>(),
                 uni_nats = uni["nats_per_map"].get<double>();
    checks.push_back(schema::Check{
        "the PixelCNN prior models the codes (" + k + ")",
        "the prior's test NLL is below the uniform distribution's 49 ln K nats per map",
        nats < uni_nats,
        format_fixed(nats) + " against " + format_fixed(uni_nats) + " nats per map (" +
            format_fixed(test["bits_per_dim"].get<double>(), 3) + " against " +
            format_fixed(uni["bits_per_dim"].get<double>(), 3) + " bits per dimension)"});
  }
  if (r.contains("judge") && r["judge"].contains("prior_samples")) {
    const auto& j = r["judge"];
    const double sp = j["prior_samples"]["classifier_score"].get<double>();
    const double su = j["uniform_samples"]["classifier_score"].get<double>();
    checks.push_back(schema::Check{
        "prior samples look more like data than uniform code maps (" + k + ")",
        "the judge's classifier score exp(H[p(y)] - E H[p(y|x)]) of decoded prior samples exceeds "
        "that of "
        "as many decoded uniform code maps",
        sp > su,
        format_fixed(sp, 2) + " against " + format_fixed(su, 2) + " (real test images " +
            format_fixed(j["test_images"]["classifier_score"].get<double>(), 2) + ", at most " +
            std::to_string(classes) + "); mean confidence " +
            format_fixed(100 * j["prior_samples"]["mean_confidence"].get<double>()) + "% against " +
            format_fixed(100 * j["uniform_samples"]["mean_confidence"].get<double>()) + "%"});
  }
  if (curve.size() < 2) return;
  // Seed Fig. 16: both terms end lower than where they peaked; did the codebook term rise first?
  const VqTermTrend t = vq_term_trend(curve);
  checks.push_back(schema::Check{
      "reconstruction and codebook terms both fall by the end of training (" + k +
          ", seed Fig. 16)",
      "the last training-curve point's reconstruction term is below the first point's, and its "
      "codebook "
      "term below the curve's peak",
      t.falls(),
      "reconstruction " + format_sci(t.first_reconstruction) + " -> " +
          format_sci(t.last_reconstruction) + "; codebook term peaked at " +
          format_sci(t.peak_codebook) + " (point " + std::to_string(t.peak_at + 1) + " of " +
          std::to_string(t.points) + (t.peak_at > 0 ? ", after rising first" : ", at the start") +
          ") and ends at " + format_sci(t.last_codebook)});
}

/// The verdicts across models (`results`: settings x arms, arms fastest):
/// per arm, the last setting's larger codebook against the first's; the
/// fixed arm's use of its large codebook.
void arm_checks(const json& results, size_t n_settings, const std::vector<VqArm>& arms,
                json& checks) {
  if (n_settings < 2) return;
  auto last_of = [&](size_t a) -> const json& {
    return results[(n_settings - 1) * arms.size() + a];
  };
  for (size_t a = 0; a < arms.size(); ++a) {
    const json &small = results[a], &large = last_of(a);
    if (large["codes"].get<int64_t>() <= small["codes"].get<int64_t>()) continue;
    const double mse_small = small["vqvae"]["final"]["test"]["mse_per_pixel"].get<double>();
    const double mse_large = large["vqvae"]["final"]["test"]["mse_per_pixel"].get<double>();
    checks.push_back(schema::Check{
        "a larger codebook reconstructs better (" + arms[a].title + ")",
        "test MSE per pixel of the K = " + large["codes"].dump() + " model below the K = " +
            small["codes"].dump() + " model's, both trained " + arms[a].title,
        mse_large < mse_small,
        format_sci(mse_small) + " (K = " + small["codes"].dump() + ", " +
            small["usage"]["test"]["used"].dump() + " codes used) against " +
            format_sci(mse_large) + " (K = " + large["codes"].dump() + ", " +
            large["usage"]["test"]["used"].dump() + " codes used)"});
    if (arms[a].name != "fixed") continue;
    const int64_t k = large["codes"].get<int64_t>(),
                  used = large["usage"]["test"]["used"].get<int64_t>();
    std::string as_written = "not run";
    for (size_t f = 0; f < arms.size(); ++f) {
      if (arms[f].name == "faithful") {
        as_written =
            last_of(f)["usage"]["test"]["used"].dump() + " of " + last_of(f)["codes"].dump();
      }
    }
    checks.push_back(schema::Check{
        "the live arm uses at least half of its K = " + std::to_string(k) +
            " codes on the test set",
        "codes used at least once over every position of every test code map >= K / 2",
        2 * used >= k,
        std::to_string(used) + " of " + std::to_string(k) + " codes (perplexity " +
            format_fixed(large["usage"]["test"]["perplexity"].get<double>()) +
            "); as written: " + as_written});
  }
}

class VqVaePixelCnn : public Chapter {
 public:
  ChapterInfo info() const override {
    // Seed 000's protocol (gray levels; its Table 1 scores gray-level reconstructions).
    return {"chapter-05", "05-vqvae-pixelcnn",
            "VQ-VAE with a gated PixelCNN prior (seed 000 sections 3.3, 4.1-4.2; vdO2017)", "mnist",
            Protocol::kGrayBce};
  }

  void declare(OptionTable& t) override {
    t.add("settings", settings_text_, std::string("seed,paper"),
          "which VQ-VAEs: seed (K = 10, D = 2), paper (K = 512, D = 64), or both (seed,paper)");
    t.add("seed-codes", seed_.codes, int64_t{10}, "K of the seed setting (seed 000's code)")
        .range(2, 65536);
    t.add("seed-dim", seed_.dim, int64_t{2},
          "D of the seed setting (seed 000's code: a 7x7 grid of 2-D codes)")
        .range(1, 4096);
    // Seed 000's code: Adam 1e-2. At the quick budget it collapses this
    // encoder to one constant output within ~30 steps in both arms (measured
    // on MNIST, seed 1: every test vector on one code, test MSE at the mean
    // image's 6.5e-2); 1e-3 uses all ten codes.
    t.add("seed-lr", seed_.lr, {1e-2, 1e-3, 1e-2}, "Adam learning rate of the seed setting")
        .range(1e-8, 1);
    t.add("paper-codes", paper_.codes, int64_t{512}, "K of the paper setting (vdO2017 section 4.1)")
        .range(2, 65536);
    // Not stated for CIFAR-10 in vdO2017; DeepMind's Sonnet VQ-VAE example uses 64.
    t.add("paper-dim", paper_.dim, int64_t{64}, "D of the paper setting").range(1, 4096);
    // vdO2017 section 4.1: Adam 2e-4; quick: 5x, so that 400 steps get somewhere.
    t.add("paper-lr", paper_.lr, {2e-4, 1e-3, 2e-4}, "Adam learning rate of the paper setting")
        .range(1e-8, 1);
    t.add("beta", beta_, 0.25, "commitment weight (vdO2017 section 4.1)").range(0, 100);
    t.add("reconstruction", reconstruction_text_, std::string("mse"),
          "mse (seed 000 section 4: no sigmoid) | bernoulli")
        .one_of({"mse", "bernoulli"});
    t.add("channels", channels_, {8, 32, 128},
          "feature channels of encoder and decoder (vdO2017: 256)")
        .range(1, 4096);
    t.add("epochs", epochs_, {1, 2, 20}, "VQ-VAE training epochs (seed 000's code: 20)")
        .range(1, 100000);
    t.add("batch-size", batch_size_, int64_t{100}, "minibatch size of both stages").range(1, 1e6);
    t.add("max-train", max_train_, {600, 20000, 0},
          "use only the first N training examples (0 = all)")
        .range(0, 1e9);
    t.add("max-test", max_test_, {200, 0, 0}, "use only the first N test examples (0 = all)")
        .range(0, 1e9);
    t.add("curve-points", curve_points_, {3, 12, 40}, "evaluations along the VQ-VAE's training")
        .range(1, 10000);
    t.add("prior-channels", prior_channels_, {8, 32, 64}, "channels of the PixelCNN")
        .range(1, 4096);
    t.add("prior-blocks", prior_blocks_, {2, 5, 15},
          "gated blocks after the first layer (seed 000's code: 15)")
        .range(0, 100);
    t.add("prior-epochs", prior_epochs_, {1, 3, 20}, "PixelCNN training epochs").range(1, 100000);
    t.add("prior-lr", prior_lr_, 1e-3, "Adam learning rate of the PixelCNN").range(1e-8, 1);
    t.add("samples", samples_, {20, 100, 100},
          "prior samples drawn, and uniform code maps decoded beside them")
        .range(1, 100000);
    t.add("classifier-epochs", classifier_epochs_, {1, 2, 5},
          "epochs of the classifier that judges samples (0 = no judge)")
        .range(0, 1000);
    t.add("arms", arms_text_, std::string("faithful,fixed"),
          "codebook recipes: faithful (vdO2017 as written: uniform init, gradient, no restarts), "
          "fixed (data init, EMA, restarts), or both");
    // The priors are the slow stage on a CPU: quick trains only the fixed arm's.
    t.add("prior-arms", prior_arms_text_, {"faithful,fixed", "fixed", "faithful,fixed"},
          "arms whose codes get a prior");
    t.add("fixed-init", fixed_init_, std::string("data"),
          "initialisation of the fixed arm: data (Jukebox's init_k) | kmeans (lucidrains) | "
          "uniform")
        .one_of({"data", "kmeans", "uniform"});
    t.add("ema-decay", fixed_.decay, 0.99,
          "EMA decay of the fixed arm's codebook (vdO2017 appendix A.1)");
    t.add("ema-epsilon", fixed_.epsilon, 1e-5,
          "Laplace smoothing of the fixed arm's EMA counts (Sonnet)");
    t.add("restart-threshold", fixed_.restart_threshold, 1.0,
          "the fixed arm restarts a code whose moving-average use per step is below this "
          "(Jukebox; 0 = off)");
  }

  void validate() override {
    settings_ = select_by_name(settings_text_, "settings", std::vector<VqSetting>{seed_, paper_});
    arms_ = parse_vq_arms(arms_text_, prior_arms_text_, fixed_init_, fixed_);
    reconstruction_ = parse_reconstruction(reconstruction_text_);
  }

  json run(ChapterRun& run) override {
    const TensorData data = run.tensors(max_train_, max_test_);
    if (data.height != 28 || data.width != 28) {
      throw std::runtime_error("the VQ-VAE's encoder expects 28x28 images; " + run.dataset_name() +
                               " has " + std::to_string(data.height) + "x" +
                               std::to_string(data.width));
    }
    record_config(run.config());
    const std::string n_train = std::to_string(data.train.size(0));
    run.begin(data.to_json(),
              run.budget(static_cast<double>(std::min(epochs_, prior_epochs_)), 20,
                         "epochs (the fewer of the VQ-VAE's and the prior's)",
                         "seed 000's code: 20 epochs of 60,000 images for each",
                         std::to_string(epochs_) + " VQ-VAE epochs and " +
                             std::to_string(prior_epochs_) + " prior epochs of " + n_train +
                             " training images (seed 000's code: 20 epochs of 60,000)"));
    run_ = &run;
    data_ = &data;

    // The judge of samples (optional): how confidently a classifier sees a digit in an image.
    double classifier_accuracy = std::nan("");
    Classifier classifier{nullptr};
    if (classifier_epochs_ > 0) {
      Judge judge = run.train_judge(data, classifier_epochs_, "judge");
      classifier = judge.classifier;
      classifier_accuracy = judge.accuracy;
      std::cout << run.prefix() << "judge classifier test accuracy "
                << format_fixed(100 * classifier_accuracy) << "%\n";
    }
    judge_ = classifier.is_empty() ? nullptr : classifier.get();
    json results = json::array(), checks = json::array();
    for (const auto& s : settings_) {
      for (const auto& a : arms_) results.push_back(run_model(s, a, checks));
    }
    arm_checks(results, settings_.size(), arms_, checks);
    return {{"settings", results},
            {"classifier_accuracy", judge_ != nullptr ? json(classifier_accuracy) : json()},
            {"table1_note",
             "seed 000 Table 1 scores 100 test images: MSE of gray levels (its normalisation is "
             "not stated) and binary cross-entropy of the output clipped to [0, 1], summed over "
             "pixels"},
            {"checks", checks}};
  }

 private:
  /// Stages 1-2 (and 3-4 for an arm with a prior) for one setting and arm:
  /// the model's entry of metrics.json; its verdicts go to `checks`.
  json run_model(const VqSetting& s, const VqArm& arm, json& checks) {
    const TensorData& data = *data_;
    const std::string name = s.name + "-" + arm.name;
    const std::string label = "chapter-05 " + name + " (K = " + std::to_string(s.codes) +
                              ", D = " + std::to_string(s.dim) + ")";
    // [train-one]
    // 1. The VQ-VAE. Both arms of a setting start from the same weights and see
    //    the same batches: they differ only in how the codebook learns.
    torch::manual_seed(static_cast<uint64_t>(run_->seed_for("vqvae-" + s.name)));
    VqVae model(VqVaeOptions(s.codes, s.dim)
                    .channels(channels_)
                    .beta(beta_)
                    .reconstruction(reconstruction_)
                    .codebook(arm.codebook));
    model->to(run_->device());
    VqTrainOptions t;
    t.epochs = epochs_;
    t.batch_size = batch_size_;
    t.lr = s.lr;
    t.curve_points = curve_points_;
    t.curve_test_examples = 1000;
    t.label = label;
    t.checkpoint = run_->checkpoint("vqvae-" + name);
    const auto trained = train_vqvae(
        *model, data.train.size(0), [&](const torch::Tensor& idx) { return data.train_batch(idx); },
        data.test, t);
    // [train-one]
    throw_if_stopped(label);
    model->eval();
    // 2. The codes of every training and test image, whole-set metrics and
    //    seed Table 1 (the first 100 test images against their gray levels).
    const VqMeasured m = measure_vqvae(*model, data, 100);
    json r = record_vqvae(writer(), name, s, arm, *model, trained, m);
    if (judge_ != nullptr) {
      r["judge"]["test_images"] = judge_images(*judge_, data.test_gray).to_json();
      r["judge"]["reconstructions"] = judge_images(*judge_, m.recon_fixed).to_json();
    }
    std::cout << label << ": test MSE/pixel " << format_sci(m.test.mse_per_pixel) << ", codes used "
              << m.usage_test.used << "/" << s.codes << " (perplexity "
              << format_fixed(m.usage_test.perplexity) << "), " << model->quantizer->restarts()
              << " restarts, " << format_fixed(trained.train_seconds) << " s\n";
    if (arm.prior) {
      const VqPriorOutcome p = prior_stage(*model, name, label, m, r);
      record_codebook(writer(), name, m, &p.usage, r);
    } else {
      record_codebook(writer(), name, m, nullptr, r);
    }
    model_checks(r, trained.curve, data.num_classes, checks);
    return r;
  }

  /// Stages 3-4 for one model: the prior on the training codes, its samples
  /// beside uniform code maps, the bound; recorded in `r` with the judge of
  /// the samples.
  VqPriorOutcome prior_stage(VqVaeImpl& model, const std::string& name, const std::string& label,
                             const VqMeasured& m, json& r) {
    const int64_t k = model.options.codes();
    VqPriorOutcome p;
    // [stages]
    // 3. The prior, trained afterwards on the training codes.
    torch::manual_seed(static_cast<uint64_t>(run_->seed_for("prior-" + name)));
    GatedPixelCnn prior(GatedPixelCnnOptions(k).channels(prior_channels_).blocks(prior_blocks_));
    prior->to(run_->device());
    PriorTrainOptions pt;
    pt.epochs = prior_epochs_;
    pt.batch_size = batch_size_;
    pt.lr = prior_lr_;
    pt.label = label + " prior";
    pt.checkpoint = run_->checkpoint("prior-" + name);
    p.curve = train_prior(*prior, m.train_codes, m.test_codes, pt).curve;
    throw_if_stopped(pt.label);
    // 4. New images: prior samples (49 sequential steps over the whole batch)
    //    beside uniformly random code maps, both decoded.
    const auto t_sample = std::chrono::steady_clock::now();
    const auto prior_maps = prior->sample(samples_, run_->device());  // [S, 7, 7]
    p.sample_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_sample).count();
    const auto uniform_maps = torch::randint(k, prior_maps.sizes(), prior_maps.options());
    // [stages]
    p.prior_images = vq_decode(model, prior_maps);      // [S, 784]
    p.uniform_images = vq_decode(model, uniform_maps);  // [S, 784]

    // [bound]
    // log p(x) >= E_q[log p(x|z) + log p(z) - log q(z|x)] = log p(x|z_q) + log p(z_q),
    // since q(z|x) puts all its mass on z_q (vdO2017 section 3.2). For the MSE decoder
    // p(x|z_q) = N(x; dec(z_q), sigma2 I) with sigma2 fitted on the training set.
    if (reconstruction_ == Reconstruction::kMse) {
      p.sigma2 = fitted_variance(model, data_->train_eval);
    }
    p.test = evaluate_prior(*prior, m.test_codes);
    p.bound = vq_bound(mean_log_likelihood(model, data_->test, p.sigma2), p.test.nats_per_map,
                       m.test_codes.size(1) * m.test_codes.size(2), k);
    // [bound]
    p.uniform_maps =
        evaluate_prior(*prior, torch::randint(k, m.test_codes.sizes(), m.test_codes.options()));
    p.usage = codebook_usage(prior_maps, k);
    p.parameters = prior->parameter_count();
    record_prior(writer(), name, p, reconstruction_, run_->protocol(), r);
    if (judge_ != nullptr) {
      r["judge"]["prior_samples"] = judge_images(*judge_, p.prior_images).to_json();
      r["judge"]["uniform_samples"] = judge_images(*judge_, p.uniform_images).to_json();
    }
    std::cout << label << ": prior " << format_fixed(p.test.nats_per_map)
              << " nats/map = " << format_fixed(p.test.bits_per_dim, 3) << " bits/dim (uniform "
              << format_fixed(p.bound.uniform_nats) << ")\n";
    return p;
  }

  /// The parsed settings and arms, and the descriptions the report reads, in
  /// the recorded (and hashed) configuration.
  void record_config(json& config) const {
    config["settings"] = settings_;
    config["arms"] = arms_;
    config["encoder"] =
        "two stride-2 4x4 convolutions (28 -> 7), two residual blocks (ReLU, 3x3, ReLU, 1x1), "
        "1x1 to D; decoder mirrored (vdO2017 section 4.1)";
    config["optimizer"] = "adam";
    config["prior"] = {{"kind",
                        "gated PixelCNN, vertical + horizontal stacks, 7x7 type-A first layer, 3x3 "
                        "type-B gated blocks"},
                       {"channels", prior_channels_},
                       {"blocks", prior_blocks_},
                       {"epochs", prior_epochs_},
                       {"lr", prior_lr_}};
    config["classifier"] = "MLP 784-512-256-10, ReLU, Adam 1e-3, on gray levels";
  }

  RunWriter& writer() const { return run_->writer(); }

  // The options (declare() gives their defaults and sources).
  std::string settings_text_, reconstruction_text_, arms_text_, prior_arms_text_, fixed_init_;
  VqSetting seed_{"seed", 0, 0, 0, "seed 000's code: K = 10, D = 2 (it trains with Adam 1e-2)"};
  VqSetting paper_{"paper", 0, 0, 0,
                   "vdO2017 section 4.1: K = 512 (the paper trains with Adam 2e-4)"};
  CodebookOptions fixed_ = CodebookOptions::usual_fixes();  ///< the fixed arm, before --fixed-init
  double beta_ = 0, prior_lr_ = 0;
  int64_t channels_ = 0, epochs_ = 0, batch_size_ = 0, max_train_ = 0, max_test_ = 0,
          curve_points_ = 0;
  int64_t prior_channels_ = 0, prior_blocks_ = 0, prior_epochs_ = 0, samples_ = 0,
          classifier_epochs_ = 0;
  // Parsed by validate(); the run's state for the stages.
  std::vector<VqSetting> settings_;
  std::vector<VqArm> arms_;
  Reconstruction reconstruction_ = Reconstruction::kMse;
  ChapterRun* run_ = nullptr;
  const TensorData* data_ = nullptr;
  ClassifierImpl* judge_ = nullptr;  ///< null: no judge
};

}  // namespace

int main(int argc, char** argv) {
  return chapter_main<VqVaePixelCnn>(argc, argv);
}
