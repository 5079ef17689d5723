#include "vaerepro/protocol.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>

namespace vaerepro {

Protocol parse_protocol(const std::string& name) {
  if (name == "binarized") return Protocol::kBinarized;
  if (name == "gray-bce") return Protocol::kGrayBce;
  throw std::invalid_argument("unknown protocol '" + name + "' (expected binarized or gray-bce)");
}

std::string to_string(Protocol p) { return p == Protocol::kBinarized ? "binarized" : "gray-bce"; }

std::string describe(Protocol p) {
  if (p == Protocol::kBinarized) {
    return "dynamic binarisation (IWAE protocol): training pixels resampled as "
           "Bernoulli(intensity) at every use, test set binarised once with a fixed seed; "
           "bounds are lower bounds on log-likelihoods, in nats";
  }
  return "gray levels inside binary cross-entropy (seed 000's protocol): not a normalised "
         "likelihood, so its numbers compare only with seed 000's, not with papers' nats";
}

torch::Tensor binarize_with_seed(const torch::Tensor& p, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto cpu = p.to(torch::kCPU);
  return torch::bernoulli(cpu, gen).to(p.device());
}

torch::Tensor TensorData::train_batch(const torch::Tensor& idx) const {
  auto x = train.index_select(0, idx);  // [B, D]
  return protocol == Protocol::kBinarized ? torch::bernoulli(x) : x;
}

nlohmann::json TensorData::to_json() const {
  return {{"train_examples", train.size(0)},
          {"test_examples", test.size(0)},
          {"pixels", dim()},
          {"protocol", to_string(protocol)},
          {"protocol_description", describe(protocol)},
          {"test_binarization_seed", protocol == Protocol::kBinarized
                                         ? nlohmann::json(kTestBinarizationSeed)
                                         : nlohmann::json(nullptr)}};
}

TensorData prepare_tensors(const Dataset& data, Protocol protocol, torch::Device device,
                           int64_t max_train, int64_t max_test) {
  auto take = [](const torch::Tensor& t, int64_t n) {
    return n > 0 && n < t.size(0) ? t.narrow(0, 0, n) : t;
  };
  TensorData d;
  d.protocol = protocol;
  d.height = data.height;
  d.width = data.width;
  d.num_classes = data.num_classes;
  auto to_float = [&](const torch::Tensor& images) {  // [N, H, W] uint8 -> [N, D] float
    return images.reshape({images.size(0), -1}).to(torch::kFloat).div_(255.0);
  };
  auto train = to_float(take(data.train.images, max_train));
  auto test = to_float(take(data.test.images, max_test));
  d.train_labels = take(data.train.labels, max_train).to(torch::kLong).to(device);
  d.test_labels = take(data.test.labels, max_test).to(torch::kLong).to(device);
  if (protocol == Protocol::kBinarized) {
    d.train_eval = binarize_with_seed(train, kTrainEvalBinarizationSeed).to(device);
    d.test = binarize_with_seed(test, kTestBinarizationSeed).to(device);
  } else {
    d.train_eval = train.to(device);
    d.test = test.to(device);
  }
  d.train = train.to(device);
  d.test_gray = protocol == Protocol::kGrayBce ? d.test : test.to(device);
  if (protocol == Protocol::kGrayBce) d.train_eval = d.train;
  return d;
}

}  // namespace vaerepro
