// Chapter 5's library pieces against hand-computed cases: the bound
// log p(x | z_q) + log p(z_q) of a decoder and a prior whose outputs are known
// in closed form, the bound's record and caveats, seed Fig. 16's trend of the
// terms, the CSV tables, the arms of --arms / --prior-arms, the reconstruction
// and decoding of images, and the records a model's entry is written from.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "vaerepro/cli.h"
#include "vaerepro/vq_record.h"

using namespace vaerepro;
namespace fs = std::filesystem;

namespace {

class VqRecordTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(13); }
};

/// A VQ-VAE whose decoder outputs 0 everywhere (its last layer zeroed).
VqVae zero_output_vqvae(int64_t codes, Reconstruction reconstruction) {
  VqVae model(VqVaeOptions(codes, 3).channels(4).reconstruction(reconstruction));
  torch::NoGradGuard no_grad;
  for (auto& p : model->decoder->up2->parameters()) p.zero_();
  model->eval();
  return model;
}

/// A gated PixelCNN whose every parameter is zero: uniform logits, p(z) = K^-49.
GatedPixelCnn uniform_prior(int64_t codes) {
  GatedPixelCnn prior(GatedPixelCnnOptions(codes).channels(4).blocks(1));
  torch::NoGradGuard no_grad;
  for (auto& p : prior->parameters()) p.zero_();
  prior->eval();
  return prior;
}

int csv_rows(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  int n = -1;  // the header
  while (std::getline(in, line)) ++n;
  return n;
}

TEST_F(VqRecordTest, BoundOfAZeroDecoderAndAUniformPriorInClosedForm) {
  const int64_t k = 6;
  auto x = torch::rand({5, 784});
  auto codes = encode_all(*zero_output_vqvae(k, Reconstruction::kBernoulli), x);  // [5, 7, 7]
  const PriorMetrics prior = evaluate_prior(*uniform_prior(k), codes);
  EXPECT_NEAR(prior.nats_per_map, 49 * std::log(6.0), 1e-5);
  // Bernoulli with logit 0: every pixel costs ln 2, whatever its value.
  VqVae bernoulli = zero_output_vqvae(k, Reconstruction::kBernoulli);
  const auto b = vq_bound(mean_log_likelihood(*bernoulli, x, 1.0), prior.nats_per_map, 49, k);
  EXPECT_NEAR(b.log_p_x_given_z, -784 * std::log(2.0), 1e-3);
  EXPECT_NEAR(b.total, -784 * std::log(2.0) - 49 * std::log(6.0), 1e-3);
  EXPECT_NEAR(b.total_uniform_prior, b.total, 1e-3);  // the prior is uniform
  // Gaussian around 0 with the fitted variance s2 = mean x^2: per image
  // -sum x^2 / (2 s2) - 392 ln(2 pi s2), whose mean is -392 (1 + ln(2 pi s2)).
  VqVae gaussian = zero_output_vqvae(k, Reconstruction::kMse);
  const double s2 = fitted_variance(*gaussian, x, 2);
  EXPECT_NEAR(s2, x.pow(2).mean().item<double>(), 1e-6);
  EXPECT_NEAR(mean_log_likelihood(*gaussian, x, s2, 2), -392 * (1 + std::log(2 * M_PI * s2)), 1e-2);
}

