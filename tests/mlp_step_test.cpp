// The hand-written MLP VAE step (mlp_step.h) against autograd through
// training_loss(): the same loss terms and the same gradient for every
// parameter, with the same random numbers; then whole runs through train_vae.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
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
  return to_string(info.param.activation) + "_" + a + "_" + c + "_b" +
         std::to_string(info.param.batch);
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

  // By hand, from the same generator state (so the same eps): with the
  // dense first layer, and with the sparse one (x is binary; its 1s are the
  // rows it sums), which a model with hidden layers takes.
  const auto named = vae->named_parameters();
  ASSERT_EQ(named.size(), expected.size());
  for (const bool sparse : {false, true}) {
    SCOPED_TRACE(sparse ? "sparse first layer" : "dense first layer");
    for (auto& q : vae->parameters()) q.mutable_grad().reset();
    MlpStepOptions so;
    so.sparse_binary_input = sparse;
    so.max_density = 1.0;
    MlpVaeStep step(*vae, so);
    auto sums = torch::full({2}, std::nan(""));
    torch::manual_seed(5);
    step.compute_gradients(x, c, p.beta, sums);
    const bool has_hidden = parse_architecture(p.arch).hidden.size() > 0;
    EXPECT_EQ(step.sparse_steps(), sparse && has_hidden ? 1 : 0);

    EXPECT_NEAR(sums[0].item<double>(), t.log_likelihood.item<double>(),
                1e-4 * std::abs(t.log_likelihood.item<double>()));
    EXPECT_NEAR(sums[1].item<double>(), t.kl.item<double>(),
                1e-4 * std::abs(t.kl.item<double>()) + 1e-5);
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto& got = named[i].value().grad();
      ASSERT_TRUE(got.defined()) << named[i].key();
      const double scale = expected[i].abs().max().item<double>();
      const double err = (got - expected[i]).abs().max().item<double>();
      EXPECT_LE(err, 1e-4 * scale + 1e-7)
          << named[i].key() << ": max |difference| " << err << " against max |gradient| " << scale;
    }

    // Another step with the same step object: its gradient is autograd's
    // for that batch again, not a sum with the step before.
    auto again = [&](const torch::Tensor& xb, const torch::Tensor& cb, int64_t seed,
                     const char* what) {
      torch::manual_seed(seed);
      step.compute_gradients(xb, cb, p.beta, {});
      std::vector<torch::Tensor> by_hand;
      for (auto& q : vae->parameters()) by_hand.push_back(q.grad().clone());
      for (auto& q : vae->parameters()) q.mutable_grad().reset();
      torch::manual_seed(seed);
      training_loss(*vae, xb, cb, p.beta).loss.backward();
      for (size_t i = 0; i < by_hand.size(); ++i) {
        const auto& want = named[i].value().grad();
        const double err = (by_hand[i] - want).abs().max().item<double>();
        EXPECT_LE(err, 1e-4 * want.abs().max().item<double>() + 1e-7)
            << what << ", " << named[i].key();
      }
    };
    // A smaller batch (the buffers' views shrink) ...
    const int64_t b2 = std::max<int64_t>(1, p.batch - 3);
    again(x.narrow(0, 0, b2), c.defined() ? c.narrow(0, 0, b2) : torch::Tensor(), 6, "second step");
    // ... and a larger one than any before (the buffers grow).
    const int64_t b3 = p.batch + 5;
    auto c3 = c.defined() ? encode_condition(torch::randint(0, classes, {b3}, torch::kLong),
                                             p.condition, classes)
                          : torch::Tensor();
    again(torch::rand({b3, d}).bernoulli(), c3, 7, "third step");
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
  std::vector<float> v = {0.0f,  -0.0f,  1e-30f, -1e-30f, 1e-8f, -1e-8f, 1e-3f, -1e-3f,
                          0.5f,  -0.5f,  15.0f,  -15.0f,  20.0f, -20.0f, 40.0f, -40.0f,
                          88.0f, -88.0f, 100.0f, -100.0f, 1e30f, -1e30f};
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
      ASSERT_NEAR(h[i], want, 3e-7 + 3e-7 * std::abs(want))
          << "unit " << static_cast<int>(unit) << " at " << y;
    }
    std::vector<float> nan(16, std::nanf(""));
    kernels::bias_activation(nan.data(), bias.data(), 1, 16, unit);
    for (float f : nan)
      EXPECT_TRUE(std::isnan(f)) << "NaN must stay NaN (unit " << static_cast<int>(unit) << ")";
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
  const double ll =
      kernels::bernoulli_head(raw.data(), bias.data(), x.data(), g.data(), rows, cols, scale);
  double want_ll = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    const double l = static_cast<double>(static_cast<float>(raw[i] + bias[i % cols]));
    const double softplus = std::max(l, 0.0) + std::log1p(std::exp(-std::abs(l)));
    want_ll += x[i] * l - softplus;
    const double sig = 1.0 / (1.0 + std::exp(-l));
    ASSERT_NEAR(g[i], (sig - x[i]) * scale, 1e-9 + 3e-7 * std::abs((sig - x[i]) * scale))
        << "at l = " << l;
  }
  EXPECT_NEAR(ll, want_ll, 1e-6 * std::abs(want_ll));
  // A NaN logit makes the sum NaN, so the trainer's check sees it.
  raw[5] = std::nanf("");
  EXPECT_TRUE(std::isnan(
      kernels::bernoulli_head(raw.data(), bias.data(), x.data(), g.data(), rows, cols, scale)));
}

