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
/// Results land in results/05-vqvae-pixelcnn/ (layout: chapters/README.md).

#include <algorithm>
#include <cmath>
#include <map>
#include <iostream>
#include <sstream>

#include "vaerepro/chapter.h"
#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/classifier.h"
#include "vaerepro/image.h"
#include "vaerepro/pixelcnn.h"
#include "vaerepro/seeding.h"
#include "vaerepro/vq_metrics.h"
#include "vaerepro/vqvae.h"

using namespace vaerepro;

namespace {

constexpr const char* kProgram = "chapter-05";  // progress labels

/// One VQ-VAE configuration of the chapter.
struct Setting {
  std::string name;  ///< "seed" | "paper"
  int64_t codes = 0;
  int64_t dim = 0;
  double lr = 0;
  std::string source;
};

/// One way of learning the codebook: an arm of the chapter.
struct Arm {
  std::string name;   ///< "faithful" | "fixed"
  std::string title;  ///< "as written" | "with the usual fixes"
  CodebookOptions codebook;
};

/// The chapter's options; their defaults per profile, with their sources,
/// are declared in VqVaePixelCnn::declare.
struct Options {
  std::string settings;
  int64_t seed_codes = 0, seed_dim = 0, paper_codes = 0, paper_dim = 0;
  double seed_lr = 0, paper_lr = 0, beta = 0;
  std::string reconstruction;
  int64_t channels = 0, epochs = 0, batch_size = 0, max_train = 0, max_test = 0, curve_points = 0;
  int64_t prior_channels = 0, prior_blocks = 0, prior_epochs = 0;
  double prior_lr = 0;
  int64_t samples = 0, classifier_epochs = 0;
  std::string arms, prior_arms, fixed_init;
  double ema_decay = 0, ema_epsilon = 0, restart_threshold = 0;
};

std::vector<Setting> parse_settings(const Options& o) {
  std::vector<Setting> out;
  std::stringstream ss(o.settings);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.empty()) continue;
    for (const auto& s : out) {
      if (s.name == tok) throw UsageError("--settings: '" + tok + "' is given twice");
    }
    if (tok == "seed") {
      out.push_back({"seed", o.seed_codes, o.seed_dim, o.seed_lr, "seed 000's code: K = 10, D = 2 (it trains with Adam 1e-2)"});
    } else if (tok == "paper") {
      out.push_back({"paper", o.paper_codes, o.paper_dim, o.paper_lr, "vdO2017 section 4.1: K = 512 (the paper trains with Adam 2e-4)"});
    } else {
      throw UsageError("--settings: '" + tok + "' is not one of: seed, paper (e.g. --settings seed,paper)");
    }
  }
  if (out.empty()) throw UsageError("--settings is empty: give seed, paper or both");
  return out;
}

/// The comma-separated arm names of `flag` ("faithful", "fixed"), each once.
std::vector<std::string> parse_arm_names(const std::string& flag, const std::string& value, bool allow_empty) {
  std::vector<std::string> out;
  std::stringstream ss(value);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.empty()) continue;
    if (tok != "faithful" && tok != "fixed") {
      throw UsageError("--" + flag + ": '" + tok + "' is not one of: faithful, fixed (e.g. --" + flag + " faithful,fixed)");
    }
    if (std::find(out.begin(), out.end(), tok) != out.end()) throw UsageError("--" + flag + ": '" + tok + "' is given twice");
    out.push_back(tok);
  }
  if (out.empty() && !allow_empty) throw UsageError("--" + flag + " is empty: give faithful, fixed or both");
  return out;
}

/// The arms of --arms: "faithful" is vdO2017 as written; "fixed" takes its
/// initialisation, EMA and restart settings from the options.
std::vector<Arm> parse_arms(const Options& o) {
  std::vector<Arm> out;
  for (const auto& name : parse_arm_names("arms", o.arms, false)) {
    if (name == "faithful") {
      out.push_back({name, "as written", CodebookOptions::as_written()});
      continue;
    }
    CodebookOptions c = CodebookOptions::usual_fixes();
    try {
      c.init = parse_codebook_init(o.fixed_init);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--fixed-init: ") + e.what());
    }
    c.decay = o.ema_decay;
    c.epsilon = o.ema_epsilon;
    c.restart_threshold = o.restart_threshold;
    try {
      c.validate();
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--ema-decay, --ema-epsilon or --restart-threshold: ") + e.what());
    }
    out.push_back({name, "with the usual fixes", c});
  }
  return out;
}

