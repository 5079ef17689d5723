#include "vaerepro/vq_metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vaerepro {

nlohmann::json SampleJudge::to_json() const {
  return {{"mean_confidence", mean_confidence},
          {"standard_error", standard_error},
          {"class_perplexity", class_perplexity},
          {"classifier_score", classifier_score},
          {"examples", examples}};
}

SampleJudge judge_probabilities(const torch::Tensor& p_in) {
  TORCH_CHECK(p_in.dim() == 2 && p_in.size(0) > 0,
              "judge_probabilities: expected [N, C] with N >= 1, got ", p_in.sizes());
  torch::NoGradGuard no_grad;
  auto p = p_in.to(torch::kFloat64);  // [N, C]
  auto conf = std::get<0>(p.max(1));  // [N]
  const int64_t classes = p.size(1);
  auto hist = torch::bincount(p.argmax(1).to(torch::kCPU), {}, classes).to(torch::kFloat64);  // [C]
  auto freq = hist / hist.sum();
  auto entropy = [](const torch::Tensor& q, int64_t dim) {
    return -(q * torch::log(q.clamp_min(1e-300))).sum(dim);
  };
  auto marginal = p.mean(0);  // [C]
  SampleJudge j;
  j.examples = p.size(0);
  j.mean_confidence = conf.mean().item<double>();
  j.standard_error =
      j.examples > 1 ? conf.std().item<double>() / std::sqrt(static_cast<double>(j.examples)) : 0.0;
  j.class_perplexity = std::exp(entropy(freq, 0).item<double>());
  j.classifier_score =
      std::exp(entropy(marginal, 0).item<double>() - entropy(p, 1).mean().item<double>());
  return j;
}

SampleJudge judge_images(ClassifierImpl& classifier, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return judge_probabilities(torch::softmax(classifier.forward(x), 1));
}

nlohmann::json Table1Metrics::to_json() const {
  return {
      {"mse_per_pixel", mse_per_pixel}, {"cross_entropy", cross_entropy}, {"examples", examples}};
}

Table1Metrics table1_metrics(const torch::Tensor& recon, const torch::Tensor& gray) {
  TORCH_CHECK(recon.sizes() == gray.sizes() && recon.dim() == 2 && recon.size(0) > 0,
              "table1_metrics: expected reconstructions and targets of one shape [N, P], got ",
              recon.sizes(), " and ", gray.sizes());
  torch::NoGradGuard no_grad;
  auto r = recon.to(torch::kFloat64), g = gray.to(torch::kFloat64);
  Table1Metrics t;
  t.examples = recon.size(0);
  t.mse_per_pixel = (r - g).pow(2).mean().item<double>();
  t.cross_entropy = torch::binary_cross_entropy(r.clamp(1e-7, 1 - 1e-7), g, {}, at::Reduction::Sum)
                        .item<double>() /
                    static_cast<double>(t.examples);
  return t;
}

torch::Tensor vq_reconstruct(VqVaeImpl& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return model.mean_image(model.forward(x).output).view({x.size(0), -1});
}

torch::Tensor vq_decode(VqVaeImpl& model, const torch::Tensor& codes) {
  torch::NoGradGuard no_grad;
  return model.mean_image(model.decode_codes(codes)).view({codes.size(0), -1});
}

torch::Tensor encode_all(VqVaeImpl& model, const torch::Tensor& x, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch_size) {
    parts.push_back(model.encode(x.narrow(0, i, std::min(batch_size, x.size(0) - i))));
  }
  return torch::cat(parts);  // [N, H, W]
}

double fitted_variance(VqVaeImpl& model, const torch::Tensor& x, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  double sq = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < x.size(0); i += batch_size) {
    auto xb = x.narrow(0, i, std::min(batch_size, x.size(0) - i));
    sq += (model.forward(xb).output.reshape({xb.size(0), -1}) - xb.reshape({xb.size(0), -1}))
              .pow(2)
              .to(torch::kFloat64)
              .sum()
              .item<double>();
    count += xb.numel();
  }
  if (count == 0) throw std::invalid_argument("fitted_variance: no examples");
  return sq / static_cast<double>(count);
}

