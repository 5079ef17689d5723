#pragma once
/// \file loop.h
/// One training loop for every model of the suite (the MLP VAE of
/// trainer.h, the VQ-VAE, its PixelCNN prior, the judging classifier): it
/// owns the data order (one permutation per epoch), the evaluation marks, the
/// progress lines, the checkpoints (checkpoint.h: every
/// CheckpointOptions::every_seconds, on SIGINT/SIGTERM, at the end), the stop
/// flag (stop.h) and the NaN checks; the model supplies its step behind
/// TrainStep. On the CPU with the same thread count a run stopped or killed
/// at any moment and resumed ends with bitwise the numbers of one that was
/// not (tests/loop_test.cpp, tests/fault_injection_test.cpp).
///
/// The loss never costs a host synchronisation per step: each step writes
/// its sums into a row of a small device-side history, which the host reads
/// every kLossCheckSteps steps (and at progress lines, marks, checkpoints and
/// the end), checking every row and naming the first non-finite term and its
/// step.
///
/// Shapes: B = batch, N = training examples, T = the step's terms.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/checkpoint.h"

namespace vaerepro {

/// Steps between the host's reads of the loss history (NaN checks).
constexpr int64_t kLossCheckSteps = 64;

/// Everything a training loop has done, besides the model, the optimizer,
/// the epoch's permutation and the generators (which travel as tensors in
/// TrainingSnapshot). Its JSON is a checkpoint's progress. The loss history
/// is not part of it: it is read and checked before every save, so a saved
/// state has none pending (the next unread step is step + 1).
struct LoopState {
  bool complete = false;  ///< trained to the end (a rerun reuses it)
  int64_t samples_seen = 0;
  int64_t step = 0;       ///< optimisation steps taken
  int64_t epoch = 0;      ///< permutations drawn (the current epoch, 1-based; 0 before the first)
  int64_t position = 0;   ///< the next example's place in the current permutation
  int64_t next_mark = 0;  ///< index of the first evaluation mark not reached
  std::vector<double> running;  ///< per term, sums of per-step means since the last progress line
  int64_t running_steps = 0;
  std::vector<double> window;  ///< per term, sums over the examples since the previous mark
  int64_t window_examples = 0;
  int64_t window_steps = 0;         ///< steps since the previous mark
  double elapsed_seconds = 0;       ///< training and evaluation, over every session of the run
  double eval_seconds = 0;          ///< evaluation at the marks
  std::vector<int64_t> resumed_at;  ///< samples seen at each resumption
  nlohmann::json curve = nlohmann::json::array();  ///< the rows TrainStep::evaluate returned
  nlohmann::json identity =
      nlohmann::json::object();  ///< must match for a checkpoint to be resumed
  nlohmann::json step_state = nlohmann::json::object();  ///< TrainStep::save_state's values
  nlohmann::json summary;  ///< TrainStep::summary() at the end (null before)

