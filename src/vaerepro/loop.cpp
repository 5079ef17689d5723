#include "vaerepro/loop.h"
#include "vaerepro/time_ledger.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "vaerepro/compat.h"
#include "vaerepro/stop.h"

namespace vaerepro {

nlohmann::json LoopState::to_json() const {
  return {{"complete", complete},
          {"samples_seen", samples_seen},
          {"step", step},
          {"epoch", epoch},
          {"position", position},
          {"next_mark", next_mark},
          {"running", running},
          {"running_steps", running_steps},
          {"window", window},
          {"window_examples", window_examples},
          {"window_steps", window_steps},
          {"elapsed_seconds", elapsed_seconds},
          {"eval_seconds", eval_seconds},
          {"train_seconds", train_seconds()},
          {"resumed_at", resumed_at},
          {"curve", curve},
          {"identity", identity},
          {"step_state", step_state},
          {"summary", summary}};
}

LoopState LoopState::from_json(const nlohmann::json& j) {
  LoopState s;
  std::string key;
  try {
    auto take = [&](const char* k, auto& into) {
      key = k;
      into = j.at(k).get<std::decay_t<decltype(into)>>();
    };
    take("complete", s.complete);
    take("samples_seen", s.samples_seen);
    take("step", s.step);
    take("epoch", s.epoch);
    take("position", s.position);
    take("next_mark", s.next_mark);
    take("running", s.running);
    take("running_steps", s.running_steps);
    take("window", s.window);
    take("window_examples", s.window_examples);
    take("window_steps", s.window_steps);
    take("elapsed_seconds", s.elapsed_seconds);
    take("eval_seconds", s.eval_seconds);
    take("resumed_at", s.resumed_at);
    take("curve", s.curve);
    take("identity", s.identity);
    take("step_state", s.step_state);
    take("summary", s.summary);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("the training loop's state has no valid '" + key + "' (" + e.what() +
                             ")");
  }
  if (s.samples_seen < 0 || s.step < 0 || s.position < 0 || s.next_mark < 0 ||
      s.window.size() != s.running.size()) {
    throw std::runtime_error(
        "the training loop's state is inconsistent (negative counters or term counts differ)");
  }
  return s;
}

double current_lr(torch::optim::Optimizer& optimizer) {
  return optimizer.param_groups().front().options().get_lr();
}

namespace {

/// Saves the default generator of `device` (and the CPU's) and restores it.
class RngStateGuard {
 public:
  explicit RngStateGuard(const torch::Device& device) {
    cpu_ = compat::default_generator(torch::kCPU);
    cpu_state_ = compat::generator_state(cpu_);
    if (device.is_cuda()) {
      cuda_ = compat::default_generator(device);
      cuda_state_ = compat::generator_state(cuda_);
    }
  }
  ~RngStateGuard() {
    compat::set_generator_state(cpu_, cpu_state_);
    if (cuda_.defined()) compat::set_generator_state(cuda_, cuda_state_);
  }
  RngStateGuard(const RngStateGuard&) = delete;
  RngStateGuard& operator=(const RngStateGuard&) = delete;

 private:
  at::Generator cpu_, cuda_;
  at::Tensor cpu_state_, cuda_state_;
};

std::string human_duration(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%.0fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) % 3600) / 60);
  }
  return buf;
}

/// "both terms are", "the KL term is", "the codebook and the commitment terms are".
std::string which_terms(const std::vector<std::string>& bad, size_t total) {
  if (bad.size() == total && total == 2) return "both terms are";
  if (bad.size() == total && total > 2) return "every term is";
  std::string s;
  for (size_t i = 0; i < bad.size(); ++i) s += (i == 0 ? "the " : " and the ") + bad[i];
  return s + (bad.size() == 1 ? " is" : " are");
}

}  // namespace

