#include "vaerepro/classifier.h"

#include <cmath>

#include "vaerepro/cli.h"

namespace vaerepro {

ClassifierImpl::ClassifierImpl(int64_t input_dim, int64_t num_classes) {
  body = register_module("body", Mlp(MlpOptions(input_dim, {512, 256}).activation(Activation::kRelu)));
  head = register_module("head", torch::nn::Linear(256, num_classes));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return head(body->forward(x)); }

double train_classifier(ClassifierImpl& classifier, const TensorData& data, int64_t epochs, int64_t batch_size,
                        double lr) {
  torch::optim::Adam opt(classifier.parameters(), torch::optim::AdamOptions(lr));
  const int64_t n = data.train.size(0);
  classifier.train();
  for (int64_t e = 0; e < epochs; ++e) {
    auto perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong).device(data.train.device()));
    for (int64_t s = 0; s + batch_size <= n; s += batch_size) {
      throw_if_stopped("the judging classifier's training");
      auto idx = perm.narrow(0, s, batch_size);
      auto loss = torch::cross_entropy_loss(classifier.forward(data.train.index_select(0, idx)),
                                            data.train_labels.index_select(0, idx));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  classifier.eval();
  torch::NoGradGuard no_grad;
  // The test set's gray levels: data.test may be binarised, the classifier judges gray images.
  int64_t correct = 0;
  const auto& x = data.test_gray.defined() ? data.test_gray : data.test;
  for (int64_t s = 0; s < x.size(0); s += 1000) {
    const int64_t len = std::min<int64_t>(1000, x.size(0) - s);
    auto pred = classifier.forward(x.narrow(0, s, len)).argmax(1);
    correct += (pred == data.test_labels.narrow(0, s, len)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(x.size(0));
}

nlohmann::json ConditionalAccuracy::to_json() const {
  return {{"per_label", per_label}, {"per_label_count", per_label_count}, {"overall", overall},
          {"standard_error", standard_error}};
}

ConditionalAccuracy conditional_accuracy(const std::function<torch::Tensor(const torch::Tensor&)>& classify,
                                         const torch::Tensor& samples, const torch::Tensor& labels,
                                         int64_t num_classes) {
  torch::NoGradGuard no_grad;
  auto pred = classify(samples).argmax(1).to(torch::kCPU);  // [N]
  auto lab = labels.to(torch::kCPU).to(torch::kLong);
  auto hit = (pred == lab);
  ConditionalAccuracy a;
  for (int64_t c = 0; c < num_classes; ++c) {
    auto mask = lab == c;
    const int64_t count = mask.sum().item<int64_t>();
    a.per_label_count.push_back(count);
    a.per_label.push_back(count ? hit.masked_select(mask).to(torch::kDouble).mean().item<double>() : 0.0);
  }
  const double n = static_cast<double>(lab.size(0));
  a.overall = hit.to(torch::kDouble).mean().item<double>();
  a.standard_error = std::sqrt(a.overall * (1 - a.overall) / std::max(1.0, n));
  return a;
}

}  // namespace vaerepro