/// What every model of the chapter shares.
struct Context {
  const Options& o;
  const ChapterSetup& setup;
  const TensorData& data;
  const RunWriter& writer;
  Reconstruction reconstruction;
  ClassifierImpl* judge = nullptr;  ///< null: no judge
  int64_t n_fixed = 0;              ///< seed 000 Table 1: 100 test images
  int64_t seed = 0;
  const ChapterRun* run = nullptr;  ///< the models' checkpoints
};

/// The caveats of the bound for this decoder and protocol.
nlohmann::json bound_caveats(Reconstruction reconstruction, bool proper) {
  nlohmann::json c = nlohmann::json::array();
  c.push_back("the prior was fitted after the VQ-VAE, to the codes of a fixed encoder: the two stages never optimised the bound jointly");
  c.push_back("q(z|x) is a point mass at z_q, so the bound has no entropy term, and it is only as tight as the encoder's single code map");
  if (reconstruction == Reconstruction::kMse) {
    c.push_back("the MSE decoder is read as a Gaussian whose per-pixel variance is fitted on the training set "
                "(sigma2 in the results): a density on gray levels, not a probability of discrete pixels; the "
                "numbers are not nats of a model of MNIST and compare with nothing in chapters 1-4");
  } else if (!proper) {
    c.push_back("a Bernoulli decoder scored on gray levels (gray-bce) is not a normalised likelihood");
  } else {
    c.push_back("Bernoulli decoder on dynamically binarised data: a true lower bound on log p(x) in nats, comparable with "
                "chapters 1-2 and PixelCNN's 81.3 nats (binarised MNIST) only on the same data");
  }
  return c;
}

/// The VQ-VAE's curve as CSV rows and JSON, written to curves/vqvae-NAME.csv.
nlohmann::json write_vqvae_curve(const Context& c, const std::string& name, const VqTrainResult& trained) {
  std::vector<std::vector<double>> rows;
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& p : trained.curve) {
    rows.push_back({static_cast<double>(p.samples_seen), p.epochs, p.train.reconstruction, p.train.codebook,
                    p.train.commitment, p.train.mse_per_pixel, p.train.perplexity, p.batch_perplexity,
                    static_cast<double>(p.train.codes_used), p.test.reconstruction, p.test.codebook, p.test.commitment,
                    p.test.mse_per_pixel, p.test.perplexity, static_cast<double>(p.test.codes_used),
                    static_cast<double>(p.dead_codes), static_cast<double>(p.restarts), p.wall_seconds});
    curve.push_back(p.to_json());
  }
  c.writer.write_csv("curves/vqvae-" + name + ".csv",
                     {"samples_seen", "epochs", "train_reconstruction", "train_codebook", "train_commitment",
                      "train_mse_per_pixel", "train_perplexity", "batch_perplexity", "train_codes_used",
                      "test_reconstruction", "test_codebook", "test_commitment", "test_mse_per_pixel", "test_perplexity",
                      "test_codes_used", "dead_codes", "restarts", "wall_seconds"},
                     rows);
  return curve;
}