// sum_selected_rows against the dense product it replaces, at widths that
// run every part of it (64-column blocks, 1-8 vector tails, the masked last
// vector), vector and scalar forms, with strided rows: the columns between
// rows are NaN in the source (never read) and sentinels in the output
// (never written).
TEST(HandWrittenStepKernels, SumsOfSelectedRowsAreTheBinaryMatrixProduct) {
  const bool had_avx2 = kernels::vectorised();
  for (const bool vector_forms : {true, false}) {
    kernels::set_vectorised(vector_forms);
    SCOPED_TRACE(kernels::vectorised() ? "AVX2 forms" : "scalar forms");
    torch::manual_seed(3);
    const int64_t rows = 13, k = 41, pad = 9;
    for (const int64_t n : {1, 5, 8, 20, 63, 64, 65, 100, 130, 500}) {
      SCOPED_TRACE("n = " + std::to_string(n));
      auto x = (torch::rand({rows, k}) < 0.3).to(torch::kFloat);
      x[2].zero_();            // an image with no lit pixel: a row of zeros
      x.select(1, 6).zero_();  // a pixel lit in no image: a zero row of X^T G
      auto src_full = torch::full({k, n + pad}, std::nan(""));
      auto src = src_full.narrow(1, 0, n).copy_(torch::randn({k, n}));
      kernels::Pattern p, t;
      ASSERT_TRUE(kernels::binary_pattern(x.data_ptr<float>(), rows, k, k, rows * k, p));
      ASSERT_EQ(static_cast<int64_t>(p.idx.size()), x.sum().item<int64_t>());
      auto out_full = torch::full({rows, n + pad}, 7.0f);
      kernels::sum_selected_rows(src.data_ptr<float>(), n + pad, n, p, rows,
                                 out_full.data_ptr<float>(), n + pad);
      EXPECT_TRUE(torch::allclose(out_full.narrow(1, 0, n), x.mm(src), 1e-5, 1e-5));
      EXPECT_TRUE(torch::all(out_full.narrow(1, n, pad) == 7.0f).item<bool>())
          << "wrote past a row's end";
      // By column: X^T G, each pixel summing the rows of the images it is lit in.
      kernels::transpose_pattern(p, k, t);
      auto g = torch::randn({rows, n});
      auto gt_full = torch::full({k, n + pad}, 7.0f);
      kernels::sum_selected_rows(g.data_ptr<float>(), n, n, t, k, gt_full.data_ptr<float>(),
                                 n + pad);
      EXPECT_TRUE(torch::allclose(gt_full.narrow(1, 0, n), x.t().mm(g), 1e-5, 1e-5));
      EXPECT_TRUE(torch::all(gt_full.narrow(1, n, pad) == 7.0f).item<bool>())
          << "wrote past a row's end";
    }
  }
  kernels::set_vectorised(had_avx2);
}

