#include "vaerepro/variants.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "vaerepro/cnn_vae.h"
#include "vaerepro/corruption.h"
#include "vaerepro/image.h"
#include "vaerepro/iwae.h"

namespace fs = std::filesystem;

namespace vaerepro {

std::string to_string(VariantFamily f) {
  switch (f) {
    case VariantFamily::kMlp:
      return "mlp";
    case VariantFamily::kCnn:
      return "cnn";
    case VariantFamily::kTwoLayer:
      return "two-layer";
  }
  return "?";
}

const std::vector<std::string>& variant_names() {
  static const std::vector<std::string> names = {"vae",       "vae-tuned", "cnn",      "iwae",
                                                 "iwae-elbo", "dvae",      "beta-vae", "cvae"};
  return names;
}

std::string all_variants() {
  std::string s;
  for (const auto& n : variant_names()) s += (s.empty() ? "" : ",") + n;
  return s;
}

Variant make_variant(const std::string& name, const VariantSettings& settings) {
  Variant v;
  v.name = name;
  auto tuned = [](Variant& t) {  // seed 002 section 4.2.1: ReLU, Adam (0.9, 0.99), no weight decay
    t.activation = Activation::kRelu;
    t.optimizer = "adam";
    t.init_std =
        0;  // "Xavier and He initialization ... no significant improvement": torch's default
  };
  if (name == "vae") {
    v.row = "VAE implementation";
  } else if (name == "vae-tuned") {
    v.row = "VAE tuned";
    tuned(v);
  } else if (name == "cnn") {
    v.row = "VAE CNN";
    v.family = VariantFamily::kCnn;
    tuned(v);
  } else if (name == "iwae" || name == "iwae-elbo") {
    v.row = name == "iwae" ? "IWAE" : "IWAE network, plain ELBO (not in the seed)";
    v.family = VariantFamily::kTwoLayer;
    v.optimizer = "adam";
    v.init_std = 0;
    if (name == "iwae") v.objective = {Objective::kIwae, 1.0, settings.iwae_k};
  } else if (name == "dvae") {
    v.row = "DVAE";
    tuned(v);  // seed 002 section 4.2.5: "the settings from section 4.2.1"
    v.corruption = settings.noise;
  } else if (name == "beta-vae") {
    v.row = "beta-VAE";  // seed 002 section 4.2.6: "the same settings as the original VAE model"
    v.objective.beta = settings.beta;
  } else if (name == "cvae") {
    v.row = "CVAE";
    tuned(v);  // seed 002 section 4.2.3: "the same settings from section 4.2.1"
    v.condition = ConditionEncoding::kOneHot;
  } else {
    throw std::invalid_argument("unknown variant '" + name + "' (choose from " + all_variants() +
                                ")");
  }
  return v;
}

std::vector<Variant> parse_variants(const std::string& text, const VariantSettings& settings) {
  if (text.empty() || text.front() == ',' || text.back() == ',') {
    throw std::invalid_argument("'" + text + "' has an empty entry");
  }
  std::vector<Variant> out;
  std::stringstream ss(text);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) throw std::invalid_argument("'" + text + "' has an empty entry");
    for (const auto& v : out) {
      if (v.name == name) throw std::invalid_argument(name + " is given twice");
    }
    out.push_back(make_variant(name, settings));
  }
  return out;
}

double learning_rate(const Variant& v, int64_t nz) {
  if (v.optimizer == "adagrad")
    return 0.02;  // KW2013 section 5, seed 002 4.1: of {0.01, 0.02, 0.1}
  if (v.family == VariantFamily::kTwoLayer) return 1e-3;  // section 4.2.4 (Burda et al.)
  if (v.family == VariantFamily::kCnn) return nz >= 200 ? 1e-3 : 1e-2;  // section 4.2.2
  return nz <= 3 ? 1e-2 : 1e-3;  // section 4.2.1: 1e-2 at N_z = 3, 1e-3 otherwise
}