/// Stages 3-4 for one model: the prior on the training codes, its samples
/// beside uniform code maps, the bound. Fills r["prior"], r["bound"],
/// r["usage"]["prior_samples"], the images and the judge of the samples.
void prior_stage(const Context& c, VqVaeImpl& model, const std::string& name, const std::string& label,
                 const torch::Tensor& train_codes, const torch::Tensor& test_codes, nlohmann::json& r) {
  const Options& o = c.o;
  const int64_t k = model.options.codes();
  // [stages]
  // 3. The prior, trained afterwards on the training codes.
  torch::manual_seed(static_cast<uint64_t>(derive_seed(c.seed, "prior-" + name)));
  GatedPixelCnn prior(GatedPixelCnnOptions(k).channels(o.prior_channels).blocks(o.prior_blocks));
  prior->to(c.setup.device);
  PriorTrainOptions pt;
  pt.epochs = o.prior_epochs;
  pt.batch_size = o.batch_size;
  pt.lr = o.prior_lr;
  pt.label = label + " prior";
  pt.checkpoint = c.run->checkpoint("prior-" + name);
  const auto prior_curve = train_prior(*prior, train_codes, test_codes, pt).curve;
  throw_if_stopped(pt.label);
  // 4. New images: prior samples (49 sequential steps over the whole batch)
  //    beside uniformly random code maps, both decoded.
  const auto t_sample = std::chrono::steady_clock::now();
  const auto prior_maps = prior->sample(o.samples, c.setup.device);  // [S, 7, 7]
  const double sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_sample).count();
  const auto uniform_maps = torch::randint(k, prior_maps.sizes(), prior_maps.options());
  // [stages]
  torch::NoGradGuard no_grad;
  const auto prior_images = model.mean_image(model.decode_codes(prior_maps)).view({o.samples, -1});      // [S, 784]
  const auto uniform_images = model.mean_image(model.decode_codes(uniform_maps)).view({o.samples, -1});  // [S, 784]

  // [bound]
  // log p(x) >= E_q[log p(x|z) + log p(z) - log q(z|x)] = log p(x|z_q) + log p(z_q),
  // since q(z|x) puts all its mass on z_q (vdO2017 section 3.2). For the MSE decoder
  // p(x|z_q) = N(x; dec(z_q), sigma2 I) with sigma2 fitted on the training set.
  const double sigma2 = c.reconstruction == Reconstruction::kMse ? fitted_variance(model, c.data.train_eval) : 1.0;
  const PriorMetrics prior_test = evaluate_prior(*prior, test_codes);
  const auto bound = vq_bound(mean_log_likelihood(model, c.data.test, sigma2), prior_test.nats_per_map,
                              test_codes.size(1) * test_codes.size(2), k);
  // [bound]
  const bool proper = c.reconstruction == Reconstruction::kBernoulli && c.setup.protocol == Protocol::kBinarized;
  const auto prior_uniform_nll = evaluate_prior(*prior, torch::randint(k, test_codes.sizes(), test_codes.options()));
  const auto usage_prior = codebook_usage(prior_maps, k);

  std::vector<std::vector<double>> rows;
  nlohmann::json pcurve = nlohmann::json::array();
  for (const auto& p : prior_curve) {
    rows.push_back({p.epochs, p.train.nats_per_map, p.train.bits_per_dim, p.test.nats_per_map, p.test.bits_per_dim,
                    p.wall_seconds});
    pcurve.push_back({{"epochs", p.epochs}, {"train", p.train.to_json()}, {"test", p.test.to_json()},
                      {"wall_seconds", p.wall_seconds}});
  }
  const std::string prior_csv = "curves/prior-" + name + ".csv";
  c.writer.write_csv(prior_csv, {"epochs", "train_nats_per_map", "train_bits_per_dim", "test_nats_per_map",
                                 "test_bits_per_dim", "wall_seconds"}, rows);
  const int64_t cols = std::min<int64_t>(10, o.samples);
  const std::string prior_png = "images/prior-samples-" + name + ".png";
  write_image_grid(c.writer.path(prior_png), prior_images, cols);
  r["images"]["prior_samples"] = prior_png;
  const std::string uniform_png = "images/uniform-samples-" + name + ".png";
  write_image_grid(c.writer.path(uniform_png), uniform_images, cols);
  r["images"]["uniform_samples"] = uniform_png;
  r["usage"]["prior_samples"] = usage_prior.to_json();
  r["prior"] = {{"parameters", prior->parameter_count()},
                {"final", {{"train", prior_curve.back().train.to_json()}, {"test", prior_test.to_json()}}},
                {"uniform", {{"nats_per_map", bound.uniform_nats}, {"bits_per_dim", std::log2(static_cast<double>(k))}}},
                {"nll_of_uniform_maps", prior_uniform_nll.to_json()},
                {"train_seconds", prior_curve.back().wall_seconds},
                {"sample_seconds", sample_seconds},
                {"samples", o.samples},
                {"curve", pcurve},
                {"curve_csv", prior_csv}};
  r["bound"] = {{"log_p_x_given_z", bound.log_p_x_given_z},
                {"log_p_z", bound.log_p_z},
                {"total", bound.total},
                {"total_uniform_prior", bound.total_uniform_prior},
                {"decoder", c.reconstruction == Reconstruction::kMse ? "gaussian" : "bernoulli"},
                {"sigma2", c.reconstruction == Reconstruction::kMse ? nlohmann::json(sigma2) : nlohmann::json()},
                {"proper_likelihood", proper},
                {"units", "nats per test image"},
                {"caveats", bound_caveats(c.reconstruction, proper)}};
  if (c.judge != nullptr) {
    r["judge"]["prior_samples"] = judge_images(*c.judge, prior_images).to_json();
    r["judge"]["uniform_samples"] = judge_images(*c.judge, uniform_images).to_json();
  }
  std::cout << label << ": prior " << format_fixed(prior_test.nats_per_map) << " nats/map = "
            << format_fixed(prior_test.bits_per_dim, 3) << " bits/dim (uniform " << format_fixed(bound.uniform_nats) << ")\n";
}

