// The VQ-VAE's pieces against hand-computed cases: nearest-code assignment,
// the straight-through estimator's identity gradient, which parameters each
// loss term trains (vdO2017 eq. 3: the codebook term only the codebook, the
// commitment term only the encoder), codebook usage and the likelihoods.
#include <gtest/gtest.h>

#include <cmath>

#include "vaerepro/datasets.h"
#include "vaerepro/vqvae.h"

using namespace vaerepro;

namespace {

class VqVaeTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(7); }
};

/// True when every parameter in `module` has no gradient or an all-zero one.
bool no_gradient(torch::nn::Module& module) {
  for (const auto& p : module.parameters()) {
    if (p.grad().defined() && p.grad().abs().sum().item<double>() != 0.0) return false;
  }
  return true;
}

/// True when every parameter in `module` has a gradient that is not all zero.
bool every_parameter_has_gradient(torch::nn::Module& module) {
  for (const auto& p : module.parameters()) {
    if (!p.grad().defined() || p.grad().abs().sum().item<double>() == 0.0) return false;
  }
  return true;
}

TEST_F(VqVaeTest, NearestCodeHandCase) {
  VectorQuantizer vq(VectorQuantizerOptions(3, 2));
  {
    torch::NoGradGuard no_grad;
    vq->codebook.copy_(torch::tensor({0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 2.0f}).view({3, 2}));
  }
  // Points and their squared distances to codes 0, 1, 2, by hand:
  // (0.1, 0.1): 0.02, 0.82, 3.62 -> 0;   (0.9, -0.3): 0.90, 0.10, 6.10 -> 1;
  // (0.2, 1.2): 1.48, 2.08, 0.68 -> 2;   (0.6, 0.1): 0.37, 0.17, 3.97 -> 1;
  // (-5, 5): 50, 61, 34 -> 2;            (3, 3): 18, 13, 10 -> 2.
  auto flat =
      torch::tensor({0.1f, 0.1f, 0.9f, -0.3f, 0.2f, 1.2f, 0.6f, 0.1f, -5.0f, 5.0f, 3.0f, 3.0f})
          .view({6, 2});
  auto codes = vq->nearest(flat);
  const std::vector<int64_t> expected = {0, 1, 2, 1, 2, 2};
  ASSERT_EQ(codes.size(0), 6);
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(codes[i].item<int64_t>(), expected[i]) << "point " << i;

  // The same points as a [1, 2, 2, 3] map of z_e: codes come back in the map's
  // layout and z_q holds the codebook vectors.
  auto z_e =
      flat.view({2, 3, 2}).permute({2, 0, 1}).unsqueeze(0).contiguous();  // [1, D=2, H=2, W=3]
  auto q = vq->forward(z_e);
  ASSERT_EQ(q.codes.sizes(), (std::vector<int64_t>{1, 2, 3}));
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(q.codes[0][i / 3][i % 3].item<int64_t>(), expected[i]);
  EXPECT_TRUE(torch::allclose(q.z_q, vq->lookup(q.codes)));
  EXPECT_FLOAT_EQ(q.z_q[0][1][1][2].item<float>(), 2.0f);  // point 5 -> code 2 = (0, 2)
  // Both terms have the same value: the mean of (z_e - z_q)^2.
  const double expected_term = (z_e - q.z_q).pow(2).mean().item<double>();
  EXPECT_NEAR(q.codebook_loss.item<double>(), expected_term, 1e-6);
  EXPECT_NEAR(q.commitment_loss.item<double>(), expected_term, 1e-6);
}

TEST_F(VqVaeTest, StraightThroughGradientIsTheIdentity) {
  auto x = torch::randn({4, 3, 5, 5}, torch::kFloat64).requires_grad_(true);
  auto q = torch::round(x.detach() * 3) / 3;  // any value the gradient cannot pass
  auto y = straight_through(x, q);
  EXPECT_TRUE(torch::equal(y.detach(), q));  // forward: the quantised value
  auto g = torch::randn_like(x);
  y.backward(g);
  EXPECT_TRUE(torch::equal(x.grad(), g));  // backward: exactly the upstream gradient

  // Through the quantiser: the gradient of z_e is the upstream gradient and
  // nothing reaches the codebook.
  VectorQuantizer vq(VectorQuantizerOptions(8, 3));
  vq->to(torch::kFloat64);
  auto z_e = torch::randn({2, 3, 4, 4}, torch::kFloat64).requires_grad_(true);
  auto out = vq->forward(z_e);
  auto g2 = torch::randn_like(z_e);
  out.straight_through.backward(g2);
  EXPECT_TRUE(torch::equal(z_e.grad(), g2));
  EXPECT_TRUE(no_gradient(*vq));
}

