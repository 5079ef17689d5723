#include "vaerepro/latent_model.h"
#include "vaerepro/time_ledger.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "vaerepro/cli.h"
#include "vaerepro/distributions.h"

namespace vaerepro {

int64_t LatentModel::parameter_count() {
  int64_t n = 0;
  for (const auto& p : module().parameters()) n += p.numel();
  return n;
}

torch::Tensor VaeLatentModel::log_weights(const torch::Tensor& x_in, const torch::Tensor& x,
                                          const torch::Tensor& c, int64_t k) {
  TORCH_CHECK(k >= 1, "importance samples must be >= 1, got ", k);
  auto q = vae_->encoder->forward(x_in, c);
  auto mu = q.mu.unsqueeze(0), logvar = q.logvar.unsqueeze(0);  // [1, B, Z]
  auto z = mu + torch::exp(0.5 * logvar) *
                    torch::randn({k, mu.size(1), mu.size(2)}, mu.options());  // [K, B, Z]
  torch::Tensor ck;
  if (c.defined() && c.numel() > 0)
    ck = c.unsqueeze(0).expand({k, c.size(0), c.size(1)});  // [K, B, C]
  auto log_lik = vae_->decoder->log_prob(vae_->decoder->forward(z, ck), x.unsqueeze(0));  // [K, B]
  return log_lik + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, logvar);
}

ElboTerms VaeLatentModel::elbo_terms(const torch::Tensor& x_in, const torch::Tensor& x,
                                     const torch::Tensor& c) {
  auto q = vae_->encoder->forward(x_in, c);
  auto z = reparameterize(q.mu, q.logvar);                                  // [B, Z]
  auto log_lik = vae_->decoder->log_prob(vae_->decoder->forward(z, c), x);  // [B]
  auto kl = gaussian_kl_to_standard_normal(q.mu, q.logvar);                 // [B]
  return {log_lik - kl, log_lik, kl};
}

std::vector<torch::Tensor> VaeLatentModel::posterior_means(const torch::Tensor& x,
                                                           const torch::Tensor& c) {
  return {vae_->encoder->forward(x, c).mu};
}

torch::Tensor VaeLatentModel::reconstruct(const torch::Tensor& x, const torch::Tensor& c) {
  return vae_->decoder->mean(vae_->decoder->forward(vae_->encoder->forward(x, c).mu, c));
}

torch::Tensor VaeLatentModel::sample(int64_t n, const torch::Tensor& c) {
  auto z = torch::randn({n, vae_->latent_dim()}, vae_->decoder->loc_head->weight.options());
  return vae_->decoder->mean(vae_->decoder->forward(z, c));
}

std::string VaeLatentModel::describe() const {
  std::ostringstream os;
  os << "x-";
  for (auto h : vae_->options.arch().hidden) os << h << "-";
  os << "z(" << vae_->latent_dim() << ") " << to_string(vae_->options.activation());
  if (vae_->options.condition_dim() > 0)
    os << ", condition of " << vae_->options.condition_dim() << " inputs";
  return os.str();
}

torch::Tensor iwae_bound(LatentModel& model, const torch::Tensor& x_in, const torch::Tensor& x,
                         const torch::Tensor& c, int64_t k) {
  auto lw = model.log_weights(x_in, x, c, k);                         // [K, B]
  return torch::logsumexp(lw, 0) - std::log(static_cast<double>(k));  // [B]
}

Objective parse_objective(const std::string& name) {
  if (name == "elbo") return Objective::kElbo;
  if (name == "iwae") return Objective::kIwae;
  throw std::invalid_argument("unknown objective '" + name + "' (expected elbo or iwae)");
}

std::string to_string(Objective o) {
  return o == Objective::kElbo ? "elbo" : "iwae";
}

torch::Tensor objective_loss(LatentModel& model, const ObjectiveOptions& objective,
                             const torch::Tensor& x_in, const torch::Tensor& x,
                             const torch::Tensor& c) {
  if (objective.objective == Objective::kIwae)
    return -iwae_bound(model, x_in, x, c, objective.k).mean();
  auto t = model.elbo_terms(x_in, x, c);
  return -(t.log_likelihood - objective.beta * t.kl).mean();
}

namespace {

torch::Tensor rows(const torch::Tensor& t, int64_t start, int64_t n) {
  return t.defined() && t.numel() > 0 ? t.narrow(0, start, n) : torch::Tensor();
}

}  // namespace

SetMetrics evaluate_latent_elbo(LatentModel& model, const torch::Tensor& x, const torch::Tensor& c,
                                int64_t batch_size) {
  StageTimer stage_timer(stage::kEvaluation);
  torch::NoGradGuard no_grad;
  double elbo = 0, ll = 0, kl = 0;
  const int64_t n = x.size(0);
  for (int64_t i = 0; i < n; i += batch_size) {
    throw_if_stopped("the ELBO evaluation");
    const int64_t b = std::min(batch_size, n - i);
    auto xb = x.narrow(0, i, b);
    auto t = model.elbo_terms(xb, xb, rows(c, i, b));
    elbo += t.elbo.to(torch::kDouble).sum().item<double>();
    ll += t.log_likelihood.to(torch::kDouble).sum().item<double>();
    kl += t.kl.to(torch::kDouble).sum().item<double>();
  }
  SetMetrics m;
  m.examples = n;
  if (n > 0) {
    m.elbo = elbo / n;
    m.log_likelihood = ll / n;
    m.kl = kl / n;
  }
  return m;
}