nlohmann::json variant_config(const Variant& v, int64_t nz, int64_t hidden, int64_t iwae_z1) {
  const bool two_layer = v.family == VariantFamily::kTwoLayer;
  return {{"variant", v.name},
          {"nz", nz},
          {"family", to_string(v.family)},
          {"hidden", hidden},
          {"iwae_z1", two_layer ? nlohmann::json(iwae_z1) : nlohmann::json(nullptr)},
          {"activation", to_string(v.activation)},
          {"optimizer", {{"name", v.optimizer}, {"lr", learning_rate(v, nz)}}},
          {"objective",
           {{"name", to_string(v.objective.objective)},
            {"beta", v.objective.beta},
            {"k", v.objective.k}}},
          {"corruption", v.corruption},
          {"condition", to_string(v.condition)},
          {"init_std", v.init_std}};
}

VariantModel build_variant(const Variant& v, int64_t nz, const TensorData& data, int64_t hidden,
                           int64_t iwae_z1, torch::Device device) {
  VariantModel b;
  if (v.family == VariantFamily::kMlp) {
    Vae vae(VaeOptions(data.dim(), Architecture{{hidden}, nz})
                .activation(v.activation)
                .condition_dim(condition_dim(v.condition, data.num_classes))
                .init_std(v.init_std));
    b.model = std::make_shared<VaeLatentModel>(vae);
  } else if (v.family == VariantFamily::kCnn) {
    auto m = CnnVae(CnnVaeOptions(nz).height(data.height).width(data.width));
    b.model = std::shared_ptr<LatentModel>(m.ptr(), m.ptr().get());
  } else {
    auto m = TwoLayerVae(TwoLayerVaeOptions(data.dim(), iwae_z1, nz).activation(Activation::kTanh));
    b.model = std::shared_ptr<LatentModel>(m.ptr(), m.ptr().get());
  }
  b.model->module().to(device);
  const double lr = learning_rate(v, nz);
  auto params = b.model->module().parameters();
  if (v.optimizer == "adagrad") {
    b.optimizer = std::make_unique<torch::optim::Adagrad>(params, torch::optim::AdagradOptions(lr));
  } else if (v.family == VariantFamily::kTwoLayer) {  // Burda et al. 2015 section 5
    b.optimizer = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(lr).betas({0.9, 0.999}).eps(1e-4));
  } else {  // seed 002 section 4.2.1: beta_1 = 0.9, beta_2 = 0.99
    b.optimizer = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(lr).betas({0.9, 0.99}));
  }
  return b;
}

std::string VariantPoint::name() const {
  return variant.name + "-nz" + std::to_string(nz) + (primary ? "" : "-" + to_string(protocol));
}

std::vector<VariantPoint> variant_grid(const std::vector<Variant>& variants,
                                       const std::vector<int64_t>& nzs,
                                       const std::vector<Protocol>& protocols) {
  std::vector<VariantPoint> grid;
  for (size_t i = 0; i < protocols.size(); ++i) {
    for (const auto& v : variants) {
      for (int64_t nz : nzs) grid.push_back({v, nz, protocols[i], i == 0});
    }
  }
  return grid;
}

LatentTrainOptions variant_training(const Variant& v) {
  LatentTrainOptions o;
  o.objective = v.objective;
  o.corruption = v.corruption;
  o.condition = v.condition;
  return o;
}

nlohmann::json describe_trained(const Variant& v, LatentModel& model, const LatentTrainResult& r) {
  return {{"row", v.row},
          {"architecture", model.describe()},
          {"parameters", model.parameter_count()},
          {"latent_sizes", model.latent_sizes()},
          {"samples_seen", r.samples_seen},
          {"train_seconds", r.train_seconds},
          {"resumed_at", r.resumed_at},
          {"curve", r.curve_json()}};
}

namespace {
/// The scored test points: the first n (all when 0).
torch::Tensor first_points(const torch::Tensor& t, int64_t n) {
  return n > 0 && n < t.size(0) ? t.narrow(0, 0, n) : t;
}
}  // namespace

