// The quantizer's codebook choices against hand-computed cases: the EMA
// update of vdO2017 appendix A.1 (with Sonnet's Laplace smoothing) in closed
// form, dead-code restarts that move exactly the dead codes onto batch
// vectors, initialisation from encoder outputs, a toy problem whose codebook
// collapses without restarts; then chapter 5's measures (vq_metrics.h): the
// judge, seed 000's Table 1 metrics, the bound and the usage bars.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "vaerepro/quantizer.h"
#include "vaerepro/vq_metrics.h"

using namespace vaerepro;

namespace {

class QuantizerTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(11); }
};

/// True when row `row` of `codebook` equals (bit for bit) some row of `batch`.
bool is_a_row_of(const torch::Tensor& codebook, int64_t row, const torch::Tensor& batch) {
  for (int64_t j = 0; j < batch.size(0); ++j) {
    if (torch::equal(codebook[row], batch[j])) return true;
  }
  return false;
}

/// `flat` [M, D] as a z_e map [1, D, 1, M].
torch::Tensor as_map(const torch::Tensor& flat) {
  return flat.t().unsqueeze(0).unsqueeze(2).contiguous();
}

TEST_F(QuantizerTest, EmaUpdateEqualsItsClosedForm) {
  CodebookOptions co;
  co.update = CodebookUpdate::kEma;
  co.decay = 0.9;
  co.epsilon = 0.1;  // large, so that the Laplace smoothing shows
  VectorQuantizer vq(VectorQuantizerOptions(3, 2).codebook(co));
  const std::vector<std::vector<double>> e0 = {{0, 0}, {4, 0}, {0, 4}};
  {
    torch::NoGradGuard no_grad;
    vq->codebook.copy_(torch::tensor({0.0f, 0.0f, 4.0f, 0.0f, 0.0f, 4.0f}).view({3, 2}));
    vq->ema_sum.copy_(vq->codebook);  // the state after construction: N = 1, m = e
  }
  EXPECT_TRUE(vq->codebook.requires_grad() == false)
      << "an EMA codebook is a buffer, not an Adam parameter";
  // Four vectors, three nearest code 0 and one nearest code 1 (by hand):
  const std::vector<std::vector<double>> x = {{0.5, 0.2}, {-0.3, 0.1}, {3.5, 0.5}, {0.2, -0.4}};
  const std::vector<int> assign = {0, 0, 1, 0};
  auto flat = torch::tensor({0.5f, 0.2f, -0.3f, 0.1f, 3.5f, 0.5f, 0.2f, -0.4f}).view({4, 2});
  vq->train();
  auto q = vq->forward(as_map(flat));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(q.codes[0][0][i].item<int64_t>(), assign[i]);
  // z_q holds the codebook before the update.
  EXPECT_FLOAT_EQ(q.z_q[0][0][0][2].item<float>(), 4.0f);
  // Closed form: n = (3, 1, 0); N = 0.9 * 1 + 0.1 n; m = 0.9 e0 + 0.1 sum;
  // N~ = (N + eps) / (sum N + K eps) * sum N; e = m / N~.
  const double n[3] = {3, 1, 0};
  double sum[3][2] = {{0, 0}, {0, 0}, {0, 0}};
  for (int i = 0; i < 4; ++i) {
    for (int d = 0; d < 2; ++d) sum[assign[i]][d] += x[i][d];
  }
  double big_n[3], total = 0;
  for (int k = 0; k < 3; ++k) total += (big_n[k] = 0.9 + 0.1 * n[k]);
  for (int k = 0; k < 3; ++k) {
    const double smoothed = (big_n[k] + 0.1) / (total + 3 * 0.1) * total;
    EXPECT_NEAR(vq->ema_count[k].item<double>(), big_n[k], 1e-6) << "code " << k;
    for (int d = 0; d < 2; ++d) {
      const double m = 0.9 * e0[k][d] + 0.1 * sum[k][d];
      EXPECT_NEAR(vq->ema_sum[k][d].item<double>(), m, 1e-6) << "code " << k << ", dim " << d;
      EXPECT_NEAR(vq->codebook[k][d].item<double>(), m / smoothed, 1e-6)
          << "code " << k << ", dim " << d;
    }
  }
  EXPECT_EQ(vq->steps.item<int64_t>(), 1);
  // In eval mode nothing moves.
  auto before = vq->codebook.clone();
  vq->eval();
  vq->forward(as_map(flat));
  EXPECT_TRUE(torch::equal(before, vq->codebook));
  EXPECT_EQ(vq->steps.item<int64_t>(), 1);
}