/// Stages 1-2 (and 3-4 when `with_prior`) for one setting and arm: the
/// model's entry of metrics.json.
nlohmann::json run_model(const Context& c, const Setting& s, const Arm& arm, bool with_prior) {
  const Options& o = c.o;
  const std::string name = s.name + "-" + arm.name;
  const std::string label = std::string(kProgram) + " " + name + " (K = " + std::to_string(s.codes) + ", D = " +
                            std::to_string(s.dim) + ")";
  nlohmann::json r = {{"name", name},   {"setting", s.name},     {"arm", arm.name}, {"arm_title", arm.title},
                      {"codes", s.codes}, {"dim", s.dim},        {"lr", s.lr},      {"source", s.source},
                      {"quantizer", arm.codebook.to_json()}};
  // [train-one]
  // 1. The VQ-VAE. Both arms of a setting start from the same weights and see
  //    the same batches: they differ only in how the codebook learns.
  torch::manual_seed(static_cast<uint64_t>(derive_seed(c.seed, "vqvae-" + s.name)));
  VqVae model(VqVaeOptions(s.codes, s.dim).channels(o.channels).beta(o.beta).reconstruction(c.reconstruction)
                  .codebook(arm.codebook));
  model->to(c.setup.device);
  VqTrainOptions t;
  t.epochs = o.epochs;
  t.batch_size = o.batch_size;
  t.lr = s.lr;
  t.curve_points = o.curve_points;
  t.curve_test_examples = 1000;
  t.label = label;
  t.checkpoint = c.run->checkpoint("vqvae-" + name);
  const auto trained = train_vqvae(*model, c.data.train.size(0),
                                   [&](const torch::Tensor& idx) { return c.data.train_batch(idx); }, c.data.test, t);
  // [train-one]
  throw_if_stopped(label);
  model->eval();
  // 2. The codes of every training and test image.
  const auto train_codes = encode_all(*model, c.data.train_eval);  // [N, 7, 7]
  const auto test_codes = encode_all(*model, c.data.test);         // [M, 7, 7]

  // Whole-set metrics and seed Table 1 (the first 100 test images against their gray levels).
  const auto final_test = evaluate_vqvae(*model, c.data.test);
  const auto final_train = evaluate_vqvae(*model, c.data.train_eval.narrow(0, 0, std::min<int64_t>(10000, c.data.train.size(0))));
  torch::Tensor gray_fixed = c.data.test_gray.narrow(0, 0, c.n_fixed), recon_fixed;
  {
    torch::NoGradGuard no_grad;
    recon_fixed = model->mean_image(model->forward(c.data.test.narrow(0, 0, c.n_fixed)).output).view({c.n_fixed, -1});
  }
  const auto table1 = table1_metrics(recon_fixed, gray_fixed);
  const auto usage_test = codebook_usage(test_codes, s.codes);
  const auto usage_train = codebook_usage(train_codes, s.codes);

  const std::string curve_csv = "curves/vqvae-" + name + ".csv";
  const auto curve = write_vqvae_curve(c, name, trained);
  const int64_t n_show = std::min<int64_t>(10, c.n_fixed);
  const std::string rec_png = "images/reconstructions-" + name + ".png";
  const int64_t rest = std::min(n_show, c.n_fixed - n_show);
  write_image_grid(c.writer.path(rec_png), torch::cat({gray_fixed.narrow(0, 0, n_show), recon_fixed.narrow(0, 0, n_show),
                                                       gray_fixed.narrow(0, n_show, rest), recon_fixed.narrow(0, n_show, rest)}),
                   n_show);
  r["images"]["reconstructions"] = rec_png;
  const std::string usage_png = "images/codebook-usage-" + name + ".png";
  write_png(c.writer.path(usage_png), usage_bars(usage_test.counts));
  r["images"]["codebook_usage"] = usage_png;
  r["parameters"] = model->parameter_count();
  r["vqvae"] = {{"samples_seen", trained.samples_seen},
                {"train_seconds", trained.train_seconds},
                {"final", {{"train", final_train.to_json()}, {"test", final_test.to_json()}}},
                {"table1", table1.to_json()},
                {"restarts", model->quantizer->restarts()},
                {"dead_codes", model->quantizer->codes_below(std::max(1.0, arm.codebook.restart_threshold))},
                {"curve", curve},
                {"curve_csv", curve_csv}};
  r["usage"] = {{"train", usage_train.to_json()}, {"test", usage_test.to_json()}};
  if (c.judge != nullptr) {
    r["judge"]["test_images"] = judge_images(*c.judge, c.data.test_gray).to_json();
    r["judge"]["reconstructions"] = judge_images(*c.judge, recon_fixed).to_json();
  }
  std::cout << label << ": test MSE/pixel " << format_sci(final_test.mse_per_pixel) << ", codes used " << usage_test.used
            << "/" << s.codes << " (perplexity " << format_fixed(usage_test.perplexity) << "), " << model->quantizer->restarts()
            << " restarts, " << format_fixed(trained.train_seconds) << " s\n";
  if (with_prior) prior_stage(c, *model, name, label, train_codes, test_codes, r);

  std::vector<std::vector<double>> rows;
  const auto prior_counts = r["usage"].value("prior_samples", nlohmann::json::object()).value("counts", nlohmann::json::array());
  for (int64_t k = 0; k < s.codes; ++k) {
    rows.push_back({static_cast<double>(k), static_cast<double>(usage_train.counts[k]), static_cast<double>(usage_test.counts[k]),
                    prior_counts.empty() ? std::nan("") : prior_counts[k].get<double>()});
  }
  const std::string codebook_csv = "codebook/" + name + ".csv";
  c.writer.write_csv(codebook_csv, {"code", "train_count", "test_count", "prior_sample_count"}, rows);
  r["usage"]["codebook_csv"] = codebook_csv;
  return r;
}