LogMarginalEstimate importance_sampled_latent(LatentModel& model, const torch::Tensor& x,
                                              const torch::Tensor& c, int64_t k, int64_t batch_size,
                                              int64_t max_chunk_elements) {
  StageTimer stage_timer(stage::kLogMarginal);
  TORCH_CHECK(k >= 1, "importance samples must be >= 1, got ", k);
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  std::vector<torch::Tensor> log_px, se;
  for (int64_t i = 0; i < n; i += batch_size) {
    const int64_t b = std::min(batch_size, n - i);
    auto xb = x.narrow(0, i, b);
    auto cb = rows(c, i, b);
    const int64_t chunk =
        std::clamp<int64_t>(max_chunk_elements / std::max<int64_t>(1, b * x.size(1)), 1, k);
    torch::Tensor lse, lse2;  // running log-sum-exp of log w and of 2 log w: [b] float64
    for (int64_t done = 0; done < k; done += chunk) {
      throw_if_stopped("the importance-sampled estimate");
      auto lw =
          model.log_weights(xb, xb, cb, std::min(chunk, k - done)).to(torch::kDouble);  // [k', b]
      auto a = torch::logsumexp(lw, 0), a2 = torch::logsumexp(2 * lw, 0);
      lse = lse.defined() ? torch::logaddexp(lse, a) : a;
      lse2 = lse2.defined() ? torch::logaddexp(lse2, a2) : a2;
    }
    const double log_k = std::log(static_cast<double>(k));
    log_px.push_back(lse - log_k);
    // mean(w^2) / mean(w)^2 = exp(lse2 - log K - 2 (lse - log K)).
    auto ratio = torch::exp(lse2 - 2 * lse + log_k);
    se.push_back(torch::sqrt(torch::clamp_min(ratio - 1.0, 0.0) / static_cast<double>(k)));
  }
  if (log_px.empty()) return {torch::zeros({0}, torch::kDouble), torch::zeros({0}, torch::kDouble)};
  return {torch::cat(log_px), torch::cat(se)};
}

LogMarginalEstimate label_marginal_log_px(LatentModel& model, const torch::Tensor& x,
                                          ConditionEncoding encoding, int64_t num_classes,
                                          int64_t k, int64_t batch_size) {
  TORCH_CHECK(encoding != ConditionEncoding::kNone && model.condition_dim() > 0,
              "label_marginal_log_px needs a conditional model and its label encoding");
  std::vector<torch::Tensor> per_label, se;
  for (int64_t y = 0; y < num_classes; ++y) {
    auto labels =
        torch::full({x.size(0)}, y, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    auto c = encode_condition(labels, encoding, num_classes);
    auto e = importance_sampled_latent(model, x, c, k, batch_size);
    per_label.push_back(e.log_px);
    se.push_back(e.standard_error);
  }
  auto stacked = torch::stack(per_label);  // [C, N]
  auto log_px = torch::logsumexp(stacked, 0) - std::log(static_cast<double>(num_classes));
  // The error of log sum_y p_y is at most the largest relative error of a term.
  auto se_max = std::get<0>(torch::stack(se).max(0));
  return {log_px, se_max};
}

std::vector<LayerActivity> latent_activity(LatentModel& model, const torch::Tensor& x,
                                           const torch::Tensor& c, double threshold,
                                           int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> sum, sum2;
  const int64_t n = x.size(0);
  for (int64_t i = 0; i < n; i += batch_size) {
    throw_if_stopped("the active-unit count");
    const int64_t b = std::min(batch_size, n - i);
    auto means = model.posterior_means(x.narrow(0, i, b), rows(c, i, b));
    if (sum.empty()) {
      for (auto& m : means) {
        sum.push_back(torch::zeros({m.size(1)}, torch::kDouble));
        sum2.push_back(torch::zeros({m.size(1)}, torch::kDouble));
      }
    }
    for (size_t l = 0; l < means.size(); ++l) {
      auto m = means[l].to(torch::kCPU, torch::kDouble);  // [b, Z_l]
      sum[l] += m.sum(0);
      sum2[l] += m.pow(2).sum(0);
    }
  }
  std::vector<LayerActivity> out;
  for (size_t l = 0; l < sum.size(); ++l) {
    auto mean = sum[l] / static_cast<double>(n);
    auto var = torch::clamp_min(sum2[l] / static_cast<double>(n) - mean.pow(2), 0.0);  // [Z_l]
    LayerActivity a;
    for (int64_t j = 0; j < var.size(0); ++j) {
      a.activity.push_back(var[j].item<double>());
      if (a.activity.back() > threshold) ++a.active_units;
    }
    out.push_back(a);
  }
  return out;
}

}  // namespace vaerepro
