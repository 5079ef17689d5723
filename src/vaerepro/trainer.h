#pragma once
/// \file trainer.h
/// Training a VAE by minibatch stochastic gradient on the (beta-)ELBO, with
/// bounds computed on whole sets at points spaced by training samples seen.
///
/// Shapes: B = batch, D = pixels, N = examples.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/checkpoint.h"
#include "vaerepro/loop.h"
#include "vaerepro/mlp_step.h"
#include "vaerepro/models.h"
#include "vaerepro/protocol.h"

namespace vaerepro {

/// Which optimizer, and its settings.
struct OptimizerOptions {
  std::string name = "adagrad";  ///< adagrad | adam | sgd
  double lr = 0.02;              ///< seed 000 / KW2013's step for MNIST
  /// L2 weight decay added to the per-example loss's gradient. KW2013's
  /// N(0, I) prior on the weights corresponds to 1 / (training set size).
  double weight_decay = 0.0;
  /// One fused update over a flat parameter buffer (fused_optim.h), the same
  /// mathematics as torch::optim's; false: torch::optim itself.
  bool fused = true;
  nlohmann::json to_json() const;
};

/// Builds the optimizer over `params`: a FusedOptimizer (fused_optim.h; the
/// parameters move into its flat buffer) or, with o.fused false,
/// torch::optim's. Throws std::invalid_argument for an unknown name.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                                        const OptimizerOptions& o);

/// Means over a whole set, accumulated in float64.
struct SetMetrics {
  double elbo = 0;            ///< nats per example (summed over pixels)
  double log_likelihood = 0;  ///< E_q log p(x|z), one sample per example
  double kl = 0;              ///< KL(q(z|x) || p(z))
  int64_t examples = 0;
  nlohmann::json to_json() const;
  /// The inverse of to_json (exact: doubles round-trip).
  static SetMetrics from_json(const nlohmann::json& j);
};

/// The ELBO on every example of `x` [N, D] (one z sample each), in batches.
SetMetrics evaluate_elbo(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& condition,
                         int64_t batch_size = 1000);

/// One evaluation along training.
struct CurvePoint {
  int64_t samples_seen = 0;
  double epochs = 0;
  SetMetrics train, test;
  nlohmann::json extra;     ///< what TrainOptions::evaluate_extra returned (or null)
  double wall_seconds = 0;  ///< since the start of training
  /// samples_seen, epochs, train, test, extra, wall_seconds.
  nlohmann::json to_json() const;
  /// The inverse of to_json (exact: doubles round-trip).
  static CurvePoint from_json(const nlohmann::json& j);
};

/// What to train and when to look.
struct TrainOptions {
  int64_t total_samples = 0;     ///< training examples to process (epochs x N)
  int64_t batch_size = 100;      ///< KW2013: M = 100
  double beta = 1.0;             ///< weight on the KL (1 = the VAE)
  std::vector<int64_t> eval_at;  ///< samples-seen marks for whole-set bounds
  int64_t eval_batch = 1000;
  ConditionEncoding condition = ConditionEncoding::kNone;
  std::string label;            ///< prefix of the progress line
  double progress_seconds = 5;  ///< between progress lines (<= 0: none)
  /// Called at every evaluation mark (the model in eval mode, no gradient
  /// state touched) for chapter-specific estimates; its time counts as
  /// evaluation time.
  std::function<nlohmann::json(VaeImpl&)> evaluate_extra;
  /// Checkpoints (checkpoint.h): when enabled, the run resumes from a
  /// matching checkpoint, saves one at these intervals, on SIGINT/SIGTERM and
  /// when it ends; a complete one is returned as is, without training.
  CheckpointOptions checkpoint;
  /// The MLP VAE's step written out by hand (mlp_step.h) when the model is
  /// one it is written for; false, or another model: autograd's step
  /// (train_step). The same mathematics; which one ran is in
  /// TrainResult::step.
  bool hand_written_step = true;
  /// Its choices (the sparse first layer for binary batches).
  MlpStepOptions hand_step_options;
};

/// The outcome of a training run.
struct TrainResult {
  std::vector<CurvePoint> curve;
  int64_t samples_seen = 0;
  double train_seconds = 0;  ///< optimisation only
  double eval_seconds = 0;   ///< whole-set evaluations
  /// Samples seen at each resumption from a checkpoint (empty: one go).
  std::vector<int64_t> resumed_at;
  /// Which step trained the model: "hand-written" (mlp_step.h), followed by
  /// "; first layer as sparse row sums ..." when binary batches took that
  /// path (mlp_step.h), or "autograd" followed by the reason the
  /// hand-written one was not used.
  std::string step;
};

/// Trains `vae` with `optimizer` on data.train, evaluating the ELBO on
/// data.train_eval and data.test at every mark of options.eval_at (and at
/// the end), in the suite's one training loop (loop.h: checkpoints, the stop
/// flag, NaN checks from a device-side history read every kLossCheckSteps
/// steps). Stops with std::runtime_error (which term, which step, the
/// learning rate) if the loss becomes NaN or infinite; a checkpoint is only
/// written from a finite state, so the last good one is kept. Checks the stop
/// flag (stop.h) after every step: when set, saves a checkpoint (if enabled)
/// and throws Interrupted.
///
/// The step is MlpVaeStep (mlp_step.h: forward and backward written out, no
/// autograd, no per-step allocation) for the models it is written for, and
/// otherwise train_step, itself written for speed: gradients are reset to
/// undefined rather than zeroed (autograd hands its buffers over), the loss is
/// training_loss() (fused sample+KL and Bernoulli nodes), and each step writes
/// its two sums into the loop's device-side history. On CUDA nothing in the
/// step waits for the device. Not done: capturing the step in a CUDA graph
/// (FusedOptimizer keeps its step counts on the host, so a captured Adam would
/// need them moved to the device first) and training K same-shape models as
/// one.
TrainResult train_vae(VaeImpl& vae, torch::optim::Optimizer& optimizer, const TensorData& data,
                      const TrainOptions& options);

/// One optimisation step on the minibatch x [B, D] (c [B, C] or undefined):
/// gradients reset, training_loss, backward, optimizer step. Writes
/// [sum log p(x|z), sum KL] over the batch into `sums_out` [2] (a view of the
/// trainer's history; undefined: not written). No host synchronisation.
void train_step(VaeImpl& vae, const std::vector<torch::Tensor>& params,
                torch::optim::Optimizer& optimizer, const torch::Tensor& x, const torch::Tensor& c,
                double beta, torch::Tensor sums_out);

/// `count` marks from `first` to `last` evenly spaced in log(samples),
/// rounded to multiples of `step`, strictly increasing, `last` included.
std::vector<int64_t> log_spaced_marks(int64_t first, int64_t last, int64_t count, int64_t step = 1);

/// The suite's schedule for a model trained for `total_samples` in batches of
/// `batch_size`: `eval_points` whole-set evaluations log-spaced in samples
/// seen from max(batch_size, total_samples / 100) to the end, on batch
/// boundaries (log_spaced_marks); eval_points <= 0: only the final one.
TrainOptions training_schedule(int64_t total_samples, int64_t batch_size, int64_t eval_points);

}  // namespace vaerepro