/// The verdicts of one model: the prior against uniform maps, its samples
/// against uniform maps (with a judge), seed Fig. 16's trend of the terms.
void model_checks(const nlohmann::json& r, int64_t classes, nlohmann::json& checks) {
  const std::string k = "K = " + r["codes"].dump() + ", " + r["arm_title"].get<std::string>();
  if (r.contains("prior")) {
    const double nats = r["prior"]["final"]["test"]["nats_per_map"].get<double>();
    const double uni = r["prior"]["uniform"]["nats_per_map"].get<double>();
    checks.push_back({{"claim", "the PixelCNN prior models the codes (" + k + ")"},
                      {"criterion", "the prior's test NLL is below the uniform distribution's 49 ln K nats per map"},
                      {"holds", nats < uni},
                      {"detail", format_fixed(nats) + " against " + format_fixed(uni) + " nats per map (" +
                                     format_fixed(r["prior"]["final"]["test"]["bits_per_dim"].get<double>(), 3) + " against " +
                                     format_fixed(r["prior"]["uniform"]["bits_per_dim"].get<double>(), 3) + " bits per dimension)"}});
  }
  if (r.contains("judge") && r["judge"].contains("prior_samples")) {
    const auto& j = r["judge"];
    const double sp = j["prior_samples"]["classifier_score"].get<double>();
    const double su = j["uniform_samples"]["classifier_score"].get<double>();
    checks.push_back({{"claim", "prior samples look more like data than uniform code maps (" + k + ")"},
                      {"criterion", "the judge's classifier score exp(H[p(y)] - E H[p(y|x)]) of decoded prior samples "
                                    "exceeds that of as many decoded uniform code maps"},
                      {"holds", sp > su},
                      {"detail", format_fixed(sp, 2) + " against " + format_fixed(su, 2) + " (real test images " +
                                     format_fixed(j["test_images"]["classifier_score"].get<double>(), 2) + ", at most " +
                                     std::to_string(classes) + "); mean confidence " +
                                     format_fixed(100 * j["prior_samples"]["mean_confidence"].get<double>()) + "% against " +
                                     format_fixed(100 * j["uniform_samples"]["mean_confidence"].get<double>()) + "%"}});
  }
  // Seed Fig. 16: both terms end lower than where they peaked; did the codebook term rise first?
  const auto& c = r["vqvae"]["curve"];
  if (c.size() < 2) return;
  double peak_cb = 0;
  size_t peak_at = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double v = c[i]["train"]["codebook"].get<double>();
    if (i == 0 || v > peak_cb) {
      peak_cb = v;
      peak_at = i;
    }
  }
  const double first_rec = c.front()["train"]["reconstruction"].get<double>();
  const double last_rec = c.back()["train"]["reconstruction"].get<double>();
  const double last_cb = c.back()["train"]["codebook"].get<double>();
  checks.push_back({{"claim", "reconstruction and codebook terms both fall by the end of training (" + k + ", seed Fig. 16)"},
                    {"criterion", "the last training-curve point's reconstruction term is below the first point's, and its "
                                  "codebook term below the curve's peak"},
                    {"holds", last_rec < first_rec && last_cb < peak_cb},
                    {"detail", "reconstruction " + format_sci(first_rec) + " -> " + format_sci(last_rec) +
                                   "; codebook term peaked at " + format_sci(peak_cb) + " (point " + std::to_string(peak_at + 1) +
                                   " of " + std::to_string(c.size()) + (peak_at > 0 ? ", after rising first" : ", at the start") +
                                   ") and ends at " + format_sci(last_cb)}});
}