double mean_log_likelihood(VqVaeImpl& model, const torch::Tensor& x, double sigma2,
                           int64_t batch_size) {
  torch::NoGradGuard no_grad;
  double total = 0;
  for (int64_t i = 0; i < x.size(0); i += batch_size) {
    auto xb = x.narrow(0, i, std::min(batch_size, x.size(0) - i));
    total += model.log_likelihood(model.forward(xb).output, xb, sigma2)
                 .to(torch::kFloat64)
                 .sum()
                 .item<double>();
  }
  if (x.size(0) == 0) throw std::invalid_argument("mean_log_likelihood: no examples");
  return total / static_cast<double>(x.size(0));
}

VqBound vq_bound(double log_p_x_given_z, double prior_nats_per_map, int64_t positions,
                 int64_t codes) {
  if (positions < 1 || codes < 1)
    throw std::invalid_argument("vq_bound: positions and codes must be >= 1");
  VqBound b;
  b.log_p_x_given_z = log_p_x_given_z;
  b.log_p_z = -prior_nats_per_map;
  b.total = log_p_x_given_z + b.log_p_z;
  b.uniform_nats = static_cast<double>(positions) * std::log(static_cast<double>(codes));
  b.total_uniform_prior = log_p_x_given_z - b.uniform_nats;
  return b;
}

bool vq_bound_is_likelihood(Reconstruction reconstruction, Protocol protocol) {
  return reconstruction == Reconstruction::kBernoulli && protocol == Protocol::kBinarized;
}

nlohmann::json vq_bound_caveats(Reconstruction reconstruction, bool proper) {
  nlohmann::json c = nlohmann::json::array();
  c.push_back(
      "the prior was fitted after the VQ-VAE, to the codes of a fixed encoder: the two stages "
      "never "
      "optimised the bound jointly");
  c.push_back(
      "q(z|x) is a point mass at z_q, so the bound has no entropy term, and it is only as tight as "
      "the "
      "encoder's single code map");
  if (reconstruction == Reconstruction::kMse) {
    c.push_back(
        "the MSE decoder is read as a Gaussian whose per-pixel variance is fitted on the training "
        "set "
        "(sigma2 in the results): a density on gray levels, not a probability of discrete pixels; "
        "the "
        "numbers are not nats of a model of MNIST and compare with nothing in chapters 1-4");
  } else if (!proper) {
    c.push_back(
        "a Bernoulli decoder scored on gray levels (gray-bce) is not a normalised likelihood");
  } else {
    c.push_back(
        "Bernoulli decoder on dynamically binarised data: a true lower bound on log p(x) in nats, "
        "comparable with chapters 1-2 and PixelCNN's 81.3 nats (binarised MNIST) only on the same "
        "data");
  }
  return c;
}

nlohmann::json vq_bound_record(const VqBound& bound, Reconstruction reconstruction,
                               Protocol protocol, double sigma2) {
  const bool gaussian = reconstruction == Reconstruction::kMse;
  const bool proper = vq_bound_is_likelihood(reconstruction, protocol);
  return {{"log_p_x_given_z", bound.log_p_x_given_z},
          {"log_p_z", bound.log_p_z},
          {"total", bound.total},
          {"total_uniform_prior", bound.total_uniform_prior},
          {"decoder", gaussian ? "gaussian" : "bernoulli"},
          {"sigma2", gaussian ? nlohmann::json(sigma2) : nlohmann::json()},
          {"proper_likelihood", proper},
          {"units", "nats per test image"},
          {"caveats", vq_bound_caveats(reconstruction, proper)}};
}