TEST_F(QuantizerTest, RestartMovesExactlyTheDeadCodesOntoBatchVectors) {
  CodebookOptions co;  // gradient update: only the restart moves codes
  co.restart_threshold = 1.0;
  VectorQuantizer vq(VectorQuantizerOptions(6, 3).codebook(co));
  auto flat = torch::randn({10, 3}) * 0.1;  // [M, D]
  {
    torch::NoGradGuard no_grad;
    vq->codebook.copy_(torch::randn({6, 3}) * 3);
    vq->codebook[0].zero_();  // every batch vector is nearest to code 0 or to a code far from none
    vq->usage.copy_(torch::tensor({5.0f, 0.2f, 3.0f, 0.5f, 1.005f, 0.1f}));
  }
  auto codes = vq->nearest(flat);
  auto before = vq->codebook.detach().clone();
  auto usage_before = vq->usage.clone();
  vq->update(flat, codes);
  // Expected dead set: 0.99 u + 0.01 n < 1.
  auto counts = torch::bincount(codes, {}, 6).to(torch::kFloat32);
  auto expected_usage = 0.99 * usage_before + 0.01 * counts;
  int64_t dead_expected = 0;
  for (int64_t k = 0; k < 6; ++k) {
    const bool dead = expected_usage[k].item<float>() < 1.0f;
    dead_expected += dead;
    if (dead) {
      EXPECT_TRUE(is_a_row_of(vq->codebook.detach(), k, flat))
          << "dead code " << k << " is not on a batch vector";
      EXPECT_FLOAT_EQ(vq->usage[k].item<float>(), 1.0f)
          << "a restarted code's use average restarts at the threshold";
    } else {
      EXPECT_TRUE(torch::equal(vq->codebook[k].detach(), before[k]))
          << "live code " << k << " moved";
      EXPECT_FLOAT_EQ(vq->usage[k].item<float>(), expected_usage[k].item<float>());
    }
  }
  EXPECT_GE(dead_expected, 3);  // codes 1, 3 and 5 at least
  EXPECT_EQ(vq->restarts(), dead_expected);
  EXPECT_EQ(vq->codes_below(1.0), 0);
}

TEST_F(QuantizerTest, InitialisationFromEncoderOutputsPutsEveryCodeOnABatchVector) {
  for (const int64_t k : {8, 40}) {  // M = 18 vectors: without replacement, then with
    CodebookOptions co;
    co.init = CodebookInit::kData;
    VectorQuantizer vq(VectorQuantizerOptions(k, 4).codebook(co));
    vq->train();
    auto z_e = torch::randn({2, 4, 3, 3});
    auto flat = z_e.permute({0, 2, 3, 1}).reshape({-1, 4});  // [18, 4]
    vq->forward(z_e);
    for (int64_t c = 0; c < k; ++c)
      EXPECT_TRUE(is_a_row_of(vq->codebook.detach(), c, flat)) << "K = " << k << ", code " << c;
    if (k <= 18) {
      for (int64_t a = 0; a < k; ++a) {
        for (int64_t b = a + 1; b < k; ++b)
          EXPECT_FALSE(torch::equal(vq->codebook[a], vq->codebook[b]));
      }
    }
    // Only once: the next batch leaves a gradient codebook untouched.
    auto after_first = vq->codebook.detach().clone();
    vq->forward(torch::randn({2, 4, 3, 3}));
    EXPECT_TRUE(torch::equal(after_first, vq->codebook.detach()));
  }
  // A module restored from a checkpoint (steps > 0) is not initialised again.
  CodebookOptions co;
  co.init = CodebookInit::kData;
  VectorQuantizer restored(VectorQuantizerOptions(8, 4).codebook(co));
  restored->steps.fill_(5);
  auto kept = restored->codebook.detach().clone();
  restored->train();
  restored->forward(torch::randn({2, 4, 3, 3}));
  EXPECT_TRUE(torch::equal(kept, restored->codebook.detach()));
}

