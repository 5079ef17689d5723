// Models, the ELBO and the importance-weighted bound, checked on a
// linear-Gaussian model whose log p(x) is known in closed form.
//
// Shapes: B = batch, D = observed, Z = latent, K = importance samples.
#include <gtest/gtest.h>

#include <cmath>

#include "vaerepro/cli.h"
#include "vaerepro/distributions.h"
#include "vaerepro/schema/metrics.h"
#include "vaerepro/models.h"
#include "vaerepro/objectives.h"
#include "vaerepro/trainer.h"
#include "toy_data.h"
#include "linear_gaussian.h"

namespace {
using namespace vaerepro;
using vaerepro::testing::LinearGaussian;

TEST(Architecture, ParsesSeedNotation) {
  auto a = parse_architecture("[500, 500, 3]");
  EXPECT_EQ(a.hidden, (std::vector<int64_t>{500, 500}));
  EXPECT_EQ(a.latent, 3);
  EXPECT_EQ(a.to_string(), "[500, 500, 3]");
  EXPECT_EQ(parse_architecture("20").hidden.size(), 0u);
  EXPECT_THROW(parse_architecture("[]"), std::invalid_argument);
  EXPECT_THROW(parse_architecture("[500, 0]"), std::invalid_argument);
  EXPECT_THROW(parse_architecture("[500, -3]"), std::invalid_argument);
  EXPECT_THROW(parse_architecture("[500, x]"), std::invalid_argument);
}

TEST(Architecture, AnOptionsErrorNamesTheOption) {
  EXPECT_EQ(parse_architecture_option("[500, 500, 3]", "arch").to_string(), "[500, 500, 3]");
  try {
    parse_architecture_option("[500, 0]", "arch");
    FAIL() << "no UsageError";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--arch: ", 0), 0u) << e.what();
  }
}

TEST(Vae, ShapesUnconditional) {
  torch::manual_seed(0);
  Vae vae(VaeOptions(784, parse_architecture("[500, 20]")));
  auto out = vae->forward(torch::rand({8, 784}));
  EXPECT_EQ(out.posterior.mu.sizes(), torch::IntArrayRef({8, 20}));
  EXPECT_EQ(out.posterior.logvar.sizes(), torch::IntArrayRef({8, 20}));
  EXPECT_EQ(out.z.sizes(), torch::IntArrayRef({8, 20}));
  EXPECT_EQ(out.decoded.loc.sizes(), torch::IntArrayRef({8, 784}));
  EXPECT_FALSE(out.decoded.logvar.defined());
  EXPECT_EQ(vae->parameter_count(),
            (784 * 500 + 500) + 2 * (500 * 20 + 20) + (20 * 500 + 500) + (500 * 784 + 784));
}

TEST(Vae, ShapesConditionalOneHotAndRaw) {
  torch::manual_seed(0);
  auto labels = torch::tensor({0, 3, 9, 1}, torch::kLong);
  for (auto enc : {ConditionEncoding::kOneHot, ConditionEncoding::kRaw}) {
    const int64_t c_dim = condition_dim(enc, 10);
    Vae vae(VaeOptions(784, parse_architecture("[64, 64, 3]"))
                .condition_dim(c_dim)
                .activation(Activation::kRelu));
    auto c = encode_condition(labels, enc, 10);
    EXPECT_EQ(c.sizes(), torch::IntArrayRef({4, c_dim}));
    auto out = vae->forward(torch::rand({4, 784}), c);
    EXPECT_EQ(out.decoded.loc.sizes(), torch::IntArrayRef({4, 784}));
    // The decoder's output depends on the label.
    auto z = torch::zeros({1, 3});
    auto a =
        vae->decoder->forward(z, encode_condition(torch::tensor({1}, torch::kLong), enc, 10)).loc;
    auto b =
        vae->decoder->forward(z, encode_condition(torch::tensor({7}, torch::kLong), enc, 10)).loc;
    EXPECT_GT((a - b).abs().max().item<double>(), 0.0);
  }
}

TEST(Vae, GradientsReachEveryParameter) {
  torch::manual_seed(1);
  for (auto lik : {Likelihood::kBernoulli, Likelihood::kGaussian}) {
    Vae vae(VaeOptions(784, parse_architecture("[32, 16, 4]")).likelihood(lik).condition_dim(10));
    auto x = torch::rand({16, 784});
    auto c =
        encode_condition(torch::randint(0, 10, {16}, torch::kLong), ConditionEncoding::kOneHot, 10);
    negative_beta_elbo_loss(elbo(*vae, x, c), 2.0).backward();
    for (const auto& p : vae->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key() << " gets no gradient";
    }
  }
}

TEST(Objectives, BetaOneIsTheNegativeElbo) {
  torch::manual_seed(2);
  Vae vae(VaeOptions(20, parse_architecture("[8, 2]")));
  auto terms = elbo(*vae, torch::rand({5, 20}).round());
  EXPECT_NEAR(negative_beta_elbo_loss(terms, 1.0).item<double>(), -terms.elbo.mean().item<double>(),
              1e-5);
  EXPECT_TRUE(torch::allclose(terms.elbo, terms.log_likelihood - terms.kl));
}

TEST_F(LinearGaussian, ExactPosteriorMakesEveryLogWeightEqualLogPx) {
  auto x = data(6);
  torch::NoGradGuard no_grad;
  auto lw = importance_log_weights(*vae, x, {}, 50);  // [K, B]
  auto truth = exact_log_px(x);                       // [B]
  EXPECT_LT((lw - truth.unsqueeze(0)).abs().max().item<double>(), 1e-4);
  auto bound = importance_weighted_bound(*vae, x, {}, 5000, 1000);
  EXPECT_LT((bound - truth).abs().max().item<double>(), 1e-4);
}

TEST_F(LinearGaussian, ElboEqualsLogPxForTheExactPosterior) {
  auto x = data(3);
  torch::NoGradGuard no_grad;
  auto reps = x.repeat({20000, 1});  // [20000 * 3, D]
  auto e = elbo(*vae, reps).elbo.to(torch::kDouble).view({20000, 3});
  auto mean = e.mean(0), se = e.std(0) / std::sqrt(20000.0);
  auto truth = exact_log_px(x);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(mean[i].item<double>(), truth[i].item<double>(), 5 * se[i].item<double>() + 1e-4);
  }
}

