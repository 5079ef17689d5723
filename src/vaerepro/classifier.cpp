#include "vaerepro/classifier.h"

#include <cmath>
#include <cstdio>

#include "vaerepro/loop.h"
#include "vaerepro/schema/metrics.h"

namespace vaerepro {

ClassifierImpl::ClassifierImpl(int64_t input_dim, int64_t num_classes) {
  body =
      register_module("body", Mlp(MlpOptions(input_dim, {512, 256}).activation(Activation::kRelu)));
  head = register_module("head", torch::nn::Linear(256, num_classes));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  return head(body->forward(x));
}

namespace {

/// The classifier's side of the training loop: cross-entropy on labelled images.
class ClassifierStep : public TrainStep {
 public:
  ClassifierStep(ClassifierImpl& classifier, const TensorData& data,
                 const ClassifierTrainOptions& o)
      : classifier_(classifier),
        data_(data),
        options_(o),
        optimizer_(classifier.parameters(), torch::optim::AdamOptions(o.lr)) {}
  std::vector<std::string> terms() const override { return {"cross-entropy"}; }
  nlohmann::json identity() const override { return {{"lr", options_.lr}}; }
  torch::nn::Module& model() override { return classifier_; }
  torch::optim::Optimizer& optimizer() override { return optimizer_; }
  std::string advice() const override {
    return "Lower the classifier's learning rate, or check the data for NaN.";
  }

  void step(const torch::Tensor& idx, torch::Tensor sums) override {
    classifier_.train();
    auto loss = torch::cross_entropy_loss(classifier_.forward(data_.train.index_select(0, idx)),
                                          data_.train_labels.index_select(0, idx));
    optimizer_.zero_grad();
    loss.backward();
    optimizer_.step();
    at::stack_out(sums, {loss.detach() * static_cast<double>(idx.size(0))});
  }

  std::string describe(const std::vector<double>& m) const override {
    char line[64];
    std::snprintf(line, sizeof(line), "minibatch cross-entropy %.4f", m[0]);
    return line;
  }

 private:
  ClassifierImpl& classifier_;
  const TensorData& data_;
  const ClassifierTrainOptions& options_;
  torch::optim::Adam optimizer_;
};

}  // namespace

ClassifierTrainResult train_classifier(ClassifierImpl& classifier, const TensorData& data,
                                       const ClassifierTrainOptions& o) {
  const int64_t n = data.train.size(0);
  if (n < 1 || o.epochs < 1 || o.batch_size < 1) {
    throw std::invalid_argument(
        "train_classifier: need at least one example, epoch and batch element");
  }
  LoopOptions lo;
  // Full minibatches only: an epoch's remainder (N mod B) is dropped.
  lo.total_samples = o.epochs * (n >= o.batch_size ? (n / o.batch_size) * o.batch_size : n);
  lo.batch_size = o.batch_size;
  lo.drop_last = true;
  lo.label = o.label;
  lo.progress_seconds = o.progress_seconds;
  lo.checkpoint = o.checkpoint;
  ClassifierStep step(classifier, data, o);
  TrainingLoop loop(step, n, data.train.device(), lo);
  const LoopState& s = loop.run();
  ClassifierTrainResult result;
  result.samples_seen = s.samples_seen;
  result.train_seconds = s.train_seconds();
  result.resumed_at = s.resumed_at;
  classifier.eval();
  torch::NoGradGuard no_grad;
  // The test set's gray levels: data.test may be binarised, the classifier judges gray images.
  int64_t correct = 0;
  const auto& x = data.test_gray.defined() ? data.test_gray : data.test;
  for (int64_t start = 0; start < x.size(0); start += 1000) {
    const int64_t len = std::min<int64_t>(1000, x.size(0) - start);
    auto pred = classifier.forward(x.narrow(0, start, len)).argmax(1);
    correct += (pred == data.test_labels.narrow(0, start, len)).sum().item<int64_t>();
  }
  result.accuracy = static_cast<double>(correct) / static_cast<double>(x.size(0));
  return result;
}

Judge train_judge(const TensorData& data, int64_t epochs, int64_t seed, torch::Device device,
                  const CheckpointOptions& checkpoint) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  Classifier classifier(data.dim(), data.num_classes);
  classifier->to(device);
  ClassifierTrainOptions o;
  o.epochs = epochs;
  o.checkpoint = checkpoint;
  const double accuracy = train_classifier(*classifier, data, o).accuracy;
  return {classifier, accuracy};
}

nlohmann::json ConditionalAccuracy::to_json() const {
  namespace c4 = schema::ch04;
  return {{c4::kPerLabel, per_label},
          {c4::kPerLabelCount, per_label_count},
          {c4::kOverall, overall},
          {schema::key::kStandardError, standard_error}};
}

ConditionalAccuracy conditional_accuracy(
    const std::function<torch::Tensor(const torch::Tensor&)>& classify,
    const torch::Tensor& samples, const torch::Tensor& labels, int64_t num_classes) {
  torch::NoGradGuard no_grad;
  auto pred = classify(samples).argmax(1).to(torch::kCPU);  // [N]
  auto lab = labels.to(torch::kCPU).to(torch::kLong);
  auto hit = (pred == lab);
  ConditionalAccuracy a;
  for (int64_t c = 0; c < num_classes; ++c) {
    auto mask = lab == c;
    const int64_t count = mask.sum().item<int64_t>();
    a.per_label_count.push_back(count);
    a.per_label.push_back(count ? hit.masked_select(mask).to(torch::kDouble).mean().item<double>()
                                : 0.0);
  }
  const double n = static_cast<double>(lab.size(0));
  a.overall = hit.to(torch::kDouble).mean().item<double>();
  a.standard_error = std::sqrt(a.overall * (1 - a.overall) / std::max(1.0, n));
  return a;
}

}  // namespace vaerepro