TEST_F(QuantizerTest, KmeansInitialisationFindsTwoSeparatedClusters) {
  CodebookOptions co;
  co.init = CodebookInit::kKmeans;
  VectorQuantizer vq(VectorQuantizerOptions(2, 2).codebook(co));
  auto a = torch::randn({50, 2}) * 0.1 + torch::tensor({5.0f, 0.0f});
  auto b = torch::randn({50, 2}) * 0.1 + torch::tensor({-5.0f, 0.0f});
  auto flat = torch::cat({a, b});
  vq->initialise_from(flat);
  auto cb = vq->codebook.detach();
  const int64_t hi = cb[0][0].item<float>() > cb[1][0].item<float>() ? 0 : 1;
  EXPECT_TRUE(torch::allclose(cb[hi], a.mean(0), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(cb[1 - hi], b.mean(0), 1e-5, 1e-5));
  EXPECT_TRUE(torch::equal(vq->ema_sum, cb));
  EXPECT_TRUE(torch::equal(vq->ema_count, torch::ones({2})));
}

/// Trains a lone quantizer on 16 well-separated clusters on a circle of
/// radius 2 around (10, 0), far from the U(-1/K, 1/K) codebook (the codebook
/// term only, Adam 1e-2), and returns the codes used on a fresh sample of the
/// same data. The code nearest the data wins every vector at the first step,
/// moves towards them, and the others never learn: the collapse.
int64_t codes_used_on_toy(const CodebookOptions& co) {
  torch::manual_seed(3);
  const int64_t k = 16;
  VectorQuantizer vq(VectorQuantizerOptions(k, 2).codebook(co));
  auto angles = torch::arange(k).to(torch::kFloat32) * (2 * M_PI / k);
  auto centres = torch::stack({10 + 2 * torch::cos(angles), 2 * torch::sin(angles)}, 1);  // [16, 2]
  auto sample = [&](int64_t m) {
    return centres.index_select(0, torch::randint(k, {m})) + 0.05 * torch::randn({m, 2});
  };
  std::vector<torch::Tensor> params = vq->parameters();
  torch::optim::Adam opt(params.empty()
                             ? std::vector<torch::Tensor>{torch::zeros({1}, torch::requires_grad())}
                             : params,
                         torch::optim::AdamOptions(1e-2));
  vq->train();
  for (int step = 0; step < 300; ++step) {
    auto q = vq->forward(as_map(sample(256)));
    if (!params.empty()) {
      opt.zero_grad();
      q.codebook_loss.mean().backward();
      opt.step();
    }
  }
  vq->eval();
  return codebook_usage(vq->nearest(sample(4000)), k).used;
}

TEST_F(QuantizerTest, RestartsKeepMoreCodesAliveOnAToyProblemThatCollapses) {
  const auto written = CodebookOptions::as_written();
  auto restarts = written;
  restarts.restart_threshold = 1.0;
  const int64_t without = codes_used_on_toy(written);
  const int64_t with = codes_used_on_toy(restarts);
  const int64_t fixes = codes_used_on_toy(CodebookOptions::usual_fixes());
  RecordProperty("codes_used_as_written", static_cast<int>(without));
  RecordProperty("codes_used_with_restarts", static_cast<int>(with));
  RecordProperty("codes_used_with_the_usual_fixes", static_cast<int>(fixes));
  EXPECT_LE(without, 2)
      << "the paper's recipe was expected to collapse on this toy (it uses one code)";
  EXPECT_GT(with, without);
  EXPECT_GE(with, 14);
  EXPECT_GE(fixes, 14);
}

TEST_F(QuantizerTest, CodePerplexityAndChoicesByName) {
  EXPECT_NEAR(code_perplexity(torch::tensor({0, 0, 1, 1}, torch::kInt64), 3).item<double>(), 2.0,
              1e-6);
  EXPECT_NEAR(code_perplexity(torch::zeros({7}, torch::kInt64), 5).item<double>(), 1.0, 1e-6);
  EXPECT_EQ(parse_codebook_update("ema"), CodebookUpdate::kEma);
  EXPECT_EQ(parse_codebook_init(to_string(CodebookInit::kKmeans)), CodebookInit::kKmeans);
  EXPECT_THROW(parse_codebook_init("random"), std::invalid_argument);
  CodebookOptions bad;
  bad.decay = 1.0;
  EXPECT_THROW(VectorQuantizer(VectorQuantizerOptions(4, 2).codebook(bad)), std::invalid_argument);
  const auto j = CodebookOptions::usual_fixes().to_json();
  EXPECT_EQ(j.at("update"), "ema");
  EXPECT_EQ(j.at("init"), "data");
  EXPECT_DOUBLE_EQ(j.at("decay").get<double>(), 0.99);
  EXPECT_DOUBLE_EQ(j.at("epsilon").get<double>(), 1e-5);
}

// ---- chapter 5's measures (vq_metrics.h) ----

TEST_F(QuantizerTest, JudgeInClosedForm) {
  // Balanced one-hot predictions over 4 classes: score 4, perplexity 4.
  auto one_hot = torch::eye(4).repeat({2, 1});  // [8, 4]
  auto j = judge_probabilities(one_hot);
  EXPECT_NEAR(j.classifier_score, 4.0, 1e-9);
  EXPECT_NEAR(j.class_perplexity, 4.0, 1e-9);
  EXPECT_NEAR(j.mean_confidence, 1.0, 1e-12);
  EXPECT_NEAR(j.standard_error, 0.0, 1e-12);
  // Uniform predictions: score 1, every argmax class 0: perplexity 1.
  auto u = judge_probabilities(torch::full({5, 4}, 0.25));
  EXPECT_NEAR(u.classifier_score, 1.0, 1e-9);
  EXPECT_NEAR(u.class_perplexity, 1.0, 1e-9);
  EXPECT_NEAR(u.mean_confidence, 0.25, 1e-12);
  // Two rows (0.5, 0.5) and (1, 0): marginal (0.75, 0.25), E H = ln 2 / 2,
  // confidences 0.5 and 1 (sd 0.3536, se 0.25).
  auto h = judge_probabilities(torch::tensor({0.5, 0.5, 1.0, 0.0}, torch::kFloat64).view({2, 2}));
  const double h_marginal = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  EXPECT_NEAR(h.classifier_score, std::exp(h_marginal - std::log(2.0) / 2), 1e-12);
  EXPECT_NEAR(h.mean_confidence, 0.75, 1e-12);
  EXPECT_NEAR(h.standard_error, 0.25, 1e-12);
  EXPECT_EQ(h.examples, 2);
}

TEST_F(QuantizerTest, Table1MetricsByHand) {
  // Output (0.5, 1.5) against gray levels (1, 0): MSE (0.25 + 2.25) / 2; the
  // cross-entropy clips 1.5 to 1 - 1e-7: -ln 0.5 - ln 1e-7.
  auto t = table1_metrics(torch::tensor({0.5f, 1.5f}).view({1, 2}),
                          torch::tensor({1.0f, 0.0f}).view({1, 2}));
  EXPECT_NEAR(t.mse_per_pixel, 1.25, 1e-7);
  EXPECT_NEAR(t.cross_entropy, std::log(2.0) - std::log(1e-7), 1e-4);
  EXPECT_EQ(t.examples, 1);
  EXPECT_THROW(table1_metrics(torch::zeros({2, 3}), torch::zeros({3, 2})), c10::Error);
}

TEST_F(QuantizerTest, BoundAndFittedVarianceInClosedForm) {
  const auto b = vq_bound(-100.0, 50.0, 49, 512);
  EXPECT_DOUBLE_EQ(b.total, -150.0);
  EXPECT_DOUBLE_EQ(b.log_p_z, -50.0);
  EXPECT_NEAR(b.uniform_nats, 49 * std::log(512.0), 1e-12);
  EXPECT_NEAR(b.total_uniform_prior, -100.0 - 49 * std::log(512.0), 1e-12);
  // At the fitted variance the Gaussian log-likelihood is -P/2 (1 + ln(2 pi sigma2)) per image.
  VqVae model(VqVaeOptions(4, 3).channels(4));
  model->eval();
  auto x = torch::rand({30, 784});
  const double s2 = fitted_variance(*model, x, 7);
  const double ll = mean_log_likelihood(*model, x, s2, 7);
  EXPECT_NEAR(ll, -0.5 * 784 * (1 + std::log(2 * M_PI * s2)), 1e-3 * std::abs(ll));
}

TEST_F(QuantizerTest, UsageBarsByHand) {
  auto img = usage_bars({3, 0, 6});  // K = 3: bars 133 wide, 132 drawn
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{120, 401}));
  EXPECT_FLOAT_EQ(img[0][1].item<float>(), 0.15f);    // the most used code (6): full height
  EXPECT_FLOAT_EQ(img[59][134].item<float>(), 1.0f);  // the second (3): half height
  EXPECT_FLOAT_EQ(img[60][134].item<float>(), 0.15f);
  EXPECT_FLOAT_EQ(img[119][1 + 2 * 133].item<float>(), 1.0f);  // an unused code: no bar
  EXPECT_FLOAT_EQ(img[0][0].item<float>(), 1.0f);              // the margin
}

}  // namespace
