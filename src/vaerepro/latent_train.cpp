#include "vaerepro/latent_train.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "vaerepro/corruption.h"
#include "vaerepro/loop.h"

namespace vaerepro {

nlohmann::json LatentCurvePoint::to_json() const {
  return {{"samples_seen", samples_seen},
          {"epochs", epochs},
          {"train_objective", train_objective},
          {"test_elbo", test_elbo},
          {"wall_seconds", wall_seconds}};
}

std::string LatentTrainResult::curve_csv() const {
  std::ostringstream csv;
  csv << "samples_seen,epochs,train_objective,test_elbo,wall_seconds\n";
  for (const auto& q : curve) {
    csv << q.samples_seen << ',' << q.epochs << ',' << q.train_objective << ',' << q.test_elbo
        << ',' << q.wall_seconds << '\n';
  }
  return csv.str();
}

nlohmann::json LatentTrainResult::curve_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& q : curve) rows.push_back(q.to_json());
  return rows;
}

namespace {

/// One minibatch step of a LatentModel on its objective; its one term is the
/// objective's batch sum, so a mark's window is the mean objective over the
/// examples since the previous mark.
class LatentStep : public TrainStep {
 public:
  LatentStep(LatentModel& model, torch::optim::Optimizer& optimizer, const TensorData& data,
             const LatentTrainOptions& o)
      : model_(model), optimizer_(optimizer), data_(data), o_(o) {
    const int64_t n = std::min<int64_t>(o.curve_examples, data.test.size(0));
    curve_x_ = data.test.narrow(0, 0, n);
    if (o.condition != ConditionEncoding::kNone) {
      curve_c_ = encode_condition(data.test_labels.narrow(0, 0, n), o.condition, data.num_classes);
    }
  }
  std::vector<std::string> terms() const override { return {"objective"}; }
  torch::Dtype history_dtype() const override { return torch::kDouble; }
  nlohmann::json identity() const override {
    return {{"objective", to_string(o_.objective.objective)},
            {"beta", o_.objective.beta},
            {"k", o_.objective.k},
            {"corruption", o_.corruption},
            {"condition", to_string(o_.condition)},
            {"curve_examples", curve_x_.size(0)}};
  }
  void step(const torch::Tensor& idx, torch::Tensor sums) override {
    auto x = data_.train_batch(idx);                                        // [B, D]
    auto x_in = o_.corruption > 0 ? salt_and_pepper(x, o_.corruption) : x;  // the DVAE's input
    torch::Tensor c;
    if (o_.condition != ConditionEncoding::kNone) {
      c = encode_condition(data_.train_labels.index_select(0, idx), o_.condition,
                           data_.num_classes);
    }
    optimizer_.zero_grad();
    auto loss =
        objective_loss(model_, o_.objective, x_in, x, c);  // minus the batch's mean objective
    loss.backward();
    optimizer_.step();
    sums.copy_(
        loss.detach().to(torch::kDouble).mul(-static_cast<double>(idx.size(0))).reshape({1}));
  }
  torch::nn::Module& model() override { return model_.module(); }
  torch::optim::Optimizer& optimizer() override { return optimizer_; }
  nlohmann::json evaluate(const Mark& m) override {
    model_.module().eval();
    const double test_elbo = evaluate_latent_elbo(model_, curve_x_, curve_c_).elbo;
    model_.module().train();
    return {{"train_objective",
             m.window[0] / static_cast<double>(std::max<int64_t>(1, m.window_examples))},
            {"test_elbo", test_elbo}};
  }
  std::string describe(const std::vector<double>& means) const override {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "minibatch %s %.2f", to_string(o_.objective.objective).c_str(),
                  means[0]);
    return buf;
  }
  std::string advice() const override {
    return "Lower the learning rate, or check the data for NaN.";
  }

 private:
  LatentModel& model_;
  torch::optim::Optimizer& optimizer_;
  const TensorData& data_;
  const LatentTrainOptions& o_;
  torch::Tensor curve_x_, curve_c_;
};

}  // namespace

LatentTrainResult train_latent_model(LatentModel& model, torch::optim::Optimizer& optimizer,
                                     const TensorData& data, const LatentTrainOptions& options) {
  TORCH_CHECK(options.batch_size > 0 && options.total_samples > 0, options.label,
              ": batch size and training samples must be positive");
  LatentStep step(model, optimizer, data, options);
  LoopOptions loop;
  loop.total_samples = options.total_samples;
  loop.batch_size = options.batch_size;
  loop.drop_last = true;
  loop.marks = options.eval_at;
  loop.marks.push_back(options.total_samples);  // the end is always a point of the curve
  loop.label = options.label;
  loop.progress_seconds = options.progress_seconds;
  loop.checkpoint = options.checkpoint;
  model.module().train();
  TrainingLoop training(step, data.train.size(0), data.train.device(), loop);
  const LoopState& s = training.run();
  model.module().eval();
  LatentTrainResult result;
  for (const auto& row : s.curve) {
    LatentCurvePoint p;
    p.samples_seen = row.at("samples_seen").get<int64_t>();
    p.epochs = row.at("epochs").get<double>();
    p.train_objective = row.at("train_objective").get<double>();
    p.test_elbo = row.at("test_elbo").get<double>();
    p.wall_seconds = row.at("wall_seconds").get<double>();
    result.curve.push_back(p);
  }
  result.samples_seen = s.samples_seen;
  result.train_seconds = s.train_seconds();
  result.resumed_at = s.resumed_at;
  return result;
}

}  // namespace vaerepro
