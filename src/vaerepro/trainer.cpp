#include "vaerepro/trainer.h"
#include "vaerepro/time_ledger.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "vaerepro/fused_optim.h"
#include "vaerepro/mlp_step.h"
#include "vaerepro/objectives.h"
#include "vaerepro/schema/metrics.h"

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
  namespace k = schema::key;
  return {{k::kElbo, elbo},
          {k::kLogLikelihood, log_likelihood},
          {k::kKl, kl},
          {k::kExamples, examples}};
}

SetMetrics SetMetrics::from_json(const nlohmann::json& j) {
  namespace k = schema::key;
  return {j.at(k::kElbo).get<double>(), j.at(k::kLogLikelihood).get<double>(),
          j.at(k::kKl).get<double>(), j.at(k::kExamples).get<int64_t>()};
}

nlohmann::json CurvePoint::to_json() const {
  namespace k = schema::key;
  return {{k::kSamplesSeen, samples_seen}, {k::kEpochs, epochs}, {k::kTrain, train.to_json()},
          {k::kTest, test.to_json()},      {k::kExtra, extra},   {k::kWallSeconds, wall_seconds}};
}

CurvePoint CurvePoint::from_json(const nlohmann::json& j) {
  namespace k = schema::key;
  CurvePoint p;
  p.samples_seen = j.at(k::kSamplesSeen).get<int64_t>();
  p.epochs = j.at(k::kEpochs).get<double>();
  p.train = SetMetrics::from_json(j.at(k::kTrain));
  p.test = SetMetrics::from_json(j.at(k::kTest));
  p.extra = j.value(k::kExtra, nlohmann::json());
  p.wall_seconds = j.at(k::kWallSeconds).get<double>();
  return p;
}

