#include "vaerepro/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "vaerepro/compat.h"
#include "vaerepro/cli.h"
#include "vaerepro/fused_optim.h"
#include "vaerepro/mlp_step.h"
#include "vaerepro/objectives.h"

#include <ATen/CPUGeneratorImpl.h>

namespace vaerepro {

nlohmann::json OptimizerOptions::to_json() const {
  return {{"name", name}, {"lr", lr}, {"weight_decay", weight_decay}, {"fused", fused}};
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                                        const OptimizerOptions& o) {
  if (o.fused) {
    FusedOptimizerOptions f;
    f.kind = parse_fused_kind(o.name);  // throws for an unknown name
    f.lr = o.lr;
    f.weight_decay = o.weight_decay;
    return std::make_unique<FusedOptimizer>(std::move(params), f);
  }
  if (o.name == "adagrad") {
    return std::make_unique<torch::optim::Adagrad>(
        params, torch::optim::AdagradOptions(o.lr).weight_decay(o.weight_decay));
  }
  if (o.name == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  }
  if (o.name == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).weight_decay(o.weight_decay));
  }
  throw std::invalid_argument("unknown optimizer '" + o.name + "' (expected adagrad, adam or sgd)");
}

nlohmann::json SetMetrics::to_json() const {
  return {{"elbo", elbo}, {"log_likelihood", log_likelihood}, {"kl", kl}, {"examples", examples}};
}

SetMetrics evaluate_elbo(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& condition,
                         int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = vae.is_training();
  vae.eval();
  const int64_t n = x.size(0);
  auto sums = torch::zeros({3}, x.options().dtype(torch::kDouble));  // [elbo, ll, kl]
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t len = std::min(batch_size, n - start);
    auto xb = x.narrow(0, start, len);                                          // [B, D]
    auto cb = condition.defined() ? condition.narrow(0, start, len) : torch::Tensor();
    auto t = elbo(vae, xb, cb);
    sums += torch::stack({t.elbo.to(torch::kDouble).sum(), t.log_likelihood.to(torch::kDouble).sum(),
                          t.kl.to(torch::kDouble).sum()});
  }
  vae.train(was_training);
  auto s = sums.cpu();
  const double* p = s.data_ptr<double>();
  return {p[0] / n, p[1] / n, p[2] / n, n};
}

std::vector<int64_t> log_spaced_marks(int64_t first, int64_t last, int64_t count, int64_t step) {
  std::vector<int64_t> marks;
  if (last <= 0) return marks;
  step = std::max<int64_t>(1, step);
  first = std::clamp<int64_t>(first, 1, last);
  count = std::max<int64_t>(1, count);
  for (int64_t i = 0; i < count; ++i) {
    double t = count == 1 ? 1.0 : static_cast<double>(i) / (count - 1);
    double v = std::exp(std::log(static_cast<double>(first)) +
                        t * (std::log(static_cast<double>(last)) - std::log(static_cast<double>(first))));
    int64_t m = std::max<int64_t>(step, static_cast<int64_t>(std::llround(v / step)) * step);
    m = std::min(m, last);
    if (marks.empty() || m > marks.back()) marks.push_back(m);
  }
  if (marks.back() != last) marks.push_back(last);
  return marks;
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

double current_lr(torch::optim::Optimizer& opt) {
  auto& group = opt.param_groups().front();
  return group.options().get_lr();
}

// Which terms of the bound are not finite, in words ("the KL term").
std::string nonfinite_terms(double reconstruction, double kl) {
  std::string which;
  if (!std::isfinite(reconstruction)) which = "the reconstruction term";
  if (!std::isfinite(kl)) which += std::string(which.empty() ? "" : " and ") + "the KL term";
  return which.empty() ? "the ELBO" : which;
}

// A curve as it travels in a checkpoint (every double round-trips exactly).
nlohmann::json curve_to_checkpoint(const std::vector<CurvePoint>& curve) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& p : curve) {
    rows.push_back({{"samples_seen", p.samples_seen}, {"epochs", p.epochs}, {"train", p.train.to_json()},
                    {"test", p.test.to_json()}, {"extra", p.extra}, {"wall_seconds", p.wall_seconds}});
  }
  return rows;
}

