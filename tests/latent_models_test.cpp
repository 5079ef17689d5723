// Chapter 7's models (iwae.h, cnn_vae.h, corruption.h, latent_model.h,
// latent_train.h) and seed 002's threshold protocol, against cases with a
// known answer: the closed-form linear-Gaussian model (its exact log p(x)
// and ELBO), a two-stochastic-layer model small enough to integrate on a grid,
// finite differences for the k-sample gradient.
//
// Shapes: B = batch, D = pixels, K = importance samples, Z = latent size.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include "linear_gaussian.h"
#include "toy_data.h"
#include "vaerepro/cli.h"
#include "vaerepro/cnn_vae.h"
#include "vaerepro/corruption.h"
#include "vaerepro/distributions.h"
#include "vaerepro/iwae.h"
#include "vaerepro/latent_model.h"
#include "vaerepro/latent_train.h"
#include "vaerepro/trainer.h"

namespace {
using namespace vaerepro;
using vaerepro::testing::LinearGaussian;

// The linear-Gaussian fixture with a deliberately wrong posterior (shifted
// mean, too wide), so that the bounds are strictly below log p(x).
class LinearGaussianBounds : public LinearGaussian {
 protected:
  void perturb_posterior() {
    torch::NoGradGuard no_grad;
    vae->encoder->mu_head->bias.add_(0.4);
    vae->encoder->logvar_head->bias.add_(0.7);
  }
  // The exact ELBO: E_q log p(x|z) in closed form for the Gaussian decoder,
  // minus the analytic KL. [B] float64.
  torch::Tensor exact_elbo(const torch::Tensor& x) {
    torch::NoGradGuard no_grad;
    auto q = vae->encoder->forward(x);
    auto mu = q.mu.to(torch::kDouble), var = q.logvar.exp().to(torch::kDouble);  // [B, Z]
    auto Wd = W.to(torch::kDouble), bd = b.to(torch::kDouble);
    auto resid = x.to(torch::kDouble) - mu.matmul(Wd.t()) - bd;  // [B, D]
    auto spread = var.matmul(Wd.pow(2).t());                     // [B, D] sum_j W_dj^2 var_j
    auto ell = -0.5 * (kD * std::log(2 * M_PI * s2) + ((resid.pow(2) + spread) / s2).sum(-1));
    return ell - gaussian_kl_to_standard_normal(mu, var.log());
  }
};

TEST_F(LinearGaussianBounds, IwaeBoundAtOneSampleIsTheElboInExpectation) {
  perturb_posterior();
  VaeLatentModel model(vae);
  torch::NoGradGuard no_grad;
  auto x = data(4);
  const int64_t reps = 40000;
  auto xr = x.repeat({reps, 1});  // [reps * 4, D]
  auto l1 = iwae_bound(model, xr, xr, {}, 1).to(torch::kDouble).reshape({reps, 4});  // [reps, 4]
  auto mean = l1.mean(0), se = l1.std(0) / std::sqrt(static_cast<double>(reps));
  auto exact = exact_elbo(x);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(mean[i].item<double>(), exact[i].item<double>(), 4 * se[i].item<double>() + 1e-3)
        << "example " << i;
  }
  // And the one-sample ELBO terms estimate the same number.
  auto t = model.elbo_terms(xr, xr, {});
  auto e_mean = t.elbo.to(torch::kDouble).reshape({reps, 4}).mean(0);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_NEAR(e_mean[i].item<double>(), exact[i].item<double>(), 0.05);
}

TEST_F(LinearGaussianBounds, IwaeBoundRisesWithKTowardsLogPx) {
  perturb_posterior();
  VaeLatentModel model(vae);
  torch::NoGradGuard no_grad;
  auto x = data(3);
  auto exact = exact_log_px(x);
  std::vector<int64_t> ks = {1, 5, 50, 500};
  std::vector<torch::Tensor> means;
  for (int64_t k : ks) {
    const int64_t reps = 20000 / k + 200;
    auto xr = x.repeat({reps, 1});
    means.push_back(
        iwae_bound(model, xr, xr, {}, k).to(torch::kDouble).reshape({reps, 3}).mean(0));  // [3]
  }
  for (int64_t i = 0; i < 3; ++i) {
    for (size_t j = 1; j < ks.size(); ++j) {
      EXPECT_GE(means[j][i].item<double>(), means[j - 1][i].item<double>() - 0.01)
          << "k = " << ks[j] << " below k = " << ks[j - 1] << ", example " << i;
    }
    EXPECT_LT(means[0][i].item<double>(), exact[i].item<double>() - 0.05)
        << "the wrong posterior leaves a gap at k = 1";
    EXPECT_LE(means.back()[i].item<double>(), exact[i].item<double>() + 0.01);
    EXPECT_NEAR(means.back()[i].item<double>(), exact[i].item<double>(), 0.05);
  }
}

