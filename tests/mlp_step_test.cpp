// The hand-written MLP VAE step (mlp_step.h) against autograd through
// training_loss(): the same loss terms and the same gradient for every
// parameter, with the same random numbers; then whole runs through train_vae.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vaerepro/mlp_step.h"
#include "vaerepro/mlp_step_kernels.h"
#include "vaerepro/models.h"
#include "vaerepro/objectives.h"
#include "vaerepro/protocol.h"
#include "vaerepro/trainer.h"
#include "toy_data.h"

namespace {
using namespace vaerepro;

struct StepCase {
  std::string arch;
  Activation activation;
  ConditionEncoding condition;
  double beta;
  int64_t batch;
};

std::string case_name(const ::testing::TestParamInfo<StepCase>& info) {
  std::string a = info.param.arch;
  for (char& ch : a) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  std::string c = to_string(info.param.condition);
  for (char& ch : c) {
    if (ch == '-') ch = '_';
  }
  return to_string(info.param.activation) + "_" + a + "_" + c + "_b" + std::to_string(info.param.batch);
}

Vae make_vae(const StepCase& p, int64_t d, int64_t classes) {
  VaeOptions o(d, parse_architecture(p.arch));
  o.activation(p.activation).condition_dim(condition_dim(p.condition, classes)).init_std(0.3);
  return Vae(o);
}

class HandWrittenStep : public ::testing::TestWithParam<StepCase> {};

TEST_P(HandWrittenStep, LossTermsAndEveryGradientMatchAutograd) {
  const StepCase& p = GetParam();
  const int64_t d = 24, classes = 3;
  torch::manual_seed(11);
  Vae vae = make_vae(p, d, classes);
  auto x = torch::rand({p.batch, d}).bernoulli();
  auto labels = torch::randint(0, classes, {p.batch}, torch::kLong);
  auto c = encode_condition(labels, p.condition, classes);

  // Autograd: the trainer's other path.
  torch::manual_seed(5);
  for (auto& q : vae->parameters()) q.mutable_grad().reset();
  auto t = training_loss(*vae, x, c, p.beta);
  t.loss.backward();
  std::vector<torch::Tensor> expected;
  for (auto& q : vae->parameters()) expected.push_back(q.grad().clone());

  // By hand, from the same generator state (so the same eps).
  for (auto& q : vae->parameters()) q.mutable_grad().reset();
  MlpVaeStep step(*vae);
  auto sums = torch::full({2}, std::nan(""));
  torch::manual_seed(5);
  step.compute_gradients(x, c, p.beta, sums);

  EXPECT_NEAR(sums[0].item<double>(), t.log_likelihood.item<double>(),
              1e-4 * std::abs(t.log_likelihood.item<double>()));
  EXPECT_NEAR(sums[1].item<double>(), t.kl.item<double>(), 1e-4 * std::abs(t.kl.item<double>()) + 1e-5);
  const auto named = vae->named_parameters();
  ASSERT_EQ(named.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& got = named[i].value().grad();
    ASSERT_TRUE(got.defined()) << named[i].key();
    const double scale = expected[i].abs().max().item<double>();
    const double err = (got - expected[i]).abs().max().item<double>();
    EXPECT_LE(err, 1e-4 * scale + 1e-7) << named[i].key() << ": max |difference| " << err
                                         << " against max |gradient| " << scale;
  }

  // The buffers are reused: a second step (a different batch size too) gives
  // autograd's gradient again, not a sum with the first.
  const int64_t b2 = std::max<int64_t>(1, p.batch - 3);
  auto x2 = x.narrow(0, 0, b2);
  auto c2 = c.defined() ? c.narrow(0, 0, b2) : torch::Tensor();
  torch::manual_seed(6);
  step.compute_gradients(x2, c2, p.beta, {});
  std::vector<torch::Tensor> by_hand;
  for (auto& q : vae->parameters()) by_hand.push_back(q.grad().clone());
  for (auto& q : vae->parameters()) q.mutable_grad().reset();
  torch::manual_seed(6);
  training_loss(*vae, x2, c2, p.beta).loss.backward();
  for (size_t i = 0; i < by_hand.size(); ++i) {
    const auto& want = named[i].value().grad();
    const double err = (by_hand[i] - want).abs().max().item<double>();
    EXPECT_LE(err, 1e-4 * want.abs().max().item<double>() + 1e-7) << "second step, " << named[i].key();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, HandWrittenStep,
    ::testing::Values(StepCase{"[16, 4]", Activation::kTanh, ConditionEncoding::kNone, 1.0, 9},
                      StepCase{"[16, 12, 3]", Activation::kRelu, ConditionEncoding::kNone, 1.0, 8},
                      StepCase{"[10, 2]", Activation::kSigmoid, ConditionEncoding::kNone, 4.0, 7},
                      StepCase{"[5]", Activation::kTanh, ConditionEncoding::kNone, 1.0, 6},
                      StepCase{"[16, 4]", Activation::kTanh, ConditionEncoding::kOneHot, 2.0, 9},
                      StepCase{"[12, 8, 3]", Activation::kRelu, ConditionEncoding::kRaw, 50.0, 10}),
    case_name);

// The kernels' exp/log polynomials against the C library over the whole
// range a logit or a pre-activation takes, extremes and NaN included.
std::vector<float> probe_values() {
  std::vector<float> v = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, -1e-8f, 1e-3f, -1e-3f, 0.5f, -0.5f,
                          15.0f, -15.0f, 20.0f, -20.0f, 40.0f, -40.0f, 88.0f, -88.0f, 100.0f, -100.0f,
                          1e30f, -1e30f};
  for (int i = -2000; i <= 2000; ++i) v.push_back(static_cast<float>(i) * 0.01234f);
  return v;
}

TEST(HandWrittenStepKernels, BiasActivationMatchesTheLibraryFunctions) {
  const auto v = probe_values();
  const int64_t cols = 37;  // not a multiple of 8: vector body and scalar tail both run
  const int64_t rows = (static_cast<int64_t>(v.size()) + cols - 1) / cols;
  std::vector<float> bias(cols);
  for (int64_t j = 0; j < cols; ++j) bias[j] = 0.01f * static_cast<float>(j % 5) - 0.02f;
  for (auto unit : {kernels::Unit::kTanh, kernels::Unit::kRelu, kernels::Unit::kSigmoid}) {
    std::vector<float> h(rows * cols, 0.25f);
    for (size_t i = 0; i < v.size(); ++i) h[i] = v[i];
    const std::vector<float> in = h;
    kernels::bias_activation(h.data(), bias.data(), rows, cols, unit);
    for (size_t i = 0; i < h.size(); ++i) {
      const double y = static_cast<double>(in[i]) + bias[i % cols];
      const double want = unit == kernels::Unit::kTanh   ? std::tanh(y)
                          : unit == kernels::Unit::kRelu ? std::max(y, 0.0)
                                                         : 1.0 / (1.0 + std::exp(-y));
      ASSERT_NEAR(h[i], want, 3e-7 + 3e-7 * std::abs(want)) << "unit " << static_cast<int>(unit) << " at " << y;
    }
    std::vector<float> nan(16, std::nanf(""));
    kernels::bias_activation(nan.data(), bias.data(), 1, 16, unit);
    for (float f : nan) EXPECT_TRUE(std::isnan(f)) << "NaN must stay NaN (unit " << static_cast<int>(unit) << ")";
  }
}

TEST(HandWrittenStepKernels, BernoulliHeadMatchesTheClosedFormInDouble) {
  const auto v = probe_values();
  const int64_t cols = 45, rows = (static_cast<int64_t>(v.size()) + cols - 1) / cols;
  std::vector<float> raw(rows * cols, -1.0f), bias(cols, 0.0f), x(rows * cols), g(rows * cols);
  for (size_t i = 0; i < v.size(); ++i) raw[i] = v[i];
  bias[3] = 0.75f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7) % 3 == 0);
  const float scale = 0.01f;
  const double ll = kernels::bernoulli_head(raw.data(), bias.data(), x.data(), g.data(), rows, cols, scale);
  double want_ll = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    const double l = static_cast<double>(static_cast<float>(raw[i] + bias[i % cols]));
    const double softplus = std::max(l, 0.0) + std::log1p(std::exp(-std::abs(l)));
    want_ll += x[i] * l - softplus;
    const double sig = 1.0 / (1.0 + std::exp(-l));
    ASSERT_NEAR(g[i], (sig - x[i]) * scale, 1e-9 + 3e-7 * std::abs((sig - x[i]) * scale)) << "at l = " << l;
  }
  EXPECT_NEAR(ll, want_ll, 1e-6 * std::abs(want_ll));
  // A NaN logit makes the sum NaN, so the trainer's check sees it.
  raw[5] = std::nanf("");
  EXPECT_TRUE(std::isnan(kernels::bernoulli_head(raw.data(), bias.data(), x.data(), g.data(), rows, cols, scale)));
}