TEST_F(LinearGaussian, BoundsAreBelowLogPxAndTightenWithK) {
  {  // a worse q: shifted mean, twice as wide as the posterior (a proposal with
     // lighter tails than the target would converge too slowly to test)
    torch::NoGradGuard no_grad;
    vae->encoder->mu_head->bias.add_(0.4);
    vae->encoder->logvar_head->bias.add_(std::log(2.0));
  }
  auto x = data(8);
  torch::NoGradGuard no_grad;
  auto truth = exact_log_px(x).mean().item<double>();
  auto mean_bound = [&](int64_t k, int reps) {
    double s = 0;
    for (int r = 0; r < reps; ++r)
      s += importance_weighted_bound(*vae, x, {}, k).mean().item<double>();
    return s / reps;
  };
  const double elbo_mean =
      elbo(*vae, x.repeat({5000, 1})).elbo.to(torch::kDouble).mean().item<double>();
  const double l1 = mean_bound(1, 400), l10 = mean_bound(10, 100), l1000 = mean_bound(1000, 10);
  EXPECT_LT(elbo_mean, truth - 0.05);
  EXPECT_LT(l1, l10);
  EXPECT_LT(l10, l1000);
  EXPECT_LE(l1000, truth + 0.01);
  EXPECT_NEAR(l1000, truth, 0.02);
}

TEST(ImportanceWeightedBound, LogWeightsNearMinus1e4DoNotUnderflow) {
  // A Bernoulli model that is confidently wrong on every pixel: log-weights
  // around -1e4. exp() would underflow to 0 and the log to -inf.
  torch::manual_seed(5);
  Vae vae(VaeOptions(784, Architecture{{}, 2}).init_std(0.0));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : vae->parameters()) p.zero_();  // q(z|x) = N(0, I) = p(z); decoder ignores z
    vae->decoder->loc_head->bias.fill_(13.0);     // p(pixel = 1) ~ 1 - 2e-6
  }
  auto x = torch::zeros({2, 784});  // every pixel 0: log p(x|z) ~ -784 * 13 ~ -1.0e4
  torch::NoGradGuard no_grad;
  auto bound = importance_weighted_bound(*vae, x, {}, 100, 784 * 2 * 7);  // several chunks
  ASSERT_TRUE(torch::isfinite(bound).all().item<bool>());
  // Every log-weight is log p(x|z) + log p(z) - log q(z|x) with q = p(z) here, so the
  // bound equals log p(x|z) = -784 * softplus(13) exactly.
  const double expected = -784.0 * std::log1p(std::exp(13.0));
  EXPECT_NEAR(bound[0].item<double>(), expected, 0.05);
  EXPECT_NEAR(bound[1].item<double>(), expected, 0.05);
}