TEST(HandWrittenStepKernels, ABinaryPatternRefusesAnythingButZerosAndOnes) {
  const bool had_avx2 = kernels::vectorised();
  for (const bool vector_forms : {true, false}) {
    kernels::set_vectorised(vector_forms);
    SCOPED_TRACE(kernels::vectorised() ? "AVX2 forms" : "scalar forms");
    kernels::Pattern p;
    for (const float bad :
         {0.5f, -1.0f, 2.0f, 1e-30f, std::nanf(""), std::numeric_limits<float>::infinity()}) {
      for (const int64_t at : {3, 17}) {  // in a vector body and in a scalar tail
        std::vector<float> x(2 * 20, 0.0f);
        x[5] = 1.0f;
        x[20 + at] = bad;
        EXPECT_FALSE(kernels::binary_pattern(x.data(), 2, 20, 20, 40, p)) << bad << " at " << at;
      }
    }
    std::vector<float> x(2 * 20, 1.0f);
    x[7] = -0.0f;  // -0 is a zero
    EXPECT_TRUE(kernels::binary_pattern(x.data(), 2, 20, 20, 40, p));
    EXPECT_EQ(p.idx.size(), 39u);
    EXPECT_FALSE(kernels::binary_pattern(x.data(), 2, 20, 20, 38, p)) << "more 1s than allowed";
  }
  kernels::set_vectorised(had_avx2);
}

// Which first layer a batch gets: the sparse one only for binary batches no
// denser than the limit, on an input-major weight; the two agree.
TEST(HandWrittenStep, TakesTheSparseFirstLayerOnlyWhereItApplies) {
  torch::manual_seed(8);
  Vae vae(VaeOptions(30, parse_architecture("[70, 3]")));
  const auto& w = vae->encoder->body->layers().front()->weight;
  ASSERT_EQ(w.stride(0), 1) << "models.h stores the first layer's weight input major";
  auto opt = make_optimizer(vae->parameters(), {"adagrad", 0.01, 0.0});
  ASSERT_EQ(w.stride(0), 1) << "the fused optimizer keeps the layout";
  MlpStepOptions so;
  so.max_density = 0.5;
  MlpVaeStep step(*vae, so);
  auto grads = [&] {
    std::vector<torch::Tensor> g;
    for (auto& q : vae->parameters()) g.push_back(q.grad().clone());
    return g;
  };
  auto binary = (torch::rand({16, 30}) < 0.2).to(torch::kFloat);
  torch::manual_seed(1);
  step.compute_gradients(binary, {}, 1.0, {});
  EXPECT_EQ(step.sparse_steps(), 1);
  const auto sparse_grads = grads();
  step.compute_gradients(binary * 0.5 + 0.25, {}, 1.0, {});    // gray levels
  step.compute_gradients(torch::ones({16, 30}), {}, 1.0, {});  // denser than 0.5
  EXPECT_EQ(step.steps(), 3);
  EXPECT_EQ(step.sparse_steps(), 1);
  MlpStepOptions off;
  off.sparse_binary_input = false;
  MlpVaeStep dense(*vae, off);
  torch::manual_seed(1);
  dense.compute_gradients(binary, {}, 1.0, {});
  EXPECT_EQ(dense.sparse_steps(), 0);
  const auto dense_grads = grads();
  for (size_t i = 0; i < dense_grads.size(); ++i) {
    EXPECT_TRUE(torch::allclose(sparse_grads[i], dense_grads[i], 1e-5, 1e-6)) << "parameter " << i;
  }
  // A weight stored the usual way (someone re-laid it out): the dense path.
  vae->encoder->body->layers().front()->weight.set_data(w.contiguous());
  for (auto& q : vae->parameters()) q.mutable_grad().reset();
  MlpVaeStep plain(*vae, so);
  plain.compute_gradients(binary, {}, 1.0, {});
  EXPECT_EQ(plain.sparse_steps(), 0);
}

