#include "vaerepro/protocol.h"

#include <ATen/core/MT19937RNGEngine.h>

#include <mutex>
#include <stdexcept>

#include "vaerepro/compat.h"

namespace vaerepro {

namespace {

/// torch::bernoulli(p) on a contiguous float CPU tensor with the default
/// generator, drawing the very numbers torch's CPU kernel draws: one 32-bit
/// output of the generator's mt19937 per element, in order, u = (r mod 2^24)
/// / 2^24 and x = [u < p] (ATen's bernoulli_distribution over
/// uniform_real_distribution<float>). torch runs it through a generic
/// per-element kernel (about 18 ns an element here, 1.5 ms for a 100 x 784
/// batch); this loop takes a tenth of that. Returns an undefined tensor when
/// the input does not qualify.
torch::Tensor bernoulli_same_stream(const torch::Tensor& p) {
  if (!p.is_cpu() || p.scalar_type() != torch::kFloat || !p.is_contiguous()) return {};
  auto out = torch::empty_like(p);
  auto gen = compat::default_generator(torch::kCPU);
  auto* impl = compat::cpu_generator_impl(gen);
  std::lock_guard<std::mutex> lock(impl->mutex_);
  at::mt19937 engine = impl->engine();
  const float* pp = p.data_ptr<float>();
  float* o = out.data_ptr<float>();
  // Two passes: the uniforms (exact in float: 24-bit integers times 2^-24),
  // then the comparison (vectorised). Fused into one loop, GCC 12 made it ten
  // times slower.
  constexpr float kScale = 1.0f / 16777216.0f;  // 2^-24
  const int64_t n = p.numel();
  for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(engine() & 0xFFFFFFu) * kScale;
  impl->set_engine(engine);
  for (int64_t i = 0; i < n; ++i) o[i] = o[i] < pp[i] ? 1.0f : 0.0f;
  return out;
}

/// Whether bernoulli_same_stream reproduces torch::bernoulli in this LibTorch
/// (values and the generator state after), checked once per process on a
/// copy of the generator's state; when not, torch::bernoulli is used.
bool same_stream_verified() {
  static const bool ok = [] {
    auto gen = compat::default_generator(torch::kCPU);
    auto saved = compat::generator_state(gen);
    auto p = torch::linspace(0.0, 1.0, 4099, torch::kFloat);
    auto expected = torch::bernoulli(p);
    auto expected_state = compat::generator_state(gen);
    compat::set_generator_state(gen, saved);
    auto got = bernoulli_same_stream(p);
    auto got_state = compat::generator_state(gen);
    compat::set_generator_state(gen, saved);
    return got.defined() && torch::equal(expected, got) && torch::equal(expected_state, got_state);
  }();
  return ok;
}

}  // namespace

torch::Tensor bernoulli_sample(const torch::Tensor& p) {
  if (same_stream_verified()) {
    auto x = bernoulli_same_stream(p);
    if (x.defined()) return x;
  }
  return torch::bernoulli(p);
}

Protocol parse_protocol(const std::string& name) {
  if (name == "binarized") return Protocol::kBinarized;
  if (name == "gray-bce") return Protocol::kGrayBce;
  if (name == "threshold") return Protocol::kThreshold;
  throw std::invalid_argument("unknown protocol '" + name +
                              "' (expected binarized, gray-bce or threshold)");
}

std::string to_string(Protocol p) {
  switch (p) {
    case Protocol::kBinarized:
      return "binarized";
    case Protocol::kGrayBce:
      return "gray-bce";
    case Protocol::kThreshold:
      return "threshold";
  }
  return "binarized";
}

std::string describe(Protocol p) {
  if (p == Protocol::kBinarized) {
    return "dynamic binarisation (IWAE protocol): training pixels resampled as "
           "Bernoulli(intensity) at every use, test set binarised once with a fixed seed; "
           "bounds are lower bounds on log-likelihoods, in nats";
  }
  if (p == Protocol::kThreshold) {
    return "fixed threshold (seed 002's protocol): every pixel above zero set to one, training and "
           "test sets once; nats of a bolder binary MNIST, comparable with seed 002's numbers but "
           "not "
           "with those of papers that binarise dynamically";
  }
  return "gray levels inside binary cross-entropy (seed 000's protocol): not a normalised "
         "likelihood, so its numbers compare only with seed 000's, not with papers' nats";
}

torch::Tensor binarize_with_seed(const torch::Tensor& p, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto cpu = p.to(torch::kCPU);
  return torch::bernoulli(cpu, gen).to(p.device());
}

torch::Tensor first_rows(const torch::Tensor& t, int64_t n) {
  return n > 0 && n < t.size(0) ? t.narrow(0, 0, n) : t;
}

torch::Tensor threshold_binarize(const torch::Tensor& gray) {
  return gray.gt(0.0).to(gray.scalar_type());
}

torch::Tensor TensorData::train_batch(const torch::Tensor& idx) const {
  auto x = train.index_select(0, idx);  // [B, D]
  return protocol == Protocol::kBinarized ? bernoulli_sample(x) : x;
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
  } else if (protocol == Protocol::kThreshold) {
    // Seed 002 section 3: one fixed binarisation; train_batch then returns it as is.
    d.train = threshold_binarize(train).to(device);
    d.train_eval = d.train;
    d.test = threshold_binarize(test).to(device);
    d.test_gray = test.to(device);
    return d;
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
