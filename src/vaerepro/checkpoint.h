#pragma once
/// \file checkpoint.h
/// Training that survives a kill: a checkpoint file holds everything a
/// training loop needs to go on exactly where it stopped (model parameters
/// and buffers, optimizer state, the CPU and CUDA generator states, the
/// epoch's data order, counters, the partial curve and timings), written
/// atomically (temporary file, fsync, rename) so that a kill at any moment
/// leaves either the previous checkpoint or the new one, never a torn file.
///
/// A checkpoint carries the hash of the effective configuration that made it
/// (points.h: config_hash); one with another hash is never resumed from.
/// Every training loop uses this through TrainingLoop (loop.h), whose state
/// travels in TrainingSnapshot::progress; how a chapter wires it is in
/// chapter.h (RunCheckpoints) and chapters/README.md.
///
/// Determinism: on the CPU with the same thread count, a run resumed from a
/// checkpoint gives bitwise the numbers of an uninterrupted run with the same
/// seed (tests/checkpoint_test.cpp, tests/fault_injection_test.cpp); on CUDA
/// the generator states are restored too, but cuBLAS/cuDNN reductions are not
/// bitwise deterministic, so a resumed run agrees within run-to-run noise.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace vaerepro {

/// Where and how often a training loop saves its state.
struct CheckpointOptions {
  std::string path;  ///< the checkpoint file; empty: no checkpoints
  std::string
      config_hash;  ///< hash of the effective configuration; a file with another is not used
  double every_seconds = 60;  ///< wall time between saves (<= 0: none by time)
  int64_t every_steps = 0;    ///< also after this many steps (0: none by steps)
  bool enabled() const { return !path.empty(); }
};

/// What a checkpoint needs of an optimizer: its state out and back in. For a
/// torch::optim::Optimizer, its own save/load (of() below); a custom
/// optimizer (e.g. one over a flat parameter buffer) supplies its own pair.
struct OptimizerState {
  std::function<void(torch::serialize::OutputArchive&)> save;
  std::function<void(torch::serialize::InputArchive&)> load;
  static OptimizerState of(torch::optim::Optimizer& optimizer);
};

/// The state of a training loop besides model and optimizer.
struct TrainingSnapshot {
  nlohmann::json progress;    ///< counters, partial curve, timings (the loop's own format)
  torch::Tensor permutation;  ///< the epoch's data order (undefined before the first step)
  /// Other tensors of the loop's state by name (e.g. a step's accumulators
  /// on the device); names are letters, digits, '_' and '-'.
  std::map<std::string, torch::Tensor> tensors;
  torch::Tensor rng_cpu;   ///< the default CPU generator's state
  torch::Tensor rng_cuda;  ///< the default CUDA generator's state (CUDA runs only)
};

/// The default generators' states of `device` (and the CPU's) into `s`.
void capture_rng(TrainingSnapshot& s, const torch::Device& device);
/// Restores what capture_rng saved.
void restore_rng(const TrainingSnapshot& s, const torch::Device& device);

/// Writes model (parameters and buffers), optimizer state and `snapshot`
/// (whose progress gets "config_hash" and "format") to options.path,
/// atomically. Throws std::runtime_error naming the file on failure.
void save_checkpoint(const CheckpointOptions& options, const torch::nn::Module& model,
                     const OptimizerState& optimizer, TrainingSnapshot snapshot);

/// Reads options.path. Nothing when the file does not exist; a message on
/// stderr (prefixed by `label`) and nothing when it cannot be read, was
/// written in another format (an older vaerepro), carries another
/// configuration hash, or a progress field named in `expect`
/// differs: the run then starts afresh and overwrites it. Otherwise loads the
/// parameters and buffers into `model` (copying into the existing tensors),
/// the optimizer state, and returns the snapshot. Throws std::runtime_error
/// (naming the file and how to start afresh) when a matching checkpoint does
/// not fit the model.
std::optional<TrainingSnapshot> load_checkpoint(
    const CheckpointOptions& options, torch::nn::Module& model, const OptimizerState& optimizer,
    const nlohmann::json& expect = nlohmann::json::object(), const std::string& label = "");

/// True when every parameter of `model` is finite (a checkpoint is only
/// written from a finite model: the last good one is kept).
bool parameters_finite(const torch::nn::Module& model);

}  // namespace vaerepro
