#pragma once
/// \file classifier.h
/// A small MLP classifier, the judge of conditional generation (chapter 4),
/// and the conditional accuracy it measures.
///
/// Shapes: N = examples, D = pixels, C = classes.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/checkpoint.h"
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

/// How the classifier trains.
struct ClassifierTrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 128;
  double lr = 1e-3;                              ///< Adam
  std::string label = "the judging classifier";  ///< prefix of its lines and messages
  double progress_seconds = 10;
  /// Checkpoints (loop.h): resume from a matching one, save every
  /// every_seconds, on SIGINT/SIGTERM and at the end (a complete one is
  /// reused without training). Disabled when its path is empty.
  CheckpointOptions checkpoint;
};

/// The outcome of train_classifier.
struct ClassifierTrainResult {
  double accuracy = 0;  ///< on data.test's gray levels
  int64_t samples_seen = 0;
  double train_seconds = 0;
  std::vector<int64_t> resumed_at;  ///< samples seen at each resumption from a checkpoint
};

/// Trains the classifier on data.train (gray levels, whatever the protocol)
/// with Adam on full minibatches (an epoch's remainder dropped), in the
/// suite's training loop (loop.h: checkpoints, the stop flag, the loss read
/// from the device every kLossCheckSteps steps), and returns its accuracy on
/// data.test's gray levels. Throws Interrupted (stop.h) when stopped,
/// std::runtime_error when the loss becomes non-finite. Leaves it in eval mode.
ClassifierTrainResult train_classifier(ClassifierImpl& classifier, const TensorData& data,
                                       const ClassifierTrainOptions& options);

/// A judge of generated images: a classifier of data's classes, its
/// parameters drawn after seeding torch with `seed`, moved to `device` and
/// trained by train_classifier for `epochs` with `checkpoint`, so that a run
/// stopped or killed during or after its training resumes it, or reuses it
/// once trained; with its test accuracy.
struct Judge {
  Classifier classifier{nullptr};
  double accuracy = 0;  ///< on data.test's gray levels
};
Judge train_judge(const TensorData& data, int64_t epochs, int64_t seed, torch::Device device,
                  const CheckpointOptions& checkpoint);

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
ConditionalAccuracy conditional_accuracy(
    const std::function<torch::Tensor(const torch::Tensor&)>& classify,
    const torch::Tensor& samples, const torch::Tensor& labels, int64_t num_classes);

}  // namespace vaerepro
