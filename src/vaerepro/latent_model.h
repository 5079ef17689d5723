#pragma once
/// \file latent_model.h
/// One interface for the latent-variable models of chapter 7 (an MLP VAE, a
/// convolutional VAE, the two-stochastic-layer IWAE network), so that one
/// objective, one training loop and one set of estimators serve them all:
/// what a model must supply is its log importance weights and its one-sample
/// ELBO terms.
///
/// Shapes: B = batch, D = pixels, C = condition size, K = importance samples,
/// Z = latent size (of one stochastic layer).

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vaerepro/estimators.h"
#include "vaerepro/models.h"
#include "vaerepro/objectives.h"
#include "vaerepro/trainer.h"

namespace vaerepro {

/// A model p(x, h) = p(h) p(x | h) with an amortised posterior q(h | x) over
/// one or more stochastic layers h, for binary images (Bernoulli decoder).
///
/// Every method takes the encoder's input `x_in` apart from the scored
/// `x`: they are the same tensor except for a denoising VAE, whose encoder
/// sees a corrupted copy (Im et al. 2017; corruption.h).
class LatentModel {
 public:
  virtual ~LatentModel() = default;
  /// \f$\log w_k = \log p(x, h_k) - \log q(h_k \mid \tilde x)\f$ for K
  /// samples \f$h_k \sim q(h \mid \tilde x)\f$, every constant included: [K, B]
  /// in the model's dtype (differentiable, reparameterised).
  virtual torch::Tensor log_weights(const torch::Tensor& x_in, const torch::Tensor& x,
                                    const torch::Tensor& c, int64_t k) = 0;
  /// The ELBO with one sample: elbo = log_likelihood - kl, each [B]; kl is
  /// analytic where the model has it in closed form, a one-sample estimate of
  /// E_q[log q(h|x) - log p(h)] otherwise (the two-layer model).
  virtual ElboTerms elbo_terms(const torch::Tensor& x_in, const torch::Tensor& x,
                               const torch::Tensor& c) = 0;
  /// The posterior means E_q[h_l | x] of every stochastic layer l, input side
  /// first: [B, Z_l] each (active units, Burda et al. 2015 section 5.2).
  virtual std::vector<torch::Tensor> posterior_means(const torch::Tensor& x,
                                                     const torch::Tensor& c) = 0;
  /// Bernoulli means of p(x | h) at the posterior means: [B, D] in [0, 1].
  virtual torch::Tensor reconstruct(const torch::Tensor& x, const torch::Tensor& c) = 0;
  /// Bernoulli means of p(x | h) for n draws h ~ p(h): [n, D]; `c` [n, C] or undefined.
  virtual torch::Tensor sample(int64_t n, const torch::Tensor& c) = 0;
  /// The torch module (parameters, train/eval mode, device, checkpoints).
  virtual torch::nn::Module& module() = 0;
  /// Sizes of the stochastic layers, input side first.
  virtual std::vector<int64_t> latent_sizes() const = 0;
  /// The condition size C (0 when unconditional).
  virtual int64_t condition_dim() const { return 0; }
  /// The architecture in one line ("x-500-z tanh").
  virtual std::string describe() const = 0;
  /// Trainable parameters.
  int64_t parameter_count();
};

/// The MLP VAE of models.h (KW2013's, also the beta-VAE and the CVAE) behind
/// the interface; the analytic KL of KW2013 appendix B in elbo_terms.
class VaeLatentModel : public LatentModel {
 public:
  explicit VaeLatentModel(Vae vae) : vae_(std::move(vae)) {}
  torch::Tensor log_weights(const torch::Tensor& x_in, const torch::Tensor& x,
                            const torch::Tensor& c, int64_t k) override;
  ElboTerms elbo_terms(const torch::Tensor& x_in, const torch::Tensor& x,
                       const torch::Tensor& c) override;
  std::vector<torch::Tensor> posterior_means(const torch::Tensor& x,
                                             const torch::Tensor& c) override;
  torch::Tensor reconstruct(const torch::Tensor& x, const torch::Tensor& c) override;
  torch::Tensor sample(int64_t n, const torch::Tensor& c) override;
  torch::nn::Module& module() override { return *vae_; }
  std::vector<int64_t> latent_sizes() const override { return {vae_->latent_dim()}; }
  int64_t condition_dim() const override { return vae_->options.condition_dim(); }
  std::string describe() const override;
  Vae& vae() { return vae_; }