TEST_F(LinearGaussian, ImportanceSampledLatentMatchesTheClosedForm) {
  {
    torch::NoGradGuard no_grad;
    vae->encoder->logvar_head->bias.add_(
        0.5);  // not the exact posterior: the estimate has variance
  }
  VaeLatentModel model(vae);
  auto x = data(5);
  auto e = importance_sampled_latent(model, x, {}, 5000, 2);
  auto exact = exact_log_px(x);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(e.log_px[i].item<double>(), exact[i].item<double>(),
                4 * e.standard_error[i].item<double>() + 2e-3);
    EXPECT_GT(e.standard_error[i].item<double>(), 0.0);
  }
}

TEST_F(LinearGaussian, ExactPosteriorMakesEveryLogWeightLogPx) {
  VaeLatentModel model(vae);
  torch::NoGradGuard no_grad;
  auto x = data(3);
  auto lw = model.log_weights(x, x, {}, 7).to(torch::kDouble);  // [7, 3]
  auto exact = exact_log_px(x);
  EXPECT_TRUE(torch::allclose(lw, exact.unsqueeze(0).expand_as(lw), 1e-4, 1e-4));
}

// A tiny two-layer model in float64 with one-dimensional h1 and h2 and three
// binary pixels: p(x) integrates on a grid over (h2, h1).
TwoLayerVae tiny_two_layer(int64_t d = 3) {
  torch::manual_seed(7);
  TwoLayerVae m(TwoLayerVaeOptions(d, 1, 1).hidden1(4).hidden2(3));
  m->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.mul_(1.5);
  return m;
}

double grid_log_px(TwoLayerVae& m, const torch::Tensor& x) {  // x [D] float64
  torch::NoGradGuard no_grad;
  const int64_t n = 1200;
  auto g2 = torch::linspace(-8, 8, n, torch::kDouble);
  auto prior1 = m->p1->forward(g2.unsqueeze(1));  // [n, 1]
  // h1 on a grid wide enough for every p(h1 | h2) the h2 grid gives.
  const double lo = (prior1.mu - 8 * torch::exp(0.5 * prior1.logvar)).min().item<double>();
  const double hi = (prior1.mu + 8 * torch::exp(0.5 * prior1.logvar)).max().item<double>();
  auto g1 = torch::linspace(lo, hi, n, torch::kDouble);
  auto logits = m->px_logits(m->px_body->forward(g1.unsqueeze(1)));  // [n, D]
  auto log_lik = bernoulli_log_prob(logits, x.unsqueeze(0));         // [n] over h1
  auto log_p1 = gaussian_log_prob(g1.view({1, n, 1}), prior1.mu.view({n, 1, 1}),
                                  prior1.logvar.view({n, 1, 1}));    // [n2, n1]
  auto log_p2 = standard_normal_log_prob(g2.unsqueeze(1));           // [n]
  auto joint = log_p2.unsqueeze(1) + log_p1 + log_lik.unsqueeze(0);  // [n2, n1]
  const double cell = std::log((16.0 / (n - 1)) * ((hi - lo) / (n - 1)));
  return torch::logsumexp(joint.flatten(), 0).item<double>() + cell;
}

TEST(TwoLayerVae, ImportanceSampledLogPxMatchesNumericalIntegration) {
  auto m = tiny_two_layer();
  // The grid is itself checked: p(x) over the eight binary images sums to one.
  double total = 0;
  std::vector<torch::Tensor> xs;
  for (int v = 0; v < 8; ++v) {
    auto x =
        torch::tensor({double(v & 1), double((v >> 1) & 1), double((v >> 2) & 1)}, torch::kDouble);
    xs.push_back(x);
    total += std::exp(grid_log_px(m, x));
  }
  EXPECT_NEAR(total, 1.0, 1e-3);
  auto x = torch::stack(xs);  // [8, 3]
  torch::manual_seed(3);
  auto e = importance_sampled_latent(*m, x, {}, 20000, 8);
  for (int v = 0; v < 8; ++v) {
    const double exact = grid_log_px(m, xs[v]);
    EXPECT_NEAR(e.log_px[v].item<double>(), exact, 5 * e.standard_error[v].item<double>() + 2e-3)
        << "image " << v;
  }
}