/// The verdicts across models: per arm, K = 512 against K = 10; the fixed
/// arm's use of its large codebook.
void arm_checks(const nlohmann::json& results, nlohmann::json& checks) {
  std::map<std::string, std::vector<const nlohmann::json*>> by_arm;
  std::vector<std::string> order;
  for (const auto& r : results) {
    const std::string a = r["arm"].get<std::string>();
    if (!by_arm.count(a)) order.push_back(a);
    by_arm[a].push_back(&r);
  }
  for (const auto& a : order) {
    const auto& models = by_arm[a];
    if (models.size() < 2) continue;
    const nlohmann::json& small = *models.front();
    const nlohmann::json& large = *models.back();
    if (large["codes"].get<int64_t>() <= small["codes"].get<int64_t>()) continue;
    const double mse_small = small["vqvae"]["final"]["test"]["mse_per_pixel"].get<double>();
    const double mse_large = large["vqvae"]["final"]["test"]["mse_per_pixel"].get<double>();
    checks.push_back({{"claim", "a larger codebook reconstructs better (" + large["arm_title"].get<std::string>() + ")"},
                      {"criterion", "test MSE per pixel of the K = " + large["codes"].dump() + " model below the K = " +
                                        small["codes"].dump() + " model's, both trained " + large["arm_title"].get<std::string>()},
                      {"holds", mse_large < mse_small},
                      {"detail", format_sci(mse_small) + " (K = " + small["codes"].dump() + ", " +
                                     small["usage"]["test"]["used"].dump() + " codes used) against " + format_sci(mse_large) +
                                     " (K = " + large["codes"].dump() + ", " + large["usage"]["test"]["used"].dump() +
                                     " codes used)"}});
    if (a == "fixed") {
      const int64_t k = large["codes"].get<int64_t>(), used = large["usage"]["test"]["used"].get<int64_t>();
      checks.push_back({{"claim", "the live arm uses at least half of its K = " + std::to_string(k) + " codes on the test set"},
                        {"criterion", "codes used at least once over every position of every test code map >= K / 2"},
                        {"holds", 2 * used >= k},
                        {"detail", std::to_string(used) + " of " + std::to_string(k) + " codes (perplexity " +
                                       format_fixed(large["usage"]["test"]["perplexity"].get<double>()) +
                                       "); as written: " +
                                       (by_arm.count("faithful") && by_arm["faithful"].size() >= 2
                                            ? (*by_arm["faithful"].back())["usage"]["test"]["used"].dump() + " of " +
                                                  (*by_arm["faithful"].back())["codes"].dump()
                                            : std::string("not run"))}});
    }
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
    t.add("settings", o_.settings, std::string("seed,paper"),
          "which VQ-VAEs: seed (K = 10, D = 2), paper (K = 512, D = 64), or both (seed,paper)");
    t.add("seed-codes", o_.seed_codes, int64_t{10}, "K of the seed setting (seed 000's code)").range(2, 65536);
    t.add("seed-dim", o_.seed_dim, int64_t{2}, "D of the seed setting (seed 000's code: a 7x7 grid of 2-D codes)")
        .range(1, 4096);
    // Seed 000's code: Adam 1e-2. At the quick budget it collapses this
    // encoder to one constant output within ~30 steps in both arms (measured
    // on MNIST, seed 1: every test vector on one code, test MSE at the mean
    // image's 6.5e-2); 1e-3 uses all ten codes.
    t.add("seed-lr", o_.seed_lr, {1e-2, 1e-3, 1e-2}, "Adam learning rate of the seed setting").range(1e-8, 1);
    t.add("paper-codes", o_.paper_codes, int64_t{512}, "K of the paper setting (vdO2017 section 4.1)").range(2, 65536);
    // Not stated for CIFAR-10 in vdO2017; DeepMind's Sonnet VQ-VAE example uses 64.
    t.add("paper-dim", o_.paper_dim, int64_t{64}, "D of the paper setting").range(1, 4096);
    // vdO2017 section 4.1: Adam 2e-4; quick: 5x, so that 400 steps get somewhere.
    t.add("paper-lr", o_.paper_lr, {2e-4, 1e-3, 2e-4}, "Adam learning rate of the paper setting").range(1e-8, 1);
    t.add("beta", o_.beta, 0.25, "commitment weight (vdO2017 section 4.1)").range(0, 100);
    t.add("reconstruction", o_.reconstruction, std::string("mse"), "mse (seed 000 section 4: no sigmoid) | bernoulli")
        .one_of({"mse", "bernoulli"});
    t.add("channels", o_.channels, {8, 32, 128}, "feature channels of encoder and decoder (vdO2017: 256)")
        .range(1, 4096);
    t.add("epochs", o_.epochs, {1, 2, 20}, "VQ-VAE training epochs (seed 000's code: 20)").range(1, 100000);
    t.add("batch-size", o_.batch_size, int64_t{100}, "minibatch size of both stages").range(1, 1e6);
    t.add("max-train", o_.max_train, {600, 20000, 0}, "use only the first N training examples (0 = all)")
        .range(0, 1e9);
    t.add("max-test", o_.max_test, {200, 0, 0}, "use only the first N test examples (0 = all)").range(0, 1e9);
    t.add("curve-points", o_.curve_points, {3, 12, 40}, "evaluations along the VQ-VAE's training").range(1, 10000);
    t.add("prior-channels", o_.prior_channels, {8, 32, 64}, "channels of the PixelCNN").range(1, 4096);
    t.add("prior-blocks", o_.prior_blocks, {2, 5, 15}, "gated blocks after the first layer (seed 000's code: 15)")
        .range(0, 100);
    t.add("prior-epochs", o_.prior_epochs, {1, 3, 20}, "PixelCNN training epochs").range(1, 100000);
    t.add("prior-lr", o_.prior_lr, 1e-3, "Adam learning rate of the PixelCNN").range(1e-8, 1);
    t.add("samples", o_.samples, {20, 100, 100}, "prior samples drawn, and uniform code maps decoded beside them")
        .range(1, 100000);
    t.add("classifier-epochs", o_.classifier_epochs, {1, 2, 5},
          "epochs of the classifier that judges samples (0 = no judge)")
        .range(0, 1000);
    t.add("arms", o_.arms, std::string("faithful,fixed"),
          "codebook recipes: faithful (vdO2017 as written: uniform init, gradient, no restarts), fixed (data "
          "init, EMA, restarts), or both");
    // The priors are the slow stage on a CPU: quick trains only the fixed arm's.
    t.add("prior-arms", o_.prior_arms, {"faithful,fixed", "fixed", "faithful,fixed"},
          "arms whose codes get a prior");
    t.add("fixed-init", o_.fixed_init, std::string("data"),
          "initialisation of the fixed arm: data (Jukebox's init_k) | kmeans (lucidrains) | uniform")
        .one_of({"data", "kmeans", "uniform"});
    t.add("ema-decay", o_.ema_decay, 0.99, "EMA decay of the fixed arm's codebook (vdO2017 appendix A.1)");
    t.add("ema-epsilon", o_.ema_epsilon, 1e-5, "Laplace smoothing of the fixed arm's EMA counts (Sonnet)");
    t.add("restart-threshold", o_.restart_threshold, 1.0,
          "the fixed arm restarts a code whose moving-average use per step is below this (Jukebox; 0 = off)");
  }

  void validate() override {
    settings_ = parse_settings(o_);
    arms_ = parse_arms(o_);
    prior_arms_ = parse_arm_names("prior-arms", o_.prior_arms, true);
    reconstruction_ = parse_reconstruction(o_.reconstruction);
  }

  nlohmann::json run(ChapterRun& run) override {
    const TensorData data = run.tensors(o_.max_train, o_.max_test);
    const int64_t n_train = data.train.size(0), classes = data.num_classes;
    if (data.height != 28 || data.width != 28) {
      throw std::runtime_error("the VQ-VAE's encoder expects 28x28 images; " + run.dataset_name() + " has " +
                               std::to_string(data.height) + "x" + std::to_string(data.width));
    }
    record_config(run.config());
    run.begin(data.to_json(),
              run.budget(static_cast<double>(std::min(o_.epochs, o_.prior_epochs)), 20,
                         "epochs (the fewer of the VQ-VAE's and the prior's)",
                         "seed 000's code: 20 epochs of 60,000 images for each",
                         std::to_string(o_.epochs) + " VQ-VAE epochs and " + std::to_string(o_.prior_epochs) +
                             " prior epochs of " + std::to_string(n_train) +
                             " training images (seed 000's code: 20 epochs of 60,000)"));

    // The judge of samples (optional): how confidently a classifier sees a digit in an image.
    Classifier classifier{nullptr};
    double classifier_accuracy = std::nan("");
    if (o_.classifier_epochs > 0) {
      torch::manual_seed(static_cast<uint64_t>(run.seed_for("judge")));
      classifier = Classifier(data.dim(), classes);
      classifier->to(run.device());
      ClassifierTrainOptions judge;
      judge.epochs = o_.classifier_epochs;
      judge.checkpoint = run.checkpoint("judge-classifier");
      classifier_accuracy = train_classifier(*classifier, data, judge).accuracy;
      std::cout << run.prefix() << "judge classifier test accuracy " << format_fixed(100 * classifier_accuracy) << "%\n";
    }
    Context ctx{o_, run.setup(), data, run.writer(), reconstruction_};
    ctx.judge = classifier.is_empty() ? nullptr : classifier.get();
    ctx.n_fixed = std::min<int64_t>(100, data.test.size(0));  // seed 000 Table 1: 100 samples
    ctx.seed = run.common().seed;
    ctx.run = &run;
    nlohmann::json results = nlohmann::json::array();
    for (const auto& s : settings_) {
      for (const auto& a : arms_) {
        const bool with_prior = std::find(prior_arms_.begin(), prior_arms_.end(), a.name) != prior_arms_.end();
        results.push_back(run_model(ctx, s, a, with_prior));
      }
    }

    // Verdicts.
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& r : results) model_checks(r, classes, checks);
    arm_checks(results, checks);
    return {{"settings", results},
            {"classifier_accuracy", !classifier.is_empty() ? nlohmann::json(classifier_accuracy) : nlohmann::json()},
            {"table1_note", "seed 000 Table 1 scores 100 test images: MSE of gray levels (its normalisation is not "
                            "stated) and binary cross-entropy of the output clipped to [0, 1], summed over pixels"},
            {"checks", checks}};
  }

 private:
  /// The parsed settings and arms, and the descriptions the report reads, in
  /// the recorded (and hashed) configuration.
  void record_config(nlohmann::json& config) const {
    nlohmann::json settings = nlohmann::json::array(), arms = nlohmann::json::array();
    for (const auto& s : settings_) {
      settings.push_back({{"name", s.name}, {"codes", s.codes}, {"dim", s.dim}, {"lr", s.lr}, {"source", s.source}});
    }
    for (const auto& a : arms_) {
      arms.push_back({{"name", a.name}, {"title", a.title}, {"codebook", a.codebook.to_json()},
                      {"prior", std::find(prior_arms_.begin(), prior_arms_.end(), a.name) != prior_arms_.end()}});
    }
    config["settings"] = settings;
    config["arms"] = arms;
    config["encoder"] = "two stride-2 4x4 convolutions (28 -> 7), two residual blocks (ReLU, 3x3, ReLU, 1x1), 1x1 "
                        "to D; decoder mirrored (vdO2017 section 4.1)";
    config["optimizer"] = "adam";
    config["prior"] = {{"kind", "gated PixelCNN, vertical + horizontal stacks, 7x7 type-A first layer, 3x3 type-B "
                                "gated blocks"},
                       {"channels", o_.prior_channels},
                       {"blocks", o_.prior_blocks},
                       {"epochs", o_.prior_epochs},
                       {"lr", o_.prior_lr}};
    config["classifier"] = "MLP 784-512-256-10, ReLU, Adam 1e-3, on gray levels";
  }

  Options o_;
  std::vector<Setting> settings_;
  std::vector<Arm> arms_;
  std::vector<std::string> prior_arms_;
  Reconstruction reconstruction_ = Reconstruction::kMse;
};

}  // namespace

int main(int argc, char** argv) { return chapter_main<VqVaePixelCnn>(argc, argv); }