TEST_F(VqRecordTest, BoundRecordAndItsCaveats) {
  const VqBound b = vq_bound(-10.0, 4.0, 49, 8);
  const auto mse = vq_bound_record(b, Reconstruction::kMse, Protocol::kGrayBce, 0.25);
  EXPECT_DOUBLE_EQ(mse["total"].get<double>(), -14.0);
  EXPECT_DOUBLE_EQ(mse["log_p_z"].get<double>(), -4.0);
  EXPECT_EQ(mse["decoder"], "gaussian");
  EXPECT_DOUBLE_EQ(mse["sigma2"].get<double>(), 0.25);
  EXPECT_FALSE(mse["proper_likelihood"].get<bool>());
  EXPECT_EQ(mse["units"], "nats per test image");
  const auto gray = vq_bound_record(b, Reconstruction::kBernoulli, Protocol::kGrayBce, 1.0);
  const auto binarized = vq_bound_record(b, Reconstruction::kBernoulli, Protocol::kBinarized, 1.0);
  EXPECT_TRUE(gray["sigma2"].is_null());
  EXPECT_EQ(gray["decoder"], "bernoulli");
  EXPECT_FALSE(gray["proper_likelihood"].get<bool>());
  EXPECT_TRUE(binarized["proper_likelihood"].get<bool>());
  EXPECT_FALSE(vq_bound_is_likelihood(Reconstruction::kMse, Protocol::kBinarized));
  // Two caveats shared by every decoder, and a third of its own.
  for (const auto& r : {mse, gray, binarized}) {
    ASSERT_EQ(r["caveats"].size(), 3u);
    EXPECT_EQ(r["caveats"][0], mse["caveats"][0]);
    EXPECT_EQ(r["caveats"][1], mse["caveats"][1]);
  }
  EXPECT_NE(mse["caveats"][2], gray["caveats"][2]);
  EXPECT_NE(gray["caveats"][2], binarized["caveats"][2]);
  EXPECT_NE(binarized["caveats"][2].get<std::string>().find("true lower bound"), std::string::npos);
}

std::vector<VqCurvePoint> curve_of(const std::vector<double>& rec, const std::vector<double>& cb) {
  std::vector<VqCurvePoint> c(rec.size());
  for (size_t i = 0; i < rec.size(); ++i) {
    c[i].train.reconstruction = rec[i];
    c[i].train.codebook = cb[i];
  }
  return c;
}

TEST_F(VqRecordTest, TermTrendFindsThePeakAndTheFall) {
  auto t = vq_term_trend(curve_of({5, 4, 3}, {1, 3, 2}));
  EXPECT_EQ(t.peak_at, 1u);
  EXPECT_DOUBLE_EQ(t.peak_codebook, 3);
  EXPECT_DOUBLE_EQ(t.first_reconstruction, 5);
  EXPECT_DOUBLE_EQ(t.last_reconstruction, 3);
  EXPECT_DOUBLE_EQ(t.last_codebook, 2);
  EXPECT_EQ(t.points, 3u);
  EXPECT_TRUE(t.falls());
  // Equal maxima: the first; a codebook term that ends at its peak has not fallen.
  auto flat = vq_term_trend(curve_of({5, 4, 3}, {3, 3, 3}));
  EXPECT_EQ(flat.peak_at, 0u);
  EXPECT_FALSE(flat.falls());
  // A reconstruction term that rises fails however the codebook term goes.
  EXPECT_FALSE(vq_term_trend(curve_of({3, 4}, {2, 1})).falls());
  EXPECT_THROW(vq_term_trend(curve_of({1}, {1})), std::invalid_argument);
}