  /// Training time: elapsed_seconds - eval_seconds.
  double train_seconds() const { return elapsed_seconds - eval_seconds; }
  /// Every field by name; doubles round-trip exactly.
  nlohmann::json to_json() const;
  /// The inverse of to_json. Throws std::runtime_error naming a missing or
  /// mistyped field.
  static LoopState from_json(const nlohmann::json& j);
};

/// What the loop knows at an evaluation mark.
struct Mark {
  int64_t samples_seen = 0;
  int64_t step = 0;
  double epochs = 0;           ///< samples_seen / N
  std::vector<double> window;  ///< per term, sums over the examples since the previous mark
  int64_t window_examples = 0;
  int64_t window_steps = 0;  ///< steps since the previous mark
  std::string kept_note;     ///< where the last good checkpoint is (for an error message)
};

/// One step's row of the history, as the host reads it.
struct StepRow {
  const double* sums = nullptr;  ///< [T] the batch sums the step wrote
  int64_t batch = 0;             ///< B
  int64_t step = 0;              ///< 1-based
  int64_t samples_seen = 0;      ///< after this step
  int64_t epoch = 0;             ///< 1-based
};

/// The model-specific part of a training loop: one optimisation step, what
/// a checkpoint holds of the model, and what is evaluated at a mark. The
/// loop calls step() for every minibatch and the other methods at marks,
/// history reads, progress lines and saves; none is called concurrently.
class TrainStep {
 public:
  virtual ~TrainStep() = default;
  /// The quantities step() sums over the batch, in words without an
  /// article ("reconstruction term", "KL term"): a non-finite one is named.
  virtual std::vector<std::string> terms() const = 0;
  /// The history's type: float64 where the sums must add up on the host
  /// exactly as a per-step read would.
  virtual torch::Dtype history_dtype() const { return torch::kFloat; }
  /// The step's own configuration (e.g. beta): a checkpoint with another is
  /// not resumed from.
  virtual nlohmann::json identity() const { return nlohmann::json::object(); }
  /// One optimisation step on the training examples `idx` [B] (indices on
  /// the data's device): writes the batch sums of terms() into `sums` [T] (a
  /// row of the loop's history, history_dtype()). Must not wait for the
  /// device.
  virtual void step(const torch::Tensor& idx, torch::Tensor sums) = 0;
  /// The model a checkpoint saves: its parameters and its buffers, so that
  /// state a model updates during training outside the optimizer (an EMA
  /// codebook's sums, usage counts, running statistics) resumes with it.
  virtual torch::nn::Module& model() = 0;
  /// The optimizer (its learning rate is quoted in error messages).
  virtual torch::optim::Optimizer& optimizer() = 0;
  /// Its state in a checkpoint (default: its own save/load).
  virtual OptimizerState optimizer_state() { return OptimizerState::of(optimizer()); }
  /// Checks a step whose sums are finite (the loop has checked that):
  /// throws std::runtime_error to stop the run, e.g. when the loss exploded.
  virtual void check(const StepRow& /*row*/) {}
  /// The curve's row at `mark` (the model's own fields; the loop adds
  /// samples_seen, epochs and wall_seconds), or null for no row. The
  /// generators are restored afterwards, so evaluating never changes the
  /// model that trains; the model must be left in training mode.
  virtual nlohmann::json evaluate(const Mark& /*mark*/) { return nullptr; }
  /// The progress line's words for the per-step means since the last line
  /// ("minibatch ELBO -98.12 (rec -90.1, KL 8.02)").
  virtual std::string describe(const std::vector<double>& means) const = 0;
  /// What to do about a non-finite loss ("Lower --lr, or check the data for NaN.").
  virtual std::string advice() const { return "Lower --lr, or check the data for NaN."; }
  /// State of the step itself (neither model, optimizer nor loop): values
  /// and tensors for a checkpoint, and back.
  virtual void save_state(nlohmann::json& /*values*/,
                          std::map<std::string, torch::Tensor>& /*tensors*/) const {}
  virtual void load_state(const nlohmann::json& /*values*/,
                          const std::map<std::string, torch::Tensor>& /*tensors*/) {}
  /// What the step reports at the end; kept in the complete checkpoint, so a
  /// rerun that reuses it reports the same.
  virtual nlohmann::json summary() const { return nullptr; }
};

/// How long, in what order and when to look.
struct LoopOptions {
  int64_t total_samples = 0;  ///< training examples to process (epochs x N)
  int64_t batch_size = 100;
  /// Every step a full minibatch: an epoch's remainder (N mod B) is dropped
  /// and the next permutation begins, as a DataLoader with drop_last (a set
  /// smaller than B is one minibatch). False: an epoch's last minibatch is
  /// its remainder.
  bool drop_last = true;
  /// Samples-seen marks at which TrainStep::evaluate runs (sorted and made
  /// unique; those outside (0, total_samples] dropped).
  std::vector<int64_t> marks;
  std::string label;            ///< prefix of every line and message
  double progress_seconds = 5;  ///< between progress lines on stderr (<= 0: none)
  /// When enabled, the run resumes from a matching checkpoint, saves one at
  /// these intervals, on SIGINT/SIGTERM and at the end; a complete one is
  /// returned as is, without training.
  CheckpointOptions checkpoint;
};

/// The loop: run() trains `step` on `train_examples` examples of `device`
/// as LoopOptions says.
///
/// Fault injection (tests): with VAEREPRO_FAULT_STOP_STEP=N in the
/// environment (read when the loop is made), the stop flag is raised as by
/// SIGTERM right after the run's N-th step (counted over every session, so
/// a resumed run passes it by).
class TrainingLoop {
 public:
  TrainingLoop(TrainStep& step, int64_t train_examples, torch::Device device, LoopOptions options);

  /// Trains to the end and returns the state (its curve, timings, resumptions).
  /// A stop asked before the first step of this call stops it at once
  /// (Interrupted, nothing trained, nothing saved). With a complete checkpoint, loads it (model,
  /// optimizer, generators as after training) and returns its state without training. Throws
  /// Interrupted (stop.h) when the stop flag is set after a step before the
  /// end (after saving, when checkpoints are enabled), std::runtime_error
  /// (which term, which step, the learning rate, the last good checkpoint)
  /// when the loss or the parameters become non-finite; a checkpoint is only
  /// written from a finite state.
  const LoopState& run();

 private:
  using Clock = std::chrono::steady_clock;
  bool resume();
  torch::Tensor next_batch();
  void after_step();
  void read_history();
  void fail_nonfinite(const StepRow& row) const;
  void evaluate();
  void print_progress(Clock::time_point now);
  void save(bool complete);
  void save_or_stop();
  double elapsed() const;
  std::string kept_note() const;
  void clear_line() const;

  TrainStep& step_;
  const int64_t n_;
  const torch::Device device_;
  LoopOptions options_;
  std::vector<int64_t> marks_;
  std::vector<std::string> terms_;
  LoopState state_;
  torch::Tensor perm_;     ///< [N] the current epoch's order (undefined before the first)
  torch::Tensor history_;  ///< [kLossCheckSteps, T] on the device
  struct Pending {
    int64_t batch, epoch;
  };
  std::vector<Pending> pending_;  ///< the history's rows not yet read
  double elapsed_before_ = 0;     ///< elapsed_seconds of earlier sessions
  Clock::time_point start_, last_print_, last_save_;
  int64_t saved_at_ = -1, last_save_step_ = 0;  ///< samples seen / step of the last good checkpoint
  bool tty_ = false;
  int64_t fault_stop_step_ = 0;  ///< VAEREPRO_FAULT_STOP_STEP (0: none)
};

/// The learning rate of the optimizer's first parameter group.
double current_lr(torch::optim::Optimizer& optimizer);

}  // namespace vaerepro
