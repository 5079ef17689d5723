// The speed levers are the same mathematics as what they replace:
// FusedOptimizer against torch::optim step by step, and training_loss's fused
// nodes against autograd through the textbook expressions.

#include <gtest/gtest.h>

#include <sstream>

#include <torch/torch.h>

#include "vaerepro/distributions.h"
#include "vaerepro/fused_optim.h"
#include "vaerepro/models.h"
#include "vaerepro/objectives.h"
#include "vaerepro/protocol.h"
#include "vaerepro/trainer.h"
#include "toy_data.h"

namespace {
using namespace vaerepro;

/// A small parameter set: a matrix, a vector, a scalar-ish one and a matrix
/// stored input major (strides (1, 4), as models.h's first layer).
std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  return {torch::randn({7, 5}).requires_grad_(), torch::randn({5}).requires_grad_(),
          torch::randn({1, 3}).requires_grad_(),
          torch::randn({6, 4}).t().detach().requires_grad_()};
}

std::vector<torch::Tensor> clone_params(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps)
    out.push_back(p.detach().clone().requires_grad_());  // clone keeps strides
  return out;
}

std::unique_ptr<torch::optim::Optimizer> torch_optimizer(const std::string& kind,
                                                         std::vector<torch::Tensor> ps, double lr,
                                                         double wd) {
  if (kind == "adagrad") {
    return std::make_unique<torch::optim::Adagrad>(
        ps, torch::optim::AdagradOptions(lr).weight_decay(wd));
  }
  if (kind == "adam") {
    return std::make_unique<torch::optim::Adam>(ps, torch::optim::AdamOptions(lr).weight_decay(wd));
  }
  return std::make_unique<torch::optim::SGD>(ps, torch::optim::SGDOptions(lr).weight_decay(wd));
}

struct Case {
  std::string kind;
  double lr, wd;
};

class FusedVsTorch : public ::testing::TestWithParam<Case> {};

TEST_P(FusedVsTorch, SameParametersAfterSeveralSteps) {
  const Case c = GetParam();
  auto a = make_params(3);
  auto b = clone_params(a);
  FusedOptimizerOptions fo;
  fo.kind = parse_fused_kind(c.kind);
  fo.lr = c.lr;
  fo.weight_decay = c.wd;
  FusedOptimizer fused(a, fo);
  auto reference = torch_optimizer(c.kind, b, c.lr, c.wd);
  torch::manual_seed(11);
  for (int step = 0; step < 6; ++step) {
    // The same gradients for both: a loss that is not separable per element.
    // The input-major parameter's gradient comes in its own layout on even
    // steps (read in place) and contiguous on odd ones (copied first).
    std::vector<torch::Tensor> gs;
    for (const auto& p : a) {
      auto g =
          torch::empty_strided(p.sizes(), step % 2 == 0 ? p.strides() : p.contiguous().strides());
      gs.push_back(g.copy_(torch::randn(p.sizes()) * (1.0 + step)));
    }
    for (size_t i = 0; i < a.size(); ++i) {
      a[i].mutable_grad() = gs[i].clone();
      b[i].mutable_grad() = gs[i].clone();
    }
    if (step == 3) a[2].mutable_grad().reset(), b[2].mutable_grad().reset();  // skipped by both
    fused.step();
    reference->step();
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6))
          << c.kind << " step " << step << " parameter " << i << "\n"
          << (a[i] - b[i]).abs().max().item<double>();
    }
  }
  EXPECT_EQ(fused.step_count(0), 6);
  EXPECT_EQ(fused.step_count(2), 5);
  // The parameters are views of the flat buffer, each 64-byte aligned, in
  // their own layout.
  EXPECT_EQ(a[1].data_ptr<float>(), fused.flat_parameters().data_ptr<float>() + 48);
  EXPECT_EQ(a[3].strides(), b[3].strides());
  EXPECT_EQ(a[3].stride(0), 1);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, FusedVsTorch,
                         ::testing::Values(Case{"adagrad", 0.02, 0.0}, Case{"adagrad", 0.05, 1e-2},
                                           Case{"adam", 1e-2, 0.0}, Case{"adam", 3e-3, 5e-2},
                                           Case{"sgd", 0.1, 0.0}, Case{"sgd", 0.1, 1e-2}));

