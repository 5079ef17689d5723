#include "vaerepro/latent_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "vaerepro/cli.h"
#include "vaerepro/corruption.h"

namespace vaerepro {

nlohmann::json LatentCurvePoint::to_json() const {
  return {{"samples_seen", samples_seen}, {"epochs", epochs},         {"train_objective", train_objective},
          {"test_elbo", test_elbo},       {"wall_seconds", wall_seconds}};
}

namespace {

using Clock = std::chrono::steady_clock;

LatentCurvePoint curve_point_from_json(const nlohmann::json& j) {
  LatentCurvePoint p;
  p.samples_seen = j.at("samples_seen").get<int64_t>();
  p.epochs = j.at("epochs").get<double>();
  p.train_objective = j.at("train_objective").get<double>();
  p.test_elbo = j.at("test_elbo").get<double>();
  p.wall_seconds = j.at("wall_seconds").get<double>();
  return p;
}

/// The loop's counters, as a checkpoint keeps them.
struct LatentLoopState {
  int64_t seen = 0, step = 0, position = 0;  ///< samples, steps, place in the permutation
  size_t next_mark = 0;
  double running = 0;  ///< sum of per-step mean objectives since the last curve point
  int64_t running_steps = 0;
  double elapsed = 0;  ///< training seconds before this process
};

nlohmann::json expected_fields(const LatentTrainOptions& o, int64_t n) {
  return {{"total_samples", o.total_samples}, {"batch_size", o.batch_size},
          {"objective", to_string(o.objective.objective)}, {"beta", o.objective.beta},
          {"k", o.objective.k}, {"corruption", o.corruption}, {"train_examples", n}};
}

}  // namespace

LatentTrainResult train_latent_model(LatentModel& model, torch::optim::Optimizer& optimizer, const TensorData& data,
                                     const LatentTrainOptions& options) {
  TORCH_CHECK(options.batch_size > 0 && options.total_samples > 0, options.label,
              ": batch size and training samples must be positive");
  auto& module = model.module();
  const int64_t n = data.train.size(0);
  const auto device = data.train.device();
  auto marks = options.eval_at;
  marks.push_back(options.total_samples);
  std::sort(marks.begin(), marks.end());
  marks.erase(std::unique(marks.begin(), marks.end()), marks.end());
  marks.erase(std::remove_if(marks.begin(), marks.end(), [&](int64_t m) { return m <= 0 || m > options.total_samples; }),
              marks.end());
  const int64_t curve_n = std::min<int64_t>(options.curve_examples, data.test.size(0));
  const auto curve_x = data.test.narrow(0, 0, curve_n);
  const auto curve_c = options.condition == ConditionEncoding::kNone
                           ? torch::Tensor()
                           : encode_condition(data.test_labels.narrow(0, 0, curve_n), options.condition, data.num_classes);

  LatentTrainResult result;
  LatentLoopState s;
  s.position = n;  // a fresh permutation at the first step
  torch::Tensor perm;
  const OptimizerState optimizer_state = OptimizerState::of(optimizer);
  const auto expect = expected_fields(options, n);
  if (auto snap = load_checkpoint(options.checkpoint, module, optimizer_state, expect, options.label)) {
    const auto& pr = snap->progress;
    restore_rng(*snap, device);
    s.seen = pr.at("samples_seen").get<int64_t>();
    s.step = pr.at("step").get<int64_t>();
    s.position = pr.at("position").get<int64_t>();
    s.next_mark = pr.at("next_mark").get<size_t>();
    s.running = pr.at("running").get<double>();
    s.running_steps = pr.at("running_steps").get<int64_t>();
    s.elapsed = pr.at("train_seconds").get<double>();
    perm = snap->permutation.defined() ? snap->permutation.to(device) : torch::Tensor();
    if (!perm.defined()) s.position = n;
    for (const auto& j : pr.at("curve")) result.curve.push_back(curve_point_from_json(j));
    result.resumed_at = pr.value("resumed_at", std::vector<int64_t>{});
    result.resumed_at.push_back(s.seen);
    std::cerr << options.label << ": resuming from " << options.checkpoint.path << " at " << s.seen << " of "
              << options.total_samples << " samples\n";
  }
  const auto t0 = Clock::now();
  auto seconds = [&] { return s.elapsed + std::chrono::duration<double>(Clock::now() - t0).count(); };
  auto last_save = Clock::now(), last_print = Clock::now();
  auto save_now = [&]() {
    if (!options.checkpoint.enabled()) return;
    if (!parameters_finite(module)) {
      throw std::runtime_error(options.label + ": the parameters became non-finite by step " + std::to_string(s.step) +
                               "; lower --lr");
    }
    TrainingSnapshot snap;
    nlohmann::json curve = nlohmann::json::array();
    for (const auto& p : result.curve) curve.push_back(p.to_json());
    snap.progress = expect;
    snap.progress.update({{"samples_seen", s.seen}, {"step", s.step}, {"position", s.position},
                          {"next_mark", s.next_mark}, {"running", s.running}, {"running_steps", s.running_steps},
                          {"train_seconds", seconds()}, {"curve", curve}, {"resumed_at", result.resumed_at}});
    snap.permutation = perm;
    capture_rng(snap, device);
    save_checkpoint(options.checkpoint, module, optimizer_state, std::move(snap));
    last_save = Clock::now();
  };

  module.train();
  while (s.seen < options.total_samples) {
    if (const int sig = stop_signal()) {
      save_now();
      throw Interrupted(sig, options.label + ": stopped by " + signal_name(sig) + " at " + std::to_string(s.seen) +
                                 " samples" + (options.checkpoint.enabled() ? " (checkpoint saved)" : ""));
    }
    // An incomplete last minibatch of an epoch is dropped (as a DataLoader with drop_last).
    if (s.position + options.batch_size > n) {
      perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong).device(device));
      s.position = 0;
    }
    const int64_t b = std::min({options.batch_size, n, options.total_samples - s.seen});
    auto idx = perm.narrow(0, s.position, b);
    auto x = data.train_batch(idx);                                        // [B, D]
    auto x_in = options.corruption > 0 ? salt_and_pepper(x, options.corruption) : x;  // the DVAE's input
    torch::Tensor c;
    if (options.condition != ConditionEncoding::kNone) {
      c = encode_condition(data.train_labels.index_select(0, idx), options.condition, data.num_classes);
    }
    optimizer.zero_grad();
    auto loss = objective_loss(model, options.objective, x_in, x, c);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      std::ostringstream os;
      os << options.label << ": the training loss became non-finite at step " << s.step + 1 << " (" << s.seen
         << " samples, objective " << to_string(options.objective.objective) << "). Lower --lr.";
      throw std::runtime_error(os.str());
    }
    loss.backward();
    optimizer.step();
    s.position += b;
    s.seen += b;
    ++s.step;
    s.running += -value;
    ++s.running_steps;
    while (s.next_mark < marks.size() && s.seen >= marks[s.next_mark]) {
      module.eval();
      LatentCurvePoint p;
      p.samples_seen = s.seen;
      p.epochs = static_cast<double>(s.seen) / static_cast<double>(n);
      p.train_objective = s.running / std::max<int64_t>(1, s.running_steps);
      p.test_elbo = evaluate_latent_elbo(model, curve_x, curve_c).elbo;
      p.wall_seconds = seconds();
      result.curve.push_back(p);
      s.running = 0;
      s.running_steps = 0;
      ++s.next_mark;
      module.train();
    }
    const auto now = Clock::now();
    if (options.progress_seconds > 0 &&
        std::chrono::duration<double>(now - last_print).count() >= options.progress_seconds) {
      std::cout << options.label << ": " << s.seen << " / " << options.total_samples << " samples, objective "
                << -value << "\n" << std::flush;
      last_print = now;
    }
    if (options.checkpoint.enabled() && options.checkpoint.every_seconds > 0 &&
        std::chrono::duration<double>(now - last_save).count() >= options.checkpoint.every_seconds) {
      save_now();
    }
  }
  module.eval();
  result.samples_seen = s.seen;
  result.train_seconds = seconds();
  return result;
}

}  // namespace vaerepro