SetMetrics evaluate_elbo(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& condition,
                         int64_t batch_size) {
  StageTimer stage_timer(stage::kEvaluation);
  torch::NoGradGuard no_grad;
  const bool was_training = vae.is_training();
  vae.eval();
  const int64_t n = x.size(0);
  auto sums = torch::zeros({3}, x.options().dtype(torch::kDouble));  // [elbo, ll, kl]
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t len = std::min(batch_size, n - start);
    auto xb = x.narrow(0, start, len);  // [B, D]
    auto cb = condition.defined() ? condition.narrow(0, start, len) : torch::Tensor();
    auto t = elbo(vae, xb, cb);
    sums +=
        torch::stack({t.elbo.to(torch::kDouble).sum(), t.log_likelihood.to(torch::kDouble).sum(),
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
    double v =
        std::exp(std::log(static_cast<double>(first)) +
                 t * (std::log(static_cast<double>(last)) - std::log(static_cast<double>(first))));
    int64_t m = std::max<int64_t>(step, static_cast<int64_t>(std::llround(v / step)) * step);
    m = std::min(m, last);
    if (marks.empty() || m > marks.back()) marks.push_back(m);
  }
  if (marks.back() != last) marks.push_back(last);
  return marks;
}

TrainOptions training_schedule(int64_t total_samples, int64_t batch_size, int64_t eval_points) {
  TrainOptions t;
  t.total_samples = total_samples;
  t.batch_size = batch_size;
  if (eval_points > 0) {
    t.eval_at = log_spaced_marks(std::max<int64_t>(batch_size, total_samples / 100), total_samples,
                                 eval_points, batch_size);
  }
  return t;
}

namespace {

// Which terms of the bound are not finite, in words ("the KL term").
std::string nonfinite_terms(double reconstruction, double kl) {
  std::string which;
  if (!std::isfinite(reconstruction)) which = "the reconstruction term";
  if (!std::isfinite(kl)) which += std::string(which.empty() ? "" : " and ") + "the KL term";
  return which.empty() ? "the ELBO" : which;
}

/// The MLP VAE's side of the training loop: the batch, the evaluation at a
/// mark (the ELBO on both sets and TrainOptions::evaluate_extra), the
/// progress line. The optimisation step itself is one of the two below.
class VaeStep : public TrainStep {
 public:
  VaeStep(VaeImpl& vae, torch::optim::Optimizer& optimizer, const TensorData& data,
          const TrainOptions& options)
      : vae_(vae), optimizer_(optimizer), data_(data), options_(options) {
    train_condition_ = encode_condition(data.train_labels, options.condition, data.num_classes);
    test_condition_ = encode_condition(data.test_labels, options.condition, data.num_classes);
  }
  std::vector<std::string> terms() const override { return {"reconstruction term", "KL term"}; }
  nlohmann::json identity() const override { return {{"beta", options_.beta}}; }
  torch::nn::Module& model() override { return vae_; }
  torch::optim::Optimizer& optimizer() override { return optimizer_; }

  nlohmann::json evaluate(const Mark& mark) override {
    CurvePoint p;
    p.train = evaluate_elbo(vae_, data_.train_eval, train_condition_, options_.eval_batch);
    p.test = evaluate_elbo(vae_, data_.test, test_condition_, options_.eval_batch);
    if (options_.evaluate_extra) {
      vae_.eval();
      p.extra = options_.evaluate_extra(vae_);
      vae_.train();
    }
    if (!std::isfinite(p.train.elbo) || !std::isfinite(p.test.elbo)) {
      std::ostringstream os;
      os << options_.label << ": the bound became non-finite at " << mark.samples_seen
         << " samples in " << nonfinite_terms(p.train.log_likelihood, p.train.kl) << " (train ELBO "
         << p.train.elbo << ", reconstruction " << p.train.log_likelihood << ", KL " << p.train.kl
         << "; learning rate " << current_lr(optimizer_) << "): lower --lr or check the data."
         << mark.kept_note;
      throw std::runtime_error(os.str());
    }
    nlohmann::json row = p.to_json();
    for (const char* k : {"samples_seen", "epochs", "wall_seconds"}) row.erase(k);  // the loop's
    return row;
  }

  std::string describe(const std::vector<double>& m) const override {
    char line[96];
    std::snprintf(line, sizeof(line), "minibatch ELBO %.2f (rec %.2f, KL %.2f)", m[0] - m[1], m[0],
                  m[1]);
    return line;
  }

 protected:
  /// The minibatch x [B, D] (binarised afresh under dynamic binarisation) and its condition c [B,
  /// C].
  std::pair<torch::Tensor, torch::Tensor> batch(const torch::Tensor& idx) const {
    auto x = data_.train_batch(idx);  // [B, D]
    auto c = train_condition_.defined() ? train_condition_.index_select(0, idx) : torch::Tensor();
    return {x, c};
  }

  VaeImpl& vae_;
  torch::optim::Optimizer& optimizer_;
  const TensorData& data_;
  const TrainOptions& options_;
  torch::Tensor train_condition_, test_condition_;
};

/// Autograd's step (train_step), for any VaeImpl.
class AutogradVaeStep : public VaeStep {
 public:
  AutogradVaeStep(VaeImpl& vae, torch::optim::Optimizer& optimizer, const TensorData& data,
                  const TrainOptions& options, std::string why)
      : VaeStep(vae, optimizer, data, options), params_(vae.parameters()), why_(std::move(why)) {}
  void step(const torch::Tensor& idx, torch::Tensor sums) override {
    const auto [x, c] = batch(idx);
    train_step(vae_, params_, optimizer_, x, c, options_.beta, sums);
  }
  nlohmann::json summary() const override { return {{"step", "autograd (" + why_ + ")"}}; }

 private:
  std::vector<torch::Tensor> params_;
  std::string why_;
};

/// The step written out by hand (mlp_step.h), made at the first step (after
/// a checkpoint has been loaded into the model).
class HandWrittenVaeStep : public VaeStep {
 public:
  using VaeStep::VaeStep;
  void step(const torch::Tensor& idx, torch::Tensor sums) override {
    if (!hand_) hand_ = std::make_unique<MlpVaeStep>(vae_, options_.hand_step_options);
    const auto [x, c] = batch(idx);
    hand_->compute_gradients(x, c, options_.beta, sums);
    optimizer_.step();
  }
  nlohmann::json summary() const override {
    // No counts: a run resumed from a checkpoint must say what one run says.
    if (!hand_ || hand_->sparse_steps() == 0) return {{"step", "hand-written"}};
    return {{"step", hand_->sparse_steps() == hand_->steps()
                         ? "hand-written; first layer as sparse row sums (binary inputs)"
                         : "hand-written; first layer as sparse row sums on its binary batches"}};
  }

 private:
  std::unique_ptr<MlpVaeStep> hand_;
};

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
  TORCH_CHECK(options.batch_size >= 1, "batch size must be >= 1");
  TORCH_CHECK(options.total_samples >= 1, "total samples must be >= 1");
  std::unique_ptr<VaeStep> step;
  const std::string why = options.hand_written_step ? MlpVaeStep::unsupported_reason(vae)
                                                    : "hand-written step turned off";
  if (why.empty()) {
    step = std::make_unique<HandWrittenVaeStep>(vae, optimizer, data, options);
  } else {
    step = std::make_unique<AutogradVaeStep>(vae, optimizer, data, options, why);
  }
  LoopOptions lo;
  lo.total_samples = options.total_samples;
  lo.batch_size = options.batch_size;
  lo.drop_last = true;
  lo.marks = options.eval_at;
  lo.marks.push_back(options.total_samples);
  lo.label = options.label;
  lo.progress_seconds = options.progress_seconds;
  lo.checkpoint = options.checkpoint;
  vae.train();
  TrainingLoop loop(*step, data.train.size(0), data.train.device(), lo);
  const LoopState& s = loop.run();
  vae.train();
  TrainResult result;
  for (const auto& row : s.curve) result.curve.push_back(CurvePoint::from_json(row));
  result.samples_seen = s.samples_seen;
  result.train_seconds = s.train_seconds();
  result.eval_seconds = s.eval_seconds;
  result.resumed_at = s.resumed_at;
  result.step = s.summary.is_object() ? s.summary.value("step", std::string("unknown")) : "unknown";
  return result;
}

}  // namespace vaerepro