SetMetrics metrics_from_json(const nlohmann::json& j) {
  return {j.at("elbo").get<double>(), j.at("log_likelihood").get<double>(), j.at("kl").get<double>(),
          j.at("examples").get<int64_t>()};
}

std::vector<CurvePoint> curve_from_checkpoint(const nlohmann::json& rows) {
  std::vector<CurvePoint> curve;
  for (const auto& r : rows) {
    CurvePoint p;
    p.samples_seen = r.at("samples_seen").get<int64_t>();
    p.epochs = r.at("epochs").get<double>();
    p.train = metrics_from_json(r.at("train"));
    p.test = metrics_from_json(r.at("test"));
    p.extra = r.at("extra");
    p.wall_seconds = r.at("wall_seconds").get<double>();
    curve.push_back(p);
  }
  return curve;
}

}  // namespace

void train_step(VaeImpl& vae, const std::vector<torch::Tensor>& params,
                torch::optim::Optimizer& optimizer, const torch::Tensor& x, const torch::Tensor& c,
                double beta, torch::Tensor sums_out) {
  // Undefined rather than zeroed: autograd then hands over the gradient it
  // computed instead of adding it into a zeroed buffer (one pass and one
  // operation less per parameter); the optimizers read the same values.
  for (const auto& p : params) p.mutable_grad().reset();
  auto t = training_loss(vae, x, c, beta);
  t.loss.backward();
  optimizer.step();
  if (sums_out.defined()) at::stack_out(sums_out, {t.log_likelihood, t.kl});
}

