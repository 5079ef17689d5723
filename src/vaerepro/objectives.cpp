#include "vaerepro/objectives.h"

#include <algorithm>
#include <cmath>

#include "vaerepro/distributions.h"

namespace vaerepro {

ElboTerms elbo(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c) {
  auto out = vae.forward(x, c);
  auto log_likelihood = vae.decoder->log_prob(out.decoded, x);                       // [B]
  auto kl = gaussian_kl_to_standard_normal(out.posterior.mu, out.posterior.logvar);  // [B]
  return {log_likelihood - kl, log_likelihood, kl};
}

torch::Tensor negative_beta_elbo_loss(const ElboTerms& terms, double beta) {
  return -(terms.log_likelihood - beta * terms.kl).mean();
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool cpu_float_contiguous(std::initializer_list<torch::Tensor> ts) {
  for (const auto& t : ts) {
    if (!t.is_cpu() || t.scalar_type() != torch::kFloat || !t.is_contiguous()) return false;
  }
  return true;
}

/// z = mu + exp(logvar / 2) eps and sum KL(N(mu, exp(logvar)) || N(0, I)).
/// Backward (KL summed, s = exp(logvar / 2)):
///   dL/dmu = g_z + g_kl mu,   dL/dlogvar = g_z eps s / 2 + g_kl (s^2 - 1) / 2.
struct SampleAndKl : public torch::autograd::Function<SampleAndKl> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& mu,
                               const torch::Tensor& logvar, const torch::Tensor& eps) {
    torch::Tensor z, kl, sd;
    if (cpu_float_contiguous({mu, logvar, eps}) && mu.sizes() == logvar.sizes() &&
        mu.sizes() == eps.sizes()) {
      z = torch::empty_like(mu);
      sd = torch::empty_like(mu);
      const float* m = mu.data_ptr<float>();
      const float* lv = logvar.data_ptr<float>();
      const float* e = eps.data_ptr<float>();
      float* zp = z.data_ptr<float>();
      float* sp = sd.data_ptr<float>();
      double acc = 0;  // float64 accumulation of the batch's KL
      for (int64_t i = 0, n = mu.numel(); i < n; ++i) {
        const float s = std::exp(0.5f * lv[i]);
        sp[i] = s;
        zp[i] = m[i] + s * e[i];
        acc += 1.0 + lv[i] - static_cast<double>(m[i]) * m[i] - static_cast<double>(s) * s;
      }
      kl = torch::tensor(static_cast<float>(-0.5 * acc), mu.options());
    } else {
      sd = torch::exp(0.5 * logvar);
      z = mu + sd * eps;
      kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum();
    }
    ctx->save_for_backward({mu, eps, sd});
    return {z, kl};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& mu = saved[0];
    const auto& eps = saved[1];
    const auto& sd = saved[2];
    torch::Tensor gz = grads[0];
    torch::Tensor gk = grads[1];
    if (!gz.defined()) gz = torch::zeros_like(mu);
    if (!gk.defined()) gk = torch::zeros({}, mu.options());
    torch::Tensor gmu, glv;
    if (cpu_float_contiguous({mu, eps, sd}) && gz.sizes() == mu.sizes() && gk.is_cpu()) {
      gz = gz.contiguous().to(torch::kFloat);
      const float k = gk.to(torch::kFloat).item<float>();
      gmu = torch::empty_like(mu);
      glv = torch::empty_like(mu);
      const float* m = mu.data_ptr<float>();
      const float* e = eps.data_ptr<float>();
      const float* s = sd.data_ptr<float>();
      const float* g = gz.data_ptr<float>();
      float* gm = gmu.data_ptr<float>();
      float* gl = glv.data_ptr<float>();
      for (int64_t i = 0, n = mu.numel(); i < n; ++i) {
        gm[i] = g[i] + k * m[i];
        gl[i] = 0.5f * (g[i] * e[i] * s[i] + k * (s[i] * s[i] - 1.0f));
      }
    } else {
      gmu = gz + gk * mu;
      glv = 0.5 * (gz * eps * sd + gk * (sd * sd - 1.0));
    }
    return {gmu, glv, torch::Tensor()};
  }
};

