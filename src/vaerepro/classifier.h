#pragma once
/// \file classifier.h
/// A small MLP classifier, the judge of conditional generation (chapter 4),
/// and the conditional accuracy it measures.
///
/// Shapes: N = examples, D = pixels, C = classes.

#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/models.h"
#include "vaerepro/protocol.h"

namespace vaerepro {

/// D -> 512 -> 256 -> C, ReLU, trained by Adam on gray levels.
class ClassifierImpl : public torch::nn::Module {
 public:
  ClassifierImpl(int64_t input_dim, int64_t num_classes);
  torch::Tensor forward(const torch::Tensor& x);  ///< [N, D] -> logits [N, C]
  Mlp body{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Classifier);

/// Trains the classifier on data.train (gray levels, whatever the protocol)
/// for `epochs` and returns its accuracy on data.test's gray levels. Checks
/// the stop flag every step (throws Interrupted, cli.h).
double train_classifier(ClassifierImpl& classifier, const TensorData& data, int64_t epochs,
                        int64_t batch_size = 128, double lr = 1e-3);

/// The fraction of samples the classifier assigns to the label they were
/// generated for, per label and overall, with the binomial standard error.
struct ConditionalAccuracy {
  std::vector<double> per_label;
  std::vector<int64_t> per_label_count;
  double overall = 0;
  double standard_error = 0;
  nlohmann::json to_json() const;
};

/// `classify` maps [N, D] images to [N, C] logits; `samples` [N, D] were
/// generated for `labels` [N].
ConditionalAccuracy conditional_accuracy(const std::function<torch::Tensor(const torch::Tensor&)>& classify,
                                         const torch::Tensor& samples, const torch::Tensor& labels,
                                         int64_t num_classes);

}  // namespace vaerepro