TrainingLoop::TrainingLoop(TrainStep& step, int64_t train_examples, torch::Device device,
                           LoopOptions options)
    : step_(step),
      n_(train_examples),
      device_(device),
      options_(std::move(options)),
      terms_(step.terms()) {
  if (n_ < 1 || options_.batch_size < 1 || options_.total_samples < 1) {
    throw std::invalid_argument(options_.label +
                                ": a training loop needs at least one example, batch element and "
                                "sample to train on (got N = " +
                                std::to_string(n_) +
                                ", B = " + std::to_string(options_.batch_size) + ", " +
                                std::to_string(options_.total_samples) + " samples)");
  }
  marks_ = options_.marks;
  std::sort(marks_.begin(), marks_.end());
  marks_.erase(std::unique(marks_.begin(), marks_.end()), marks_.end());
  marks_.erase(std::remove_if(marks_.begin(), marks_.end(),
                              [&](int64_t m) { return m <= 0 || m > options_.total_samples; }),
               marks_.end());
  state_.running.assign(terms_.size(), 0.0);
  state_.window.assign(terms_.size(), 0.0);
  state_.identity = {{"total_samples", options_.total_samples},
                     {"batch_size", options_.batch_size},
                     {"drop_last", options_.drop_last},
                     {"train_examples", n_},
                     {"marks", marks_},
                     {"step", step_.identity()}};
  history_ = torch::zeros({kLossCheckSteps, static_cast<int64_t>(terms_.size())},
                          torch::TensorOptions().dtype(step_.history_dtype()).device(device_));
  tty_ = ::isatty(STDERR_FILENO) == 1;
  if (const char* at = std::getenv("VAEREPRO_FAULT_STOP_STEP")) fault_stop_step_ = std::atoll(at);
}

double TrainingLoop::elapsed() const {
  return elapsed_before_ + std::chrono::duration<double>(Clock::now() - start_).count();
}

std::string TrainingLoop::kept_note() const {
  const CheckpointOptions& ck = options_.checkpoint;
  if (!ck.enabled()) return "";
  if (saved_at_ < 0) return " No checkpoint of this model was written yet.";
  return " The last good checkpoint (" + std::to_string(saved_at_) + " samples) is kept in " +
         ck.path + ".";
}

void TrainingLoop::clear_line() const {
  if (tty_ && options_.progress_seconds > 0) std::cerr << "\r\033[K" << std::flush;
}

bool TrainingLoop::resume() {
  const CheckpointOptions& ck = options_.checkpoint;
  auto snap = load_checkpoint(ck, step_.model(), step_.optimizer_state(),
                              {{"identity", state_.identity}}, options_.label);
  if (!snap) return false;
  try {
    state_ = LoopState::from_json(snap->progress);
    if (state_.running.size() != terms_.size())
      throw std::runtime_error("it holds another number of loss terms");
    step_.load_state(state_.step_state, snap->tensors);
  } catch (const std::exception& e) {
    throw std::runtime_error(options_.label + ": the checkpoint " + ck.path +
                             " cannot be resumed from: " + e.what() +
                             " (delete it to train this model afresh)");
  }
  restore_rng(*snap, device_);
  perm_ = snap->permutation.defined() ? snap->permutation.to(device_) : torch::Tensor();
  elapsed_before_ = state_.elapsed_seconds;
  saved_at_ = state_.samples_seen;
  last_save_step_ = state_.step;
  if (state_.complete) {
    std::cerr << options_.label << ": already trained (" << ck.path << "), reusing it\n";
    return true;
  }
  state_.resumed_at.push_back(state_.samples_seen);
  std::cerr << options_.label << ": resuming from " << ck.path << " at " << state_.samples_seen
            << " of " << options_.total_samples << " samples (step " << state_.step << ")\n";
  return true;
}

torch::Tensor TrainingLoop::next_batch() {
  const int64_t b = options_.batch_size;
  int64_t& pos = state_.position;
  if (!perm_.defined() || pos >= n_ || (options_.drop_last && n_ >= b && n_ - pos < b)) {
    perm_ = torch::randperm(n_, torch::TensorOptions().dtype(torch::kLong).device(device_));
    pos = 0;
    ++state_.epoch;
  }
  const int64_t len = std::min({b, n_ - pos, options_.total_samples - state_.samples_seen});
  auto idx = perm_.narrow(0, pos, len);  // [B]
  pos += len;
  return idx;
}