TEST(TwoLayerVae, IwaeBoundAtOneSampleEqualsItsElbo) {
  auto m = tiny_two_layer(5);
  auto x = (torch::rand({6, 5}) > 0.5).to(torch::kDouble);
  torch::manual_seed(21);
  auto bound = iwae_bound(*m, x, x, {}, 1);
  torch::manual_seed(21);
  auto terms = m->elbo_terms(x, x, {});
  EXPECT_TRUE(torch::allclose(bound, terms.elbo, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(terms.elbo, terms.log_likelihood - terms.kl, 1e-12, 1e-12));
}

TEST(TwoLayerVae, IwaeBoundIsNonDecreasingInKOnAverage) {
  auto m = tiny_two_layer(5);
  torch::NoGradGuard no_grad;
  auto x = (torch::rand({4, 5}) > 0.5).to(torch::kDouble);
  double previous = -1e300;
  for (int64_t k : {1, 2, 10, 50}) {
    const int64_t reps = 4000;
    auto xr = x.repeat({reps, 1});
    const double mean = iwae_bound(*m, xr, xr, {}, k).mean().item<double>();
    EXPECT_GE(mean, previous - 2e-3) << "k = " << k;
    previous = mean;
  }
}

// The gradient of the k-sample bound: autograd's through logsumexp equals the
// normalised-weight form sum_i w~_i grad log w_i (Burda et al. eq. 14, seed
// 002 eq. 8), and both equal central finite differences (the noise fixed by
// reseeding: the bound is then a smooth function of the parameters).
TEST(TwoLayerVae, KSampleGradientMatchesNormalisedWeightsAndFiniteDifferences) {
  auto m = tiny_two_layer(5);
  auto x = (torch::rand({3, 5}) > 0.5).to(torch::kDouble);
  const int64_t k = 7;
  auto bound_at = [&]() {
    torch::manual_seed(99);
    return iwae_bound(*m, x, x, {}, k).sum();
  };
  auto params = m->parameters();
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  bound_at().backward();
  std::vector<torch::Tensor> autograd;
  for (auto& p : params) autograd.push_back(p.grad().clone());

  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  torch::manual_seed(99);
  auto lw = m->log_weights(x, x, {}, k);          // [K, B]
  auto weights = torch::softmax(lw.detach(), 0);  // [K, B] normalised
  (weights * lw).sum().backward();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(params[i].grad(), autograd[i], 1e-10, 1e-12)) << "parameter " << i;
  }

  const double h = 1e-6;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); i += 3) {
    auto flat = params[i].view({-1});
    const int64_t j = flat.size(0) / 2;
    const double saved = flat[j].item<double>();
    flat[j] = saved + h;
    const double up = bound_at().item<double>();
    flat[j] = saved - h;
    const double down = bound_at().item<double>();
    flat[j] = saved;
    const double fd = (up - down) / (2 * h);
    EXPECT_NEAR(autograd[i].view({-1})[j].item<double>(), fd, 1e-5 * std::max(1.0, std::abs(fd)))
        << "parameter " << i;
  }
}

