#pragma once
/// \file latent_train.h
/// Training any LatentModel (latent_model.h) by minibatch stochastic
/// gradient on its objective (ELBO, beta-ELBO, IWAE-k), optionally on
/// corrupted inputs (a denoising VAE): a TrainStep on the suite's one
/// TrainingLoop (loop.h), which owns the data order, the marks, the progress
/// lines and the checkpoints, so that a killed run resumes where it stopped
/// with the numbers of one that was not. Chapter 7's MLP VAEs go through it
/// too, so every variant of the grid is trained by the same code.
///
/// Shapes: B = batch, D = pixels, N = examples.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/checkpoint.h"
#include "vaerepro/latent_model.h"
#include "vaerepro/protocol.h"

namespace vaerepro {

/// What to train and how.
struct LatentTrainOptions {
  int64_t total_samples = 0;  ///< training examples to process (epochs x N)
  int64_t batch_size = 100;   ///< KW2013 and seed 002: 100
  ObjectiveOptions objective;
  /// Salt-and-pepper noise level of a denoising VAE (corruption.h); 0: none.
  double corruption = 0.0;
  ConditionEncoding condition = ConditionEncoding::kNone;
  /// Samples-seen marks at which the test ELBO on the first `curve_examples`
  /// test points is recorded (the curve); the end is always recorded. The
  /// generators are restored after each, so the marks never change the model.
  std::vector<int64_t> eval_at;
  int64_t curve_examples = 1000;
  std::string label;             ///< prefix of the progress lines
  double progress_seconds = 10;  ///< between progress lines (<= 0: none)
  CheckpointOptions checkpoint;  ///< enabled: resume from it, save along the way and on a stop
};

/// One point of the training curve.
struct LatentCurvePoint {
  int64_t samples_seen = 0;
  double epochs = 0;
  double train_objective = 0;  ///< mean objective over the training examples since the last point
  double test_elbo = 0;        ///< one-sample ELBO on the first curve_examples test points
  double wall_seconds = 0;     ///< wall time so far (training and the marks' evaluations)
  nlohmann::json to_json() const;
};

/// The outcome of a training run.
struct LatentTrainResult {
  std::vector<LatentCurvePoint> curve;
  int64_t samples_seen = 0;
  double train_seconds = 0;         ///< wall time less the marks' evaluations
  std::vector<int64_t> resumed_at;  ///< samples seen at each resumption
  /// The curve as a CSV: samples_seen,epochs,train_objective,test_elbo,wall_seconds.
  std::string curve_csv() const;
  nlohmann::json curve_json() const;  ///< the curve's rows
};

/// Trains `model` with `optimizer` on data.train (data.train_batch: dynamic
/// binarisation resamples, the threshold protocol does not). Each epoch
/// visits the examples in a fresh random order (torch::randperm with the
/// default generator); an epoch's incomplete last minibatch is dropped.
/// Throws std::runtime_error naming the step and the objective when the loss
/// becomes NaN or infinite; on a stop signal saves a checkpoint (when
/// enabled) and throws Interrupted. A complete checkpoint is reused without
/// training. The model is left in eval mode.
LatentTrainResult train_latent_model(LatentModel& model, torch::optim::Optimizer& optimizer,
                                     const TensorData& data, const LatentTrainOptions& options);

}  // namespace vaerepro