/// sum(x l - softplus(l)); backward: g (x - sigmoid(l)).
struct BernoulliLogProbSum : public torch::autograd::Function<BernoulliLogProbSum> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& x) {
    ctx->save_for_backward({logits, x});
    // dot(x, l): one BLAS call, no temporary; softplus: one vectorised pass.
    auto xl = x.is_contiguous() && logits.is_contiguous() && x.sizes() == logits.sizes()
                  ? torch::dot(x.reshape({-1}), logits.reshape({-1}))
                  : (x * logits).sum();
    return xl - torch::nn::functional::softplus(logits).sum();
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& logits = saved[0];
    const auto& x = saved[1];
    auto g = torch::sigmoid(logits);       // [.., D]
    torch::sub_out(g, x.expand_as(g), g);  // x - sigmoid(l), in place
    g.mul_(grads[0]);
    return {g, torch::Tensor()};
  }
};

}  // namespace

std::vector<torch::Tensor> fused_sample_and_kl(const torch::Tensor& mu, const torch::Tensor& logvar,
                                               const torch::Tensor& eps) {
  return SampleAndKl::apply(mu, logvar, eps);
}

torch::Tensor fused_bernoulli_log_prob_sum(const torch::Tensor& logits, const torch::Tensor& x) {
  return BernoulliLogProbSum::apply(logits, x);
}

TrainingLoss training_loss(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c,
                           double beta) {
  auto posterior = vae.encoder->forward(x, c);
  // The same draw as reparameterize(): one randn_like(mu).
  auto eps = torch::randn_like(posterior.mu);
  auto zk = fused_sample_and_kl(posterior.mu, posterior.logvar, eps);  // z [B, Z], KL sum []
  auto decoded = vae.decoder->forward(zk[0], c);
  torch::Tensor ll;  // []
  if (vae.decoder->options.likelihood() == Likelihood::kBernoulli) {
    ll = fused_bernoulli_log_prob_sum(decoded.loc, x);
  } else {
    ll = vae.decoder->log_prob(decoded, x).sum();
  }
  const double inv_b = 1.0 / static_cast<double>(x.size(0));
  auto loss = (beta == 1.0 ? zk[1] - ll : beta * zk[1] - ll) * inv_b;
  return {loss, ll.detach(), zk[1].detach()};
}

torch::Tensor importance_log_weights(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c,
                                     int64_t k) {
  TORCH_CHECK(k >= 1, "importance samples must be >= 1, got ", k);
  auto posterior = vae.encoder->forward(x, c);                         // [B, Z]
  auto mu = posterior.mu.unsqueeze(0);                                 // [1, B, Z]
  auto logvar = posterior.logvar.unsqueeze(0);                         // [1, B, Z]
  auto eps = torch::randn({k, mu.size(1), mu.size(2)}, mu.options());  // [K, B, Z]
  auto z = mu + torch::exp(0.5 * logvar) * eps;                        // [K, B, Z]
  auto log_q = gaussian_log_prob(z, mu, logvar);                       // [K, B]
  auto log_prior = standard_normal_log_prob(z);                        // [K, B]
  auto decoded = vae.decoder->forward(z, c);                           // [K, B, D]
  auto log_lik = vae.decoder->log_prob(decoded, x.unsqueeze(0));       // [K, B]
  return log_lik.to(torch::kDouble) + log_prior.to(torch::kDouble) - log_q.to(torch::kDouble);
}

torch::Tensor importance_weighted_bound(VaeImpl& vae, const torch::Tensor& x,
                                        const torch::Tensor& c, int64_t k,
                                        int64_t max_chunk_elements) {
  TORCH_CHECK(k >= 1, "importance samples must be >= 1, got ", k);
  const int64_t per_sample = std::max<int64_t>(1, x.size(0) * x.size(-1));
  const int64_t chunk = std::clamp<int64_t>(max_chunk_elements / per_sample, 1, k);
  // Running log-sum-exp over chunks: logsumexp(a ++ b) = logsumexp([lse(a), lse(b)]).
  torch::Tensor running;  // [B] float64
  for (int64_t done = 0; done < k; done += chunk) {
    auto lw = importance_log_weights(vae, x, c, std::min(chunk, k - done));  // [k', B]
    auto lse = torch::logsumexp(lw, 0);                                      // [B]
    running = running.defined() ? torch::logsumexp(torch::stack({running, lse}), 0) : lse;
  }
  return running - std::log(static_cast<double>(k));
}

}  // namespace vaerepro