 private:
  Vae vae_;
};

/// The importance-weighted bound of Burda et al. 2015 (eq. 8), one value per
/// example:
/// \f[ \mathcal{L}_k(x) = \log \frac1k \sum_{i=1}^k w_i
///     = \mathrm{logsumexp}_i(\log w_i) - \log k, \f]
/// computed from the log-weights in log space. Differentiable: its gradient
/// is \f$\sum_i \tilde w_i \nabla \log w_i\f$ with the normalised weights
/// \f$\tilde w_i = w_i / \sum_j w_j\f$ (Burda et al. eq. 14; seed 002 eq. 8).
/// k = 1 is the one-sample ELBO. [B].
torch::Tensor iwae_bound(LatentModel& model, const torch::Tensor& x_in, const torch::Tensor& x,
                         const torch::Tensor& c, int64_t k);

/// What a training step maximises.
enum class Objective {
  kElbo,  ///< log p(x|h) - beta KL with one sample (KW2013; Higgins et al. 2017 for beta != 1)
  kIwae,  ///< the k-sample bound iwae_bound (Burda et al. 2015)
};
Objective parse_objective(const std::string& name);  ///< elbo | iwae
std::string to_string(Objective o);

/// The objective's settings.
struct ObjectiveOptions {
  Objective objective = Objective::kElbo;
  double beta = 1.0;  ///< kElbo only
  int64_t k = 1;      ///< kIwae only: importance samples per example
};

/// The minibatch loss, a scalar: the mean over the batch of minus the
/// objective. `x_in` is what the encoder sees (corrupted for a DVAE).
torch::Tensor objective_loss(LatentModel& model, const ObjectiveOptions& objective,
                             const torch::Tensor& x_in, const torch::Tensor& x,
                             const torch::Tensor& c);

/// Evaluations of a trained model (in eval mode, without gradients): every
/// function below checks the stop flag between batches (cli.h) and throws
/// Interrupted.

/// The one-sample ELBO and its terms on every example of x [N, D] (clean
/// input: the encoder sees x itself), accumulated in float64.
SetMetrics evaluate_latent_elbo(LatentModel& model, const torch::Tensor& x, const torch::Tensor& c,
                                int64_t batch_size = 500);

/// Per-example importance-sampled estimates of log p(x) (or of log p(x | c)
/// for a conditional model) with K samples from q(h | x), the log-weights
/// in float64 and a running log-sum-exp over chunks of at most
/// `max_chunk_elements` decoder outputs, and the delta-method Monte Carlo
/// standard error sqrt((mean w^2 / (mean w)^2 - 1) / K), computed in log
/// space (as estimators.h). With K = 50 on an IWAE this is its training
/// bound; with K = 5000 the estimator of Burda et al. 2015 section 5.
LogMarginalEstimate importance_sampled_latent(LatentModel& model, const torch::Tensor& x,
                                              const torch::Tensor& c, int64_t k,
                                              int64_t batch_size = 100,
                                              int64_t max_chunk_elements = int64_t{1} << 22);

/// The marginal log p(x) of a conditional model with a uniform prior over
/// the `num_classes` labels,
/// [ \log p(x) = \log rac1C \sum_{y=1}^{C} p(x \mid y), ]
/// each p(x | y) estimated by importance sampling with K samples from
/// q(h | x, y): a stochastic lower bound (Jensen) that makes a CVAE's number
/// comparable with an unconditional model's. Costs C times
/// importance_sampled_latent. The standard error is the largest label's
/// term's (an upper bound on the mixture's relative error). [N] float64.
LogMarginalEstimate label_marginal_log_px(LatentModel& model, const torch::Tensor& x,
                                          ConditionEncoding encoding, int64_t num_classes,
                                          int64_t k, int64_t batch_size = 100);

/// Active units of every stochastic layer (Burda et al. 2015 section 5.2:
/// unit j is active when Cov_x(E_q[h_j | x]) > threshold), over x [N, D].
struct LayerActivity {
  std::vector<double> activity;  ///< [Z_l] Cov_x(E_q[h_j | x]), float64
  int64_t active_units = 0;
};
std::vector<LayerActivity> latent_activity(LatentModel& model, const torch::Tensor& x,
                                           const torch::Tensor& c, double threshold = 1e-2,
                                           int64_t batch_size = 1000);

}  // namespace vaerepro