TEST_F(VqRecordTest, CsvTablesByHand) {
  std::vector<VqCurvePoint> curve(2);
  curve[1].samples_seen = 200;
  curve[1].train.codebook = 0.5;
  curve[1].test.codes_used = 7;
  curve[1].restarts = 3;
  curve[1].wall_seconds = 1.5;
  const CsvTable v = vq_curve_table(curve);
  ASSERT_EQ(v.header.size(), 18u);
  ASSERT_EQ(v.rows.size(), 2u);
  for (const auto& row : v.rows) EXPECT_EQ(row.size(), v.header.size());
  auto cell = [&](const std::string& column) {
    for (size_t i = 0; i < v.header.size(); ++i) {
      if (v.header[i] == column) return v.rows[1][i];
    }
    ADD_FAILURE() << "no column " << column;
    return std::nan("");
  };
  EXPECT_EQ(cell("samples_seen"), 200);
  EXPECT_EQ(cell("train_codebook"), 0.5);
  EXPECT_EQ(cell("test_codes_used"), 7);
  EXPECT_EQ(cell("restarts"), 3);
  EXPECT_EQ(cell("wall_seconds"), 1.5);

  std::vector<PriorCurvePoint> prior(1);
  prior[0].epochs = 1;
  prior[0].test.nats_per_map = 42;
  const CsvTable p = prior_curve_table(prior);
  ASSERT_EQ(p.rows.size(), 1u);
  EXPECT_EQ(p.header[3], "test_nats_per_map");
  EXPECT_EQ(p.rows[0][3], 42);

  const auto train = codebook_usage_of_counts({4, 0, 1}),
             test = codebook_usage_of_counts({1, 1, 0});
  const auto samples = codebook_usage_of_counts({0, 2, 5});
  const CsvTable without = codebook_table(train, test, nullptr),
                 with = codebook_table(train, test, &samples);
  ASSERT_EQ(with.rows.size(), 3u);
  EXPECT_EQ(with.rows[2], (std::vector<double>{2, 1, 0, 5}));
  EXPECT_TRUE(std::isnan(without.rows[1][3]));
  EXPECT_EQ(without.rows[0][1], 4);
  EXPECT_THROW(codebook_table(train, codebook_usage_of_counts({1, 2}), nullptr),
               std::invalid_argument);
}

