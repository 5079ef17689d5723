#pragma once
/// \file fused_optim.h
/// Adagrad, Adam and SGD as one fused update over a flat parameter buffer.
///
/// torch::optim runs four to eight tensor operations per parameter per step
/// (each a dispatch, most an allocation and a pass over memory); for a
/// 784-500-20 VAE that is 40-80 small operations, 11-14% of a CPU step. This
/// optimizer moves the parameters into one contiguous buffer (each parameter
/// becomes a view of it with its own memory layout, so an input-major weight
/// stays input major; the module's own tensors are re-pointed, so nothing
/// else changes) and keeps its state in buffers of the same layout. On the CPU
/// a step is one parallel loop over that buffer that reads each gradient once
/// and writes parameter and state once. Elsewhere (CUDA) it runs
/// torch::optim's exact sequence of tensor operations on the flat views.
///
/// The mathematics is torch::optim's (LibTorch 1.13 and 2.x C++ frontend),
/// term for term and in float:
///  - Adagrad (Duchi et al. 2011; torch/csrc/api/src/optim/adagrad.cpp):
///    g <- g + wd p;  s <- s + g^2;  p <- p - lr_t g / (sqrt(s) + eps),
///    lr_t = lr / (1 + (t - 1) lr_decay);
///  - Adam (Kingma & Ba 2015, Algorithm 1; .../optim/adam.cpp):
///    g <- g + wd p;  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
///    p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps);
///  - SGD without momentum: p <- p - lr (g + wd p).
/// tests/fused_optim_test.cpp checks each against torch::optim over several
/// steps, with and without weight decay.
///
/// Gradients are read from each parameter's .grad(), which the trainer resets
/// to undefined before backward (so autograd hands over its fresh gradient
/// instead of adding it into a zeroed one). A parameter whose gradient is
/// undefined is skipped, its state and step count untouched, as torch::optim
/// does. The learning rate is read from param_groups()[0].options() at every
/// step, so set_lr() works as with torch::optim.
///
/// The step count lives on the host (one counter per parameter, as
/// torch::optim's state). A CUDA-graph-captured step would need it on the
/// device; that path is not written (see the note in trainer.h).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace vaerepro {

/// Settings of the fused optimizer; names and defaults as torch::optim's.
struct FusedOptimizerOptions {
  enum class Kind { kAdagrad, kAdam, kSgd };
  Kind kind = Kind::kAdagrad;
  double lr = 0.01;
  double weight_decay = 0.0;
  double eps = -1;        ///< < 0: torch's default (Adagrad 1e-10, Adam 1e-8)
  double lr_decay = 0.0;  ///< Adagrad only
  double beta1 = 0.9;     ///< Adam only
  double beta2 = 0.999;   ///< Adam only
};

/// A torch::optim::Optimizer whose parameters and state live in flat buffers.
class FusedOptimizer : public torch::optim::Optimizer {
 public:
  /// Moves `params` (all of one dtype and device) into a flat buffer; each
  /// tensor keeps its identity, shape and values, and becomes a view of it.
  /// Throws std::invalid_argument when the parameters are empty, of mixed
  /// dtype or device, or appear twice.
  FusedOptimizer(std::vector<torch::Tensor> params, const FusedOptimizerOptions& options);

  torch::Tensor step(LossClosure closure = nullptr) override;

  /// The whole state (step counts and buffers) and the options, under keys
  /// of this optimizer's own; load() checks the layout (sizes) matches. The
  /// buffers are saved with each parameter's part in its logical order, so
  /// a file does not depend on the parameters' memory layouts.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  const FusedOptimizerOptions& fused_options() const { return options_; }
  /// The flat parameter buffer; parameters are views of it, each starting
  /// on a 64-byte boundary (the gaps are zero and never updated).
  const torch::Tensor& flat_parameters() const { return flat_params_; }
  /// Adagrad: the running sum of squared gradients; Adam: the first moment.
  const torch::Tensor& flat_state1() const { return state1_; }
  /// Adam: the second moment; undefined otherwise.
  const torch::Tensor& flat_state2() const { return state2_; }
  /// Steps taken by parameter i (in the order given).
  int64_t step_count(size_t i) const { return segments_.at(i).steps; }

 private:
  struct Segment {
    torch::Tensor param;  ///< the user's tensor (a view of flat_params_)
    int64_t offset = 0;
    int64_t numel = 0;
    int64_t steps = 0;
    std::vector<int64_t> sizes, strides;  ///< its layout in the buffers, fixed at construction
    torch::Tensor in(const torch::Tensor& flat) const {
      return flat.as_strided(sizes, strides, offset);
    }
  };
  void step_cpu_float(double lr);
  void step_generic(double lr);
  /// A state buffer with each parameter's part in logical order (as saved).
  torch::Tensor canonical(const torch::Tensor& flat) const;
  /// The inverse: `saved` (logical order) into `flat` (each parameter's layout).
  void from_canonical(torch::Tensor& flat, const torch::Tensor& saved) const;

  FusedOptimizerOptions options_;
  torch::Tensor flat_params_, state1_, state2_;
  std::vector<Segment> segments_;
};

/// "adagrad" | "adam" | "sgd" -> the kind; throws std::invalid_argument.
FusedOptimizerOptions::Kind parse_fused_kind(const std::string& name);

}  // namespace vaerepro
