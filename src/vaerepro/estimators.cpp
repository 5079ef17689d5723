#include "vaerepro/estimators.h"
#include "vaerepro/time_ledger.h"
#include "vaerepro/trainer.h"

#include <algorithm>
#include <cmath>

#include "vaerepro/cli.h"
#include "vaerepro/distributions.h"
#include "vaerepro/objectives.h"
#include "vaerepro/schema/metrics.h"

namespace vaerepro {

namespace {

/// From running log S1 = log sum w and log S2 = log sum w^2 over K weights:
/// log(S1 / K) and the delta-method standard error of that log-mean.
LogMarginalEstimate log_mean_with_se(const torch::Tensor& log_s1, const torch::Tensor& log_s2,
                                     int64_t k) {
  const double kd = static_cast<double>(k);
  auto log_mean = log_s1 - std::log(kd);
  // (mean of w^2) / (mean of w)^2 = K * S2 / S1^2.
  auto ratio = torch::exp(log_s2 - 2 * log_s1 + std::log(kd));
  auto se = torch::sqrt(torch::clamp_min(ratio - 1.0, 0.0) / kd);
  return {log_mean, se};
}

torch::Tensor running_lse(const torch::Tensor& running, const torch::Tensor& add) {
  return running.defined() ? torch::logsumexp(torch::stack({running, add}), 0) : add;
}

}  // namespace

LogMarginalEstimate importance_sampled_log_marginal(VaeImpl& vae, const torch::Tensor& x,
                                                    const torch::Tensor& c, int64_t k,
                                                    int64_t max_chunk_elements) {
  StageTimer stage_timer(stage::kLogMarginal);
  TORCH_CHECK(k >= 1, "importance samples must be >= 1, got ", k);
  torch::NoGradGuard no_grad;
  const int64_t per_sample = std::max<int64_t>(1, x.size(0) * x.size(-1));
  const int64_t chunk = std::clamp<int64_t>(max_chunk_elements / per_sample, 1, k);
  torch::Tensor s1, s2;  // [B] float64: log sum w, log sum w^2
  for (int64_t done = 0; done < k; done += chunk) {
    throw_if_stopped("the importance-sampled estimate (K = " + std::to_string(k) + ")");
    auto lw = importance_log_weights(vae, x, c, std::min(chunk, k - done));  // [k', B]
    s1 = running_lse(s1, torch::logsumexp(lw, 0));
    s2 = running_lse(s2, torch::logsumexp(2 * lw, 0));
  }
  return log_mean_with_se(s1, s2, k);
}

nlohmann::json HmcOptions::to_json() const {
  return {{"burn_in", burn_in},
          {"samples", samples},
          {"leapfrog_steps", leapfrog_steps},
          {"thin", thin},
          {"initial_step", initial_step},
          {"target_acceptance", target_acceptance},
          {"fitted_density", "Gaussian, mean and full covariance of the first L samples"},
          {"chain_start", "the encoder's mean"}};
}

namespace {

/// log p(z) + log p(x | z) for each example: [B]; z [B, Z].
torch::Tensor log_joint(VaeImpl& vae, const torch::Tensor& z, const torch::Tensor& x,
                        const torch::Tensor& c) {
  return standard_normal_log_prob(z) + vae.decoder->log_prob(vae.decoder->forward(z, c), x);
}

struct Potential {
  torch::Tensor value;  ///< [B] -log p(x, z)
  torch::Tensor grad;   ///< [B, Z]
};

Potential potential(VaeImpl& vae, const torch::Tensor& z, const torch::Tensor& x,
                    const torch::Tensor& c) {
  torch::AutoGradMode grad_mode(true);
  auto zz = z.detach().requires_grad_(true);
  auto u = -log_joint(vae, zz, x, c);                  // [B]
  auto g = torch::autograd::grad({u.sum()}, {zz})[0];  // [B, Z]
  return {u.detach(), g.detach()};
}

/// One HMC transition per chain; returns the acceptance indicator [B].
torch::Tensor hmc_transition(VaeImpl& vae, torch::Tensor& z, Potential& pot, const torch::Tensor& x,
                             const torch::Tensor& c, const torch::Tensor& eps, int64_t steps,
                             torch::Tensor* accept_prob) {
  auto e = eps.unsqueeze(1);       // [B, 1]
  auto p0 = torch::randn_like(z);  // [B, Z]
  auto p = p0 - 0.5 * e * pot.grad;
  auto zn = z.clone();
  Potential pn = pot;
  for (int64_t i = 0; i < steps; ++i) {
    zn = zn + e * p;
    pn = potential(vae, zn, x, c);
    if (i + 1 < steps) p = p - e * pn.grad;
  }
  p = p - 0.5 * e * pn.grad;
  auto h0 = pot.value + 0.5 * p0.pow(2).sum(-1);  // [B]
  auto h1 = pn.value + 0.5 * p.pow(2).sum(-1);
  auto log_ratio = torch::nan_to_num(h0 - h1, -1e30, -1e30, -1e30);
  auto prob = torch::exp(torch::clamp_max(log_ratio, 0.0));
  auto accept = torch::rand_like(prob) < prob;  // [B]
  auto a = accept.unsqueeze(1);
  z = torch::where(a, zn, z);
  pot.value = torch::where(accept, pn.value, pot.value);
  pot.grad = torch::where(a, pn.grad, pot.grad);
  if (accept_prob) *accept_prob = prob;
  return accept.to(torch::kDouble);
}

}  // namespace

HmcEstimate hmc_log_marginal(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c,
                             const HmcOptions& o) {
  StageTimer stage_timer(stage::kHmc);
  TORCH_CHECK(o.samples >= 2 && o.leapfrog_steps >= 1 && o.thin >= 1 && o.burn_in >= 0,
              "HMC: samples >= 2, leapfrog steps >= 1, thin >= 1, burn-in >= 0");
  torch::Tensor z;
  {
    torch::NoGradGuard no_grad;
    z = vae.encoder->forward(x, c).mu.detach();  // [B, Z]
  }
  const int64_t b = z.size(0), dz = z.size(1);
  auto eps = torch::full({b}, o.initial_step, z.options());
  Potential pot = potential(vae, z, x, c);
  // Burn-in with Robbins-Monro adaptation of log(step) towards the target acceptance.
  for (int64_t t = 0; t < o.burn_in; ++t) {
    throw_if_stopped("the HMC estimate (burn-in)");
    torch::Tensor prob;
    hmc_transition(vae, z, pot, x, c, eps, o.leapfrog_steps, &prob);
    const double rate = 1.0 / std::sqrt(static_cast<double>(t) + 10.0);
    eps = eps * torch::exp(rate * (prob - o.target_acceptance));
  }
  auto draw = [&](torch::Tensor* accepted) {
    std::vector<torch::Tensor> out;
    auto acc = torch::zeros({b}, z.options().dtype(torch::kDouble));
    for (int64_t l = 0; l < o.samples; ++l) {
      throw_if_stopped("the HMC estimate");
      for (int64_t t = 0; t < o.thin; ++t)
        acc += hmc_transition(vae, z, pot, x, c, eps, o.leapfrog_steps, nullptr);
      out.push_back(z.clone());
    }
    *accepted = acc / static_cast<double>(o.samples * o.thin);
    return torch::stack(out);  // [L, B, Z]
  };
  torch::Tensor acc1, acc2;
  auto fit = draw(&acc1).to(torch::kDouble);        // [L, B, Z]
  auto mean = fit.mean(0);                          // [B, Z]
  auto centered = (fit - mean).permute({1, 2, 0});  // [B, Z, L]
  auto cov =
      centered.matmul(centered.transpose(1, 2)) / static_cast<double>(o.samples - 1);  // [B, Z, Z]
  cov = cov + 1e-6 * torch::eye(dz, cov.options());
  auto prec = torch::inverse(cov);   // [B, Z, Z]
  auto logdet = torch::logdet(cov);  // [B]
  auto samples = draw(&acc2);        // [L, B, Z]
  torch::Tensor log_r;               // [L, B]: log q(z) - log p(x, z)
  {
    torch::NoGradGuard no_grad;
    auto zd = samples.to(torch::kDouble);
    auto diff = zd - mean.unsqueeze(0);  // [L, B, Z]
    auto maha =
        (diff.unsqueeze(-2).matmul(prec.unsqueeze(0)).squeeze(-2) * diff).sum(-1);  // [L, B]
    auto log_q = -0.5 * (maha + logdet.unsqueeze(0) + dz * std::log(2 * M_PI));
    auto lj = log_joint(vae, samples.reshape({-1, dz}), x.repeat({o.samples, 1}),
                        c.defined() ? c.repeat({o.samples, 1}) : c)
                  .to(torch::kDouble)
                  .view({o.samples, b});
    log_r = log_q - lj;
  }
  // log p(x) = -log mean(r); same delta-method error as the log-mean of r.
  auto s1 = torch::logsumexp(log_r, 0), s2 = torch::logsumexp(2 * log_r, 0);
  auto inner = log_mean_with_se(s1, s2, o.samples);
  return {{-inner.log_px, inner.standard_error}, acc2, eps};
}

nlohmann::json SetEstimate::to_json() const {
  namespace k = schema::key;
  return {{k::kMean, mean},
          {k::kStandardErrorData, standard_error_data},
          {k::kMeanMcStandardError, mean_mc_standard_error},
          {k::kExamples, examples}};
}

SetEstimate summarize(const LogMarginalEstimate& e) {
  SetEstimate s;
  auto v = e.log_px.to(torch::kCPU).to(torch::kDouble);
  s.examples = v.size(0);
  s.mean = v.mean().item<double>();
  s.standard_error_data =
      s.examples > 1 ? v.std().item<double>() / std::sqrt(static_cast<double>(s.examples)) : 0.0;
  s.mean_mc_standard_error = e.standard_error.to(torch::kDouble).mean().item<double>();
  return s;
}

namespace {
template <typename F>
LogMarginalEstimate per_example(const torch::Tensor& x, int64_t batch_size, F&& f) {
  std::vector<torch::Tensor> logs, ses;
  for (int64_t s = 0; s < x.size(0); s += batch_size) {
    auto e = f(x.narrow(0, s, std::min(batch_size, x.size(0) - s)));
    logs.push_back(e.log_px);
    ses.push_back(e.standard_error);
  }
  return {torch::cat(logs), torch::cat(ses)};
}
}  // namespace

LogMarginalEstimate importance_sampled_per_example(VaeImpl& vae, const torch::Tensor& x, int64_t k,
                                                   int64_t batch_size) {
  const bool was_training = vae.is_training();
  vae.eval();
  auto r = per_example(x, batch_size, [&](const torch::Tensor& xb) {
    return importance_sampled_log_marginal(vae, xb, {}, k);
  });
  vae.train(was_training);
  return r;
}

SetEstimate importance_sampled_on_set(VaeImpl& vae, const torch::Tensor& x, int64_t k,
                                      int64_t batch_size) {
  return summarize(importance_sampled_per_example(vae, x, k, batch_size));
}

SetEstimate hmc_on_set(VaeImpl& vae, const torch::Tensor& x, const HmcOptions& options,
                       int64_t batch_size, double* acceptance) {
  const bool was_training = vae.is_training();
  vae.eval();
  std::vector<torch::Tensor> acc;
  auto r = summarize(per_example(x, batch_size, [&](const torch::Tensor& xb) {
    auto h = hmc_log_marginal(vae, xb, {}, options);
    acc.push_back(h.acceptance);
    return h.estimate;
  }));
  vae.train(was_training);
  if (acceptance) *acceptance = torch::cat(acc).mean().item<double>();
  return r;
}

nlohmann::json score_on_set(VaeImpl& vae, const torch::Tensor& x, int64_t k, int64_t hmc_examples,
                            const HmcOptions& hmc) {
  namespace c2 = schema::ch02;
  nlohmann::json f;
  f[schema::key::kElbo] = evaluate_elbo(vae, x, {}).to_json();
  for (int64_t small_k : {int64_t{1}, int64_t{50}}) {
    f[c2::kImportanceSampled][std::to_string(small_k)] =
        importance_sampled_on_set(vae, x, small_k).to_json();
  }
  const auto per = importance_sampled_per_example(vae, x, k);
  f[c2::kImportanceSampled][std::to_string(k)] = summarize(per).to_json();
  if (hmc_examples > 0) {
    double acceptance = 0;
    const int64_t n = std::min(hmc_examples, x.size(0));
    auto h = hmc_on_set(vae, x.narrow(0, 0, n), hmc, 100, &acceptance).to_json();
    h[c2::kAcceptance] = acceptance;
    h[c2::kImportanceSampledSameExamples] =
        summarize({per.log_px.narrow(0, 0, n), per.standard_error.narrow(0, 0, n)}).to_json();
    f[c2::kHmc] = h;
  }
  return f;
}

nlohmann::json score_on_set_notes() {
  return {{"importance_sampled",
           "log (1/K) sum p(x,z_k)/q(z_k|x), z_k ~ q(z|x); a lower bound in expectation; "
           "standard_error_data: over examples; mean_mc_standard_error: Monte Carlo"},
          {"hmc",
           "KW2013 appendix D: HMC posterior samples, a Gaussian fitted to them, and the "
           "harmonic-mean-type ratio on fresh samples; not a bound; reliable for Nz < 5"}};
}

}  // namespace vaerepro