TEST_F(VqRecordTest, ArmsFromTheirNames) {
  CodebookOptions fixed = CodebookOptions::usual_fixes();
  fixed.decay = 0.9;
  const auto arms = parse_vq_arms("fixed,faithful", "faithful", "kmeans", fixed);
  ASSERT_EQ(arms.size(), 2u);
  EXPECT_EQ(arms[0].name, "fixed");
  EXPECT_EQ(arms[0].title, "with the usual fixes");
  EXPECT_EQ(arms[0].codebook.init, CodebookInit::kKmeans);
  EXPECT_EQ(arms[0].codebook.update, CodebookUpdate::kEma);
  EXPECT_DOUBLE_EQ(arms[0].codebook.decay, 0.9);
  EXPECT_FALSE(arms[0].prior);
  EXPECT_EQ(arms[1].name, "faithful");
  EXPECT_EQ(arms[1].codebook.to_json(), CodebookOptions::as_written().to_json());
  EXPECT_TRUE(arms[1].prior);
  EXPECT_FALSE(parse_vq_arms("faithful", "", "data", fixed)[0].prior);
  const nlohmann::json j = arms;
  EXPECT_EQ(j[1]["title"], "as written");
  EXPECT_EQ(j[0]["codebook"]["init"], "kmeans");
  EXPECT_EQ(j[1]["prior"], true);

  auto message = [&](const std::string& a, const std::string& p, double decay) {
    CodebookOptions c = fixed;
    c.decay = decay;
    try {
      parse_vq_arms(a, p, "data", c);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("faithful,tuned", "", 0.9).find("'tuned' is not one of: faithful, fixed"),
            std::string::npos);
  EXPECT_NE(message("fixed", "fixed,fixed", 0.9).find("--prior-arms: 'fixed' is given twice"),
            std::string::npos);
  EXPECT_NE(message("", "", 0.9).find("--arms is empty"), std::string::npos);
  EXPECT_NE(message("fixed", "", 2.0).find("--ema-decay"), std::string::npos);
  // The fixed arm's options are checked only when it runs.
  EXPECT_EQ(message("faithful", "", 2.0), "no error");
}

TEST_F(VqRecordTest, SettingsJson) {
  const nlohmann::json j = VqSetting{"seed", 10, 2, 1e-3, "seed 000's code"};
  EXPECT_EQ(j, (nlohmann::json{{"name", "seed"},
                               {"codes", 10},
                               {"dim", 2},
                               {"lr", 1e-3},
                               {"source", "seed 000's code"}}));
}

TEST_F(VqRecordTest, DecodingTheCodesGivesTheReconstruction) {
  VqVae model(VqVaeOptions(5, 3).channels(4));
  model->eval();
  auto x = torch::rand({4, 784});
  const auto recon = vq_reconstruct(*model, x), decoded = vq_decode(*model, encode_all(*model, x));
  ASSERT_EQ(recon.sizes(), (std::vector<int64_t>{4, 784}));
  EXPECT_FALSE(recon.requires_grad());
  EXPECT_GE(recon.min().item<double>(), 0.0);
  EXPECT_LE(recon.max().item<double>(), 1.0);
  // The straight-through pass has z_q's value: the same images up to rounding.
  EXPECT_TRUE(torch::allclose(recon, decoded, 1e-5, 1e-5));
}

TEST_F(VqRecordTest, RecordsWriteTheirFilesAndKeys) {
  const int64_t k = 4;
  TensorData data;
  data.train = torch::rand({30, 784});
  data.train_eval = data.train;
  data.test = torch::rand({12, 784});
  data.test_gray = data.test;
  VqVae model(VqVaeOptions(k, 3).channels(4));
  model->eval();
  const VqMeasured m = measure_vqvae(*model, data, 100);
  EXPECT_EQ(m.gray_fixed.size(0), 12);  // at most the test set
  EXPECT_EQ(m.test_codes.sizes(), (std::vector<int64_t>{12, 7, 7}));
  EXPECT_EQ(m.usage_train.counts.size(), static_cast<size_t>(k));
  EXPECT_EQ(m.test.examples, 12);
  // Table 1's MSE is taken in float64; this float32 mean agrees to its precision.
  EXPECT_NEAR(m.table1.mse_per_pixel, (m.recon_fixed - m.gray_fixed).pow(2).mean().item<double>(),
              1e-6);

  const fs::path root =
      fs::temp_directory_path() / ("vaerepro-vq-record-" + std::to_string(::getpid()));
  fs::remove_all(root);
  RunWriter writer(root.string(), "vq");
  VqTrainResult trained;
  trained.curve.resize(3);
  const VqSetting s{"seed", k, 3, 1e-3, "test"};
  const VqArm arm{"faithful", "as written", CodebookOptions::as_written()};
  nlohmann::json r = record_vqvae(writer, "seed-faithful", s, arm, *model, trained, m);
  EXPECT_EQ(r["name"], "seed-faithful");
  EXPECT_EQ(r["vqvae"]["curve"].size(), 3u);
  EXPECT_EQ(r["usage"]["test"]["counts"].size(), static_cast<size_t>(k));
  EXPECT_EQ(csv_rows(writer.path(r["vqvae"]["curve_csv"])), 3);

  VqPriorOutcome p;
  p.curve.resize(2);
  p.prior_images = torch::rand({3, 784});
  p.uniform_images = torch::rand({3, 784});
  p.bound = vq_bound(-5, 2, 49, k);
  p.usage = codebook_usage_of_counts({1, 0, 0, 2});
  record_prior(writer, "seed-faithful", p, Reconstruction::kMse, Protocol::kGrayBce, r);
  EXPECT_EQ(r["prior"]["samples"], 3);
  EXPECT_DOUBLE_EQ(r["prior"]["uniform"]["bits_per_dim"].get<double>(), 2.0);  // log2 4
  EXPECT_EQ(r["bound"]["decoder"], "gaussian");
  EXPECT_EQ(csv_rows(writer.path(r["prior"]["curve_csv"])), 2);
  record_codebook(writer, "seed-faithful", m, &p.usage, r);
  EXPECT_EQ(csv_rows(writer.path(r["usage"]["codebook_csv"])), k);
  for (const auto& [key, rel] : r["images"].items()) {
    EXPECT_TRUE(fs::exists(writer.path(rel.get<std::string>()))) << key;
  }
  EXPECT_EQ(r["images"].size(), 4u);
  writer.abandon();
  fs::remove_all(root);
}

}  // namespace