VqTermTrend vq_term_trend(const std::vector<VqCurvePoint>& curve) {
  if (curve.size() < 2)
    throw std::invalid_argument("vq_term_trend: a trend needs at least two curve points");
  VqTermTrend t;
  t.points = curve.size();
  for (size_t i = 0; i < curve.size(); ++i) {
    if (i == 0 || curve[i].train.codebook > t.peak_codebook) {
      t.peak_codebook = curve[i].train.codebook;
      t.peak_at = i;
    }
  }
  t.first_reconstruction = curve.front().train.reconstruction;
  t.last_reconstruction = curve.back().train.reconstruction;
  t.last_codebook = curve.back().train.codebook;
  return t;
}

CsvTable vq_curve_table(const std::vector<VqCurvePoint>& curve) {
  CsvTable t;
  t.header = {"samples_seen",        "epochs",           "train_reconstruction",
              "train_codebook",      "train_commitment", "train_mse_per_pixel",
              "train_perplexity",    "batch_perplexity", "train_codes_used",
              "test_reconstruction", "test_codebook",    "test_commitment",
              "test_mse_per_pixel",  "test_perplexity",  "test_codes_used",
              "dead_codes",          "restarts",         "wall_seconds"};
  for (const auto& p : curve) {
    t.rows.push_back({static_cast<double>(p.samples_seen), p.epochs, p.train.reconstruction,
                      p.train.codebook, p.train.commitment, p.train.mse_per_pixel,
                      p.train.perplexity, p.batch_perplexity,
                      static_cast<double>(p.train.codes_used), p.test.reconstruction,
                      p.test.codebook, p.test.commitment, p.test.mse_per_pixel, p.test.perplexity,
                      static_cast<double>(p.test.codes_used), static_cast<double>(p.dead_codes),
                      static_cast<double>(p.restarts), p.wall_seconds});
  }
  return t;
}

CsvTable prior_curve_table(const std::vector<PriorCurvePoint>& curve) {
  CsvTable t;
  t.header = {"epochs",
              "train_nats_per_map",
              "train_bits_per_dim",
              "test_nats_per_map",
              "test_bits_per_dim",
              "wall_seconds"};
  for (const auto& p : curve) {
    t.rows.push_back({p.epochs, p.train.nats_per_map, p.train.bits_per_dim, p.test.nats_per_map,
                      p.test.bits_per_dim, p.wall_seconds});
  }
  return t;
}

CsvTable codebook_table(const CodebookUsage& train, const CodebookUsage& test,
                        const CodebookUsage* prior_samples) {
  const size_t k = train.counts.size();
  if (test.counts.size() != k || (prior_samples != nullptr && prior_samples->counts.size() != k)) {
    throw std::invalid_argument("codebook_table: the counts are of codebooks of different sizes");
  }
  CsvTable t;
  t.header = {"code", "train_count", "test_count", "prior_sample_count"};
  for (size_t i = 0; i < k; ++i) {
    t.rows.push_back(
        {static_cast<double>(i), static_cast<double>(train.counts[i]),
         static_cast<double>(test.counts[i]),
         prior_samples == nullptr ? std::nan("") : static_cast<double>(prior_samples->counts[i])});
  }
  return t;
}

torch::Tensor usage_bars(const std::vector<int64_t>& counts) {
  const int64_t k = static_cast<int64_t>(counts.size());
  if (k == 0) throw std::invalid_argument("usage_bars: no codes");
  const int64_t bar = std::max<int64_t>(1, 400 / k), height = 120;
  std::vector<int64_t> sorted = counts;
  std::sort(sorted.begin(), sorted.end(), std::greater<int64_t>());
  const double top = std::max<double>(1.0, static_cast<double>(sorted.front()));
  const int64_t width = std::max<int64_t>(1, bar - (bar > 2 ? 1 : 0));  // a gap between wide bars
  auto img = torch::ones({height, k * bar + 2});
  for (int64_t i = 0; i < k; ++i) {
    const auto h =
        static_cast<int64_t>(std::llround(height * static_cast<double>(sorted[i]) / top));
    if (h > 0) img.narrow(0, height - h, h).narrow(1, 1 + i * bar, width).fill_(0.15);
  }
  return img;
}

}  // namespace vaerepro