// Products large enough to be split between threads (mlp_step.cpp splits
// those of at least 2^20 multiply-adds and 128 columns), with two threads:
// every gradient still autograd's, with each combination of the levers.
TEST(HandWrittenStep, SplitProductsOnTwoThreadsMatchAutograd) {
  const int threads_before = torch::get_num_threads();
  torch::set_num_threads(2);
  if (torch::get_num_threads() != 2)
    GTEST_SKIP() << "two threads are not available, so nothing is split";
  torch::manual_seed(21);
  const int64_t d = 300, batch = 64;
  Vae vae(VaeOptions(d, parse_architecture("[256, 160, 6]")).condition_dim(3).init_std(0.05));
  auto x = (torch::rand({batch, d}) < 0.3).to(torch::kFloat);
  auto c =
      encode_condition(torch::randint(0, 3, {batch}, torch::kLong), ConditionEncoding::kOneHot, 3);
  torch::manual_seed(5);
  for (auto& q : vae->parameters()) q.mutable_grad().reset();
  training_loss(*vae, x, c, 1.0).loss.backward();
  std::vector<torch::Tensor> expected;
  for (auto& q : vae->parameters()) expected.push_back(q.grad().clone());
  for (const bool split : {true, false}) {
    for (const bool sparse : {true, false}) {
      SCOPED_TRACE(std::string(split ? "split" : "OpenBLAS threads") +
                   (sparse ? ", sparse" : ", dense"));
      for (auto& q : vae->parameters()) q.mutable_grad().reset();
      MlpStepOptions so;
      so.split_products = split;
      so.sparse_binary_input = sparse;
      MlpVaeStep step(*vae, so);
      torch::manual_seed(5);
      step.compute_gradients(x, c, 1.0, {});
      EXPECT_EQ(step.sparse_steps(), sparse ? 1 : 0);
      const auto params = vae->parameters();
      for (size_t i = 0; i < expected.size(); ++i) {
        const double err = (params[i].grad() - expected[i]).abs().max().item<double>();
        EXPECT_LE(err, 1e-4 * expected[i].abs().max().item<double>() + 1e-7) << "parameter " << i;
      }
    }
  }
  torch::set_num_threads(threads_before);
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
  EXPECT_THROW(step.compute_gradients(torch::rand({3, 8}), torch::rand({3, 2}), 1.0, {}),
               c10::Error);
}

TensorData toy_data() {
  return vaerepro::test::four_prototypes();
}

TEST(HandWrittenStep, TrainVaeUsesItAndStaysWithAutogradsRun) {
  // Same seed, same data, same draws: after 40 steps the parameters of the
  // runs differ by float rounding only, and so do their bounds. The batches
  // are binarised (the default protocol), so the hand-written step takes
  // its sparse first layer unless told not to.
  enum class Path { kSparse, kDense, kAutograd };
  auto run = [](Path path, std::vector<torch::Tensor>* params) {
    TensorData d = toy_data();
    torch::manual_seed(9);
    Vae vae(VaeOptions(64, parse_architecture("[32, 3]")));
    auto opt = make_optimizer(vae->parameters(), {"adagrad", 0.05, 0.0});
    TrainOptions t;
    t.total_samples = 32 * 40;
    t.batch_size = 32;
    t.progress_seconds = 0;
    t.hand_written_step = path != Path::kAutograd;
    t.hand_step_options.sparse_binary_input = path == Path::kSparse;
    t.hand_step_options.max_density = 1.0;
    auto r = train_vae(*vae, *opt, d, t);
    for (auto& q : vae->parameters()) params->push_back(q.detach().clone());
    return r;
  };
  std::vector<torch::Tensor> a, b, c;
  auto ra = run(Path::kSparse, &a);
  auto rb = run(Path::kAutograd, &b);
  auto rc = run(Path::kDense, &c);
  EXPECT_EQ(ra.step, "hand-written; first layer as sparse row sums (binary inputs)");
  EXPECT_EQ(rb.step.rfind("autograd", 0), 0u) << rb.step;
  EXPECT_EQ(rc.step, "hand-written");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(c.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-4) << "sparse, parameter " << i;
    EXPECT_LE((c[i] - b[i]).abs().max().item<double>(), 1e-4) << "dense, parameter " << i;
  }
  EXPECT_NEAR(ra.curve.back().test.elbo, rb.curve.back().test.elbo,
              1e-3 * std::abs(rb.curve.back().test.elbo));
  EXPECT_NEAR(rc.curve.back().test.elbo, rb.curve.back().test.elbo,
              1e-3 * std::abs(rb.curve.back().test.elbo));
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
  EXPECT_EQ(r.step.rfind("hand-written", 0), 0u) << r.step;
  ASSERT_GE(r.curve.size(), 2u);
  EXPECT_GT(r.curve.back().test.elbo, r.curve.front().test.elbo + 1.0);  // it learned
}

}  // namespace