TEST(TwoLayerVae, ShapesAndGradientReachEveryParameter) {
  torch::manual_seed(1);
  TwoLayerVae m(TwoLayerVaeOptions(784, 100, 3));
  auto x = (torch::rand({4, 784}) > 0.5).to(torch::kFloat);
  auto lw = m->log_weights(x, x, {}, 5);
  EXPECT_EQ(lw.sizes(), (std::vector<int64_t>{5, 4}));
  auto means = m->posterior_means(x, {});
  ASSERT_EQ(means.size(), 2u);
  EXPECT_EQ(means[0].sizes(), (std::vector<int64_t>{4, 100}));
  EXPECT_EQ(means[1].sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(m->sample(6, {}).sizes(), (std::vector<int64_t>{6, 784}));
  EXPECT_EQ(m->reconstruct(x, {}).sizes(), (std::vector<int64_t>{4, 784}));
  iwae_bound(*m, x, x, {}, 5).sum().backward();
  for (const auto& p : m->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(CnnVae, ShapesAndGradientReachEveryParameter) {
  torch::manual_seed(2);
  CnnVae m(CnnVaeOptions(5));
  auto x = (torch::rand({6, 784}) > 0.5).to(torch::kFloat);
  auto q = m->encode(x);
  EXPECT_EQ(q.mu.sizes(), (std::vector<int64_t>{6, 5}));
  EXPECT_EQ(q.logvar.sizes(), (std::vector<int64_t>{6, 5}));
  EXPECT_EQ(m->decode(torch::randn({3, 6, 5})).sizes(), (std::vector<int64_t>{3, 6, 784}));
  EXPECT_EQ(m->sample(4, {}).sizes(), (std::vector<int64_t>{4, 784}));
  m->train();
  auto t = m->elbo_terms(x, x, {});
  EXPECT_EQ(t.elbo.sizes(), (std::vector<int64_t>{6}));
  EXPECT_TRUE((t.kl >= 0).all().item<bool>());
  (-t.elbo.mean()).backward();
  for (const auto& p : m->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
  // In eval mode an example's encoding and decoding do not depend on its batch.
  m->eval();
  torch::NoGradGuard no_grad;
  auto alone = m->encode(x.narrow(0, 0, 1));
  auto all = m->encode(x);
  EXPECT_TRUE(torch::allclose(alone.mu[0], all.mu[0], 1e-4, 1e-5));
  EXPECT_TRUE(
      torch::allclose(m->decode(all.mu.narrow(0, 0, 1))[0], m->decode(all.mu)[0], 1e-4, 1e-4));
  EXPECT_EQ(m->log_weights(x, x, {}, 3).sizes(), (std::vector<int64_t>{3, 6}));
}

TEST(Corruption, SaltAndPepperStatistics) {
  torch::manual_seed(8);
  const double level = 0.05;
  // Gray images: every changed pixel was chosen, and is 0 or 1 by a fair coin.
  auto gray = torch::full({400, 784}, 0.5);
  auto y = salt_and_pepper(gray, level);
  auto changed = y.ne(0.5);
  const double n = static_cast<double>(gray.numel());
  const double chosen = changed.sum().item<double>() / n;
  EXPECT_NEAR(chosen, level, 4 * std::sqrt(level * (1 - level) / n));
  auto values = y.masked_select(changed);
  EXPECT_TRUE((values.eq(0) | values.eq(1)).all().item<bool>());
  const double ones = values.mean().item<double>();
  EXPECT_NEAR(ones, 0.5, 4 * 0.5 / std::sqrt(static_cast<double>(values.numel())));
  // Binary images: half the chosen pixels already have the coin's value, so
  // level / 2 of the pixels flip, in both directions alike.
  auto x = (torch::rand({400, 784}) > 0.7).to(torch::kFloat);
  auto z = salt_and_pepper(x, level);
  EXPECT_TRUE((z.eq(0) | z.eq(1)).all().item<bool>());
  const double flipped = z.ne(x).sum().item<double>() / n;
  EXPECT_NEAR(flipped, level / 2, 4 * std::sqrt(level / 2 / n));
  const double up = (z.gt(x)).sum().item<double>() / x.eq(0).sum().item<double>();
  const double down = (z.lt(x)).sum().item<double>() / x.eq(1).sum().item<double>();
  EXPECT_NEAR(up, level / 2, 0.004);
  EXPECT_NEAR(down, level / 2, 0.006);
  EXPECT_TRUE(torch::equal(salt_and_pepper(x, 0.0), x));
  EXPECT_THROW(salt_and_pepper(x, 1.5), std::invalid_argument);
  EXPECT_THROW(salt_and_pepper(x, -0.1), std::invalid_argument);
}

TEST(ThresholdProtocol, EveryPixelAboveZeroIsOneAndNothingIsResampled) {
  Dataset d;
  d.height = 2;
  d.width = 2;
  d.num_classes = 2;
  d.train.images = torch::tensor({0, 1, 128, 255, 0, 0, 3, 200}, torch::kUInt8).reshape({2, 2, 2});
  d.train.labels = torch::tensor({0, 1}, torch::kLong);
  d.test.images = torch::tensor({0, 0, 1, 0}, torch::kUInt8).reshape({1, 2, 2});
  d.test.labels = torch::tensor({1}, torch::kLong);
  auto t = prepare_tensors(d, Protocol::kThreshold, torch::kCPU);
  EXPECT_TRUE(torch::equal(t.train, torch::tensor({{0.f, 1.f, 1.f, 1.f}, {0.f, 0.f, 1.f, 1.f}})));
  EXPECT_TRUE(torch::equal(t.train_eval, t.train));
  EXPECT_TRUE(torch::equal(t.test, torch::tensor({{0.f, 0.f, 1.f, 0.f}})));
  EXPECT_NEAR(t.test_gray[0][2].item<double>(), 1.0 / 255, 1e-7);
  auto idx = torch::tensor({1, 0}, torch::kLong);
  EXPECT_TRUE(torch::equal(t.train_batch(idx), t.train.index_select(0, idx)));
  EXPECT_EQ(parse_protocol("threshold"), Protocol::kThreshold);
  EXPECT_EQ(to_string(Protocol::kThreshold), "threshold");
  EXPECT_EQ(t.to_json()["protocol"], "threshold");
}

TEST(LatentTrain, EveryObjectiveLearnsAndStaysFinite) {
  auto data = test::four_prototypes();
  struct Case {
    const char* name;
    ObjectiveOptions objective;
    double corruption;
  };
  for (const Case& c : {Case{"elbo", {Objective::kElbo, 1.0, 1}, 0.0},
                        Case{"beta", {Objective::kElbo, 4.0, 1}, 0.0},
                        Case{"iwae", {Objective::kIwae, 1.0, 5}, 0.0},
                        Case{"dvae", {Objective::kElbo, 1.0, 1}, 0.05}}) {
    torch::manual_seed(3);
    TwoLayerVae m(TwoLayerVaeOptions(64, 8, 2).hidden1(32).hidden2(16));
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
    LatentTrainOptions o;
    o.total_samples = 256 * 15;
    o.batch_size = 32;
    o.objective = c.objective;
    o.corruption = c.corruption;
    o.eval_at = {256};
    o.progress_seconds = 0;
    o.label = c.name;
    auto before = evaluate_latent_elbo(*m, data.test, {}).elbo;
    auto r = train_latent_model(*m, opt, data, o);
    EXPECT_EQ(r.samples_seen, o.total_samples) << c.name;
    ASSERT_EQ(r.curve.size(), 2u) << c.name;
    EXPECT_GT(r.curve.back().test_elbo, before + 5) << c.name;
    EXPECT_TRUE(std::isfinite(r.curve.back().train_objective)) << c.name;
  }
}

// A run stopped part-way (SIGTERM's flag, raised from another thread at an
// arbitrary step) and resumed from its checkpoint ends with bitwise the
// parameters of an uninterrupted run: the checkpoint carries the model, the
// optimizer, the generator, the epoch's order and the counters.
TEST(LatentTrain, AStoppedRunResumesToTheSameParameters) {
  auto data = test::four_prototypes();
  const auto path = std::filesystem::temp_directory_path() /
                    ("vaerepro-latent-ckpt-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  auto train = [&](bool checkpointed, bool stop_early) {
    torch::manual_seed(5);
    TwoLayerVae m(TwoLayerVaeOptions(64, 8, 2).hidden1(32).hidden2(16));
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
    LatentTrainOptions o;
    o.total_samples = 256 * 40;
    o.batch_size = 24;  // not a divisor of 256: epochs end with a dropped partial batch
    o.objective = {Objective::kIwae, 1.0, 3};
    o.corruption = 0.05;
    o.eval_at = {512, 2048};
    o.progress_seconds = 0;
    o.label = "resume";
    if (checkpointed) {
      o.checkpoint.path = path.string();
      o.checkpoint.config_hash = "test";
      o.checkpoint.every_seconds = 1e-9;  // after every step
    }
    std::thread stopper;
    if (stop_early)
      stopper = std::thread([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        request_stop(SIGTERM);
      });
    bool interrupted = false;
    try {
      train_latent_model(*m, opt, data, o);
    } catch (const Interrupted&) {
      interrupted = true;
    }
    if (stopper.joinable()) stopper.join();
    clear_stop();
    return std::make_pair(m, interrupted);
  };
  auto [reference, r0] = train(false, false);
  ASSERT_FALSE(r0);
  auto [first, stopped] = train(true, true);
  ASSERT_TRUE(stopped) << "the stop came after the run ended: make the run longer";
  auto [resumed, r2] =
      train(true, false);  // a fresh process would start here: a new model, the same seed
  ASSERT_FALSE(r2);
  auto a = reference->parameters(), b = resumed->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  std::filesystem::remove(path);
}

TEST(LatentActivity, CountsUnitsWhosePosteriorMeanVaries) {
  torch::manual_seed(4);
  Vae vae(VaeOptions(6, Architecture{{}, 3}).init_std(0.0));
  {
    torch::NoGradGuard no_grad;
    vae->encoder->mu_head->weight.zero_();
    vae->encoder->mu_head->weight[0][0] =
        1.0;  // unit 0 follows pixel 0: variance 1/4 on fair coins
    vae->encoder->mu_head->weight[1][1] = 0.05;  // unit 1: variance 6.25e-4, below 1e-2
  }
  VaeLatentModel model(vae);
  auto x = (torch::rand({4000, 6}) > 0.5).to(torch::kFloat);
  auto a = latent_activity(model, x, {});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].active_units, 1);
  EXPECT_NEAR(a[0].activity[0], 0.25, 0.01);
  EXPECT_NEAR(a[0].activity[2], 0.0, 1e-12);
}

}  // namespace