TEST(HandWrittenStep, SaysWhatItIsNotWrittenFor) {
  Vae gaussian(VaeOptions(8, parse_architecture("[4, 2]")).likelihood(Likelihood::kGaussian));
  EXPECT_NE(MlpVaeStep::unsupported_reason(*gaussian).find("gaussian"), std::string::npos);
  EXPECT_THROW(MlpVaeStep{*gaussian}, std::invalid_argument);
  Vae softplus(VaeOptions(8, parse_architecture("[4, 2]")).activation(Activation::kSoftplus));
  EXPECT_NE(MlpVaeStep::unsupported_reason(*softplus).find("softplus"), std::string::npos);
  Vae ok(VaeOptions(8, parse_architecture("[4, 2]")));
  EXPECT_EQ(MlpVaeStep::unsupported_reason(*ok), "");
  MlpVaeStep step(*ok);
  EXPECT_THROW(step.compute_gradients(torch::rand({3, 7}), {}, 1.0, {}), c10::Error);
  EXPECT_THROW(step.compute_gradients(torch::rand({3, 8}), torch::rand({3, 2}), 1.0, {}), c10::Error);
}

TensorData toy_data() { return vaerepro::test::four_prototypes(); }

TEST(HandWrittenStep, TrainVaeUsesItAndStaysWithAutogradsRun) {
  // Same seed, same data, same draws: after 40 steps the parameters of the two
  // runs differ by float rounding only, and so do their bounds.
  auto run = [](bool hand, std::vector<torch::Tensor>* params) {
    TensorData d = toy_data();
    torch::manual_seed(9);
    Vae vae(VaeOptions(64, parse_architecture("[32, 3]")));
    auto opt = make_optimizer(vae->parameters(), {"adagrad", 0.05, 0.0});
    TrainOptions t;
    t.total_samples = 32 * 40;
    t.batch_size = 32;
    t.progress_seconds = 0;
    t.hand_written_step = hand;
    auto r = train_vae(*vae, *opt, d, t);
    for (auto& q : vae->parameters()) params->push_back(q.detach().clone());
    return r;
  };
  std::vector<torch::Tensor> a, b;
  auto ra = run(true, &a);
  auto rb = run(false, &b);
  EXPECT_EQ(ra.step, "hand-written");
  EXPECT_EQ(rb.step.rfind("autograd", 0), 0u) << rb.step;
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-4) << "parameter " << i;
  }
  EXPECT_NEAR(ra.curve.back().test.elbo, rb.curve.back().test.elbo, 1e-3 * std::abs(rb.curve.back().test.elbo));
}

TEST(HandWrittenStep, ConditionalTrainingFromTheTrainerToo) {
  TensorData d = toy_data();
  torch::manual_seed(2);
  Vae vae(VaeOptions(64, parse_architecture("[16, 2]")).condition_dim(4));
  auto opt = make_optimizer(vae->parameters(), {"adam", 1e-2, 0.0});
  TrainOptions t;
  t.total_samples = 256 * 4;
  t.batch_size = 32;
  t.progress_seconds = 0;
  t.condition = ConditionEncoding::kOneHot;
  t.eval_at = {32};
  auto r = train_vae(*vae, *opt, d, t);
  EXPECT_EQ(r.step, "hand-written");
  ASSERT_GE(r.curve.size(), 2u);
  EXPECT_GT(r.curve.back().test.elbo, r.curve.front().test.elbo + 1.0);  // it learned
}

}  // namespace