TEST(Trainer, LogSpacedMarks) {
  auto m = log_spaced_marks(100, 100000, 4, 100);
  EXPECT_EQ(m.front(), 100);
  EXPECT_EQ(m.back(), 100000);
  for (size_t i = 1; i < m.size(); ++i) EXPECT_GT(m[i], m[i - 1]);
  for (auto v : m) EXPECT_EQ(v % 100, 0);
}

TEST(Trainer, LogSpacedTrainingIsTheChaptersSchedule) {
  // 3000 samples in batches of 100: marks from max(100, 30) = 100 to 3000.
  const TrainOptions t = training_schedule(3000, 100, 3);
  EXPECT_EQ(t.total_samples, 3000);
  EXPECT_EQ(t.batch_size, 100);
  EXPECT_EQ(t.eval_at, log_spaced_marks(100, 3000, 3, 100));
  // 100 x 547 ~ sqrt(100 x 3000), rounded to a multiple of the batch: 500.
  EXPECT_EQ(t.eval_at, (std::vector<int64_t>{100, 500, 3000}));
  // A large budget starts at a hundredth of it.
  EXPECT_EQ(training_schedule(1000000, 100, 2).eval_at, (std::vector<int64_t>{10000, 1000000}));
}

TEST(Trainer, SetMetricsAndCurvePointsUseTheSchemaKeys) {
  namespace k = schema::key;
  const SetMetrics m{-101.25, -90.5, 10.75, 7};
  const nlohmann::json j = m.to_json();
  EXPECT_EQ(j.dump(), R"({"elbo":-101.25,"examples":7,"kl":10.75,"log_likelihood":-90.5})");
  EXPECT_EQ(j.at(k::kElbo), -101.25);
  EXPECT_EQ(j.at(k::kLogLikelihood), -90.5);
  EXPECT_EQ(j.at(k::kKl), 10.75);
  EXPECT_EQ(j.at(k::kExamples), 7);
  CurvePoint p;
  p.samples_seen = 300;
  p.epochs = 0.5;
  p.train = m;
  p.test = SetMetrics{-102, -91, 11, 3};
  p.wall_seconds = 1.5;
  const nlohmann::json pj = p.to_json();
  EXPECT_EQ(pj.at(k::kSamplesSeen), 300);
  EXPECT_EQ(pj.at(k::kTest).at(k::kElbo), -102);
  const CurvePoint back = CurvePoint::from_json(pj);
  EXPECT_EQ(back.to_json(), pj);
  EXPECT_EQ(back.train.log_likelihood, -90.5);
}

TEST(Trainer, TrainingImprovesTheBound) {
  TensorData d = vaerepro::test::four_prototypes(512, 128);  // gray levels near 4 binary prototypes
  Vae vae(VaeOptions(64, parse_architecture("[32, 2]")));
  auto opt = make_optimizer(vae->parameters(), {"adam", 1e-2, 0.0});
  TrainOptions o;
  o.total_samples = 512 * 30;
  o.batch_size = 64;
  o.eval_at = {512};
  o.progress_seconds = 0;
  auto r = train_vae(*vae, *opt, d, o);
  ASSERT_EQ(r.curve.size(), 2u);
  EXPECT_EQ(r.samples_seen, 512 * 30);
  EXPECT_GT(r.curve.back().test.elbo, r.curve.front().test.elbo + 5.0);
}

}  // namespace

namespace {
using namespace vaerepro;

TEST(ConvBlocks, ShapesAndGradients) {
  torch::manual_seed(9);
  ConvEncoder enc(ConvOptions(16, 2));
  ConvDecoder dec(ConvOptions(16, 2));
  auto x = torch::rand({3, 1, 28, 28});
  auto z = enc->forward(x);
  EXPECT_EQ(z.sizes(), torch::IntArrayRef({3, 2, 7, 7}));
  auto y = dec->forward(z);
  EXPECT_EQ(y.sizes(), torch::IntArrayRef({3, 1, 28, 28}));
  torch::binary_cross_entropy_with_logits(y, x).backward();
  for (auto* m :
       {static_cast<torch::nn::Module*>(enc.get()), static_cast<torch::nn::Module*>(dec.get())}) {
    for (const auto& p : m->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}

}  // namespace