const LoopState& TrainingLoop::run() {
  StageTimer stage_timer(stage::kTraining);
  start_ = Clock::now();
  if (resume() && state_.complete) return state_;
  if (const int stop = stop_signal()) {
    throw Interrupted(stop, options_.label + ": stopped by " + signal_name(stop) +
                                " before training (at " + std::to_string(state_.samples_seen) +
                                " of " + std::to_string(options_.total_samples) + " samples)");
  }
  start_ = last_print_ = last_save_ = Clock::now();
  while (state_.samples_seen < options_.total_samples) {
    const torch::Tensor idx = next_batch();
    step_.step(idx, history_.select(0, static_cast<int64_t>(pending_.size())));
    pending_.push_back({idx.size(0), state_.epoch});
    state_.samples_seen += idx.size(0);
    ++state_.step;
    after_step();
  }
  clear_line();
  state_.summary = step_.summary();
  state_.elapsed_seconds = elapsed();
  if (options_.checkpoint.enabled()) save(true);  // a complete checkpoint: a rerun reuses the model
  state_.complete = true;
  return state_;
}

void TrainingLoop::after_step() {
  const auto now = Clock::now();
  const size_t next = static_cast<size_t>(state_.next_mark);
  const bool at_mark = next < marks_.size() && state_.samples_seen >= marks_[next];
  const bool print =
      options_.progress_seconds > 0 &&
      std::chrono::duration<double>(now - last_print_).count() >= options_.progress_seconds;
  if (print || at_mark || static_cast<int64_t>(pending_.size()) == kLossCheckSteps ||
      state_.samples_seen >= options_.total_samples) {
    read_history();
  }
  if (print) print_progress(now);
  while (static_cast<size_t>(state_.next_mark) < marks_.size() &&
         state_.samples_seen >= marks_[static_cast<size_t>(state_.next_mark)]) {
    evaluate();
    ++state_.next_mark;
  }
  save_or_stop();
}

void TrainingLoop::read_history() {
  if (pending_.empty()) return;
  const auto rows = static_cast<int64_t>(pending_.size());
  auto h = history_.narrow(0, 0, rows).to(torch::kCPU, torch::kDouble).contiguous();  // [rows, T]
  const double* hp = h.data_ptr<double>();
  const size_t t = terms_.size();
  int64_t after = 0;  // samples of the rows after row i
  std::vector<int64_t> seen_at(pending_.size());
  for (size_t i = pending_.size(); i-- > 0;) {
    seen_at[i] = state_.samples_seen - after;
    after += pending_[i].batch;
  }
  for (size_t i = 0; i < pending_.size(); ++i) {
    const StepRow row{hp + i * t, pending_[i].batch,
                      state_.step - rows + 1 + static_cast<int64_t>(i), seen_at[i],
                      pending_[i].epoch};
    for (size_t k = 0; k < t; ++k) {
      if (!std::isfinite(row.sums[k])) fail_nonfinite(row);
    }
    step_.check(row);
    const double b = static_cast<double>(row.batch);
    for (size_t k = 0; k < t; ++k) {
      state_.running[k] += row.sums[k] / b;
      state_.window[k] += row.sums[k];
    }
    ++state_.running_steps;
    ++state_.window_steps;
    state_.window_examples += row.batch;
  }
  pending_.clear();
}

void TrainingLoop::fail_nonfinite(const StepRow& row) const {
  std::vector<std::string> bad;
  std::ostringstream values;
  const double b = static_cast<double>(row.batch);
  for (size_t k = 0; k < terms_.size(); ++k) {
    if (!std::isfinite(row.sums[k])) bad.push_back(terms_[k]);
    values << (k ? ", " : "") << terms_[k] << " " << row.sums[k] / b;
  }
  std::ostringstream os;
  os << options_.label << ": the training loss became non-finite at step " << row.step << " ("
     << row.samples_seen << " samples; " << which_terms(bad, terms_.size()) << " non-finite): mean "
     << values.str() << ", learning rate " << current_lr(step_.optimizer()) << ". "
     << step_.advice() << kept_note();
  throw std::runtime_error(os.str());
}

