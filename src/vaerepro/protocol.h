#pragma once
/// \file protocol.h
/// How gray-level images become the x a model is trained and scored on. The
/// protocol decides whether a number is a log-likelihood in nats at all, so it
/// is recorded beside every number.
///
/// Shapes: N = training examples, M = test examples, D = H*W pixels.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/datasets.h"

namespace vaerepro {

enum class Protocol {
  /// Dynamic binarisation (Burda et al. 2015): training pixels resampled as
  /// Bernoulli(intensity) every time an example is used; the test set (and the
  /// copy of the training set the train bound is scored on) binarised once
  /// with a fixed seed. The Bernoulli decoder then gives proper nats.
  kBinarized,
  /// Gray levels in [0, 1] inside binary cross-entropy (seed 000). Not a
  /// normalised likelihood: its "nats" compare only with seed 000's numbers.
  kGrayBce,
  /// A fixed threshold, every pixel above zero set to one (Sumba et al. 2019,
  /// seed 002 section 3), for training and test sets alike, once. The data are
  /// binary, so the Bernoulli decoder gives nats, but of another (bolder,
  /// easier to model) binary MNIST than dynamic binarisation's: its numbers
  /// compare with seed 002's, not with the IWAE paper's.
  kThreshold,
};

Protocol parse_protocol(const std::string& name);  ///< binarized | gray-bce | threshold
std::string to_string(Protocol p);
/// One sentence saying what the protocol is and what its numbers mean.
std::string describe(Protocol p);

/// The fixed seeds of the one-off binarisations (never the run's seed, so
/// every run is scored on the same binary test set).
constexpr uint64_t kTestBinarizationSeed = 20131220;
constexpr uint64_t kTrainEvalBinarizationSeed = 20131221;

/// A dataset as float tensors on the training device.
struct TensorData {
  torch::Tensor train;         ///< [N, D] gray levels in [0, 1] (kThreshold: already thresholded)
  torch::Tensor train_eval;    ///< [N, D] the training set as scored (binarised once, or gray)
  torch::Tensor test;          ///< [M, D] the test set as scored
  torch::Tensor test_gray;     ///< [M, D] the test set's gray levels (pictures, classifiers)
  torch::Tensor train_labels;  ///< [N] int64
  torch::Tensor test_labels;   ///< [M] int64
  Protocol protocol = Protocol::kBinarized;
  int64_t height = 28, width = 28, num_classes = 10;

  /// The training minibatch for example indices `idx` [B]: binarised afresh
  /// under kBinarized (with the global generator), the stored pixels otherwise
  /// (gray levels under kGrayBce, the thresholded ones under kThreshold).
  torch::Tensor train_batch(const torch::Tensor& idx) const;  // [B, D]
  int64_t dim() const { return height * width; }
  nlohmann::json to_json() const;  ///< sizes and protocol
};

/// The first `n` rows of `t` [N, ...] (a view; all of them when n <= 0 or n >= N):
/// the fixed points a chapter scores or draws ("the first 1000 test points").
torch::Tensor first_rows(const torch::Tensor& t, int64_t n);

/// The fixed threshold of kThreshold: 1 where a gray level in [0, 1] is above
/// zero, else 0 (seed 002 section 3). [..] -> [..] float.
torch::Tensor threshold_binarize(const torch::Tensor& gray);

/// Converts a dataset for training: pixels / 255 as float, flattened, the
/// first `max_train` / `max_test` examples when those are > 0, on `device`.
TensorData prepare_tensors(const Dataset& data, Protocol protocol, torch::Device device,
                           int64_t max_train = 0, int64_t max_test = 0);

/// torch::bernoulli(p) with the default generator: the same values and the
/// same generator state after, faster on the CPU (one tight loop over the
/// generator's mt19937 instead of torch's per-element kernel; checked against
/// torch::bernoulli once per process, which is used whenever they differ or
/// p is not a contiguous float CPU tensor).
torch::Tensor bernoulli_sample(const torch::Tensor& p);

/// Bernoulli(p) with its own seeded generator (on the CPU, then moved back).
torch::Tensor binarize_with_seed(const torch::Tensor& p, uint64_t seed);

}  // namespace vaerepro