TEST(FusedOptimizer, GenericPathMatchesTheCpuLoop) {
  // Double parameters take torch::optim's operation sequence (the CUDA path).
  auto a = make_params(5);
  std::vector<torch::Tensor> d;
  for (const auto& p : a) d.push_back(p.detach().to(torch::kDouble).requires_grad_());
  FusedOptimizerOptions fo;
  fo.kind = FusedOptimizerOptions::Kind::kAdam;
  fo.lr = 1e-2;
  fo.weight_decay = 1e-3;
  FusedOptimizer fa(a, fo), fd(d, fo);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      auto g = torch::randn(a[i].sizes());
      a[i].mutable_grad() = g;
      d[i].mutable_grad() = g.to(torch::kDouble);
    }
    fa.step();
    fd.step();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i].to(torch::kDouble), d[i], 1e-5, 1e-6)) << i;
  }
}

TEST(FusedOptimizer, ModuleParametersMoveIntoTheBufferAndKeepTheirValues) {
  torch::manual_seed(2);
  Vae vae(VaeOptions(16, parse_architecture("[8, 2]")));
  std::vector<torch::Tensor> before;
  for (const auto& p : vae->parameters()) before.push_back(p.detach().clone());
  ASSERT_EQ(vae->parameters().front().stride(0), 1) << "the first layer's weight is input major";
  auto opt = make_optimizer(vae->parameters(), {"adagrad", 0.02, 0.0});
  auto* fused = dynamic_cast<FusedOptimizer*>(opt.get());
  ASSERT_NE(fused, nullptr);
  int64_t total = 0;
  auto params = vae->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    total = (total + 15) / 16 * 16;
    EXPECT_TRUE(torch::equal(params[i], before[i]));
    EXPECT_EQ(params[i].strides(), before[i].strides())
        << "parameter " << i << " changed its layout";
    EXPECT_EQ(params[i].data_ptr<float>(), fused->flat_parameters().data_ptr<float>() + total);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(params[i].data_ptr<float>()) % 64, 0u);
    total += params[i].numel();
  }
  EXPECT_EQ(total, fused->flat_parameters().numel());
  EXPECT_DOUBLE_EQ(opt->param_groups().front().options().get_lr(), 0.02);
}

/// Three steps of a fused optimizer over `a`; its state saved, `b` given a's
/// values, and a new optimizer over `b` loaded from the file.
struct Resumed {
  std::unique_ptr<FusedOptimizer> first, second;
};
Resumed save_and_resume(std::vector<torch::Tensor>& a, std::vector<torch::Tensor>& b,
                        const FusedOptimizerOptions& fo) {
  Resumed r;
  r.first = std::make_unique<FusedOptimizer>(a, fo);
  for (int s = 0; s < 3; ++s) {
    for (auto& p : a) p.mutable_grad() = torch::randn(p.sizes());
    r.first->step();
  }
  torch::serialize::OutputArchive out;
  r.first->save(out);
  std::ostringstream buf;
  out.save_to(buf);
  {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < a.size(); ++i) b[i].copy_(a[i]);
  }
  r.second = std::make_unique<FusedOptimizer>(b, fo);
  torch::serialize::InputArchive in;
  std::istringstream ibuf(buf.str());
  in.load_from(ibuf);
  r.second->load(in);
  return r;
}

/// One more step of both with the same gradients: the same parameters.
void expect_same_next_step(Resumed& r, std::vector<torch::Tensor>& a,
                           std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    auto g = torch::randn(a[i].sizes());
    a[i].mutable_grad() = g;
    b[i].mutable_grad() = g.clone();
  }
  r.first->step();
  r.second->step();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

TEST(FusedOptimizer, SaveAndLoadRestoreTheState) {
  auto a = make_params(7);
  auto b = clone_params(a);
  FusedOptimizerOptions fo;
  fo.kind = FusedOptimizerOptions::Kind::kAdam;
  fo.lr = 1e-2;
  Resumed r = save_and_resume(a, b, fo);
  EXPECT_EQ(r.second->step_count(0), 3);
  EXPECT_TRUE(torch::equal(r.first->flat_state1(), r.second->flat_state1()));
  EXPECT_TRUE(torch::equal(r.first->flat_state2(), r.second->flat_state2()));
  expect_same_next_step(r, a, b);
}

