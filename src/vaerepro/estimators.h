#pragma once
/// \file estimators.h
/// Estimators of the marginal log-likelihood log p(x) of a trained VAE, one
/// value per example with its Monte Carlo standard error, in float64.
///
/// Shapes: B = batch, D = observed, Z = latent, K = importance samples,
/// L = posterior samples.

#include <cstdint>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/models.h"

namespace vaerepro {

/// Per-example estimates of log p(x).
struct LogMarginalEstimate {
  torch::Tensor log_px;          ///< [B] float64
  torch::Tensor standard_error;  ///< [B] float64, Monte Carlo (delta method)
};

/// The importance-sampled estimate (Burda et al. 2015, eq. 8):
/// \f[ \hat{\mathcal L}_K = \log \frac1K \sum_{k=1}^K w_k, \quad
///     w_k = \frac{p(x, z_k)}{q(z_k|x)},\ z_k \sim q(z|x), \f]
/// a lower bound on log p(x) in expectation, tight as K grows. Log-weights in
/// float64 and running log-sum-exp over chunks, so memory stays bounded for
/// any K. The standard error is the delta-method one,
/// \f$ \mathrm{se} = \sqrt{(\overline{w^2}/\bar w^2 - 1)/K} \f$, computed in
/// log space.
LogMarginalEstimate importance_sampled_log_marginal(VaeImpl& vae, const torch::Tensor& x,
                                                    const torch::Tensor& c, int64_t k,
                                                    int64_t max_chunk_elements = int64_t{1} << 22);

/// Settings of the HMC-based estimator.
struct HmcOptions {
  int64_t burn_in = 300;  ///< transitions before sampling, step size adapted
  int64_t samples = 400;  ///< L, for the fit and again for the estimate
  int64_t leapfrog_steps = 10;
  int64_t thin = 2;  ///< keep every thin-th transition
  double initial_step = 0.05;
  double target_acceptance = 0.8;  ///< step size adapted towards it during burn-in
  nlohmann::json to_json() const;
};

/// What the HMC-based estimator found.
struct HmcEstimate {
  LogMarginalEstimate estimate;
  torch::Tensor acceptance;  ///< [B] acceptance rate while sampling
  torch::Tensor step_size;   ///< [B] adapted leapfrog step
};

/// Kingma & Welling 2013, appendix D: (1) draw L samples from the true
/// posterior p(z|x) by Hamiltonian Monte Carlo on log p(z) + log p(x|z),
/// started at the encoder's mean, one chain per example with its own step
/// size adapted to `target_acceptance`; (2) fit a Gaussian q(z) (mean and full
/// covariance) to them; (3) draw L new posterior samples and use
/// \f[ p(x) \approx \Big( \frac1L \sum_l \frac{q(z_l)}{p(z_l)\,p(x|z_l)} \Big)^{-1}. \f]
/// Reliable only for few latent dimensions (KW2013: fewer than 5); the
/// standard error assumes the thinned samples independent.
HmcEstimate hmc_log_marginal(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c,
                             const HmcOptions& options);

/// A set-level summary: the mean over examples, its standard error over
/// examples (sampling of the data), and the mean per-example Monte Carlo
/// standard error.
struct SetEstimate {
  double mean = 0;
  double standard_error_data = 0;
  double mean_mc_standard_error = 0;
  int64_t examples = 0;
  nlohmann::json to_json() const;
};
SetEstimate summarize(const LogMarginalEstimate& e);

/// Every estimator here checks the stop flag (cli.h, SIGINT/SIGTERM) between
/// chunks and HMC transitions and throws Interrupted: an estimate of hours
/// stops within a chunk; it keeps no partial state (rerun, it starts over).

/// importance_sampled_log_marginal for every example of a set [N, D], in
/// batches (per-example values, e.g. to compare estimators on a subset).
LogMarginalEstimate importance_sampled_per_example(VaeImpl& vae, const torch::Tensor& x, int64_t k,
                                                   int64_t batch_size = 100);
/// importance_sampled_log_marginal over a whole set [N, D], in batches.
SetEstimate importance_sampled_on_set(VaeImpl& vae, const torch::Tensor& x, int64_t k,
                                      int64_t batch_size = 100);
/// hmc_log_marginal over a whole set [N, D], in batches; also returns the
/// mean acceptance rate in `acceptance`.
SetEstimate hmc_on_set(VaeImpl& vae, const torch::Tensor& x, const HmcOptions& options,
                       int64_t batch_size, double* acceptance = nullptr);

/// The final scoring of a trained model on a set x [N, D] (KW2013 Fig. 3's
/// estimates beside IWAE's): "elbo" (evaluate_elbo, trainer.h), the
/// importance-sampled bound at K = 1, 50 and `k` ("importance_sampled" keyed
/// by K) and, when `hmc_examples` > 0, KW2013 appendix D's HMC estimator on
/// the first `hmc_examples` points ("hmc", with its acceptance rate and the
/// K = `k` estimate on the same points). Checks the stop flag as it goes.
nlohmann::json score_on_set(VaeImpl& vae, const torch::Tensor& x, int64_t k, int64_t hmc_examples,
                            const HmcOptions& hmc);
/// What score_on_set's two estimators are, in words, keyed as it keys them
/// ("importance_sampled", "hmc"): for a chapter's metrics.json beside them.
nlohmann::json score_on_set_notes();

}  // namespace vaerepro