void TrainingLoop::evaluate() {
  StageTimer stage_timer(stage::kEvaluation);
  // Evaluation may draw its own random numbers; the generators are restored
  // afterwards, so how often and how much a run evaluates never changes the
  // model it trains.
  RngStateGuard rng_guard(device_);
  const auto e0 = Clock::now();
  Mark m;
  m.samples_seen = state_.samples_seen;
  m.step = state_.step;
  m.epochs = static_cast<double>(state_.samples_seen) / n_;
  m.window = state_.window;
  m.window_examples = state_.window_examples;
  m.window_steps = state_.window_steps;
  m.kept_note = kept_note();
  nlohmann::json row = step_.evaluate(m);
  state_.eval_seconds += std::chrono::duration<double>(Clock::now() - e0).count();
  if (!row.is_null()) {
    row["samples_seen"] = m.samples_seen;
    row["epochs"] = m.epochs;
    row["wall_seconds"] = elapsed();
    state_.curve.push_back(std::move(row));
  }
  std::fill(state_.window.begin(), state_.window.end(), 0.0);
  state_.window_examples = 0;
  state_.window_steps = 0;
}

void TrainingLoop::print_progress(Clock::time_point now) {
  std::vector<double> means(terms_.size());
  const double steps = static_cast<double>(std::max<int64_t>(1, state_.running_steps));
  for (size_t k = 0; k < means.size(); ++k) means[k] = state_.running[k] / steps;
  const double train_time = std::max(1e-9, elapsed() - state_.eval_seconds);
  const double rate = static_cast<double>(state_.samples_seen) / train_time;
  const double eta =
      static_cast<double>(options_.total_samples - state_.samples_seen) / std::max(rate, 1e-9);
  char line[256];
  std::snprintf(line, sizeof(line), "%s %.3g/%.3g samples (%.1f epochs)  %.0f samples/s  ETA %s  ",
                options_.label.c_str(), static_cast<double>(state_.samples_seen),
                static_cast<double>(options_.total_samples),
                static_cast<double>(state_.samples_seen) / n_, rate, human_duration(eta).c_str());
  std::cerr << (tty_ ? "\r\033[K" : "") << line << step_.describe(means) << (tty_ ? "" : "\n")
            << std::flush;
  last_print_ = now;
  std::fill(state_.running.begin(), state_.running.end(), 0.0);
  state_.running_steps = 0;
}

void TrainingLoop::save(bool complete) {
  read_history();  // every step since the last read is finite, or it throws
  if (!parameters_finite(step_.model())) {
    std::ostringstream os;
    os << options_.label << ": the parameters became non-finite by step " << state_.step << " ("
       << state_.samples_seen << " samples), learning rate " << current_lr(step_.optimizer())
       << ". " << step_.advice() << kept_note();
    throw std::runtime_error(os.str());
  }
  TrainingSnapshot snap;
  state_.step_state = nlohmann::json::object();
  step_.save_state(state_.step_state, snap.tensors);
  LoopState saved = state_;
  saved.complete = complete;
  if (!complete) saved.elapsed_seconds = elapsed();
  snap.progress = saved.to_json();
  snap.permutation = perm_;
  capture_rng(snap, device_);
  save_checkpoint(options_.checkpoint, step_.model(), step_.optimizer_state(), std::move(snap));
  saved_at_ = state_.samples_seen;
  last_save_step_ = state_.step;
  last_save_ = Clock::now();
}

void TrainingLoop::save_or_stop() {
  const CheckpointOptions& ck = options_.checkpoint;
  const bool more = state_.samples_seen < options_.total_samples;
  if (fault_stop_step_ > 0 && state_.step == fault_stop_step_) request_stop(SIGTERM);
  const int stop = stop_signal();
  if (ck.enabled() && more &&
      (stop != 0 ||
       (ck.every_seconds > 0 &&
        std::chrono::duration<double>(Clock::now() - last_save_).count() >= ck.every_seconds) ||
       (ck.every_steps > 0 && state_.step - last_save_step_ >= ck.every_steps))) {
    save(false);
  }
  if (stop != 0 && more) {
    clear_line();
    throw Interrupted(stop, options_.label + ": stopped by " + signal_name(stop) + " at " +
                                std::to_string(state_.samples_seen) + " of " +
                                std::to_string(options_.total_samples) + " samples" +
                                (ck.enabled() ? "; its checkpoint is saved in " + ck.path
                                              : " (no checkpoint: this run does not keep any)"));
  }
}

}  // namespace vaerepro