// The file holds each parameter's state in logical order: state saved with
// an input-major parameter resumes an optimizer whose copy of it is stored
// row-major (as in files written before parameters kept their layouts), and
// the other way round, to the same next step.
TEST(FusedOptimizer, SavedStateDoesNotDependOnTheParametersLayout) {
  for (const bool from_input_major : {true, false}) {
    SCOPED_TRACE(from_input_major ? "input major -> row major" : "row major -> input major");
    auto input_major = make_params(9);  // its [3] is stored input major
    std::vector<torch::Tensor> row_major;
    for (const auto& p : input_major) row_major.push_back(p.detach().contiguous().requires_grad_());
    ASSERT_NE(input_major[3].strides(), row_major[3].strides());
    auto& a = from_input_major ? input_major : row_major;
    auto& b = from_input_major ? row_major : input_major;
    FusedOptimizerOptions fo;
    fo.kind = FusedOptimizerOptions::Kind::kAdagrad;
    fo.lr = 0.05;
    Resumed r = save_and_resume(a, b, fo);
    expect_same_next_step(r, a, b);
  }
}

TEST(FusedOptimizer, BadInputIsNamed) {
  EXPECT_THROW(FusedOptimizer({}, FusedOptimizerOptions{}), std::invalid_argument);
  auto p = torch::zeros({2}).requires_grad_();
  EXPECT_THROW(FusedOptimizer({p, p}, FusedOptimizerOptions{}), std::invalid_argument);
  EXPECT_THROW(parse_fused_kind("rmsprop"), std::invalid_argument);
}

// ---------------------------------------------------------------- the loss

TEST(FusedLoss, SampleAndKlMatchAutogradThroughTheTextbookForm) {
  torch::manual_seed(4);
  auto mu = torch::randn({6, 3}).requires_grad_();
  auto lv = (torch::randn({6, 3}) * 0.5).requires_grad_();
  auto eps = torch::randn({6, 3});
  auto gz = torch::randn({6, 3});
  const double gk = 0.7;
  auto out = fused_sample_and_kl(mu, lv, eps);
  (out[0] * gz).sum().add(out[1] * gk).backward();
  auto mu2 = mu.detach().clone().requires_grad_();
  auto lv2 = lv.detach().clone().requires_grad_();
  auto z2 = mu2 + torch::exp(0.5 * lv2) * eps;
  auto kl2 = gaussian_kl_to_standard_normal(mu2, lv2).sum();
  (z2 * gz).sum().add(kl2 * gk).backward();
  EXPECT_TRUE(torch::allclose(out[0], z2, 1e-6, 1e-6));
  EXPECT_NEAR(out[1].item<double>(), kl2.item<double>(),
              1e-5 * std::abs(kl2.item<double>()) + 1e-6);
  EXPECT_TRUE(torch::allclose(mu.grad(), mu2.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(lv.grad(), lv2.grad(), 1e-5, 1e-6));
}

TEST(FusedLoss, KlIsZeroAtThePriorAndClosedFormOtherwise) {
  // KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - log s^2) / 2 per dimension.
  auto mu = torch::tensor({{0.0f, 1.0f}});
  auto lv = torch::tensor({{0.0f, std::log(4.0f)}});
  auto out = fused_sample_and_kl(mu, lv, torch::zeros({1, 2}));
  const double expected = 0.5 * (1.0 + 4.0 - 1.0 - std::log(4.0));
  EXPECT_NEAR(out[1].item<double>(), expected, 1e-6);
  EXPECT_NEAR(
      fused_sample_and_kl(torch::zeros({3, 2}), torch::zeros({3, 2}), torch::randn({3, 2}))[1]
          .item<double>(),
      0.0, 1e-7);
}

TEST(FusedLoss, BernoulliMatchesAutogradAndTheClosedForm) {
  torch::manual_seed(8);
  auto l = (torch::randn({5, 9}) * 3).requires_grad_();
  auto x = torch::bernoulli(torch::full({5, 9}, 0.4));
  auto s = fused_bernoulli_log_prob_sum(l, x);
  (s * 1.3).backward();
  auto l2 = l.detach().clone().requires_grad_();
  auto s2 = bernoulli_log_prob(l2, x).sum();
  (s2 * 1.3).backward();
  EXPECT_NEAR(s.item<double>(), s2.item<double>(), 1e-4);
  EXPECT_TRUE(torch::allclose(l.grad(), l2.grad(), 1e-5, 1e-6));
  // log sigmoid(0) = -log 2 per pixel.
  EXPECT_NEAR(
      fused_bernoulli_log_prob_sum(torch::zeros({2, 4}), torch::ones({2, 4})).item<double>(),
      -8 * std::log(2.0), 1e-5);
}

TEST(FusedLoss, TrainingLossEqualsTheElboLossWithTheSameRandomNumbers) {
  for (const double beta : {1.0, 4.0}) {
    torch::manual_seed(6);
    Vae vae(VaeOptions(12, parse_architecture("[10, 3]")));
    auto x = torch::bernoulli(torch::full({4, 12}, 0.3));
    torch::manual_seed(21);
    auto fused = training_loss(*vae, x, {}, beta);
    fused.loss.backward();
    std::vector<torch::Tensor> g1;
    for (const auto& p : vae->parameters()) g1.push_back(p.grad().clone());
    for (auto& p : vae->parameters()) p.mutable_grad().reset();
    torch::manual_seed(21);
    auto terms = elbo(*vae, x, {});
    auto ref = negative_beta_elbo_loss(terms, beta);
    ref.backward();
    EXPECT_NEAR(fused.loss.item<double>(), ref.item<double>(), 1e-5 * std::abs(ref.item<double>()));
    EXPECT_NEAR(fused.log_likelihood.item<double>(), terms.log_likelihood.sum().item<double>(),
                1e-3);
    EXPECT_NEAR(fused.kl.item<double>(), terms.kl.sum().item<double>(), 1e-4);
    auto params = vae->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::allclose(g1[i], params[i].grad(), 1e-4, 1e-6))
          << "beta " << beta << " parameter " << i;
    }
  }
}

