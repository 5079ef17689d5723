#include "vaerepro/objectives.h"

#include <algorithm>
#include <cmath>

#include "vaerepro/distributions.h"

namespace vaerepro {

ElboTerms elbo(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c) {
  auto out = vae.forward(x, c);
  auto log_likelihood = vae.decoder->log_prob(out.decoded, x);  // [B]
  auto kl = gaussian_kl_to_standard_normal(out.posterior.mu, out.posterior.logvar);  // [B]
  return {log_likelihood - kl, log_likelihood, kl};
}

torch::Tensor negative_beta_elbo_loss(const ElboTerms& terms, double beta) {
  return -(terms.log_likelihood - beta * terms.kl).mean();
}

torch::Tensor importance_log_weights(VaeImpl& vae, const torch::Tensor& x,
                                     const torch::Tensor& c, int64_t k) {
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
    auto lse = torch::logsumexp(lw, 0);                                    // [B]
    running = running.defined() ? torch::logsumexp(torch::stack({running, lse}), 0) : lse;
  }
  return running - std::log(static_cast<double>(k));
}

}  // namespace vaerepro