TrainResult train_vae(VaeImpl& vae, torch::optim::Optimizer& optimizer, const TensorData& data,
                      const TrainOptions& options) {
  using Clock = std::chrono::steady_clock;
  TORCH_CHECK(options.batch_size >= 1, "batch size must be >= 1");
  TORCH_CHECK(options.total_samples >= 1, "total samples must be >= 1");
  const int64_t n = data.train.size(0);
  const auto device = data.train.device();
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto train_condition = encode_condition(data.train_labels, options.condition, data.num_classes);
  auto eval_train_condition = train_condition;
  auto eval_test_condition = encode_condition(data.test_labels, options.condition, data.num_classes);

  std::vector<int64_t> marks = options.eval_at;
  marks.push_back(options.total_samples);
  std::sort(marks.begin(), marks.end());
  marks.erase(std::unique(marks.begin(), marks.end()), marks.end());
  marks.erase(std::remove_if(marks.begin(), marks.end(),
                             [&](int64_t m) { return m <= 0 || m > options.total_samples; }),
              marks.end());

  TrainResult result;
  auto t0 = Clock::now();
  auto last_print = t0;
  double eval_seconds = 0;
  size_t next_mark = 0;
  int64_t seen = 0, step = 0;
  torch::Tensor perm;
  int64_t pos = n;  // forces a fresh permutation at the start
  // Per-step [sum log p(x|z), sum KL] on the device; the host reads it every
  // kLossCheckSteps steps (and at progress lines and marks), not every step.
  auto history = torch::zeros({kLossCheckSteps, 2}, torch::TensorOptions().dtype(torch::kFloat).device(device));
  std::vector<int64_t> history_batch;  // batch size of each row
  int64_t history_first_step = 1;
  double running_elbo = 0, running_ll = 0, running_kl = 0;  // sums of per-step means since the last line
  int64_t running_steps = 0;

  // Checkpoints: resume from one of this configuration, if any (checkpoint.h).
  const CheckpointOptions& ck = options.checkpoint;
  const OptimizerState optimizer_state = OptimizerState::of(optimizer);
  int64_t saved_at = -1, last_save_step = 0;  // samples seen / step of the last good checkpoint
  if (auto snap = load_checkpoint(ck, vae, optimizer_state,
                                  {{"total_samples", options.total_samples}, {"batch_size", options.batch_size},
                                   {"beta", options.beta}, {"train_examples", n}},
                                  options.label)) {
    const auto& pr = snap->progress;
    restore_rng(*snap, device);
    seen = pr.at("samples_seen").get<int64_t>();
    step = last_save_step = pr.at("step").get<int64_t>();
    saved_at = seen;
    next_mark = pr.at("next_mark").get<size_t>();
    running_steps = pr.at("running_steps").get<int64_t>();
    running_elbo = pr.at("running_elbo").get<double>();
    running_ll = pr.at("running_ll").get<double>();
    running_kl = pr.at("running_kl").get<double>();
    history_first_step = step + 1;
    perm = snap->permutation.defined() ? snap->permutation.to(device) : torch::Tensor();
    pos = perm.defined() ? pr.at("position").get<int64_t>() : n;
    eval_seconds = pr.at("eval_seconds").get<double>();
    result.curve = curve_from_checkpoint(pr.at("curve"));
    result.resumed_at = pr.value("resumed_at", std::vector<int64_t>{});
    t0 -= std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(pr.at("elapsed_seconds").get<double>()));
    if (pr.value("complete", false)) {
      std::cerr << options.label << ": already trained (" << ck.path << "), reusing it\n";
      vae.train();
      result.samples_seen = seen;
      result.train_seconds = pr.at("train_seconds").get<double>();
      result.eval_seconds = eval_seconds;
      result.step = pr.value("step_path", std::string("unknown (an older checkpoint)"));
      return result;
    }
    result.resumed_at.push_back(seen);
    std::cerr << options.label << ": resuming from " << ck.path << " at " << seen << " of "
              << options.total_samples << " samples (step " << step << ")\n";
  }
  auto last_save = Clock::now();
  auto kept_note = [&]() -> std::string {
    if (!ck.enabled()) return "";
    if (saved_at < 0) return " No checkpoint of this model was written yet.";
    return " The last good checkpoint (" + std::to_string(saved_at) + " samples) is kept in " + ck.path + ".";
  };
  // The only host read of the loss: the steps since the last check, each
  // checked, the first non-finite one named with its terms.
  auto check_history = [&]() {
    if (history_batch.empty()) return;
    auto h = history.narrow(0, 0, static_cast<int64_t>(history_batch.size())).to(torch::kCPU, torch::kDouble);
    const double* hp = h.data_ptr<double>();
    for (size_t i = 0; i < history_batch.size(); ++i) {
      const double b = static_cast<double>(history_batch[i]);
      const double ll = hp[2 * i] / b, kl = hp[2 * i + 1] / b;
      if (!std::isfinite(ll) || !std::isfinite(kl)) {
        const std::string which = !std::isfinite(ll) && !std::isfinite(kl) ? "both terms are"
                                  : !std::isfinite(ll)                     ? "the reconstruction term is"
                                                                           : "the KL term is";
        std::ostringstream os;
        os << options.label << ": the training loss became non-finite at step "
           << history_first_step + static_cast<int64_t>(i) << " ("
           << seen - std::accumulate(history_batch.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                     history_batch.end(), int64_t{0})
           << " samples; " << which << " non-finite): mean ELBO " << ll - kl
           << ", reconstruction term " << ll << ", KL term " << kl << ", learning rate "
           << current_lr(optimizer) << ". Lower --lr, or check the data for NaN." << kept_note();
        throw std::runtime_error(os.str());
      }
      running_ll += ll;
      running_kl += kl;
      running_elbo += ll - kl;
      ++running_steps;
    }
    history_first_step = step + 1;
    history_batch.clear();
  };
  // Saves the loop's state; only a finite one (the last good checkpoint stays).
  auto save_now = [&](bool complete) {
    check_history();  // every step since the last check is finite, or it throws
    if (!parameters_finite(vae)) {
      std::ostringstream os;
      os << options.label << ": the parameters became non-finite by step " << step << " (" << seen
         << " samples), learning rate " << current_lr(optimizer) << ". Lower --lr." << kept_note();
      throw std::runtime_error(os.str());
    }
    TrainingSnapshot snap;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    snap.progress = {{"complete", complete}, {"samples_seen", seen}, {"step", step}, {"position", pos},
                     {"next_mark", next_mark}, {"running_steps", running_steps},
                     {"running_elbo", running_elbo}, {"running_ll", running_ll}, {"running_kl", running_kl},
                     {"total_samples", options.total_samples}, {"batch_size", options.batch_size},
                     {"beta", options.beta}, {"train_examples", n}, {"elapsed_seconds", elapsed},
                     {"eval_seconds", eval_seconds}, {"train_seconds", elapsed - eval_seconds},
                     {"curve", curve_to_checkpoint(result.curve)}, {"resumed_at", result.resumed_at},
                     {"step_path", result.step}};
    snap.permutation = perm;
    capture_rng(snap, device);
    save_checkpoint(ck, vae, optimizer_state, std::move(snap));
    saved_at = seen;
    last_save_step = step;
    last_save = Clock::now();
  };
  const auto params = vae.parameters();
  vae.train();
  std::unique_ptr<MlpVaeStep> hand_step;
  if (options.hand_written_step) {
    const std::string why = MlpVaeStep::unsupported_reason(vae);
    if (why.empty()) {
      hand_step = std::make_unique<MlpVaeStep>(vae, options.hand_step_options);
      result.step = "hand-written";
    } else {
      result.step = "autograd (" + why + ")";
    }
  } else {
    result.step = "autograd (hand-written step turned off)";
  }

  auto evaluate_now = [&]() {
    // Evaluation draws its own z samples; the generator state is restored
    // afterwards, so how often and how much a run evaluates never changes the
    // model it trains.
    RngStateGuard rng_guard(device);
    const auto e0 = Clock::now();
    CurvePoint p;
    p.samples_seen = seen;
    p.epochs = static_cast<double>(seen) / n;
    p.train = evaluate_elbo(vae, data.train_eval, eval_train_condition, options.eval_batch);
    p.test = evaluate_elbo(vae, data.test, eval_test_condition, options.eval_batch);
    if (options.evaluate_extra) {
      vae.eval();
      p.extra = options.evaluate_extra(vae);
      vae.train();
    }
    eval_seconds += std::chrono::duration<double>(Clock::now() - e0).count();
    p.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!std::isfinite(p.train.elbo) || !std::isfinite(p.test.elbo)) {
      std::ostringstream os;
      os << options.label << ": the bound became non-finite at " << seen << " samples in "
         << nonfinite_terms(p.train.log_likelihood, p.train.kl) << " (train ELBO " << p.train.elbo
         << ", reconstruction " << p.train.log_likelihood << ", KL " << p.train.kl << "; learning rate "
         << current_lr(optimizer)
         << "): lower --lr or check the data." << kept_note();
      throw std::runtime_error(os.str());
    }
    result.curve.push_back(p);
  };

  while (seen < options.total_samples) {
    // Every step is a full minibatch: an epoch's remainder (n mod batch) is
    // dropped and the next permutation begins, as a DataLoader with drop_last.
    if (pos >= n || (n >= options.batch_size && n - pos < options.batch_size)) {
      perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong).device(device));
      pos = 0;
    }
    const int64_t len = std::min({options.batch_size, n - pos, options.total_samples - seen});
    auto idx = perm.narrow(0, pos, len);  // [B]
    pos += len;
    auto x = data.train_batch(idx);      // [B, D]
    auto c = train_condition.defined() ? train_condition.index_select(0, idx) : torch::Tensor();

    auto sums = history.select(0, static_cast<int64_t>(history_batch.size()));
    if (hand_step) {
      hand_step->compute_gradients(x, c, options.beta, sums);
      optimizer.step();
    } else {
      train_step(vae, params, optimizer, x, c, options.beta, sums);
    }
    history_batch.push_back(len);
    seen += len;
    ++step;

    const auto now = Clock::now();
    const bool at_mark = next_mark < marks.size() && seen >= marks[next_mark];
    const bool print = options.progress_seconds > 0 &&
                       std::chrono::duration<double>(now - last_print).count() >= options.progress_seconds;
    if (print || at_mark || static_cast<int64_t>(history_batch.size()) == kLossCheckSteps ||
        seen >= options.total_samples) {
      check_history();
    }
    if (print) {
      const double steps_d = static_cast<double>(std::max<int64_t>(1, running_steps));
      const double elapsed = std::chrono::duration<double>(now - t0).count();
      const double train_time = std::max(1e-9, elapsed - eval_seconds);
      const double rate = seen / train_time;
      const double eta = (options.total_samples - seen) / std::max(rate, 1e-9);
      char line[256];
      std::snprintf(line, sizeof(line),
                    "%s %.3g/%.3g samples (%.1f epochs)  %.0f samples/s  ETA %s  "
                    "minibatch ELBO %.2f (rec %.2f, KL %.2f)",
                    options.label.c_str(), static_cast<double>(seen),
                    static_cast<double>(options.total_samples), static_cast<double>(seen) / n, rate,
                    human_duration(eta).c_str(), running_elbo / steps_d, running_ll / steps_d,
                    running_kl / steps_d);
      std::cerr << (tty ? "\r\033[K" : "") << line << (tty ? "" : "\n") << std::flush;
      last_print = now;
      running_elbo = running_ll = running_kl = 0;
      running_steps = 0;
    }
    while (next_mark < marks.size() && seen >= marks[next_mark]) {
      evaluate_now();
      ++next_mark;
    }
    // Checkpoint at the intervals, and on SIGINT/SIGTERM before stopping.
    const int stop = stop_signal();
    if (ck.enabled() && seen < options.total_samples &&
        (stop != 0 ||
         (ck.every_seconds > 0 &&
          std::chrono::duration<double>(Clock::now() - last_save).count() >= ck.every_seconds) ||
         (ck.every_steps > 0 && step - last_save_step >= ck.every_steps))) {
      save_now(false);
    }
    if (stop != 0 && seen < options.total_samples) {
      if (tty && options.progress_seconds > 0) std::cerr << "\r\033[K" << std::flush;
      throw Interrupted(stop, options.label + ": stopped by " + signal_name(stop) + " at " +
                                  std::to_string(seen) + " of " + std::to_string(options.total_samples) +
                                  " samples" +
                                  (ck.enabled() ? "; its checkpoint is saved in " + ck.path
                                                : " (no checkpoint: this run does not keep any)"));
    }
  }
  if (tty && options.progress_seconds > 0) std::cerr << "\r\033[K" << std::flush;
  if (hand_step && hand_step->sparse_steps() > 0) {
    // No counts: a run resumed from a checkpoint must say what one run says.
    result.step = hand_step->sparse_steps() == hand_step->steps()
                      ? "hand-written; first layer as sparse row sums (binary inputs)"
                      : "hand-written; first layer as sparse row sums on its binary batches";
  }
  result.samples_seen = seen;
  result.eval_seconds = eval_seconds;
  result.train_seconds =
      std::chrono::duration<double>(Clock::now() - t0).count() - eval_seconds;
  if (ck.enabled()) save_now(true);  // a complete checkpoint: a rerun reuses the model
  return result;
}

}  // namespace vaerepro