nlohmann::json evaluate_variant(const Variant& v, LatentModel& model, const TensorData& data,
                                const VariantEvaluation& e) {
  torch::NoGradGuard no_grad;
  model.module().eval();
  const auto t0 = std::chrono::steady_clock::now();
  const bool conditional = v.conditional();
  const auto test_c = conditional
                          ? encode_condition(data.test_labels, v.condition, data.num_classes)
                          : torch::Tensor();
  const SetMetrics test = evaluate_latent_elbo(model, data.test, test_c);
  const auto xs = first_points(data.test, e.marginal_points);
  const auto cs = conditional ? first_points(test_c, e.marginal_points) : torch::Tensor();
  const int64_t scored = xs.size(0);
  nlohmann::json out;
  out["test"] = test.to_json();
  out["elbo_same_points"] = evaluate_latent_elbo(model, xs, cs).to_json();
  const std::string points = e.marginal_points > 0 && e.marginal_points < data.test.size(0)
                                 ? "the first " + std::to_string(scored) + " test points"
                                 : "the whole test set (" + std::to_string(scored) + " points)";
  nlohmann::json marginal = {{"k", e.marginal_k}, {"points", points}, {"examples", scored}};
  marginal["log_px"] = summarize(importance_sampled_latent(model, xs, cs, e.marginal_k)).to_json();
  marginal["quantity"] =
      conditional ? "log p(x | y), the true label (the seed's conditional quantity)" : "log p(x)";
  if (conditional) {  // the same cost: K / C samples for each of the C labels
    const int64_t per_label = std::max<int64_t>(1, e.marginal_k / data.num_classes);
    marginal["label_marginal"] =
        summarize(label_marginal_log_px(model, xs, v.condition, data.num_classes, per_label))
            .to_json();
    marginal["label_marginal"]["k_per_label"] = per_label;
  }
  out["marginal"] = marginal;
  if (v.family == VariantFamily::kTwoLayer) {
    out["iwae_bound"] = summarize(importance_sampled_latent(model, xs, cs, e.bound_k)).to_json();
    out["iwae_bound"]["k"] = e.bound_k;
  }
  if (v.corruption > 0) {  // the denoising bound itself (seed 002 eq. 4), one corruption per point
    auto noisy = salt_and_pepper(xs, v.corruption);
    out["denoising_elbo"] =
        model.elbo_terms(noisy, xs, cs).elbo.to(torch::kDouble).mean().item<double>();
  }
  nlohmann::json layers = nlohmann::json::array();
  int64_t active = 0;
  for (const auto& a : latent_activity(model, data.test, test_c)) {
    layers.push_back({{"activity", a.activity}, {"active_units", a.active_units}});
    active += a.active_units;
  }
  out["layers"] = layers;
  out["active_units"] = active;
  out["eval_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

nlohmann::json write_variant_pictures(const Variant& v, LatentModel& model, const TensorData& data,
                                      const std::string& dir) {
  torch::NoGradGuard no_grad;
  const fs::path d(dir);
  fs::create_directories(d / "images");
  const int64_t n = std::min<int64_t>(10, data.test.size(0));
  auto x = data.test.narrow(0, 0, n);
  torch::Tensor c, c_ones;
  if (v.conditional()) {
    c = encode_condition(data.test_labels.narrow(0, 0, n), v.condition, data.num_classes);
    c_ones = encode_condition(torch::ones({100}, data.test_labels.options()), v.condition,
                              data.num_classes);
  }
  auto recon = model.reconstruct(x, c).to(torch::kCPU);      // [n, D]
  auto samples = model.sample(100, c_ones).to(torch::kCPU);  // [100, D]
  const int64_t h = data.height, w = data.width;
  write_image_grid((d / "images/reconstructions.png").string(),
                   torch::cat({x.to(torch::kCPU), recon}), n, h, w);
  write_image_grid((d / "images/samples.png").string(), samples, 10, h, w);
  torch::save(recon, (d / "reconstructions.pt").string());
  torch::save(samples.narrow(0, 0, 10).clone(), (d / "samples.pt").string());
  return {{"reconstructions", "images/reconstructions.png"},
          {"samples", "images/samples.png"},
          {"samples_condition", v.conditional() ? "the digit 1 (seed 002 Fig. 6)" : "none"}};
}

}  // namespace vaerepro