TEST(FusedLoss, TrainingMatchesTheUnfusedPathToFloatNoise) {
  // The same run through torch::optim and the fused optimizer: the bounds agree.
  auto run = [](bool fused) {
    TensorData d = vaerepro::test::four_prototypes();
    Vae vae(VaeOptions(64, parse_architecture("[32, 2]")));
    OptimizerOptions o{"adagrad", 0.05, 0.0};
    o.fused = fused;
    auto opt = make_optimizer(vae->parameters(), o);
    TrainOptions t;
    t.total_samples = 256 * 5;
    t.batch_size = 32;
    t.progress_seconds = 0;
    return train_vae(*vae, *opt, d, t).curve.back().test.elbo;
  };
  const double a = run(true), b = run(false);
  EXPECT_NEAR(a, b, 1e-3 * std::abs(b)) << a << " vs " << b;
}

TEST(FusedLoss, ANonFiniteStepIsNamedWithItsTermAndLearningRate) {
  torch::manual_seed(1);
  TensorData d;
  d.train = torch::rand({64, 16});
  d.train_eval = d.train;
  d.test = d.train;
  d.train_labels = torch::zeros({64}, torch::kLong);
  d.test_labels = d.train_labels;
  d.height = 4;
  d.width = 4;
  Vae vae(VaeOptions(16, parse_architecture("[8, 2]")));
  auto opt = make_optimizer(vae->parameters(), {"sgd", 1e3, 0.0});
  TrainOptions t;
  t.total_samples = 64 * 200;
  t.batch_size = 16;
  t.progress_seconds = 0;
  try {
    train_vae(*vae, *opt, d, t);
    FAIL() << "expected a non-finite loss";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("non-finite at step "), std::string::npos) << m;
    EXPECT_NE(m.find("learning rate 1000"), std::string::npos) << m;
    EXPECT_NE(m.find("term"), std::string::npos) << m;
  }
}

TEST(FastBernoulli, SameValuesAndGeneratorStateAsTorch) {
  for (const auto& p :
       {torch::rand({100, 784}), torch::rand({3, 5}).t(), torch::rand({7}).to(torch::kDouble)}) {
    torch::manual_seed(123);
    auto expected = torch::bernoulli(p);
    auto after_expected = torch::rand({4});
    torch::manual_seed(123);
    auto got = bernoulli_sample(p);
    auto after_got = torch::rand({4});
    EXPECT_TRUE(torch::equal(expected, got)) << p.sizes();
    EXPECT_TRUE(torch::equal(after_expected, after_got)) << "the generator advanced differently";
  }
  // Extremes: p = 0 never, p = 1 always.
  EXPECT_EQ(bernoulli_sample(torch::zeros({1000})).sum().item<double>(), 0.0);
  EXPECT_EQ(bernoulli_sample(torch::ones({1000})).sum().item<double>(), 1000.0);
}

}  // namespace