TEST_F(VqVaeTest, CodebookTermTrainsOnlyTheCodebookAndCommitmentOnlyTheEncoder) {
  VqVae model(VqVaeOptions(6, 4).channels(8));
  auto x = torch::rand({5, 784});
  {
    auto out = model->forward(x);
    model->loss(out, x).codebook.sum().backward();
    EXPECT_TRUE(model->quantizer->codebook.grad().defined());
    EXPECT_GT(model->quantizer->codebook.grad().abs().sum().item<double>(), 0.0);
    EXPECT_TRUE(no_gradient(*model->encoder));
    EXPECT_TRUE(no_gradient(*model->decoder));
  }
  model->zero_grad();
  {
    auto out = model->forward(x);
    model->loss(out, x).commitment.sum().backward();
    EXPECT_TRUE(every_parameter_has_gradient(*model->encoder));
    EXPECT_TRUE(no_gradient(*model->quantizer));
    EXPECT_TRUE(no_gradient(*model->decoder));
  }
  model->zero_grad();
  {
    // The reconstruction term trains decoder and (straight through) encoder,
    // never the codebook.
    auto out = model->forward(x);
    model->loss(out, x).reconstruction.sum().backward();
    EXPECT_TRUE(every_parameter_has_gradient(*model->decoder));
    EXPECT_TRUE(every_parameter_has_gradient(*model->encoder));
    EXPECT_TRUE(no_gradient(*model->quantizer));
  }
}

TEST_F(VqVaeTest, TotalLossWeighsCommitmentByBeta) {
  VqVae model(VqVaeOptions(6, 4).channels(8).beta(0.25));
  auto x = torch::rand({3, 784});
  auto out = model->forward(x);
  auto l = model->loss(out, x);
  EXPECT_TRUE(torch::allclose(l.total, l.reconstruction + l.codebook + 0.25 * l.commitment));
  // MSE: the mean over pixels of the squared error, per example.
  auto expected = (out.output.view({3, 784}) - x).pow(2).mean(1);
  EXPECT_TRUE(torch::allclose(l.reconstruction, expected));
  EXPECT_EQ(out.output.sizes(), (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_EQ(out.quantized.codes.sizes(), (std::vector<int64_t>{3, 7, 7}));
}

TEST_F(VqVaeTest, LikelihoodsInClosedForm) {
  VqVae mse(VqVaeOptions(4, 2).channels(8));
  auto x = torch::rand({2, 784}, torch::kFloat64);
  auto mean = x.view({2, 1, 28, 28});
  // A perfect mean under N(mu, sigma2): -784/2 log(2 pi sigma2).
  const double sigma2 = 0.01;
  auto ll = mse->log_likelihood(mean, x, sigma2);
  EXPECT_NEAR(ll[0].item<double>(), -0.5 * 784 * std::log(2 * M_PI * sigma2), 1e-9);
  // One pixel off by 0.1 costs 0.1^2 / (2 sigma2) = 0.5 nats.
  auto shifted = mean.clone();
  shifted[1][0][3][4] += 0.1;
  EXPECT_NEAR((ll[1] - mse->log_likelihood(shifted, x, sigma2)[1]).item<double>(), 0.5, 1e-9);

  // Bernoulli: logits 0 give log(1/2) per pixel whatever x.
  VqVae bern(VqVaeOptions(4, 2).channels(8).reconstruction(Reconstruction::kBernoulli));
  auto zero_logits = torch::zeros({2, 1, 28, 28}, torch::kFloat64);
  auto llb = bern->log_likelihood(zero_logits, (x > 0.5).to(torch::kFloat64), 1.0);
  EXPECT_NEAR(llb[0].item<double>(), 784 * std::log(0.5), 1e-9);
  EXPECT_TRUE(torch::allclose(bern->mean_image(zero_logits), torch::full_like(zero_logits, 0.5)));
}

TEST_F(VqVaeTest, CodebookUsageAndPerplexity) {
  auto u = codebook_usage(torch::tensor({0, 0, 1, 1}, torch::kInt64), 3);
  EXPECT_EQ(u.used, 2);
  EXPECT_EQ(u.counts, (std::vector<int64_t>{2, 2, 0}));
  EXPECT_NEAR(u.perplexity, 2.0, 1e-12);
  auto one = codebook_usage(torch::zeros({10}, torch::kInt64), 5);
  EXPECT_EQ(one.used, 1);
  EXPECT_NEAR(one.perplexity, 1.0, 1e-12);
  // Skewed: p = (3/4, 1/4): exp(H) = exp(-(3/4 log 3/4 + 1/4 log 1/4)).
  auto skew = codebook_usage(torch::tensor({2, 2, 2, 4}, torch::kInt64), 5);
  EXPECT_NEAR(skew.perplexity, std::exp(-(0.75 * std::log(0.75) + 0.25 * std::log(0.25))), 1e-12);
}

TEST_F(VqVaeTest, TrainingLowersTheLossOnATinySet) {
  // 32 synthetic stroke images, a hundred Adam steps: the reconstruction term
  // falls to well under half (random noise would not: it is incompressible).
  const Dataset d = make_synthetic(32, 8, 3);
  auto x = d.train.images.to(torch::kFloat32).div(255.0).view({32, 784});
  VqVae model(VqVaeOptions(8, 4).channels(16));
  const double before = evaluate_vqvae(*model, x).reconstruction;
  VqTrainOptions o;
  o.epochs = 100;
  o.batch_size = 32;
  o.lr = 3e-3;
  o.curve_points = 3;
  o.progress_seconds = 0;
  auto r = train_vqvae(
      *model, 32, [&](const torch::Tensor& idx) { return x.index_select(0, idx); }, x, o);
  EXPECT_EQ(r.curve.size(), 3u);
  EXPECT_EQ(r.samples_seen, 32 * 100);
  EXPECT_LT(r.curve.back().test.reconstruction, 0.5 * before);
  EXPECT_GE(r.curve.back().test.codes_used, 2);
}

}  // namespace
